//! Table tests of the validation core: every rule accepted once and rejected at least once,
//! for v1alpha1 and v1alpha2 input where the field exists in both.

use llmisvc::pipeline::Engine;
use llmisvc::policy::PolicySet;
use llmisvc::validate::{Outcome, ValidateConfig, validate};
use serde_json::{Value, json};

const VERSIONS: &[&str] = &["serving.kserve.io/v1alpha1", "serving.kserve.io/v1alpha2"];

/// JSON merge patch (RFC 7386): `null` deletes.
fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn gpu_pod(n: i64) -> Value {
    json!({"containers": [{"name": "main", "image": "quay.io/org/vllm:1", "resources": {"limits": {"nvidia.com/gpu": n}}}]})
}

/// A valid, already mutated service: one GPU, no parallelism.
fn base(api_version: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": "LLMInferenceService",
        "metadata": {"name": "llama", "namespace": "team-a", "labels": {"team": "a"}},
        "spec": {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "name": "meta-llama/Llama-3.1-8B-Instruct"},
            "replicas": 1,
            "template": gpu_pod(1),
        }
    })
}

fn with(api_version: &str, spec_patch: Value) -> Value {
    let mut o = base(api_version);
    merge(&mut o, &json!({ "spec": spec_patch }));
    o
}

fn run(old: Option<&Value>, new: &Value) -> Outcome {
    validate(old, new, &ValidateConfig::default())
}

/// Validation as the webhook runs it ([`Engine::validate`]): the built-in checks, then
/// `policies`.
fn validate_with_policies(
    old: Option<&Value>,
    new: &Value,
    cfg: &ValidateConfig,
    policies: &PolicySet,
) -> Outcome {
    let engine = Engine {
        validate_cfg: cfg.clone(),
        policies: policies.clone(),
        ..Engine::default()
    };
    engine.validate(old, new)
}

fn rendered(o: &Outcome) -> Vec<String> {
    o.errors.iter().map(|e| e.to_string()).collect()
}

#[track_caller]
fn assert_ok(o: &Outcome) {
    assert!(
        o.errors.is_empty(),
        "expected no errors, got {:#?}",
        rendered(o)
    );
}

#[track_caller]
fn assert_err(o: &Outcome, field: &str, text: &str) {
    assert!(
        o.errors
            .iter()
            .any(|e| e.field == field && e.to_string().contains(text)),
        "expected an error at {field} containing {text:?}, got {:#?}",
        rendered(o)
    );
}

#[track_caller]
fn assert_warn(o: &Outcome, text: &str) {
    assert!(
        o.warnings.iter().any(|w| w.contains(text)),
        "expected a warning containing {text:?}, got {:#?}",
        o.warnings
    );
}

/// (name, spec patch, expected field, expected text); `None` field = accepted.
type Case = (&'static str, Value, Option<&'static str>, &'static str);

fn table(cases: Vec<Case>, versions: &[&str]) {
    for v in versions {
        for (name, patch, field, text) in &cases {
            let o = run(None, &with(v, patch.clone()));
            eprintln!("{v} {name}");
            match field {
                None => assert_ok(&o),
                Some(f) => assert_err(&o, f, text),
            }
        }
    }
}

/// Issue 18 (3): MIG slices and every Intel GPU resource are counted as accelerators, with the
/// definition mutation uses.
#[test]
fn accelerators_by_pattern_are_counted() {
    let pod = |res: &str, n: i64| json!({"containers": [{"name": "main", "image": "quay.io/org/vllm:1", "resources": {"limits": {res: n}}}]});
    let cases: Vec<Case> = vec![
        (
            "mig slice matches tensor",
            json!({"parallelism": {"tensor": 1}, "template": pod("nvidia.com/mig-1g.10gb", 1)}),
            None,
            "",
        ),
        (
            "mig slices below tensor",
            json!({"parallelism": {"tensor": 2}, "template": pod("nvidia.com/mig-1g.10gb", 1)}),
            Some("spec.parallelism.tensor"),
            "requests 1 nvidia.com/mig-1g.10gb",
        ),
        (
            "intel xe below tensor",
            json!({"parallelism": {"tensor": 4}, "template": pod("gpu.intel.com/xe", 2)}),
            Some("spec.parallelism.tensor"),
            "requests 2 gpu.intel.com/xe",
        ),
        (
            "mig slice requests differ from limits",
            json!({"template": {"containers": [{"name": "main", "image": "x/y", "resources": {"limits": {"nvidia.com/mig-2g.20gb": 1}, "requests": {"nvidia.com/mig-2g.20gb": 2}}}]}}),
            Some("spec.template.containers[0].resources.requests[nvidia.com/mig-2g.20gb]"),
            "must equal its limits",
        ),
    ];
    table(cases, VERSIONS);
}

#[test]
fn base_is_valid() {
    for v in VERSIONS {
        let o = run(None, &base(v));
        assert_ok(&o);
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }
}

#[test]
fn parallelism_and_gpus() {
    let cases: Vec<Case> = vec![
        (
            "tensor matches gpus",
            json!({"parallelism": {"tensor": 2}, "template": gpu_pod(2)}),
            None,
            "",
        ),
        (
            "cpu serving",
            json!({"template": {"containers": [{"name": "main", "image": "x/y"}]}}),
            None,
            "",
        ),
        (
            "tensor above gpus",
            json!({"parallelism": {"tensor": 4}, "template": gpu_pod(2)}),
            Some("spec.parallelism.tensor"),
            "spec.parallelism.tensor: Invalid value: 4: tensor (4) needs 4 GPUs per pod, but container \"main\" requests 2 nvidia.com/gpu; set parallelism.tensor: 2 or request 4 GPUs",
        ),
        (
            "data parallel gpus per pod",
            json!({"parallelism": {"tensor": 4, "data": 2, "dataLocal": 1}, "template": gpu_pod(2), "worker": gpu_pod(2)}),
            Some("spec.parallelism.tensor"),
            "spec.parallelism.tensor: Invalid value: 4: tensor (4) x dataLocal (1) needs 4 GPUs per pod, but container \"main\" requests 2 nvidia.com/gpu; set parallelism.tensor: 2 or request 4 GPUs",
        ),
        (
            "data parallel multi-node ok",
            json!({"parallelism": {"tensor": 2, "data": 4, "dataLocal": 2}, "template": gpu_pod(4), "worker": gpu_pod(4)}),
            None,
            "",
        ),
        (
            "pipeline ok",
            json!({"parallelism": {"tensor": 4, "pipeline": 2}, "template": gpu_pod(4), "worker": gpu_pod(4)}),
            None,
            "",
        ),
        (
            "gpus without parallelism",
            json!({"template": gpu_pod(4)}),
            Some("spec.template.containers[0].resources.limits[nvidia.com/gpu]"),
            "Invalid value: 4: without parallelism.tensor vLLM uses 1 GPU per pod, but container \"main\" requests 4 nvidia.com/gpu; set parallelism.tensor: 4",
        ),
        (
            "tensor without any gpu",
            json!({"parallelism": {"tensor": 2}, "template": {"containers": [{"name": "main"}]}}),
            Some("spec.parallelism.tensor"),
            "needs 2 GPUs per pod, but no container requests a GPU",
        ),
        (
            "data not a multiple of dataLocal",
            json!({"parallelism": {"tensor": 1, "data": 3, "dataLocal": 2}, "template": gpu_pod(2), "worker": gpu_pod(2)}),
            Some("spec.parallelism.data"),
            "Invalid value: 3: data (3) must be a multiple of dataLocal (2)",
        ),
        (
            "leader and worker differ",
            json!({"parallelism": {"tensor": 2, "pipeline": 2}, "template": gpu_pod(2), "worker": gpu_pod(4)}),
            Some("spec.worker.containers[0].resources.limits[nvidia.com/gpu]"),
            "leader and worker pods must request the same number of GPUs",
        ),
        (
            "worker needs data or pipeline",
            json!({"parallelism": {"tensor": 1}, "worker": gpu_pod(1)}),
            Some("spec.worker"),
            "Forbidden: a worker (multi-node deployment) needs data parallelism",
        ),
        (
            "worker without parallelism",
            json!({"worker": gpu_pod(1)}),
            Some("spec.worker"),
            "needs data parallelism",
        ),
        (
            "data and pipeline exclusive",
            json!({"parallelism": {"pipeline": 2, "data": 2, "dataLocal": 1}, "template": gpu_pod(1), "worker": gpu_pod(1)}),
            Some("spec.parallelism"),
            "pipeline parallelism and data parallelism (data, dataLocal) are exclusive",
        ),
        (
            "data without dataLocal",
            json!({"parallelism": {"data": 2}, "worker": gpu_pod(1)}),
            Some("spec.parallelism.dataLocal"),
            "Required value: dataLocal must be set when data is set",
        ),
        (
            "dataLocal without data",
            json!({"parallelism": {"dataLocal": 2}, "template": gpu_pod(2)}),
            Some("spec.parallelism.data"),
            "Required value: data must be set when dataLocal is set",
        ),
        (
            "tensor zero",
            json!({"parallelism": {"tensor": 0}}),
            Some("spec.parallelism.tensor"),
            "Invalid value: 0: tensor must be greater than 0",
        ),
        (
            "pipeline negative",
            json!({"parallelism": {"pipeline": -1}}),
            Some("spec.parallelism.pipeline"),
            "pipeline must be greater than 0",
        ),
        (
            "more gpus than a node",
            json!({"parallelism": {"tensor": 16}, "template": gpu_pod(16)}),
            Some("spec.template.containers[0].resources.limits[nvidia.com/gpu]"),
            "Invalid value: 16: a pod may request at most 8 GPUs",
        ),
        (
            "amd gpus counted",
            json!({"parallelism": {"tensor": 2}, "template": {"containers": [{"name": "main", "image": "x/y", "resources": {"limits": {"amd.com/gpu": "2"}}}]}}),
            None,
            "",
        ),
        (
            "requests differ from limits",
            json!({"parallelism": {"tensor": 2}, "template": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 2}, "requests": {"nvidia.com/gpu": 1}}}]}}),
            Some("spec.template.containers[0].resources.requests[nvidia.com/gpu]"),
            "requests of the extended resource nvidia.com/gpu must equal its limits (2)",
        ),
        (
            "requests without limits",
            json!({"template": {"containers": [{"name": "main", "resources": {"requests": {"nvidia.com/gpu": 1}}}]}}),
            Some("spec.template.containers[0].resources.limits[nvidia.com/gpu]"),
            "must be set in limits",
        ),
        (
            "gpus summed over containers",
            json!({"parallelism": {"tensor": 2}, "template": {"containers": [
                {"name": "main", "image": "x/y", "resources": {"limits": {"nvidia.com/gpu": 1}}},
                {"name": "sidecar", "image": "x/s", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}),
            None,
            "",
        ),
        (
            "prefill pool",
            json!({"prefill": {"parallelism": {"tensor": 2}, "template": gpu_pod(1)}}),
            Some("spec.prefill.parallelism.tensor"),
            "tensor (2) needs 2 GPUs per pod, but container \"main\" requests 1 nvidia.com/gpu; set parallelism.tensor: 1 or request 2 GPUs",
        ),
        (
            "prefill worker",
            json!({"prefill": {"parallelism": {"tensor": 2, "data": 2, "dataLocal": 1}, "template": gpu_pod(2), "worker": gpu_pod(1)}}),
            Some("spec.prefill.worker.containers[0].resources.limits[nvidia.com/gpu]"),
            "leader and worker pods must request the same number of GPUs",
        ),
        (
            "prefill ok",
            json!({"prefill": {"parallelism": {"tensor": 2}, "template": gpu_pod(2)}}),
            None,
            "",
        ),
    ];
    table(cases, VERSIONS);
}

#[test]
fn expert_without_spread_is_a_warning() {
    for v in VERSIONS {
        let o = run(
            None,
            &with(v, json!({"parallelism": {"tensor": 1, "expert": true}})),
        );
        assert_ok(&o);
        assert_warn(
            &o,
            "spec.parallelism.expert: expert parallelism is enabled but tensor x data = 1",
        );
        let o = run(
            None,
            &with(
                v,
                json!({"parallelism": {"tensor": 2, "expert": true}, "template": gpu_pod(2)}),
            ),
        );
        assert_ok(&o);
        assert!(o.warnings.is_empty());
    }
}

#[test]
fn total_parallelism_is_immutable() {
    for v in VERSIONS {
        let old = with(
            v,
            json!({"parallelism": {"tensor": 2}, "template": gpu_pod(2)}),
        );
        let new = with(
            v,
            json!({"parallelism": {"tensor": 4}, "template": gpu_pod(4)}),
        );
        assert_err(
            &run(Some(&old), &new),
            "spec.parallelism",
            "spec.parallelism: Invalid value: 4: the total parallelism size (tensor x pipeline x data) is immutable: it was 2 and would become 4",
        );
        // Same product, different shape: fine.
        let same = with(
            v,
            json!({"parallelism": {"tensor": 1, "data": 2, "dataLocal": 1}, "template": gpu_pod(1), "worker": gpu_pod(1)}),
        );
        assert_ok(&run(Some(&old), &same));
        assert_ok(&run(Some(&old), &old));
        // Prefill too.
        let oldp = with(
            v,
            json!({"prefill": {"parallelism": {"tensor": 2}, "template": gpu_pod(2)}}),
        );
        let newp = with(
            v,
            json!({"prefill": {"parallelism": {"tensor": 1}, "template": gpu_pod(1)}}),
        );
        assert_err(
            &run(Some(&oldp), &newp),
            "spec.prefill.parallelism",
            "was 2 and would become 1",
        );
    }
}

#[test]
fn max_gpus_per_node_is_configurable() {
    let cfg = ValidateConfig {
        max_gpus_per_node: 4,
        ..ValidateConfig::default()
    };
    for v in VERSIONS {
        let o = validate(
            None,
            &with(
                v,
                json!({"parallelism": {"tensor": 8}, "template": gpu_pod(8)}),
            ),
            &cfg,
        );
        assert_err(
            &o,
            "spec.template.containers[0].resources.limits[nvidia.com/gpu]",
            "at most 4 GPUs",
        );
        let o = validate(
            None,
            &with(
                v,
                json!({"parallelism": {"tensor": 4}, "template": gpu_pod(4)}),
            ),
            &cfg,
        );
        assert_ok(&o);
    }
}

#[test]
fn scaling_rules() {
    let wva = json!({"maxReplicas": 4, "minReplicas": 1, "wva": {"hpa": {}}});
    let cases: Vec<Case> = vec![
        (
            "wva ok",
            json!({"replicas": null, "scaling": wva.clone()}),
            None,
            "",
        ),
        (
            "keda ok",
            json!({"replicas": null, "scaling": {"minReplicas": 2, "maxReplicas": 4, "keda": {"idleReplicaCount": 1, "triggers": [{"type": "prometheus", "metadata": {"query": "x"}}]}}}),
            None,
            "",
        ),
        (
            "replicas and scaling",
            json!({"scaling": wva.clone()}),
            Some("spec.scaling"),
            "Forbidden: scaling and replicas are mutually exclusive",
        ),
        (
            "neither wva nor keda",
            json!({"replicas": null, "scaling": {"maxReplicas": 2}}),
            Some("spec.scaling"),
            "Required value: exactly one of scaling.wva or scaling.keda",
        ),
        (
            "both wva and keda",
            json!({"replicas": null, "scaling": {"maxReplicas": 2, "wva": {"hpa": {}}, "keda": {"triggers": [{"type": "cpu", "metadata": {}}]}}}),
            Some("spec.scaling"),
            "wva and keda are mutually exclusive",
        ),
        (
            "min above max",
            json!({"replicas": null, "scaling": {"minReplicas": 5, "maxReplicas": 2, "wva": {"hpa": {}}}}),
            Some("spec.scaling.minReplicas"),
            "Invalid value: 5: minReplicas (5) cannot exceed maxReplicas (2)",
        ),
        (
            "keda without triggers",
            json!({"replicas": null, "scaling": {"maxReplicas": 2, "keda": {}}}),
            Some("spec.scaling.keda.triggers"),
            "at least one KEDA trigger",
        ),
        (
            "idle not below min",
            json!({"replicas": null, "scaling": {"minReplicas": 1, "maxReplicas": 2, "keda": {"idleReplicaCount": 1, "triggers": [{"type": "cpu", "metadata": {}}]}}}),
            Some("spec.scaling.keda.idleReplicaCount"),
            "Invalid value: 1: idleReplicaCount (1) must be less than minReplicas (1)",
        ),
        (
            "idle under wva keda",
            json!({"replicas": null, "scaling": {"minReplicas": 1, "maxReplicas": 2, "wva": {"keda": {"idleReplicaCount": 3}}}}),
            Some("spec.scaling.wva.keda.idleReplicaCount"),
            "must be less than minReplicas",
        ),
        (
            "wva without actuator",
            json!({"replicas": null, "scaling": {"maxReplicas": 2, "wva": {}}}),
            Some("spec.scaling.wva"),
            "either wva.hpa or wva.keda",
        ),
        (
            "prefill replicas and scaling",
            json!({"prefill": {"replicas": 1, "scaling": wva.clone()}}),
            Some("spec.prefill.scaling"),
            "scaling and replicas are mutually exclusive",
        ),
        (
            "decode and prefill same mode ok",
            json!({"replicas": null, "scaling": wva.clone(), "prefill": {"scaling": wva.clone()}}),
            None,
            "",
        ),
        (
            "decode and prefill different backends",
            json!({"replicas": null, "scaling": wva.clone(), "prefill": {"scaling": {"maxReplicas": 2, "wva": {"keda": {}}}}}),
            Some("spec.prefill.scaling.wva"),
            "decode and prefill must use the same actuator backend; decode uses hpa but prefill uses keda",
        ),
        (
            "decode and prefill different modes",
            json!({"replicas": null, "scaling": wva.clone(), "prefill": {"scaling": {"maxReplicas": 2, "keda": {"triggers": [{"type": "cpu", "metadata": {}}]}}}}),
            Some("spec.prefill.scaling"),
            "decode uses wva but prefill uses direct keda",
        ),
    ];
    table(cases, VERSIONS);
}

#[test]
fn router_rules() {
    let cases: Vec<Case> = vec![
        (
            "managed route ok",
            json!({"router": {"route": {}, "gateway": {}, "scheduler": {}}}),
            None,
            "",
        ),
        (
            "route refs with gateway refs ok",
            json!({"router": {"route": {"http": {"refs": [{"name": "r"}]}}, "gateway": {"refs": [{"name": "gw", "namespace": "ns"}]}}}),
            None,
            "",
        ),
        (
            "refs and inline spec",
            json!({"router": {"route": {"http": {"refs": [{"name": "r"}], "spec": {}}}, "gateway": {"refs": [{"name": "gw"}]}}}),
            Some("spec.router.route.http"),
            "Forbidden: custom HTTPRoute refs (spec.router.route.http.refs) and an inline route spec (spec.router.route.http.spec) are exclusive",
        ),
        (
            "refs with managed gateway",
            json!({"router": {"route": {"http": {"refs": [{"name": "r"}]}}, "gateway": {}}}),
            Some("spec.router.route.http.refs"),
            "custom HTTPRoutes cannot be used with a managed gateway (spec.router.gateway)",
        ),
        (
            "parentRefs conflict",
            json!({"router": {"route": {"http": {"spec": {"parentRefs": [{"name": "other"}]}}}, "gateway": {"refs": [{"name": "gw", "namespace": "ns"}]}}}),
            Some("spec.router.route.http.spec.parentRefs"),
            "conflict with spec.router.gateway.refs",
        ),
        (
            "scheduler replicas zero",
            json!({"router": {"scheduler": {"replicas": 0}}}),
            Some("spec.router.scheduler.replicas"),
            "Invalid value: 0: scheduler replicas must be greater than 0",
        ),
        (
            "scheduler config inline and ref",
            json!({"router": {"scheduler": {"config": {"inline": {"a": 1}, "ref": {"name": "cm", "key": "k"}}}}}),
            Some("spec.router.scheduler.config"),
            "config.inline and config.ref are exclusive",
        ),
        (
            "scheduler config ref ok",
            json!({"router": {"scheduler": {"replicas": 2, "config": {"ref": {"name": "cm", "key": "k"}}}}}),
            None,
            "",
        ),
        (
            "traffic split with a managed route ok",
            json!({"router": {"route": {"group": "llama", "weight": 20}, "gateway": {}}}),
            None,
            "",
        ),
        (
            "traffic split with ingress",
            json!({"router": {"ingress": {}, "route": {"group": "llama", "weight": 20}}}),
            Some("spec.router.route.group"),
            "Invalid value: \"llama\": traffic splitting requires Gateway API routing; the controller manages HTTPRoutes, not Ingress resources",
        ),
        (
            "weight alone with ingress",
            json!({"router": {"ingress": {}, "route": {"weight": 20}}}),
            Some("spec.router.route.group"),
            "Invalid value: \"\": traffic splitting requires Gateway API routing",
        ),
        (
            "group without weight",
            json!({"router": {"route": {"group": "llama"}}}),
            Some("spec.router.route.weight"),
            "Required value: group requires weight",
        ),
        (
            "traffic split with route refs",
            json!({"router": {"route": {"group": "llama", "weight": 20, "http": {"refs": [{"name": "r"}]}}, "gateway": {"refs": [{"name": "gw"}]}}}),
            Some("spec.router.route.group"),
            "traffic splitting cannot be used with custom HTTPRoute refs",
        ),
        (
            "scheduler config with neither inline nor ref",
            json!({"router": {"scheduler": {"config": {}}}}),
            Some("spec.router.scheduler.config"),
            "Required value: either config.inline (an EndpointPickerConfig) or config.ref",
        ),
        (
            "scheduler config inline empty",
            json!({"router": {"scheduler": {"config": {"inline": {}}}}}),
            Some("spec.router.scheduler.config.inline"),
            "Invalid value: {}: inline configuration is invalid",
        ),
        (
            "scheduler config ref without name",
            json!({"router": {"scheduler": {"config": {"ref": {"key": "k"}}}}}),
            Some("spec.router.scheduler.config.ref.name"),
            "Required value",
        ),
    ];
    table(cases, VERSIONS);
}

/// A preset is validated as written: parentRefs that repeat its gateway refs are pointless. A
/// service is validated after the mutating webhook derived its parentRefs from the gateway refs:
/// no warning about values the user did not write.
#[test]
fn parent_refs_repeating_gateway_refs_warn() {
    let router = json!({"router": {"route": {"http": {"spec": {"parentRefs": [{"name": "gw", "namespace": "ns"}]}}}, "gateway": {"refs": [{"name": "gw", "namespace": "ns"}]}}});
    for v in VERSIONS {
        let mut preset = with(v, router.clone());
        preset["kind"] = json!("LLMInferenceServiceConfig");
        let o = run(None, &preset);
        assert_ok(&o);
        assert_warn(
            &o,
            "spec.router.route.http.spec.parentRefs: parentRefs only repeat spec.router.gateway.refs",
        );
        let o = run(None, &with(v, router.clone()));
        assert_ok(&o);
        assert!(
            !o.warnings.iter().any(|w| w.contains("parentRefs")),
            "{:?}",
            o.warnings
        );
    }
}

#[test]
fn lora_rules() {
    let cases: Vec<Case> = vec![
        (
            "adapters ok",
            json!({"model": {"lora": {"maxRank": 16, "adapters": [{"name": "sql", "uri": "hf://org/sql-lora"}, {"name": "chat", "uri": "pvc://loras/chat"}]}}}),
            None,
            "",
        ),
        (
            "maxRank zero",
            json!({"model": {"lora": {"maxRank": 0}}}),
            Some("spec.model.lora.maxRank"),
            "Invalid value: 0: maxRank must be at least 1",
        ),
        (
            "maxAdapters zero",
            json!({"model": {"lora": {"maxAdapters": 0}}}),
            Some("spec.model.lora.maxAdapters"),
            "maxAdapters must be at least 1",
        ),
        (
            "maxCpuAdapters zero",
            json!({"model": {"lora": {"maxCpuAdapters": -2}}}),
            Some("spec.model.lora.maxCpuAdapters"),
            "maxCpuAdapters must be at least 1",
        ),
        (
            "adapter without name",
            json!({"model": {"lora": {"adapters": [{"uri": "hf://org/a"}]}}}),
            Some("spec.model.lora.adapters[0].name"),
            "Required value: every adapter needs a name",
        ),
        (
            "duplicate names",
            json!({"model": {"lora": {"adapters": [{"name": "a", "uri": "hf://org/a"}, {"name": "a", "uri": "hf://org/b"}]}}}),
            Some("spec.model.lora.adapters[1].name"),
            "Duplicate value: \"a\": duplicate adapter name (same as spec.model.lora.adapters[0])",
        ),
        (
            "adapter named as base model",
            json!({"model": {"name": "base", "lora": {"adapters": [{"name": "base", "uri": "hf://org/a"}]}}}),
            Some("spec.model.lora.adapters[0].name"),
            "adapter name must differ from the base model name \"base\"",
        ),
        (
            "adapter named as metadata.name",
            json!({"model": {"name": null, "lora": {"adapters": [{"name": "llama", "uri": "hf://org/a"}]}}}),
            Some("spec.model.lora.adapters[0].name"),
            "must differ from the base model name \"llama\"",
        ),
    ];
    table(cases, VERSIONS);
}

#[test]
fn kv_cache_offloading_rules() {
    // v1alpha2 only.
    let cases: Vec<Case> = vec![
        (
            "ok",
            json!({"kvCacheOffloading": {"cpu": "100Gi", "secondary": [{"fileSystem": {"emptyDir": {"size": "1Ti"}}}, {"fileSystem": {"pvc": {"ref": {"name": "kv"}}}}]}}),
            None,
            "",
        ),
        (
            "cpu missing",
            json!({"kvCacheOffloading": {"secondary": []}}),
            Some("spec.kvCacheOffloading.cpu"),
            "Required value: cpu",
        ),
        (
            "cpu zero",
            json!({"kvCacheOffloading": {"cpu": "0"}}),
            Some("spec.kvCacheOffloading.cpu"),
            "cpu must be greater than zero",
        ),
        (
            "emptyDir and pvc",
            json!({"kvCacheOffloading": {"cpu": "1Gi", "secondary": [{"fileSystem": {"emptyDir": {"size": "1Gi"}, "pvc": {"ref": {"name": "x"}}}}]}}),
            Some("spec.kvCacheOffloading.secondary[0].fileSystem"),
            "exactly one of emptyDir or pvc must be set",
        ),
        (
            "no backend",
            json!({"kvCacheOffloading": {"cpu": "1Gi", "secondary": [{"fileSystem": {}}]}}),
            Some("spec.kvCacheOffloading.secondary[0].fileSystem"),
            "Required value: exactly one of emptyDir or pvc",
        ),
        (
            "pvc spec and ref",
            json!({"kvCacheOffloading": {"cpu": "1Gi", "secondary": [{"fileSystem": {"pvc": {"spec": {}, "ref": {"name": "x"}}}}]}}),
            Some("spec.kvCacheOffloading.secondary[0].fileSystem.pvc"),
            "exactly one of pvc.spec or pvc.ref",
        ),
        (
            "pvc ref without name",
            json!({"kvCacheOffloading": {"cpu": "1Gi", "secondary": [{"fileSystem": {"pvc": {"ref": {"path": "/x"}}}}]}}),
            Some("spec.kvCacheOffloading.secondary[0].fileSystem.pvc.ref.name"),
            "Required value",
        ),
        (
            "prefill",
            json!({"prefill": {"kvCacheOffloading": {"cpu": "1Gi", "secondary": [{}]}}}),
            Some("spec.prefill.kvCacheOffloading.secondary[0].fileSystem"),
            "only fileSystem tiers",
        ),
    ];
    table(cases, &["serving.kserve.io/v1alpha2"]);
}

#[test]
fn rollout_rules() {
    let cases: Vec<Case> = vec![
        (
            "ok",
            json!({"rolloutStrategy": {"maxUnavailable": 0, "maxSurge": "25%"}}),
            None,
            "",
        ),
        (
            "negative",
            json!({"rolloutStrategy": {"maxUnavailable": -1}}),
            Some("spec.rolloutStrategy.maxUnavailable"),
            "Invalid value: -1: must be a non-negative integer",
        ),
        (
            "above 100%",
            json!({"rolloutStrategy": {"maxSurge": "150%"}}),
            Some("spec.rolloutStrategy.maxSurge"),
            "Invalid value: \"150%\": a percentage must be between 0% and 100%",
        ),
        (
            "not a percentage",
            json!({"rolloutStrategy": {"maxSurge": "abc"}}),
            Some("spec.rolloutStrategy.maxSurge"),
            "a percentage such as \"25%\"",
        ),
        (
            "both zero",
            json!({"rolloutStrategy": {"maxSurge": 0, "maxUnavailable": "0%"}}),
            Some("spec.rolloutStrategy"),
            "cannot both be zero",
        ),
        (
            "prefill",
            json!({"prefill": {"rolloutStrategy": {"maxSurge": "101%"}}}),
            Some("spec.prefill.rolloutStrategy.maxSurge"),
            "between 0% and 100%",
        ),
    ];
    table(cases, VERSIONS);
}

#[test]
fn model_uri_rules() {
    let uri = |u: &str| json!({"model": {"uri": u}});
    let mut cases: Vec<Case> = vec![];
    for ok in [
        "hf://meta-llama/Llama-3.1-8B",
        "hf://org/model:main",
        "pvc://models",
        "pvc://models/llama/8b",
        "oci://quay.io/org/model:1",
        "oci+native://quay.io/org/model:1",
        "s3://bucket/path",
        "gs://bucket/path",
        "https://example.com/model.tar",
        // Hugging Face ids without organisation, as KServe admits them.
        "hf://gpt2",
        "hf://gpt2:main",
    ] {
        cases.push(("ok", uri(ok), None, ""));
    }
    cases.extend([
        (
            "no scheme",
            uri("meta-llama/Llama"),
            Some("spec.model.uri"),
            "the model URI needs a scheme",
        ),
        (
            "bad scheme",
            uri("ftp://x/y"),
            Some("spec.model.uri"),
            "Unsupported value: \"ftp://x/y\": unsupported model URI scheme \"ftp\"",
        ),
        (
            "hf with a path",
            uri("hf://org/model/extra"),
            Some("spec.model.uri"),
            "hf://[<org>/]<model>[:<revision>]",
        ),
        (
            "hf empty org",
            uri("hf:///model"),
            Some("spec.model.uri"),
            "hf://[<org>/]<model>[:<revision>]",
        ),
        (
            "hf empty revision",
            uri("hf://org/model:"),
            Some("spec.model.uri"),
            "the revision after",
        ),
        (
            "pvc bad claim",
            uri("pvc://Bad_Claim/x"),
            Some("spec.model.uri"),
            "pvc://<claim-name>[/<path>]",
        ),
        (
            "pvc empty",
            uri("pvc://"),
            Some("spec.model.uri"),
            "pvc://<claim-name>",
        ),
        (
            "s3 empty",
            uri("s3://"),
            Some("spec.model.uri"),
            "nothing after s3://",
        ),
        (
            "missing uri",
            json!({"model": {"uri": null}}),
            Some("spec.model.uri"),
            "Required value: the model URI is required",
        ),
        (
            "adapter uri",
            json!({"model": {"lora": {"adapters": [{"name": "a", "uri": "hf://x/y/z"}]}}}),
            Some("spec.model.lora.adapters[0].uri"),
            "hf://[<org>/]<model>",
        ),
    ]);
    table(cases, VERSIONS);
}

/// KServe's managed DRA annotation rules, on services of both versions (the full table is in
/// src/validate/dra.rs); not applied to configs, as in KServe.
#[test]
fn managed_dra_annotations() {
    let with_ann = |v: &str, ann: Value| {
        let mut o = base(v);
        merge(&mut o, &json!({"metadata": {"annotations": ann}}));
        o
    };
    for v in VERSIONS {
        assert_ok(&run(
            None,
            &with_ann(
                v,
                json!({"serving.kserve.io/exp-dra-device-class": "gpu.nvidia.com", "serving.kserve.io/exp-dra-device-count": "2"}),
            ),
        ));
        let o = run(
            None,
            &with_ann(v, json!({"serving.kserve.io/exp-dra-device-count": "0"})),
        );
        assert_err(
            &o,
            "metadata.annotations[serving.kserve.io/exp-dra-device-class]",
            "Required value: serving.kserve.io/exp-dra-device-class is required to enable managed DRA",
        );
        assert_err(
            &o,
            "metadata.annotations[serving.kserve.io/exp-dra-device-count]",
            "Invalid value: \"0\"",
        );
        let o = run(
            None,
            &with_ann(
                v,
                json!({"serving.kserve.io/exp-dra-device-class": "gpu.nvidia.com", "serving.kserve.io/exp-dra-container-name": "Main_1"}),
            ),
        );
        assert_err(
            &o,
            "metadata.annotations[serving.kserve.io/exp-dra-container-name]",
            "container name must be a DNS label",
        );
        // A config carrying them is not checked (KServe's config webhook does not).
        let cfg = json!({"apiVersion": v, "kind": "LLMInferenceServiceConfig",
            "metadata": {"name": "p", "annotations": {"serving.kserve.io/exp-dra-device-count": "x"}}, "spec": {}});
        assert_ok(&run(None, &cfg));
    }
}

/// KServe admits `hf://gpt2`; the warning says what its storage initializer does with it.
#[test]
fn hf_id_without_org_is_accepted_with_a_warning() {
    for v in VERSIONS {
        let o = run(None, &with(v, json!({"model": {"uri": "hf://gpt2"}})));
        assert_ok(&o);
        assert_warn(
            &o,
            "spec.model.uri: \"hf://gpt2\" has no organisation; Hugging Face resolves it, but KServe's storage initializer downloads only hf://<owner>/<model>",
        );
        let o = run(None, &base(v));
        assert!(o.warnings.is_empty(), "{:?}", o.warnings);
    }
}

#[test]
fn config_kind() {
    for v in VERSIONS {
        // A partial preset: no model, only a template fragment.
        let preset = json!({"apiVersion": v, "kind": "LLMInferenceServiceConfig", "metadata": {"name": "p"},
            "spec": {"template": {"containers": [{"name": "main", "image": "quay.io/org/vllm"}]}}});
        assert_ok(&run(None, &preset));
        let mut bad = preset.clone();
        merge(
            &mut bad,
            &json!({"spec": {"baseRefs": [{"name": "other"}], "model": {"uri": "foo://x"}, "router": {"scheduler": {"replicas": 0}}}}),
        );
        let o = run(None, &bad);
        assert_err(
            &o,
            "spec.baseRefs",
            "spec.baseRefs: Forbidden: baseRefs is not permitted in an LLMInferenceServiceConfig",
        );
        assert_err(&o, "spec.model.uri", "unsupported model URI scheme");
        assert_err(&o, "spec.router.scheduler.replicas", "greater than 0");
        // baseRefs are fine on a service, and replace a missing model URI.
        assert_ok(&run(
            None,
            &with(v, json!({"baseRefs": [{"name": "preset"}], "model": null})),
        ));
    }
}

#[test]
fn pod_templates_are_pod_specs() {
    let cases: Vec<Case> = vec![
        (
            "typo in limits",
            json!({"template": {"containers": [{"name": "main", "resources": {"limit": {"cpu": "1"}}}]}}),
            Some("spec.template.containers[0].resources.limit"),
            "spec.template.containers[0].resources.limit: Invalid value: {\"cpu\":\"1\"}: unknown field \"limit\"; did you mean \"limits\"?",
        ),
        (
            "string port",
            json!({"template": {"containers": [{"name": "main", "ports": [{"containerPort": "8000"}]}]}}),
            Some("spec.template.containers[0].ports[0].containerPort"),
            "Invalid value: \"8000\": must be an integer, not a string",
        ),
        (
            "unknown pod field",
            json!({"worker": {"nodeSelectr": {}}, "parallelism": {"pipeline": 2}}),
            Some("spec.worker.nodeSelectr"),
            "unknown field \"nodeSelectr\"; did you mean \"nodeSelector\"?",
        ),
        (
            "prefill template",
            json!({"prefill": {"template": {"containers": {"name": "main"}}}}),
            Some("spec.prefill.template.containers"),
            "must be a list, not an object",
        ),
        (
            "scheduler template",
            json!({"router": {"scheduler": {"template": {"containers": [{"name": "epp", "imagePullPolicy": 3}]}}}}),
            Some("spec.router.scheduler.template.containers[0].imagePullPolicy"),
            "must be a string",
        ),
        (
            "tokenizer template",
            json!({"router": {"scheduler": {"tokenizer": {"template": {"containers": [{"name": "t", "foo": 1}]}}}}}),
            Some("spec.router.scheduler.tokenizer.template.containers[0].foo"),
            "unknown field \"foo\"",
        ),
        (
            "prefill worker",
            json!({"prefill": {"parallelism": {"pipeline": 2}, "worker": {"hostNetwork": "yes"}}}),
            Some("spec.prefill.worker.hostNetwork"),
            "must be a boolean",
        ),
        (
            "full pod spec ok",
            json!({"template": {
                "serviceAccountName": "sa",
                "nodeSelector": {"gpu": "h100"},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}],
                "containers": [{"name": "main", "image": "vllm", "args": ["--x"], "env": [{"name": "A", "value": "b"}],
                    "ports": [{"containerPort": 8000, "name": "http"}],
                    "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10},
                    "resources": {"limits": {"nvidia.com/gpu": "1", "cpu": 8, "memory": "64Gi"}, "requests": {"cpu": "500m"}},
                    "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}]}]}}),
            None,
            "",
        ),
    ];
    table(cases, VERSIONS);
}

/// Wrong JSON types at several levels: errors, never a panic.
#[test]
fn hostile_input_does_not_panic() {
    let hostile: Vec<Value> = vec![
        json!(null),
        json!("a string"),
        json!([1, 2]),
        json!({"kind": 3, "metadata": 7, "spec": "a string"}),
        json!({"spec": {"template": [1, 2], "worker": "w", "prefill": []}}),
        json!({"spec": {"parallelism": {"tensor": "4", "data": 1.5, "dataLocal": [], "pipeline": {}, "expert": "yes"}}}),
        json!({"spec": {"template": {"containers": "main"}, "parallelism": "x"}}),
        json!({"spec": {"template": {"containers": [1, "x", null, {"resources": "big"}, {"resources": {"limits": []}}, {"resources": {"limits": {"nvidia.com/gpu": "lots"}}}]}}}),
        json!({"spec": {"template": {"containers": [{"resources": {"limits": {"nvidia.com/gpu": 99999999999999999999u128.to_string()}}}]}, "parallelism": {"tensor": i64::MAX, "data": i64::MAX, "dataLocal": 1}}}),
        json!({"spec": {"model": "hf://x", "router": [], "scaling": 1, "replicas": "2", "rolloutStrategy": 5, "kvCacheOffloading": "yes"}}),
        json!({"spec": {"model": {"uri": 5, "name": [], "lora": {"adapters": {"a": 1}, "maxRank": "x"}}}}),
        json!({"spec": {"model": {"lora": {"adapters": [null, 1, {"name": 5}]}}, "router": {"route": {"http": {"refs": "x", "spec": {"parentRefs": "y"}}}, "gateway": {"refs": {}}, "scheduler": {"config": {"inline": 1, "ref": 2}, "replicas": []}}}}),
        json!({"spec": {"scaling": {"maxReplicas": "4", "minReplicas": null, "wva": [], "keda": {"triggers": {}}}, "prefill": {"scaling": {"keda": {"idleReplicaCount": "x"}}}}}),
        json!({"spec": {"kvCacheOffloading": {"cpu": [], "secondary": [1, {"fileSystem": []}, {"fileSystem": {"pvc": "x", "emptyDir": 3}}]}}}),
    ];
    let cfg = ValidateConfig::default();
    let policies =
        PolicySet::from_yaml_str(include_str!("../../policies/gpu-limits.yaml")).expect("policy");
    for (i, h) in hostile.iter().enumerate() {
        for old in [None, Some(h), Some(&hostile[0])] {
            let o = validate_with_policies(old, h, &cfg, &policies);
            for e in &o.errors {
                let _ = e.to_string();
            }
            if i > 0 {
                assert!(
                    !o.errors.is_empty(),
                    "hostile input {i} should be rejected: {h}"
                );
            }
        }
    }
    // Spot checks of the type errors.
    let o = run(
        None,
        &with(
            "serving.kserve.io/v1alpha2",
            json!({"parallelism": {"tensor": "4"}}),
        ),
    );
    assert_err(
        &o,
        "spec.parallelism.tensor",
        "spec.parallelism.tensor: Invalid value: \"4\": must be an integer, not a string",
    );
    let o = run(
        None,
        &with("serving.kserve.io/v1alpha2", json!({"template": [1]})),
    );
    assert_err(&o, "spec.template", "must be an object, not a list");
    let o = run(
        None,
        &with(
            "serving.kserve.io/v1alpha1",
            json!({"template": {"containers": "main"}}),
        ),
    );
    assert_err(
        &o,
        "spec.template.containers",
        "must be a list, not a string",
    );
    let mut o = base("serving.kserve.io/v1alpha1");
    o["spec"] = json!("x");
    assert_err(&run(None, &o), "spec", "must be an object, not a string");
}

#[test]
fn confidential_v1alpha2() {
    let v = "serving.kserve.io/v1alpha2";
    let o = run(
        None,
        &with(
            v,
            json!({"model": {"confidential": {"enabled": true, "resourceId": "kbs:///repo/key/tag"}}}),
        ),
    );
    assert_ok(&o);
    let o = run(
        None,
        &with(
            v,
            json!({"model": {"confidential": {"enabled": true, "resourceId": "repo/key"}}}),
        ),
    );
    assert_err(
        &o,
        "spec.model.confidential.resourceId",
        "must be in the format kbs:///<repo>/<type>/<tag>",
    );
    let o = run(
        None,
        &with(
            v,
            json!({"model": {"uri": "pvc://models/x", "confidential": {"enabled": true}}}),
        ),
    );
    assert_ok(&o);
    assert_warn(
        &o,
        "spec.model.confidential: confidential has no effect with PVC URIs",
    );
}

/// `tests/fixtures/validate/accept/*.yaml` validate cleanly; `reject/*.yaml` produce every
/// error named by an `# expect: ` line.
#[test]
fn fixtures() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validate");
    let mut n = 0;
    for dir in ["accept", "reject"] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
            .expect("fixtures")
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).expect("read");
            let obj: Value = serde_norway::from_str(&text).expect("yaml");
            let o = run(None, &obj);
            let got = rendered(&o);
            if dir == "accept" {
                assert!(got.is_empty(), "{}: {got:#?}", f.display());
            } else {
                let expects: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("# expect: "))
                    .collect();
                assert!(!expects.is_empty(), "{}: no expect lines", f.display());
                for e in expects {
                    assert!(
                        got.iter().any(|g| g.starts_with(e)),
                        "{}: expected {e:?} in {got:#?}",
                        f.display()
                    );
                }
            }
            n += 1;
        }
    }
    assert!(n >= 4);
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|i| json!(i)),
            (-1e6f64..1e6).prop_map(|f| json!(f)),
            "[a-z0-9:/%.-]{0,12}".prop_map(Value::String),
            prop_oneof![
                Just("4"),
                Just("hf://a/b"),
                Just("25%"),
                Just("2000m"),
                Just("pvc://"),
                Just("main")
            ]
            .prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop_oneof![
                            Just("tensor".to_string()),
                            Just("containers".to_string()),
                            Just("name".to_string()),
                            Just("resources".to_string()),
                            Just("limits".to_string()),
                            Just("nvidia.com/gpu".to_string()),
                            "[a-z]{1,6}"
                        ],
                        inner
                    ),
                    0..4
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    const PATHS: &[&[&str]] = &[
        &[],
        &["spec"],
        &["metadata"],
        &["spec", "parallelism"],
        &["spec", "parallelism", "tensor"],
        &["spec", "template"],
        &["spec", "template", "containers"],
        &["spec", "worker"],
        &["spec", "prefill"],
        &["spec", "model"],
        &["spec", "model", "lora"],
        &["spec", "router"],
        &["spec", "scaling"],
        &["spec", "kvCacheOffloading"],
        &["spec", "rolloutStrategy"],
        &["spec", "router", "scheduler"],
    ];

    fn put(obj: &mut Value, path: &[&str], v: Value) {
        match path.split_first() {
            None => *obj = v,
            Some((k, rest)) => {
                if !obj.is_object() {
                    *obj = json!({});
                }
                if let Some(m) = obj.as_object_mut() {
                    put(m.entry(k.to_string()).or_insert(Value::Null), rest, v);
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        #[test]
        fn never_panics(v in any_json(), w in any_json(), i in 0..PATHS.len(), j in 0..PATHS.len(), version in 0..2usize) {
            let policies = PolicySet::load_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/policies")).expect("policies");
            let mut new = base(VERSIONS[version]);
            put(&mut new, PATHS[i], v);
            let mut old = base(VERSIONS[version]);
            put(&mut old, PATHS[j], w);
            let o = validate_with_policies(Some(&old), &new, &ValidateConfig::default(), &policies);
            for e in &o.errors {
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }
}

/// A preset may set parallelism without GPUs: the mutating webhook injects them into the
/// service that uses it. GPUs it does set must still match.
#[test]
fn presets_with_parallelism_but_no_gpus_are_accepted() {
    let cfg = llmisvc::validate::ValidateConfig::default();
    let preset = serde_json::json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": "p", "namespace": "team"},
        "spec": {"parallelism": {"tensor": 2}, "template": {"containers": [{"name": "main"}]}}
    });
    let out = llmisvc::validate::validate(None, &preset, &cfg);
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let mut bad = preset.clone();
    bad["spec"]["template"]["containers"][0]["resources"] =
        serde_json::json!({"limits": {"nvidia.com/gpu": "4"}});
    let out = llmisvc::validate::validate(None, &bad, &cfg);
    assert!(
        out.errors
            .iter()
            .any(|e| e.field == "spec.parallelism.tensor"),
        "{:?}",
        out.errors
    );
}
