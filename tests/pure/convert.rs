//! Conversion v1alpha1 <-> v1alpha2: round-trip properties, one table case per mapped field,
//! malformed input, and the "v1alpha1 client edits and writes back" scenario.

use llmisvc::convert::{ConvertError, convert};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const V1: &str = "serving.kserve.io/v1alpha1";
const V2: &str = "serving.kserve.io/v1alpha2";
const STASH_ON_V1: &str = "llmisvc.serving.kserve.io/v1alpha2-fields";
const STASH_ON_V2: &str = "llmisvc.serving.kserve.io/v1alpha1-fields";
const MODEL_CRIT: &str = "internal.serving.kserve.io/model-criticality";
const LORA_CRIT: &str = "internal.serving.kserve.io/lora-criticalities";

fn up(v: &Value) -> Value {
    convert(v, V2).unwrap_or_else(|e| panic!("up failed: {e}"))
}

fn down(v: &Value) -> Value {
    convert(v, V1).unwrap_or_else(|e| panic!("down failed: {e}"))
}

fn svc(api: &str, spec: Value) -> Value {
    json!({"apiVersion": api, "kind": "LLMInferenceService", "metadata": {"name": "m", "namespace": "ns"}, "spec": spec})
}

fn with_annotations(mut v: Value, ann: Value) -> Value {
    v["metadata"]["annotations"] = ann;
    v
}

fn stash_of(v: &Value, key: &str) -> Value {
    let s = v["metadata"]["annotations"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"));
    serde_json::from_str(s).unwrap()
}

// ------------------------------------------------------------------------------------------
// Table tests: one case per mapped field, exact output.
// ------------------------------------------------------------------------------------------

#[test]
fn same_version_is_unchanged() {
    let v = svc(
        V1,
        json!({"model": {"uri": "hf://a", "criticality": "Critical"}}),
    );
    assert_eq!(convert(&v, V1).unwrap(), v);
    let v = svc(V2, json!({"kvCacheOffloading": {"cpu": "1Gi"}}));
    assert_eq!(convert(&v, V2).unwrap(), v);
}

#[test]
fn model_criticality_goes_to_kserve_annotation() {
    let v1 = svc(
        V1,
        json!({"model": {"uri": "hf://a", "criticality": "Critical"}}),
    );
    let v2 = with_annotations(
        svc(V2, json!({"model": {"uri": "hf://a"}})),
        json!({MODEL_CRIT: "Critical"}),
    );
    assert_eq!(up(&v1), v2);
    assert_eq!(down(&v2), v1);
}

#[test]
fn lora_criticalities_use_kserve_format() {
    let adapters: Vec<Value> = (0..11)
        .map(|i| {
            if i == 0 || i == 2 || i == 10 {
                json!({"uri": format!("hf://a{i}"), "criticality": if i == 2 { "Sheddable" } else { "Critical" }})
            } else {
                json!({"uri": format!("hf://a{i}")})
            }
        })
        .collect();
    let v1 = svc(
        V1,
        json!({"model": {"uri": "hf://m", "lora": {"adapters": adapters}}}),
    );
    let out = up(&v1);
    // Go's encoding/json sorts map[int]string keys as strings.
    assert_eq!(
        out["metadata"]["annotations"][LORA_CRIT],
        json!(r#"{"0":"Critical","10":"Critical","2":"Sheddable"}"#)
    );
    assert!(
        out["spec"]["model"]["lora"]["adapters"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a.get("criticality").is_none())
    );
    assert_eq!(down(&out), v1);
}

#[test]
fn kserve_written_lora_annotation_is_restored() {
    let v2 = with_annotations(
        svc(
            V2,
            json!({"model": {"uri": "hf://m", "lora": {"adapters": [{"uri": "a"}, {"uri": "b"}]}}}),
        ),
        json!({LORA_CRIT: r#"{"1":"Standard"}"#, MODEL_CRIT: "Sheddable"}),
    );
    assert_eq!(
        down(&v2),
        svc(
            V1,
            json!({"model": {"uri": "hf://m", "lora": {"adapters": [{"uri": "a"}, {"uri": "b", "criticality": "Standard"}]}, "criticality": "Sheddable"}})
        )
    );
    assert_eq!(up(&down(&v2)), v2);
}

#[test]
fn lora_annotation_pointing_nowhere_is_stashed_not_lost() {
    let v2 = with_annotations(
        svc(
            V2,
            json!({"model": {"uri": "hf://m", "lora": {"adapters": [{"uri": "a"}]}}}),
        ),
        json!({LORA_CRIT: r#"{"5":"Standard"}"#}),
    );
    let v1 = down(&v2);
    assert_eq!(
        stash_of(&v1, STASH_ON_V1),
        json!({"/metadata/annotations/internal.serving.kserve.io~1lora-criticalities": r#"{"5":"Standard"}"#})
    );
    assert_eq!(
        v1["spec"]["model"]["lora"]["adapters"],
        json!([{"uri": "a"}])
    );
    assert_eq!(up(&v1), v2);
}

#[test]
fn criticality_kserve_cannot_carry_is_stashed_on_v1alpha2() {
    let v1 = svc(V1, json!({"model": {"uri": "u", "criticality": ""}}));
    let v2 = up(&v1);
    assert_eq!(v2["spec"], json!({"model": {"uri": "u"}}));
    assert_eq!(
        stash_of(&v2, STASH_ON_V2),
        json!({"/spec/model/criticality": ""})
    );
    assert!(v2["metadata"]["annotations"].get(MODEL_CRIT).is_none());
    assert_eq!(down(&v2), v1);
}

fn v2_only_case(spec_v2: Value, spec_v1: Value, stash: Value) {
    let v2 = svc(V2, spec_v2);
    let v1 = with_annotations(
        svc(V1, spec_v1),
        json!({STASH_ON_V1: serde_json::to_string(&stash).unwrap()}),
    );
    assert_eq!(down(&v2), v1);
    assert_eq!(stash_of(&down(&v2), STASH_ON_V1), stash);
    assert_eq!(up(&v1), v2);
}

#[test]
fn model_confidential_is_stashed() {
    v2_only_case(
        json!({"model": {"uri": "hf://a", "confidential": {"enabled": true, "resourceId": "k"}}}),
        json!({"model": {"uri": "hf://a"}}),
        json!({"/spec/model/confidential": {"enabled": true, "resourceId": "k"}}),
    );
}

#[test]
fn adapter_confidential_is_stashed() {
    v2_only_case(
        json!({"model": {"uri": "hf://a", "lora": {"adapters": [{"uri": "x", "confidential": {"enabled": false}}]}}}),
        json!({"model": {"uri": "hf://a", "lora": {"adapters": [{"uri": "x"}]}}}),
        json!({
            "/spec/model/lora/adapters/0/confidential": {"enabled": false},
            "match": {"/spec/model/lora/adapters/0": {"uri": "x"}}
        }),
    );
}

#[test]
fn kv_cache_offloading_is_stashed() {
    v2_only_case(
        json!({"replicas": 1, "kvCacheOffloading": {"cpu": "10Gi", "evictionPolicy": "arc"}}),
        json!({"replicas": 1}),
        json!({"/spec/kvCacheOffloading": {"cpu": "10Gi", "evictionPolicy": "arc"}}),
    );
}

#[test]
fn prefill_kv_cache_offloading_is_stashed() {
    v2_only_case(
        json!({"prefill": {"replicas": 2, "kvCacheOffloading": {"cpu": "1Gi"}}}),
        json!({"prefill": {"replicas": 2}}),
        json!({"/spec/prefill/kvCacheOffloading": {"cpu": "1Gi"}}),
    );
}

fn pool(spec: Value) -> Value {
    json!({"router": {"scheduler": {"pool": {"spec": spec}}}})
}

fn pool_case(v1: Value, v2: Value) {
    assert_eq!(up(&svc(V1, pool(v1.clone()))), svc(V2, pool(v2.clone())));
    assert_eq!(down(&svc(V2, pool(v2))), svc(V1, pool(v1)));
}

#[test]
fn pool_selector() {
    pool_case(
        json!({"selector": {"app": "x"}}),
        json!({"selector": {"matchLabels": {"app": "x"}}}),
    );
}

#[test]
fn pool_target_port() {
    pool_case(
        json!({"targetPortNumber": 8000}),
        json!({"targetPorts": [{"number": 8000}]}),
    );
}

#[test]
fn pool_endpoint_picker_ref() {
    pool_case(
        json!({"extensionRef": {"group": "", "kind": "Service", "name": "epp", "portNumber": 9002, "failureMode": "FailClose"}}),
        json!({"endpointPickerRef": {"group": "", "kind": "Service", "name": "epp", "port": {"number": 9002}, "failureMode": "FailClose"}}),
    );
}

#[test]
fn pool_partial_ref_and_unknown_fields() {
    pool_case(
        json!({"extensionRef": {"name": "epp", "x-ref": 1}, "x-pool": true}),
        json!({"endpointPickerRef": {"name": "epp", "x-ref": 1}, "x-pool": true}),
    );
    pool_case(json!({}), json!({}));
}

#[test]
fn pool_empty_target_ports_round_trip() {
    let v2 = svc(
        V2,
        pool(json!({"targetPorts": [], "selector": {"matchLabels": {"a": "b"}}})),
    );
    let v1 = down(&v2);
    assert_eq!(
        v1["spec"]["router"]["scheduler"]["pool"]["spec"],
        json!({"selector": {"a": "b"}})
    );
    assert_eq!(
        stash_of(&v1, STASH_ON_V1),
        json!({"/spec/router/scheduler/pool/spec": {"targetPorts": [], "selector": {"matchLabels": {"a": "b"}}}})
    );
    assert_eq!(up(&v1), v2);
}

#[test]
fn pool_app_protocol_and_more_ports_round_trip() {
    let spec = json!({"targetPorts": [{"number": 8000}, {"number": 8001}], "appProtocol": "kubernetes.io/h2c"});
    let v2 = svc(V2, pool(spec.clone()));
    let v1 = down(&v2);
    assert_eq!(
        v1["spec"]["router"]["scheduler"]["pool"]["spec"],
        json!({"targetPortNumber": 8000})
    );
    assert_eq!(up(&v1), v2);

    // A v1alpha1 client changes the port: the change wins, the rest is kept.
    let mut edited = v1.clone();
    edited["spec"]["router"]["scheduler"]["pool"]["spec"]["targetPortNumber"] = json!(9000);
    assert_eq!(
        up(&edited)["spec"]["router"]["scheduler"]["pool"]["spec"],
        json!({"targetPorts": [{"number": 9000}, {"number": 8001}], "appProtocol": "kubernetes.io/h2c"})
    );
}

fn status_case(kind: &str, v2_status: Value, v1_status: Value, stash: Value) {
    let v2 =
        json!({"apiVersion": V2, "kind": kind, "metadata": {"name": "m"}, "status": v2_status});
    let mut v1 =
        json!({"apiVersion": V1, "kind": kind, "metadata": {"name": "m"}, "status": v1_status});
    if stash != json!({}) {
        v1["metadata"]["annotations"] = json!({STASH_ON_V1: stash.to_string()});
    }
    assert_eq!(down(&v2), v1);
    assert_eq!(up(&v1), v2);
}

#[test]
fn status_common_fields_copy() {
    let common = json!({
        "url": "http://x", "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": "True"}],
        "annotations": {"a": "b"},
        "address": {"url": "http://x"},
        "addresses": [{"name": "n", "url": "http://x"}],
        "router": {"gateways": [{"group": "g", "kind": "Gateway", "name": "gw"}], "scheduler": {"service": {"group": "", "kind": "Service", "name": "s"}}}
    });
    status_case("LLMInferenceService", common.clone(), common, json!({}));
}

#[test]
fn status_empty_survives() {
    status_case("LLMInferenceService", json!({}), json!({}), json!({}));
    status_case("LLMInferenceServiceConfig", json!({}), json!({}), json!({}));
}

#[test]
fn status_applied_configs() {
    status_case(
        "LLMInferenceService",
        json!({"appliedConfigs": [{"name": "p", "namespace": "n", "source": "Preset"}]}),
        json!({}),
        json!({"/status/appliedConfigs": [{"name": "p", "namespace": "n", "source": "Preset"}]}),
    );
}

#[test]
fn status_workloads() {
    status_case(
        "LLMInferenceService",
        json!({"workloads": {"primary": {"kind": "Deployment", "name": "d"}}}),
        json!({}),
        json!({"/status/workloads": {"primary": {"kind": "Deployment", "name": "d"}}}),
    );
}

#[test]
fn status_router_group() {
    status_case(
        "LLMInferenceService",
        json!({"router": {"group": {"name": "g"}}}),
        json!({"router": {}}),
        json!({"/status/router/group": {"name": "g"}}),
    );
}

#[test]
fn status_address_origin_and_models() {
    status_case(
        "LLMInferenceService",
        json!({"addresses": [{"url": "a", "origin": {"group": "g", "kind": "Gateway", "name": "gw"}}, {"url": "b", "models": [{"name": "m"}]}]}),
        json!({"addresses": [{"url": "a"}, {"url": "b"}]}),
        json!({
            "/status/addresses/0/origin": {"group": "g", "kind": "Gateway", "name": "gw"},
            "/status/addresses/1/models": [{"name": "m"}],
            "match": {"/status/addresses/0": {"url": "a"}, "/status/addresses/1": {"url": "b"}}
        }),
    );
}

#[test]
fn config_status_referenced_by() {
    status_case(
        "LLMInferenceServiceConfig",
        json!({"observedGeneration": 1, "referencedBy": [{"name": "s", "namespace": "n"}]}),
        json!({"observedGeneration": 1}),
        json!({"/status/referencedBy": [{"name": "s", "namespace": "n"}]}),
    );
}

#[test]
fn config_kind_converts_spec() {
    let v1 = json!({"apiVersion": V1, "kind": "LLMInferenceServiceConfig", "metadata": {"name": "c"}, "spec": {"model": {"uri": "u", "criticality": "Standard"}}});
    let v2 = json!({"apiVersion": V2, "kind": "LLMInferenceServiceConfig", "metadata": {"name": "c", "annotations": {MODEL_CRIT: "Standard"}}, "spec": {"model": {"uri": "u"}}});
    assert_eq!(up(&v1), v2);
    assert_eq!(down(&v2), v1);
}

#[test]
fn no_empty_fields_are_added() {
    let v2 = svc(
        V2,
        json!({"model": {"uri": "u"}, "prefill": {}, "router": {"scheduler": {}}}),
    );
    let v1 = down(&v2);
    assert_eq!(
        v1,
        svc(
            V1,
            json!({"model": {"uri": "u"}, "prefill": {}, "router": {"scheduler": {}}})
        )
    );
    assert!(v1["metadata"].get("annotations").is_none());
    assert_eq!(up(&v1), v2);
}

#[test]
fn empty_annotation_map_is_given_back() {
    let v2 = with_annotations(
        svc(V2, json!({"kvCacheOffloading": {"cpu": "1"}})),
        json!({}),
    );
    let v1 = down(&v2);
    assert_eq!(up(&v1), v2);
    let v1 = with_annotations(
        svc(
            V1,
            json!({"model": {"uri": "u", "criticality": "Critical"}}),
        ),
        json!({}),
    );
    assert_eq!(down(&up(&v1)), v1);
}

#[test]
fn v1alpha1_client_edit_keeps_v1alpha2_fields() {
    let v2 = svc(
        V2,
        json!({"replicas": 1, "kvCacheOffloading": {"cpu": "100Gi", "secondary": [{"fileSystem": {"emptyDir": {"size": "1Ti"}}}]}}),
    );
    let mut v1 = down(&v2);
    assert!(v1["spec"].get("kvCacheOffloading").is_none());
    v1["spec"]["replicas"] = json!(5);
    let back = up(&v1);
    assert_eq!(back["spec"]["replicas"], json!(5));
    assert_eq!(
        back["spec"]["kvCacheOffloading"],
        v2["spec"]["kvCacheOffloading"]
    );
    assert!(back["metadata"].get("annotations").is_none());
}

#[test]
fn v1alpha1_client_removing_an_adapter_keeps_the_others_confidential() {
    let v2 = svc(
        V2,
        json!({"model": {"uri": "u", "lora": {"adapters": [
            {"name": "a", "uri": "hf://a", "confidential": {"enabled": true, "resourceId": "ka"}},
            {"name": "b", "uri": "hf://b", "confidential": {"enabled": true, "resourceId": "kb"}}
        ]}}}),
    );
    let mut v1 = down(&v2);
    let adapters = v1["spec"]["model"]["lora"]["adapters"]
        .as_array_mut()
        .unwrap();
    adapters.remove(0);
    let back = up(&v1);
    assert_eq!(
        back["spec"]["model"]["lora"]["adapters"],
        json!([{"name": "b", "uri": "hf://b", "confidential": {"enabled": true, "resourceId": "kb"}}])
    );
    assert!(back["metadata"].get("annotations").is_none());
}

#[test]
fn fixtures_round_trip() {
    for (file, api) in [("v1alpha1-full.yaml", V1), ("v1alpha2-full.yaml", V2)] {
        let text = std::fs::read_to_string(format!("tests/fixtures/{file}")).unwrap();
        let obj: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(obj["apiVersion"], json!(api));
        let (there, back) = if api == V1 {
            let t = up(&obj);
            (t.clone(), down(&t))
        } else {
            let t = down(&obj);
            (t.clone(), up(&t))
        };
        assert_ne!(there["apiVersion"], obj["apiVersion"]);
        assert_eq!(back, obj, "{file}");
    }
}

#[test]
fn exact_fixture_pair() {
    let read = |f: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(format!("tests/fixtures/convert/{f}")).unwrap(),
        )
        .unwrap()
    };
    let v1 = read("service-v1alpha1.json");
    let v2 = read("service-v1alpha2.json");
    assert_eq!(up(&v1), v2);
    assert_eq!(down(&v2), v1);
    // Key order of the converted pool spec follows the input.
    assert_eq!(
        serde_json::to_string(&up(&v1)).unwrap(),
        serde_json::to_string(&v2).unwrap()
    );
}

// ------------------------------------------------------------------------------------------
// Malformed input: an error with a clear message, never a panic.
// ------------------------------------------------------------------------------------------

#[test]
fn malformed_input_is_an_error() {
    let good = svc(V1, json!({}));
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!("text"), V2, "not a JSON object"),
        (json!({"kind": "LLMInferenceService"}), V2, "no apiVersion"),
        (
            json!({"apiVersion": "serving.kserve.io/v1beta1", "kind": "LLMInferenceService"}),
            V2,
            "unsupported apiVersion \"serving.kserve.io/v1beta1\"",
        ),
        (
            json!({"apiVersion": "other.io/v1alpha1", "kind": "LLMInferenceService"}),
            V2,
            "unsupported apiVersion",
        ),
        (
            json!({"apiVersion": 3, "kind": "LLMInferenceService"}),
            V2,
            "apiVersion must be a string",
        ),
        (
            good.clone(),
            "serving.kserve.io/v1",
            "unsupported desired apiVersion",
        ),
        (good.clone(), "", "no desired apiVersion"),
        (
            json!({"apiVersion": V1, "kind": "InferenceService"}),
            V2,
            "unsupported kind \"InferenceService\"",
        ),
        (json!({"apiVersion": V1}), V2, "no kind"),
        (
            json!({"apiVersion": V1, "kind": "LLMInferenceService", "spec": []}),
            V2,
            "spec must be an object, got a list",
        ),
        (
            json!({"apiVersion": V1, "kind": "LLMInferenceService", "spec": "x"}),
            V2,
            "spec must be an object, got a string",
        ),
        (
            json!({"apiVersion": V2, "kind": "LLMInferenceService", "status": 1}),
            V1,
            "status must be an object, got an integer",
        ),
        (
            json!({"apiVersion": V2, "kind": "LLMInferenceService", "metadata": []}),
            V1,
            "metadata must be an object",
        ),
        (
            json!({"apiVersion": V2, "kind": "LLMInferenceService", "metadata": {"annotations": "x"}}),
            V1,
            "metadata.annotations must be an object",
        ),
    ];
    for (obj, desired, msg) in cases {
        let err: ConvertError = convert(&obj, desired).expect_err(&obj.to_string());
        let text = err.to_string();
        assert!(
            text.contains(msg),
            "{obj} -> {desired}: {text:?} lacks {msg:?}"
        );
        assert!(!text.contains('\n'));
    }
}

/// An annotation of the object's own under one of the stash keys, whatever its value, comes
/// back from both round trips exactly as it was (it used to come back rewritten as a JSON
/// object), also when the conversion has something of its own to stash under that key.
#[test]
fn own_values_under_the_stash_keys_round_trip_unchanged() {
    let values = [
        "plain",
        "not json",
        "",
        "{}",
        "[1]",
        r#"{"a":1}"#,
        r#"{"/a":1,"other":2}"#,
    ];
    // Specs with nothing to stash, and with something each way needs to stash.
    let specs = |api: &str| {
        vec![
            json!({"model": {"uri": "hf://a/b"}}),
            if api == V1 {
                json!({"model": {"uri": "hf://a/b", "criticality": 7}})
            } else {
                json!({"model": {"uri": "hf://a/b"}, "kvCacheOffloading": {"cpu": "1Gi"}})
            },
        ]
    };
    for api in [V1, V2] {
        for key in [STASH_ON_V1, STASH_ON_V2] {
            for value in values {
                for spec in specs(api) {
                    let obj = with_annotations(
                        svc(api, spec.clone()),
                        json!({ key: value, "team": "ml" }),
                    );
                    let (there, back) = if api == V1 {
                        let t = up(&obj);
                        (t.clone(), down(&t))
                    } else {
                        let t = down(&obj);
                        (t.clone(), up(&t))
                    };
                    assert_eq!(back, obj, "{api} {key}={value:?} spec {spec}, via {there}");
                    // And the other way round from the converted object.
                    let again = if api == V1 { up(&back) } else { down(&back) };
                    assert_eq!(again, there, "{api} {key}={value:?} spec {spec}");
                }
            }
        }
    }
}

/// Issue 19: `metadata: null` comes back as it was, also when the other version needs the
/// stash annotations to carry fields; absent `metadata` too when nothing is stashed (with a
/// stash it comes back as `{}`: see the module docs of `convert`).
#[test]
fn null_or_absent_metadata_round_trips() {
    for api in [V1, V2] {
        let specs = [
            json!({"model": {"uri": "hf://a/b"}}),
            if api == V1 {
                json!({"model": {"uri": "hf://a/b", "criticality": "Critical"}})
            } else {
                json!({"model": {"uri": "hf://a/b"}, "kvCacheOffloading": {"cpu": "1Gi"}})
            },
        ];
        for spec in specs {
            let stashes = spec["model"].get("criticality").is_some()
                || spec.get("kvCacheOffloading").is_some();
            for absent in [false, true] {
                if absent && stashes {
                    continue;
                }
                let mut obj = svc(api, spec.clone());
                if absent {
                    obj.as_object_mut().unwrap().remove("metadata");
                } else {
                    obj["metadata"] = Value::Null;
                }
                let (there, back) = if api == V1 {
                    let t = up(&obj);
                    (t.clone(), down(&t))
                } else {
                    let t = down(&obj);
                    (t.clone(), up(&t))
                };
                assert_eq!(back, obj, "{api} absent={absent} {spec}, via {there}");
            }
        }
    }
}

#[test]
fn odd_shapes_do_not_panic_and_round_trip() {
    let odd = [
        json!({"model": "not-an-object"}),
        json!({"model": {"lora": {"adapters": "x"}}}),
        json!({"model": {"lora": {"adapters": [1, null, {"criticality": 7}]}, "criticality": ""}}),
        json!({"router": {"scheduler": {"pool": {"spec": "x"}}}}),
        json!({"router": {"scheduler": {"pool": {"spec": {"selector": 1, "targetPortNumber": "a", "extensionRef": []}}}}}),
        json!({"router": {"scheduler": {"pool": {"spec": {"targetPorts": [{"number": 1}], "extensionRef": {}}}}}}),
        json!({"prefill": null, "kvCacheOffloading": {"cpu": "1"}}),
    ];
    for spec in odd {
        for api in [V1, V2] {
            let obj = svc(api, spec.clone());
            let (there, back) = if api == V1 {
                let t = up(&obj);
                (t.clone(), down(&t))
            } else {
                let t = down(&obj);
                (t.clone(), up(&t))
            };
            assert_ne!(there["apiVersion"], obj["apiVersion"]);
            assert_eq!(back, obj, "{spec} from {api}");
        }
    }
}

// ------------------------------------------------------------------------------------------
// Property tests: both round trips are the identity.
// ------------------------------------------------------------------------------------------

/// An object from optional fields (absent ones are left out).
fn obj(fields: Vec<(&str, Option<Value>)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        if let Some(v) = v {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

fn unknown() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.3,
        prop_oneof![Just(json!(1)), Just(json!({"kept": [true, "x"]}))],
    )
}

fn criticality() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        prop::sample::select(vec!["Critical", "Standard", "Sheddable"]).prop_map(|c| json!(c)),
    )
}

fn confidential() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop_oneof![
        Just(json!({"enabled": true, "resourceId": "key-1"})),
        Just(json!({"enabled": false}))
    ])
}

fn kv_cache() -> impl Strategy<Value = Option<Value>> {
    prop::option::weighted(
        0.4,
        prop_oneof![
            Just(json!({"cpu": "10Gi"})),
            Just(
                json!({"cpu": "1Ti", "evictionPolicy": "lru", "secondary": [{"fileSystem": {"pvc": {"ref": {"name": "c"}}}}]})
            )
        ],
    )
}

fn adapter(v2: bool) -> impl Strategy<Value = Value> {
    (0u8..50, criticality(), confidential(), unknown()).prop_map(move |(i, c, conf, x)| {
        obj(vec![
            ("uri", Some(json!(format!("hf://org/a{i}")))),
            ("name", Some(json!(format!("a{i}")))),
            ("criticality", if v2 { None } else { c }),
            ("confidential", if v2 { conf } else { None }),
            ("x-adapter", x),
        ])
    })
}

fn model(v2: bool) -> impl Strategy<Value = Option<Value>> {
    let lora = prop::option::of(
        (
            prop::collection::vec(adapter(v2), 0..4),
            prop::option::of(1i32..64),
        )
            .prop_map(|(a, r)| {
                obj(vec![
                    ("adapters", Some(json!(a))),
                    ("maxRank", r.map(|r| json!(r))),
                ])
            }),
    );
    prop::option::weighted(
        0.85,
        (
            criticality(),
            confidential(),
            lora,
            unknown(),
            any::<bool>(),
        )
            .prop_map(move |(c, conf, lora, x, named)| {
                obj(vec![
                    ("uri", Some(json!("hf://meta-llama/Llama-3.1-8B"))),
                    ("name", named.then(|| json!("llama"))),
                    ("criticality", if v2 { None } else { c }),
                    ("lora", lora),
                    ("confidential", if v2 { conf } else { None }),
                    ("x-model", x),
                ])
            }),
    )
}

fn port() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![8000, 8001, 8200, 9002]).prop_map(|n| json!(n))
}

fn labels() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!({"app": "llama"})),
        Just(json!({})),
        Just(json!({"a": "1", "b": "2"}))
    ]
}

fn ref_fields()
-> impl Strategy<Value = (Option<Value>, Option<Value>, Option<Value>, Option<Value>)> {
    (
        prop::option::of(Just(json!("epp"))),
        prop::option::of(Just(json!("Service"))),
        prop::option::of(
            prop::sample::select(vec!["FailOpen", "FailClose"]).prop_map(|m| json!(m)),
        ),
        unknown(),
    )
}

fn pool_spec(v2: bool) -> BoxedStrategy<Value> {
    if v2 {
        (
            prop::option::of(
                (labels(), unknown())
                    .prop_map(|(l, x)| obj(vec![("matchLabels", Some(l)), ("x-sel", x)])),
            ),
            prop::option::of(prop::collection::vec(
                port().prop_map(|n| json!({"number": n})),
                0..3,
            )),
            prop::option::of(
                prop::sample::select(vec!["http", "kubernetes.io/h2c"]).prop_map(|p| json!(p)),
            ),
            prop::option::of((ref_fields(), prop::option::of(port())).prop_map(
                |((n, k, f, x), p)| {
                    obj(vec![
                        ("group", Some(json!(""))),
                        ("kind", k),
                        ("name", n),
                        ("port", p.map(|p| json!({"number": p}))),
                        ("failureMode", f),
                        ("x-ref", x),
                    ])
                },
            )),
            unknown(),
        )
            .prop_map(|(s, t, a, e, x)| {
                obj(vec![
                    ("selector", s),
                    ("targetPorts", t.map(Value::Array)),
                    ("appProtocol", a),
                    ("endpointPickerRef", e),
                    ("x-pool", x),
                ])
            })
            .boxed()
    } else {
        (
            prop::option::of(labels()),
            prop::option::of(port()),
            prop::option::of((ref_fields(), prop::option::of(port())).prop_map(
                |((n, k, f, x), p)| {
                    obj(vec![
                        ("group", Some(json!(""))),
                        ("kind", k),
                        ("name", n),
                        ("portNumber", p),
                        ("failureMode", f),
                        ("x-ref", x),
                    ])
                },
            )),
            unknown(),
        )
            .prop_map(|(s, t, e, x)| {
                obj(vec![
                    ("selector", s),
                    ("targetPortNumber", t),
                    ("extensionRef", e),
                    ("x-pool", x),
                ])
            })
            .boxed()
    }
}

fn router(v2: bool) -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        (
            prop::option::weighted(0.8, pool_spec(v2)),
            prop::option::of(1i32..3),
            any::<bool>(),
        )
            .prop_map(|(p, r, route)| {
                obj(vec![
                    ("route", route.then(|| json!({}))),
                    (
                        "scheduler",
                        Some(obj(vec![
                            ("pool", p.map(|p| json!({"spec": p}))),
                            ("replicas", r.map(|r| json!(r))),
                        ])),
                    ),
                ])
            }),
    )
}

fn spec(v2: bool) -> impl Strategy<Value = Value> {
    (
        model(v2),
        prop::option::of(1i32..8),
        kv_cache(),
        prop::option::of((prop::option::of(1i32..4), kv_cache())),
        router(v2),
        unknown(),
        prop::option::weighted(0.2, Just(json!([{"name": "preset"}]))),
    )
        .prop_map(move |(m, r, kv, prefill, router, x, base)| {
            obj(vec![
                ("model", m),
                ("replicas", r.map(|r| json!(r))),
                ("kvCacheOffloading", if v2 { kv } else { None }),
                (
                    "prefill",
                    prefill.map(|(r, kv)| {
                        obj(vec![
                            ("replicas", r.map(|r| json!(r))),
                            ("kvCacheOffloading", if v2 { kv } else { None }),
                        ])
                    }),
                ),
                ("router", router),
                ("baseRefs", base),
                ("x-spec", x),
            ])
        })
}

fn service_status(v2: bool) -> impl Strategy<Value = Value> {
    let address = (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(move |(o, m, x)| {
        obj(vec![
            ("name", Some(json!("http"))),
            ("url", Some(json!("http://a"))),
            ("origin", (v2 && o).then(|| json!({"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}))),
            ("models", (v2 && m).then(|| json!([{"name": "llama"}]))),
            ("x-addr", x.then(|| json!(1))),
        ])
    });
    (
        any::<[bool; 8]>(),
        prop::option::of(prop::collection::vec(address, 0..3)),
        unknown(),
    )
        .prop_map(move |(b, addresses, x)| {
            obj(vec![
                ("url", b[0].then(|| json!("http://llama"))),
                ("observedGeneration", b[1].then(|| json!(3))),
                ("conditions", b[2].then(|| json!([{"type": "Ready", "status": "True", "reason": "Ready"}]))),
                ("address", b[3].then(|| json!({"url": "http://a"}))),
                ("addresses", addresses.map(Value::Array)),
                (
                    "router",
                    b[4].then(|| {
                        obj(vec![
                            ("gateways", Some(json!([{"group": "g", "kind": "Gateway", "name": "gw"}]))),
                            ("group", (v2 && b[5]).then(|| json!({"name": "canary", "members": [{"name": "m", "weight": 1}]}))),
                        ])
                    }),
                ),
                ("workloads", (v2 && b[6]).then(|| json!({"primary": {"kind": "Deployment", "name": "d", "readyReplicas": 1}}))),
                ("appliedConfigs", (v2 && b[7]).then(|| json!([{"name": "p", "namespace": "n", "source": "Preset"}]))),
                ("x-status", x),
            ])
        })
}

fn config_status(v2: bool) -> impl Strategy<Value = Value> {
    (any::<[bool; 3]>(), unknown()).prop_map(move |(b, x)| {
        obj(vec![
            ("observedGeneration", b[0].then(|| json!(1))),
            (
                "conditions",
                b[1].then(|| json!([{"type": "Ready", "status": "Unknown"}])),
            ),
            (
                "referencedBy",
                (v2 && b[2]).then(|| json!([{"name": "s", "namespace": "n"}])),
            ),
            ("x-status", x),
        ])
    })
}

fn annotations() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        1 => Just(Some(json!({}))),
        2 => Just(Some(json!({"team": "ml", "kubectl.kubernetes.io/last-applied-configuration": "{}"}))),
    ]
}

/// Fields and annotations that carry a name only the *other* version gives a meaning to; the
/// conversion must keep them out of reach and give them back.
fn hostile(v2: bool) -> impl Strategy<Value = Vec<(&'static str, Value)>> {
    let choices: Vec<(&'static str, Value)> = if v2 {
        vec![
            ("/spec/model/criticality", json!("Critical")),
            (
                "/metadata/annotations/llmisvc.serving.kserve.io~1v1alpha2-fields",
                json!("{}"),
            ),
            (
                "/spec/router/scheduler/pool/spec/extensionRef",
                json!({"name": "x"}),
            ),
        ]
    } else {
        vec![
            ("/spec/kvCacheOffloading", json!({"cpu": "1"})),
            (
                "/metadata/annotations/internal.serving.kserve.io~1model-criticality",
                json!("Sheddable"),
            ),
            (
                "/metadata/annotations/llmisvc.serving.kserve.io~1v1alpha1-fields",
                json!("not json"),
            ),
            (
                "/spec/router/scheduler/pool/spec/appProtocol",
                json!("http"),
            ),
        ]
    };
    prop::sample::subsequence(choices.clone(), 0..=choices.len())
}

fn object(v2: bool, allow_hostile: bool) -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec!["LLMInferenceService", "LLMInferenceServiceConfig"]);
    (
        kind,
        spec(v2),
        prop::option::of(service_status(v2)),
        prop::option::of(config_status(v2)),
        prop::bool::weighted(0.15),
        annotations(),
        hostile(v2),
    )
        .prop_map(move |(kind, spec, ss, cs, empty_status, ann, hostile)| {
            let status = if empty_status {
                Some(json!({}))
            } else if kind == "LLMInferenceService" {
                ss
            } else {
                cs
            };
            let mut o = obj(vec![
                ("apiVersion", Some(json!(if v2 { V2 } else { V1 }))),
                ("kind", Some(json!(kind))),
                (
                    "metadata",
                    Some(obj(vec![
                        ("name", Some(json!("llama"))),
                        ("namespace", Some(json!("models"))),
                        ("annotations", ann),
                    ])),
                ),
                ("spec", Some(spec)),
                ("status", status),
            ]);
            if allow_hostile {
                for (ptr, v) in hostile {
                    let (parent, key) = ptr.rsplit_once('/').unwrap();
                    let key = key.replace("~1", "/");
                    if parent == "/metadata/annotations"
                        && o["metadata"].get("annotations").is_none()
                    {
                        o["metadata"]["annotations"] = json!({});
                    }
                    if let Some(Value::Object(m)) = o.pointer_mut(parent) {
                        m.insert(key, v);
                    }
                }
            }
            o
        })
}

/// No field of the other version is left on a converted object.
fn assert_shape(v: &Value) {
    let pool = v.pointer("/spec/router/scheduler/pool/spec");
    if v["apiVersion"] == json!(V1) {
        for p in [
            "/spec/kvCacheOffloading",
            "/spec/prefill/kvCacheOffloading",
            "/spec/model/confidential",
            "/status/workloads",
            "/status/appliedConfigs",
            "/status/router/group",
            "/status/referencedBy",
        ] {
            assert!(v.pointer(p).is_none(), "{p} left on {v}");
        }
        if let Some(Value::Object(p)) = pool {
            for k in ["targetPorts", "endpointPickerRef", "appProtocol"] {
                assert!(!p.contains_key(k), "{k} left on v1alpha1 pool {v}");
            }
        }
    } else {
        assert!(
            v.pointer("/spec/model/criticality").is_none(),
            "criticality left on {v}"
        );
        if let Some(Value::Object(p)) = pool {
            for k in ["targetPortNumber", "extensionRef"] {
                assert!(!p.contains_key(k), "{k} left on v1alpha2 pool {v}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn v1alpha1_up_down_is_identity(o in object(false, false)) {
        let there = up(&o);
        prop_assert_eq!(&there["apiVersion"], &json!(V2));
        assert_shape(&there);
        prop_assert_eq!(down(&there), o);
    }

    #[test]
    fn v1alpha2_down_up_is_identity(o in object(true, false)) {
        let there = down(&o);
        prop_assert_eq!(&there["apiVersion"], &json!(V1));
        assert_shape(&there);
        prop_assert_eq!(up(&there), o);
    }

    #[test]
    fn v1alpha1_with_v1alpha2_names_round_trips(o in object(false, true)) {
        prop_assert_eq!(down(&up(&o)), o);
    }

    #[test]
    fn v1alpha2_with_v1alpha1_names_round_trips(o in object(true, true)) {
        prop_assert_eq!(up(&down(&o)), o);
    }
}
