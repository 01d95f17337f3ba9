//! Strategic-merge-like merge of two JSON values (the overlay wins).
//!
//! The rules, modelled on what KServe gets from `strategicpatch.StrategicMergePatch` with the
//! PodSpec patch strategies (`k8s.io/api/core/v1` `patchMergeKey` tags):
//!
//! * objects merge recursively, key by key; keys keep the base's order, keys new in the overlay
//!   follow in the overlay's order;
//! * a scalar, or a value of another JSON type, in the overlay replaces the base value;
//! * `null` in the overlay is the same as an absent key: a no-op (KServe unmarshals presets into
//!   Go structs, where `null` and absent are both `nil` and so never reach the patch). To switch
//!   something off, write an explicit value (`false`, `0`, `""`, `[]`). `null`s are also dropped
//!   from values the overlay adds;
//! * an empty object in the overlay is therefore a no-op too (`scheduler: {}` in a baseRef keeps
//!   the well-known scheduler preset; opendatahub-io/kserve#772);
//! * lists whose field name has a Kubernetes patch merge key are merged item by item on that key
//!   (see [`merge_key`]): matching items merge recursively, base order first, then the overlay's
//!   new items in overlay order. The key must be present as a scalar in every item of both lists
//!   and unique in the overlay's; otherwise the list is treated like any other list;
//! * every other list is replaced by the overlay's list (an empty overlay list empties it).
//!
//! Not supported: SMP directives (`$patch`, `$retainKeys`, `$setElementOrder`); they are kept as
//! ordinary keys.

use serde_json::{Map, Value};

/// The merge key of a list field, by field name, as in the PodSpec / Container patch strategies.
/// `volumeMounts` merge by `mountPath` (KServe's strategic merge does the same).
pub fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "env"
        | "volumes"
        | "imagePullSecrets"
        | "resourceClaims"
        | "schedulingGates" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Merges `overlay` onto `base`; the overlay wins. See the module documentation for the rules.
pub fn merge(base: &Value, overlay: &Value) -> Value {
    merge_value(None, base, overlay)
}

fn merge_value(field: Option<&str>, base: &Value, overlay: &Value) -> Value {
    match (base, overlay) {
        (_, Value::Null) => base.clone(),
        (Value::Object(b), Value::Object(o)) => Value::Object(merge_maps(b, o)),
        (Value::Array(b), Value::Array(o)) => match field.and_then(merge_key) {
            Some(key) if keyed(b, key) && keyed(o, key) && unique(o, key) => {
                Value::Array(merge_keyed(b, o, key))
            }
            _ => strip_nulls(overlay),
        },
        _ => strip_nulls(overlay),
    }
}

fn merge_maps(base: &Map<String, Value>, overlay: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(base.len() + overlay.len());
    for (k, b) in base {
        let v = match overlay.get(k) {
            Some(o) => merge_value(Some(k), b, o),
            None => b.clone(),
        };
        out.insert(k.clone(), v);
    }
    for (k, o) in overlay {
        if !base.contains_key(k) && !o.is_null() {
            out.insert(k.clone(), strip_nulls(o));
        }
    }
    out
}

fn item_key<'a>(item: &'a Value, key: &str) -> Option<&'a Value> {
    match item.get(key) {
        Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => Some(v),
        _ => None,
    }
}

fn keyed(list: &[Value], key: &str) -> bool {
    list.iter().all(|i| item_key(i, key).is_some())
}

/// An overlay list with a duplicate key is taken as a whole (as a replacement): merging it item by
/// item would not be idempotent.
/// A hashable form of an item's key (scalars only; the JSON text keeps "8000" and 8000 apart).
fn key_text(item: &Value, key: &str) -> Option<String> {
    item_key(item, key).map(Value::to_string)
}

/// Linear time: lists can be long (hostile input with thousands of containers).
fn unique(list: &[Value], key: &str) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    list.iter().all(|a| seen.insert(key_text(a, key)))
}

fn merge_keyed(base: &[Value], overlay: &[Value], key: &str) -> Vec<Value> {
    let mut out: Vec<Value> = base.to_vec();
    // Index of the first item with each key, as a linear `position` search would find it.
    let mut index: std::collections::HashMap<Option<String>, usize> =
        std::collections::HashMap::with_capacity(out.len());
    for (i, b) in out.iter().enumerate() {
        index.entry(key_text(b, key)).or_insert(i);
    }
    for o in overlay {
        let k = key_text(o, key);
        match index.get(&k) {
            Some(&i) => out[i] = merge_value(None, &out[i], o),
            None => {
                index.insert(k, out.len());
                out.push(strip_nulls(o));
            }
        }
    }
    out
}

/// `v` without `null` object members (recursively); `null` list items are kept.
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table() {
        let cases = [
            // scalars: overlay wins
            (
                json!({"a": 1, "b": 2}),
                json!({"b": 3}),
                json!({"a": 1, "b": 3}),
            ),
            // nested maps
            (
                json!({"m": {"x": 1, "y": {"z": 1}}}),
                json!({"m": {"y": {"w": 2}}}),
                json!({"m": {"x": 1, "y": {"z": 1, "w": 2}}}),
            ),
            // {} is a no-op
            (
                json!({"s": {"a": 1}}),
                json!({"s": {}}),
                json!({"s": {"a": 1}}),
            ),
            // null is a no-op, and dropped from added values
            (
                json!({"a": 1}),
                json!({"a": null, "b": {"c": null, "d": 1}}),
                json!({"a": 1, "b": {"d": 1}}),
            ),
            // containers by name, base order then new ones
            (
                json!({"containers": [{"name": "main", "image": "a"}, {"name": "side", "image": "s"}]}),
                json!({"containers": [{"name": "extra"}, {"name": "main", "image": "b"}]}),
                json!({"containers": [{"name": "main", "image": "b"}, {"name": "side", "image": "s"}, {"name": "extra"}]}),
            ),
            // env by name
            (
                json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}),
                json!({"env": [{"name": "B", "value": "3"}]}),
                json!({"env": [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}]}),
            ),
            // ports by containerPort
            (
                json!({"ports": [{"containerPort": 8000, "name": "http"}]}),
                json!({"ports": [{"containerPort": 8000, "protocol": "TCP"}, {"containerPort": 9000}]}),
                json!({"ports": [{"containerPort": 8000, "name": "http", "protocol": "TCP"}, {"containerPort": 9000}]}),
            ),
            // volumeMounts by mountPath
            (
                json!({"volumeMounts": [{"name": "a", "mountPath": "/x"}]}),
                json!({"volumeMounts": [{"name": "b", "mountPath": "/x"}]}),
                json!({"volumeMounts": [{"name": "b", "mountPath": "/x"}]}),
            ),
            // other lists replaced
            (
                json!({"args": ["a", "b"]}),
                json!({"args": ["c"]}),
                json!({"args": ["c"]}),
            ),
            (
                json!({"args": ["a"]}),
                json!({"args": []}),
                json!({"args": []}),
            ),
            // keyed list without the key everywhere: replaced
            (
                json!({"env": [{"name": "A"}]}),
                json!({"env": [{"valueFrom": {}}]}),
                json!({"env": [{"valueFrom": {}}]}),
            ),
            // type change: overlay wins
            (json!({"a": {"b": 1}}), json!({"a": "x"}), json!({"a": "x"})),
        ];
        for (i, (b, o, want)) in cases.iter().enumerate() {
            // (the loop below also checks idempotence)
            let got = merge(b, o);
            assert_eq!(&got, want, "case {i}");
            assert_eq!(merge(&got, o), got, "idempotent, case {i}");
        }
    }

    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0i64..4).prop_map(|n| json!(n)),
            prop::sample::select(vec!["a", "b", "main"]).prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(4, 40, 4, |inner| {
            let keys = prop::sample::select(vec![
                "name",
                "containers",
                "env",
                "ports",
                "containerPort",
                "args",
                "value",
                "x",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((keys, inner), 0..4).prop_map(|kv| Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn merge_is_idempotent(a in json_value(), b in json_value()) {
            let m = merge(&a, &b);
            prop_assert_eq!(merge(&m, &b), m);
        }

        #[test]
        fn merge_onto_nothing_is_the_overlay_without_nulls(b in json_value()) {
            prop_assert_eq!(merge(&Value::Null, &b), if b.is_null() { Value::Null } else { strip_nulls(&b) });
        }
    }
}
