//! Issue 16 (errors as `String`): a mutation that fails on a field reaches the user as the API
//! server's own validation failures do, a 422 `Invalid` `Status` whose `details.causes` name
//! the Kubernetes field path (kubectl prints them), not as one line without the field.

use llmisvc::pipeline::{Engine, Refused};
use llmisvc::server::review::{Endpoint, admission, sample_admission_review};
use serde_json::{Value, json};

/// The `/mutate` answer for `spec`, decoded.
fn mutate_answer(spec: Value) -> (Value, llmisvc::server::review::ReviewInfo) {
    let mut review = sample_admission_review("u-err");
    review["request"]["object"]["spec"] = spec;
    let a = admission(
        Endpoint::Mutate,
        &serde_json::to_vec(&review).unwrap(),
        &Engine::builtin().unwrap(),
    );
    assert_eq!(a.status, 200);
    (serde_json::from_slice(&a.body).unwrap(), a.info)
}

/// (field, reason, message) of each cause.
fn causes(v: &Value) -> Vec<(String, String, String)> {
    let s = |c: &Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    v["response"]["status"]["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no details.causes: {v:#}"))
        .iter()
        .map(|c| (s(c, "field"), s(c, "reason"), s(c, "message")))
        .collect()
}

#[test]
fn a_step_error_is_a_422_with_its_field_as_cause() {
    // A wrong JSON type reaches the mutating webhook: the API server checks the CRD schema
    // only after mutating admission.
    let (v, info) = mutate_answer(json!({
        "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
        "parallelism": {"tensor": "four"}
    }));
    let r = &v["response"];
    assert_eq!(r["uid"], "u-err");
    assert_eq!(r["allowed"], false);
    assert!(r.get("patch").is_none(), "{v:#}");
    assert_eq!(r["status"]["code"], 422);
    assert_eq!(r["status"]["reason"], "Invalid");
    assert_eq!(r["status"]["details"]["kind"], "LLMInferenceService");
    assert_eq!(r["status"]["details"]["name"], "demo");
    assert_eq!(
        causes(&v),
        [(
            "spec.parallelism.tensor".to_string(),
            "FieldValueInvalid".to_string(),
            "Invalid value: \"four\": must be an integer, not a string".to_string()
        )]
    );
    assert_eq!(
        r["status"]["message"],
        "LLMInferenceService.serving.kserve.io \"demo\" is invalid: spec.parallelism.tensor: Invalid value: \"four\": must be an integer, not a string"
    );
    assert_eq!(info.result, "denied");
}

/// The path is the Kubernetes path in the object as it would be stored: the presets' env
/// entries merged in first, so the index is the entry's index after the merge.
#[test]
fn an_unsplittable_vllm_additional_args_names_the_env_entry_by_index() {
    let spec = json!({
        "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
        "template": {"containers": [{"name": "main", "env": [
            {"name": "OTHER", "value": "x"},
            {"name": "VLLM_ADDITIONAL_ARGS", "value": "--x '{"}
        ]}]}
    });
    let mut svc = sample_admission_review("x")["request"]["object"].clone();
    svc["spec"] = spec.clone();
    let merged = Engine::builtin()
        .unwrap()
        .mutate_until(&svc, llmisvc::pipeline::StopAfter::Presets)
        .unwrap();
    let index = merged["spec"]["template"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["name"] == "VLLM_ADDITIONAL_ARGS")
        .unwrap();
    let (v, _) = mutate_answer(spec);
    let c = causes(&v);
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(
        c[0].0,
        format!("spec.template.containers[0].env[{index}].value")
    );
    assert_eq!(c[0].1, "FieldValueInvalid");
    assert!(
        c[0].2.starts_with("Invalid value: VLLM_ADDITIONAL_ARGS: "),
        "{}",
        c[0].2
    );
}

/// The engine's error is typed: the CLI and the edge read the field from it, and its one-line
/// form keeps the path.
#[test]
fn engine_errors_are_typed_with_the_field() {
    let engine = Engine::builtin().unwrap();
    let mut svc = sample_admission_review("x")["request"]["object"].clone();
    svc["spec"]["parallelism"] = json!({"tensor": "four"});
    let err = engine.mutate(&svc).unwrap_err();
    assert!(matches!(err, Refused::Mutate(_)), "{err:?}");
    let fields = err.field_errors().expect("names a field");
    assert_eq!(fields[0].field, "spec.parallelism.tensor");
    // The value as written and validation's wording, as the API server shows a wrong type.
    assert_eq!(
        fields[0].to_string(),
        "spec.parallelism.tensor: Invalid value: \"four\": must be an integer, not a string"
    );
    assert_eq!(
        err.to_string(),
        "spec.parallelism.tensor: expected an integer"
    );

    // metadata of the wrong type is refused by preset resolution, naming the field.
    svc["spec"]["parallelism"] = json!({"tensor": 1});
    svc["metadata"]["name"] = json!(7);
    let err = engine.mutate(&svc).unwrap_err();
    assert!(matches!(err, Refused::Preset(_)), "{err:?}");
    assert_eq!(err.field_errors().unwrap()[0].field, "metadata.name");
}
