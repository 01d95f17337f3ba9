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
