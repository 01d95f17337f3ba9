//! Real-cluster suite, presets from the cluster: with `serve --cluster-presets` the webhook
//! reads LLMInferenceServiceConfigs through a watch cache; a service's baseRefs are merged
//! (user values win), a missing baseRef is refused naming it, and a preset with an unknown
//! template placeholder is refused when written.

mod support;

use std::time::{Duration, Instant};

use support::cluster::{Cluster, free_port};
use support::server::{ServerProcess, gen_certs, llmisvc_ok};

const PRESET: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceServiceConfig
metadata: {name: team-base, namespace: team}
spec:
  labels: {cost-center: "42"}
  parallelism: {tensor: 2}
  template:
    containers:
      - name: main
        env:
          - {name: TEAM_MODEL, value: "{{ .Spec.Model.Name }}"}
"#;

const SERVICE: &str = r#"
apiVersion: serving.kserve.io/v1alpha2
kind: LLMInferenceService
metadata: {name: svc, namespace: team}
spec:
  model: {uri: "hf://Qwen/Qwen2.5-7B-Instruct", name: qwen}
  labels: {cost-center: "7"}
  baseRefs: [{name: team-base}]
"#;

#[test]
fn base_refs_come_from_the_cluster_and_user_values_win() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let dir = cluster.dir.path().join("llmisvc");
    std::fs::create_dir_all(&dir).unwrap();
    gen_certs(&dir);
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let ca = dir.join("ca.crt").display().to_string();
    cluster.apply_ok(&llmisvc_ok(&[
        "crds",
        "--conversion-url",
        &url,
        "--ca-bundle",
        &ca,
    ]));
    cluster.wait_for(
        &[
            "wait",
            "--for=condition=Established",
            "crd/llminferenceserviceconfigs.serving.kserve.io",
        ],
        Duration::from_secs(60),
    );
    let kubeconfig = cluster.kubeconfig.display().to_string();
    let cert = format!("--tls-cert={}", dir.join("tls.crt").display());
    let key = format!("--tls-key={}", dir.join("tls.key").display());
    let server = ServerProcess::spawn(
        &dir,
        port,
        &[&cert, &key, "--cluster-presets"],
        &[("KUBECONFIG", &kubeconfig)],
    );
    cluster.apply_ok(&llmisvc_ok(&[
        "webhook-config",
        "--url",
        &url,
        "--ca-bundle",
        &ca,
    ]));
    cluster.kubectl_ok(&["create", "namespace", "team"]);

    // A preset with a typo in a placeholder is refused when written.
    let bad = PRESET
        .replace("team-base", "bad")
        .replace(".Spec.Model.Name", ".Spec.Model.Nmae");
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], &bad);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Nmae"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    cluster.apply_ok(PRESET);
    // The watch cache picks the preset up shortly; retry the service until it does.
    let start = Instant::now();
    loop {
        let out = cluster.kubectl_stdin(&["apply", "-f", "-"], SERVICE);
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(err.contains("team-base"), "{err}");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "preset never seen: {err}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let got: serde_json::Value = serde_json::from_str(
        &cluster.kubectl_ok(&["get", "llmisvc", "-n", "team", "svc", "-o", "json"]),
    )
    .unwrap();
    let spec = &got["spec"];
    assert_eq!(
        spec["labels"]["cost-center"], "7",
        "the user's value wins over the preset's"
    );
    assert_eq!(spec["parallelism"]["tensor"], 2, "from the preset");
    let main = spec["template"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap();
    assert!(
        main["env"]
            .to_string()
            .contains(r#""name":"TEAM_MODEL","value":"qwen""#),
        "{}",
        main["env"]
    );
    assert!(
        main["image"].as_str().unwrap().starts_with("vllm/"),
        "built-in template preset filled in"
    );
    let applied = got["metadata"]["annotations"]["serving.kserve.io/applied-presets"]
        .as_str()
        .unwrap();
    assert!(
        applied.contains("team-base") && applied.contains("UserRef"),
        "{applied}"
    );

    // A missing baseRef is refused with its name.
    let out = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &SERVICE.replace("svc", "svc2").replace("team-base", "nope"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"nope\"") && err.contains("not found"),
        "{err}"
    );
}
