//! Presets: loading, well-known selection, baseRefs, merge semantics through `resolve`,
//! idempotence and the applied-presets annotation.

use llmisvc::presets::{
    APPLIED_PRESETS_ANNOTATION, AppliedPreset, EMBEDDED_FILES, PresetError, PresetSource,
    PresetStore, ResolveOptions, SYSTEM_NAMESPACE_DEFAULT, merge, parse_applied_annotation,
    resolve, template, well_known,
};
use serde_json::{Value, json};

const SYS: &str = SYSTEM_NAMESPACE_DEFAULT;

fn cfg(name: &str, ns: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceServiceConfig",
        "metadata": {"name": name, "namespace": ns, "resourceVersion": "1"},
        "spec": spec,
    })
}

fn svc(spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "llama", "namespace": "team-a"},
        "spec": spec,
    })
}

/// A store with a marker preset for every well-known name, so selection is visible.
fn marker_store(extra: Vec<Value>) -> PresetStore {
    let names = [
        well_known::TEMPLATE,
        well_known::DECODE_TEMPLATE,
        well_known::PREFILL_TEMPLATE,
        well_known::WORKER_DATA_PARALLEL,
        well_known::DECODE_WORKER_DATA_PARALLEL,
        well_known::PREFILL_WORKER_DATA_PARALLEL,
        well_known::SCHEDULER,
        well_known::ROUTER_ROUTE,
        well_known::TRACING,
    ];
    let mut objs: Vec<Value> = names
        .iter()
        .map(|n| cfg(n, SYS, json!({"labels": {*n: "applied"}})))
        .collect();
    objs.extend(extra);
    PresetStore::from_objects(objs, SYS).unwrap()
}

fn applied_names(r: &llmisvc::presets::Resolved) -> Vec<String> {
    r.applied.iter().map(|a| a.name.clone()).collect()
}

fn resolve_ok(obj: &Value, store: &PresetStore) -> llmisvc::presets::Resolved {
    let r = resolve(obj, store, &ResolveOptions::default()).unwrap();
    let again = resolve(&r.object, store, &ResolveOptions::default()).unwrap();
    assert_eq!(again.object, r.object, "resolve is idempotent");
    assert_eq!(again.applied, r.applied);
    r
}

#[test]
fn embedded_loads_every_file_in_deploy_presets() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/presets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = EMBEDDED_FILES.iter().map(|(n, _)| n.to_string()).collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "EMBEDDED_FILES lists every file of deploy/presets"
    );

    let store = PresetStore::embedded(SYS).unwrap();
    assert_eq!(store.len(), on_disk.len());
    for f in &on_disk {
        let name = f.trim_end_matches(".yaml");
        let p = store
            .get(SYS, name)
            .unwrap_or_else(|| panic!("{name} loaded"));
        assert_eq!(p.namespace, SYS);
        assert!(p.content_hash.starts_with("fnv1a64:"));
    }
    // The same files load from the directory too, with their own namespace.
    let from_dir = PresetStore::from_dir(&dir, "elsewhere").unwrap();
    assert_eq!(from_dir.len(), store.len());
    assert!(from_dir.get(SYS, well_known::TEMPLATE).is_some());
    assert!(
        from_dir.get("x", well_known::TEMPLATE).is_none(),
        "file namespace kept"
    );
    // Another system namespace moves the embedded presets there.
    let kserve = PresetStore::embedded("kserve").unwrap();
    assert_eq!(
        kserve
            .get("team-a", well_known::SCHEDULER)
            .unwrap()
            .namespace,
        "kserve"
    );
    // Templated presets really have templates.
    assert!(
        store
            .get(SYS, well_known::SCHEDULER)
            .unwrap()
            .template_count()
            > 0
    );
}

#[test]
fn embedded_presets_resolve_a_full_service() {
    let store = PresetStore::embedded(SYS).unwrap();
    let obj = svc(json!({
        "model": {"uri": "hf://meta/llama"},
        "router": {"scheduler": {}, "route": {}},
    }));
    let r = resolve_ok(&obj, &store);
    assert_eq!(
        applied_names(&r),
        [
            well_known::SCHEDULER,
            well_known::ROUTER_ROUTE,
            well_known::TEMPLATE
        ]
    );
    let spec = &r.object["spec"];
    let main = &spec["template"]["containers"][0];
    assert_eq!(main["name"], "main");
    assert_eq!(main["command"], json!(["vllm", "serve"]));
    assert!(main.get("args").is_none(), "args are the mutate step's job");
    let epp = &spec["router"]["scheduler"]["template"]["containers"][0];
    assert_eq!(epp["args"][1], "llama-inference-pool");
    assert_eq!(epp["args"][3], "team-a");
    assert_eq!(
        spec["router"]["scheduler"]["pool"]["spec"]["endpointPickerRef"]["name"],
        "llama-epp-service"
    );
    let rule = &spec["router"]["route"]["http"]["spec"]["rules"][0];
    assert_eq!(rule["matches"][0]["path"]["value"], "/team-a/llama/v1");
    assert!(
        !r.object.to_string().contains("{{"),
        "every template rendered"
    );
}

#[test]
fn well_known_selection() {
    let store = marker_store(vec![]);
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"model": {"uri": "hf://m"}}),
            vec![well_known::TEMPLATE],
        ),
        (json!({}), vec![well_known::TEMPLATE]),
        (
            json!({"prefill": {}}),
            vec![well_known::PREFILL_TEMPLATE, well_known::DECODE_TEMPLATE],
        ),
        (
            json!({"worker": {}, "parallelism": {"data": 4, "dataLocal": 2}}),
            vec![well_known::WORKER_DATA_PARALLEL],
        ),
        (
            json!({"worker": {}, "parallelism": {"dataLocal": 2},
                   "prefill": {"worker": {}, "parallelism": {"data": 2}}}),
            vec![
                well_known::PREFILL_WORKER_DATA_PARALLEL,
                well_known::DECODE_WORKER_DATA_PARALLEL,
            ],
        ),
        // pipeline presets are not shipped: skipped silently
        (
            json!({"worker": {}, "parallelism": {"pipeline": 2}}),
            vec![],
        ),
        (
            json!({"router": {"scheduler": {}}}),
            vec![well_known::SCHEDULER, well_known::TEMPLATE],
        ),
        // a scheduler with a pool ref needs no scheduler preset
        (
            json!({"router": {"scheduler": {"pool": {"ref": {"name": "p"}}}}}),
            vec![well_known::TEMPLATE],
        ),
        (
            json!({"router": {"route": {}}}),
            vec![well_known::ROUTER_ROUTE, well_known::TEMPLATE],
        ),
        (
            json!({"router": {"route": {"http": {"refs": [{"name": "mine"}]}}}}),
            vec![well_known::TEMPLATE],
        ),
        (
            json!({"tracing": {}}),
            vec![well_known::TRACING, well_known::TEMPLATE],
        ),
    ];
    for (spec, want) in cases {
        let r = resolve_ok(&svc(spec.clone()), &store);
        assert_eq!(applied_names(&r), want, "spec {spec}");
        for a in &r.applied {
            assert_eq!(a.source, PresetSource::WellKnown);
            assert_eq!(r.object["spec"]["labels"][&a.name], "applied");
        }
    }
    let none = resolve(
        &svc(json!({})),
        &store,
        &ResolveOptions {
            no_well_known: true,
        },
    )
    .unwrap();
    assert!(none.applied.is_empty());
}

#[test]
fn base_refs_in_order_last_wins_user_beats_all() {
    let store = marker_store(vec![
        cfg(
            "a",
            SYS,
            json!({"replicas": 1, "labels": {"from": "a", "a": "1"},
                   "template": {"containers": [{"name": "main", "image": "a", "env": [{"name": "X", "value": "a"}]}]}}),
        ),
        cfg(
            "b",
            SYS,
            json!({"replicas": 2, "labels": {"from": "b"},
                   "template": {"containers": [{"name": "main", "image": "b", "env": [{"name": "X", "value": "b"}, {"name": "Y", "value": "b"}]}]}}),
        ),
    ]);
    let obj = svc(json!({
        "baseRefs": [{"name": "a"}, {"name": "b"}],
        "template": {"containers": [{"name": "main", "env": [{"name": "Y", "value": "user"}]}]},
        "labels": {"user": "yes"},
    }));
    let r = resolve_ok(&obj, &store);
    assert_eq!(applied_names(&r), [well_known::TEMPLATE, "a", "b"]);
    assert_eq!(r.applied[1].source, PresetSource::BaseRef);
    let spec = &r.object["spec"];
    assert_eq!(spec["replicas"], 2);
    assert_eq!(spec["labels"]["from"], "b");
    assert_eq!(spec["labels"]["a"], "1");
    assert_eq!(spec["labels"]["user"], "yes");
    let main = &spec["template"]["containers"][0];
    assert_eq!(main["image"], "b");
    assert_eq!(
        main["env"],
        json!([{"name": "X", "value": "b"}, {"name": "Y", "value": "user"}])
    );
    assert_eq!(spec["baseRefs"], json!([{"name": "a"}, {"name": "b"}]));

    // The user beats presets at every level.
    let obj = svc(json!({
        "baseRefs": [{"name": "b"}],
        "replicas": 7,
        "labels": {"from": "user"},
        "template": {"containers": [{"name": "main", "image": "mine", "env": [{"name": "X", "value": "mine"}]}]},
    }));
    let r = resolve_ok(&obj, &store);
    let spec = &r.object["spec"];
    assert_eq!(spec["replicas"], 7);
    assert_eq!(spec["labels"]["from"], "user");
    assert_eq!(spec["template"]["containers"][0]["image"], "mine");
    assert_eq!(spec["template"]["containers"][0]["env"][0]["value"], "mine");
}

/// A missing baseRef is not an error: nothing is merged (not even the well-known presets, which
/// would otherwise be stored as the user's values and outrank the baseRef once it exists), the
/// object comes back as given and marked, and resolving it once the config exists gives what
/// resolving the original would.
#[test]
fn missing_base_ref_leaves_the_object_unexpanded_and_marked() {
    use llmisvc::presets::{MISSING_BASE_REFS_ANNOTATION, MissingRef, missing_base_refs};
    let store = marker_store(vec![cfg("present", "team-a", json!({"replicas": 3}))]);
    let input = svc(json!({"baseRefs": [{"name": "present"}, {"name": "nope"}, {"name": "nope"}]}));
    let r = resolve(&input, &store, &ResolveOptions::default()).unwrap();
    assert_eq!(
        r.missing,
        vec![MissingRef {
            name: "nope".into(),
            namespaces: vec!["team-a".into(), SYS.into()]
        }]
    );
    assert!(r.applied.is_empty());
    let mut expected = input.clone();
    expected["metadata"]["annotations"] = json!({MISSING_BASE_REFS_ANNOTATION: "[\"nope\"]"});
    assert_eq!(r.object, expected);
    assert_eq!(missing_base_refs(&r.object), vec!["nope".to_string()]);
    let w = r.missing[0].warning();
    assert!(
        w.contains("\"nope\"") && w.contains("team-a") && w.contains(SYS),
        "{w}"
    );
    // Still missing: the same (idempotent).
    let again = resolve(&r.object, &store, &ResolveOptions::default()).unwrap();
    assert_eq!(again.object, r.object);

    // The config arrives: completing the stored object equals resolving the original.
    let store = marker_store(vec![
        cfg("present", "team-a", json!({"replicas": 3})),
        cfg(
            "nope",
            SYS,
            json!({"replicas": 5, "labels": {"nope": "applied"}}),
        ),
    ]);
    let completed = resolve_ok(&r.object, &store);
    let direct = resolve_ok(&input, &store);
    assert_eq!(completed.object, direct.object);
    assert!(completed.missing.is_empty());
    assert_eq!(completed.object["spec"]["replicas"], 5);
    assert!(missing_base_refs(&completed.object).is_empty());
    assert!(
        completed.object["metadata"]["annotations"]
            .get(MISSING_BASE_REFS_ANNOTATION)
            .is_none()
    );

    // A service expanded before whose config was deleted since: expanded again with what
    // exists (its spec already holds what the config gave), reported as missing, not marked.
    let gone = marker_store(vec![cfg("present", "team-a", json!({"replicas": 3}))]);
    let r = resolve(&direct.object, &gone, &ResolveOptions::default()).unwrap();
    assert_eq!(r.missing.len(), 1);
    assert!(missing_base_refs(&r.object).is_empty());
    assert_eq!(r.object["spec"]["replicas"], 5);
}

#[test]
fn namespace_first_lookup() {
    let store = marker_store(vec![
        cfg("shared", SYS, json!({"labels": {"where": "system"}})),
        cfg("shared", "team-a", json!({"labels": {"where": "team"}})),
        cfg(
            well_known::TEMPLATE,
            "team-a",
            json!({"labels": {"tpl": "team"}}),
        ),
    ]);
    let r = resolve_ok(&svc(json!({"baseRefs": [{"name": "shared"}]})), &store);
    assert_eq!(r.object["spec"]["labels"]["where"], "team");
    assert_eq!(r.object["spec"]["labels"]["tpl"], "team");
    assert!(r.applied.iter().all(|a| a.namespace == "team-a"));
    // Another namespace sees the system ones.
    let mut other = svc(json!({"baseRefs": [{"name": "shared"}]}));
    other["metadata"]["namespace"] = json!("team-b");
    let r = resolve_ok(&other, &store);
    assert_eq!(r.object["spec"]["labels"]["where"], "system");
    assert!(r.applied.iter().all(|a| a.namespace == SYS));
}

#[test]
fn annotation_lists_applied_presets_in_order() {
    let store = marker_store(vec![cfg("mine", "team-a", json!({"replicas": 3}))]);
    let r = resolve_ok(
        &svc(json!({"baseRefs": [{"name": "mine"}], "tracing": {}})),
        &store,
    );
    let ann = r.object["metadata"]["annotations"][APPLIED_PRESETS_ANNOTATION]
        .as_str()
        .unwrap();
    let parsed = parse_applied_annotation(ann).unwrap();
    assert_eq!(parsed, r.applied);
    assert_eq!(
        parsed,
        vec![
            AppliedPreset {
                name: well_known::TRACING.into(),
                namespace: SYS.into(),
                resource_version: Some("1".into()),
                source: PresetSource::WellKnown,
            },
            AppliedPreset {
                name: well_known::TEMPLATE.into(),
                namespace: SYS.into(),
                resource_version: Some("1".into()),
                source: PresetSource::WellKnown,
            },
            AppliedPreset {
                name: "mine".into(),
                namespace: "team-a".into(),
                resource_version: Some("1".into()),
                source: PresetSource::BaseRef,
            },
        ]
    );
    assert!(ann.contains(r#""source":"Preset""#) && ann.contains(r#""source":"UserRef""#));
    // Embedded presets record a content hash that changes with the content.
    let a = PresetStore::from_objects(
        vec![json!({"metadata": {"name": well_known::TEMPLATE}, "spec": {"replicas": 1}})],
        SYS,
    )
    .unwrap();
    let b = PresetStore::from_objects(
        vec![json!({"metadata": {"name": well_known::TEMPLATE}, "spec": {"replicas": 2}})],
        SYS,
    )
    .unwrap();
    let va = resolve_ok(&svc(json!({})), &a).applied[0]
        .resource_version
        .clone()
        .unwrap();
    let vb = resolve_ok(&svc(json!({})), &b).applied[0]
        .resource_version
        .clone()
        .unwrap();
    assert!(va.starts_with("fnv1a64:") && vb.starts_with("fnv1a64:"));
    assert_ne!(va, vb);
}

#[test]
fn base_ref_without_parallelism_merges() {
    // kserve/kserve#4945: a chain where one config has no parallelism.
    let store = marker_store(vec![
        cfg(
            "with-par",
            SYS,
            json!({"parallelism": {"tensor": 2, "data": 4}, "worker": {"containers": [{"name": "main"}]}}),
        ),
        cfg("no-par", SYS, json!({"replicas": 2})),
        cfg(
            "par-tpl",
            SYS,
            json!({"template": {"containers": [{"name": "main", "args": ["--tp={{ .Spec.Parallelism.Tensor }}", "--dp={{ or .Spec.Parallelism.Data 1 }}"]}]}}),
        ),
    ]);
    for refs in [
        json!([{"name": "with-par"}, {"name": "no-par"}, {"name": "par-tpl"}]),
        json!([{"name": "no-par"}, {"name": "with-par"}, {"name": "par-tpl"}]),
    ] {
        let r = resolve_ok(&svc(json!({"baseRefs": refs})), &store);
        let spec = &r.object["spec"];
        assert_eq!(spec["parallelism"], json!({"tensor": 2, "data": 4}));
        assert_eq!(spec["replicas"], 2);
        assert_eq!(
            spec["template"]["containers"][0]["args"],
            json!(["--tp=2", "--dp=4"])
        );
        assert_eq!(applied_names(&r)[0], well_known::WORKER_DATA_PARALLEL);
    }
    let r = resolve_ok(
        &svc(json!({"baseRefs": [{"name": "no-par"}, {"name": "par-tpl"}]})),
        &store,
    );
    assert_eq!(
        r.object["spec"]["template"]["containers"][0]["args"],
        json!(["--tp=", "--dp=1"])
    );
}

#[test]
fn empty_scheduler_in_base_ref_keeps_well_known_scheduler() {
    // opendatahub-io/kserve#772
    let store = marker_store(vec![
        cfg(
            well_known::SCHEDULER,
            "team-a",
            json!({"router": {"scheduler": {"template": {"containers": [{"name": "main", "image": "epp:1"}]}}}}),
        ),
        cfg("empty-sched", SYS, json!({"router": {"scheduler": {}}})),
    ]);
    let r = resolve_ok(&svc(json!({"baseRefs": [{"name": "empty-sched"}]})), &store);
    assert_eq!(
        applied_names(&r),
        [well_known::SCHEDULER, well_known::TEMPLATE, "empty-sched"]
    );
    assert_eq!(
        r.object["spec"]["router"]["scheduler"]["template"]["containers"][0]["image"],
        "epp:1"
    );
}

#[test]
fn templates_see_the_object() {
    let store = PresetStore::from_objects(
        vec![cfg(
            well_known::TEMPLATE,
            SYS,
            json!({"template": {"containers": [{"name": "main", "env": [
                {"name": "MODEL", "value": "{{ .Spec.Model.Name }}"},
                {"name": "WHERE", "value": "{{ .ObjectMeta.Namespace }}/{{ .ObjectMeta.Name }}"},
                {"name": "EP", "value": "{{- if .Spec.Parallelism.Expert }}ep{{- else }}no-ep{{- end }}"},
                {"name": "TLS", "value": "{{ if .GlobalConfig.EnableTLS }}HTTPS{{ else }}HTTP{{ end }}"},
            ]}]}}),
        )],
        SYS,
    )
    .unwrap();
    let r = resolve_ok(&svc(json!({"parallelism": {"expert": true}})), &store);
    let env = &r.object["spec"]["template"]["containers"][0]["env"];
    // model name defaults to metadata.name for the templates only
    assert_eq!(env[0]["value"], "llama");
    assert!(r.object["spec"].get("model").is_none());
    assert_eq!(env[1]["value"], "team-a/llama");
    assert_eq!(env[2]["value"], "ep");
    assert_eq!(env[3]["value"], "HTTP");
    let tls = store.with_globals(llmisvc::presets::TemplateGlobals {
        enable_tls: true,
        ..Default::default()
    });
    let r = resolve_ok(
        &svc(json!({"model": {"uri": "hf://x", "name": "served"}})),
        &tls,
    );
    let env = &r.object["spec"]["template"]["containers"][0]["env"];
    assert_eq!(env[0]["value"], "served");
    assert_eq!(env[2]["value"], "no-ep");
    assert_eq!(env[3]["value"], "HTTPS");
}

#[test]
fn load_errors() {
    let bad_field = PresetStore::from_objects(
        vec![cfg(
            "x",
            SYS,
            json!({"labels": {"a": "{{ .Spec.Modell.Name }}"}}),
        )],
        SYS,
    )
    .unwrap_err();
    assert!(
        matches!(&bad_field, PresetError::Template { preset, .. } if preset == "llmisvc-system/x"),
        "{bad_field}"
    );
    assert!(
        bad_field.to_string().contains("spec.labels.a"),
        "{bad_field}"
    );
    let bad_func = PresetStore::from_objects(
        vec![cfg("x", SYS, json!({"labels": {"a": "{{ nope 1 }}"}}))],
        SYS,
    )
    .unwrap_err();
    assert!(bad_func.to_string().contains("not defined"), "{bad_func}");
    let unterminated = PresetStore::from_objects(
        vec![cfg(
            "x",
            SYS,
            json!({"labels": {"a": "{{ .ObjectMeta.Name"}}),
        )],
        SYS,
    )
    .unwrap_err();
    assert!(
        unterminated.to_string().contains("unclosed action"),
        "{unterminated}"
    );
    let wrong_kind =
        PresetStore::from_objects(vec![json!({"kind": "Pod", "metadata": {"name": "x"}})], SYS)
            .unwrap_err();
    assert!(matches!(wrong_kind, PresetError::Parse { .. }));
    let dup = PresetStore::from_objects(
        vec![cfg("x", SYS, json!({})), cfg("x", SYS, json!({}))],
        SYS,
    )
    .unwrap_err();
    assert!(matches!(dup, PresetError::Duplicate { .. }));
    let bad_yaml = PresetStore::from_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/presets/bad"),
        SYS,
    )
    .unwrap_err();
    assert!(matches!(bad_yaml, PresetError::Parse { .. }), "{bad_yaml}");
}

#[test]
fn multi_document_files_load() {
    let store = PresetStore::from_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/presets/good"),
        SYS,
    )
    .unwrap();
    assert_eq!(store.len(), 3);
    assert!(
        store
            .get("team-a", "team-preset")
            .is_some_and(|p| p.namespace == "team-a")
    );
    assert!(store.get("zzz", "kserve-style").is_some());
    let r = resolve_ok(
        &svc(json!({"baseRefs": [{"name": "kserve-style"}], "parallelism": {"tensor": 4}})),
        &store,
    );
    let cmd = r.object["spec"]["template"]["containers"][0]["command"][2]
        .as_str()
        .unwrap();
    assert!(cmd.contains("--tensor-parallel-size 4"), "{cmd}");
    assert!(cmd.contains("--served-model-name \"llama\""), "{cmd}");
}

#[test]
fn bad_objects_are_errors_not_panics() {
    let store = marker_store(vec![]);
    for obj in [
        json!(null),
        json!("x"),
        json!({"metadata": "x"}),
        json!({"metadata": {"namespace": 3}}),
        json!({"spec": []}),
        json!({"spec": {"baseRefs": "a"}}),
        json!({"spec": {"baseRefs": [{"name": 1}]}}),
        json!({"metadata": {"annotations": []}, "spec": {}}),
    ] {
        let err = resolve(&obj, &store, &ResolveOptions::default()).unwrap_err();
        // A wrongly typed field is named (`PresetError::Field`, a cause at admission).
        assert!(
            matches!(err, PresetError::Invalid(_) | PresetError::Field { .. }),
            "{obj}: {err}"
        );
    }
    // Odd but well-typed specs resolve.
    for spec in [
        json!({"router": null, "prefill": null}),
        json!({"router": "x"}),
        json!({"parallelism": {"data": "many"}, "worker": {}}),
        json!({"template": {"containers": "x"}}),
    ] {
        resolve_ok(&svc(spec), &store);
    }
}

#[test]
fn unknown_fields_are_kept() {
    let store = marker_store(vec![]);
    let mut obj = svc(json!({"futureField": {"a": 1}}));
    obj["status"] = json!({"anything": true});
    obj["extraTop"] = json!(1);
    let r = resolve_ok(&obj, &store);
    assert_eq!(r.object["spec"]["futureField"], json!({"a": 1}));
    assert_eq!(r.object["status"], json!({"anything": true}));
    assert_eq!(r.object["extraTop"], 1);
}

#[test]
fn merge_user_wins_and_is_idempotent() {
    let base = json!({
        "replicas": 1,
        "labels": {"a": "preset", "b": "preset"},
        "template": {
            "containers": [{"name": "main", "image": "p", "env": [{"name": "E", "value": "p"}], "ports": [{"containerPort": 8000, "name": "http"}]}],
            "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
            "tolerations": [{"key": "a"}],
        },
        "router": {"scheduler": {"template": {"containers": [{"name": "main"}]}}},
    });
    let user = json!({
        "replicas": 3,
        "labels": {"a": "user"},
        "template": {
            "containers": [{"name": "main", "image": "u", "env": [{"name": "E", "value": "u"}], "ports": [{"containerPort": 8000, "protocol": "TCP"}]}, {"name": "side"}],
            "volumes": [{"name": "cache", "emptyDir": {}}],
            "tolerations": [{"key": "b"}],
        },
        "router": {"scheduler": {}},
    });
    let m = merge(&base, &user);
    assert_eq!(m["replicas"], 3);
    assert_eq!(m["labels"], json!({"a": "user", "b": "preset"}));
    let c = &m["template"]["containers"];
    assert_eq!(c[0]["image"], "u");
    assert_eq!(c[0]["env"], json!([{"name": "E", "value": "u"}]));
    assert_eq!(
        c[0]["ports"],
        json!([{"containerPort": 8000, "name": "http", "protocol": "TCP"}])
    );
    assert_eq!(c[1]["name"], "side");
    assert_eq!(m["template"]["volumes"].as_array().unwrap().len(), 2);
    assert_eq!(m["template"]["tolerations"], json!([{"key": "b"}]));
    assert_eq!(m["router"], base["router"]);
    assert_eq!(merge(&m, &user), m);
}

/// KServe's own presets (config/llmisvcconfig/*.yaml) load and render when pointed at with
/// LLMISVC_KSERVE_PRESETS_DIR (they are not vendored here).
#[test]
fn kserve_presets_load_when_available() {
    let Ok(dir) = std::env::var("LLMISVC_KSERVE_PRESETS_DIR") else {
        return;
    };
    let store = PresetStore::from_dir(std::path::Path::new(&dir), "kserve").unwrap();
    assert!(store.len() >= 10, "{store:?}");
    let obj = svc(json!({
        "model": {"uri": "hf://m"},
        "router": {"scheduler": {}, "route": {}},
        "prefill": {"worker": {}, "parallelism": {"data": 2}},
        "worker": {}, "parallelism": {"data": 2, "tensor": 2},
        "tracing": {},
    }));
    let r = resolve_ok(&obj, &store);
    assert!(!r.object.to_string().contains("{{"));
    assert!(r.applied.len() >= 5, "{:?}", r.applied);
}

#[test]
fn template_engine_is_public() {
    let t = template::compile("{{ or .Spec.Parallelism.Data 1 }}").unwrap();
    assert_eq!(t.render(&json!({"spec": {}})).unwrap(), "1");
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    fn maybe(v: Value) -> impl Strategy<Value = Option<Value>> {
        prop_oneof![Just(None), Just(Some(v))]
    }

    fn spec() -> impl Strategy<Value = Value> {
        (
            maybe(json!({})),
            maybe(json!({"worker": {"containers": [{"name": "main", "image": "w"}]}})),
            prop_oneof![Just(None), (0i64..3, 0i64..3, 0i64..3).prop_map(|(d, p, t)| Some(json!({"data": d, "pipeline": p, "tensor": t})))],
            maybe(json!({"scheduler": {}})),
            maybe(json!({"route": {}})),
            maybe(json!({})),
            maybe(json!({"containers": [{"name": "side"}, {"name": "main", "env": [{"name": "HF_HOME", "value": "/x"}]}]})),
            maybe(json!([{"name": "ref-a"}, {"name": "ref-b"}])),
        )
            .prop_map(|(prefill, worker, par, sched, route, tracing, template, refs)| {
                let mut s = json!({"model": {"uri": "hf://m"}});
                if prefill.is_some() {
                    s["prefill"] = json!({"parallelism": par.clone().unwrap_or(json!({}))});
                    if let Some(w) = &worker {
                        s["prefill"]["worker"] = w["worker"].clone();
                    }
                }
                if let Some(w) = worker {
                    s["worker"] = w["worker"].clone();
                }
                if let Some(p) = par {
                    s["parallelism"] = p;
                }
                let mut router = json!({});
                if sched.is_some() {
                    router["scheduler"] = json!({});
                }
                if route.is_some() {
                    router["route"] = json!({});
                }
                if router != json!({}) {
                    s["router"] = router;
                }
                if tracing.is_some() {
                    s["tracing"] = json!({"sampler": "always_on"});
                }
                if let Some(t) = template {
                    s["template"] = t;
                }
                if let Some(r) = refs {
                    s["baseRefs"] = r;
                }
                s
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn resolve_is_idempotent_and_user_wins(spec in spec()) {
            let embedded = PresetStore::embedded(SYS).unwrap();
            let mut objs = vec![
                cfg("ref-a", SYS, json!({"parallelism": {"tensor": 8}, "labels": {"ref": "a"}})),
                cfg("ref-b", SYS, json!({"router": {"scheduler": {}}, "labels": {"ref": "b"}})),
            ];
            for p in embedded.iter() {
                objs.push(cfg(&p.name, SYS, p.spec.clone()));
            }
            let store = PresetStore::from_objects(objs, SYS).unwrap();
            let obj = svc(spec.clone());
            let r = resolve(&obj, &store, &ResolveOptions::default()).unwrap();
            let again = resolve(&r.object, &store, &ResolveOptions::default()).unwrap();
            prop_assert_eq!(&again.object, &r.object);
            if let Some(p) = spec.get("parallelism") {
                prop_assert_eq!(&r.object["spec"]["parallelism"]["tensor"], &p["tensor"]);
            }
            if spec.get("template").is_some() {
                let want = json!({"name": "HF_HOME", "value": "/x"});
                let containers = r.object["spec"]["template"]["containers"].as_array().unwrap();
                let main = containers.iter().find(|c| c["name"] == "main").unwrap();
                let found = main["env"].as_array().unwrap().iter().any(|e| e == &want);
                prop_assert!(found);
            }
            prop_assert!(!r.object.to_string().contains("{{"));
        }
    }
}

#[test]
fn store_is_send_sync_and_presets_check_alone() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<PresetStore>();
    let p = llmisvc::presets::Preset::from_object(
        &cfg(
            "x",
            "team-a",
            json!({"labels": {"a": "{{ .ObjectMeta.Name }}"}}),
        ),
        SYS,
    )
    .unwrap();
    assert_eq!(
        (p.namespace.as_str(), p.resource_version.as_deref()),
        ("team-a", Some("1"))
    );
    assert!(
        llmisvc::presets::Preset::from_object(
            &cfg("x", SYS, json!({"labels": {"a": "{{ .Nope }}"}})),
            SYS
        )
        .is_err()
    );
}
