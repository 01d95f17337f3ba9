//! The whole admission pipeline (presets + mutation steps + validation) on the examples and the
//! golden inputs, with the shipped presets: idempotent, user values kept, result valid.

use llmisvc::pipeline::Engine;
use llmisvc::server::review::Endpoint;
use serde_json::{Value, json};

fn docs(dir: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let root = format!("{}/{dir}", env!("CARGO_MANIFEST_DIR"));
    let mut entries: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".yaml") || name.ends_with(".out.yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let v: Value = serde_norway::from_str(&text).unwrap();
        if v.get("kind").and_then(Value::as_str) == Some("LLMInferenceService") {
            out.push((name, v));
        }
    }
    out
}

/// A path segment: a map key, or a list item identified by its merge key (or index).
#[derive(Clone, Debug)]
enum Seg {
    Key(String),
    Item(Option<(String, Value)>, usize),
}

const MERGE_KEYS: [&str; 4] = ["name", "containerPort", "mountPath", "devicePath"];

/// Every scalar leaf of `v` with its path; list items are named by their merge key, since
/// presets merge containers, env, volumes, ports by key and may put their own items first.
fn leaves(v: &Value, path: Vec<Seg>, out: &mut Vec<(Vec<Seg>, Value)>) {
    match v {
        Value::Object(m) => m.iter().for_each(|(k, c)| {
            let mut p = path.clone();
            p.push(Seg::Key(k.clone()));
            leaves(c, p, out)
        }),
        Value::Array(a) if !a.is_empty() => a.iter().enumerate().for_each(|(i, c)| {
            let key = MERGE_KEYS
                .iter()
                .find_map(|k| c.get(*k).map(|v| (k.to_string(), v.clone())));
            let mut p = path.clone();
            p.push(Seg::Item(key, i));
            leaves(c, p, out)
        }),
        other => out.push((path, other.clone())),
    }
}

fn find<'a>(mut v: &'a Value, path: &[Seg]) -> Option<&'a Value> {
    for seg in path {
        v = match seg {
            Seg::Key(k) => v.get(k)?,
            Seg::Item(Some((k, id)), _) => v.as_array()?.iter().find(|x| x.get(k) == Some(id))?,
            Seg::Item(None, i) => v.get(*i)?,
        };
    }
    Some(v)
}

/// Services stored by an earlier llmisvc (old model volume names): the next mutation moves
/// their model mounts to the current volume, the one after changes nothing, and in every pod
/// the storage initializer and `main` mount the same volume at /mnt/models.
#[test]
fn services_stored_with_old_volume_names_migrate_idempotently() {
    let engine = Engine::builtin().unwrap();
    let legacy = docs("tests/fixtures/legacy-stored");
    assert_eq!(legacy.len(), 4);
    for (name, input) in legacy {
        let once = engine
            .mutate(&input)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let twice = engine.mutate(&once).unwrap();
        assert_eq!(once, twice, "{name}: mutation is not idempotent");
        let spec = &once["spec"];
        let pods = [
            &spec["template"],
            &spec["worker"],
            &spec["prefill"]["template"],
            &spec["prefill"]["worker"],
        ];
        let mut checked = 0;
        for pod in pods.into_iter().filter(|p| p.is_object()) {
            let mount_of = |list: &Value, container: &str| {
                list.as_array()?.iter().find(|c| c["name"] == container)?["volumeMounts"]
                    .as_array()?
                    .iter()
                    .find(|m| m["mountPath"] == "/mnt/models")
                    .map(|m| m["name"].clone())
            };
            let Some(init) = mount_of(&pod["initContainers"], "storage-initializer") else {
                continue;
            };
            assert_eq!(init, "kserve-provision-location", "{name}");
            assert_eq!(mount_of(&pod["containers"], "main"), Some(init), "{name}");
            checked += 1;
        }
        assert!(checked > 0, "{name}: no pod with a storage initializer");
    }
}

#[test]
fn examples_and_golden_inputs_mutate_idempotently_and_validate() {
    let engine = Engine::builtin().unwrap();
    let mut all = docs("examples");
    assert!(all.len() >= 3);
    all.extend(docs("tests/golden"));
    for (name, input) in all {
        let once = engine
            .mutate(&input)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let twice = engine.mutate(&once).unwrap();
        assert_eq!(once, twice, "{name}: mutation is not idempotent");
        assert!(json_patch::diff(&once, &twice).0.is_empty());
        // User-set leaves survive (args/command may be rearranged, keeping every token).
        let mut user = Vec::new();
        leaves(&input["spec"], Vec::new(), &mut user);
        for (path, value) in user {
            if path
                .iter()
                .any(|s| matches!(s, Seg::Key(k) if k == "args" || k == "command"))
            {
                continue;
            }
            assert_eq!(
                find(&once["spec"], &path),
                Some(&value),
                "{name}: user value at {path:?} changed"
            );
        }
    }
    for (name, input) in docs("examples") {
        let out = engine.mutate(&input).unwrap();
        let outcome = engine.validate(None, &out);
        assert!(
            outcome.errors.is_empty(),
            "{name}: {:?}",
            outcome
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
    }
}

fn review(
    endpoint: Endpoint,
    uid: &str,
    operation: &str,
    object: &Value,
    old: Option<&Value>,
) -> Value {
    let kind = object["kind"].as_str().unwrap_or("LLMInferenceService");
    let mut r = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "serving.kserve.io", "version": "v1alpha2", "kind": kind},
            "name": object["metadata"]["name"], "namespace": object["metadata"]["namespace"],
            "operation": operation, "object": object}
    });
    if let Some(o) = old {
        r["request"]["oldObject"] = o.clone();
    }
    let body = serde_json::to_vec(&r).unwrap();
    let engine = ENGINE.with(|e| e.borrow().clone());
    let a = llmisvc::server::review::admission(endpoint, &body, &engine);
    assert_eq!(a.status, 200);
    serde_json::from_slice(&a.body).unwrap()
}

thread_local! {
    static ENGINE: std::cell::RefCell<Engine> = std::cell::RefCell::new(Engine::builtin().unwrap());
}

fn with_engine(engine: Engine) {
    ENGINE.with(|e| *e.borrow_mut() = engine);
}

/// The patched object a /mutate answer describes.
fn patched(object: &Value, answer: &Value) -> Value {
    use base64::Engine as _;
    let mut out = object.clone();
    if let Some(p) = answer["response"]["patch"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD.decode(p).unwrap();
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).unwrap();
        json_patch::patch(&mut out, &patch).unwrap();
    }
    out
}

fn warnings(answer: &Value) -> Vec<String> {
    answer["response"]["warnings"]
        .as_array()
        .map(|w| w.iter().map(|x| x.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn svc(spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "x", "namespace": "team-a"},
        "spec": spec
    })
}

/// `kubectl apply -f dir/` in any order: a service whose baseRefs name a config that does not
/// exist yet is admitted (/mutate and /validate) with a warning and stored un-expanded, marked;
/// admitted again once the config exists, it comes out exactly as if the config had been first.
#[test]
fn a_missing_base_ref_is_a_warning_and_the_service_is_completed_later() {
    let later = json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": "later", "namespace": "team-a"},
        "spec": {"template": {"containers": [{"name": "main", "image": "quay.io/org/vllm:from-later"}]}, "replicas": 2,
            "parallelism": {"tensor": 2}}
    });
    let input = svc(
        json!({"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}, "baseRefs": [{"name": "later"}]}),
    );
    with_engine(Engine::builtin().unwrap());
    let answer = review(Endpoint::Mutate, "m-1", "CREATE", &input, None);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    let w = warnings(&answer);
    assert!(
        w.iter().any(|w| w.starts_with("spec.baseRefs: LLMInferenceServiceConfig \"later\" not found in namespaces [\"team-a\", \"llmisvc-system\"]")),
        "{w:?}"
    );
    let stored = patched(&input, &answer);
    // Un-expanded: the object as written, marked.
    let mut expected = input.clone();
    expected["metadata"]["annotations"] =
        json!({"llmisvc.serving.kserve.io/missing-base-refs": "[\"later\"]"});
    assert_eq!(stored, expected);
    let answer = review(Endpoint::Validate, "v-1", "CREATE", &stored, None);
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    assert!(
        warnings(&answer)
            .iter()
            .any(|w| w.contains("\"later\" not found"))
    );

    // The config arrives; the service is admitted again (an UPDATE of the stored object).
    let mut objs = vec![later];
    for (file, text) in llmisvc::presets::EMBEDDED_FILES {
        objs.extend(llmisvc::presets::parse_yaml_documents(text, file).unwrap());
    }
    let store = llmisvc::presets::PresetStore::from_objects(objs, "llmisvc-system").unwrap();
    with_engine(Engine::with_presets(store));
    let answer = review(Endpoint::Mutate, "m-2", "UPDATE", &stored, Some(&stored));
    assert!(warnings(&answer).is_empty(), "{answer}");
    let completed = patched(&stored, &answer);
    let direct = patched(
        &input,
        &review(Endpoint::Mutate, "m-3", "CREATE", &input, None),
    );
    assert_eq!(
        completed, direct,
        "completion differs from admission in order"
    );
    assert_eq!(completed["spec"]["replicas"], 2);
    // The config's parallelism is no change of an immutable field: the stored object never ran.
    assert_eq!(completed["spec"]["parallelism"]["tensor"], 2);
    assert!(
        completed["metadata"]["annotations"]
            .get("llmisvc.serving.kserve.io/missing-base-refs")
            .is_none()
    );
    let answer = review(
        Endpoint::Validate,
        "v-2",
        "UPDATE",
        &completed,
        Some(&stored),
    );
    assert_eq!(answer["response"]["allowed"], true, "{answer}");
    with_engine(Engine::builtin().unwrap());
}

/// KServe validates the service as written, before presets: a scheduler `config` with neither
/// `inline` nor `ref`, an empty inline configuration, and route refs with a managed gateway are
/// refused, although the shipped scheduler preset and the router step would fill them in.
#[test]
fn kserve_rules_on_the_service_as_written() {
    with_engine(Engine::builtin().unwrap());
    let cases = [
        (
            json!({"router": {"scheduler": {"config": {}}}}),
            "spec.router.scheduler.config",
            "FieldValueRequired",
        ),
        (
            json!({"router": {"scheduler": {"config": {"inline": {}}}}}),
            "spec.router.scheduler.config.inline",
            "FieldValueInvalid",
        ),
        (
            json!({"router": {"route": {"http": {"refs": [{"name": "mine"}]}}, "gateway": {}}}),
            "spec.router.route.http.refs",
            "FieldValueForbidden",
        ),
    ];
    for (router, field, reason) in cases {
        let mut spec = json!({"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}});
        spec.as_object_mut()
            .unwrap()
            .extend(router.as_object().unwrap().clone());
        let input = svc(spec);
        let answer = review(Endpoint::Mutate, "m", "CREATE", &input, None);
        let r = &answer["response"];
        assert_eq!(r["allowed"], false, "{router}: {answer}");
        assert_eq!(r["status"]["code"], 422);
        assert_eq!(r["status"]["reason"], "Invalid");
        let causes = r["status"]["details"]["causes"].as_array().unwrap();
        assert!(
            causes
                .iter()
                .any(|c| c["field"] == field && c["reason"] == reason),
            "{router}: {causes:?}"
        );
    }
    // The same with gateway refs, or a non-empty inline configuration, is fine.
    for router in [
        json!({"router": {"route": {"http": {"refs": [{"name": "mine"}]}}, "gateway": {"refs": [{"name": "gw", "namespace": "ns"}]}}}),
        json!({"router": {"scheduler": {"config": {"inline": {"apiVersion": "inference.networking.x-k8s.io/v1alpha1", "kind": "EndpointPickerConfig"}}}}}),
    ] {
        let mut spec = json!({"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}});
        spec.as_object_mut()
            .unwrap()
            .extend(router.as_object().unwrap().clone());
        let input = svc(spec);
        let answer = review(Endpoint::Mutate, "m", "CREATE", &input, None);
        assert_eq!(answer["response"]["allowed"], true, "{router}: {answer}");
        let stored = patched(&input, &answer);
        let answer = review(Endpoint::Validate, "v", "CREATE", &stored, None);
        assert_eq!(answer["response"]["allowed"], true, "{router}: {answer}");
    }
}

/// A config whose template does not parse is refused on CREATE and on UPDATE (KServe renders
/// it on both); not while it is being deleted (KServe skips those, finalizers must go).
#[test]
fn a_config_with_a_template_syntax_error_is_refused_on_create_and_update() {
    with_engine(Engine::builtin().unwrap());
    let good = json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {"template": {"containers": [{"name": "main", "args": ["--served-model-name={{ .Spec.Model.Name }}"]}]}}
    });
    let mut bad = good.clone();
    bad["spec"]["template"]["containers"][0]["args"][0] = json!("--x={{ .Spec.Model.Name");
    let a = review(Endpoint::Validate, "c", "CREATE", &good, None);
    assert_eq!(a["response"]["allowed"], true, "{a}");
    for (op, old) in [("CREATE", None), ("UPDATE", Some(&good))] {
        let a = review(Endpoint::Validate, "c", op, &bad, old);
        assert_eq!(a["response"]["allowed"], false, "{op}: {a}");
        assert_eq!(a["response"]["status"]["code"], 422);
        let msg = a["response"]["status"]["message"].as_str().unwrap();
        assert!(
            msg.contains("spec.template.containers[0].args[0]"),
            "{op}: {msg}"
        );
    }
    let mut deleting = bad.clone();
    deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    let a = review(Endpoint::Validate, "c", "UPDATE", &deleting, Some(&bad));
    assert_eq!(a["response"]["allowed"], true, "{a}");
}

#[test]
fn a_preset_with_an_unknown_placeholder_is_rejected_when_written() {
    let engine = Engine::builtin().unwrap();
    let preset = serde_json::json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": "p", "namespace": "team-a"},
        "spec": {"template": {"containers": [{"name": "main", "args": ["--x={{ .Spec.Model.Nmae }}"]}]}}
    });
    let outcome = engine.validate(None, &preset);
    assert_eq!(outcome.errors.len(), 1, "{:?}", outcome.errors);
    assert!(
        outcome.errors[0].to_string().contains("Nmae"),
        "{}",
        outcome.errors[0]
    );
}

/// `render --explain` names a source for every field it prints, each path once.
#[test]
fn explain_names_a_source_for_every_field_of_the_examples() {
    let engine = Engine::builtin().unwrap();
    for (name, input) in docs("examples") {
        let entries = llmisvc::explain::explain(&engine, &input).unwrap();
        assert!(entries.len() > 20, "{name}: {}", entries.len());
        let mut seen = std::collections::HashSet::new();
        for e in &entries {
            assert!(!e.source.is_empty(), "{name}: {}", e.path);
            assert!(
                seen.insert(e.path.clone()),
                "{name}: {} listed twice",
                e.path
            );
        }
    }
}

/// Every shipped preset is accepted by the validating webhook, so `deploy/` can install them
/// (presets are partial: a worker template without the parallelism the service brings is fine).
#[test]
fn shipped_presets_pass_validation() {
    let engine = Engine::builtin().unwrap();
    for (file, text) in llmisvc::presets::EMBEDDED_FILES {
        for doc in llmisvc::presets::parse_yaml_documents(text, file).unwrap() {
            let outcome = engine.validate(None, &doc);
            assert!(
                outcome.errors.is_empty(),
                "{file}: {:?}",
                outcome
                    .errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
            );
        }
    }
}

/// Issue 18 (1): `VLLM_ADDITIONAL_ARGS` is split like the shell of KServe's presets splits it
/// (quotes removed), after the preset's Go template is rendered: a quoted JSON value is one
/// argument, without its quotes.
#[test]
fn vllm_additional_args_are_shell_words_after_template_rendering() {
    let preset = serde_json::json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": "extra", "namespace": "team-a"},
        "spec": {"template": {"containers": [{"name": "main", "env": [{
            "name": "VLLM_ADDITIONAL_ARGS",
            "value": "--kv_transfer_config '{\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_consumer\"}' --model-loader-extra-config '{\"enable_multithread_load\": true, \"num_threads\": 96}' --served-model-name \"{{ .ObjectMeta.Name }} alias\""
        }]}]}}
    });
    let mut objs: Vec<Value> = Vec::new();
    for (file, text) in llmisvc::presets::EMBEDDED_FILES {
        objs.extend(llmisvc::presets::parse_yaml_documents(text, file).unwrap());
    }
    objs.push(preset);
    let store = llmisvc::presets::PresetStore::from_objects(
        objs,
        llmisvc::presets::SYSTEM_NAMESPACE_DEFAULT,
    )
    .unwrap();
    let engine = Engine::with_presets(store);
    let obj = serde_json::json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "llama", "namespace": "team-a"},
        "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}, "baseRefs": [{"name": "extra"}]}
    });
    let out = engine.mutate(&obj).unwrap();
    let main = out["spec"]["template"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap();
    let args: Vec<&str> = main["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let tail = &args[args.len() - 6..];
    assert_eq!(
        tail,
        [
            "--kv_transfer_config",
            r#"{"kv_connector":"NixlConnector","kv_role":"kv_consumer"}"#,
            "--model-loader-extra-config",
            r#"{"enable_multithread_load": true, "num_threads": 96}"#,
            "--served-model-name",
            "llama alias",
        ],
        "{args:?}"
    );
    for json_arg in [tail[1], tail[3]] {
        serde_json::from_str::<Value>(json_arg).unwrap();
    }
    // The user's --served-model-name replaces the generated one; nothing twice.
    assert_eq!(
        args.iter().filter(|a| **a == "--served-model-name").count(),
        1
    );
    assert_eq!(engine.mutate(&out).unwrap(), out, "idempotent");
    assert!(engine.validate(None, &out).errors.is_empty());

    // An unterminated quote is an admission error naming the env var, not a panic.
    let mut bad = obj.clone();
    bad["spec"]["template"] = serde_json::json!({"containers": [{"name": "main",
        "env": [{"name": "VLLM_ADDITIONAL_ARGS", "value": "--x '{"}]}]});
    let err = engine.mutate(&bad).unwrap_err().to_string();
    assert!(err.contains("VLLM_ADDITIONAL_ARGS"), "{err}");
}

/// Issue 18, item 3: a Go-template placeholder in the user's own `VLLM_ADDITIONAL_ARGS` (and any
/// other string of the spec) is rendered as KServe renders the merged spec
/// (`config_merge.go`, `ReplaceVariables`), then the value is split into shell words: the
/// issue's manifest reaches vLLM with the scheduler Service's name, not the placeholder. A
/// placeholder that does not compile is a field error at admission (KServe would fail every
/// reconcile on it).
#[test]
fn user_templates_are_rendered_before_vllm_additional_args_are_split() {
    let engine = Engine::builtin().unwrap();
    let obj = serde_json::json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "llama", "namespace": "team-a"},
        "spec": {
            "model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "name": "Qwen/Qwen2.5-0.5B-Instruct"},
            "template": {"containers": [{"name": "main", "env": [
                {"name": "VLLM_ADDITIONAL_ARGS",
                 "value": "--kv_transfer_config '{\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_consumer\"}' --kv-events-config '{\"enable_kv_cache_events\":true,\"publisher\":\"zmq\",\"endpoint\":\"tcp://{{ ChildName .ObjectMeta.Name `-epp-service` }}.{{ .ObjectMeta.Namespace }}:5557\",\"topic\":\"kv@{{ .Spec.Model.Name }}\"}'"},
                {"name": "SCHEDULER", "value": "{{ ChildName .ObjectMeta.Name `-epp-service` }}"}
            ]}]},
            "router": {"route": {}, "gateway": {}, "scheduler": {}}
        }
    });
    let out = engine.mutate(&obj).unwrap();
    let main = out["spec"]["template"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap();
    let args: Vec<&str> = main["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let tail = &args[args.len() - 4..];
    assert_eq!(tail[0], "--kv_transfer_config", "{args:?}");
    assert_eq!(
        serde_json::from_str::<Value>(tail[1]).unwrap(),
        serde_json::json!({"kv_connector": "NixlConnector", "kv_role": "kv_consumer"})
    );
    assert_eq!(tail[2], "--kv-events-config", "{args:?}");
    let events: Value = serde_json::from_str(tail[3]).unwrap();
    assert_eq!(events["endpoint"], "tcp://llama-epp-service.team-a:5557");
    assert_eq!(events["topic"], "kv@Qwen/Qwen2.5-0.5B-Instruct");
    assert!(!out.to_string().contains("{{"), "{out:#}");
    // The scheduler Service the placeholder names is the one the reconciler creates.
    let children = engine.children(&obj, &Default::default()).unwrap();
    assert!(
        children
            .iter()
            .any(|c| c["kind"] == "Service" && c["metadata"]["name"] == "llama-epp-service"),
        "no Service llama-epp-service"
    );
    let env = main["env"].as_array().unwrap();
    let scheduler = env.iter().find(|e| e["name"] == "SCHEDULER").unwrap();
    assert_eq!(scheduler["value"], "llama-epp-service");
    assert!(engine.validate(None, &out).errors.is_empty());
    assert_eq!(engine.mutate(&out).unwrap(), out, "idempotent");

    // A placeholder that does not compile, or names a field the API does not have, is a field
    // error of the string, answered by /mutate as validation answers.
    for (value, want) in [
        ("--x {{ .ObjectMeta.Name", "unclosed"),
        ("--x {{ .Spec.Model.Nmae }}", "no such field"),
    ] {
        let mut bad = obj.clone();
        bad["spec"]["template"]["containers"][0]["env"][1]["value"] = Value::from(value);
        match engine.admit(&bad) {
            Err(llmisvc::pipeline::Refused::Invalid(o)) => {
                let e = o.errors[0].to_string();
                assert!(
                    e.starts_with("spec.template.containers[0].env[1].value: Invalid value"),
                    "{e}"
                );
                assert!(e.to_lowercase().contains(want), "{e}");
            }
            other => panic!("{value}: {other:?}"),
        }
    }
}

/// Issue 18 (6): multi-node pipeline parallelism with only a worker `main` gets the shipped
/// pipeline-parallel preset (leader template and image, worker image) and valid vLLM flags;
/// a multi-node pool left without a leader template, or a container without image, is refused.
#[test]
fn pipeline_parallel_multinode_gets_leader_and_images() {
    let engine = Engine::builtin().unwrap();
    let obj = serde_json::json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "pp", "namespace": "team-a"},
        "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"},
            "parallelism": {"tensor": 2, "pipeline": 2},
            "worker": {"containers": [{"name": "main"}]}}
    });
    let out = engine.mutate(&obj).unwrap();
    let applied = out["metadata"]["annotations"]["serving.kserve.io/applied-presets"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        applied.contains("kserve-config-llm-worker-pipeline-parallel"),
        "{applied}"
    );
    for (pod, rank) in [("template", "0"), ("worker", "$(LWS_WORKER_INDEX)")] {
        let main = out["spec"][pod]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "main")
            .unwrap();
        assert_eq!(main["image"], "vllm/vllm-openai:v0.23.0", "{pod}");
        let args: Vec<&str> = main["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let after = |f: &str| args[args.iter().position(|a| *a == f).unwrap() + 1];
        assert_eq!(after("--nnodes"), "2", "{pod}");
        assert_eq!(after("--node-rank"), rank, "{pod}");
        assert_eq!(after("--tensor-parallel-size"), "2", "{pod}");
        assert_eq!(main["resources"]["limits"]["nvidia.com/gpu"], "2", "{pod}");
    }
    let outcome = engine.validate(None, &out);
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(engine.mutate(&out).unwrap(), out, "idempotent");

    // Without presets nothing provides the leader or the images: refused at admission.
    let bare = Engine::default();
    let out = bare.mutate(&obj).unwrap();
    let errors: Vec<String> = bare
        .validate(None, &out)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.template: Required value")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.worker.containers[0].image: Required value")),
        "{errors:?}"
    );
}

/// Issue 18 (5): merges keep pods valid. A list item without its merge key is a field error;
/// a user volume named like a preset's takes the user's source whole; an env var's valueFrom
/// displaces the preset's value; a probe handler the preset's.
#[test]
fn merges_keep_pods_valid() {
    let engine = Engine::builtin().unwrap();
    let svc = |spec: Value| {
        let mut o = serde_json::json!({
            "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
            "metadata": {"name": "m", "namespace": "team-a"},
            "spec": {"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}}
        });
        for (k, v) in spec.as_object().unwrap() {
            o["spec"][k] = v.clone();
        }
        o
    };
    let errors_of = |spec: Value| -> Vec<String> {
        let out = engine.mutate(&svc(spec)).unwrap();
        engine
            .validate(None, &out)
            .errors
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    for (spec, field) in [
        (
            serde_json::json!({"template": {"containers": [{}]}}),
            "spec.template.containers[0].name: Required value",
        ),
        (
            serde_json::json!({"template": {"initContainers": [{}]}}),
            "spec.template.initContainers[0].name: Required value",
        ),
        (
            serde_json::json!({"router": {"scheduler": {"template": {"containers": [{}]}}}}),
            "spec.router.scheduler.template.containers[0].name: Required value",
        ),
    ] {
        let errors = errors_of(spec.clone());
        assert!(
            errors.iter().any(|e| e.starts_with(field)),
            "{spec}: {errors:?}"
        );
    }

    // A user volume of a preset's name: the user's source only.
    let out = engine
        .mutate(&svc(serde_json::json!({"template": {
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "my-home"}}],
            "containers": [{"name": "main",
                "env": [{"name": "VLLM_LOGGING_LEVEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}],
                "livenessProbe": {"tcpSocket": {"port": 8000}}}]}})))
        .unwrap();
    let pod = &out["spec"]["template"];
    let home = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "home")
        .unwrap();
    assert_eq!(
        home,
        &serde_json::json!({"name": "home", "persistentVolumeClaim": {"claimName": "my-home"}})
    );
    let main = pod["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap();
    let env = main["env"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "VLLM_LOGGING_LEVEL")
        .unwrap();
    assert!(env.get("value").is_none(), "{env}");
    assert!(main["livenessProbe"].get("httpGet").is_none());
    assert_eq!(main["livenessProbe"]["tcpSocket"]["port"], 8000);
    assert!(
        engine.validate(None, &out).errors.is_empty(),
        "{:?}",
        engine.validate(None, &out).errors
    );
    assert_eq!(engine.mutate(&out).unwrap(), out, "idempotent");

    // Pods Kubernetes would refuse are refused at admission.
    let errors = errors_of(serde_json::json!({"template": {
        "volumes": [{"name": "x", "emptyDir": {}, "hostPath": {"path": "/x"}}],
        "containers": [{"name": "main", "volumeMounts": [{"name": "nope", "mountPath": "/nope"}]},
                       {"name": "side", "image": "busybox"}],
        "initContainers": [{"name": "side", "image": "busybox"}]}}));
    for want in ["spec.template.volumes[", "spec.template.containers["] {
        assert!(
            errors.iter().any(|e| e.starts_with(want)),
            "{want}: {errors:?}"
        );
    }
    assert!(
        errors
            .iter()
            .any(|e| e.contains("a volume has exactly one source")),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|e| e.contains("Duplicate value")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("no volume named \"nope\"")),
        "{errors:?}"
    );
}

/// vLLM's own CLI, as extracted from the preset image's vLLM release by `scripts/vllm-flags.py`.
struct VllmCli {
    /// Every option name -> (canonical name, takes a value, nargs "+"/"*", JSON value, choices).
    flags: std::collections::HashMap<String, (String, bool, bool, bool, Vec<String>)>,
}

impl VllmCli {
    fn load() -> Self {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vllm-flags-0.23.0.json"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let mut flags = std::collections::HashMap::new();
        for f in v["flags"].as_array().unwrap() {
            let names: Vec<String> = f["names"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap().to_string())
                .collect();
            let canonical = names
                .iter()
                .find(|n| n.starts_with("--") && !n.starts_with("--no-"))
                .unwrap_or(&names[0])
                .clone();
            let many = matches!(f.get("nargs").and_then(Value::as_str), Some("+" | "*"));
            let choices = f
                .get("choices")
                .and_then(Value::as_array)
                .map(|c| c.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            let entry = (
                canonical,
                f["takes_value"].as_bool().unwrap(),
                many,
                f.get("json").and_then(Value::as_bool).unwrap_or(false),
                choices,
            );
            for n in names {
                flags.insert(n, entry.clone());
            }
        }
        assert!(flags.len() > 200, "fixture too small");
        VllmCli { flags }
    }

    fn is_flag(tok: &str) -> bool {
        tok.starts_with('-') && tok.len() > 1 && !tok[1..].starts_with(|c: char| c.is_ascii_digit())
    }

    /// Problems of one argv of `vllm serve` (after `serve`).
    fn check(&self, args: &[String]) -> Vec<String> {
        let mut errs = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        let mut i = 0;
        let mut positionals = 0;
        while i < args.len() {
            let tok = &args[i];
            i += 1;
            if !Self::is_flag(tok) {
                positionals += 1;
                if positionals > 1 {
                    errs.push(format!("{tok:?}: a second positional argument"));
                }
                continue;
            }
            let (name, inline) = match tok.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (tok.clone(), None),
            };
            // vLLM's FlexibleArgumentParser accepts `--flag_name` for `--flag-name`.
            let norm = match name.strip_prefix("--") {
                Some(rest) => format!("--{}", rest.replace('_', "-")),
                None => name.clone(),
            };
            let Some((canonical, takes, many, json, choices)) = self.flags.get(&norm) else {
                errs.push(format!("{name}: no such vLLM flag"));
                continue;
            };
            if seen.contains(canonical) {
                errs.push(format!("{canonical}: given twice"));
            }
            seen.push(canonical.clone());
            let mut values = Vec::new();
            if let Some(v) = inline {
                values.push(v);
            } else if *takes {
                while i < args.len() && !Self::is_flag(&args[i]) {
                    values.push(args[i].clone());
                    i += 1;
                    if !many {
                        break;
                    }
                }
            }
            if *takes && values.is_empty() {
                errs.push(format!("{name}: needs a value"));
            }
            if !*takes && !values.is_empty() {
                errs.push(format!("{name}: takes no value, got {values:?}"));
            }
            for v in &values {
                let looks_json = v.starts_with('{') || v.starts_with('[');
                if (*json || looks_json) && serde_json::from_str::<Value>(v).is_err() {
                    errs.push(format!("{name}: value {v:?} is not JSON"));
                }
                if !choices.is_empty() && !v.starts_with("$(") && !choices.contains(v) {
                    errs.push(format!("{name}: {v:?} is not one of {choices:?}"));
                }
            }
        }
        errs
    }
}

/// Every `image` value in `v`.
fn collect_images(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                match (k.as_str(), c) {
                    ("image", Value::String(s)) => out.push(s.clone()),
                    _ => collect_images(c, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|c| collect_images(c, out)),
        _ => {}
    }
}

/// Every `main` container running `vllm serve` with generated args, in an expanded object.
fn vllm_argvs(obj: &Value) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for pod in ["template", "worker"] {
        for (prefix, pool) in [
            ("spec", &obj["spec"]),
            ("spec.prefill", &obj["spec"]["prefill"]),
        ] {
            let Some(cs) = pool[pod]["containers"].as_array() else {
                continue;
            };
            for c in cs.iter().filter(|c| c["name"] == "main") {
                let cmd: Vec<&str> = c["command"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                // The data-parallel rank wrapper runs `$@` = the original command.
                let runs_vllm = cmd.ends_with(&["vllm", "serve"]);
                if !runs_vllm {
                    continue;
                }
                let args = c["args"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                out.push((format!("{prefix}.{pod}"), args));
            }
        }
    }
    out
}

/// Issue 18 (7): every generated vLLM command line of every example and golden input (with
/// the shipped presets) and every golden output is a valid `vllm serve` command line of the
/// presets' vLLM release: flags exist, values are present, JSON values parse, no flag twice.
#[test]
fn generated_vllm_argv_is_valid_for_the_preset_vllm_release() {
    let cli = VllmCli::load();
    // The checker itself.
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(
        cli.check(&s(&["/mnt/models", "--port", "8000", "-tp", "2"]))
            .is_empty()
    );
    assert_eq!(cli.check(&s(&["--no-such-flag"])).len(), 1);
    assert_eq!(cli.check(&s(&["--port"])).len(), 1);
    assert_eq!(cli.check(&s(&["--port", "1", "--port=2"])).len(), 1);
    assert_eq!(cli.check(&s(&["--kv-transfer-config", "{x"])).len(), 1);
    assert_eq!(cli.check(&s(&["--headless", "x", "y"])).len(), 1);

    // The fixture is the CLI of the shipped presets' vLLM: every vLLM image they use is that
    // release (vLLM 0.11.0 had no --nnodes / --node-rank / --master-addr).
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vllm-flags-0.23.0.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let want_image = format!("vllm/vllm-openai:v{}", fixture["vllm"].as_str().unwrap());
    let mut images = 0;
    for (file, text) in llmisvc::presets::EMBEDDED_FILES {
        for doc in llmisvc::presets::parse_yaml_documents(text, file).unwrap() {
            let mut found = Vec::new();
            collect_images(&doc, &mut found);
            for image in found.into_iter().filter(|i| i.contains("vllm-openai")) {
                // (The tokenizer runs KServe's CPU build of the same release, pinned by digest.)
                let release = image
                    .trim_start_matches("docker.io/")
                    .split('@')
                    .next()
                    .unwrap()
                    .replace("vllm-openai-cpu:", "vllm-openai:");
                assert_eq!(release, want_image, "{file}: {image}");
                images += 1;
            }
        }
    }
    assert!(images >= 10, "{images} vLLM images in the shipped presets");

    let engine = Engine::builtin().unwrap();
    let mut checked = 0;
    let mut all = docs("examples");
    all.extend(docs("examples/samples"));
    all.extend(docs("tests/golden"));
    let mut outputs: Vec<(String, Value)> = all
        .into_iter()
        .map(|(name, input)| (name.clone(), engine.mutate(&input).unwrap()))
        .collect();
    // The golden outputs (expanded without presets).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");
    let mut goldens: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    goldens.sort();
    for p in goldens {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.ends_with(".out.yaml") {
            let v: Value = serde_norway::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            outputs.push((name, v));
        }
    }
    let mut failures = Vec::new();
    for (name, out) in outputs {
        for (pod, args) in vllm_argvs(&out) {
            checked += 1;
            for e in cli.check(&args) {
                failures.push(format!("{name} {pod}: {e}"));
            }
        }
    }
    assert!(checked >= 30, "only {checked} command lines checked");
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The argv of the `main` container of `pod` (e.g. `spec.template`) in an expanded object.
fn argv_of(out: &Value, pod: &str) -> Vec<String> {
    vllm_argvs(out)
        .into_iter()
        .find(|(p, _)| p == pod)
        .unwrap_or_else(|| panic!("no vLLM container in {pod}"))
        .1
}

/// The value following `flag` in `argv`, parsed as JSON (one argv element).
fn json_flag(argv: &[String], flag: &str) -> Value {
    let i = argv
        .iter()
        .position(|a| a == flag)
        .unwrap_or_else(|| panic!("{flag} missing in {argv:?}"));
    serde_json::from_str(&argv[i + 1]).unwrap_or_else(|e| panic!("{flag} {:?}: {e}", argv[i + 1]))
}

/// Issue 18: manifests of our own (`examples/samples/`) using what KServe's
/// `docs/samples/llmisvc/` use render with the shipped presets, pass validation, build children
/// (`render --objects`), give vLLM-valid argv (also checked by
/// `generated_vllm_argv_is_valid_for_the_preset_vllm_release`) and do what they say.
#[test]
fn kserve_style_samples_render_validate_and_keep_their_features() {
    let engine = Engine::builtin().unwrap();
    let cli = VllmCli::load();
    let samples = docs("examples/samples");
    assert_eq!(
        samples.len(),
        8,
        "{:?}",
        samples.iter().map(|s| &s.0).collect::<Vec<_>>()
    );
    let mut out = std::collections::BTreeMap::new();
    for (name, input) in samples {
        let expanded = engine
            .mutate(&input)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            engine.mutate(&expanded).unwrap(),
            expanded,
            "{name}: not idempotent"
        );
        let outcome = engine.validate(None, &expanded);
        assert!(outcome.errors.is_empty(), "{name}: {:?}", outcome.errors);
        let argvs = vllm_argvs(&expanded);
        assert!(!argvs.is_empty(), "{name}: no vLLM command line");
        for (pod, args) in argvs {
            let errs = cli.check(&args);
            assert!(errs.is_empty(), "{name} {pod}: {errs:?}");
        }
        let children = engine
            .children(&input, &Default::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!children.is_empty(), "{name}");
        out.insert(name, (expanded, children));
    }
    let kinds = |name: &str| -> Vec<String> {
        out[name]
            .1
            .iter()
            .map(|c| c["kind"].as_str().unwrap().to_string())
            .collect()
    };

    // P/D with NixlConnector: the shell-quoted JSON is one argument on each side.
    let pd = &out["prefill-decode-nixl.yaml"].0;
    for (pod, role) in [
        ("spec.template", "kv_consumer"),
        ("spec.prefill.template", "kv_producer"),
    ] {
        let cfg = json_flag(&argv_of(pd, pod), "--kv_transfer_config");
        assert_eq!(
            cfg,
            json!({"kv_connector": "NixlConnector", "kv_role": role}),
            "{pod}"
        );
    }
    assert_eq!(
        kinds("prefill-decode-nixl.yaml")
            .iter()
            .filter(|k| *k == "Deployment")
            .count(),
        3
    );

    // Data + expert parallel: a LeaderWorkerSet whose leader and worker both run expert parallel.
    let dpep = &out["data-expert-parallel.yaml"].0;
    for pod in ["spec.template", "spec.worker"] {
        let argv = argv_of(dpep, pod);
        assert!(
            argv.contains(&"--enable-expert-parallel".to_string()),
            "{pod}: {argv:?}"
        );
        let dp = argv
            .iter()
            .position(|a| a == "--data-parallel-size")
            .unwrap();
        assert_eq!(argv[dp + 1], "16");
    }
    assert!(argv_of(dpep, "spec.worker").contains(&"--headless".to_string()));
    assert!(kinds("data-expert-parallel.yaml").contains(&"LeaderWorkerSet".to_string()));

    // LoRA: one download init container per adapter, served under the adapter's name.
    let lora = &out["lora-adapters.yaml"].0;
    let argv = argv_of(lora, "spec.template");
    for flag in [
        "--enable-lora",
        "--lora-modules",
        "sql=/mnt/lora/sql",
        "support=/mnt/lora/support",
    ] {
        assert!(argv.contains(&flag.to_string()), "{flag}: {argv:?}");
    }
    let inits = lora["spec"]["template"]["initContainers"]
        .as_array()
        .unwrap();
    for (adapter, uri) in [
        ("sql", "hf://example-org/llama-3.2-1b-sql-lora"),
        ("support", "hf://example-org/llama-3.2-1b-support-lora"),
    ] {
        let init = inits
            .iter()
            .find(|c| c["args"][0] == uri)
            .unwrap_or_else(|| panic!("no init container for {adapter}"));
        assert_eq!(init["args"][1], format!("/mnt/lora/{adapter}"));
        assert!(init["image"].is_string(), "{adapter}");
    }

    // KV-cache offloading: OffloadingConnector with the CPU budget in bytes.
    let kv = json_flag(
        &argv_of(&out["kv-cache-offloading.yaml"].0, "spec.template"),
        "--kv-transfer-config",
    );
    assert_eq!(kv["kv_connector"], "OffloadingConnector");
    assert_eq!(kv["kv_role"], "kv_both");
    assert_eq!(
        kv["kv_connector_extra_config"]["cpu_bytes_to_use"],
        16u64 << 30
    );

    // Precise prefix-cache routing: the KV-events config is one JSON argument, the block size
    // is passed, and the inline scheduler config is kept.
    let pp = &out["precise-prefix-cache-routing.yaml"].0;
    let events = json_flag(&argv_of(pp, "spec.template"), "--kv-events-config");
    assert_eq!(events["publisher"], "zmq");
    assert_eq!(events["endpoint"], "tcp://phi-prefix-epp-service:5557");
    assert!(argv_of(pp, "spec.template").contains(&"--block-size".to_string()));
    assert!(pp["spec"]["router"]["scheduler"]["config"]["inline"]["plugins"].is_array());
    // Its token-producer plugin brings KServe's standalone tokenizer: the preset's pod with the
    // model attached at /mnt/models/base, a Deployment and a Service `<n>-tokenizer`.
    let tok = &pp["spec"]["router"]["scheduler"]["tokenizer"]["template"];
    assert!(
        tok["initContainers"]
            .to_string()
            .contains("/mnt/models/base"),
        "{tok:#}"
    );
    let kids = &out["precise-prefix-cache-routing.yaml"].1;
    let tok_kids: Vec<_> = kids
        .iter()
        .filter(|c| c["metadata"]["name"] == "phi-prefix-tokenizer")
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(tok_kids, ["Deployment", "Service"]);

    // AMD: amd.com/gpu and never nvidia.com/gpu, the user's image kept.
    let amd = &out["amd-gpu.yaml"].0;
    let main = &amd["spec"]["template"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "main")
        .unwrap()
        .clone();
    assert_eq!(main["image"], "rocm/vllm:latest");
    assert_eq!(main["resources"]["limits"]["amd.com/gpu"], "1");
    assert!(!amd.to_string().contains("nvidia.com/gpu"), "{amd:#}");

    // Managed DRA: admitted with its exp-dra annotations, which stay on the object.
    let dra = &out["managed-dra.yaml"].0;
    assert_eq!(
        dra["metadata"]["annotations"]["serving.kserve.io/exp-dra-device-class"],
        "gpu.nvidia.com"
    );

    // Quoted JSON in VLLM_ADDITIONAL_ARGS (KServe's gpt-oss sample): each document one argument.
    let argv = argv_of(&out["additional-args-json.yaml"].0, "spec.template");
    assert_eq!(
        json_flag(&argv, "--model-loader-extra-config"),
        json!({"enable_multithread_load": true, "num_threads": 16})
    );
    assert_eq!(
        json_flag(&argv, "--compilation-config"),
        json!({"cudagraph_mode": "FULL_DECODE_ONLY"})
    );
}
