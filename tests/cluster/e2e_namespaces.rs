//! Real-cluster suite, policies scoped by namespace labels: `llmisvc serve --policies-dir`,
//! running as deploy/'s ServiceAccount (impersonated), reads the labels of the request's
//! namespace from the test bed's kube-apiserver (watch cache, GET for a namespace the cache
//! does not hold) and a rule with `scope.namespaceSelector: {matchLabels: {tier: prod}}`
//! applies in the labelled namespace only, through `kubectl apply`; label changes are picked up;
//! without permission to read namespaces the rule fails closed and `/readyz` says not ready.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::cluster::Cluster;
use support::e2e::wait_until;
use support::server::ServerProcess;

const POLICY: &str = r#"
name: prod
rules:
  - name: prod-owner
    action: deny
    message: production services need an owner
    scope:
      namespaceSelector:
        matchLabels:
          tier: prod
    requiredLabels:
      labels:
        owner: []
"#;

const NAMESPACES: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop-prod
  labels:
    tier: prod
---
apiVersion: v1
kind: Namespace
metadata:
  name: shop-dev
"#;

/// Only `get` on namespaces: the watch cache cannot list, every lookup goes to the GET.
const GET_ONLY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-namespaces-get-only
rules:
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: e2e-namespaces-get-only
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: e2e-namespaces-get-only
subjects:
  - kind: ServiceAccount
    name: llmisvc
    namespace: llmisvc-system
"#;

fn service(name: &str, namespace: &str, owner: bool) -> String {
    let labels = if owner {
        "\n  labels:\n    owner: shop-team"
    } else {
        ""
    };
    format!(
        r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: {name}
  namespace: {namespace}{labels}
spec:
  model:
    uri: hf://Qwen/Qwen2.5-7B-Instruct
  template:
    containers:
      - name: main
        image: vllm/vllm-openai:v0.11.0
        resources:
          limits: {{nvidia.com/gpu: "1"}}
          requests: {{nvidia.com/gpu: "1"}}
"#
    )
}

/// `kubectl apply` (real or `--dry-run=server`, which also calls the webhooks): Ok(stdout) or
/// Err(the error text).
fn apply(cluster: &Cluster, manifest: &str, dry_run: bool) -> Result<String, String> {
    let mut args = vec!["apply", "-f", "-"];
    if dry_run {
        args.push("--dry-run=server");
    }
    let out = cluster.kubectl_stdin(&args, manifest);
    if out.status.success() {
        Ok(support::e2e::combined_output(&out))
    } else {
        Err(support::e2e::combined_output(&out))
    }
}

/// A kubeconfig acting as system:serviceaccount:llmisvc-system:llmisvc (the admin user
/// impersonates it), so the server has exactly the permissions RBAC gives that account.
fn service_account_kubeconfig(cluster: &Cluster) -> PathBuf {
    let kc = std::fs::read_to_string(&cluster.kubeconfig).unwrap();
    let token_line = format!("    token: {}\n", cluster.token);
    assert!(kc.contains(&token_line));
    let sa = kc.replace(
        &token_line,
        &format!(
            "{token_line}    as: system:serviceaccount:llmisvc-system:llmisvc\n    as-groups: [system:serviceaccounts, \"system:serviceaccounts:llmisvc-system\", system:authenticated]\n"
        ),
    );
    let path = cluster.dir.path().join("kubeconfig-llmisvc-sa");
    std::fs::write(&path, sa).unwrap();
    path
}

/// The HTTP status of the server's `/readyz` (0 when it does not answer).
fn readyz(server: &ServerProcess, ca: &Path) -> u16 {
    let ca = std::fs::read_to_string(ca).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(support::client::request(
        ([127, 0, 0, 1], server.port).into(),
        &ca,
        "GET",
        "/readyz",
        Vec::new(),
        false,
    ))
    .map_or(0, |r| r.status)
}

#[test]
fn namespace_selector_applies_by_the_namespaces_real_labels() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    cluster.apply_ok(NAMESPACES);
    let dir = cluster.dir.path().join("llmisvc");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/prod.yaml"), POLICY).unwrap();
    let policies = format!("--policies-dir={}", dir.join("policies").display());
    let kubeconfig = service_account_kubeconfig(&cluster);
    let kc = kubeconfig.display().to_string();
    let server = support::server::install_with_env(&cluster, &[&policies], &[("KUBECONFIG", &kc)]);
    let ca = dir.join("ca.crt");
    let logs = || server.log_text();

    // 1. The account may not read namespaces (no RBAC yet): the rule cannot know the labels and
    // fails closed, in the unlabelled namespace too, saying why; /readyz is not ready.
    let err = apply(&cluster, &service("a", "shop-dev", false), false)
        .expect_err("fails closed without namespace labels");
    assert!(
        err.contains("production services need an owner")
            && err.contains("the labels of namespace \"shop-dev\" are not known")
            && err.contains("could not be read from the API server")
            && err.contains("forbidden")
            && err.contains("the rule fails closed"),
        "{err}\n{}",
        logs()
    );
    assert_eq!(readyz(&server, &ca), 503, "{}", logs());

    // 2. `get` only: the cache still cannot list, so every lookup is the GET fallback, which
    // reads the real labels: the rule applies in shop-prod only. /readyz stays not ready.
    cluster.apply_ok(GET_ONLY);
    wait_until("the GET fallback allowed", Duration::from_secs(30), || {
        apply(&cluster, &service("a", "shop-dev", false), true).ok()
    });
    apply(&cluster, &service("a", "shop-dev", false), false)
        .unwrap_or_else(|e| panic!("shop-dev is not tier=prod: {e}\n{}", logs()));
    let err = apply(&cluster, &service("a", "shop-prod", false), false)
        .expect_err("shop-prod is tier=prod");
    assert!(
        err.contains("metadata.labels[owner]: Required value: policy \"prod\" rule \"prod-owner\": label \"owner\" is required; production services need an owner")
            && !err.contains("fails closed"),
        "{err}"
    );
    apply(&cluster, &service("a", "shop-prod", true), false)
        .unwrap_or_else(|e| panic!("an owner label satisfies the rule: {e}"));
    assert_eq!(readyz(&server, &ca), 503, "{}", logs());

    // 3. deploy/rbac.yaml (get, list, watch): the cache syncs and /readyz turns ready; the
    // get-only grant is removed, so from here the labels come from deploy/'s permissions.
    cluster.kubectl_ok(&[
        "apply",
        "-f",
        &format!("{root}/deploy/namespace.yaml"),
        "-f",
        &format!("{root}/deploy/rbac.yaml"),
    ]);
    cluster.kubectl_ok(&["delete", "clusterrolebinding", "e2e-namespaces-get-only"]);
    wait_until(
        "/readyz after the cache synced",
        Duration::from_secs(90),
        || (readyz(&server, &ca) == 200).then_some(()),
    );
    assert!(logs().contains("namespace cache synced"), "{}", logs());
    apply(&cluster, &service("b", "shop-dev", false), false)
        .unwrap_or_else(|e| panic!("shop-dev is not tier=prod: {e}\n{}", logs()));
    assert!(apply(&cluster, &service("b", "shop-prod", false), false).is_err());

    // 4. Label changes are picked up: shop-dev becomes prod, shop-prod stops being prod.
    cluster.kubectl_ok(&["label", "namespace", "shop-dev", "tier=prod"]);
    cluster.kubectl_ok(&["label", "namespace", "shop-prod", "tier-"]);
    wait_until("shop-dev selected", Duration::from_secs(30), || {
        apply(&cluster, &service("c", "shop-dev", false), true)
            .is_err()
            .then_some(())
    });
    let err = apply(&cluster, &service("c", "shop-dev", false), false).unwrap_err();
    assert!(
        err.contains("production services need an owner") && !err.contains("fails closed"),
        "{err}"
    );
    wait_until(
        "shop-prod no longer selected",
        Duration::from_secs(30),
        || apply(&cluster, &service("c", "shop-prod", false), true).ok(),
    );
    apply(&cluster, &service("c", "shop-prod", false), false).unwrap();

    // 5. A namespace created and used at once (from the cache, or read if the watch has not
    // delivered it yet): the rule applies by its labels either way.
    cluster.apply_ok(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop-new\n  labels:\n    tier: prod\n",
    );
    let err = apply(&cluster, &service("d", "shop-new", false), false).unwrap_err();
    assert!(
        err.contains("production services need an owner") && !err.contains("fails closed"),
        "{err}"
    );
}
