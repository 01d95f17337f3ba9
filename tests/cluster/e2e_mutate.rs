//! Real-cluster suite, mutation: `kubectl apply` of the examples stores them fully expanded
//! (presets, vLLM container, storage, router), and applying the same file again is `unchanged`.

use crate::support;

use serde_json::Value;
use support::cluster::Cluster;

#[test]
fn applied_examples_are_stored_expanded_and_reapply_is_unchanged() {
    let Some(cluster) = Cluster::start_or_skip() else {
        return;
    };
    let server = support::server::install(&cluster, &[]);
    cluster.kubectl_ok(&["create", "namespace", "demo"]);
    let root = env!("CARGO_MANIFEST_DIR");
    for (file, name) in [
        ("minimal.yaml", "qwen-small"),
        ("multinode-data-parallel.yaml", ""),
        ("prefill-decode-multinode.yaml", ""),
    ] {
        let path = format!("{root}/examples/{file}");
        let out = cluster.kubectl(&["apply", "-f", &path]);
        assert!(
            out.status.success(),
            "{file}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            server.log_text()
        );
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(stdout.contains("created"), "{file}: {stdout}");
        let got: Value =
            serde_json::from_str(&cluster.kubectl_ok(&["get", "-f", &path, "-o", "json"])).unwrap();
        let spec = &got["spec"];
        // Expanded: the vLLM container from the presets with generated args, storage wiring.
        let main = spec["template"]["containers"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "main"))
            .unwrap_or_else(|| panic!("{file}: no main container in {spec}"));
        assert!(
            main["image"]
                .as_str()
                .is_some_and(|i| i.starts_with("vllm/")),
            "{file}"
        );
        let args: Vec<&str> = main["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(args.contains(&"--served-model-name"), "{file}: {args:?}");
        assert!(
            got["metadata"]["annotations"]["serving.kserve.io/applied-presets"]
                .as_str()
                .is_some_and(|a| a.contains("kserve-config-llm")),
            "{file}"
        );
        if !name.is_empty() {
            assert_eq!(
                spec["model"]["name"], name,
                "model.name defaults to metadata.name"
            );
            assert_eq!(spec["replicas"], 1);
            let init = &spec["template"]["initContainers"];
            assert!(
                init.to_string().contains("storage-initializer"),
                "{file}: {init}"
            );
        }
        if file.starts_with("prefill") {
            assert!(spec["prefill"]["template"].is_object(), "{file}");
            assert!(
                spec["router"]["scheduler"]["pool"]["spec"]["selector"].is_object(),
                "{file}"
            );
            assert!(
                spec["router"]["route"]["http"]["spec"]["rules"].is_array(),
                "{file}"
            );
        }
        // Applying the same file again changes nothing.
        let out = cluster.kubectl_ok(&["apply", "-f", &path]);
        assert!(out.contains("unchanged"), "{file}: second apply: {out}");
    }
}
