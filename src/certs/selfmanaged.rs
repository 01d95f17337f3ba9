//! Self-managed certificates for clusters without cert-manager.
//!
//! A CA and a serving certificate live in one Secret (`ca.crt`, `ca.key`, `tls.crt`,
//! `tls.key`). Every replica converges on that Secret: the first to find it missing creates it
//! (a losing `create` gets 409 and reads the winner's), renewals are `replace`s carrying the
//! Secret's resourceVersion (a losing replica gets 409 and adopts the winner's), so two
//! replicas never fight. The CA bundle is injected into our Mutating/ValidatingWebhookConfiguration
//! and both CRDs' conversion webhook. The serving certificate is renewed when a third of its
//! lifetime is left, signed by the same CA.
//!
//! The CA is renewed in two phases so that no client ever meets a certificate it does not trust
//! yet: first the new CA joins the bundle (`ca.crt` = new CA, then every older CA that has not
//! expired) while the serving certificate stays the one the old CA signed; only once that bundle
//! has had `ca_propagation` to reach the API server and every replica is the serving
//! certificate re-issued by the new CA. Replicas inject the bundle before they serve a
//! certificate from the Secret. An old CA leaves the bundle when it expires.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{
    CertPem, CertResolver, KeyAlgorithm, ServingSpec, generate_ca, generate_serving, needs_renewal,
};
use crate::api::{GROUP, Kind};
use crate::webhook_config::{Target, webhook_configs};

pub const FIELD_MANAGER: &str = "llmisvc";

#[derive(Debug, thiserror::Error)]
pub enum SelfManagedError {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Cert(#[from] super::CertError),
    #[error("Secret {0} is malformed: {1}")]
    Malformed(String, String),
}

/// Settings of self-managed mode.
#[derive(Clone, Debug)]
pub struct SelfManaged {
    pub secret_namespace: String,
    pub secret_name: String,
    pub target: Target,
    pub ca_validity: Duration,
    pub serving_validity: Duration,
    /// Renew when less than this fraction of the lifetime is left.
    pub renew_fraction: f64,
    pub check_interval: Duration,
    /// How long a new CA sits in the bundle before a serving certificate it signed is served
    /// (the API server's webhook informers and the other replicas pick the bundle up meanwhile).
    pub ca_propagation: Duration,
}

impl SelfManaged {
    /// The serving certificate's SANs for the target.
    pub fn serving_spec(&self) -> ServingSpec {
        let (dns, ips) = match &self.target {
            Target::Service { namespace, name } => (
                vec![
                    format!("{name}.{namespace}.svc"),
                    format!("{name}.{namespace}.svc.cluster.local"),
                    format!("{name}.{namespace}"),
                    name.clone(),
                ],
                vec![],
            ),
            Target::Url(url) => {
                let host = url
                    .trim_start_matches("https://")
                    .split(['/', ':'])
                    .next()
                    .unwrap_or("localhost")
                    .trim_matches(['[', ']'])
                    .to_string();
                match host.parse::<std::net::IpAddr>() {
                    Ok(ip) => (vec!["localhost".into()], vec![ip]),
                    Err(_) => (vec![host], vec![]),
                }
            }
        };
        ServingSpec {
            dns,
            ips,
            validity: self.serving_validity,
            algorithm: KeyAlgorithm::EcdsaP256,
        }
    }
}

/// The material in the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Material {
    /// PEM bundle of trusted CAs (the current one first).
    pub ca_bundle: String,
    /// The current CA (signs new serving certificates).
    pub ca: CertPem,
    pub serving: CertPem,
}

impl Material {
    fn fresh(cfg: &SelfManaged) -> Result<Self, SelfManagedError> {
        let ca = generate_ca("llmisvc-ca", cfg.ca_validity, KeyAlgorithm::EcdsaP256)?;
        let serving = generate_serving(&ca, &cfg.serving_spec())?;
        Ok(Material {
            ca_bundle: ca.cert.clone(),
            ca,
            serving,
        })
    }

    fn from_secret(s: &Secret) -> Result<Self, SelfManagedError> {
        let name = s.metadata.name.clone().unwrap_or_default();
        let data = s.data.clone().unwrap_or_default();
        let get = |k: &str| {
            data.get(k)
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .ok_or_else(|| SelfManagedError::Malformed(name.clone(), format!("missing {k}")))
        };
        let ca_bundle = get("ca.crt")?;
        Ok(Material {
            ca: CertPem {
                cert: super::split_pem_bundle(&ca_bundle)
                    .into_iter()
                    .next()
                    .unwrap_or_default(),
                key: get("ca.key")?,
            },
            ca_bundle,
            serving: CertPem {
                cert: get("tls.crt")?,
                key: get("tls.key")?,
            },
        })
    }

    fn data(&self) -> BTreeMap<String, ByteString> {
        [
            ("ca.crt", &self.ca_bundle),
            ("ca.key", &self.ca.key),
            ("tls.crt", &self.serving.cert),
            ("tls.key", &self.serving.key),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
        .collect()
    }

    /// What this material should become at `now`: None when nothing is due.
    fn renewed(&self, cfg: &SelfManaged, now: i64) -> Result<Option<Self>, SelfManagedError> {
        if needs_renewal(&self.ca.cert, now, cfg.renew_fraction) {
            // Phase one: the new CA joins the bundle; the serving certificate stays as it is
            // (the old CA that signed it is still in the bundle and still valid).
            let ca = generate_ca("llmisvc-ca", cfg.ca_validity, KeyAlgorithm::EcdsaP256)?;
            return Ok(Some(Material {
                ca_bundle: bundle(&ca.cert, &self.ca_bundle, now),
                ca,
                serving: self.serving.clone(),
            }));
        }
        let expired = super::not_after(&self.serving.cert).map_or(true, |t| t <= now);
        let due = if super::signed_by(&self.serving.cert, &self.ca.cert) {
            needs_renewal(&self.serving.cert, now, cfg.renew_fraction)
        } else {
            // Phase two: the CA changed; re-issue once the bundle has had time to propagate
            // (at once if the old certificate is already unusable).
            let published =
                super::not_before(&self.ca.cert).unwrap_or(0) + super::BACKDATE.as_secs() as i64;
            expired || now >= published + cfg.ca_propagation.as_secs() as i64
        };
        if due || expired {
            let serving = generate_serving(&self.ca, &cfg.serving_spec())?;
            return Ok(Some(Material {
                ca_bundle: bundle(&self.ca.cert, &self.ca_bundle, now),
                ca: self.ca.clone(),
                serving,
            }));
        }
        Ok(None)
    }
}

/// A CA bundle: `current` first, then every other certificate of `previous` that is still
/// valid at `now` (expired CAs leave the bundle, none appears twice).
fn bundle(current: &str, previous: &str, now: i64) -> String {
    let same = |a: &str, b: &str| a.split_whitespace().eq(b.split_whitespace());
    let mut out = current.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for c in super::split_pem_bundle(previous) {
        if !same(&c, current) && super::not_after(&c).is_ok_and(|t| t > now) {
            out.push_str(&c);
        }
    }
    out
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Creates or loads the Secret, renewing what is due, and returns what it holds.
pub async fn ensure_secret(
    client: &kube::Client,
    cfg: &SelfManaged,
) -> Result<Material, SelfManagedError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &cfg.secret_namespace);
    for _attempt in 0..5 {
        match api.get_opt(&cfg.secret_name).await? {
            None => {
                let m = Material::fresh(cfg)?;
                let secret = Secret {
                    metadata: kube::api::ObjectMeta {
                        name: Some(cfg.secret_name.clone()),
                        namespace: Some(cfg.secret_namespace.clone()),
                        labels: Some(
                            [(
                                "app.kubernetes.io/part-of".to_string(),
                                "llmisvc".to_string(),
                            )]
                            .into(),
                        ),
                        ..Default::default()
                    },
                    type_: Some("kubernetes.io/tls".into()),
                    data: Some(m.data()),
                    ..Default::default()
                };
                match api.create(&PostParams::default(), &secret).await {
                    Ok(_) => {
                        tracing::info!(secret = %cfg.secret_name, "created certificate Secret");
                        return Ok(m);
                    }
                    // Another replica won the race: read its Secret.
                    Err(kube::Error::Api(e)) if e.code == 409 => continue,
                    Err(e) => return Err(e.into()),
                }
            }
            Some(existing) => {
                let m = Material::from_secret(&existing)?;
                match m.renewed(cfg, now())? {
                    None => return Ok(m),
                    Some(next) => {
                        let mut s = existing.clone();
                        s.data = Some(next.data());
                        // replace carries metadata.resourceVersion: a concurrent writer makes it 409.
                        match api
                            .replace(&cfg.secret_name, &PostParams::default(), &s)
                            .await
                        {
                            Ok(_) => {
                                tracing::info!(secret = %cfg.secret_name, "rotated certificates");
                                return Ok(next);
                            }
                            Err(kube::Error::Api(e)) if e.code == 409 => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                }
            }
        }
    }
    // Five conflicts in a row: take whatever is there now.
    let s = api.get(&cfg.secret_name).await?;
    Material::from_secret(&s)
}

/// Writes the CA bundle into both webhook configurations (server-side apply of their full
/// content) and both CRDs' conversion webhook.
pub async fn inject_ca_bundle(
    client: &kube::Client,
    cfg: &SelfManaged,
    ca_bundle: &str,
) -> Result<(), SelfManagedError> {
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    let [m, v] = webhook_configs(&cfg.target, Some(ca_bundle.as_bytes()));
    let mapi: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    mapi.patch(crate::webhook_config::MUTATING_NAME, &pp, &Patch::Apply(m))
        .await?;
    let vapi: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    vapi.patch(
        crate::webhook_config::VALIDATING_NAME,
        &pp,
        &Patch::Apply(v),
    )
    .await?;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ca = crate::api::crd::base64_encode(ca_bundle.as_bytes());
    let client_config = match &cfg.target {
        Target::Service { namespace, name } => json!({
            "service": {"namespace": namespace, "name": name, "path": "/convert", "port": 443},
            "url": null, "caBundle": ca,
        }),
        Target::Url(base) => json!({
            "url": format!("{}/convert", base.trim_end_matches('/')), "service": null, "caBundle": ca,
        }),
    };
    let patch = json!({"spec": {"conversion": {"strategy": "Webhook", "webhook": {
        "conversionReviewVersions": ["v1"], "clientConfig": client_config}}}});
    for kind in Kind::ALL {
        let name = format!("{}.{GROUP}", kind.plural());
        match crds
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {
                tracing::warn!(crd = %name, "CRD not installed yet; conversion caBundle not injected")
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Keeps the Secret, the serving certificate and the injected bundles current: checks every
/// `check_interval`, adopts another replica's rotation, rotates when due.
pub async fn maintain(
    client: kube::Client,
    cfg: SelfManaged,
    resolver: Arc<CertResolver>,
    mut current: Material,
) {
    loop {
        tokio::time::sleep(cfg.check_interval).await;
        match ensure_secret(&client, &cfg).await {
            Ok(m) if m != current => {
                // Trust first, serve second: the bundle that trusts the new certificate's CA is
                // injected before the certificate is served.
                if m.ca_bundle != current.ca_bundle
                    && let Err(e) = inject_ca_bundle(&client, &cfg, &m.ca_bundle).await
                {
                    tracing::warn!(error = %e, "could not inject the CA bundle; will retry");
                    continue;
                }
                if m.serving != current.serving {
                    if let Err(e) = resolver.replace(&m.serving.cert, &m.serving.key) {
                        tracing::warn!(error = %e, "new serving certificate does not load");
                        continue;
                    }
                    tracing::info!("serving the rotated certificate");
                }
                current = m;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "certificate Secret check failed; will retry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> SelfManaged {
        SelfManaged {
            secret_namespace: "ns".into(),
            secret_name: "s".into(),
            target: Target::Url("https://127.0.0.1:9443".into()),
            ca_validity: Duration::from_secs(3 * 3600),
            serving_validity: Duration::from_secs(3600),
            renew_fraction: 1.0 / 3.0,
            check_interval: Duration::from_secs(60),
            ca_propagation: Duration::from_secs(120),
        }
    }

    #[test]
    fn url_targets_get_ip_sans_and_services_get_dns_sans() {
        let s = cfg().serving_spec();
        assert_eq!(
            s.ips,
            vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        let mut c = cfg();
        c.target = Target::Service {
            namespace: "llmisvc-system".into(),
            name: "llmisvc-webhook".into(),
        };
        assert!(
            c.serving_spec()
                .dns
                .contains(&"llmisvc-webhook.llmisvc-system.svc".to_string())
        );
    }

    fn secret_round_trip(m: &Material) {
        let s = Secret {
            data: Some(m.data()),
            ..Default::default()
        };
        assert_eq!(&Material::from_secret(&s).unwrap(), m);
    }

    fn bundle_len(m: &Material) -> usize {
        crate::certs::split_pem_bundle(&m.ca_bundle).len()
    }
    #[test]
    fn nothing_is_renewed_early_and_serving_renewals_keep_the_ca() {
        let m = Material::fresh(&cfg()).unwrap();
        assert_eq!(m.renewed(&cfg(), now()).unwrap(), None);
        // Near the serving certificate's end: new serving cert, same CA.
        let later = crate::certs::not_after(&m.serving.cert).unwrap() - 60;
        let r = m.renewed(&cfg(), later).unwrap().unwrap();
        assert_eq!(r.ca, m.ca);
        assert_eq!(r.ca_bundle, m.ca_bundle);
        assert_ne!(r.serving, m.serving);
        assert!(crate::certs::signed_by(&r.serving.cert, &r.ca.cert));
        assert_eq!(r.renewed(&cfg(), now()).unwrap(), None);
        secret_round_trip(&r);
    }

    /// The CA rotation never serves a certificate whose CA the bundle did not already hold, and
    /// waits `ca_propagation` between the two.
    #[test]
    fn ca_rotation_publishes_the_new_ca_before_serving_what_it_signed() {
        let m = Material::fresh(&cfg()).unwrap();
        let ca_end = crate::certs::not_after(&m.ca.cert).unwrap() - 60;
        // Phase one: new CA in front of the bundle, old CA kept, serving certificate unchanged.
        let p1 = m.renewed(&cfg(), ca_end).unwrap().unwrap();
        assert_ne!(p1.ca, m.ca);
        assert_eq!(p1.serving, m.serving, "no new certificate served yet");
        assert!(p1.ca_bundle.starts_with(&p1.ca.cert));
        assert_eq!(bundle_len(&p1), 2);
        assert!(crate::certs::signed_by(&p1.serving.cert, &m.ca.cert));
        assert!(!crate::certs::signed_by(&p1.serving.cert, &p1.ca.cert));
        secret_round_trip(&p1);
        // The new CA was made now: right after, nothing is due (the bundle is propagating).
        let published = now();
        assert_eq!(p1.renewed(&cfg(), published).unwrap(), None);
        assert_eq!(p1.renewed(&cfg(), published + 60).unwrap(), None);
        // Phase two, after the propagation time: re-issued by the new CA, both CAs still trusted.
        let p2 = p1.renewed(&cfg(), published + 121).unwrap().unwrap();
        assert_eq!(p2.ca, p1.ca);
        assert_eq!(p2.ca_bundle, p1.ca_bundle, "no second injection needed");
        assert!(crate::certs::signed_by(&p2.serving.cert, &p2.ca.cert));
        assert_eq!(p2.renewed(&cfg(), published + 121).unwrap(), None);
        secret_round_trip(&p2);
        // Expired CAs leave the bundle at the next renewal (in this test both CAs were made
        // within the same second, so at m's end only the next rotation's new CA is left).
        let old_end = crate::certs::not_after(&m.ca.cert).unwrap();
        let p3 = p2.renewed(&cfg(), old_end + 1).unwrap().unwrap();
        assert_eq!(bundle_len(&p3), 1);
        assert!(p3.ca_bundle.starts_with(&p3.ca.cert));
    }

    #[test]
    fn an_expired_serving_certificate_is_reissued_without_waiting() {
        let m = Material::fresh(&cfg()).unwrap();
        let ca_end = crate::certs::not_after(&m.ca.cert).unwrap() - 60;
        let p1 = m.renewed(&cfg(), ca_end).unwrap().unwrap();
        let dead = crate::certs::not_after(&p1.serving.cert).unwrap();
        let r = p1.renewed(&cfg(), dead).unwrap().unwrap();
        assert!(crate::certs::signed_by(&r.serving.cert, &p1.ca.cert));
    }

    #[test]
    fn bundles_split_and_rejoin() {
        let a = generate_ca("a", Duration::from_secs(3600), KeyAlgorithm::EcdsaP256).unwrap();
        let b = generate_ca("b", Duration::from_secs(3600), KeyAlgorithm::EcdsaP256).unwrap();
        let joined = bundle(&a.cert, &format!("junk\n{}{}", b.cert, a.cert), now());
        let parts = crate::certs::split_pem_bundle(&joined);
        assert_eq!(parts.len(), 2, "a once, then b; junk dropped");
        assert!(parts[0].split_whitespace().eq(a.cert.split_whitespace()));
        assert!(parts[1].split_whitespace().eq(b.cert.split_whitespace()));
        assert!(!crate::certs::signed_by(&b.cert, &a.cert));
        assert!(crate::certs::signed_by(&a.cert, &a.cert), "self-signed");
        assert!(!crate::certs::signed_by("not a pem", &a.cert));
    }
}
