//! Issue 18, "every spec field has a consumer": every leaf field path of the generated
//! LLMInferenceService schema (`src/api/crd.rs`, storage version v1alpha2; opaque embedded
//! objects such as pod templates count as one leaf) is set in a base service that otherwise
//! uses it, then changed to another valid value. The change must show in what the reconciler
//! would apply (`Engine::children`, the same builder as `render --objects`, after mutation and
//! validation), or admission must warn about the field by its path (unsupported, with KServe's
//! meaning). A field that changes nothing is accepted silently: the test fails and names it.
//!
//! Only [`METADATA_ONLY`] is exempt, each entry with the reason nothing downstream may read it.
//! The control case (an unknown field `spec.x`) shows the comparison can see "no change".

use llmisvc::api::Kind;
use llmisvc::api::crd::{CrdOptions, crd_json};
use llmisvc::pipeline::{Engine, Refused};
use llmisvc::reconcile::build::{BuildOptions, WvaPrometheus};
use serde_json::{Value, json};

/// Fields refused at admission whatever their value (a field error naming them), with why.
const REFUSED: &[(&str, &str)] = &[
    (
        "spec.scaling.keda.advanced.horizontalPodAutoscalerConfig.name",
        "KServe's webhook forbids it: the HPA KEDA creates is named by the reconciler",
    ),
    (
        "spec.prefill.scaling.keda.advanced.horizontalPodAutoscalerConfig.name",
        "as spec.scaling.keda...",
    ),
    (
        "spec.scaling.wva.keda.advanced.horizontalPodAutoscalerConfig.name",
        "as spec.scaling.keda...",
    ),
    (
        "spec.prefill.scaling.wva.keda.advanced.horizontalPodAutoscalerConfig.name",
        "as spec.scaling.keda...",
    ),
    (
        "spec.scaling.wva.keda.advanced.scalingModifiers.formula",
        "KServe's webhook forbids scalingModifiers with WVA: WVA owns the scaling metric",
    ),
    (
        "spec.scaling.wva.keda.advanced.scalingModifiers.target",
        "as above",
    ),
    (
        "spec.scaling.wva.keda.advanced.scalingModifiers.activationTarget",
        "as above",
    ),
    (
        "spec.scaling.wva.keda.advanced.scalingModifiers.metricType",
        "as above",
    ),
    (
        "spec.prefill.scaling.wva.keda.advanced.scalingModifiers.formula",
        "as above",
    ),
    (
        "spec.prefill.scaling.wva.keda.advanced.scalingModifiers.target",
        "as above",
    ),
    (
        "spec.prefill.scaling.wva.keda.advanced.scalingModifiers.activationTarget",
        "as above",
    ),
    (
        "spec.prefill.scaling.wva.keda.advanced.scalingModifiers.metricType",
        "as above",
    ),
];

/// Fields this version accepts silently: each a gap of issue 18 still open (implement it or
/// warn at admission with KServe's meaning, then remove it here). The test fails when a field
/// listed here gets a consumer, so the list cannot go stale.
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Fields whose consumer is the service's status, not a child: each is changed on its base
/// service and the status the reconciler computes (`reconcile::status::status`, from the
/// admitted service and the live objects of [`status_observed`]) must change.
const STATUS_READ: &[(&str, &str)] = &[(
    "spec.router.route.http.refs[].name",
    "a user-managed HTTPRoute (KServe's collectReferencedRoutes): no managed route is built; \
     RouterReady, the gateways and the URL come from the referenced route \
     (src/reconcile/status.rs::tests::referenced_routes_give_router_status_and_url)",
)];

/// The live objects for [`STATUS_READ`]: the HTTPRoute `my-route` of base 2, accepted.
fn status_observed() -> Vec<Value> {
    vec![json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "my-route", "namespace": "demo"},
        "spec": {"parentRefs": [{"name": "gw", "namespace": "gs"}]},
        "status": {"parents": [{"conditions": [{"type": "Accepted", "status": "True"}]}]},
    })]
}

/// The status of `obj` as admitted, with [`status_observed`].
fn status_of(engine: &Engine, obj: &Value) -> Value {
    let mut admitted = match engine.admit(obj) {
        Ok(a) => a.object,
        Err(e) => panic!("refused: {e:?}"),
    };
    admitted["metadata"]["uid"] = json!("00000000-0000-4000-8000-000000000001");
    let presets = llmisvc::presets::PresetStore::embedded("llmisvc-system").unwrap();
    let status = llmisvc::reconcile::status::status(
        &admitted,
        &status_observed(),
        &presets,
        "2026-01-01T00:00:00Z",
    );
    serde_json::to_value(status).unwrap()
}

/// Sets a schema path, creating what is missing (`[]` as a one-item list).
fn set_path(v: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path.split('.').collect();
    let mut cur = v;
    for (i, seg) in segs.iter().enumerate() {
        let list = seg.ends_with("[]");
        let name = seg.trim_end_matches("[]").trim_end_matches("{}");
        let last = i + 1 == segs.len();
        if !cur.get(name).is_some_and(|x| x.is_object() || x.is_array()) || last {
            let fresh = if list { json!([{}]) } else { json!({}) };
            if !last || list {
                cur[name] = fresh;
            }
        }
        if last {
            if list {
                cur[name] = json!([value]);
            } else {
                cur[name] = value;
            }
            return;
        }
        cur = &mut cur[name];
        if list {
            cur = &mut cur[0];
        }
    }
}

/// `text` without list indices (`a[0].b` -> `a.b`).
fn without_indices(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('[') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find(']') {
            Some(j) if j > 0 && after[..j].bytes().all(|b| b.is_ascii_digit()) => {
                rest = &after[j + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Fields no child may depend on, with the reason.
const METADATA_ONLY: &[(&str, &str)] = &[(
    "spec.baseRefs[].name",
    "names a preset: the preset's values are what the expansion consumes; a missing one is \
     warned about (tests/pure/pipeline.rs::a_missing_base_ref_is_a_warning_and_the_service_is_completed_later)",
)];

/// Leaf paths (`a.b[].c`, maps as `a{}`) of the v1alpha2 spec schema.
fn leaf_paths() -> Vec<String> {
    fn walk(n: &Value, p: String, out: &mut Vec<String>) {
        if let Some(props) = n.get("properties").and_then(Value::as_object) {
            for (k, c) in props {
                walk(c, format!("{p}.{k}"), out);
            }
            return;
        }
        if n.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            out.push(p);
            return;
        }
        if let Some(items) = n.get("items") {
            walk(items, format!("{p}[]"), out);
            return;
        }
        if n.get("additionalProperties").is_some_and(Value::is_object) {
            out.push(format!("{p}{{}}"));
            return;
        }
        out.push(p);
    }
    let crd = crd_json(Kind::Service, &CrdOptions::default());
    let v = crd["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "v1alpha2")
        .unwrap();
    let mut out = Vec::new();
    walk(
        &v["schema"]["openAPIV3Schema"]["properties"]["spec"],
        "spec".into(),
        &mut out,
    );
    out
}

fn svc(spec: Value) -> Value {
    json!({
        "apiVersion": "serving.kserve.io/v1alpha2", "kind": "LLMInferenceService",
        "metadata": {"name": "s", "namespace": "demo"},
        "spec": spec,
    })
}

fn behavior() -> Value {
    json!({
        "scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
            "selectPolicy": "Max", "stabilizationWindowSeconds": 300, "tolerance": "0.1"},
        "scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
            "selectPolicy": "Max", "stabilizationWindowSeconds": 0, "tolerance": "0.1"}
    })
}

/// KEDA settings without `scalingModifiers` (forbidden with WVA).
fn wva_keda() -> Value {
    let mut k = keda();
    k["advanced"]
        .as_object_mut()
        .unwrap()
        .remove("scalingModifiers");
    k.as_object_mut().unwrap().remove("triggers");
    k
}

fn keda() -> Value {
    json!({
        "pollingInterval": 15, "cooldownPeriod": 60, "initialCooldownPeriod": 10,
        "idleReplicaCount": 0,
        "fallback": {"failureThreshold": 3, "replicas": 2, "behavior": "static"},
        "advanced": {
            "horizontalPodAutoscalerConfig": {"behavior": behavior()},
            "restoreToOriginalReplicaCount": false,
            "scalingModifiers": {"formula": "t * 2", "target": "5", "activationTarget": "1",
                "metricType": "AverageValue"}
        },
        "triggers": [{"type": "prometheus", "name": "t", "useCachedMetrics": false,
            "metricType": "AverageValue",
            "metadata": {"serverAddress": "http://prometheus:9090", "query": "sum(x)", "threshold": "5"},
            "authenticationRef": {"name": "auth", "kind": "TriggerAuthentication"}}]
    })
}

fn offloading(fs: Value) -> Value {
    json!({"cpu": "10Gi", "evictionPolicy": "lru", "secondary": [{"fileSystem": fs}]})
}

fn pvc_spec() -> Value {
    json!({"spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "fast", "volumeMode": "Filesystem",
        "volumeName": "pv", "volumeAttributesClassName": "gold",
        "resources": {"requests": {"storage": "10Gi"}, "limits": {"storage": "20Gi"}},
        "selector": {"matchLabels": {"a": "b"},
            "matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]},
        "dataSource": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot", "name": "snap"},
        "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
            "name": "snap", "namespace": "demo"}
    }})
}

/// Services using every feature, each path taken from the first base that has it.
fn bases() -> Vec<Value> {
    let model = json!({"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct", "name": "q",
        "lora": {"adapters": [{"name": "a", "uri": "hf://org/a"}],
            "maxRank": 8, "maxAdapters": 2, "maxCpuAdapters": 2},
        "confidential": {"enabled": true, "resourceId": "kbs:///repo/key/tag"}});
    let pool = |p: Value| json!({"route": {}, "gateway": {}, "scheduler": {"pool": p}});
    let common = |extra: Value| {
        let mut s = json!({
            "model": model.clone(), "storageInitializer": {"enabled": true},
            "parallelism": {"tensor": 2},
            "labels": {"team": "a"}, "annotations": {"note": "a"},
            "template": {"containers": [{"name": "main", "env": [{"name": "X", "value": "1"}]}]},
            "rolloutStrategy": {"maxUnavailable": 1, "maxSurge": 1},
            "tracing": {"exporterEndpoint": "http://otel:4317", "sampler": "parentbased_traceidratio",
                "samplerArg": "0.1", "exporter": "otlp"},
        });
        for (k, v) in extra.as_object().unwrap() {
            s[k] = v.clone();
        }
        svc(s)
    };
    vec![
        svc(
            json!({"model": {"uri": "hf://Qwen/Qwen2.5-0.5B-Instruct"}, "replicas": 2,
            "parallelism": {"pipeline": 2},
            "prefill": {"replicas": 1, "parallelism": {"pipeline": 2}}}),
        ),
        common(json!({
            "kvCacheOffloading": offloading(json!({"emptyDir": {"size": "10Gi"}})),
            "scaling": {"minReplicas": 1, "maxReplicas": 4, "keda": keda()},
            "router": {"route": {"group": "chat", "weight": 3, "http": {"spec": {"rules": [
                    {"timeouts": {"request": "30s"}},
                    // A shared (not per-participant) rule to the service's own pool: a group
                    // member's weight lands on it.
                    {"matches": [{"path": {"type": "PathPrefix", "value": "/v1"}}],
                     "backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "s-inference-pool", "port": 8000}]}]}}},
                "gateway": {"refs": [{"name": "gw", "namespace": "gs", "sectionName": "http"}]},
                "scheduler": {"replicas": 1, "labels": {"a": "b"}, "annotations": {"a": "b"},
                    "template": {"containers": [{"name": "main", "env": [{"name": "X", "value": "1"}]}]},
                    "config": {"inline": {"apiVersion": "inference.networking.x-k8s.io/v1alpha1",
                        "kind": "EndpointPickerConfig", "plugins": [{"type": "queue-scorer"}],
                        "schedulingProfiles": [{"name": "default", "plugins": [{"pluginRef": "queue-scorer"}]}]}},
                    "tokenizer": {"template": {"containers": [{"name": "tokenizer", "image": "t:1"}]}}}},
            "prefill": {"parallelism": {"tensor": 2}, "labels": {"team": "a"},
                "annotations": {"note": "a"},
                "template": {"containers": [{"name": "main", "env": [{"name": "X", "value": "1"}]}]},
                "rolloutStrategy": {"maxUnavailable": 1, "maxSurge": 1},
                "kvCacheOffloading": offloading(json!({"emptyDir": {"size": "10Gi"}})),
                "scaling": {"minReplicas": 1, "maxReplicas": 4, "keda": keda()}},
        })),
        common(json!({
            "kvCacheOffloading": offloading(json!({"pvc": pvc_spec()})),
            "scaling": {"minReplicas": 1, "maxReplicas": 4,
                "wva": {"variantCost": "5.0", "hpa": {"behavior": behavior()}}},
            "router": {"route": {"http": {"refs": [{"name": "my-route"}]}},
                "ingress": {"refs": [{"name": "ing", "namespace": "demo"}]},
                "scheduler": {"config": {"ref": {"name": "cfg", "key": "config.yaml", "optional": false}},
                    "pool": {"spec": {"selector": {"matchLabels": {"app": "x"}},
                        "targetPorts": [{"number": 8000}], "appProtocol": "http",
                        "endpointPickerRef": {"group": "", "kind": "Service", "name": "epp",
                            "port": {"number": 9002}, "failureMode": "FailClose"}}}}},
            "worker": {"containers": [{"name": "main", "env": [{"name": "X", "value": "1"}]}]},
            "parallelism": {"tensor": 2, "data": 2, "dataLocal": 1, "dataRPCPort": 5555, "expert": true},
            "prefill": {"parallelism": {"tensor": 2, "data": 2, "dataLocal": 1, "dataRPCPort": 5555,
                    "expert": true},
                "worker": {"containers": [{"name": "main", "env": [{"name": "X", "value": "1"}]}]},
                "kvCacheOffloading": offloading(json!({"pvc": pvc_spec()})),
                "scaling": {"minReplicas": 1, "maxReplicas": 4,
                    "wva": {"variantCost": "5.0", "hpa": {"behavior": behavior()}}}},
        })),
        common(json!({
            "kvCacheOffloading": offloading(json!({"pvc": {"ref": {"name": "cache", "path": "kv"}}})),
            "scaling": {"minReplicas": 1, "maxReplicas": 4,
                "wva": {"variantCost": "5.0", "keda": wva_keda()}},
            "router": pool(json!({"ref": {"name": "shared-pool"}})),
            "prefill": {"kvCacheOffloading": offloading(json!({"pvc": {"ref": {"name": "cache", "path": "kv"}}})),
                "scaling": {"minReplicas": 1, "maxReplicas": 4,
                    "wva": {"variantCost": "5.0", "keda": wva_keda()}}},
            "baseRefs": [{"name": "kserve-config-llm-template"}],
        })),
    ]
}

/// The value at a schema path (`[]` takes the first item, `{}` the whole map).
fn at<'a>(v: &'a mut Value, path: &str) -> Option<&'a mut Value> {
    let mut cur = v;
    for seg in path.split('.') {
        let (name, suffix) = match seg.find(['[', '{']) {
            Some(i) => (&seg[..i], &seg[i..]),
            None => (seg, ""),
        };
        cur = cur.get_mut(name)?;
        if suffix == "[]" {
            cur = cur.get_mut(0)?;
        }
    }
    Some(cur)
}

/// Another valid value for a leaf.
fn alternative(path: &str, v: &Value) -> Value {
    let last = path.rsplit('.').next().unwrap_or(path);
    let table: &[(&str, Value)] = &[
        ("selectPolicy", json!("Min")),
        ("type", json!("Percent")),
        ("metricType", json!("Value")),
        ("behavior", json!("currentReplicas")),
        ("evictionPolicy", json!("arc")),
        ("failureMode", json!("FailOpen")),
        ("volumeMode", json!("Block")),
        ("accessModes[]", json!("ReadWriteMany")),
        ("operator", json!("NotIn")),
        ("kind", json!("ClusterTriggerAuthentication")),
        ("sampler", json!("always_on")),
        ("exporter", json!("console")),
        ("tolerance", json!("0.2")),
        ("cpu", json!("20Gi")),
        ("size", json!("20Gi")),
        ("uri", json!("hf://Qwen/Qwen2.5-1.5B-Instruct")),
        ("exporterEndpoint", json!("http://otel2:4317")),
        ("serverAddress", json!("http://p2:9090")),
        ("appProtocol", json!("http2")),
    ];
    // A trigger's `type` and an object reference's `kind` other than KEDA's auth are not enums.
    let enum_like = !(last == "type" && path.contains("triggers"))
        && (last != "kind" || path.contains("authenticationRef"));
    if let Some((_, alt)) = table.iter().find(|(k, alt)| *k == last && alt != v)
        && enum_like
    {
        return alt.clone();
    }
    match v {
        Value::Bool(b) => Value::Bool(!b),
        Value::Number(n) => json!(n.as_i64().unwrap_or(0) + 1),
        Value::String(s) if path.ends_with("{}") => json!(format!("{s}x")),
        Value::String(s) => json!(format!("{s}x")),
        Value::Object(m) if path.ends_with("{}") => {
            let mut m = m.clone();
            m.insert("extra".into(), json!("x"));
            Value::Object(m)
        }
        Value::Object(_) | Value::Array(_) => {
            // Opaque: change one nested string.
            let mut c = v.clone();
            bump_first_string(&mut c);
            c
        }
        Value::Null => json!("x"),
    }
}

fn bump_first_string(v: &mut Value) -> bool {
    match v {
        Value::String(s) => {
            s.push('x');
            true
        }
        Value::Object(m) => m
            .iter_mut()
            .rev()
            .any(|(k, v)| k != "name" && k != "kind" && k != "apiVersion" && bump_first_string(v)),
        Value::Array(a) => a.iter_mut().any(bump_first_string),
        _ => false,
    }
}

#[derive(Debug, PartialEq)]
enum Seen {
    Children(Vec<Value>, Vec<String>),
    Refused(String),
}

fn observe(engine: &Engine, obj: &Value, opts: &BuildOptions) -> Seen {
    let admitted = match engine.admit(obj) {
        Ok(a) => a,
        Err(Refused::Invalid(o)) => {
            return Seen::Refused(
                o.errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
        Err(e) => return Seen::Refused(e.to_string()),
    };
    let mut warnings = admitted.warnings;
    let outcome = engine.validate(None, &admitted.object);
    if !outcome.errors.is_empty() {
        return Seen::Refused(
            outcome
                .errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    warnings.extend(outcome.warnings);
    match engine.children(obj, opts) {
        Ok(c) => Seen::Children(c, warnings),
        Err(e) => Seen::Refused(e.to_string()),
    }
}

#[test]
fn every_spec_field_changes_the_children_or_is_warned_about() {
    let engine = Engine::builtin().unwrap();
    let opts = BuildOptions {
        wva_prometheus: Some(WvaPrometheus {
            url: "https://prometheus:9090".into(),
            ..Default::default()
        }),
    };
    let bases = bases();
    let seen_bases: Vec<Seen> = bases.iter().map(|b| observe(&engine, b, &opts)).collect();
    let refused: Vec<String> = seen_bases
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Seen::Refused(e) => Some(format!("base {i} refused: {e}")),
            _ => None,
        })
        .collect();
    assert!(refused.is_empty(), "{}", refused.join("\n"));
    // Control: an unknown field (kept, never read) changes nothing, so the check can fail.
    let mut control = bases[1].clone();
    control["spec"]["x"] = json!("y");
    assert_eq!(observe(&engine, &control, &opts), seen_bases[1]);

    let mut failures = Vec::new();
    let mut gaps = Vec::new();
    let paths = leaf_paths();
    assert!(paths.len() > 200, "{}", paths.len());
    for path in paths {
        if METADATA_ONLY.iter().any(|(p, _)| *p == path) {
            continue;
        }
        let field = path.replace("[]", "").replace("{}", "");
        if REFUSED.iter().any(|(p, _)| *p == path) {
            // Refused on some base that uses the feature, with an error naming the field.
            let refused = bases.iter().any(|b| {
                let mut bad = b.clone();
                set_path(&mut bad, &path, json!("x"));
                let parent = field.rsplit_once('.').map_or(field.as_str(), |(p, _)| p);
                matches!(observe(&engine, &bad, &opts), Seen::Refused(e) if e.contains(parent))
            });
            if !refused {
                failures.push(format!("{path}: expected a refusal naming it"));
            }
            continue;
        }
        let Some(i) = bases
            .iter()
            .position(|b| at(&mut b.clone(), &path).is_some())
        else {
            if KNOWN_GAPS.iter().any(|(p, _)| *p == path) {
                gaps.push(path);
                continue;
            }
            failures.push(format!(
                "{path}: no base service sets it (add it to bases())"
            ));
            continue;
        };
        let mut alt = bases[i].clone();
        let slot = at(&mut alt, &path).unwrap();
        *slot = alternative(&path, slot);
        match (observe(&engine, &alt, &opts), &seen_bases[i]) {
            (Seen::Refused(e), _) => {
                if !e.contains(&field) {
                    failures.push(format!("{path}: the changed value is refused: {e}"));
                }
            }
            (Seen::Children(c, w), Seen::Children(c0, w0)) => {
                // A warning names the field by its path, list indices included
                // (`refs[0].name` names `refs[].name`).
                let names = |x: &String| without_indices(x).contains(&field);
                let warned = w.iter().any(|x| names(x) && !w0.contains(x));
                let warned_before = w0.iter().any(names);
                let status_read = STATUS_READ.iter().any(|(p, _)| *p == path)
                    && status_of(&engine, &alt) != status_of(&engine, &bases[i]);
                if c == *c0 && !warned && !warned_before && !status_read {
                    if KNOWN_GAPS.iter().any(|(p, _)| *p == path) {
                        gaps.push(path);
                        continue;
                    }
                    failures.push(format!(
                        "{path}: changing it changes no child and no warning names it"
                    ));
                }
            }
            _ => unreachable!(),
        }
    }
    for (p, _) in KNOWN_GAPS {
        if !gaps.iter().any(|g| g == p) {
            failures.push(format!(
                "{p}: has a consumer now: remove it from KNOWN_GAPS"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} spec fields without a consumer:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
