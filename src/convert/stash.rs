//! The stash: an annotation that keeps, on an object of one version, what that version has no
//! field for, so that the next conversion back restores it.
//!
//! # Format
//!
//! The annotation value is a compact JSON object whose keys are RFC 6901 JSON Pointers into the
//! object (`/spec/kvCacheOffloading`, `/status/addresses/0/origin`,
//! `/metadata/annotations/internal.serving.kserve.io~1model-criticality`, ...) and whose values
//! are the JSON values that were removed there, verbatim:
//!
//! ```json
//! {"/spec/kvCacheOffloading":{"cpu":"100Gi"},"/status/workloads":{"primary":{"kind":"Deployment","name":"d"}}}
//! ```
//!
//! Two keys are used, one per direction:
//! - [`V1ALPHA2_FIELDS`] on `v1alpha1` objects: `v1alpha2` data that `v1alpha1` cannot express.
//! - [`V1ALPHA1_FIELDS`] on `v1alpha2` objects: `v1alpha1` data that KServe's criticality
//!   annotations cannot express (for example a criticality that is not a non-empty string).
//!
//! # Restoring
//!
//! An entry is put back only where the slot is free and its parent still exists (an object, or
//! an array holding that index): a client of the older version that deleted `spec.prefill` also
//! deleted the `spec.prefill.kvCacheOffloading` it could not see, and we do not resurrect it.
//! The one exception is `metadata.annotations`, which is created when needed.

use serde_json::{Map, Value};

/// KServe's key for `spec.model.criticality` on `v1alpha2` objects (the plain string).
pub const MODEL_CRITICALITY: &str = "internal.serving.kserve.io/model-criticality";
/// KServe's key for the LoRA adapters' criticalities on `v1alpha2` objects: a JSON object from
/// adapter index (decimal string) to criticality, keys sorted as strings (Go's `encoding/json`
/// of a `map[int]string`), e.g. `{"0":"Critical","2":"Sheddable"}`.
pub const LORA_CRITICALITIES: &str = "internal.serving.kserve.io/lora-criticalities";
/// Stash on `v1alpha1` objects of the `v1alpha2`-only fields (see the module docs).
pub const V1ALPHA2_FIELDS: &str = "llmisvc.serving.kserve.io/v1alpha2-fields";
/// Stash on `v1alpha2` objects of the `v1alpha1`-only data KServe's annotations cannot carry.
pub const V1ALPHA1_FIELDS: &str = "llmisvc.serving.kserve.io/v1alpha1-fields";

/// The pointer prefix of entries that are annotations (restored into the annotation map).
pub const ANNOTATIONS_POINTER: &str = "/metadata/annotations";

/// Removed values by JSON Pointer, in the order they were removed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stash(Map<String, Value>);

impl Stash {
    /// An empty stash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a stash annotation value; `None` when it is not a JSON object (then it is not ours
    /// to interpret and stays an ordinary annotation).
    pub fn parse(annotation: &str) -> Option<Self> {
        match serde_json::from_str::<Value>(annotation) {
            Ok(Value::Object(map)) => Some(Self(map)),
            _ => None,
        }
    }

    /// The annotation value (compact JSON).
    pub fn to_annotation(&self) -> String {
        Value::Object(self.0.clone()).to_string()
    }

    /// Whether nothing is stashed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Records `value` as removed from `pointer`.
    pub fn insert(&mut self, pointer: String, value: Value) {
        self.0.insert(pointer, value);
    }

    /// Takes the entry at exactly `pointer`.
    pub fn take(&mut self, pointer: &str) -> Option<Value> {
        self.0.shift_remove(pointer)
    }

    /// All entries, in order.
    pub fn into_entries(self) -> impl Iterator<Item = (String, Value)> {
        self.0.into_iter()
    }
}

/// Builds a JSON Pointer from unescaped tokens.
pub fn pointer<S: AsRef<str>>(tokens: &[S]) -> String {
    let mut out = String::new();
    for token in tokens {
        out.push('/');
        out.push_str(&token.as_ref().replace('~', "~0").replace('/', "~1"));
    }
    out
}

/// Splits a JSON Pointer into unescaped tokens; `None` if it is not a pointer.
pub fn parse_pointer(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Moves every value matching `pattern` out of `root` into `stash`. A pattern is a list of
/// object keys; `*` stands for every index of an array. Order of the remaining keys is kept.
pub fn move_matching(root: &mut Value, pattern: &[&str], stash: &mut Stash) {
    remove_matching(root, pattern, &mut |tokens, v| {
        stash.insert(pointer(tokens), v)
    });
}

/// Removes every value matching `pattern` (see [`move_matching`]) and hands each, with the
/// tokens of its location, to `sink`.
pub fn remove_matching(root: &mut Value, pattern: &[&str], sink: &mut dyn FnMut(&[String], Value)) {
    let mut prefix = Vec::new();
    walk_remove(root, pattern, &mut prefix, sink);
}

fn walk_remove(
    node: &mut Value,
    pattern: &[&str],
    prefix: &mut Vec<String>,
    sink: &mut dyn FnMut(&[String], Value),
) {
    let Some((&head, rest)) = pattern.split_first() else {
        return;
    };
    if head == "*" {
        if let Value::Array(items) = node {
            for (i, item) in items.iter_mut().enumerate() {
                prefix.push(i.to_string());
                walk_remove(item, rest, prefix, sink);
                prefix.pop();
            }
        }
        return;
    }
    let Value::Object(map) = node else {
        return;
    };
    if rest.is_empty() {
        if let Some(v) = map.shift_remove(head) {
            prefix.push(head.to_string());
            sink(prefix, v);
            prefix.pop();
        }
    } else if let Some(child) = map.get_mut(head) {
        prefix.push(head.to_string());
        walk_remove(child, rest, prefix, sink);
        prefix.pop();
    }
}

/// A mutable reference to the value at `tokens`, if every step exists.
pub fn get_mut<'a, S: AsRef<str>>(root: &'a mut Value, tokens: &[S]) -> Option<&'a mut Value> {
    let mut node = root;
    for token in tokens {
        node = match node {
            Value::Object(map) => map.get_mut(token.as_ref())?,
            Value::Array(items) => items.get_mut(index(token.as_ref())?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// Puts `value` at `tokens` if the parent exists and the slot is free (an object key that is
/// absent). Returns whether it was put.
pub fn restore<S: AsRef<str>>(root: &mut Value, tokens: &[S], value: Value) -> bool {
    let Some((last, parent)) = tokens.split_last() else {
        return false;
    };
    match get_mut(root, parent) {
        Some(Value::Object(map)) if !map.contains_key(last.as_ref()) => {
            map.insert(last.as_ref().to_string(), value);
            true
        }
        _ => false,
    }
}

/// A canonical array index token (`0`, `17`; not `01` or `-`).
pub fn index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    if !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_escapes_and_parses_back() {
        let p = pointer(&["metadata", "annotations", "a/b~c"]);
        assert_eq!(p, "/metadata/annotations/a~1b~0c");
        assert_eq!(
            parse_pointer(&p).unwrap(),
            vec!["metadata", "annotations", "a/b~c"]
        );
        assert_eq!(parse_pointer("no-slash"), None);
    }

    #[test]
    fn move_matching_walks_arrays() {
        let mut v = json!({"status": {"addresses": [{"url": "a", "origin": 1}, {"url": "b"}, {"origin": 3}]}});
        let mut s = Stash::new();
        move_matching(&mut v, &["status", "addresses", "*", "origin"], &mut s);
        assert_eq!(
            v,
            json!({"status": {"addresses": [{"url": "a"}, {"url": "b"}, {}]}})
        );
        assert_eq!(
            s.to_annotation(),
            r#"{"/status/addresses/0/origin":1,"/status/addresses/2/origin":3}"#
        );
    }

    #[test]
    fn restore_needs_parent_and_free_slot() {
        let mut v = json!({"spec": {"a": 1, "list": [{}]}});
        assert!(restore(&mut v, &["spec", "b"], json!(2)));
        assert!(!restore(&mut v, &["spec", "a"], json!(3)));
        assert!(!restore(&mut v, &["spec", "gone", "x"], json!(4)));
        assert!(restore(&mut v, &["spec", "list", "0", "x"], json!(5)));
        assert!(!restore(&mut v, &["spec", "list", "1", "x"], json!(6)));
        assert_eq!(v, json!({"spec": {"a": 1, "list": [{"x": 5}], "b": 2}}));
    }

    #[test]
    fn index_is_canonical() {
        assert_eq!(index("0"), Some(0));
        assert_eq!(index("12"), Some(12));
        assert_eq!(index("01"), None);
        assert_eq!(index("-1"), None);
        assert_eq!(index(""), None);
    }
}
