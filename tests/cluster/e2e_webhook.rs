//! Real-cluster suite, admission server: the test bed's kube-apiserver (v1.37) reaches `llmisvc serve` by URL
//! with the generated CA bundle; applies go through /mutate and /validate; field errors and
//! policy warnings reach kubectl; failurePolicy Fail blocks applies while the server is down.

use crate::support;

use support::cluster::Cluster;

const POLICY: &str = r#"
name: e2e
rules:
  - name: team-label
    action: warn
    message: cost reports group by team
    requiredLabels:
      labels:
        team: []
"#;

fn service(name: &str, tensor: u32, gpus: u32) -> String {
    format!(
        r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata:
  name: {name}
  namespace: default
spec:
  model:
    uri: hf://Qwen/Qwen2.5-7B-Instruct
  parallelism:
    tensor: {tensor}
  template:
    containers:
      - name: main
        image: vllm/vllm-openai:v0.11.0
        resources:
          limits: {{nvidia.com/gpu: "{gpus}"}}
          requests: {{nvidia.com/gpu: "{gpus}"}}
"#
    )
}

#[test]
fn apiserver_calls_the_webhooks_and_kubectl_shows_their_answers() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let dir = cluster.dir.path().join("llmisvc");
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/e2e.yaml"), POLICY).unwrap();
    let policies = format!("--policies-dir={}", dir.join("policies").display());
    let mut server = support::server::install(&cluster, &[&policies]);

    // A valid service goes through /mutate and /validate; the warn policy reaches kubectl.
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &service("ok", 2, 2));
    assert!(
        out.status.success(),
        "{}\n{}",
        support::e2e::combined_output(&out),
        server.log_text()
    );
    let text = support::e2e::combined_output(&out);
    assert!(text.contains("Warning:") && text.contains("team"), "{text}");
    let log = server.log_text();
    assert!(
        log.contains("endpoint=\"mutate\"") || log.contains("endpoint=mutate"),
        "{log}"
    );
    assert!(log.contains("name=ok"), "{log}");
    let metrics = cluster.kubectl_ok(&["get", "llmisvc", "ok", "-o", "name"]);
    assert!(metrics.contains("ok"));

    // An invalid one is refused with our field error.
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &service("bad", 4, 2));
    assert!(!out.status.success());
    let text = support::e2e::combined_output(&out);
    assert!(
        text.contains("spec.parallelism.tensor: Invalid value: 4")
            && text.contains("set parallelism.tensor: 2 or request 4 GPUs"),
        "{text}"
    );

    // A mutation step's error reaches kubectl as a field error too (issue 16): the 422
    // `Status` names the field by its Kubernetes path (`env[<index after the presets' merge>]`),
    // as validation errors do.
    let unsplittable = service("args", 1, 1).replace(
        "        resources:",
        "        env:\n          - {name: OTHER, value: x}\n          - {name: VLLM_ADDITIONAL_ARGS, value: \"--x '{\"}\n        resources:",
    );
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &unsplittable);
    assert!(!out.status.success());
    let text = support::e2e::combined_output(&out);
    assert!(
        text.contains("is invalid: spec.template.containers[0].env[")
            && text.contains("].value: Invalid value: VLLM_ADDITIONAL_ARGS: "),
        "{text}"
    );

    // Total parallelism is immutable on UPDATE.
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &service("ok", 4, 4));
    assert!(
        !out.status.success(),
        "changing total parallelism must be refused"
    );
    assert!(
        support::e2e::combined_output(&out).contains("spec.parallelism"),
        "{}",
        support::e2e::combined_output(&out)
    );

    // `llmisvc validate -f` gives the same error offline.
    let f = dir.join("bad.yaml");
    std::fs::write(&f, service("bad", 4, 2)).unwrap();
    let out = support::server::llmisvc()
        .args(["validate", "-f"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("spec.parallelism.tensor: Invalid value: 4")
    );

    // With the server down, failurePolicy: Fail makes the apply fail with the webhook error.
    server.stop();
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &service("down", 1, 1));
    assert!(!out.status.success());
    let text = support::e2e::combined_output(&out);
    assert!(text.contains("failed calling webhook"), "{text}");
}
