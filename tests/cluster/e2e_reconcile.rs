//! Real-cluster suite, reconciler: kube-apiserver + kube-controller-manager (garbage
//! collector only) + the llmisvc webhook + `llmisvc reconcile` processes.
//!
//! Covers: the expected children with owner references; a reconcile with nothing to do
//! writes nothing (resourceVersions unchanged); drift (Deployment replicas) is reverted;
//! status conditions and observedGeneration (readiness simulated by writing workload status,
//! there is no kubelet); removing `prefill` prunes its objects; leader election (two
//! reconcilers, one leads; killing the leader hands over); killing a reconciler mid-way and
//! starting another converges; deleting the service garbage-collects the children; and
//! `kubectl apply -k deploy/ --dry-run=server`.

use crate::support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::cluster::Cluster;
use support::e2e::{Reconciler, cond, condition, json_of, reason, wait_until};
use support::server::{ServerProcess, gen_certs, llmisvc_ok};

const KINDS: &str = "deployments.apps,services,serviceaccounts,roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,leaderworkersets.leaderworkerset.x-k8s.io,inferencepools.inference.networking.k8s.io,inferencepools.inference.networking.x-k8s.io,httproutes.gateway.networking.k8s.io,horizontalpodautoscalers.autoscaling,scaledobjects.keda.sh,resourceclaimtemplates.resource.k8s.io,clusterrolebindings.rbac.authorization.k8s.io";

fn children(cluster: &Cluster, name: &str) -> Vec<Value> {
    let sel = format!("app.kubernetes.io/managed-by=llmisvc,app.kubernetes.io/name={name}");
    let out = cluster.kubectl_ok(&["get", KINDS, "-n", "demo", "-l", &sel, "-o", "json"]);
    json_of(&out)["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ids(objs: &[Value]) -> BTreeSet<(String, String)> {
    objs.iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn versions(objs: &[Value]) -> BTreeSet<(String, String, String)> {
    objs.iter()
        .map(|o| {
            (
                o["kind"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect()
}

fn get_svc(cluster: &Cluster, name: &str) -> Value {
    json_of(&cluster.kubectl_ok(&[
        "get",
        "llminferenceservices.serving.kserve.io",
        name,
        "-n",
        "demo",
        "-o",
        "json",
    ]))
}

/// The objects the builder makes for the stored service.
fn expected(cluster: &Cluster, name: &str) -> BTreeSet<(String, String)> {
    ids(&llmisvc::reconcile::build(&get_svc(cluster, name)).unwrap())
}

/// Waits until the children of `name` are exactly the built ones, all owned by it.
fn wait_converged(cluster: &Cluster, name: &str, logs: &dyn Fn() -> String) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let want = expected(cluster, name);
        let got = children(cluster, name);
        let uid = get_svc(cluster, name)["metadata"]["uid"].clone();
        // Cluster-scoped children (the auth-delegator binding) have no owner: found by labels.
        let owned = got.iter().all(|o| {
            o["kind"] == "ClusterRoleBinding"
                || o["metadata"]["ownerReferences"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r["uid"] == uid && r["controller"] == true))
        });
        if ids(&got) == want && owned {
            return got;
        }
        if start.elapsed() > Duration::from_secs(60) {
            panic!(
                "{name}: children {:?} != expected {want:?} (owned: {owned})\n--- reconciler ---\n{}",
                ids(&got),
                logs()
            );
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn patch_status(cluster: &Cluster, kind: &str, name: &str, status: Value) {
    support::e2e::patch_status(cluster, kind, name, "demo", status);
}

/// Decode multi-node (a LeaderWorkerSet whose pods carry the routing sidecar as a native
/// sidecar, `restartPolicy: Always` on an init container), prefill a Deployment.
const QWEN_PD: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: qwen-pd
  namespace: demo
spec:
  model:
    uri: hf://Qwen/Qwen3-8B
  replicas: 1
  parallelism:
    data: 2
    dataLocal: 1
  template: {}
  worker: {}
  prefill:
    replicas: 1
  router:
    scheduler: {}
    route: {}
    gateway: {}
"#;

#[test]
fn reconciler_against_a_real_api_server() {
    // CARGO_BIN_EXE_llmisvc lives in the (possibly shared) target dir: make sure it is this
    // tree's build, with the reconcile subcommand.
    let help = Command::new(env!("CARGO_BIN_EXE_llmisvc"))
        .args(["reconcile", "--help"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("--lease-namespace"),
        "{} is not this tree's build (another build replaced it?): rebuild and rerun",
        env!("CARGO_BIN_EXE_llmisvc")
    );
    let Some(mut cluster) = Cluster::start_or_skip() else {
        return;
    };
    cluster.start_controller_manager();
    let dir = cluster.dir.path().join("llmisvc");
    std::fs::create_dir_all(&dir).unwrap();
    gen_certs(&dir);
    let root = env!("CARGO_MANIFEST_DIR");
    // A copy of the shipped presets with the scheduler's probe period changed: the webhook
    // admits with it, the reconciler compares with the shipped ones and names the difference.
    let presets = dir.join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    let mut changed = false;
    for e in std::fs::read_dir(format!("{root}/deploy/presets")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let mut text = std::fs::read_to_string(&p).unwrap();
            if p.file_name().unwrap() == "kserve-config-llm-scheduler.yaml" {
                let before = text.clone();
                text = text.replacen("periodSeconds: 10", "periodSeconds: 11", 1);
                changed = text != before;
            }
            std::fs::write(presets.join(p.file_name().unwrap()), text).unwrap();
        }
    }
    assert!(
        changed,
        "the scheduler preset has no periodSeconds: 10 to change"
    );
    let presets_arg = format!("--presets-dir={}", presets.display());
    let server = ServerProcess::start(&dir, &[&presets_arg]);
    let ca = dir.join("ca.crt").display().to_string();
    cluster.apply_ok(&llmisvc_ok(&[
        "crds",
        "--conversion-url",
        &server.base_url(),
        "--ca-bundle",
        &ca,
    ]));
    cluster.apply_ok(&llmisvc_ok(&[
        "webhook-config",
        "--url",
        &server.base_url(),
        "--ca-bundle",
        &ca,
    ]));
    cluster.install_third_party_crds();
    cluster.wait_for(
        &[
            "wait",
            "--for=condition=Established",
            "crd/llminferenceservices.serving.kserve.io",
        ],
        Duration::from_secs(60),
    );
    cluster.kubectl_ok(&["create", "namespace", "demo"]);
    // As KServe, the ServiceAccounts the reconciler creates take the pull secrets of the
    // namespace's `default` one.
    cluster.apply_ok(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n  namespace: demo\nimagePullSecrets:\n- name: regcred\n",
    );

    let mut r1 = Reconciler::start(&cluster, "1");
    let pd_example = format!("{root}/examples/prefill-decode-multinode.yaml");
    cluster.kubectl_ok(&["apply", "-f", &pd_example]);
    cluster.apply_ok(QWEN_PD);

    // 1. Exactly the built objects, owned by the service.
    let logs1 = || r1.log_text();
    let deepseek = wait_converged(&cluster, "deepseek-pd", &logs1);
    let kinds: BTreeSet<_> = ids(&deepseek).into_iter().map(|(k, _)| k).collect();
    for k in [
        "LeaderWorkerSet",
        "InferencePool",
        "HTTPRoute",
        "Deployment",
        "Service",
        "Role",
    ] {
        assert!(kinds.contains(k), "deepseek-pd: no {k} in {kinds:?}");
    }
    let lws = deepseek
        .iter()
        .find(|o| {
            o["kind"] == "LeaderWorkerSet" && o["metadata"]["name"] == "deepseek-pd-kserve-mn"
        })
        .unwrap();
    assert_eq!(lws["spec"]["leaderWorkerTemplate"]["size"], 2);
    for sa in deepseek.iter().filter(|o| o["kind"] == "ServiceAccount") {
        assert_eq!(sa["imagePullSecrets"], json!([{"name": "regcred"}]), "{sa}");
    }
    assert!(deepseek.iter().any(|o| o["kind"] == "ServiceAccount"));
    let qwen = wait_converged(&cluster, "qwen-pd", &logs1);
    assert!(ids(&qwen).contains(&("Deployment".into(), "qwen-pd-kserve-prefill".into())));

    // 2. Status: observedGeneration and conditions, not ready yet (no kubelet).
    let s = wait_until("qwen-pd status", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-pd");
        (s["status"]["observedGeneration"] == s["metadata"]["generation"]
            && cond(&s, "Ready").is_some())
        .then_some(s)
    });
    assert_ne!(cond(&s, "Ready"), Some("True"));
    // The webhook applied the changed copy of the scheduler preset; the reconciler compares
    // with the shipped one and names it.
    assert_eq!(
        cond(&s, "PresetsUpToDate"),
        Some("False"),
        "{}",
        s["status"]
    );
    let msg = s["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PresetsUpToDate")
        .unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("kserve-config-llm-scheduler"), "{msg}");
    assert!(!msg.contains("kserve-config-llm-router-route"), "{msg}");
    assert!(
        s["status"]["appliedConfigs"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(
        s["status"]["workloads"]["primary"]["name"],
        "qwen-pd-kserve-mn"
    );

    // 3. A reconcile with nothing to do writes nothing.
    let annotate_pd = |a: &str| {
        cluster.kubectl_ok(&[
            "annotate",
            "llminferenceservices.serving.kserve.io",
            "qwen-pd",
            "-n",
            "demo",
            a,
        ]);
    };
    let before = versions(&children(&cluster, "qwen-pd"));
    let count = |t: &str| t.matches("service=qwen-pd writes=0").count();
    let n0 = count(&r1.log_text());
    annotate_pd("e2e/poke=1");
    let svc_rv = get_svc(&cluster, "qwen-pd")["metadata"]["resourceVersion"].clone();
    wait_until("a no-op reconcile", Duration::from_secs(30), || {
        (count(&r1.log_text()) > n0).then_some(())
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        versions(&children(&cluster, "qwen-pd")),
        before,
        "children were written"
    );
    assert_eq!(
        get_svc(&cluster, "qwen-pd")["metadata"]["resourceVersion"],
        svc_rv,
        "status was written"
    );

    // 4. Drift is reverted.
    cluster.kubectl_ok(&[
        "scale",
        "deployment",
        "qwen-pd-kserve-prefill",
        "-n",
        "demo",
        "--replicas=5",
    ]);
    wait_until("replicas reverted", Duration::from_secs(30), || {
        let d = json_of(&cluster.kubectl_ok(&[
            "get",
            "deployment",
            "qwen-pd-kserve-prefill",
            "-n",
            "demo",
            "-o",
            "json",
        ]));
        (d["spec"]["replicas"] == 1).then_some(())
    });

    // 5. Readiness: workload status written by hand, route accepted.
    let ready =
        json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1});
    patch_status(
        &cluster,
        "deployment",
        "qwen-pd-kserve-prefill",
        ready.clone(),
    );
    patch_status(
        &cluster,
        "leaderworkersets.leaderworkerset.x-k8s.io",
        "qwen-pd-kserve-mn",
        json!({"readyReplicas": 1}),
    );
    let s = wait_until("WorkloadsReady", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-pd");
        (cond(&s, "WorkloadsReady") == Some("True")).then_some(s)
    });
    assert_ne!(
        cond(&s, "Ready"),
        Some("True"),
        "scheduler and route are not ready yet"
    );
    patch_status(
        &cluster,
        "deployment",
        "qwen-pd-kserve-router-scheduler",
        ready.clone(),
    );
    patch_status(
        &cluster,
        "httproutes.gateway.networking.k8s.io",
        "qwen-pd-kserve-route",
        json!({"parents": [{"parentRef": {"name": "llmisvc-gateway"}, "controllerName": "example.com/gw",
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted", "message": "",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}]}),
    );
    let s = wait_until("Ready", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-pd");
        (cond(&s, "Ready") == Some("True")).then_some(s)
    });
    assert_eq!(cond(&s, "RouterReady"), Some("True"));
    assert_eq!(
        s["status"]["url"],
        "http://qwen-pd-kserve-workload-svc.demo.svc.cluster.local:8000"
    );
    // A multi-node service is ready when its LeaderWorkerSets report Available (kserve#6043).
    let available = json!({"conditions": [{"type": "Available", "status": "True", "reason": "AllGroupsReady",
            "message": "All replicas are ready", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "readyReplicas": 1, "replicas": 1});
    for l in ["deepseek-pd-kserve-mn", "deepseek-pd-kserve-mn-prefill"] {
        patch_status(
            &cluster,
            "leaderworkersets.leaderworkerset.x-k8s.io",
            l,
            available.clone(),
        );
    }
    wait_until(
        "deepseek-pd WorkloadsReady",
        Duration::from_secs(30),
        || {
            (cond(&get_svc(&cluster, "deepseek-pd"), "WorkloadsReady") == Some("True"))
                .then_some(())
        },
    );

    // 6. Kill the reconciler mid-way; two new ones start, one leads and converges. These run
    // as deploy/'s ServiceAccount (impersonated, with deploy/rbac.yaml applied): the
    // least-privilege ClusterRole and Role are enough for everything that follows.
    cluster.kubectl_ok(&[
        "apply",
        "-f",
        &format!("{root}/deploy/namespace.yaml"),
        "-f",
        &format!("{root}/deploy/rbac.yaml"),
    ]);
    let kc = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let token_line = format!("    token: {}\n", cluster.token);
    assert!(kc.contains(&token_line));
    let sa_kc = kc.replace(&token_line, &format!("{token_line}    as: system:serviceaccount:llmisvc-system:llmisvc\n    as-groups: [system:serviceaccounts, \"system:serviceaccounts:llmisvc-system\", system:authenticated]\n"));
    let sa_kubeconfig = cluster.dir.path().join("kubeconfig-llmisvc-sa");
    std::fs::write(&sa_kubeconfig, sa_kc).unwrap();
    let can = |args: &[&str]| {
        let mut a = vec!["auth", "can-i"];
        a.extend_from_slice(args);
        let out = cluster
            .kubectl_cmd()
            .arg(format!("--kubeconfig={}", sa_kubeconfig.display()))
            .args(&a)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(can(&["patch", "deployments", "-n", "demo"]), "yes");
    assert_eq!(
        can(&["get", "secrets", "-n", "demo"]),
        "no",
        "the ServiceAccount must not read Secrets outside its namespace"
    );
    assert_eq!(can(&["create", "pods", "-n", "demo"]), "no");
    // Killed right after a new service arrives, likely in the middle of reconciling it.
    cluster.kubectl_ok(&["apply", "-f", &format!("{root}/examples/minimal.yaml")]);
    std::thread::sleep(Duration::from_millis(150));
    r1.kill();
    let mut r2 = Reconciler::start_with(&cluster, "2", &sa_kubeconfig, "llmisvc-system", &[]);
    let mut r3 = Reconciler::start_with(&cluster, "3", &sa_kubeconfig, "llmisvc-system", &[]);
    let logs23 = || format!("{}\n---\n{}", r2.log_text(), r3.log_text());
    wait_converged(&cluster, "qwen-small", &logs23);
    let s = wait_until("qwen-small status", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-small");
        (s["status"]["observedGeneration"] == s["metadata"]["generation"]).then_some(s)
    });
    assert_eq!(cond(&s, "PresetsUpToDate"), Some("True"), "{}", s["status"]);
    let leaders: Vec<bool> = [&r2, &r3]
        .iter()
        .map(|r| r.log_text().contains("leading"))
        .collect();
    assert_eq!(leaders.iter().filter(|l| **l).count(), 1, "{}", logs23());
    // Kill the leader: the other takes over and handles the next change.
    let survivor = if leaders[0] {
        r2.kill();
        &r3
    } else {
        r3.kill();
        &r2
    };

    // 7. Removing prefill prunes its objects; the decode role becomes `both`.
    let without: String = QWEN_PD.replace("  prefill:\n    replicas: 1\n", "");
    cluster.apply_ok(&without);
    let logs_s = || survivor.log_text();
    let after = wait_converged(&cluster, "qwen-pd", &logs_s);
    assert!(!ids(&after).contains(&("Deployment".into(), "qwen-pd-kserve-prefill".into())));
    let d = after
        .iter()
        .find(|o| o["kind"] == "LeaderWorkerSet" && o["metadata"]["name"] == "qwen-pd-kserve-mn")
        .unwrap();
    assert_eq!(
        d["spec"]["leaderWorkerTemplate"]["leaderTemplate"]["metadata"]["labels"]["llm-d.ai/role"],
        "both"
    );
    wait_until(
        "observedGeneration after the edit",
        Duration::from_secs(30),
        || {
            let s = get_svc(&cluster, "qwen-pd");
            (s["status"]["observedGeneration"] == s["metadata"]["generation"]).then_some(())
        },
    );
    assert!(
        survivor.log_text().contains("leading"),
        "{}",
        survivor.log_text()
    );

    // Events (written by the survivor as the ServiceAccount, so deploy/rbac.yaml allows them):
    // the pruned prefill Deployment is named in a Deleted event on the service.
    let events = |reason: &str, service: &str| -> Vec<Value> {
        let list = json_of(&cluster.kubectl_ok(&[
            "get",
            "events.v1.events.k8s.io",
            "-n",
            "demo",
            "-o",
            "json",
        ]));
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"] == reason && e["regarding"]["name"] == service)
            .cloned()
            .collect()
    };
    let deleted = wait_until("a Deleted event", Duration::from_secs(30), || {
        let e = events("Deleted", "qwen-pd");
        (!e.is_empty()).then_some(e)
    });
    assert!(
        deleted
            .iter()
            .any(|e| e["related"]["name"] == "qwen-pd-kserve-prefill"
                && e["reportingController"] == "llmisvc-reconciler"
                && e["type"] == "Normal"),
        "{deleted:?}"
    );

    // A service the reconciler cannot build (scaling.wva.keda without --wva-prometheus-url)
    // keeps its children: Ready=False/InvalidSpec and a Warning event say why.
    let before = ids(&children(&cluster, "qwen-small"));
    assert!(before.contains(&("Deployment".into(), "qwen-small-kserve".into())));
    cluster.kubectl_ok(&[
        "patch",
        "llminferenceservices.serving.kserve.io",
        "qwen-small",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"replicas":null,"scaling":{"maxReplicas":2,"wva":{"keda":{}}}}}"#,
    ]);
    let s = wait_until("InvalidSpec", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-small");
        (reason(&s, "Ready") == Some("InvalidSpec")).then_some(s)
    });
    let ready = condition(&s, "Ready").unwrap();
    assert_eq!(ready["status"], "False");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("--wva-prometheus-url"),
        "{ready}"
    );
    let warned = wait_until("an InvalidSpec event", Duration::from_secs(30), || {
        let e = events("InvalidSpec", "qwen-small");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(warned[0]["type"], "Warning");
    assert_eq!(
        ids(&children(&cluster, "qwen-small")),
        before,
        "children were pruned or added although the service could not be built"
    );

    // KServe's stop annotation deletes the children and keeps the service; removing it brings
    // them back.
    annotate_pd("serving.kserve.io/stop=true");
    wait_until(
        "a stopped service's children deleted",
        Duration::from_secs(60),
        || children(&cluster, "qwen-pd").is_empty().then_some(()),
    );
    wait_until("Ready=False/Stopped", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-pd");
        (reason(&s, "Ready") == Some("Stopped") && cond(&s, "Ready") == Some("False")).then_some(())
    });
    annotate_pd("serving.kserve.io/stop-");
    wait_converged(&cluster, "qwen-pd", &logs_s);

    // 8. Deleting the service garbage-collects everything (kube-controller-manager's GC); its
    // cluster-scoped auth-delegator binding goes through the reconciler's finalizer.
    let svc = get_svc(&cluster, "deepseek-pd");
    assert!(
        svc["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "serving.kserve.io/llmisvc-finalizer")),
        "{svc}"
    );
    assert!(
        children(&cluster, "deepseek-pd")
            .iter()
            .any(|o| o["kind"] == "ClusterRoleBinding")
    );
    cluster.kubectl_ok(&[
        "delete",
        "llminferenceservices.serving.kserve.io",
        "deepseek-pd",
        "-n",
        "demo",
    ]);
    wait_until("garbage collection", Duration::from_secs(60), || {
        children(&cluster, "deepseek-pd").is_empty().then_some(())
    });

    // 9. A reconciler that knows WVA's Prometheus builds qwen-small (scaling.wva.keda, above
    // InvalidSpec): its ScaledObject is applied (as the ServiceAccount) and follows WVA's metric.
    r2.kill();
    r3.kill();
    let r4 = Reconciler::start_with(
        &cluster,
        "4",
        &sa_kubeconfig,
        "llmisvc-system",
        &[
            "--wva-prometheus-url",
            "https://prometheus.monitoring.svc:9091",
        ],
    );
    let so = wait_until("the WVA ScaledObject", Duration::from_secs(60), || {
        let out = cluster
            .kubectl_cmd()
            .args([
                "get",
                "scaledobjects.keda.sh",
                "qwen-small-kserve-keda",
                "-n",
                "demo",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| json_of(&String::from_utf8_lossy(&out.stdout)))
    });
    assert_eq!(so["metadata"]["annotations"]["llm-d.ai/managed"], "true");
    assert_eq!(
        so["spec"]["triggers"][0]["metadata"]["query"],
        r#"wva_desired_replicas{variant_name="qwen-small-kserve-keda",exported_namespace="demo"}"#,
        "{}",
        r4.log_text()
    );
    wait_until(
        "qwen-small no longer InvalidSpec",
        Duration::from_secs(30),
        || {
            let s = get_svc(&cluster, "qwen-small");
            (reason(&s, "Ready").is_some_and(|r| r != "InvalidSpec")).then_some(())
        },
    );
    // ScalingReady follows the ScaledObject (watched: its status change alone triggers it).
    assert_eq!(
        cond(&get_svc(&cluster, "qwen-small"), "ScalingReady"),
        Some("Unknown")
    );
    patch_status(
        &cluster,
        "scaledobjects.keda.sh",
        "qwen-small-kserve-keda",
        json!({"conditions": [{"type": "Ready", "status": "False", "reason": "ScaledObjectCheckFailed",
            "message": "prometheus unreachable"}]}),
    );
    wait_until("ScalingReady=False", Duration::from_secs(30), || {
        let s = get_svc(&cluster, "qwen-small");
        (cond(&s, "ScalingReady") == Some("False")).then_some(())
    });

    // 10. The deploy/ kustomization is accepted by the API server.
    let built = cluster.kubectl_ok(&["kustomize", &format!("{root}/deploy")]);
    assert!(built.contains("kind: PodDisruptionBudget"));
    let out = cluster.kubectl_stdin(&["apply", "--dry-run=server", "-f", "-"], &built);
    assert!(
        out.status.success(),
        "kubectl apply -k deploy/ --dry-run=server:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for what in [
        "deployment.apps/llmisvc",
        "clusterrole.rbac.authorization.k8s.io/llmisvc",
        "service/llmisvc-webhook",
        "kserve-config-llm-template",
    ] {
        assert!(stdout.contains(what), "{what} missing from:\n{stdout}");
    }
    drop(server);
}

/// deploy/generated/ holds copies of crds/ and webhook-config/ (kustomize does not load files
/// outside the kustomization's directory).
#[test]
fn deploy_copies_are_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut pairs = vec![(
        root.join("webhook-config/webhooks.yaml"),
        root.join("deploy/generated/webhooks.yaml"),
    )];
    for e in std::fs::read_dir(root.join("crds")).unwrap() {
        let p = e.unwrap().path();
        pairs.push((
            p.clone(),
            root.join("deploy/generated/crds")
                .join(p.file_name().unwrap()),
        ));
    }
    let mut goldens = support::golden::Goldens::updatable(
        "UPDATE_GOLDEN=1 cargo test --test cluster e2e_reconcile::deploy_copies",
    );
    for (src, copy) in pairs {
        goldens.check(&copy, &std::fs::read_to_string(&src).unwrap());
    }
    goldens.finish();
}

/// `serve --reconcile` (deploy/'s mode) releases the reconciler's Lease on SIGTERM, so the
/// next replica leads at once instead of waiting the lease out.
#[test]
fn serve_with_reconcile_releases_its_lease_on_sigterm() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let dir = cluster.dir.path().join("llmisvc");
    std::fs::create_dir_all(&dir).unwrap();
    gen_certs(&dir);
    cluster.apply_ok(&llmisvc_ok(&["crds"]));
    cluster.wait_for(
        &[
            "wait",
            "--for=condition=Established",
            "crd/llminferenceservices.serving.kserve.io",
        ],
        Duration::from_secs(60),
    );
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let cert = format!("--tls-cert={}", dir.join("tls.crt").display());
    let key = format!("--tls-key={}", dir.join("tls.key").display());
    let mut server = ServerProcess::spawn(
        &dir,
        support::cluster::free_port(),
        &[&cert, &key, "--reconcile", "--secret-namespace=default"],
        &[("KUBECONFIG", &kubeconfig), ("POD_NAME", "serve-1")],
    );
    let holder = || {
        let out = cluster.kubectl(&[
            "get",
            "lease",
            "llmisvc-reconciler",
            "-n",
            "default",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    wait_until("serve-1 leads", Duration::from_secs(60), || {
        holder().starts_with("serve-1_").then_some(())
    });
    server.stop();
    assert_eq!(
        holder(),
        "",
        "the Lease is still held after SIGTERM:\n{}",
        server.log_text()
    );
}
