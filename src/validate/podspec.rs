//! Pod templates are kept loose in the CRD (`x-kubernetes-preserve-unknown-fields`); this walks
//! them against the structural schema of `core/v1 PodSpec` and reports unknown fields and
//! wrong JSON types, with Kubernetes-style paths (`spec.template.containers[0].resources`).

use std::sync::LazyLock;

use k8s_openapi::api::core::v1::PodSpec;
use serde_json::Value;

use super::json::{Obj, Sink, child, index, key};

/// The PodSpec schema, built once.
static POD_SPEC_SCHEMA: LazyLock<Value> =
    LazyLock::new(crate::api::schema::structural_schema_for::<PodSpec>);

/// The pod template paths of a spec, relative to `spec`.
pub const TEMPLATE_PATHS: &[&[&str]] = &[
    &["template"],
    &["worker"],
    &["prefill", "template"],
    &["prefill", "worker"],
    &["router", "scheduler", "template"],
    &["router", "scheduler", "tokenizer", "template"],
];

/// Every pod template present in `spec` (an object), with its path. Reports wrong types of the
/// objects on the way (`spec.prefill` a string, ...).
pub fn templates<'a>(spec: &Obj<'a>, s: &mut Sink) -> Vec<(String, &'a Value)> {
    let mut out = Vec::new();
    for segs in TEMPLATE_PATHS {
        let mut cur = Obj {
            map: spec.map,
            path: spec.path.clone(),
        };
        let (last, parents) = match segs.split_last() {
            Some(x) => x,
            None => continue,
        };
        for p in parents {
            cur = cur.obj(p, s);
        }
        if let Some(v) = cur.raw(last) {
            out.push((cur.path_of(last), v));
        }
    }
    out
}

/// What Kubernetes would refuse in an expanded pod template, found at admission instead of when
/// the workload is created: a list item without its merge key (it cannot be merged with the
/// presets' items and would replace their whole list), a container without a name or (for a
/// service, `expanded`) an image, two containers with one name, a volume with two sources, a
/// mount naming a volume the pod does not have (only when the pod lists its volumes, or for a
/// service). Wrong JSON types are left to [`check_template`].
pub fn check_pod(path: &str, tpl: &Value, expanded: bool, s: &mut Sink) {
    let Some(pod) = tpl.as_object() else {
        return;
    };
    // List items without their merge key, anywhere in the pod.
    missing_merge_keys(tpl, path, 0, s);
    let mut names: Vec<&str> = Vec::new();
    let volumes: Vec<&str> = pod
        .get("volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let check_mounts = expanded || pod.get("volumes").is_some_and(|v| !v.is_null());
    for list in ["initContainers", "containers"] {
        let Some(cs) = pod.get(list).and_then(Value::as_array) else {
            continue;
        };
        let lpath = child(path, list);
        for (i, c) in cs.iter().enumerate() {
            let Some(c) = c.as_object() else { continue };
            let cpath = index(&lpath, i);
            match c.get("name").and_then(Value::as_str) {
                Some(n) if !n.is_empty() => {
                    if names.contains(&n) {
                        s.err(
                            super::ErrorKind::Duplicate,
                            child(&cpath, "name"),
                            Some(super::json::render(&Value::String(n.to_string()))),
                            "container names must be unique in a pod (containers and initContainers); rename one of them",
                        );
                    } else {
                        names.push(n);
                    }
                }
                // Reported by `missing_merge_keys`.
                _ => {}
            }
            if expanded
                && c.get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                s.required(
                    child(&cpath, "image"),
                    "every container needs an image; set one, or use a preset (baseRefs or a well-known preset) that sets it",
                );
            }
            if !check_mounts {
                continue;
            }
            let Some(ms) = c.get("volumeMounts").and_then(Value::as_array) else {
                continue;
            };
            for (j, m) in ms.iter().enumerate() {
                if let Some(v) = m.get("name").and_then(Value::as_str)
                    && !volumes.contains(&v)
                {
                    s.err(
                        super::ErrorKind::NotSupported,
                        child(&index(&child(&cpath, "volumeMounts"), j), "name"),
                        Some(super::json::render(&Value::String(v.to_string()))),
                        format!(
                            "no volume named {v:?} in {}; add it to volumes or remove the mount",
                            child(path, "volumes")
                        ),
                    );
                }
            }
        }
    }
    if let Some(vs) = pod.get("volumes").and_then(Value::as_array) {
        let vpath = child(path, "volumes");
        for (i, v) in vs.iter().enumerate() {
            let Some(v) = v.as_object() else { continue };
            let sources: Vec<&str> = v
                .iter()
                .filter(|(k, val)| *k != "name" && !val.is_null())
                .map(|(k, _)| k.as_str())
                .collect();
            if sources.len() > 1 {
                s.err(
                    super::ErrorKind::Forbidden,
                    index(&vpath, i),
                    None,
                    format!(
                        "a volume has exactly one source, this one has {}: {}; keep one (a volume of a preset is replaced whole by one of the same name)",
                        sources.len(),
                        sources.join(", ")
                    ),
                );
            }
        }
    }
}

/// Reports list items without the merge key of their list (`containers: [{}]`).
fn missing_merge_keys(v: &Value, path: &str, depth: usize, s: &mut Sink) {
    if depth > 32 {
        return;
    }
    let Some(m) = v.as_object() else { return };
    for (k, val) in m {
        let p = child(path, k);
        match val {
            Value::Array(items) => {
                if let Some((i, key)) = crate::presets::merge::item_without_merge_key(k, items) {
                    s.required(
                        child(&index(&p, i), key),
                        format!("every item of {k} needs its {key}: presets and the service are merged item by item on it (an item without it would replace the whole list)"),
                    );
                }
                for (i, it) in items.iter().enumerate() {
                    missing_merge_keys(it, &index(&p, i), depth + 1, s);
                }
            }
            Value::Object(_) => missing_merge_keys(val, &p, depth + 1, s),
            _ => {}
        }
    }
}

/// Checks one pod template against the PodSpec schema.
pub fn check_template(path: &str, v: &Value, s: &mut Sink) {
    walk(&POD_SPEC_SCHEMA, v, path, s, 0);
}

fn is_true(schema: &Value, k: &str) -> bool {
    schema.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn walk(schema: &Value, v: &Value, path: &str, s: &mut Sink, depth: usize) {
    if v.is_null() || depth > 64 {
        return;
    }
    if is_true(schema, "x-kubernetes-int-or-string") {
        if !(v.is_number() || v.is_string()) {
            s.wrong_type(path, v, "an integer or a string");
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    match ty {
        Some("object") => {
            let Some(m) = v.as_object() else {
                s.wrong_type(path, v, "an object");
                return;
            };
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() {
                return; // free-form object
            }
            for (k, val) in m {
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    walk(p, val, &child(path, k), s, depth + 1);
                } else if let Some(a) = additional {
                    walk(a, val, &key(path, k), s, depth + 1);
                } else if !is_true(schema, "x-kubernetes-preserve-unknown-fields") {
                    let hint = props.and_then(|p| suggest(k, p.keys().map(String::as_str)));
                    let detail = match hint {
                        Some(h) => format!("unknown field {k:?}; did you mean {h:?}?"),
                        None => format!("unknown field {k:?}"),
                    };
                    s.invalid(child(path, k), val, detail);
                }
            }
        }
        Some("array") => {
            let Some(items) = v.as_array() else {
                s.wrong_type(path, v, "a list");
                return;
            };
            if let Some(item_schema) = schema.get("items") {
                for (i, it) in items.iter().enumerate() {
                    walk(item_schema, it, &index(path, i), s, depth + 1);
                }
            }
        }
        Some("string") if !v.is_string() => s.wrong_type(path, v, "a string"),
        Some("integer") if !(v.is_i64() || v.is_u64()) => s.wrong_type(path, v, "an integer"),
        Some("number") if !v.is_number() => s.wrong_type(path, v, "a number"),
        Some("boolean") if !v.is_boolean() => s.wrong_type(path, v, "a boolean"),
        _ => {}
    }
}

/// The known field closest to an unknown one (case-insensitive match or edit distance <= 2).
fn suggest<'a>(unknown: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let u = unknown.to_ascii_lowercase();
    known
        .map(|k| (edit_distance(&u, &k.to_ascii_lowercase()), k))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > 2 || a.len() > 64 || b.len() > 64 {
        return usize::MAX;
    }
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
