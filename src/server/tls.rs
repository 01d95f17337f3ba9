//! TLS: rustls server config (TLS 1.2 and 1.3, h2 + http/1.1 by ALPN) whose certificate comes
//! from a [`CertResolver`] (hot-swapped), and a reloader that watches the certificate files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ServerConfig;

use crate::certs::{CertResolver, TlsError};

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
