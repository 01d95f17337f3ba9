//! Benchmark inputs, built from the examples the way the API server would send them.
//!
//! * `minimal`: `examples/minimal.yaml` as written by a user, on CREATE (the first mutation).
//! * `prefill-decode-create`: `examples/prefill-decode-multinode.yaml` as written, on CREATE:
//!   the first apply of a prefill/decode service (the whole expansion goes into the patch).
//! * `prefill-decode`: `examples/prefill-decode-multinode.yaml` after rendering, i.e. the stored,
//!   already-expanded object, on UPDATE (object and oldObject both present).
//! * `large`: `tests/fixtures/bench/large.yaml` (140 env vars per container, 24 LoRA adapters,
//!   a long start-up script, prefill/decode multi-node with router), rendered, on UPDATE.
#![allow(dead_code)]

use llmisvc::pipeline::Engine;
use serde_json::{Value, json};

pub struct Input {
    pub name: &'static str,
    /// The object the handler sees (`request.object`).
    pub object: Value,
    /// The AdmissionReview body for /mutate and /validate.
    pub review: Vec<u8>,
    /// A ConversionReview body (v1alpha2 -> v1alpha1) with the same object.
    pub conversion: Vec<u8>,
}

fn read_yaml(rel: &str) -> Value {
    let path = format!("{}/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn admission_review(object: &Value, update: bool) -> Value {
    let name = object["metadata"]["name"].clone();
    let namespace = object["metadata"]["namespace"].clone();
    let mut request = json!({
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "serving.kserve.io", "version": "v1alpha2", "kind": "LLMInferenceService"},
        "resource": {"group": "serving.kserve.io", "version": "v1alpha2", "resource": "llminferenceservices"},
        "requestKind": {"group": "serving.kserve.io", "version": "v1alpha2", "kind": "LLMInferenceService"},
        "requestResource": {"group": "serving.kserve.io", "version": "v1alpha2", "resource": "llminferenceservices"},
        "name": name,
        "namespace": namespace,
        "operation": if update { "UPDATE" } else { "CREATE" },
        "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated", "my-admin-group"]},
        "object": object,
        "oldObject": null,
        "dryRun": false,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": if update { "UpdateOptions" } else { "CreateOptions" }}
    });
    if update {
        request["oldObject"] = object.clone();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
}

pub fn conversion_review(object: &Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {
            "uid": "0000000-0000-0000-0000-000000000001",
            "desiredAPIVersion": "serving.kserve.io/v1alpha1",
            "objects": [object]
        }
    })
}

fn input(name: &'static str, object: Value, update: bool) -> Input {
    Input {
        name,
        review: serde_json::to_vec(&admission_review(&object, update)).unwrap(),
        conversion: serde_json::to_vec(&conversion_review(&object)).unwrap(),
        object,
    }
}

/// The three inputs, expanded with `engine` where the API server would hold the stored object.
pub fn inputs(engine: &Engine) -> Vec<Input> {
    let minimal = read_yaml("examples/minimal.yaml");
    let pd_raw = read_yaml("examples/prefill-decode-multinode.yaml");
    let pd = engine.mutate(&pd_raw).expect("prefill-decode renders");
    let large = engine
        .mutate(&read_yaml("tests/fixtures/bench/large.yaml"))
        .expect("large renders");
    vec![
        input("minimal", minimal, false),
        input("prefill-decode-create", pd_raw, false),
        input("prefill-decode", pd, true),
        input("large", large, true),
    ]
}
