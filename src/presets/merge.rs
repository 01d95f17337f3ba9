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
//!   (see [`merge_key`]): matching items merge recursively, in strategic merge patch's order
//!   (the overlay's items in overlay order, items new in the overlay before the base's remaining
//!   ones: base `[main]` + overlay `[sidecar]` is `[sidecar, main]`, as KServe's
//!   config_merge_test.go expects). The key must be present as a scalar in every item of both
//!   lists and unique in the overlay's; otherwise the list is treated like any other list;
//! * every other list is replaced by the overlay's list (an empty overlay list empties it);
//! * fields that are alternatives of one another (the private `alternatives`) are not mixed: when the
//!   overlay sets one, the base's others are dropped. A user volume `{name: home,
//!   persistentVolumeClaim: ...}` over a preset's `{name: home, emptyDir: {}}` is the user's
//!   volume whole (Kubernetes' `retainKeys` strategy of `Volume`), a probe's `httpGet` replaces
//!   the preset's `exec`, an env var's `valueFrom` its `value`. Otherwise the merged pod would
//!   carry two sources / handlers / values and be rejected by Kubernetes.
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

/// A set of mutually exclusive fields of an object.
#[derive(Clone, Copy, Debug)]
enum Group {
    /// Every field but `name` (a volume's source).
    AllButName,
    /// These fields.
    Keys(&'static [&'static str]),
}

/// The mutually exclusive fields of the object in `field` (for list items: the list's field):
/// a volume's source, a probe's or lifecycle hook's handler, an env var's value.
fn alternatives(field: Option<&str>) -> Option<Group> {
    Some(match field? {
        "volumes" => Group::AllButName,
        "env" => Group::Keys(&["value", "valueFrom"]),
        "livenessProbe" | "readinessProbe" | "startupProbe" => {
            Group::Keys(&["exec", "httpGet", "tcpSocket", "grpc"])
        }
        "postStart" | "preStop" => Group::Keys(&["exec", "httpGet", "tcpSocket", "sleep"]),
        _ => return None,
    })
}

fn in_group(group: Group, key: &str) -> bool {
    match group {
        Group::AllButName => key != "name",
        Group::Keys(keys) => keys.contains(&key),
    }
}

/// Whether the base's `key` gives way to another alternative the overlay (`top`) sets.
fn displaced(group: Option<Group>, top: &Map<String, Value>, key: &str) -> bool {
    let Some(g) = group else {
        return false;
    };
    in_group(g, key)
        && top.get(key).is_none_or(Value::is_null)
        && top
            .iter()
            .any(|(k, v)| k != key && !v.is_null() && in_group(g, k))
}

/// A list whose items all have the merge key of its field, or the index of the first item
/// without it. Presets and services must name their list items: an item without its key
/// cannot be merged, and would silently replace the whole list.
pub fn item_without_merge_key(field: &str, list: &[Value]) -> Option<(usize, &'static str)> {
    let key = merge_key(field)?;
    list.iter()
        .position(|i| i.is_object() && item_key(i, key).is_none())
        .map(|i| (i, key))
}

/// Merges `overlay` onto `base`; the overlay wins. See the module documentation for the rules.
pub fn merge(base: &Value, overlay: &Value) -> Value {
    let mut out = base.clone();
    merge_into(&mut out, overlay.clone());
    out
}

/// `*base = merge(base, overlay)`, in place: the overlay's values are moved into `base`, and
/// nothing is copied. This is the form the admission path uses.
pub fn merge_into(base: &mut Value, overlay: Value) {
    merge_field(None, base, overlay);
}

/// The merge key when `field`'s lists merge item by item: the field has a patch merge key,
/// every item of both lists has it, and it is unique in the overlay.
fn list_key(field: Option<&str>, base: &[Value], overlay: &[Value]) -> Option<&'static str> {
    let key = merge_key(field?)?;
    (keyed(base, key) && keyed(overlay, key) && unique(overlay, key)).then_some(key)
}

fn merge_field(field: Option<&str>, base: &mut Value, mut overlay: Value) {
    match (&mut *base, &mut overlay) {
        (_, Value::Null) => return,
        (Value::Object(b), Value::Object(o)) => {
            let group = alternatives(field);
            if group.is_some() {
                b.retain(|k, _| !displaced(group, o, k));
            }
            return merge_maps(b, std::mem::take(o));
        }
        (Value::Array(b), Value::Array(o)) => {
            if let Some(key) = list_key(field, b, o) {
                return merge_keyed(b, std::mem::take(o), key, field);
            }
        }
        _ => {}
    }
    // Anything else: the overlay replaces the base.
    strip_nulls_in_place(&mut overlay);
    *base = overlay;
}

/// Base keys keep their order; keys new in the overlay follow in the overlay's order.
fn merge_maps(base: &mut Map<String, Value>, overlay: Map<String, Value>) {
    for (k, mut o) in overlay {
        match base.get_mut(&k) {
            Some(b) => merge_field(Some(&k), b, o),
            None if o.is_null() => {}
            None => {
                strip_nulls_in_place(&mut o);
                base.insert(k, o);
            }
        }
    }
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

/// Lists up to this many items are searched linearly (no hashing); longer ones (hostile input
/// with thousands of containers) through a hash index.
const LINEAR: usize = 16;

/// An item's merge key, borrowed (the JSON type is part of it: "8000" and 8000 differ).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    Str(&'a str),
    Num(&'a serde_json::Number),
    Bool(bool),
}

fn key_of<'a>(item: &'a Value, key: &str) -> Option<Key<'a>> {
    match item.get(key)? {
        Value::String(s) => Some(Key::Str(s)),
        Value::Number(n) => Some(Key::Num(n)),
        Value::Bool(b) => Some(Key::Bool(*b)),
        _ => None,
    }
}

/// An overlay list with a duplicate key is taken as a whole (as a replacement): merging it item by
/// item would not be idempotent.
fn unique(list: &[Value], key: &str) -> bool {
    let keys: Vec<Option<Key>> = list.iter().map(|i| key_of(i, key)).collect();
    if keys.len() <= LINEAR {
        return keys
            .iter()
            .enumerate()
            .all(|(i, a)| keys[..i].iter().all(|b| a != b));
    }
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.into_iter().all(|k| seen.insert(k))
}

/// For each item of `items`, the index of the first item of `within` with the same key.
fn first_matches(within: &[Value], items: &[Value], key: &str) -> Vec<Option<usize>> {
    let keys: Vec<Option<Key>> = within.iter().map(|i| key_of(i, key)).collect();
    if keys.len() <= LINEAR {
        return items
            .iter()
            .map(|o| {
                let k = key_of(o, key);
                keys.iter().position(|b| *b == k)
            })
            .collect();
    }
    let mut index = std::collections::HashMap::with_capacity(keys.len());
    for (i, k) in keys.into_iter().enumerate() {
        index.entry(k).or_insert(i);
    }
    items
        .iter()
        .map(|o| index.get(&key_of(o, key)).copied())
        .collect()
}

/// Matching items merge (the first base item with a key takes the overlay's item); the order is
/// strategic merge patch's ([`smp_order`]). Overlay keys are unique (checked by the caller), so
/// a base item is matched at most once.
fn merge_keyed(base: &mut Vec<Value>, overlay: Vec<Value>, key: &str, field: Option<&str>) {
    let matches = first_matches(base, &overlay, key);
    let mut items: Vec<Option<Value>> = std::mem::take(base).into_iter().map(Some).collect();
    let mut merged = Vec::with_capacity(overlay.len());
    for (mut o, m) in overlay.into_iter().zip(matches) {
        match m.and_then(|i| items[i].take().map(|b| (i, b))) {
            Some((i, mut b)) => {
                merge_field(field, &mut b, o);
                merged.push((Some(i), b));
            }
            None => {
                strip_nulls_in_place(&mut o);
                merged.push((None, o));
            }
        }
    }
    let base_only = items
        .into_iter()
        .enumerate()
        .filter_map(|(i, b)| b.map(|b| (i, b)))
        .collect();
    *base = smp_order(base_only, merged);
}

/// The order of a keyed list after a strategic merge patch, as apimachinery's
/// `normalizeElementOrder` / `mergeSortedSlice` (pkg/util/strategicpatch/patch.go) gives it
/// and KServe's config_merge_test.go expects ("merge pod spec, add container": base
/// `[busybox]`, overlay `[busybox-2]` give `[busybox-2, busybox]`): the overlay's items
/// (merged with their base item) in overlay order, with the base-only items (in base order)
/// interleaved: a base-only item goes first only when the overlay item it is compared with is
/// also in the base, after it. So items new in the overlay come before the base's remaining
/// ones. `base_only` and `overlay` carry each item's index in the base (`None`: new).
fn smp_order(base_only: Vec<(usize, Value)>, overlay: Vec<(Option<usize>, Value)>) -> Vec<Value> {
    let mut out = Vec::with_capacity(base_only.len() + overlay.len());
    let mut left = base_only.into_iter().peekable();
    let mut right = overlay.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((li, _)), Some((ri, _))) => ri.is_some_and(|ri| *li < ri),
        };
        if take_left {
            out.extend(left.next().map(|(_, v)| v));
        } else {
            out.extend(right.next().map(|(_, v)| v));
        }
    }
    out
}

/// `*top = merge(base, top)`: the same merge, computed in the overlay (`top`), so that only
/// what `top` lacks is copied from `base`. On an object that already carries everything the
/// presets would add (every UPDATE of an expanded object) almost nothing is copied.
pub fn merge_under(top: &mut Value, base: &Value) {
    // Nulls first, once: a null member of the top that the base has ends up as the base's
    // value either way (removed here, then copied in like any member the top lacks), and the
    // base's keys are put in the base's order at the end; so after this walk only the base's
    // keys are ever looked up, never the (larger) top's.
    strip_nulls_in_place(top);
    under_field(None, top, base);
}

fn under_field(field: Option<&str>, top: &mut Value, base: &Value) {
    match (top, base) {
        (t @ Value::Null, b) => *t = b.clone(),
        (Value::Object(t), Value::Object(b)) => under_maps(t, b, alternatives(field)),
        (Value::Array(t), Value::Array(b)) => {
            if let Some(key) = list_key(field, b, t) {
                under_keyed(t, b, key, field);
            }
        }
        // The top's value (already without nulls) wins.
        _ => {}
    }
}

fn under_maps(top: &mut Map<String, Value>, base: &Map<String, Value>, group: Option<Group>) {
    let displaced_keys: Vec<&String> = match group {
        Some(_) => base.keys().filter(|k| displaced(group, top, k)).collect(),
        None => Vec::new(),
    };
    for (k, b) in base {
        if displaced_keys.contains(&k) {
            continue;
        }
        match top.get_mut(k) {
            Some(t) => under_field(Some(k), t, b),
            None => {
                top.insert(k.clone(), b.clone());
            }
        }
    }
    // Order: the base's keys in the base's order, then the top's own.
    let in_order = top.keys().zip(base.keys()).all(|(a, b)| a == b);
    if !in_order {
        let mut old: Map<String, Value> = std::mem::take(top);
        for k in base.keys() {
            if let Some(v) = old.shift_remove(k) {
                top.insert(k.clone(), v);
            }
        }
        // What is left are the top's own keys, still in their order.
        top.extend(old);
    }
}

/// The keyed-list merge of [`merge_keyed`], computed in the overlay's list.
fn under_keyed(top: &mut Vec<Value>, base: &[Value], key: &str, field: Option<&str>) {
    // For each top item, the base item it merges into (the first with its key).
    let matches = first_matches(base, top, key);
    let mut matched = vec![false; base.len()];
    let mut merged = Vec::with_capacity(top.len());
    for (mut t, m) in std::mem::take(top).into_iter().zip(matches) {
        // Top keys are unique: a base item is matched at most once.
        if let Some(i) = m {
            under_field(field, &mut t, &base[i]);
            matched[i] = true;
        }
        merged.push((m, t));
    }
    let base_only = base
        .iter()
        .enumerate()
        .filter(|(i, _)| !matched[*i])
        .map(|(i, b)| (i, b.clone()))
        .collect();
    *top = smp_order(base_only, merged);
}

/// `v` without `null` object members (recursively); `null` list items are kept.
pub fn strip_nulls(v: &Value) -> Value {
    let mut v = v.clone();
    strip_nulls_in_place(&mut v);
    v
}

/// [`strip_nulls`] in place (nothing is copied).
pub fn strip_nulls_in_place(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.values().any(Value::is_null) {
                m.retain(|_, v| !v.is_null());
            }
            m.values_mut().for_each(strip_nulls_in_place);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls_in_place),
        _ => {}
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
            // containers by name, in strategic merge patch's order (the overlay's, new items
            // before the base's remaining ones)
            (
                json!({"containers": [{"name": "main", "image": "a"}, {"name": "side", "image": "s"}]}),
                json!({"containers": [{"name": "extra"}, {"name": "main", "image": "b"}]}),
                json!({"containers": [{"name": "extra"}, {"name": "main", "image": "b"}, {"name": "side", "image": "s"}]}),
            ),
            (
                json!({"containers": [{"name": "busybox"}]}),
                json!({"containers": [{"name": "busybox-2"}]}),
                json!({"containers": [{"name": "busybox-2"}, {"name": "busybox"}]}),
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

    #[test]
    fn long_keyed_lists_agree_with_the_copying_definition() {
        // Beyond the linear-search size: the hash index must give the same result.
        let item = |n: usize, v: &str| json!({"name": format!("c{n}"), "image": v, "x": null});
        let base: Vec<Value> = (0..40).map(|n| item(n % 30, "base")).collect(); // duplicates
        let overlay: Vec<Value> = (20..60).rev().map(|n| item(n, "over")).collect();
        let (b, o) = (
            json!({ "containers": base }),
            json!({ "containers": overlay }),
        );
        assert_eq!(merge(&b, &o), reference::merge(&b, &o));
        let mut top = o.clone();
        merge_under(&mut top, &b);
        assert_eq!(top.to_string(), reference::merge(&b, &o).to_string());
        let m = merge(&b, &o);
        assert_eq!(m["containers"].as_array().unwrap().len(), 40 + 30);
        assert_eq!(merge(&m, &o), m);
    }

    use crate::presets::strategies::{JsonShape, json_values};
    use proptest::prelude::*;

    fn json_value() -> impl Strategy<Value = Value> {
        json_values(JsonShape {
            ints: 4,
            strings: &["a", "b", "main"],
            keys: &[
                "name",
                "containers",
                "env",
                "ports",
                "containerPort",
                "args",
                "value",
                "x",
            ],
            depth: 4,
            nodes: 40,
            items: 4,
            entries: 4,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn merge_is_idempotent(a in json_value(), b in json_value()) {
            let m = merge(&a, &b);
            prop_assert_eq!(merge(&m, &b), m);
        }

        /// Both in-place forms give the copying definition's result, key order included.
        #[test]
        fn in_place_merges_agree_with_the_copying_definition(a in json_value(), b in json_value()) {
            let want = reference::merge(&a, &b).to_string();
            prop_assert_eq!(merge(&a, &b).to_string(), want.clone());
            let mut top = b.clone();
            merge_under(&mut top, &a);
            prop_assert_eq!(top.to_string(), want);
        }

        #[test]
        fn merge_onto_nothing_is_the_overlay_without_nulls(b in json_value()) {
            prop_assert_eq!(merge(&Value::Null, &b), if b.is_null() { Value::Null } else { strip_nulls(&b) });
        }
    }

    /// The rules written the obvious way (every value copied), as the in-place merge's oracle.
    mod reference {
        use super::super::{item_key, merge_key};
        use serde_json::{Map, Value};

        pub fn merge(base: &Value, overlay: &Value) -> Value {
            value(None, base, overlay)
        }

        fn value(field: Option<&str>, base: &Value, overlay: &Value) -> Value {
            match (base, overlay) {
                (_, Value::Null) => base.clone(),
                (Value::Object(b), Value::Object(o)) => Value::Object(maps(b, o)),
                (Value::Array(b), Value::Array(o)) => match field.and_then(merge_key) {
                    Some(key)
                        if b.iter().chain(o).all(|i| item_key(i, key).is_some())
                            && o.iter().enumerate().all(|(i, x)| {
                                o[..i].iter().all(|y| item_key(x, key) != item_key(y, key))
                            }) =>
                    {
                        // apimachinery's mergeSlice + normalizeElementOrder: the patch's
                        // items (merged) in patch order, the server-only ones interleaved by
                        // mergeSortedSlice on their positions in the base.
                        let mut used = vec![false; b.len()];
                        let mut right: Vec<(Option<usize>, Value)> = Vec::new();
                        for x in o {
                            match b.iter().position(|y| item_key(y, key) == item_key(x, key)) {
                                Some(i) => {
                                    used[i] = true;
                                    right.push((Some(i), value(None, &b[i], x)));
                                }
                                None => right.push((None, strip(x))),
                            }
                        }
                        let left: Vec<(usize, Value)> = b
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| !used[*i])
                            .map(|(i, y)| (i, y.clone()))
                            .collect();
                        let (mut i, mut j) = (0, 0);
                        let mut out = Vec::new();
                        while i < left.len() || j < right.len() {
                            let take_left = if i >= left.len() {
                                false
                            } else if j >= right.len() {
                                true
                            } else {
                                matches!(right[j].0, Some(ri) if left[i].0 < ri)
                            };
                            if take_left {
                                out.push(left[i].1.clone());
                                i += 1;
                            } else {
                                out.push(right[j].1.clone());
                                j += 1;
                            }
                        }
                        Value::Array(out)
                    }
                    _ => strip(overlay),
                },
                _ => strip(overlay),
            }
        }

        fn maps(base: &Map<String, Value>, overlay: &Map<String, Value>) -> Map<String, Value> {
            let mut out = Map::new();
            for (k, b) in base {
                let v = match overlay.get(k) {
                    Some(o) => value(Some(k), b, o),
                    None => b.clone(),
                };
                out.insert(k.clone(), v);
            }
            for (k, o) in overlay {
                if !base.contains_key(k) && !o.is_null() {
                    out.insert(k.clone(), strip(o));
                }
            }
            out
        }

        fn strip(v: &Value) -> Value {
            match v {
                Value::Object(m) => Value::Object(
                    m.iter()
                        .filter(|(_, v)| !v.is_null())
                        .map(|(k, v)| (k.clone(), strip(v)))
                        .collect(),
                ),
                Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
                other => other.clone(),
            }
        }
    }
}
