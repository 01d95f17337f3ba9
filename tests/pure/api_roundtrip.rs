//! Every field of both versions deserialises into the typed API and serialises back unchanged,
//! unknown fields included; and every field the fixtures use is a real field of our schema (so
//! a misspelt Rust field cannot hide in the unknown-field catch-all).

use llmisvc::api::crd::{CrdOptions, crd_json};
use llmisvc::api::{Kind, v1alpha1, v1alpha2};
use serde_json::Value;

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// Keys of `doc` that are not in `schema` (except the deliberate `x-unknown-*` ones and
/// anything below a preserve-unknown-fields node).
fn unknown_keys(doc: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match doc {
        Value::Object(m) => {
            for (k, v) in m {
                if k.starts_with("x-unknown") || (path.is_empty() && k == "metadata") {
                    continue;
                }
                let sub = schema
                    .get("properties")
                    .and_then(|p| p.get(k))
                    .or_else(|| schema.get("additionalProperties"));
                match sub {
                    Some(s) => unknown_keys(v, s, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        Value::Array(a) => {
            if let Some(items) = schema.get("items") {
                for v in a {
                    unknown_keys(v, items, &format!("{path}[]"), out);
                }
            }
        }
        _ => {}
    }
}

fn schema_of(kind: Kind, version: &str) -> Value {
    let crd = crd_json(kind, &CrdOptions::default());
    crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == version)
        .unwrap()["schema"]["openAPIV3Schema"]
        .clone()
}

#[test]
fn v1alpha2_full_object_round_trips_without_loss() {
    let doc = load("tests/fixtures/v1alpha2-full.yaml");
    let typed: v1alpha2::LLMInferenceService = serde_json::from_value(doc.clone()).unwrap();
    // Spot checks that fields land in their typed homes, not in `extra`.
    let p = typed.spec.workload.parallelism.as_ref().unwrap();
    assert_eq!(
        (p.tensor, p.data, p.data_local, p.data_rpc_port, p.expert),
        (Some(4), Some(8), Some(2), Some(5555), Some(true))
    );
    assert_eq!(
        typed
            .spec
            .model
            .as_ref()
            .unwrap()
            .lora
            .as_ref()
            .unwrap()
            .adapters
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(typed.spec.extra.len(), 1, "only x-unknown-top is unknown");
    let pool = typed
        .spec
        .router
        .as_ref()
        .unwrap()
        .scheduler
        .as_ref()
        .unwrap()
        .pool
        .as_ref()
        .unwrap();
    assert_eq!(
        pool.spec
            .as_ref()
            .unwrap()
            .target_ports
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        typed
            .status
            .as_ref()
            .unwrap()
            .applied_configs
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(serde_json::to_value(&typed).unwrap(), doc);

    let mut unknown = Vec::new();
    unknown_keys(
        &doc,
        &schema_of(Kind::Service, "v1alpha2"),
        "",
        &mut unknown,
    );
    assert!(
        unknown.is_empty(),
        "fixture fields missing from the schema: {unknown:?}"
    );
}

#[test]
fn v1alpha1_full_object_round_trips_without_loss() {
    let doc = load("tests/fixtures/v1alpha1-full.yaml");
    let typed: v1alpha1::LLMInferenceService = serde_json::from_value(doc.clone()).unwrap();
    assert_eq!(
        typed.spec.model.as_ref().unwrap().criticality.as_deref(),
        Some("Critical")
    );
    let keda = typed
        .spec
        .workload
        .scaling
        .as_ref()
        .unwrap()
        .keda
        .as_ref()
        .unwrap();
    assert_eq!(keda.triggers.len(), 1);
    assert_eq!(keda.settings.idle_replica_count, Some(0));
    assert!(keda.settings.extra.is_empty());
    let pool = typed
        .spec
        .router
        .as_ref()
        .unwrap()
        .scheduler
        .as_ref()
        .unwrap()
        .pool
        .as_ref()
        .unwrap();
    assert_eq!(pool.spec.as_ref().unwrap().target_port_number, Some(8000));
    assert_eq!(typed.spec.extra.len(), 1);
    assert_eq!(serde_json::to_value(&typed).unwrap(), doc);

    let mut unknown = Vec::new();
    unknown_keys(
        &doc,
        &schema_of(Kind::Service, "v1alpha1"),
        "",
        &mut unknown,
    );
    assert!(
        unknown.is_empty(),
        "fixture fields missing from the schema: {unknown:?}"
    );
}

#[test]
fn configs_use_the_same_spec_in_both_versions() {
    for (version, file) in [
        ("v1alpha2", "tests/fixtures/v1alpha2-full.yaml"),
        ("v1alpha1", "tests/fixtures/v1alpha1-full.yaml"),
    ] {
        let mut doc = load(file);
        doc["kind"] = "LLMInferenceServiceConfig".into();
        doc.as_object_mut().unwrap().remove("status");
        let back = if version == "v1alpha2" {
            serde_json::to_value(
                serde_json::from_value::<v1alpha2::LLMInferenceServiceConfig>(doc.clone()).unwrap(),
            )
            .unwrap()
        } else {
            serde_json::to_value(
                serde_json::from_value::<v1alpha1::LLMInferenceServiceConfig>(doc.clone()).unwrap(),
            )
            .unwrap()
        };
        assert_eq!(back, doc);
    }
}

#[test]
fn v1alpha1_schema_has_no_v1alpha2_only_fields() {
    let s = schema_of(Kind::Service, "v1alpha1");
    assert!(
        s["properties"]["spec"]["properties"]
            .get("kvCacheOffloading")
            .is_none()
    );
    assert!(
        s["properties"]["spec"]["properties"]["model"]["properties"]
            .get("confidential")
            .is_none()
    );
    assert!(
        s["properties"]["status"]["properties"]
            .get("appliedConfigs")
            .is_none()
    );
    let s2 = schema_of(Kind::Service, "v1alpha2");
    assert!(
        s2["properties"]["spec"]["properties"]["model"]["properties"]
            .get("criticality")
            .is_none()
    );
}
