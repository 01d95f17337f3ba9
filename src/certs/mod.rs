//! Certificates without cert-manager: a CA and serving certificates generated with rcgen
//! (ECDSA P-256 by default), their validity, and writing/reading them as PEM files.

mod resolver;
pub mod selfmanaged;

pub use resolver::{CertResolver, TlsError};

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid certificate: {0}")]
    Parse(String),
    #[error("invalid SAN {0:?}")]
    San(String),
}

/// Key algorithm of generated keys.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyAlgorithm {
    #[default]
    EcdsaP256,
    EcdsaP384,
    Ed25519,
}

impl KeyAlgorithm {
    fn alg(self) -> &'static rcgen::SignatureAlgorithm {
        match self {
            KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            KeyAlgorithm::Ed25519 => &rcgen::PKCS_ED25519,
        }
    }
}

/// A CA or serving certificate with its key, as PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPem {
    pub cert: String,
    pub key: String,
}

/// The four files `llmisvc certs` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub ca: CertPem,
    pub serving: CertPem,
}

/// What a serving certificate is for.
#[derive(Clone, Debug, Default)]
pub struct ServingSpec {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
    pub validity: Duration,
    pub algorithm: KeyAlgorithm,
}

/// How far `notBefore` is backdated (clock skew between replicas and the API server).
pub const BACKDATE: Duration = Duration::from_secs(300);

fn validity_window(validity: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - BACKDATE, now + validity)
}

/// Generates a self-signed CA.
pub fn generate_ca(
    common_name: &str,
    validity: Duration,
    algorithm: KeyAlgorithm,
) -> Result<CertPem, CertError> {
    let key = KeyPair::generate_for(algorithm.alg())?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // Each CA gets its own subject (name plus creation time): during a rotation the old and
    // the new CA are trusted side by side, and verifiers pick the anchor by subject.
    let stamp = OffsetDateTime::now_utc();
    dn.push(
        DnType::CommonName,
        format!(
            "{common_name} {}{:09}",
            stamp.unix_timestamp(),
            stamp.nanosecond()
        ),
    );
    dn.push(DnType::OrganizationName, "llmisvc");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity_window(validity);
    let cert = params.self_signed(&key)?;
    Ok(CertPem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// Generates a serving certificate for `spec`, signed by `ca`.
pub fn generate_serving(ca: &CertPem, spec: &ServingSpec) -> Result<CertPem, CertError> {
    let ca_key = KeyPair::from_pem(&ca.key)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert, ca_key)?;
    let key = KeyPair::generate_for(spec.algorithm.alg())?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        spec.dns
            .first()
            .cloned()
            .unwrap_or_else(|| "llmisvc".into()),
    );
    params.distinguished_name = dn;
    for name in &spec.dns {
        let ia5 = name
            .clone()
            .try_into()
            .map_err(|_| CertError::San(name.clone()))?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    for ip in &spec.ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity_window(spec.validity);
    let cert = params.signed_by(&key, &issuer)?;
    Ok(CertPem {
        cert: cert.pem(),
        key: key.serialize_pem(),
    })
}

/// A CA plus a serving certificate.
pub fn generate_bundle(ca_validity: Duration, serving: &ServingSpec) -> Result<Bundle, CertError> {
    let ca = generate_ca("llmisvc-ca", ca_validity, serving.algorithm)?;
    let serving = generate_serving(&ca, serving)?;
    Ok(Bundle { ca, serving })
}

/// A CA plus a serving certificate for `localhost`, `127.0.0.1` and `::1` (development servers
/// and tests), both valid for `validity`.
pub fn localhost_bundle(validity: Duration) -> Result<Bundle, CertError> {
    generate_bundle(
        validity,
        &ServingSpec {
            dns: vec!["localhost".into()],
            ips: vec![
                IpAddr::from([127, 0, 0, 1]),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ],
            validity,
            algorithm: KeyAlgorithm::EcdsaP256,
        },
    )
}

/// Runs `f` on the first certificate of a PEM string.
fn with_cert<T>(
    cert_pem: &str,
    f: impl FnOnce(&x509_parser::certificate::X509Certificate<'_>) -> T,
) -> Result<T, CertError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| CertError::Parse(e.to_string()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents)
        .map_err(|e| CertError::Parse(e.to_string()))?;
    Ok(f(&cert))
}

/// `notAfter` of the first certificate in a PEM string, as a Unix timestamp.
pub fn not_after(cert_pem: &str) -> Result<i64, CertError> {
    with_cert(cert_pem, |c| c.validity().not_after.timestamp())
}

/// `notBefore` of the first certificate in a PEM string, as a Unix timestamp.
pub fn not_before(cert_pem: &str) -> Result<i64, CertError> {
    with_cert(cert_pem, |c| c.validity().not_before.timestamp())
}

/// True when the first certificate of `cert_pem` carries a valid signature of the CA in
/// `ca_pem` (false when either does not parse).
pub fn signed_by(cert_pem: &str, ca_pem: &str) -> bool {
    with_cert(ca_pem, |ca| {
        with_cert(cert_pem, |c| {
            c.verify_signature(Some(ca.public_key())).is_ok()
        })
        .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// The certificates of a PEM bundle, each as its own PEM block (anything that is not a
/// complete `CERTIFICATE` block is skipped).
pub fn split_pem_bundle(bundle: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = bundle;
    while let Some(b) = rest.find(BEGIN) {
        let Some(e) = rest[b..].find(END) else { break };
        out.push(format!("{}\n", &rest[b..b + e + END.len()]));
        rest = &rest[b + e + END.len()..];
    }
    out
}

/// True when less than `fraction` of the certificate's lifetime is left at `now` (Unix seconds).
pub fn needs_renewal(cert_pem: &str, now: i64, fraction: f64) -> bool {
    match (not_before(cert_pem), not_after(cert_pem)) {
        (Ok(nb), Ok(na)) => {
            let lifetime = (na - nb).max(1) as f64;
            ((na - now) as f64) < lifetime * fraction
        }
        _ => true,
    }
}

fn write(path: &Path, content: &str, private: bool) -> Result<(), CertError> {
    let io = |source| CertError::Io {
        path: path.display().to_string(),
        source,
    };
    // Write to a temp file and rename, so a reader never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).map_err(io)?;
    if private {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes `ca.crt`, `ca.key`, `tls.crt`, `tls.key` into `dir`.
pub fn write_bundle(dir: &Path, bundle: &Bundle) -> Result<(), CertError> {
    std::fs::create_dir_all(dir).map_err(|source| CertError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    write(&dir.join("ca.crt"), &bundle.ca.cert, false)?;
    write(&dir.join("ca.key"), &bundle.ca.key, true)?;
    write(&dir.join("tls.key"), &bundle.serving.key, true)?;
    write(&dir.join("tls.crt"), &bundle.serving.cert, false)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServingSpec {
        ServingSpec {
            dns: vec![
                "llmisvc-webhook.llmisvc-system.svc".into(),
                "localhost".into(),
            ],
            ips: vec!["127.0.0.1".parse().unwrap()],
            validity: Duration::from_secs(3600),
            algorithm: KeyAlgorithm::EcdsaP256,
        }
    }

    #[test]
    fn serving_cert_is_signed_by_the_ca_and_carries_the_sans() {
        let b = generate_bundle(Duration::from_secs(86400), &spec()).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(b.serving.cert.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&pem.contents).unwrap();
        let (_, capem) = x509_parser::pem::parse_x509_pem(b.ca.cert.as_bytes()).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&capem.contents).unwrap();
        assert_eq!(cert.issuer(), ca.subject());
        cert.verify_signature(Some(ca.public_key())).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        let names: Vec<String> = san
            .value
            .general_names
            .iter()
            .map(|n| format!("{n}"))
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("llmisvc-webhook.llmisvc-system.svc")),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.contains("7f:00:00:01")), "{names:?}");
        assert!(ca.is_ca());
    }

    #[test]
    fn renewal_is_due_in_the_last_third_of_the_lifetime() {
        let b = generate_bundle(Duration::from_secs(86400), &spec()).unwrap();
        let na = not_after(&b.serving.cert).unwrap();
        let nb = not_before(&b.serving.cert).unwrap();
        assert!(!needs_renewal(&b.serving.cert, nb + 60, 1.0 / 3.0));
        assert!(needs_renewal(&b.serving.cert, na - 60, 1.0 / 3.0));
        assert!(needs_renewal("not a cert", nb, 0.3));
    }

    #[test]
    fn bad_dns_name_is_an_error_not_a_panic() {
        let ca = generate_ca("x", Duration::from_secs(60), KeyAlgorithm::EcdsaP256).unwrap();
        let mut s = spec();
        s.dns = vec!["bäd-näme".into()];
        assert!(generate_serving(&ca, &s).is_err());
    }
}
