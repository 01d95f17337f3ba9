//! Known defects of the reference implementations (KServe, llm-d, Dynamo), one named test each,
//! with the upstream reference in the doc comment. Each runs the full admission pipeline with
//! the shipped presets (`Engine::builtin`) or the conversion, as the webhook does.

use llmisvc::convert::convert;
use llmisvc::pipeline::Engine;
use llmisvc::presets::PresetStore;
use serde_json::{Value, json};

fn service(spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "m", "namespace": "team"},
        "spec": spec,
    })
}

fn main_container<'a>(obj: &'a Value, pod: &str) -> &'a Value {
    obj.pointer(&format!("/spec/{pod}/containers"))
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["name"] == "main"))
        .unwrap_or_else(|| panic!("no main container in spec.{pod}: {obj}"))
}

fn args(c: &Value) -> Vec<String> {
    c["args"].as_array().map_or(vec![], |a| {
        a.iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    })
}

fn flag_value(args: &[String], flag: &str) -> Option<String> {
    args.iter().enumerate().find_map(|(i, a)| {
        if a == flag {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix(&format!("{flag}=")).map(String::from)
        }
    })
}

fn gpus(c: &Value) -> Option<String> {
    c.pointer("/resources/limits/nvidia.com~1gpu")
        .and_then(Value::as_str)
        .map(String::from)
}

/// kserve/kserve#5773, #6044: `parallelism.tensor` / `pipeline` on a single-node service were
/// dropped. Here they reach vLLM's flags and the GPU count.
#[test]
fn single_node_tensor_and_pipeline_reach_vllm_and_gpus() {
    let e = Engine::builtin().unwrap();
    let out = e.mutate(&service(json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "parallelism": {"tensor": 4}}))).unwrap();
    let c = main_container(&out, "template");
    assert_eq!(
        flag_value(&args(c), "--tensor-parallel-size").as_deref(),
        Some("4")
    );
    assert_eq!(gpus(c).as_deref(), Some("4"));
    let out = e
        .mutate(&service(json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "parallelism": {"tensor": 2, "pipeline": 2}})))
        .unwrap();
    let c = main_container(&out, "template");
    assert_eq!(
        flag_value(&args(c), "--pipeline-parallel-size").as_deref(),
        Some("2")
    );
    assert_eq!(
        gpus(c).as_deref(),
        Some("4"),
        "single-node pipeline: tensor x pipeline GPUs in the pod"
    );
    assert!(e.validate(None, &out).errors.is_empty());
}

/// llm-d-incubation/llm-d-modelservice#140, llm-d/llm-d#481: tensor 4 with dataLocal 2 needs
/// 8 GPUs per pod, and GPU limits the user set are never overwritten, only checked.
#[test]
fn tensor_times_data_local_gpus_and_user_limits_are_only_checked() {
    let e = Engine::builtin().unwrap();
    let spec = json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
        "parallelism": {"tensor": 4, "data": 4, "dataLocal": 2}, "worker": {}});
    let out = e.mutate(&service(spec.clone())).unwrap();
    assert_eq!(gpus(main_container(&out, "template")).as_deref(), Some("8"));
    assert_eq!(gpus(main_container(&out, "worker")).as_deref(), Some("8"));
    assert!(e.validate(None, &out).errors.is_empty());

    let mut user = spec;
    user["template"] =
        json!({"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": "4"}}}]});
    let out = e.mutate(&service(user)).unwrap();
    assert_eq!(
        gpus(main_container(&out, "template")).as_deref(),
        Some("4"),
        "the user's limit is kept"
    );
    let errs: Vec<String> = e
        .validate(None, &out)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errs.iter()
            .any(|m| m.contains("spec.parallelism.tensor: Invalid value: 4")
                && m.contains("needs 8 GPUs per pod")),
        "{errs:?}"
    );
}

/// kserve/kserve#4946: wrong multi-node group sizes when tensor > dataLocal and for pipeline
/// parallelism. Group size is data / dataLocal (tensor does not enter it), or pipeline; and no
/// pod may ask for more GPUs than a node of the configured profile holds.
#[test]
fn group_sizes_and_node_capacity() {
    use llmisvc::mutate::group_size;
    assert_eq!(group_size(Some(8), Some(2), None), 4);
    assert_eq!(
        group_size(Some(4), Some(1), None),
        4,
        "tensor 8 > dataLocal 1 does not change it"
    );
    assert_eq!(group_size(None, None, Some(3)), 3);
    let e = Engine::builtin().unwrap();
    let out = e
        .mutate(&service(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
            "parallelism": {"tensor": 16}}),
        ))
        .unwrap();
    let errs: Vec<String> = e
        .validate(None, &out)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errs.iter().any(|m| m.contains("at most 8 GPUs")),
        "{errs:?}"
    );
}

fn store_with(presets: Vec<Value>) -> Engine {
    let mut objs = presets;
    for (file, text) in llmisvc::presets::EMBEDDED_FILES {
        objs.extend(llmisvc::presets::parse_yaml_documents(text, file).unwrap());
    }
    Engine::with_presets(PresetStore::from_objects(objs, "llmisvc-system").unwrap())
}

fn preset(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": name, "namespace": "team"}, "spec": spec})
}

/// kserve/kserve#4945: a baseRefs chain where one config has no `parallelism` failed to merge;
/// opendatahub-io/kserve#772: `scheduler: {}` in a baseRef wiped the well-known scheduler preset.
#[test]
fn base_ref_chains_merge_and_empty_scheduler_keeps_the_preset() {
    let e = store_with(vec![
        preset("a", json!({"parallelism": {"tensor": 2}})),
        preset("b", json!({"labels": {"x": "y"}})),
        preset("c", json!({"router": {"scheduler": {}}})),
    ]);
    let out = e
        .mutate(&service(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
            "baseRefs": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}),
        ))
        .unwrap();
    assert_eq!(out["spec"]["parallelism"]["tensor"], 2);
    assert_eq!(out["spec"]["labels"]["x"], "y");
    let sched = &out["spec"]["router"]["scheduler"]["template"]["containers"];
    assert!(
        sched.as_array().is_some_and(|c| !c.is_empty()),
        "the well-known scheduler preset survives: {}",
        out["spec"]["router"]
    );
}

/// kserve/kserve#5048: user `args` wiped preset and generated vLLM flags. Here user args come
/// after the generated ones, and a flag the user repeats replaces the generated one.
#[test]
fn user_args_never_wipe_generated_flags() {
    let e = Engine::builtin().unwrap();
    let out = e
        .mutate(&service(json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}, "parallelism": {"tensor": 2},
            "template": {"containers": [{"name": "main", "args": ["--max-model-len", "8192", "--port=9000"]}]}})))
        .unwrap();
    let a = args(main_container(&out, "template"));
    assert_eq!(
        flag_value(&a, "--tensor-parallel-size").as_deref(),
        Some("2"),
        "{a:?}"
    );
    assert!(a.contains(&"--served-model-name".to_string()), "{a:?}");
    let mml = a.iter().position(|x| x == "--max-model-len").unwrap();
    assert!(
        mml > a.iter().position(|x| x == "--served-model-name").unwrap(),
        "user args after generated: {a:?}"
    );
    assert_eq!(
        a.iter().filter(|x| x.starts_with("--port")).count(),
        1,
        "{a:?}"
    );
    assert!(a.contains(&"--port=9000".to_string()), "{a:?}");
    assert_eq!(e.mutate(&out).unwrap(), out, "and it stays that way");
}

/// ai-dynamo/dynamo#14337, #10794: reading as v1alpha1 added empty fields and lost an empty
/// status; KServe crashed on an empty `targetPorts`.
#[test]
fn conversion_adds_no_empty_fields_and_keeps_empty_status_and_targetports() {
    let v2 = json!({"apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "m"},
        "spec": {"model": {"uri": "hf://a/b"},
            "router": {"scheduler": {"pool": {"spec": {"targetPorts": []}}}}},
        "status": {}});
    let v1 = convert(&v2, "serving.kserve.io/v1alpha1").unwrap();
    assert_eq!(v1["status"], json!({}));
    assert!(v1["spec"]["model"].get("name").is_none());
    assert!(
        !v1.to_string().contains("\"resources\":{}") && !v1.to_string().contains("\"name\":\"\"")
    );
    assert_eq!(convert(&v1, "serving.kserve.io/v1alpha2").unwrap(), v2);
}

/// ai-dynamo/dynamo#11467: a prefill/decode pair with mismatched `--kv-transfer-config` roles
/// crash-looped. Both sides always carry the same connector and a compatible role.
#[test]
fn prefill_and_decode_carry_matching_kv_transfer_config() {
    let e = Engine::builtin().unwrap();
    let out = e
        .mutate(&service(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
            "parallelism": {"tensor": 1}, "prefill": {"parallelism": {"tensor": 1}}}),
        ))
        .unwrap();
    let decode = flag_value(
        &args(main_container(&out, "template")),
        "--kv-transfer-config",
    )
    .expect("decode kv config");
    let prefill = flag_value(
        &args(main_container(&out, "prefill/template")),
        "--kv-transfer-config",
    )
    .expect("prefill kv config");
    let (d, p): (Value, Value) = (
        serde_json::from_str(&decode).unwrap(),
        serde_json::from_str(&prefill).unwrap(),
    );
    assert_eq!(d["kv_connector"], p["kv_connector"]);
    assert_eq!(d["kv_role"], p["kv_role"]);
    assert!(e.validate(None, &out).errors.is_empty());
}

fn cond<'a>(
    status: &'a llmisvc::api::v1alpha2::LLMInferenceServiceStatus,
    t: &str,
) -> (&'a str, &'a str, &'a str) {
    let c = llmisvc::reconcile::status::condition(status, t)
        .unwrap_or_else(|| panic!("no {t} in {status:?}"));
    (
        c.status.as_str(),
        c.reason.as_deref().unwrap_or(""),
        c.message.as_deref().unwrap_or(""),
    )
}

const NOW: &str = "2026-11-25T00:00:00Z";

/// kserve/kserve#6043: a multi-node service never became Ready although its LeaderWorkerSet
/// was. Here Ready follows the LeaderWorkerSet's Available condition.
#[test]
fn multi_node_service_is_ready_when_its_leaderworkerset_is() {
    let e = Engine::builtin().unwrap();
    let mut svc = e
        .mutate(&service(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
            "parallelism": {"data": 2, "dataLocal": 1}, "worker": {}}),
        ))
        .unwrap();
    svc["metadata"]["uid"] = "u1".into();
    svc["metadata"]["generation"] = 1.into();
    let lws = |available: &str, ready: i64| {
        json!({"kind": "LeaderWorkerSet", "metadata": {"name": "m-kserve-mn"}, "spec": {"replicas": 1},
            "status": {"readyReplicas": ready, "conditions": [{"type": "Available", "status": available}]}})
    };
    let s = llmisvc::reconcile::status::status(&svc, &[lws("True", 1)], &e.presets, NOW);
    assert_eq!(cond(&s, "Ready").0, "True", "{s:?}");
    let s = llmisvc::reconcile::status::status(&svc, &[lws("False", 0)], &e.presets, NOW);
    assert_eq!(cond(&s, "Ready").0, "False", "{s:?}");
}

/// kserve/kserve#5986: a service with a user-supplied gateway and no route waited forever on
/// the gateway. Here the gateway ref alone is not waited on.
#[test]
fn gateway_without_route_does_not_block_readiness() {
    let e = Engine::builtin().unwrap();
    let mut svc = service(
        json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct", "name": "m"}, "replicas": 1,
        "template": {"containers": [{"name": "main"}]},
        "router": {"gateway": {"refs": [{"name": "my-gw", "namespace": "infra"}]}}}),
    );
    svc["metadata"]["uid"] = "u1".into();
    svc["metadata"]["generation"] = 1.into();
    let deploy = json!({"kind": "Deployment", "metadata": {"name": "m-kserve"}, "spec": {"replicas": 1},
        "status": {"readyReplicas": 1}});
    let s = llmisvc::reconcile::status::status(&svc, &[deploy], &e.presets, NOW);
    assert_eq!(cond(&s, "Ready").0, "True", "{s:?}");
}

/// Multi-node workloads start their workers once the leader pod exists (LeaderWorkerSet
/// `startupPolicy: LeaderCreated`, as KServe). `LeaderReady` deadlocks: a multi-node vLLM leader
/// only becomes ready after its workers joined, and they would wait for it to be ready.
#[test]
fn leaderworkersets_start_workers_once_the_leader_is_created() {
    let e = Engine::builtin().unwrap();
    let mut svc = e
        .mutate(&service(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"},
            "parallelism": {"tensor": 2, "data": 4, "dataLocal": 2}, "worker": {}}),
        ))
        .unwrap();
    svc["metadata"]["uid"] = "u1".into();
    let objs = llmisvc::reconcile::build::build(&svc).unwrap();
    let lws = objs
        .iter()
        .find(|o| o["kind"] == "LeaderWorkerSet")
        .expect("a LeaderWorkerSet");
    assert_eq!(lws["spec"]["startupPolicy"], "LeaderCreated");
    assert_eq!(
        lws["spec"]["leaderWorkerTemplate"]["size"], 2,
        "data 4 / dataLocal 2"
    );
}

/// KServe had to add per-service pinning because changing a shipped preset changed running
/// services. Here a running service keeps what it was admitted with, and its
/// `PresetsUpToDate` condition turns False naming the changed preset until it is applied again.
#[test]
fn a_changed_preset_is_reported_not_applied() {
    let e = Engine::builtin().unwrap();
    let mut svc = e
        .mutate(&service(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct"}}),
        ))
        .unwrap();
    svc["metadata"]["uid"] = "u1".into();
    svc["metadata"]["generation"] = 1.into();
    let s = llmisvc::reconcile::status::status(&svc, &[], &e.presets, NOW);
    assert_eq!(cond(&s, "PresetsUpToDate").0, "True", "{s:?}");

    // The platform team edits the template preset.
    let mut objs = Vec::new();
    for (file, text) in llmisvc::presets::EMBEDDED_FILES {
        for mut doc in llmisvc::presets::parse_yaml_documents(text, file).unwrap() {
            if doc["metadata"]["name"] == "kserve-config-llm-template" {
                doc["spec"]["template"]["containers"][0]["image"] =
                    "vllm/vllm-openai:v0.24.0".into();
            }
            objs.push(doc);
        }
    }
    let changed = Engine::with_presets(PresetStore::from_objects(objs, "llmisvc-system").unwrap());
    let after = llmisvc::reconcile::status::status(&svc, &[], &changed.presets, NOW);
    let (status, _, message) = cond(&after, "PresetsUpToDate");
    assert_eq!(status, "False");
    assert!(message.contains("kserve-config-llm-template"), "{message}");
    // The stored object is untouched until it is applied again: re-admitting the stored object
    // (an UPDATE without changes) keeps the image it was admitted with.
    let again = changed.mutate(&svc).unwrap();
    assert_eq!(
        main_container(&again, "template")["image"],
        "vllm/vllm-openai:v0.23.0"
    );
}
