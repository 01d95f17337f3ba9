//! Self-managed certificates for clusters without cert-manager.
//!
//! A CA and a serving certificate live in one Secret (`ca.crt`, `ca.key`, `tls.crt`,
//! `tls.key`). Every replica converges on that Secret: the first to find it missing creates it
//! (a losing `create` gets 409 and reads the winner's), renewals are `replace`s carrying the
//! Secret's resourceVersion (a losing replica gets 409 and adopts the winner's), so two
//! replicas never fight. The CA bundle is injected into our Mutating/ValidatingWebhookConfiguration
//! and both CRDs' conversion webhook. The serving certificate is renewed when a third of its
//! lifetime is left; the CA likewise, and during the overlap `ca.crt` holds the new and the old
//! CA so that certificates signed by either are trusted.

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

use super::{CertPem, KeyAlgorithm, ServingSpec, generate_ca, generate_serving, needs_renewal};
use crate::api::{GROUP, Kind};
use crate::server::tls::CertResolver;
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

fn first_pem(bundle: &str) -> String {
    match bundle.find("-----END CERTIFICATE-----") {
        Some(i) => bundle[..i + "-----END CERTIFICATE-----".len()].to_string() + "\n",
        None => bundle.to_string(),
    }
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
                cert: first_pem(&ca_bundle),
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
            let ca = generate_ca("llmisvc-ca", cfg.ca_validity, KeyAlgorithm::EcdsaP256)?;
            let serving = generate_serving(&ca, &cfg.serving_spec())?;
            // Keep trusting the old CA during the overlap.
            let ca_bundle = format!("{}{}", ca.cert, self.ca.cert);
            return Ok(Some(Material {
                ca_bundle,
                ca,
                serving,
            }));
        }
        if needs_renewal(&self.serving.cert, now, cfg.renew_fraction) {
            let serving = generate_serving(&self.ca, &cfg.serving_spec())?;
            // The old CA's overlap is over once its serving certs have been replaced.
            return Ok(Some(Material {
                ca_bundle: self.ca.cert.clone(),
                ca: self.ca.clone(),
                serving,
            }));
        }
        Ok(None)
    }
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
                if let Err(e) = resolver.replace(&m.serving.cert, &m.serving.key) {
                    tracing::warn!(error = %e, "new serving certificate does not load");
                    continue;
                }
                if let Err(e) = inject_ca_bundle(&client, &cfg, &m.ca_bundle).await {
                    tracing::warn!(error = %e, "could not inject the CA bundle");
                    continue;
                }
                tracing::info!("serving the rotated certificate");
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

    #[test]
    fn nothing_is_renewed_early_and_the_ca_rotation_keeps_the_old_ca_trusted() {
        let m = Material::fresh(&cfg()).unwrap();
        assert_eq!(m.renewed(&cfg(), now()).unwrap(), None);
        // Near the serving certificate's end: new serving cert, same CA.
        let later = super::super::not_after(&m.serving.cert).unwrap() - 60;
        let r = m.renewed(&cfg(), later).unwrap().unwrap();
        assert_eq!(r.ca, m.ca);
        assert_ne!(r.serving, m.serving);
        // Near the CA's end: new CA, bundle holds both.
        let ca_end = super::super::not_after(&m.ca.cert).unwrap() - 60;
        let r = m.renewed(&cfg(), ca_end).unwrap().unwrap();
        assert_ne!(r.ca, m.ca);
        assert!(r.ca_bundle.starts_with(&r.ca.cert) && r.ca_bundle.ends_with(&m.ca.cert));
        // The secret round-trips.
        let s = Secret {
            data: Some(r.data()),
            ..Default::default()
        };
        let back = Material::from_secret(&s).unwrap();
        assert_eq!(back, r);
    }
}
