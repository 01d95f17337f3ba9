//! TLS: rustls server config (TLS 1.2 and 1.3, h2 + http/1.1 by ALPN) whose certificate is
//! hot-swapped through an `ArcSwap`, and a reloader that watches the certificate files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    Load { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The serving certificate, swappable at runtime without dropping connections: existing
/// connections keep the key they negotiated with, new handshakes get the new one.
#[derive(Debug)]
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
    /// PEM of the current certificate (for the expiry metric).
    pem: ArcSwap<String>,
}

impl CertResolver {
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Self, TlsError> {
        let key = certified_key(cert_pem, key_pem, "<memory>")?;
        Ok(Self {
            current: ArcSwap::from_pointee(key),
            pem: ArcSwap::from_pointee(cert_pem.to_string()),
        })
    }

    /// Replaces the certificate. Fails (keeping the old one) if the new pair does not parse
    /// or the key does not match the certificate.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let key = certified_key(cert_pem, key_pem, "<memory>")?;
        self.current.store(Arc::new(key));
        self.pem.store(Arc::new(cert_pem.to_string()));
        Ok(())
    }

    pub fn cert_pem(&self) -> Arc<String> {
        self.pem.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn certified_key(cert_pem: &str, key_pem: &str, origin: &str) -> Result<CertifiedKey, TlsError> {
    let err = |message: String| TlsError::Load {
        path: origin.to_string(),
        message,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| err(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(err("no certificate in PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| err(format!("private key PEM: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    let ck = CertifiedKey::from_der(certs, key, &provider).map_err(|e| err(e.to_string()))?;
    Ok(ck)
}

/// The rustls config: ring provider, TLS 1.2 and 1.3 only, ALPN h2 and http/1.1.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

/// Certificate and key files that are reloaded when they change.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    pub fn read(&self) -> Result<(String, String), TlsError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| TlsError::Load {
                path: p.display().to_string(),
                message: e.to_string(),
            })
        };
        Ok((read(&self.cert)?, read(&self.key)?))
    }

    fn stamp(&self) -> Option<(SystemTime, SystemTime, u64, u64)> {
        // Kubernetes updates mounted Secrets by swapping a symlink; metadata() follows it.
        let c = std::fs::metadata(&self.cert).ok()?;
        let k = std::fs::metadata(&self.key).ok()?;
        Some((c.modified().ok()?, k.modified().ok()?, c.len(), k.len()))
    }
}

/// Polls `files` every `interval` and swaps the certificate when they change. A half-written
/// pair (key not matching the certificate, truncated PEM) is ignored until it is complete.
pub async fn watch_files(
    files: CertFiles,
    resolver: Arc<CertResolver>,
    interval: Duration,
    on_reload: impl Fn(Result<(), &TlsError>) + Send + 'static,
) {
    let mut last = files.stamp();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending_error = false;
    loop {
        tick.tick().await;
        let now = files.stamp();
        if now == last && !pending_error {
            continue;
        }
        last = now;
        match files.read().and_then(|(c, k)| resolver.replace(&c, &k)) {
            Ok(()) => {
                pending_error = false;
                tracing::info!(cert = %files.cert.display(), "reloaded serving certificate");
                on_reload(Ok(()));
            }
            Err(e) => {
                // Keep serving the old certificate; try again on the next tick.
                pending_error = true;
                tracing::warn!(error = %e, "certificate files changed but do not load yet; keeping the old certificate");
                on_reload(Err(&e));
            }
        }
    }
}
