//! Issue 18, items 4 and 9: what KServe derives after the preset merge, and what its own preset
//! tests (pkg/controller/v1alpha2/llmisvc/config_merge_test.go) expect of templates and merges.

use llmisvc::pipeline::Engine;
use llmisvc::presets::{PresetStore, ResolveOptions, resolve};
use serde_json::{Value, json};

const SYS: &str = "llmisvc-system";

fn service(spec: Value) -> Value {
    let mut spec = spec;
    if spec.get("model").is_none() {
        spec["model"] = json!({"uri": "hf://meta-llama/Llama-3.1-8B-Instruct"});
    }
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "m", "namespace": "team-a"},
        "spec": spec,
    })
}

/// Admitted by both webhooks with the shipped presets: the stored object and every warning.
fn admit(engine: &Engine, svc: &Value) -> (Value, Vec<String>) {
    let a = match engine.admit(svc) {
        Ok(a) => a,
        Err(e) => panic!("refused: {e:?}"),
    };
    let out = engine.validate(None, &a.object);
    assert!(out.errors.is_empty(), "refused: {:?}", out.errors);
    let mut w = a.warnings;
    w.extend(out.warnings);
    (a.object, w)
}

/// Issue 18 (4), second half: a scheduler `config.ref` with the shipped presets (whose
/// scheduler preset carries an inline config) is admitted: the user's alternative replaces the
/// preset's `inline` whole (not "config.inline and config.ref are exclusive"), and the endpoint
/// picker reads that ConfigMap key.
#[test]
fn a_scheduler_config_ref_is_admitted_with_the_shipped_presets() {
    let engine = Engine::builtin().unwrap();
    let svc = service(json!({"router": {"route": {}, "gateway": {}, "scheduler": {
        "config": {"ref": {"name": "my-cfg", "key": "config.yaml"}}}}}));
    let (stored, warnings) = admit(&engine, &svc);
    assert!(
        !warnings.iter().any(|w| w.contains("exclusive")),
        "{warnings:?}"
    );
    let c = &stored["spec"]["router"]["scheduler"]["config"];
    assert_eq!(c, &json!({"ref": {"name": "my-cfg", "key": "config.yaml"}}));
    let children = engine
        .children(&svc, &Default::default())
        .expect("children");
    let d = children
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "m-kserve-router-scheduler")
        .expect("scheduler Deployment");
    let pod = &d["spec"]["template"]["spec"];
    let text = pod.to_string();
    assert!(text.contains("\"my-cfg\""), "{pod}");
    assert!(text.contains("config.yaml"), "{pod}");
    assert!(!text.contains("--config-text"), "{pod}");
}

/// Issue 18 (4), second half: no "parentRefs only repeat spec.router.gateway.refs" (nor any
/// other parentRefs) warning on a manifest that has no parentRefs: the route preset's parents
/// are derived from `gateway.refs` after the merge, and warnings judge what the user wrote.
/// Checked on the manifests and on every example and sample without parentRefs.
#[test]
fn no_parent_refs_warning_on_manifests_without_parent_refs() {
    let engine = Engine::builtin().unwrap();
    let mut manifests = vec![
        service(json!({"router": {"gateway": {"refs": [
            {"name": "team-gateway", "namespace": "gateway-system"}]}, "route": {}}})),
        service(json!({"router": {"gateway": {"refs": [
            {"name": "team-gateway", "namespace": "gateway-system"}]}, "route": {}, "scheduler": {}}})),
        service(json!({"router": {"gateway": {}, "route": {}, "scheduler": {}}})),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["examples", "examples/samples"] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            if text.contains("parentRefs") {
                continue;
            }
            for doc in
                llmisvc::presets::parse_yaml_documents(&text, &p.display().to_string()).unwrap()
            {
                if doc["kind"] == "LLMInferenceService" {
                    manifests.push(doc);
                }
            }
        }
    }
    assert!(manifests.len() > 5, "{}", manifests.len());
    for m in &manifests {
        let Ok(a) = engine.admit(m) else { continue };
        let mut w = a.warnings;
        w.extend(engine.validate(None, &a.object).warnings);
        assert!(
            !w.iter().any(|w| w.contains("parentRefs")),
            "{}: {w:?}",
            m["metadata"]["name"]
        );
    }
}

fn preset(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": name, "namespace": SYS},
        "spec": spec,
    })
}

fn resolve_with(presets: Vec<Value>, svc: Value) -> Value {
    let store = PresetStore::from_objects(presets, SYS).unwrap();
    let opts = ResolveOptions {
        no_well_known: true,
    };
    let r = resolve(&svc, &store, &opts).unwrap();
    let again = resolve(&r.object, &store, &opts).unwrap();
    assert_eq!(again.object, r.object, "idempotent");
    r.object
}

/// Issue 18 (9): template fields of the parsed model URI, as KServe's config_merge_test.go
/// ("template with complex nested model spec"): `.Spec.Model.URI.Host` and `.Path` of
/// `hf://meta-llama/Llama-3.2-3B-Instruct` are `meta-llama` and `/Llama-3.2-3B-Instruct`
/// (Go's `net/url`); and `if`/`else` on an unset field takes the `else` branch ("template with
/// nil pointer access should not error if default value is provided").
#[test]
fn model_uri_fields_and_conditionals_render_as_kserves_preset_tests() {
    let p = preset(
        "uri-fields",
        json!({"template": {"containers": [{"name": "main",
            "args": ["--model-path={{ .Spec.Model.URI.Host }}{{ .Spec.Model.URI.Path }}",
                     "--scheme={{ .Spec.Model.URI.Scheme }}"],
            "env": [{"name": "LORA",
                "value": "{{ if .Spec.Model.LoRA }}{{ .Spec.Model.LoRA.MaxRank }}{{ else }}default-lora{{ end }}"}]}]}}),
    );
    let svc = json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "m", "namespace": "team-a"},
        "spec": {"baseRefs": [{"name": "uri-fields"}],
            "model": {"uri": "hf://meta-llama/Llama-3.2-3B-Instruct", "name": "meta-llama/Llama-3.2-3B-Instruct"}},
    });
    let out = resolve_with(vec![p], svc);
    let main = &out["spec"]["template"]["containers"][0];
    assert_eq!(
        main["args"],
        json!([
            "--model-path=meta-llama/Llama-3.2-3B-Instruct",
            "--scheme=hf"
        ])
    );
    assert_eq!(main["env"][0]["value"], "default-lora");
    // Go's url.Parse on the other parts.
    use llmisvc::presets::template::url_field;
    let u = "s3://user:pw@bucket.example:9000/models/a%20b?versionId=3#frag";
    assert_eq!(url_field(u, "Scheme"), "s3");
    assert_eq!(url_field(u, "User"), "user:pw");
    assert_eq!(url_field(u, "Host"), "bucket.example:9000");
    assert_eq!(url_field(u, "Path"), "/models/a b");
    assert_eq!(url_field(u, "RawQuery"), "versionId=3");
    assert_eq!(url_field(u, "Fragment"), "frag");
    assert_eq!(url_field("pvc://claim/sub/dir", "Host"), "claim");
    assert_eq!(url_field("oci:registry/model", "Opaque"), "registry/model");
    assert_eq!(url_field("hf://org/model", "User"), Value::Null);
}

/// Issue 18 (9): keyed lists merge in the order of KServe's strategic merge
/// (config_merge_test.go "merge pod spec, add container" and "deep merge with podspec
/// template"): items new in the later spec come first, before the base's remaining items;
/// matched items keep the later spec's order. The same for `env`.
#[test]
fn merged_keyed_lists_keep_kserves_order() {
    let base = preset(
        "base",
        json!({"template": {
            "containers": [{"name": "busybox", "image": "busybox",
                "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}],
            "initContainers": [{"name": "busybox-sidecar", "image": "busybox-sidecar"}]}}),
    );
    let svc = json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "m", "namespace": "team-a"},
        "spec": {"baseRefs": [{"name": "base"}], "model": {"uri": "hf://org/model"},
            "template": {"containers": [
                {"name": "busybox-2", "image": "busybox-2"},
                {"name": "busybox", "env": [{"name": "C", "value": "3"}, {"name": "B", "value": "9"}]}]}},
    });
    let out = resolve_with(vec![base], svc);
    let t = &out["spec"]["template"];
    let names: Vec<&str> = t["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["busybox-2", "busybox"]);
    assert_eq!(t["containers"][1]["image"], "busybox");
    // env: C (new) before A (base only, compared with C: not in the base), then B (matched,
    // after A in the base).
    assert_eq!(
        t["containers"][1]["env"],
        json!([{"name": "C", "value": "3"}, {"name": "A", "value": "1"}, {"name": "B", "value": "9"}])
    );
    assert_eq!(
        t["initContainers"],
        json!([{"name": "busybox-sidecar", "image": "busybox-sidecar"}])
    );
}

fn env_of<'a>(c: &'a Value, name: &str) -> Option<&'a Value> {
    c["env"].as_array()?.iter().find(|e| e["name"] == name)
}

fn container<'a>(pod: &'a Value, key: &str, name: &str) -> &'a Value {
    pod[key]
        .as_array()
        .and_then(|l| l.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no {key} {name}: {pod}"))
}

/// `spec.tracing` as KServe's tracing.go and config-llm-tracing.yaml: `tracing: {}` takes the
/// shipped preset's defaults; vLLM (decode and prefill `main`) gets `--otlp-traces-endpoint`,
/// `--collect-detailed-traces all` and the `OTEL_*` env with service `inference-server-<role>`;
/// the endpoint picker gets `--tracing=true` and service `inference-scheduler`; a user's env
/// value wins.
#[test]
fn tracing_reaches_vllm_and_the_scheduler_as_kserve() {
    let engine = Engine::builtin().unwrap();
    let svc = service(json!({
        "tracing": {},
        "template": {"containers": [{"name": "main",
            "env": [{"name": "OTEL_TRACES_SAMPLER_ARG", "value": "1"}]}]},
        "prefill": {"template": {"containers": [{"name": "main"}]}},
        "router": {"route": {}, "gateway": {}, "scheduler": {}},
    }));
    let children = engine
        .children(&svc, &Default::default())
        .expect("children");
    let deployment = |n: &str| {
        children
            .iter()
            .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == n)
            .unwrap_or_else(|| panic!("no Deployment {n}"))
    };
    for (name, service_name) in [
        ("m-kserve", "inference-server-decode"),
        ("m-kserve-prefill", "inference-server-prefill"),
    ] {
        let pod = &deployment(name)["spec"]["template"]["spec"];
        let main = container(pod, "containers", "main");
        let args: Vec<&str> = main["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let at = args
            .iter()
            .position(|a| *a == "--otlp-traces-endpoint")
            .unwrap_or_else(|| panic!("{name}: {args:?}"));
        assert_eq!(args[at + 1], "http://otel-collector:4317");
        let at = args
            .iter()
            .position(|a| *a == "--collect-detailed-traces")
            .unwrap();
        assert_eq!(args[at + 1], "all");
        assert_eq!(
            env_of(main, "OTEL_SERVICE_NAME").unwrap()["value"],
            service_name
        );
        assert_eq!(
            env_of(main, "OTEL_TRACES_SAMPLER").unwrap()["value"],
            "parentbased_traceidratio"
        );
        assert_eq!(
            env_of(main, "OTEL_TRACES_EXPORTER").unwrap()["value"],
            "otlp"
        );
        assert_eq!(
            env_of(main, "OTEL_RESOURCE_ATTRIBUTES_POD_NAME").unwrap()["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        assert!(
            env_of(main, "OTEL_RESOURCE_ATTRIBUTES").unwrap()["value"]
                .as_str()
                .unwrap()
                .contains("k8s.namespace.name=team-a")
        );
    }
    let decode = container(
        &deployment("m-kserve")["spec"]["template"]["spec"],
        "containers",
        "main",
    );
    assert_eq!(
        env_of(decode, "OTEL_TRACES_SAMPLER_ARG").unwrap()["value"],
        "1"
    );
    let sched = container(
        &deployment("m-kserve-router-scheduler")["spec"]["template"]["spec"],
        "containers",
        "main",
    );
    assert!(
        sched["args"]
            .as_array()
            .unwrap()
            .contains(&json!("--tracing=true")),
        "{sched}"
    );
    assert_eq!(
        env_of(sched, "OTEL_SERVICE_NAME").unwrap()["value"],
        "inference-scheduler"
    );
    assert_eq!(
        env_of(sched, "OTEL_TRACES_SAMPLER_ARG").unwrap()["value"],
        "0.05"
    );
    // Without `tracing`, nothing.
    let mut plain = svc.clone();
    plain["spec"].as_object_mut().unwrap().remove("tracing");
    let text =
        serde_json::to_string(&engine.children(&plain, &Default::default()).unwrap()).unwrap();
    assert!(
        !text.contains("OTEL_SERVICE_NAME")
            && !text.contains("--otlp-traces-endpoint")
            && !text.contains("--tracing"),
        "{text}"
    );
}

/// `spec.model.confidential` as KServe's attachStorageInitializer / confidential.go: the
/// model's storage initializer gets `CONFIDENTIAL_ENABLED=true` and `CONFIDENTIAL_RESOURCE_ID`;
/// `enabled: false` gives neither.
#[test]
fn confidential_model_reaches_the_storage_initializer() {
    let engine = Engine::builtin().unwrap();
    let svc = service(json!({"model": {"uri": "hf://org/model",
        "confidential": {"enabled": true, "resourceId": "kbs:///repo/key/tag"}}}));
    let children = engine
        .children(&svc, &Default::default())
        .expect("children");
    let d = children
        .iter()
        .find(|o| o["kind"] == "Deployment" && o["metadata"]["name"] == "m-kserve")
        .unwrap();
    let init = container(
        &d["spec"]["template"]["spec"],
        "initContainers",
        "storage-initializer",
    );
    assert_eq!(
        env_of(init, "CONFIDENTIAL_ENABLED").unwrap()["value"],
        "true"
    );
    assert_eq!(
        env_of(init, "CONFIDENTIAL_RESOURCE_ID").unwrap()["value"],
        "kbs:///repo/key/tag"
    );
    let mut off = svc.clone();
    off["spec"]["model"]["confidential"]["enabled"] = json!(false);
    let text = serde_json::to_string(&engine.children(&off, &Default::default()).unwrap()).unwrap();
    assert!(!text.contains("CONFIDENTIAL_"), "{text}");
}
