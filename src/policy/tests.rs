use serde_json::{Value, json};

use super::*;

fn svc() -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2",
        "kind": "LLMInferenceService",
        "metadata": {"name": "llama", "namespace": "team-a", "labels": {"team": "a"}},
        "spec": {
            "model": {"uri": "hf://meta-llama/Llama-3.1-8B"},
            "replicas": 2,
            "parallelism": {"tensor": 4},
            "template": {"containers": [{"name": "main", "image": "quay.io/ml-platform/vllm:1",
                "resources": {"limits": {"nvidia.com/gpu": 4}}}]},
        }
    })
}

fn patched(patch: Value) -> Value {
    let mut o = svc();
    merge(&mut o, &patch);
    o
}

fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    b.remove(k);
                } else {
                    merge(b.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (b, p) => *b = p.clone(),
    }
}

fn set(yaml: &str) -> PolicySet {
    PolicySet::from_yaml_str(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn errors(p: &PolicySet, obj: &Value) -> Vec<String> {
    p.evaluate(None, obj, None)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[track_caller]
fn denies(p: &PolicySet, obj: &Value, want: &str) {
    let e = errors(p, obj);
    assert!(
        e.iter().any(|x| x.contains(want)),
        "expected {want:?} in {e:#?}"
    );
}

#[track_caller]
fn allows(p: &PolicySet, obj: &Value) {
    let o = p.evaluate(None, obj, None);
    assert!(
        o.errors.is_empty() && o.warnings.is_empty(),
        "expected no findings, got {o:#?}"
    );
}

#[test]
fn shipped_policies_load() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");
    let p = PolicySet::load_dir(dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.len(), 4);
    let names = p.rule_names();
    assert!(
        names.contains(&("registries".into(), "approved-registries".into())),
        "{names:?}"
    );
    assert!(names.contains(&("cel-example".into(), "bounded-replicas".into())));
    // The shipped set admits a well-behaved service.
    let o = p.evaluate(None, &svc(), None);
    assert!(o.errors.is_empty(), "{o:#?}");
}

#[test]
fn max_gpus() {
    let p = set(
        "name: gpu\nrules:\n- name: pod\n  action: deny\n  maxGpus: {perPod: 2}\n- name: svc\n  action: deny\n  maxGpus: {perService: 8}\n",
    );
    let e = errors(&p, &svc());
    assert_eq!(
        e,
        vec![
            "spec.template.containers[0].resources.limits[nvidia.com/gpu]: Forbidden: policy \"gpu\" rule \"pod\": a pod may request at most 2 GPUs, this one requests 4".to_string()
        ]
    );
    // Per service: 3 replicas x 4 GPUs = 12 > 8.
    denies(
        &p,
        &patched(json!({"spec": {"replicas": 3}})),
        "policy \"gpu\" rule \"svc\": the service may use up to 12 GPUs",
    );
    // Multi-node: 1 replica x (leader 1 + 3 workers x 1) x ... with data 4, dataLocal 1.
    let mn = patched(
        json!({"spec": {"replicas": 3, "parallelism": {"tensor": 1, "data": 4, "dataLocal": 1},
        "template": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 1}}}]},
        "worker": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 1}}}]}}}),
    );
    denies(
        &p,
        &mn,
        "up to 12 GPUs (spec: 3 replicas x 4 GPUs per replica)",
    );
    // Scaling counts maxReplicas.
    let sc = patched(
        json!({"spec": {"replicas": null, "scaling": {"maxReplicas": 5, "wva": {"hpa": {}}},
        "template": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 2}}}]}}}),
    );
    denies(&p, &sc, "up to 10 GPUs");
    let small = patched(
        json!({"spec": {"replicas": 4, "template": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": 2}}}]}}}),
    );
    allows(&p, &small);
    let e = PolicySet::from_yaml_str("rules: [{name: x, action: deny, maxGpus: {}}]")
        .expect_err("empty maxGpus");
    assert!(
        e.to_string()
            .contains("maxGpus needs perPod and/or perService"),
        "{e}"
    );
}

#[test]
fn model_sources() {
    let p = set(
        "name: models\nrules:\n- name: src\n  action: deny\n  modelSources: {schemes: [hf, pvc], huggingFaceOrgs: [meta-llama], pvcNames: [models]}\n",
    );
    allows(&p, &svc());
    allows(
        &p,
        &patched(json!({"spec": {"model": {"uri": "pvc://models/llama"}}})),
    );
    denies(
        &p,
        &patched(json!({"spec": {"model": {"uri": "s3://b/m"}}})),
        "spec.model.uri: Forbidden: policy \"models\" rule \"src\": model URI \"s3://b/m\" uses scheme \"s3\", which is not allowed (allowed: hf, pvc)",
    );
    denies(
        &p,
        &patched(json!({"spec": {"model": {"uri": "hf://evil/model"}}})),
        "Hugging Face organisation \"evil\" is not allowed (allowed: meta-llama)",
    );
    // An id without organisation is not the organisation of the same name.
    denies(
        &p,
        &patched(json!({"spec": {"model": {"uri": "hf://meta-llama"}}})),
        "Hugging Face model \"hf://meta-llama\" has no organisation, so it is not from an allowed one (allowed: meta-llama)",
    );
    denies(
        &p,
        &patched(json!({"spec": {"model": {"uri": "pvc://other/x"}}})),
        "PVC \"other\" is not allowed",
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"model": {"lora": {"adapters": [{"name": "a", "uri": "hf://evil/lora"}]}}}}),
        ),
        "spec.model.lora.adapters[0].uri: Forbidden",
    );
}

#[test]
fn image_registries() {
    let p = set(
        "name: registries\nrules:\n- name: approved-registries\n  action: deny\n  message: mirror it\n  imageRegistries: {allowed: [quay.io/ml-platform, docker.io/vllm]}\n",
    );
    allows(&p, &svc());
    allows(
        &p,
        &patched(
            json!({"spec": {"template": {"containers": [{"name": "main", "image": "vllm/vllm-openai:v0.10"}]}}}),
        ),
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"template": {"containers": [{"name": "main", "image": "docker.io/x"}]}}}),
        ),
        "spec.template.containers[0].image: Forbidden: policy \"registries\" rule \"approved-registries\": image \"docker.io/x\" is not from an allowed registry (allowed: quay.io/ml-platform, docker.io/vllm); mirror it",
    );
    // Prefix must end at a path boundary.
    denies(
        &p,
        &patched(
            json!({"spec": {"template": {"containers": [{"name": "main", "image": "quay.io/ml-platform-evil/x"}]}}}),
        ),
        "quay.io/ml-platform-evil/x",
    );
    // Init containers and every template.
    denies(
        &p,
        &patched(
            json!({"spec": {"template": {"initContainers": [{"name": "i", "image": "busybox"}]}}}),
        ),
        "spec.template.initContainers[0].image",
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"router": {"scheduler": {"template": {"containers": [{"name": "epp", "image": "ghcr.io/x/epp"}]}}}}}),
        ),
        "spec.router.scheduler.template.containers[0].image",
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"prefill": {"worker": {"containers": [{"name": "main", "image": "ghcr.io/x"}]}}}}),
        ),
        "spec.prefill.worker.containers[0].image",
    );
}

#[test]
fn required_labels() {
    let p = set(
        "name: labels\nrules:\n- name: owner\n  action: deny\n  requiredLabels: {labels: {team: [], env: [prod, dev]}}\n",
    );
    allows(
        &p,
        &patched(json!({"metadata": {"labels": {"env": "dev"}}})),
    );
    denies(
        &p,
        &svc(),
        "metadata.labels[env]: Required value: policy \"labels\" rule \"owner\": label \"env\" is required",
    );
    denies(
        &p,
        &patched(json!({"metadata": {"labels": {"env": "qa"}}})),
        "label \"env\" is \"qa\", not one of the allowed values (prod, dev)",
    );
}

#[test]
fn forbidden_pod_settings() {
    let p = set(
        "name: pods\nrules:\n- name: host\n  action: deny\n  forbiddenPodSettings: {privileged: true, hostNetwork: true, hostPath: true}\n",
    );
    allows(&p, &svc());
    denies(
        &p,
        &patched(json!({"spec": {"worker": {"hostNetwork": true}}})),
        "spec.worker.hostNetwork: Forbidden",
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"template": {"volumes": [{"name": "h", "hostPath": {"path": "/"}}]}}}),
        ),
        "spec.template.volumes[0].hostPath: Forbidden: policy \"pods\" rule \"host\": hostPath volumes are not allowed",
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"template": {"initContainers": [{"name": "i", "securityContext": {"privileged": true}}]}}}),
        ),
        "spec.template.initContainers[0].securityContext.privileged",
    );
    // hostPID not forbidden by this rule.
    allows(
        &p,
        &patched(json!({"spec": {"template": {"hostPID": true}}})),
    );
}

#[test]
fn gpu_resources() {
    let p = set(
        "name: hw\nrules:\n- name: nvidia\n  action: deny\n  gpuResources:\n    allowed: [nvidia.com/gpu]\n    nodeSelectors: {gpu-type: [h100]}\n",
    );
    allows(&p, &svc());
    allows(
        &p,
        &patched(
            json!({"spec": {"template": {"nodeSelector": {"gpu-type": "h100", "zone": "a"}}}}),
        ),
    );
    denies(
        &p,
        &patched(
            json!({"spec": {"template": {"containers": [{"name": "main", "resources": {"limits": {"amd.com/gpu": 4}}}]}}}),
        ),
        "spec.template.containers[0].resources.limits[amd.com/gpu]: Forbidden: policy \"hw\" rule \"nvidia\": GPU resource \"amd.com/gpu\" is not allowed",
    );
    denies(
        &p,
        &patched(json!({"spec": {"template": {"nodeSelector": {"gpu-type": "a10"}}}})),
        "spec.template.nodeSelector[gpu-type]: Forbidden",
    );
}

#[test]
fn cel_rules() {
    let p = set(
        "name: cel\nrules:\n- name: replicas\n  action: deny\n  message: use scaling\n  cel: {fieldPath: spec.replicas, expression: 'object.spec.replicas <= 2'}\n- name: model-stable\n  action: deny\n  cel: {fieldPath: spec.model.uri, expression: 'oldObject == null || oldObject.spec.model.uri == object.spec.model.uri'}\n- name: containers\n  action: deny\n  cel: {expression: 'object.spec.template.containers.all(c, c.name != \"bad\")'}\n",
    );
    allows(&p, &svc());
    denies(
        &p,
        &patched(json!({"spec": {"replicas": 3}})),
        "spec.replicas: Forbidden: policy \"cel\" rule \"replicas\": expression \"object.spec.replicas <= 2\" is false; use scaling",
    );
    denies(
        &p,
        &patched(json!({"spec": {"template": {"containers": [{"name": "bad"}]}}})),
        "rule \"containers\"",
    );
    // oldObject.
    let old = patched(json!({"spec": {"model": {"uri": "hf://meta-llama/other"}}}));
    let o = p.evaluate(Some(&old), &svc(), None);
    assert!(
        o.errors
            .iter()
            .any(|e| e.field == "spec.model.uri" && e.detail.contains("model-stable")),
        "{o:#?}"
    );
    assert!(p.evaluate(Some(&svc()), &svc(), None).errors.is_empty());
    // An evaluation error (missing field) fails closed.
    denies(&p, &patched(json!({"spec": {"replicas": null}})), "failed");
}

#[test]
fn warn_produces_a_warning() {
    let p = set(
        "name: soft\nrules:\n- name: owner\n  action: warn\n  message: please label\n  requiredLabels: {labels: {cost-center: []}}\n",
    );
    let o = p.evaluate(None, &svc(), None);
    assert!(o.errors.is_empty());
    assert_eq!(o.warnings, vec!["metadata.labels[cost-center]: policy \"soft\" rule \"owner\": label \"cost-center\" is required; please label".to_string()]);
}

#[test]
fn scope() {
    let p = set(
        "name: s\nrules:\n- name: r\n  action: deny\n  scope:\n    namespaces: [team-a, team-b]\n    objectSelector: {matchLabels: {team: a}}\n  requiredLabels: {labels: {x: []}}\n",
    );
    denies(&p, &svc(), "rule \"r\"");
    allows(&p, &patched(json!({"metadata": {"namespace": "team-c"}})));
    allows(&p, &patched(json!({"metadata": {"labels": {"team": "b"}}})));
    // Config presets are out of scope by default.
    allows(&p, &patched(json!({"kind": "LLMInferenceServiceConfig"})));

    let ns = set(
        "name: s\nrules:\n- name: r\n  action: deny\n  scope:\n    namespaceSelector: {matchExpressions: [{key: tier, operator: In, values: [prod]}]}\n  requiredLabels: {labels: {x: []}}\n",
    );
    // Unknown namespace labels (only kubernetes.io/metadata.name is known): the rule cannot
    // tell whether the namespace is selected and fails closed, saying so.
    denies(
        &ns,
        &svc(),
        "(applied because its scope.namespaceSelector reads namespace labels [\"tier\"] and the labels of namespace \"team-a\" are not known: this check runs without a cluster",
    );
    let labels: BTreeMap<String, String> = [("tier".to_string(), "prod".to_string())].into();
    let known = ns.evaluate(None, &svc(), Some(&labels));
    assert_eq!(known.errors.len(), 1);
    assert!(!known.errors[0].detail.contains("fails closed"));
    let other: BTreeMap<String, String> = [("tier".to_string(), "dev".to_string())].into();
    assert!(ns.evaluate(None, &svc(), Some(&other)).errors.is_empty());
    // A name condition that does not hold decides without the unknown labels.
    let named = set(
        "name: s\nrules:\n- name: r\n  action: deny\n  scope:\n    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: elsewhere, tier: prod}}\n  requiredLabels: {labels: {x: []}}\n",
    );
    allows(&named, &svc());
    let by_name = set(
        "name: s\nrules:\n- name: r\n  action: deny\n  scope:\n    kinds: [LLMInferenceService, LLMInferenceServiceConfig]\n    namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}\n  requiredLabels: {labels: {x: []}}\n",
    );
    denies(&by_name, &svc(), "rule \"r\"");
    denies(
        &by_name,
        &patched(json!({"kind": "LLMInferenceServiceConfig"})),
        "rule \"r\"",
    );
}

/// `scope.namespaceSelector` with namespace labels from a lookup (the server's namespace
/// cache): the table is (lookup answer, whether the rule applies, what the finding says).
#[test]
fn namespace_selector_uses_the_labels_the_lookup_gives() {
    use std::cell::Cell;
    let prod = set(
        "name: p\nrules:\n- name: r\n  action: deny\n  scope:\n    namespaceSelector: {matchLabels: {tier: prod}}\n  requiredLabels: {labels: {x: []}}\n",
    );
    let not_dev = set(
        "name: p\nrules:\n- name: r\n  action: deny\n  scope:\n    namespaceSelector: {matchExpressions: [{key: tier, operator: NotIn, values: [dev]}, {key: sandbox, operator: DoesNotExist}]}\n  requiredLabels: {labels: {x: []}}\n",
    );
    let known = |pairs: &[(&str, &str)]| {
        let mut m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        m.insert("kubernetes.io/metadata.name".into(), "team-a".into());
        NamespaceLabels::Known(m)
    };
    let unknown =
        NamespaceLabels::Unknown("namespace \"team-a\" could not be read: forbidden".into());
    // (policy, labels, denied, the finding says it failed closed)
    let cases: Vec<(&PolicySet, NamespaceLabels, bool, bool)> = vec![
        (&prod, known(&[("tier", "prod")]), true, false),
        (&prod, known(&[("tier", "dev")]), false, false),
        (&prod, known(&[]), false, false),
        (&prod, unknown.clone(), true, true),
        (&not_dev, known(&[]), true, false),
        (&not_dev, known(&[("tier", "prod")]), true, false),
        (&not_dev, known(&[("tier", "dev")]), false, false),
        (&not_dev, known(&[("sandbox", "")]), false, false),
        (&not_dev, unknown.clone(), true, true),
    ];
    for (i, (p, labels, denied, closed)) in cases.into_iter().enumerate() {
        let asked = Cell::new(Vec::<String>::new());
        let lookup = |ns: &str| {
            let mut a = asked.take();
            a.push(ns.to_string());
            asked.set(a);
            labels.clone()
        };
        let o = p.evaluate_in(None, &svc(), &lookup);
        assert_eq!(asked.take(), vec!["team-a".to_string()], "case {i}");
        assert_eq!(!o.errors.is_empty(), denied, "case {i}: {o:#?}");
        if denied {
            let d = &o.errors[0].detail;
            assert_eq!(d.contains("the rule fails closed"), closed, "case {i}: {d}");
            if closed {
                assert!(
                    d.contains("namespace \"team-a\" could not be read: forbidden")
                        && d.contains(
                            "with scope.namespaces or the kubernetes.io/metadata.name label"
                        ),
                    "case {i}: {d}"
                );
            }
        }
    }
}

#[test]
fn namespace_lookup_is_asked_once_and_only_when_a_rule_needs_it() {
    use std::cell::Cell;
    let calls = Cell::new(0);
    let lookup = |_: &str| {
        calls.set(calls.get() + 1);
        NamespaceLabels::Known([("tier".to_string(), "prod".to_string())].into())
    };
    // Two rules reading labels: one lookup.
    let two = set(
        "name: p\nrules:\n- name: a\n  action: deny\n  scope: {namespaceSelector: {matchLabels: {tier: prod}}}\n  requiredLabels: {labels: {x: []}}\n- name: b\n  action: warn\n  scope: {namespaceSelector: {matchExpressions: [{key: tier, operator: Exists}]}}\n  requiredLabels: {labels: {y: []}}\n",
    );
    let o = two.evaluate_in(None, &svc(), &lookup);
    assert_eq!((calls.get(), o.errors.len(), o.warnings.len()), (1, 1, 1));
    assert!(two.needs_namespace_labels());
    // No rule reads namespace labels (by name only, or no selector): never asked.
    calls.set(0);
    let by_name = set(
        "name: p\nrules:\n- name: a\n  action: deny\n  scope: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: team-a}}}\n  requiredLabels: {labels: {x: []}}\n- name: b\n  action: deny\n  requiredLabels: {labels: {y: []}}\n",
    );
    assert_eq!(by_name.evaluate_in(None, &svc(), &lookup).errors.len(), 2);
    assert_eq!(calls.get(), 0);
    assert!(!by_name.needs_namespace_labels());
    // Other parts of the scope exclude the object first: not asked either.
    for scope in [
        "{namespaces: [elsewhere], namespaceSelector: {matchLabels: {tier: prod}}}",
        "{kinds: [LLMInferenceServiceConfig], namespaceSelector: {matchLabels: {tier: prod}}}",
        "{objectSelector: {matchLabels: {team: b}}, namespaceSelector: {matchLabels: {tier: prod}}}",
        "{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: elsewhere, tier: prod}}}",
    ] {
        let p = set(&format!(
            "name: p\nrules:\n- name: a\n  action: deny\n  scope: {scope}\n  requiredLabels: {{labels: {{x: []}}}}\n"
        ));
        assert!(
            p.evaluate_in(None, &svc(), &lookup).errors.is_empty(),
            "{scope}"
        );
        assert_eq!(calls.get(), 0, "{scope}");
    }
    // An object without a namespace: the labels are unknown without asking; fails closed.
    let o = two.evaluate_in(
        None,
        &patched(json!({"metadata": {"namespace": null}})),
        &lookup,
    );
    assert_eq!(calls.get(), 0);
    assert!(
        o.errors[0].detail.contains("the object names no namespace"),
        "{o:#?}"
    );
}

#[test]
fn load_errors_name_file_and_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("a-good.yaml");
    std::fs::write(
        &good,
        "rules:\n- name: ok\n  action: warn\n  requiredLabels: {labels: {a: []}}\n",
    )
    .expect("write");
    let cases = [
        ("rules: [unclosed", "invalid YAML"),
        (
            "rules:\n- name: r1\n  action: deny\n  gpuQuota: {max: 1}\n",
            "rule \"r1\": unknown rule kind \"gpuQuota\"",
        ),
        (
            "rules:\n- name: r2\n  action: deny\n  cel: {expression: 'object.spec.('}\n",
            "rule \"r2\": CEL expression does not compile",
        ),
        (
            "rules:\n- name: r3\n  action: block\n  cel: {expression: 'true'}\n",
            "rule \"r3\": action must be deny or warn",
        ),
        (
            "rules:\n- name: r4\n  action: deny\n",
            "rule \"r4\": the rule needs one rule kind",
        ),
        (
            "rules:\n- name: r5\n  action: deny\n  imageRegistries: {allowed: [x], extra: 1}\n",
            "rule \"r5\": invalid imageRegistries",
        ),
        (
            "rules:\n- name: r6\n  action: deny\n  scope: {namespaceSelector: {matchExpressions: [{key: a, operator: Is}]}}\n  cel: {expression: 'true'}\n",
            "rule \"r6\": scope.namespaceSelector",
        ),
        (
            "rules:\n- action: deny\n  cel: {expression: 'true'}\n",
            "rules[0]: every rule needs a non-empty string name",
        ),
        ("nme: x\n", "invalid policy"),
    ];
    for (text, want) in cases {
        let bad = dir.path().join("b-bad.yaml");
        std::fs::write(&bad, text).expect("write");
        let e = PolicySet::load_dir(dir.path()).expect_err(text).to_string();
        assert!(e.starts_with(&bad.display().to_string()), "{e}");
        assert!(e.contains(want), "{e} should contain {want}");
    }
    std::fs::remove_file(dir.path().join("b-bad.yaml")).expect("rm");
    assert_eq!(PolicySet::load_dir(dir.path()).expect("load").len(), 1);
    assert!(PolicySet::load_dir(dir.path().join("missing")).is_err());
}

#[test]
fn policy_set_is_shareable() {
    fn is<T: Send + Sync + Clone + 'static>() {}
    is::<PolicySet>();
}
