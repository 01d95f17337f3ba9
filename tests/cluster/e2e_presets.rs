//! Real-cluster suite, presets from the cluster: with `serve --cluster-presets` the webhook
//! reads LLMInferenceServiceConfigs through a watch cache; a service's baseRefs are merged
//! (user values win); a service whose baseRef does not exist yet is admitted with a warning
//! naming it and expanded once the config exists (the reconciler has it admitted again), so a
//! directory holding both applies in one `kubectl apply -f dir/` in either order; and a preset
//! with an unknown template placeholder is refused when written.

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::cluster::{Cluster, free_port};
use support::e2e::{Reconciler, get_json, reason};
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

    let _reconciler = Reconciler::start(&cluster, "1");
    cluster.apply_ok(PRESET);
    cluster.apply_ok(SERVICE);
    let got = wait_expanded(&cluster, "svc", &server);
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

    // A missing baseRef is admitted with a warning naming it, and the service is kept
    // un-expanded (and marked) until the config exists.
    let out = cluster.kubectl_stdin(
        &["apply", "-f", "-"],
        &SERVICE.replace("svc", "svc2").replace("team-base", "nope"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Warning") && err.contains("\"nope\""), "{err}");
    let svc2 = get_json(&cluster, "llmisvc", "svc2", "team").unwrap();
    assert!(svc2["spec"]["template"].is_null(), "{svc2}");
    assert!(
        svc2["metadata"]["annotations"][MISSING].is_string(),
        "{svc2}"
    );
    // ... and the reconciler reports it as KServe does.
    let start = Instant::now();
    while reason(
        &get_json(&cluster, "llmisvc", "svc2", "team").unwrap(),
        "PresetsCombined",
    ) != Some("ConfigNotFound")
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no ConfigNotFound on svc2"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // A directory holding a service and the config it references applies in one
    // `kubectl apply -f dir/`, whichever kubectl applies first (files go in name order).
    for (name, service_file, config_file) in [
        ("svc-first", "a-service.yaml", "b-config.yaml"),
        ("config-first", "b-service.yaml", "a-config.yaml"),
    ] {
        let d = cluster.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let cfg = format!("{name}-base");
        std::fs::write(
            d.join(service_file),
            SERVICE
                .replace("svc,", &format!("{name},"))
                .replace("team-base", &cfg),
        )
        .unwrap();
        std::fs::write(d.join(config_file), PRESET.replace("team-base", &cfg)).unwrap();
        cluster.kubectl_ok(&["apply", "-f", d.to_str().unwrap()]);
        let got = wait_expanded(&cluster, name, &server);
        assert_eq!(got["spec"]["labels"]["cost-center"], "7", "{name}");
    }
}

const MISSING: &str = "llmisvc.serving.kserve.io/missing-base-refs";

/// Waits until the stored service carries the team preset's parallelism and no missing-config
/// marker; returns it.
fn wait_expanded(cluster: &Cluster, name: &str, server: &ServerProcess) -> Value {
    let start = Instant::now();
    loop {
        let got = get_json(cluster, "llmisvc", name, "team");
        if let Some(g) = &got
            && g["spec"]["parallelism"]["tensor"] == 2
            && g["metadata"]["annotations"][MISSING].is_null()
        {
            return got.unwrap();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{name} never expanded: {got:?}\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
