//! Real-cluster suite, foundation: the generated CRDs install on the test bed's kube-apiserver (v1.37) with
//! plain client-side `kubectl apply`, `kubectl explain` shows our docs, and a KServe-style
//! v1alpha2 manifest is stored and read back.

use crate::support;

use std::time::Duration;
use support::cluster::Cluster;

const MANIFEST: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: deepseek
  namespace: default
spec:
  model:
    uri: hf://deepseek-ai/DeepSeek-R1-0528
    name: deepseek-ai/DeepSeek-R1-0528
  replicas: 1
  parallelism:
    data: 16
    dataLocal: 8
    tensor: 1
    expert: true
  template:
    containers:
      - name: main
        image: vllm/vllm-openai:v0.11.0
        resources:
          limits: {nvidia.com/gpu: "8"}
  worker:
    containers:
      - name: main
        image: vllm/vllm-openai:v0.11.0
        resources:
          limits: {nvidia.com/gpu: "8"}
  prefill:
    replicas: 2
    parallelism: {tensor: 4}
    template:
      containers:
        - name: main
          image: vllm/vllm-openai:v0.11.0
  router:
    route: {}
    gateway: {}
    scheduler:
      pool:
        spec:
          selector: {matchLabels: {app: deepseek}}
          targetPorts: [{number: 8000}]
          endpointPickerRef: {name: deepseek-epp, port: {number: 9002}}
"#;

#[test]
fn crds_install_with_client_side_apply_and_store_kserve_manifests() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let root = env!("CARGO_MANIFEST_DIR");

    // Client-side apply: kubectl stores the whole CRD in last-applied-configuration.
    let out = cluster.kubectl_ok(&["apply", "-f", &format!("{root}/crds/")]);
    assert!(
        out.contains("llminferenceservices.serving.kserve.io created"),
        "{out}"
    );
    assert!(
        out.contains("llminferenceserviceconfigs.serving.kserve.io created"),
        "{out}"
    );
    for crd in [
        "llminferenceservices.serving.kserve.io",
        "llminferenceserviceconfigs.serving.kserve.io",
    ] {
        cluster.wait_for(
            &[
                "wait",
                "--for=condition=Established",
                &format!("crd/{crd}"),
                "--timeout=30s",
            ],
            Duration::from_secs(60),
        );
        let annotation = cluster.kubectl_ok(&[
            "get",
            "crd",
            crd,
            "-o",
            "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
        ]);
        assert!(
            annotation.len() > 10_000,
            "client-side apply stored the CRD in the annotation"
        );
    }

    // `kubectl get llmisvc` works (short name, printer columns).
    let out = cluster.kubectl_ok(&["get", "llmisvc"]);
    assert!(out.is_empty() || out.contains("No resources"), "{out}");

    // `kubectl explain` shows documentation from the Rust doc comments (once the API server
    // has published the CRD's OpenAPI, a few seconds after Established).
    cluster.wait_for(
        &["explain", "llminferenceservice.spec.parallelism"],
        Duration::from_secs(60),
    );
    let out = cluster.kubectl_ok(&["explain", "llminferenceservice.spec.parallelism"]);
    assert!(
        out.contains("How the model is spread over GPUs and nodes"),
        "{out}"
    );
    assert!(out.contains("tensor"), "{out}");
    let out = cluster.kubectl_ok(&["explain", "llminferenceservice.spec.parallelism.tensor"]);
    assert!(out.contains("--tensor-parallel-size"), "{out}");

    // A KServe-style v1alpha2 manifest is stored and read back.
    let out = cluster.apply_ok(MANIFEST);
    assert!(
        out.contains("llminferenceservice.serving.kserve.io/deepseek created"),
        "{out}"
    );
    let got = cluster.kubectl_ok(&["get", "llmisvc", "deepseek", "-o", "json"]);
    let got: serde_json::Value = serde_json::from_str(&got).unwrap();
    let want: serde_json::Value = serde_norway::from_str(MANIFEST).unwrap();
    for field in [
        "model",
        "parallelism",
        "template",
        "worker",
        "prefill",
        "router",
        "replicas",
    ] {
        assert_eq!(
            got["spec"][field], want["spec"][field],
            "spec.{field} read back"
        );
    }
    let out = cluster.kubectl_ok(&["get", "llmisvc"]);
    for col in ["NAME", "URL", "READY", "REASON", "AGE", "deepseek"] {
        assert!(out.contains(col), "missing {col} in:\n{out}");
    }
    // The config kind installs and stores too.
    cluster.apply_ok(
        "apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceServiceConfig\nmetadata: {name: preset}\nspec:\n  parallelism: {tensor: 2}\n",
    );
    let out = cluster.kubectl_ok(&[
        "get",
        "llmisvcconfig",
        "preset",
        "-o",
        "jsonpath={.spec.parallelism.tensor}",
    ]);
    assert_eq!(out, "2");
}
