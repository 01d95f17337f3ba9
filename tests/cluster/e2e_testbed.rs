//! Real-cluster suite on the full test bed (tests/e2e/provision.sh): kube-apiserver v1.37 with
//! the real CRDs of every child kind, and for the last test the workload plane: controller
//! manager, scheduler, kwok's simulated GPU nodes and the LeaderWorkerSet controller.
//!
//! - custom resources with empty strings are stored and read back unchanged, through the
//!   webhooks and through conversion (the old v1.20 build turned them into null);
//! - every child kind the reconciler builds, for the examples and the reconcile goldens, is
//!   accepted by the real schema of its kind (server-side apply, strict field validation);
//! - services go from `kubectl apply` to `Ready=True` with their pods placed on the simulated
//!   GPU nodes, and a pod no node can hold leaves the service unready with the reason.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use support::cluster::Cluster;
use support::e2e::{Reconciler, cond, condition, get_json, json_of, wait_until};
use support::server::install;

const LLMISVC: &str = "llminferenceservices.serving.kserve.io";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_file(p: &Path) -> Value {
    serde_norway::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// A config in the shape of KServe's own sample (docs/samples/llmisvc/e2e-gpt-oss/
/// llmisvc_config_default.yaml: `endpointPickerRef: {group: ""}`), plus an empty env value.
const EMPTY_STRINGS_CONFIG: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceServiceConfig
metadata:
  name: empty-strings
  namespace: demo
spec:
  template:
    containers:
    - name: main
      env:
      - name: EMPTY
        value: ""
  router:
    scheduler:
      pool:
        spec:
          endpointPickerRef:
            group: ""
"#;

const EMPTY_STRINGS_SERVICE: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: empty-strings
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
  template:
    containers:
    - name: main
      env:
      - name: EMPTY
        value: ""
"#;

fn env_value(obj: &Value, name: &str) -> Value {
    obj["spec"]["template"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "main"))
        .and_then(|c| c["env"].as_array())
        .and_then(|env| env.iter().find(|e| e["name"] == name))
        .map(|e| e["value"].clone())
        .unwrap_or(Value::Null)
}

#[test]
fn empty_strings_are_stored_and_read_back_through_webhooks_and_conversion() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let _server = install(&cluster, &[]);
    cluster.kubectl_ok(&["create", "namespace", "demo"]);
    cluster.apply_ok(EMPTY_STRINGS_CONFIG);
    cluster.apply_ok(EMPTY_STRINGS_SERVICE);

    for version in ["v1alpha2", "v1alpha1"] {
        let cfg = get_json(
            &cluster,
            &format!("llminferenceserviceconfigs.{version}.serving.kserve.io"),
            "empty-strings",
            "demo",
        )
        .unwrap();
        assert_eq!(env_value(&cfg, "EMPTY"), json!(""), "{version}: {cfg}");
        let svc = get_json(
            &cluster,
            &format!("llminferenceservices.{version}.serving.kserve.io"),
            "empty-strings",
            "demo",
        )
        .unwrap();
        assert_eq!(env_value(&svc, "EMPTY"), json!(""), "{version}: {svc}");
    }
    // The picker reference's empty group (the core group) as stored and as served in
    // v1alpha2; v1alpha1 serves the pool in its own shape, and converting back keeps it.
    let cfg = get_json(
        &cluster,
        "llminferenceserviceconfigs.v1alpha2.serving.kserve.io",
        "empty-strings",
        "demo",
    )
    .unwrap();
    assert_eq!(
        cfg["spec"]["router"]["scheduler"]["pool"]["spec"]["endpointPickerRef"]["group"],
        json!(""),
        "{cfg}"
    );

    // An object written in v1alpha1 with empty strings comes back unchanged in v1alpha1 (it is
    // stored as v1alpha2 through the conversion webhook).
    let v1 = EMPTY_STRINGS_CONFIG
        .replace("v1alpha2", "v1alpha1")
        .replace("name: empty-strings", "name: empty-strings-v1")
        .replace(
            "  router:\n    scheduler:\n      pool:\n        spec:\n          endpointPickerRef:\n            group: \"\"\n",
            "",
        );
    cluster.apply_ok(&v1);
    let back = get_json(
        &cluster,
        "llminferenceserviceconfigs.v1alpha1.serving.kserve.io",
        "empty-strings-v1",
        "demo",
    )
    .unwrap();
    assert_eq!(env_value(&back, "EMPTY"), json!(""), "{back}");
}

/// The built children of a stored (expanded) service, with its namespace.
fn children_of(svc: &Value) -> Vec<Value> {
    llmisvc::reconcile::build::build_with(
        svc,
        &llmisvc::reconcile::build::BuildOptions {
            wva_prometheus: Some(llmisvc::reconcile::build::WvaPrometheus {
                url: "https://prometheus.monitoring.svc:9091".into(),
                insecure_skip_verify: false,
                auth: None,
            }),
        },
    )
    .unwrap_or_else(|e| panic!("build {}: {e}", svc["metadata"]["name"]))
}

#[test]
fn every_child_kind_is_accepted_by_the_real_schema_of_its_kind() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    cluster.install_third_party_crds();

    // The services: every reconcile golden input (already expanded), and every example
    // expanded by the shipped presets as the webhook would.
    let mut services = Vec::new();
    let goldens = root().join("tests/golden/reconcile");
    let mut inputs: Vec<_> = std::fs::read_dir(&goldens)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".yaml") && !n.ends_with(".out.yaml")
        })
        .collect();
    inputs.sort();
    for p in inputs {
        services.push(yaml_file(&p));
    }
    let pipeline = llmisvc::pipeline::Engine::builtin().unwrap();
    // (examples/samples too: one service per KServe sample feature, e.g. the tokenizer of
    // precise prefix-cache routing, the single-node P/D routing sidecar's ServiceAccount.)
    let mut examples: Vec<_> = ["examples", "examples/samples"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root().join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    examples.sort();
    for p in examples {
        let mut svc = pipeline.mutate(&yaml_file(&p)).unwrap();
        svc["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000001");
        services.push(svc);
    }

    let mut kinds = BTreeSet::new();
    let mut accepted = BTreeSet::new();
    let mut failures = Vec::new();
    let mut namespaces = BTreeSet::new();
    for svc in &services {
        for child in children_of(svc) {
            let ns = child["metadata"]["namespace"].as_str().map(str::to_string);
            if let Some(ns) = ns.filter(|ns| namespaces.insert(ns.clone())) {
                cluster.kubectl_ok(&["create", "namespace", &ns]);
            }
            let out = cluster.kubectl_stdin(
                &[
                    "apply",
                    "--server-side",
                    "--dry-run=server",
                    "--validate=strict",
                    "--field-manager=llmisvc",
                    "-f",
                    "-",
                ],
                &child.to_string(),
            );
            let id = format!(
                "{} {} {} (service {})",
                child["apiVersion"].as_str().unwrap_or_default(),
                child["kind"].as_str().unwrap_or_default(),
                child["metadata"]["name"].as_str().unwrap_or_default(),
                svc["metadata"]["name"].as_str().unwrap_or_default(),
            );
            if out.status.success() {
                accepted.insert(id.clone());
                kinds.insert(format!(
                    "{}/{}",
                    child["apiVersion"].as_str().unwrap(),
                    child["kind"].as_str().unwrap()
                ));
            } else {
                failures.push(format!("{id}: {}", String::from_utf8_lossy(&out.stderr)));
            }
        }
    }
    // A `route.group` member's HTTPRoute with weighted backendRefs to every member (its own
    // InferencePool and a routable peer's workload Service), as the reconciler builds it.
    let grouped: Vec<Value> = [GROUP_A, GROUP_B]
        .iter()
        .map(|y| {
            let mut svc = pipeline
                .mutate(&serde_norway::from_str(y).unwrap())
                .unwrap();
            svc["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000002");
            svc
        })
        .collect();
    // The shipped route preset's rules are all per-participant (`/<ns>/<name>/...`), which
    // stay the member's own; a shared rule (as KServe's publisher paths) gets the split.
    let mut grouped = grouped;
    grouped[0]["spec"]["router"]["route"]["http"]["spec"]["rules"]
        .as_array_mut()
        .unwrap()
        .push(json!({
            "matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
            "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "chat-a-inference-pool", "port": 8000}],
        }));
    let mut peer = grouped[1].clone();
    peer["status"] = json!({
        "conditions": [{"type": "RouterReady", "status": "True"}],
        "workloads": {"primary": {"kind": "Deployment", "name": "x", "readyReplicas": 1}},
    });
    let route = llmisvc::reconcile::build::build_grouped(&grouped[0], &Default::default(), &[peer])
        .unwrap()
        .into_iter()
        .find(|c| c["kind"] == "HTTPRoute")
        .expect("a grouped HTTPRoute");
    assert_eq!(
        route["spec"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["backendRefs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| (
                    b["kind"].as_str().unwrap(),
                    b["weight"].as_i64().unwrap_or(1)
                ))
                .collect::<Vec<_>>())
            .collect::<Vec<_>>(),
        [
            vec![("InferencePool", 1)],
            vec![("Service", 1)],
            vec![("InferencePool", 80), ("Service", 20)],
        ],
        "{route}"
    );
    let out = cluster.kubectl_stdin(
        &[
            "apply",
            "--server-side",
            "--dry-run=server",
            "--validate=strict",
            "--field-manager=llmisvc",
            "-f",
            "-",
        ],
        &route.to_string(),
    );
    if !out.status.success() {
        failures.push(format!(
            "grouped HTTPRoute: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    // The check has teeth: a child with a field its schema lacks, and a LeaderWorkerSet whose
    // group size is a string, are refused.
    let mut bad = children_of(&services[0]).remove(0);
    bad["spec"]["notAField"] = json!(true);
    let mut bad_lws = children_of(
        services
            .iter()
            .find(|s| s["spec"]["worker"].is_object())
            .expect("a multi-node service"),
    )
    .into_iter()
    .find(|c| c["kind"] == "LeaderWorkerSet")
    .unwrap();
    bad_lws["spec"]["leaderWorkerTemplate"]["size"] = json!("two");
    for b in [bad, bad_lws] {
        let out = cluster.kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--dry-run=server",
                "--validate=strict",
                "-f",
                "-",
            ],
            &b.to_string(),
        );
        assert!(!out.status.success(), "accepted: {b}");
    }
    assert!(
        failures.is_empty(),
        "{} children refused by the API server:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for kind in [
        "apps/v1/Deployment",
        "leaderworkerset.x-k8s.io/v1/LeaderWorkerSet",
        "v1/Service",
        "v1/ServiceAccount",
        "rbac.authorization.k8s.io/v1/Role",
        "rbac.authorization.k8s.io/v1/RoleBinding",
        "inference.networking.k8s.io/v1/InferencePool",
        "gateway.networking.k8s.io/v1/HTTPRoute",
        "autoscaling/v2/HorizontalPodAutoscaler",
        "keda.sh/v1alpha1/ScaledObject",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} among the checked children: {kinds:?}"
        );
    }
    // Shapes of their own: KServe's standalone tokenizer, the single-node routing sidecar's
    // ServiceAccount and RBAC.
    for id in [
        "apps/v1 Deployment phi-prefix-tokenizer (service phi-prefix)",
        "v1 Service phi-prefix-tokenizer (service phi-prefix)",
        "v1 ServiceAccount granite-pd-kserve (service granite-pd)",
        "rbac.authorization.k8s.io/v1 Role granite-pd-kserve-role (service granite-pd)",
        "rbac.authorization.k8s.io/v1 RoleBinding granite-pd-kserve-rb (service granite-pd)",
    ] {
        assert!(accepted.contains(id), "{id} not among the checked children");
    }
}

/// Two members of routing group `chat` (80/20): `chat-a` with a scheduler, `chat-b` without
/// (reached at its workload Service).
const GROUP_A: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: chat-a
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
    name: qwen
  template: {}
  router:
    gateway: {}
    scheduler: {}
    route:
      group: chat
      weight: 80
"#;

const GROUP_B: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: chat-b
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
    name: qwen
  template: {}
  router:
    gateway: {}
    route:
      group: chat
      weight: 20
"#;

/// A single-node service whose one pod asks for more GPUs than any node has (admitted: the
/// webhook runs with `--max-gpus-per-node 16`, a GPU profile larger than the nodes).
const TOO_BIG: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: too-big
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
  template:
    containers:
    - name: main
      resources:
        limits:
          nvidia.com/gpu: "16"
        requests:
          nvidia.com/gpu: "16"
"#;

/// A multi-node service (a LeaderWorkerSet of 2 pods) whose pods ask for 16 GPUs each
/// (admitted for the same reason as [`TOO_BIG`]).
const TOO_BIG_MN: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: too-big-mn
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
  parallelism:
    tensor: 1
    data: 32
    dataLocal: 16
    expert: true
  template: {}
  worker: {}
"#;

/// A single-node service on the AMD node.
const AMD: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: qwen-amd
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen2.5-0.5B-Instruct
  template:
    containers:
    - name: main
      resources:
        limits:
          amd.com/gpu: "2"
        requests:
          amd.com/gpu: "2"
"#;

fn pods(cluster: &Cluster) -> Vec<Value> {
    json_of(&cluster.kubectl_ok(&["get", "pods", "-n", "demo", "-o", "json"]))["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn gpus_of(pod: &Value) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
        for (k, v) in c["resources"]["limits"].as_object().into_iter().flatten() {
            if k.ends_with("/gpu") {
                let n = v
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .or(v.as_i64())
                    .unwrap_or(0);
                out.push((k.clone(), n));
            }
        }
    }
    out
}

/// Plays the Gateway controller (none runs in the test bed): every HTTPRoute in `demo` is
/// Accepted by its parent Gateway.
fn accept_routes(cluster: &Cluster) {
    let list = json_of(&cluster.kubectl_ok(&[
        "get",
        "httproutes.gateway.networking.k8s.io",
        "-n",
        "demo",
        "-o",
        "json",
    ]));
    for r in list["items"].as_array().into_iter().flatten() {
        if r["status"]["parents"]
            .as_array()
            .is_some_and(|p| !p.is_empty())
        {
            continue;
        }
        let parents: Vec<Value> = r["spec"]["parentRefs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                json!({
                    "parentRef": p,
                    "controllerName": "example.com/llmisvc-e2e",
                    "conditions": [{
                        "type": "Accepted", "status": "True", "reason": "Accepted",
                        "message": "accepted by the test", "observedGeneration": r["metadata"]["generation"],
                        "lastTransitionTime": "2026-01-01T00:00:00Z"
                    }]
                })
            })
            .collect();
        support::e2e::patch_status(
            cluster,
            "httproutes.gateway.networking.k8s.io",
            r["metadata"]["name"].as_str().unwrap(),
            "demo",
            json!({"parents": parents}),
        );
    }
}

#[test]
fn services_become_ready_with_pods_on_simulated_gpu_nodes() {
    let Some(mut cluster) = Cluster::start_or_skip() else {
        return;
    };
    cluster.start_workload_plane();
    let server = install(&cluster, &["--max-gpus-per-node=16"]);
    cluster.kubectl_ok(&["create", "namespace", "demo"]);
    let reconciler = Reconciler::start(&cluster, "1");

    let examples = root().join("examples");
    for e in [
        "minimal.yaml",
        "multinode-data-parallel.yaml",
        "prefill-decode-multinode.yaml",
    ] {
        cluster.kubectl_ok(&["apply", "-f", examples.join(e).to_str().unwrap()]);
    }
    cluster.apply_ok(AMD);
    cluster.apply_ok(TOO_BIG);
    cluster.apply_ok(TOO_BIG_MN);

    let names = ["qwen-small", "deepseek-dp", "deepseek-pd", "qwen-amd"];
    let diagnose = |cluster: &Cluster| {
        let svcs = cluster.kubectl(&["get", LLMISVC, "-n", "demo", "-o", "yaml"]);
        let pods = cluster.kubectl(&["get", "pods,lws,deploy", "-n", "demo", "-o", "wide"]);
        format!(
            "--- services ---\n{}\n--- pods ---\n{}{}\n--- reconciler ---\n{}\n--- webhook ---\n{}\n--- lws ---\n{}",
            String::from_utf8_lossy(&svcs.stdout),
            String::from_utf8_lossy(&pods.stdout),
            String::from_utf8_lossy(&pods.stderr),
            reconciler.log_text(),
            server.log_text(),
            cluster.log_tail("lws-controller", 30),
        )
    };
    let start = std::time::Instant::now();
    loop {
        accept_routes(&cluster);
        let ready: Vec<bool> = names
            .iter()
            .map(|n| {
                get_json(&cluster, LLMISVC, n, "demo")
                    .is_some_and(|s| cond(&s, "Ready") == Some("True"))
            })
            .collect();
        if ready.iter().all(|r| *r) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(240),
            "not Ready after 240 s: {:?}\n{}",
            names.iter().zip(&ready).collect::<Vec<_>>(),
            diagnose(&cluster)
        );
        std::thread::sleep(Duration::from_secs(1));
    }

    // Every GPU pod runs on a node of its vendor, and the groups have the expected sizes.
    let all = pods(&cluster);
    let mut per_service: std::collections::BTreeMap<String, usize> = Default::default();
    for p in &all {
        let name = p["metadata"]["name"].as_str().unwrap().to_string();
        let node = p["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let svc = p["metadata"]["labels"]["app.kubernetes.io/name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if svc.starts_with("too-big") {
            continue;
        }
        for (resource, n) in gpus_of(p) {
            let vendor = resource.split('.').next().unwrap();
            assert!(
                n > 0 && node.starts_with(&format!("gpu-{vendor}")),
                "pod {name} ({resource}: {n}) placed on {node:?}"
            );
        }
        assert_eq!(p["status"]["phase"], "Running", "pod {name}");
        *per_service.entry(svc).or_default() += 1;
    }
    // deepseek-dp: data 16 / dataLocal 8 = one group of 2 pods of 8 GPUs each.
    assert_eq!(per_service.get("deepseek-dp"), Some(&2), "{per_service:?}");
    // deepseek-pd: decode as deepseek-dp (2 pods), prefill 8/8 = 1 pod, plus the scheduler.
    assert!(
        per_service.get("deepseek-pd").is_some_and(|n| *n >= 3),
        "{per_service:?}"
    );

    // Pods no node can hold stay Pending, and the services say why: a Deployment's and a
    // LeaderWorkerSet's.
    for name in ["too-big", "too-big-mn"] {
        let s = wait_until(&format!("{name} explains"), Duration::from_secs(60), || {
            let s = get_json(&cluster, LLMISVC, name, "demo")?;
            let msg = condition(&s, "WorkloadsReady")?["message"]
                .as_str()?
                .to_string();
            msg.contains("Insufficient nvidia.com/gpu").then_some(s)
        });
        assert_ne!(cond(&s, "Ready"), Some("True"), "{}", s["status"]);
        let pending: Vec<_> = pods(&cluster)
            .into_iter()
            .filter(|p| p["metadata"]["labels"]["app.kubernetes.io/name"] == name)
            .collect();
        assert!(!pending.is_empty(), "{name}: no pods");
        for p in pending {
            assert_eq!(p["status"]["phase"], "Pending", "{name}");
        }
    }
}
