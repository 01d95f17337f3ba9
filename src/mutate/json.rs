//! Typed access to `serde_json` values with field paths in errors. `null` counts as absent.
//!
//! Field paths are [`Path`]s: small borrowed descriptions rendered to a string only when an
//! error is returned, so the happy path never formats or allocates a path.

use std::fmt;

use serde_json::{Map, Value};

use super::MutateError;

pub(crate) type Obj = Map<String, Value>;

/// A field path, rendered (`spec.template.containers[0].args`) only for an error message.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Path<'a> {
    /// A literal path; `""` is the root.
    Lit(&'a str),
    /// `parent.key` (just `key` under the root).
    Key(&'a Path<'a>, &'a str),
    /// `parent[i]`.
    Index(&'a Path<'a>, usize),
    /// `parent[key]` (annotation keys).
    Sub(&'a Path<'a>, &'a str),
    /// `base.list[i]`: an element of a list under a literal path, without a parent node so it
    /// can be returned (containers of a pod spec).
    Item(&'a str, &'a str, usize),
}

impl<'a> Path<'a> {
    /// The root object.
    pub const ROOT: Path<'static> = Path::Lit("");

    /// `self.key`.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    /// `self[i]`.
    pub fn idx(&'a self, i: usize) -> Path<'a> {
        Path::Index(self, i)
    }

    fn write_to(&self, out: &mut String) {
        match *self {
            Path::Lit(s) => out.push_str(s),
            Path::Key(parent, key) => {
                parent.write_to(out);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Path::Index(parent, i) => {
                parent.write_to(out);
                push_index(out, i);
            }
            Path::Sub(parent, key) => {
                parent.write_to(out);
                out.push('[');
                out.push_str(key);
                out.push(']');
            }
            Path::Item(base, list, i) => {
                out.push_str(base);
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(list);
                push_index(out, i);
            }
        }
    }

    /// The rendered path (`""` for the root).
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }
}

fn push_index(out: &mut String, i: usize) {
    use fmt::Write;
    let _ = write!(out, "[{i}]");
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

pub(crate) fn wrong(path: &Path, expected: &'static str) -> MutateError {
    let path = path.render();
    MutateError::WrongType {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path
        },
        expected,
    }
}

/// `v` as an object; `path` is the path of `v` itself.
pub(crate) fn as_obj<'a>(v: &'a Value, path: &Path) -> Result<&'a Obj, MutateError> {
    v.as_object().ok_or_else(|| wrong(path, "an object"))
}

pub(crate) fn as_obj_mut<'a>(v: &'a mut Value, path: &Path) -> Result<&'a mut Obj, MutateError> {
    v.as_object_mut().ok_or_else(|| wrong(path, "an object"))
}

/// Objects up to this size are searched linearly: cheaper than hashing the key (most objects of
/// a service are small; the lookup finds the same entry either way, keys being unique).
const SCAN: usize = 16;

/// `m.get(key)`.
pub(crate) fn get<'a>(m: &'a Obj, key: &str) -> Option<&'a Value> {
    if m.len() <= SCAN {
        m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

/// `m.get_mut(key)`.
pub(crate) fn get_mut<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Value> {
    if m.len() <= SCAN {
        m.iter_mut()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        m.get_mut(key)
    }
}

// The accessors below take the owner `m`, the `key` and the path `at` of the owner: the field's
// path is `at.key`, built only for an error.

/// A child object; `None` when absent or null.
pub(crate) fn child<'a>(m: &'a Obj, key: &str, at: &Path) -> Result<Option<&'a Obj>, MutateError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj(v, &at.key(key)).map(Some),
    }
}

pub(crate) fn child_mut<'a>(
    m: &'a mut Obj,
    key: &str,
    at: &Path,
) -> Result<Option<&'a mut Obj>, MutateError> {
    match get_mut(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj_mut(v, &at.key(key)).map(Some),
    }
}

/// The slot of `key`, inserted (null, at the end) only when absent: no key allocation when the
/// key exists. Always `Some` (the borrow checker does not allow returning the first lookup, so
/// the present case looks the key up a second time).
fn slot<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Value> {
    if get(m, key).is_none() {
        return Some(m.entry(key.to_string()).or_insert(Value::Null));
    }
    get_mut(m, key)
}

/// A child object, created (`{}`) when absent or null.
pub(crate) fn ensure_obj<'a>(
    m: &'a mut Obj,
    key: &str,
    at: &Path,
) -> Result<&'a mut Obj, MutateError> {
    let Some(slot) = slot(m, key) else {
        return Err(wrong(&at.key(key), "an object"));
    };
    if slot.is_null() {
        *slot = Value::Object(Obj::new());
    }
    as_obj_mut(slot, &at.key(key))
}

/// A child array, created (`[]`) when absent or null.
pub(crate) fn ensure_arr<'a>(
    m: &'a mut Obj,
    key: &str,
    at: &Path,
) -> Result<&'a mut Vec<Value>, MutateError> {
    let Some(slot) = slot(m, key) else {
        return Err(wrong(&at.key(key), "an array"));
    };
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut()
        .ok_or_else(|| wrong(&at.key(key), "an array"))
}

pub(crate) fn get_arr<'a>(
    m: &'a Obj,
    key: &str,
    at: &Path,
) -> Result<Option<&'a Vec<Value>>, MutateError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| wrong(&at.key(key), "an array")),
    }
}

pub(crate) fn get_str<'a>(
    m: &'a Obj,
    key: &str,
    at: &Path,
) -> Result<Option<&'a str>, MutateError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| wrong(&at.key(key), "a string")),
    }
}

pub(crate) fn get_bool(m: &Obj, key: &str, at: &Path) -> Result<Option<bool>, MutateError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| wrong(&at.key(key), "a boolean")),
    }
}

pub(crate) fn get_int(m: &Obj, key: &str, at: &Path) -> Result<Option<i64>, MutateError> {
    match get(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong(&at.key(key), "an integer")),
    }
}

/// Whether `key` holds a non-null value.
pub(crate) fn has(m: &Obj, key: &str) -> bool {
    get(m, key).is_some_and(|v| !v.is_null())
}

/// Sets `key` when absent or null. Returns whether it was set.
pub(crate) fn set_default(m: &mut Obj, key: &str, value: Value) -> bool {
    set_default_with(m, key, || value)
}

/// Sets `key` to `value()` when absent or null; `value` is only built when it is used.
pub(crate) fn set_default_with(m: &mut Obj, key: &str, value: impl FnOnce() -> Value) -> bool {
    if has(m, key) {
        return false;
    }
    m.insert(key.to_string(), value());
    true
}

/// Strings of an array of strings; `path` is the path of the array.
pub(crate) fn str_list(v: &[Value], path: &Path) -> Result<Vec<String>, MutateError> {
    v.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong(&path.idx(i), "a string"))
        })
        .collect()
}

/// Borrowed strings of an array of strings; `path` is the path of the array.
pub(crate) fn str_refs<'a>(v: &'a [Value], path: &Path) -> Result<Vec<&'a str>, MutateError> {
    v.iter()
        .enumerate()
        .map(|(i, x)| x.as_str().ok_or_else(|| wrong(&path.idx(i), "a string")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_the_formatted_ones() {
        let root = Path::ROOT;
        assert_eq!(root.render(), "");
        assert_eq!(root.key("kind").render(), "kind");
        let spec = Path::Lit("spec");
        let par = spec.key("parallelism");
        assert_eq!(par.key("tensor").render(), "spec.parallelism.tensor");
        let list = spec.key("containers");
        assert_eq!(list.idx(3).render(), "spec.containers[3]");
        let item = Path::Item("spec.template", "containers", 0);
        let args = item.key("args");
        assert_eq!(args.idx(1).render(), "spec.template.containers[0].args[1]");
        let ann = Path::Lit("metadata.annotations");
        assert_eq!(Path::Sub(&ann, "a/b").render(), "metadata.annotations[a/b]");
        assert_eq!(root.idx(2).render(), "[2]");
        let err = wrong(&root, "an object").to_string();
        assert_eq!(err, "<root>: expected an object");
    }

    #[test]
    fn ensure_keeps_order_and_replaces_null_in_place() {
        let mut m: Obj = serde_json::from_str(r#"{"a":null,"b":1}"#).unwrap();
        ensure_obj(&mut m, "a", &Path::ROOT).unwrap();
        ensure_arr(&mut m, "c", &Path::ROOT).unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(m["a"], serde_json::json!({}));
        let err = ensure_arr(&mut m, "b", &Path::Lit("spec")).unwrap_err();
        assert_eq!(err.to_string(), "spec.b: expected an array");
    }
}
