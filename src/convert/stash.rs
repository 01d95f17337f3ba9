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
//! When an entry was removed from an element of an array (a LoRA adapter's `confidential`, a
//! status address's `origin`), the key `"match"` (not a pointer: pointers start with `/`) maps
//! that element's pointer to its identity, the element's `name`, `uri` and `url` where present:
//!
//! ```json
//! {"/spec/model/lora/adapters/1/confidential":{"enabled":true},"match":{"/spec/model/lora/adapters/1":{"name":"b","uri":"hf://org/b"}}}
//! ```
//!
//! The entry goes back to the element at the same index if it still has that identity, else to
//! the first element that has it, else nowhere: a client that removed or reordered adapters
//! does not get one adapter's settings on another.
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

/// The entry recording `metadata: null` on an object whose stash had to create `metadata`
/// (given back as `null` by the reverse conversion).
pub const METADATA_POINTER: &str = "/metadata";

/// Fields that identify an element of an array (a LoRA adapter, a status address), recorded so
/// an entry goes back to the same element even if a client reordered or removed elements.
const IDENTITY_FIELDS: [&str; 3] = ["name", "uri", "url"];

/// The key of the element guards in the annotation (not a pointer: pointers start with `/`).
const MATCH_KEY: &str = "match";

/// Removed values by JSON Pointer, in the order they were removed, and the identity of the
/// array elements they were removed from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stash {
    entries: Map<String, Value>,
    /// Pointer of an array element (as it was) to its identity fields.
    guards: Map<String, Value>,
}

impl Stash {
    /// An empty stash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads a stash annotation value; `None` when it is not one we could have written (not a
    /// JSON object, empty, or with a key that is neither a pointer nor `"match"` with an
    /// object): then it is someone's own value under our key, which the conversion carries
    /// verbatim (see [`crate::convert`]), never reinterprets.
    pub fn parse(annotation: &str) -> Option<Self> {
        let Ok(Value::Object(map)) = serde_json::from_str::<Value>(annotation) else {
            return None;
        };
        let ours =
            |(k, v): (&String, &Value)| k.starts_with('/') || (k == MATCH_KEY && v.is_object());
        if !map.keys().any(|k| k.starts_with('/')) || !map.iter().all(ours) {
            return None;
        }
        let mut stash = Self::new();
        for (k, v) in map {
            if k.starts_with('/') {
                stash.entries.insert(k, v);
            } else if let Value::Object(guards) = v {
                stash.guards = guards;
            }
        }
        Some(stash)
    }

    /// Whether an entry is recorded at exactly `pointer`.
    pub fn contains(&self, pointer: &str) -> bool {
        self.entries.contains_key(pointer)
    }

    /// The annotation value (compact JSON): the entries, then `"match"` if any element was
    /// involved.
    pub fn to_annotation(&self) -> String {
        let mut map = self.entries.clone();
        if !self.guards.is_empty() {
            map.insert(MATCH_KEY.into(), Value::Object(self.guards.clone()));
        }
        Value::Object(map).to_string()
    }

    /// Whether nothing is stashed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records `value` as removed from `pointer` (not inside an array).
    pub fn insert(&mut self, pointer: String, value: Value) {
        self.entries.insert(pointer, value);
    }

    /// Records `value` as removed from `tokens` in `root`, with the identity of every array
    /// element on the way.
    pub fn put(&mut self, root: &Value, tokens: &[String], value: Value) {
        let mut node = root;
        for (i, token) in tokens.iter().enumerate() {
            let next = match node {
                Value::Object(map) => map.get(token),
                Value::Array(items) => {
                    let element = index(token).and_then(|n| items.get(n));
                    if let Some(Value::Object(element)) = element {
                        let identity: Map<String, Value> = IDENTITY_FIELDS
                            .iter()
                            .filter_map(|k| element.get(*k).map(|v| ((*k).to_string(), v.clone())))
                            .collect();
                        if !identity.is_empty() {
                            self.guards
                                .insert(pointer(&tokens[..=i]), Value::Object(identity));
                        }
                    }
                    element
                }
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        self.entries.insert(pointer(tokens), value);
    }

    /// Takes the entry at exactly `pointer`.
    pub fn take(&mut self, pointer: &str) -> Option<Value> {
        self.entries.shift_remove(pointer)
    }

    /// All entries, in order, each with its location in `root` now: an array element recorded
    /// with an identity is looked up by it (the same index if it still matches, else the first
    /// element that does); `None` when the element is gone.
    pub fn resolve(self, root: &Value) -> Vec<(Option<Vec<String>>, Value)> {
        let guards = self.guards;
        self.entries
            .into_iter()
            .map(|(ptr, v)| {
                let resolved = parse_pointer(&ptr).and_then(|tokens| {
                    let mut out = Vec::with_capacity(tokens.len());
                    let mut node = root;
                    for (i, token) in tokens.iter().enumerate() {
                        let token = match node {
                            Value::Array(items) => match guards.get(&pointer(&tokens[..=i])) {
                                Some(guard) => {
                                    let at = index(token)?;
                                    let found = if items.get(at).is_some_and(|e| matches(e, guard))
                                    {
                                        at
                                    } else {
                                        items.iter().position(|e| matches(e, guard))?
                                    };
                                    found.to_string()
                                }
                                None => token.clone(),
                            },
                            _ => token.clone(),
                        };
                        node = match node {
                            Value::Object(map) => map.get(&token).unwrap_or(&Value::Null),
                            Value::Array(items) => index(&token)
                                .and_then(|n| items.get(n))
                                .unwrap_or(&Value::Null),
                            _ => &Value::Null,
                        };
                        out.push(token);
                    }
                    Some(out)
                });
                (resolved, v)
            })
            .collect()
    }
}

/// Whether `element` carries every identity field of `guard`.
fn matches(element: &Value, guard: &Value) -> bool {
    match (element, guard) {
        (Value::Object(e), Value::Object(g)) => g.iter().all(|(k, v)| e.get(k) == Some(v)),
        _ => false,
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
    for (tokens, v) in remove_matching(root, pattern) {
        stash.put(root, &tokens, v);
    }
}

/// Removes every value matching `pattern` (see [`move_matching`]) and returns each with the
/// tokens of its location.
pub fn remove_matching(root: &mut Value, pattern: &[&str]) -> Vec<(Vec<String>, Value)> {
    let mut removed = Vec::new();
    let mut prefix = Vec::new();
    walk_remove(root, pattern, &mut prefix, &mut |tokens, v| {
        removed.push((tokens.to_vec(), v))
    });
    removed
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
    fn move_matching_walks_arrays_and_records_identity() {
        let mut v = json!({"status": {"addresses": [{"url": "a", "origin": 1}, {"url": "b"}, {"origin": 3}]}});
        let mut s = Stash::new();
        move_matching(&mut v, &["status", "addresses", "*", "origin"], &mut s);
        assert_eq!(
            v,
            json!({"status": {"addresses": [{"url": "a"}, {"url": "b"}, {}]}})
        );
        assert_eq!(
            s.to_annotation(),
            r#"{"/status/addresses/0/origin":1,"/status/addresses/2/origin":3,"match":{"/status/addresses/0":{"url":"a"}}}"#
        );
        assert_eq!(Stash::parse(&s.to_annotation()), Some(s));
    }

    #[test]
    fn resolve_follows_identity() {
        let root = json!({"spec": {"list": [{"name": "a"}, {"name": "b"}]}});
        let mut s = Stash::new();
        s.put(
            &root,
            &["spec".into(), "list".into(), "1".into(), "x".into()],
            json!(1),
        );
        s.put(
            &root,
            &["spec".into(), "list".into(), "0".into(), "x".into()],
            json!(0),
        );
        // A client removed "a": "b" moved to index 0, "a"'s entry has nowhere to go.
        let edited = json!({"spec": {"list": [{"name": "b"}]}});
        let resolved = s.clone().resolve(&edited);
        assert_eq!(
            resolved,
            vec![
                (
                    Some(vec!["spec".into(), "list".into(), "0".into(), "x".into()]),
                    json!(1)
                ),
                (None, json!(0)),
            ]
        );
        // Unchanged: same places.
        let resolved = s.resolve(&root);
        assert_eq!(resolved[0].0.as_ref().unwrap()[2], "1");
        assert_eq!(resolved[1].0.as_ref().unwrap()[2], "0");
    }

    #[test]
    fn parse_ignores_what_is_not_ours() {
        assert_eq!(Stash::parse("[1]"), None);
        assert_eq!(Stash::parse("not json"), None);
        // Only what we could have written is ours: a pointer entry at least, and nothing else
        // than pointers and an object under "match".
        assert_eq!(Stash::parse(r#"{"/a":1,"other":2}"#), None);
        assert_eq!(Stash::parse(r#"{"/a":1,"match":3}"#), None);
        assert_eq!(Stash::parse("{}"), None);
        assert_eq!(Stash::parse(r#"{"match":{}}"#), None);
        let s = Stash::parse(r#"{"/a":1,"match":{"/b":{"name":"x"}}}"#).unwrap();
        assert_eq!(s.to_annotation(), r#"{"/a":1,"match":{"/b":{"name":"x"}}}"#);
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
