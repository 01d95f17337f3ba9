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
        "spec": {"template": {"containers": [{"name": "main", "image": "quay.io/org/vllm:from-later"}]}, "replicas": 2}
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
