//! The serving certificate as rustls serves it: a [`CertResolver`] whose certificate is
//! hot-swapped through an `ArcSwap`. Fed by whoever owns the certificate material (files
//! reloaded by [`crate::server::tls::watch_files`], the self-managed Secret
//! ([`super::selfmanaged::maintain`]), a generated localhost pair); served by
//! [`crate::server`].

use std::sync::Arc;

use arc_swap::ArcSwap;
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
