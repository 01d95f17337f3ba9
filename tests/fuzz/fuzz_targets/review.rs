//! Fuzzes the whole pure request path: AdmissionReview / ConversionReview decoding, then
//! mutation, validation and conversion of whatever object the bytes hold.
//!
//! Checks, beyond "no panic": every answer is a well-formed HTTP answer (200 with a JSON
//! review, or 400 with a text reason); a JSON object given as the reviewed object mutates
//! idempotently (mutating the result again changes nothing), and converts v1alpha2 ->
//! v1alpha1 -> v1alpha2 without loss.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use llmisvc::pipeline::Engine;
use llmisvc::server::review::{self, Answer, Endpoint};
use serde_json::{Value, json};

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(|| Engine::builtin().expect("shipped presets load"))
}

fn well_formed(a: &Answer, what: &str) {
    match a.status {
        200 => {
            let v: Value = serde_json::from_slice(&a.body)
                .unwrap_or_else(|e| panic!("{what}: 200 with a body that is not JSON: {e}"));
            assert!(v.get("response").is_some(), "{what}: no response in {v}");
        }
        400 => assert!(
            std::str::from_utf8(&a.body).is_ok_and(|s| !s.is_empty()),
            "{what}: 400 without a reason"
        ),
        s => panic!("{what}: HTTP {s}"),
    }
}

fn review_of(object: &Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz",
            "kind": {"group": "serving.kserve.io", "version": "v1alpha2", "kind": "LLMInferenceService"},
            "operation": "UPDATE",
            "namespace": "fuzz",
            "object": object,
            "oldObject": object,
        }
    }))
    .expect("serialising a Value")
}

fuzz_target!(|data: &[u8]| {
    let e = engine();
    // The bytes as a request body.
    for ep in [Endpoint::Mutate, Endpoint::Validate] {
        well_formed(&review::admission(ep, data, e), ep.name());
    }
    well_formed(&review::conversion(data, e), "convert");

    // The bytes as the reviewed object.
    let Ok(mut obj @ Value::Object(_)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    obj["apiVersion"] = json!("serving.kserve.io/v1alpha2");
    obj["kind"] = json!("LLMInferenceService");
    let body = review_of(&obj);
    for ep in [Endpoint::Mutate, Endpoint::Validate] {
        well_formed(&review::admission(ep, &body, e), ep.name());
    }
    if let Ok(once) = e.mutate(&obj) {
        let twice = e
            .mutate(&once)
            .unwrap_or_else(|err| panic!("mutating the mutated object failed: {err}"));
        assert_eq!(once, twice, "mutation is not idempotent");
    }
    if let Ok(down) = e.convert(&obj, "serving.kserve.io/v1alpha1")
        && let Ok(up) = e.convert(&down, "serving.kserve.io/v1alpha2")
    {
        assert_eq!(up, obj, "v1alpha2 -> v1alpha1 -> v1alpha2 lost something");
    }
});
