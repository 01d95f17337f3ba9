//! CustomResourceDefinitions generated from the Rust types.
//!
//! Embedded Kubernetes objects (pod specs) and other APIs' specs (HTTPRoute) are
//! `x-kubernetes-preserve-unknown-fields` objects, so each CRD stays well under the 256 KiB
//! annotation cap of client-side `kubectl apply`; the webhook checks them instead.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schemars::JsonSchema;
use serde_json::{Value, json};

use super::schema::structural_schema_for;
use super::{GROUP, Kind, STORAGE_VERSION, v1alpha1, v1alpha2};

/// Where the API server sends ConversionReviews.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConversionTarget {
    /// An in-cluster Service `namespace/name` (port 443).
    Service { namespace: String, name: String },
    /// A URL base such as `https://127.0.0.1:8443`.
    Url(String),
}

impl Default for ConversionTarget {
    fn default() -> Self {
        ConversionTarget::Service {
            namespace: "llmisvc-system".into(),
            name: "llmisvc-webhook".into(),
        }
    }
}

/// Options for CRD generation.
#[derive(Clone, Debug, Default)]
pub struct CrdOptions {
    pub conversion: ConversionTarget,
    /// PEM CA bundle the API server trusts for the conversion webhook.
    pub ca_bundle: Option<Vec<u8>>,
}

fn object_schema<S: JsonSchema, St: JsonSchema>(kind: Kind, version: &str) -> Value {
    let mut spec = structural_schema_for::<S>();
    let status = structural_schema_for::<St>();
    if let Some(obj) = spec.as_object_mut() {
        obj.insert(
            "description".into(),
            Value::String(match kind {
                Kind::Service => "Desired state of the LLM inference service.".into(),
                Kind::Config => "A preset: a partial LLMInferenceService spec that services pick up through baseRefs and well-known names.".into(),
            }),
        );
    }
    json!({
        "type": "object",
        "description": match kind {
            Kind::Service => format!("LLMInferenceService ({version}) deploys a large language model as an OpenAI-compatible endpoint."),
            Kind::Config => format!("LLMInferenceServiceConfig ({version}) is a preset for LLMInferenceServices."),
        },
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object."},
            "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        }
    })
}

fn version_entry(kind: Kind, version: &str) -> Value {
    let schema = match (kind, version) {
        (Kind::Service, "v1alpha1") => object_schema::<
            v1alpha1::LLMInferenceServiceSpec,
            v1alpha1::LLMInferenceServiceStatus,
        >(kind, version),
        (Kind::Service, _) => object_schema::<
            v1alpha2::LLMInferenceServiceSpec,
            v1alpha2::LLMInferenceServiceStatus,
        >(kind, version),
        (Kind::Config, "v1alpha1") => object_schema::<
            v1alpha1::LLMInferenceServiceSpec,
            v1alpha1::LLMInferenceServiceConfigStatus,
        >(kind, version),
        (Kind::Config, _) => object_schema::<
            v1alpha2::LLMInferenceServiceSpec,
            v1alpha2::LLMInferenceServiceConfigStatus,
        >(kind, version),
    };
    let mut schema = schema;
    trim_descriptions(&mut schema);
    let mut entry = json!({
        "name": version,
        "served": true,
        "storage": version == STORAGE_VERSION,
        "schema": {"openAPIV3Schema": schema},
        "subresources": {"status": {}},
    });
    if kind == Kind::Service {
        entry["additionalPrinterColumns"] = json!([
            {"name": "URL", "type": "string", "jsonPath": ".status.url"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
            {"name": "Reason", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].reason"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ]);
    }
    entry
}

/// Long upstream descriptions (k8s-openapi's HPA behavior, PVC spec) are cut to their first
/// sentence: the CRD must stay small, and `kubectl explain` still shows the gist.
fn trim_descriptions(v: &mut Value) {
    const MAX: usize = 200;
    match v {
        Value::Object(m) => {
            if let Some(Value::String(d)) = m.get_mut("description")
                && d.len() > MAX
            {
                let cut = d
                    .find(". ")
                    .map(|i| i + 1)
                    .filter(|&i| i <= MAX)
                    .unwrap_or_else(|| {
                        let mut i = MAX;
                        while !d.is_char_boundary(i) {
                            i -= 1;
                        }
                        i
                    });
                d.truncate(cut);
            }
            for (_, child) in m.iter_mut() {
                trim_descriptions(child);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(trim_descriptions),
        _ => {}
    }
}

/// The CRD of `kind` with both versions, as JSON.
pub fn crd_json(kind: Kind, opts: &CrdOptions) -> Value {
    let (singular, short) = match kind {
        Kind::Service => ("llminferenceservice", "llmisvc"),
        Kind::Config => ("llminferenceserviceconfig", "llmisvcconfig"),
    };
    let mut client_config = match &opts.conversion {
        ConversionTarget::Service { namespace, name } => json!({
            "service": {"namespace": namespace, "name": name, "path": "/convert", "port": 443}
        }),
        ConversionTarget::Url(base) => json!({
            "url": format!("{}/convert", base.trim_end_matches('/'))
        }),
    };
    if let Some(ca) = &opts.ca_bundle {
        client_config["caBundle"] = Value::String(base64_encode(ca));
    }
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{}.{}", kind.plural(), GROUP),
            "labels": {"app.kubernetes.io/part-of": "llmisvc"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind.name(),
                "listKind": format!("{}List", kind.name()),
                "plural": kind.plural(),
                "singular": singular,
                "shortNames": [short],
            },
            "scope": "Namespaced",
            "versions": [version_entry(kind, "v1alpha1"), version_entry(kind, "v1alpha2")],
            "conversion": {
                "strategy": "Webhook",
                "webhook": {
                    "conversionReviewVersions": ["v1"],
                    "clientConfig": client_config,
                }
            }
        }
    })
}

/// The CRD of `kind`, typed (which also checks it is a well-formed CRD).
pub fn crd(kind: Kind, opts: &CrdOptions) -> Result<CustomResourceDefinition, serde_json::Error> {
    serde_json::from_value(crd_json(kind, opts))
}

/// Both CRDs as a YAML stream (`---` separated), the output of `llmisvc crds`.
pub fn crds_yaml(opts: &CrdOptions) -> Result<String, serde_norway::Error> {
    let mut out = String::new();
    for kind in Kind::ALL {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd_json(kind, opts))?);
    }
    Ok(out)
}

/// File name of a kind's CRD in `crds/`.
pub fn file_name(kind: Kind) -> String {
    format!("{}_{}.yaml", GROUP, kind.plural())
}

/// One CRD as YAML (the content of `crds/<file_name>`).
pub fn crd_yaml(kind: Kind, opts: &CrdOptions) -> Result<String, serde_norway::Error> {
    serde_norway::to_string(&crd_json(kind, opts))
}

/// Standard base64 (the encoding of `caBundle`).
pub fn base64_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(i.as_bytes()), o);
        }
    }

    #[test]
    fn crds_are_valid_and_small_enough_for_client_side_apply() {
        for kind in Kind::ALL {
            let typed = crd(kind, &CrdOptions::default()).expect("well-formed CRD");
            assert_eq!(typed.spec.versions.len(), 2);
            let size = serde_json::to_vec(&crd_json(kind, &CrdOptions::default()))
                .unwrap()
                .len();
            assert!(size < 200 * 1024, "{} CRD is {size} bytes", kind.name());
        }
    }

    #[test]
    fn storage_version_is_v1alpha2_and_conversion_points_at_convert() {
        let v = crd_json(
            Kind::Service,
            &CrdOptions {
                conversion: ConversionTarget::Url("https://127.0.0.1:9443/".into()),
                ca_bundle: Some(b"PEM".to_vec()),
            },
        );
        let versions = v["spec"]["versions"].as_array().unwrap();
        assert_eq!(versions.iter().filter(|v| v["storage"] == true).count(), 1);
        assert_eq!(versions[1]["name"], "v1alpha2");
        assert_eq!(versions[1]["storage"], true);
        let cc = &v["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(cc["url"], "https://127.0.0.1:9443/convert");
        assert_eq!(cc["caBundle"], "UEVN");
    }
}
