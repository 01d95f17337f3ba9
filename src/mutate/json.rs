//! Typed access to `serde_json` values with field paths in errors. `null` counts as absent.

use serde_json::{Map, Value};

use super::MutateError;

pub(crate) type Obj = Map<String, Value>;

fn wrong(path: &str, expected: &'static str) -> MutateError {
    MutateError::WrongType {
        path: if path.is_empty() {
            "<root>".into()
        } else {
            path.to_string()
        },
        expected,
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(crate) fn as_obj<'a>(v: &'a Value, path: &str) -> Result<&'a Obj, MutateError> {
    v.as_object().ok_or_else(|| wrong(path, "an object"))
}

pub(crate) fn as_obj_mut<'a>(v: &'a mut Value, path: &str) -> Result<&'a mut Obj, MutateError> {
    v.as_object_mut().ok_or_else(|| wrong(path, "an object"))
}

/// A child object; `None` when absent or null.
pub(crate) fn child<'a>(m: &'a Obj, key: &str, path: &str) -> Result<Option<&'a Obj>, MutateError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj(v, path).map(Some),
    }
}

pub(crate) fn child_mut<'a>(
    m: &'a mut Obj,
    key: &str,
    path: &str,
) -> Result<Option<&'a mut Obj>, MutateError> {
    match m.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj_mut(v, path).map(Some),
    }
}

/// A child object, created (`{}`) when absent or null.
pub(crate) fn ensure_obj<'a>(
    m: &'a mut Obj,
    key: &str,
    path: &str,
) -> Result<&'a mut Obj, MutateError> {
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Obj::new());
    }
    as_obj_mut(slot, path)
}

/// A child array, created (`[]`) when absent or null.
pub(crate) fn ensure_arr<'a>(
    m: &'a mut Obj,
    key: &str,
    path: &str,
) -> Result<&'a mut Vec<Value>, MutateError> {
    let slot = m.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    slot.as_array_mut().ok_or_else(|| wrong(path, "an array"))
}

pub(crate) fn get_arr<'a>(
    m: &'a Obj,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, MutateError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_array()
            .map(Some)
            .ok_or_else(|| wrong(path, "an array")),
    }
}

pub(crate) fn get_str<'a>(
    m: &'a Obj,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, MutateError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_str().map(Some).ok_or_else(|| wrong(path, "a string")),
    }
}

pub(crate) fn get_bool(m: &Obj, key: &str, path: &str) -> Result<Option<bool>, MutateError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| wrong(path, "a boolean")),
    }
}

pub(crate) fn get_int(m: &Obj, key: &str, path: &str) -> Result<Option<i64>, MutateError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| wrong(path, "an integer")),
    }
}

/// Whether `key` holds a non-null value.
pub(crate) fn has(m: &Obj, key: &str) -> bool {
    m.get(key).is_some_and(|v| !v.is_null())
}

/// Sets `key` when absent or null. Returns whether it was set.
pub(crate) fn set_default(m: &mut Obj, key: &str, value: Value) -> bool {
    if has(m, key) {
        return false;
    }
    m.insert(key.to_string(), value);
    true
}

/// Strings of an array of strings.
pub(crate) fn str_list(v: &[Value], path: &str) -> Result<Vec<String>, MutateError> {
    v.iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| wrong(&format!("{path}[{i}]"), "a string"))
        })
        .collect()
}
