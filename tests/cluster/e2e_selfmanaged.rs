//! Real-cluster suite, self-managed certificates: `serve --self-managed-certs --webhook-url`
//! on a cluster with only the CRDs creates the Secret and fills every caBundle, after which
//! `kubectl apply` works; a second instance reuses the same Secret.

use crate::support;

use std::time::Duration;

use serde_json::Value;
use support::cluster::{Cluster, free_port};
use support::server::ServerProcess;

fn json(cluster: &Cluster, args: &[&str]) -> Value {
    serde_json::from_str(&cluster.kubectl_ok(args)).unwrap()
}

#[test]
fn self_managed_mode_creates_the_secret_injects_bundles_and_replicas_agree() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");
    cluster.kubectl_ok(&["apply", "-f", &format!("{root}/crds/")]);
    cluster.kubectl_ok(&["create", "namespace", "llmisvc-system"]);
    cluster.wait_for(
        &[
            "wait",
            "--for=condition=Established",
            "crd/llminferenceservices.serving.kserve.io",
        ],
        Duration::from_secs(60),
    );
    let dir = cluster.dir.path().join("sm");
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let args = [
        "--self-managed-certs",
        "--webhook-url",
        url.as_str(),
        "--cert-check-interval",
        "1",
    ];
    let first = ServerProcess::spawn(&dir, port, &args, &[("KUBECONFIG", kubeconfig.as_str())]);

    let secret = json(
        &cluster,
        &[
            "get",
            "secret",
            "-n",
            "llmisvc-system",
            "llmisvc-webhook-certs",
            "-o",
            "json",
        ],
    );
    for k in ["ca.crt", "ca.key", "tls.crt", "tls.key"] {
        assert!(
            secret["data"][k].as_str().is_some_and(|s| !s.is_empty()),
            "secret has {k}"
        );
    }
    let ca = secret["data"]["ca.crt"].as_str().unwrap().to_string();
    for (kind, name) in [
        ("mutatingwebhookconfiguration", "llmisvc-mutating"),
        ("validatingwebhookconfiguration", "llmisvc-validating"),
    ] {
        let o = json(&cluster, &["get", kind, name, "-o", "json"]);
        assert_eq!(
            o["webhooks"][0]["clientConfig"]["caBundle"],
            ca.as_str(),
            "{kind}"
        );
        assert!(
            o["webhooks"][0]["clientConfig"]["url"]
                .as_str()
                .unwrap()
                .starts_with(&url)
        );
    }
    for crd in [
        "llminferenceservices.serving.kserve.io",
        "llminferenceserviceconfigs.serving.kserve.io",
    ] {
        let o = json(&cluster, &["get", "crd", crd, "-o", "json"]);
        let cc = &o["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(cc["caBundle"], ca.as_str(), "{crd}");
        assert_eq!(cc["url"], format!("{url}/convert"));
        assert!(cc.get("service").is_none());
    }

    let out = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\nmetadata: {name: sm, namespace: default}\nspec:\n  model: {uri: hf://Qwen/Qwen2.5-0.5B-Instruct}\n",
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        first.log_text()
    );
    // Reading through the other version goes through /convert with the injected bundle.
    cluster.kubectl_ok(&[
        "get",
        "llminferenceservices.v1alpha1.serving.kserve.io",
        "sm",
    ]);

    // A second replica reuses the Secret: same certificate, no write.
    let rv = secret["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let port2 = free_port();
    let second = ServerProcess::spawn(&dir, port2, &args, &[("KUBECONFIG", kubeconfig.as_str())]);
    std::thread::sleep(Duration::from_secs(2));
    let again = json(
        &cluster,
        &[
            "get",
            "secret",
            "-n",
            "llmisvc-system",
            "llmisvc-webhook-certs",
            "-o",
            "json",
        ],
    );
    assert_eq!(
        again["metadata"]["resourceVersion"],
        rv.as_str(),
        "the second replica did not rewrite the Secret"
    );
    assert_eq!(again["data"]["tls.crt"], secret["data"]["tls.crt"]);
    drop(second);
    drop(first);
}
