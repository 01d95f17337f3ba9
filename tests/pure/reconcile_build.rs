//! The reconciler's pure builder: golden files and invariants.
//!
//! `tests/golden/reconcile/NAME.yaml` is a service as stored (expanded by
//! `llmisvc render`, with a uid added); `NAME.out.yaml` holds the objects `build` makes for it.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test pure reconcile_build::`.

use crate::support;
use std::path::{Path, PathBuf};

use llmisvc::reconcile::build::{
    BuildOptions, MANAGED_BY, MANAGED_BY_LABEL, NAME_LABEL, PART_OF, PART_OF_LABEL,
    SERVICE_NAMESPACE_LABEL, WvaPrometheus, WvaPrometheusAuth, build_with, cluster_scoped, wva,
};
use serde_json::Value;

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/reconcile");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let n = p.file_name()?.to_str()?.to_string();
            (n.ends_with(".yaml") && !n.ends_with(".out.yaml")).then_some(p)
        })
        .collect();
    v.sort();
    assert!(v.len() >= 8, "golden inputs missing");
    v
}

/// The cluster settings the goldens are built with (a Prometheus for `scaling.wva.keda`).
fn opts() -> BuildOptions {
    BuildOptions {
        wva_prometheus: Some(WvaPrometheus {
            url: "https://prometheus.monitoring.svc:9091".into(),
            insecure_skip_verify: false,
            auth: None,
        }),
    }
}

fn build(svc: &Value) -> Result<Vec<Value>, llmisvc::reconcile::build::BuildError> {
    build_with(svc, &opts())
}

fn load(p: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn to_yaml(objs: &[Value]) -> String {
    objs.iter()
        .map(|o| format!("---\n{}", serde_norway::to_string(o).unwrap()))
        .collect()
}

#[test]
fn golden_files() {
    let mut goldens = support::golden::Goldens::updatable(
        "UPDATE_GOLDEN=1 cargo test --test pure reconcile_build::",
    );
    for input in inputs() {
        let svc = load(&input);
        let objs = build(&svc).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let rendered = to_yaml(&objs);
        goldens.check(&input.with_extension("out.yaml"), &rendered);
    }
    goldens.finish();
}

#[test]
fn every_child_is_owned_labelled_and_unique() {
    for input in inputs() {
        let svc = load(&input);
        let objs = build(&svc).unwrap();
        assert_eq!(build(&svc).unwrap(), objs, "not deterministic");
        let name = svc["metadata"]["name"].as_str().unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for o in &objs {
            let m = &o["metadata"];
            let id = format!("{} {}/{}", o["apiVersion"], o["kind"], m["name"]);
            assert!(
                seen.insert(id.clone()),
                "{}: duplicate {id}",
                input.display()
            );
            assert_eq!(m["labels"][MANAGED_BY_LABEL], MANAGED_BY, "{id}");
            assert_eq!(m["labels"][NAME_LABEL], name, "{id}");
            assert_eq!(m["labels"][PART_OF_LABEL], PART_OF, "{id}");
            if cluster_scoped(o["kind"].as_str().unwrap()) {
                // No namespaced owner possible: found by its labels instead.
                assert!(m.get("namespace").is_none() && m.get("ownerReferences").is_none());
                assert_eq!(
                    m["labels"][SERVICE_NAMESPACE_LABEL],
                    svc["metadata"]["namespace"]
                );
                continue;
            }
            assert_eq!(m["namespace"], svc["metadata"]["namespace"]);
            let owners = m["ownerReferences"].as_array().unwrap();
            assert_eq!(owners.len(), 1);
            assert_eq!(owners[0]["uid"], svc["metadata"]["uid"]);
            assert_eq!(owners[0]["apiVersion"], "serving.kserve.io/v1alpha2");
            assert_eq!(owners[0]["controller"], true);
            assert_eq!(owners[0]["blockOwnerDeletion"], true);
            assert!(!m["name"].as_str().unwrap().is_empty());
        }
        assert!(
            !objs.iter().any(|o| o["kind"] == "Gateway"),
            "a Gateway is never created"
        );
    }
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} missing"))
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/reconcile")
        .join(format!("{name}.yaml"))
}

fn golden(name: &str) -> Vec<Value> {
    build(&load(&golden_path(name))).unwrap()
}

#[test]
fn multi_node_group_sizes() {
    // data 16 / dataLocal 8 = 2 pods per group.
    let objs = golden("multinode-data-parallel");
    let l = find(&objs, "LeaderWorkerSet", "deepseek-dp-kserve-mn");
    assert_eq!(l["spec"]["leaderWorkerTemplate"]["size"], 2);
    assert_eq!(l["spec"]["startupPolicy"], "LeaderCreated");
    // pipeline 4 = 4 pods per group, 2 groups.
    let objs = golden("pipeline");
    let l = find(&objs, "LeaderWorkerSet", "llama-pp-kserve-mn");
    assert_eq!(l["spec"]["leaderWorkerTemplate"]["size"], 4);
    assert_eq!(l["spec"]["replicas"], 2);
    // prefill/decode both multi-node.
    let objs = golden("prefill-decode-multinode");
    let d = find(&objs, "LeaderWorkerSet", "deepseek-pd-kserve-mn");
    let p = find(&objs, "LeaderWorkerSet", "deepseek-pd-kserve-mn-prefill");
    assert_eq!(d["spec"]["leaderWorkerTemplate"]["size"], 2);
    assert_eq!(p["spec"]["leaderWorkerTemplate"]["size"], 1);
    let role = |o: &Value| {
        o["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]["llm-d.ai/role"]
            .clone()
    };
    assert_eq!(role(d), "decode");
    assert_eq!(role(p), "prefill");
}

#[test]
fn scheduler_pool_route() {
    let objs = golden("prefill-scheduler");
    let n = "qwen-pd";
    let sched = find(&objs, "Deployment", &format!("{n}-kserve-router-scheduler"));
    assert_eq!(sched["spec"]["replicas"], 2);
    assert_eq!(
        sched["spec"]["template"]["spec"]["serviceAccountName"],
        format!("{n}-epp-sa")
    );
    find(&objs, "ServiceAccount", &format!("{n}-epp-sa"));
    find(&objs, "Role", &format!("{n}-epp-role"));
    find(&objs, "RoleBinding", &format!("{n}-epp-rb"));
    let svc = find(&objs, "Service", &format!("{n}-epp-service"));
    let ports: Vec<_> = svc["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [9002, 9003, 9090]);
    let pool = find(&objs, "InferencePool", &format!("{n}-inference-pool"));
    assert_eq!(pool["apiVersion"], "inference.networking.k8s.io/v1");
    // The pool selects the workload pods.
    let sel = pool["spec"]["selector"]["matchLabels"].as_object().unwrap();
    let pod_labels = &find(&objs, "Deployment", &format!("{n}-kserve"))["spec"]["template"]["metadata"]
        ["labels"];
    for (k, v) in sel {
        assert_eq!(&pod_labels[k], v, "{k}");
    }
    let route = find(&objs, "HTTPRoute", &format!("{n}-kserve-route"));
    assert!(route["spec"]["parentRefs"].is_array());
    let d = find(&objs, "Deployment", &format!("{n}-kserve"));
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 1);
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"]["team"],
        "search"
    );
    find(&objs, "Deployment", &format!("{n}-kserve-prefill"));
    let ws = find(&objs, "Service", &format!("{n}-kserve-workload-svc"));
    assert_eq!(ws["spec"]["ports"][0]["port"], 8000);
    assert_eq!(ws["spec"]["ports"][0]["name"], "http");
}

#[test]
fn scaling_objects() {
    let objs = golden("scaling-hpa");
    assert!(
        find(&objs, "Deployment", "qwen-hpa-kserve")["spec"]
            .get("replicas")
            .is_none()
    );
    let h = find(&objs, "HorizontalPodAutoscaler", "qwen-hpa-kserve-hpa");
    assert_eq!(h["spec"]["maxReplicas"], 4);
    assert_eq!(h["spec"]["scaleTargetRef"]["name"], "qwen-hpa-kserve");
    assert_eq!(
        h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        300
    );
    // As KServe builds it: WVA's metric for the variant named after the HPA, followed exactly,
    // and the annotations by which WVA discovers the HPA.
    let m = &h["spec"]["metrics"][0]["external"];
    assert_eq!(m["metric"]["name"], "wva_desired_replicas");
    assert_eq!(
        m["metric"]["selector"]["matchLabels"]["variant_name"],
        "qwen-hpa-kserve-hpa"
    );
    assert_eq!(
        m["target"],
        serde_json::json!({"type": "Value", "value": "1"})
    );
    let a = &h["metadata"]["annotations"];
    assert_eq!(a[wva::MANAGED_ANNOTATION], "true");
    assert_eq!(a[wva::MODEL_ID_ANNOTATION], "qwen-hpa");
    assert!(a.get(wva::VARIANT_COST_ANNOTATION).is_none());
    assert_eq!(h["metadata"]["labels"][wva::ACCELERATOR_LABEL], "unknown");

    // scaling.wva.keda: a ScaledObject with a Prometheus trigger on the same metric.
    let objs = golden("scaling-wva-keda");
    let s = find(&objs, "ScaledObject", "qwen-wva-keda-kserve-keda");
    assert!(
        !objs.iter().any(|o| o["kind"] == "HorizontalPodAutoscaler"),
        "no HPA of ours beside the ScaledObject"
    );
    assert_eq!(s["spec"]["minReplicaCount"], 1);
    assert_eq!(s["spec"]["maxReplicaCount"], 4);
    assert_eq!(s["spec"]["pollingInterval"], 30);
    assert_eq!(s["spec"]["cooldownPeriod"], 120);
    assert_eq!(s["spec"]["scaleTargetRef"]["name"], "qwen-wva-keda-kserve");
    let t = &s["spec"]["triggers"][0];
    assert_eq!(t["type"], "prometheus");
    assert_eq!(t["name"], "wva-desired-replicas");
    assert_eq!(
        t["metadata"]["query"],
        r#"wva_desired_replicas{variant_name="qwen-wva-keda-kserve-keda",exported_namespace="demo"}"#
    );
    assert_eq!(
        t["metadata"]["serverAddress"],
        "https://prometheus.monitoring.svc:9091"
    );
    assert_eq!(t["metadata"]["threshold"], "1");
    assert_eq!(t["metadata"]["unsafeSsl"], "false");
    assert!(t.get("authenticationRef").is_none());
    assert_eq!(
        s["metadata"]["annotations"][wva::VARIANT_COST_ANNOTATION],
        "5.0"
    );
    assert_eq!(s["metadata"]["labels"][wva::ACCELERATOR_LABEL], "H100");
    // With KEDA authentication configured, the trigger names it.
    let mut o = opts();
    o.wva_prometheus.as_mut().unwrap().auth = Some(WvaPrometheusAuth {
        modes: "bearer".into(),
        trigger_authentication: "prom-auth".into(),
        kind: "ClusterTriggerAuthentication".into(),
    });
    let svc = load(&golden_path("scaling-wva-keda"));
    let objs = build_with(&svc, &o).unwrap();
    let t = &find(&objs, "ScaledObject", "qwen-wva-keda-kserve-keda")["spec"]["triggers"][0];
    assert_eq!(t["metadata"]["authModes"], "bearer");
    assert_eq!(
        t["authenticationRef"],
        serde_json::json!({"name": "prom-auth", "kind": "ClusterTriggerAuthentication"})
    );
    // Without a Prometheus the reconciler cannot build it, and says what to configure.
    let err = build_with(&svc, &BuildOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("spec.scaling.wva.keda: ")
            && err.to_string().contains("--wva-prometheus-url"),
        "{err}"
    );
    let objs = golden("scaling-keda");
    assert!(
        find(&objs, "Deployment", "qwen-keda-kserve")["spec"]
            .get("replicas")
            .is_none()
    );
    let s = find(&objs, "ScaledObject", "qwen-keda-kserve-keda");
    assert_eq!(s["spec"]["maxReplicaCount"], 8);
    assert_eq!(s["spec"]["triggers"][0]["type"], "prometheus");
    // A gateway ref alone builds no route.
    let objs = golden("gateway-only");
    assert_eq!(objs.len(), 2);
}

/// As KServe (`ptr.Deref(scaling.MinReplicas, 1)`): a KEDA ScaledObject without
/// `minReplicas` keeps one replica, it does not fall to KEDA's default of zero.
#[test]
fn keda_min_replica_count_defaults_to_one() {
    let mut svc = load(&golden_path("scaling-keda"));
    svc["spec"]["scaling"]
        .as_object_mut()
        .unwrap()
        .remove("minReplicas");
    let objs = build(&svc).unwrap();
    let s = find(&objs, "ScaledObject", "qwen-keda-kserve-keda");
    assert_eq!(s["spec"]["minReplicaCount"], 1);
    svc["spec"]["scaling"]["minReplicas"] = 0.into();
    let objs = build(&svc).unwrap();
    let s = find(&objs, "ScaledObject", "qwen-keda-kserve-keda");
    assert_eq!(s["spec"]["minReplicaCount"], 0);
}

/// As KServe's `expectedMultiNode{Main,Prefill}ServiceAccount`: multi-node pods (leaders and
/// workers) run as a ServiceAccount named after their LeaderWorkerSet, unless the template
/// (else the worker) names its own; decode pods with the routing sidecar get the Role
/// `<n>-kserve-mn-role` (pods, InferencePools) bound to it by `<n>-kserve-mn-rb`.
#[test]
fn multi_node_service_account_and_sidecar_rbac() {
    let objs = golden("multinode-data-parallel");
    let sa = find(&objs, "ServiceAccount", "deepseek-dp-kserve-mn");
    assert_eq!(sa["metadata"]["labels"][NAME_LABEL], "deepseek-dp");
    assert_eq!(sa["metadata"]["labels"][PART_OF_LABEL], PART_OF);
    let lws =
        &find(&objs, "LeaderWorkerSet", "deepseek-dp-kserve-mn")["spec"]["leaderWorkerTemplate"];
    assert_eq!(
        lws["leaderTemplate"]["spec"]["serviceAccountName"],
        "deepseek-dp-kserve-mn"
    );
    assert_eq!(
        lws["workerTemplate"]["spec"]["serviceAccountName"],
        "deepseek-dp-kserve-mn"
    );
    // No routing sidecar: no Role.
    assert!(!objs.iter().any(|o| o["kind"] == "Role"));

    // The user's own ServiceAccount: used by leaders and workers, none created.
    let mut svc = load(&golden_path("multinode-data-parallel"));
    svc["spec"]["worker"]["serviceAccountName"] = "mine".into();
    let objs = build(&svc).unwrap();
    assert!(!objs.iter().any(|o| o["kind"] == "ServiceAccount"));
    let lws =
        &find(&objs, "LeaderWorkerSet", "deepseek-dp-kserve-mn")["spec"]["leaderWorkerTemplate"];
    assert_eq!(lws["leaderTemplate"]["spec"]["serviceAccountName"], "mine");
    assert_eq!(lws["workerTemplate"]["spec"]["serviceAccountName"], "mine");

    let objs = golden("prefill-decode-multinode");
    find(&objs, "ServiceAccount", "deepseek-pd-kserve-mn");
    find(&objs, "ServiceAccount", "deepseek-pd-kserve-mn-prefill");
    let role = find(&objs, "Role", "deepseek-pd-kserve-mn-role");
    assert_eq!(role["rules"][1]["resources"][0], "inferencepools");
    let rb = find(&objs, "RoleBinding", "deepseek-pd-kserve-mn-rb");
    assert_eq!(rb["roleRef"]["name"], "deepseek-pd-kserve-mn-role");
    assert_eq!(rb["subjects"][0]["name"], "deepseek-pd-kserve-mn");
}

/// As KServe's `expectedSchedulerAuthDelegatorBinding`: a scheduler gets the ClusterRoleBinding
/// `ChildName(<namespace>, "-<n>-epp-auth-rb")` of `system:auth-delegator` to its
/// ServiceAccount (the picker authenticates `/metrics`); cluster-scoped, without owner, labelled
/// with the service's namespace. None without a scheduler of our own (no scheduler, pool.ref).
#[test]
fn scheduler_auth_delegator_binding() {
    let objs = golden("prefill-scheduler");
    let crbs: Vec<_> = objs
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding")
        .collect();
    assert_eq!(crbs.len(), 1);
    let crb = crbs[0];
    let svc = load(&golden_path("prefill-scheduler"));
    let (ns, n) = (
        svc["metadata"]["namespace"].as_str().unwrap(),
        svc["metadata"]["name"].as_str().unwrap(),
    );
    assert_eq!(crb["metadata"]["name"], format!("{ns}-{n}-epp-auth-rb"));
    assert_eq!(
        crb["roleRef"],
        serde_json::json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"})
    );
    assert_eq!(
        crb["subjects"],
        serde_json::json!([{"kind": "ServiceAccount", "name": format!("{n}-epp-sa"), "namespace": ns}])
    );
    assert_eq!(crb["metadata"]["labels"][SERVICE_NAMESPACE_LABEL], ns);
    assert_eq!(
        crb["metadata"]["labels"]["app.kubernetes.io/component"],
        "llminferenceservice-router-scheduler"
    );
    assert!(crb["metadata"].get("ownerReferences").is_none());
    // No scheduler: none.
    assert!(
        !golden("minimal")
            .iter()
            .any(|o| o["kind"] == "ClusterRoleBinding")
    );
}

/// As KServe's `expectedSchedulerInferencePoolV1Alpha2`: the pool also in
/// `inference.networking.x-k8s.io/v1alpha2`, same name and labels, its spec converted as the
/// inference extension's `ConvertFrom` does (selector map, targetPortNumber, extensionRef).
#[test]
fn v1alpha2_inference_pool_alongside_v1() {
    let objs = golden("prefill-scheduler");
    let pools: Vec<_> = objs
        .iter()
        .filter(|o| o["kind"] == "InferencePool")
        .collect();
    assert_eq!(pools.len(), 2);
    let (v1, old) = (pools[0], pools[1]);
    assert_eq!(v1["apiVersion"], "inference.networking.k8s.io/v1");
    assert_eq!(old["apiVersion"], "inference.networking.x-k8s.io/v1alpha2");
    assert_eq!(old["metadata"]["name"], v1["metadata"]["name"]);
    assert_eq!(old["metadata"]["labels"], v1["metadata"]["labels"]);
    assert_eq!(
        old["spec"]["selector"],
        v1["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        old["spec"]["targetPortNumber"],
        v1["spec"]["targetPorts"][0]["number"]
    );
    let (ext, epp) = (
        &old["spec"]["extensionRef"],
        &v1["spec"]["endpointPickerRef"],
    );
    assert_eq!(ext["name"], epp["name"]);
    assert_eq!(ext["portNumber"], epp["port"]["number"]);
    // A referenced pool: neither is built.
    let mut svc = load(&golden_path("prefill-scheduler"));
    svc["spec"]["router"]["scheduler"]["pool"] = serde_json::json!({"ref": {"name": "shared"}});
    assert!(
        !build(&svc)
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "InferencePool")
    );
}

/// As KServe's managed DRA (`managed_dra.go`): the `serving.kserve.io/exp-dra-*` annotations
/// make ResourceClaimTemplate `<n>-managed-dra` (request `device`, the class, count above 1,
/// one CEL selector per line) and every pod claims it as `managed-device`, its target
/// container too.
#[test]
fn managed_dra_claim_template_and_pod_claims() {
    let objs = golden("managed-dra");
    let t = find(&objs, "ResourceClaimTemplate", "qwen-dra-managed-dra");
    assert_eq!(t["apiVersion"], "resource.k8s.io/v1");
    let req = &t["spec"]["spec"]["devices"]["requests"][0];
    assert_eq!(req["name"], "device");
    assert_eq!(req["exactly"]["deviceClassName"], "gpu.example.com");
    assert_eq!(req["exactly"]["count"], 2);
    assert_eq!(req["exactly"]["selectors"].as_array().unwrap().len(), 2);
    let pod = &find(&objs, "Deployment", "qwen-dra-kserve")["spec"]["template"]["spec"];
    assert_eq!(
        pod["resourceClaims"],
        serde_json::json!([{"name": "managed-device", "resourceClaimTemplateName": "qwen-dra-managed-dra"}])
    );
    let main = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap();
    assert_eq!(
        main["resources"]["claims"],
        serde_json::json!([{"name": "managed-device"}])
    );
    // Without the annotations: none.
    assert!(
        !golden("minimal")
            .iter()
            .any(|o| o["kind"] == "ResourceClaimTemplate"
                || o.to_string().contains("managed-device"))
    );
}
