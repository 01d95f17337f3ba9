//! The one path-aware accessor over `serde_json::Value`, with one error type.
//!
//! Every module that reads a service (mutation, validation, presets, conversion, the server's
//! review decoding) reads it here. Rules:
//! - `null` counts as absent (Kubernetes' `omitempty` and strategic merge give `null` for
//!   "unset");
//! - a present value of the wrong JSON type is a [`JsonError::WrongType`] naming the field path
//!   (`spec.template.containers[0].args`), the JSON type expected and the one found, worded as
//!   [`type_name`];
//! - a required field that is absent is a [`JsonError::Missing`] ([`required`]).
//!
//! Field paths are [`Path`]s: small borrowed descriptions rendered to a string only when an
//! error is made, so reading a well-typed object never formats or allocates a path. Owned paths
//! ([`Seg`] lists, as the presets record where a template sits) render the same way.
//!
//! Also here: the one Kubernetes quantity parser ([`Quantity`]).

use std::fmt;

use serde_json::{Map, Value};

/// A JSON object.
pub type Obj = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a field could not be read: the field's path (`<root>` for the object itself) and what
/// was expected of it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The field holds another JSON type than the one expected.
    #[error("{path}: expected {expected}")]
    WrongType {
        /// Field path, e.g. `spec.parallelism.tensor`; `<root>` for the object itself.
        path: String,
        /// The JSON type expected, worded as [`type_name`] (`an integer`).
        expected: &'static str,
        /// The JSON type found ([`type_name`] of the value).
        found: &'static str,
        /// The value found, as Kubernetes shows it in `Invalid value: ...` ([`render`]).
        value: String,
    },
    /// A required field is absent (or null).
    #[error("{path} is missing")]
    Missing {
        /// Field path.
        path: String,
    },
}

/// Path of the object itself in an error.
pub const ROOT_NAME: &str = "<root>";

impl JsonError {
    /// The field path (`<root>` for the object itself).
    pub fn path(&self) -> &str {
        match self {
            JsonError::WrongType { path, .. } | JsonError::Missing { path } => path,
        }
    }

    /// The field path; `None` for the object itself.
    pub fn field(&self) -> Option<&str> {
        Some(self.path()).filter(|p| *p != ROOT_NAME)
    }

    /// The reason without the field path, worded as validation words it
    /// (`must be an integer, not a string`, `is missing`).
    pub fn detail(&self) -> String {
        match self {
            JsonError::WrongType {
                expected, found, ..
            } => format!("must be {expected}, not {found}"),
            JsonError::Missing { .. } => "is missing".to_string(),
        }
    }

    /// The value found ([`render`]ed), for `Invalid value: <value>`; `None` when missing.
    pub fn value(&self) -> Option<&str> {
        match self {
            JsonError::WrongType { value, .. } => Some(value),
            JsonError::Missing { .. } => None,
        }
    }
}

/// Renders a value as Kubernetes does in `Invalid value: ...`: JSON (strings quoted, numbers
/// and booleans bare), cut to 120 characters with `...`.
pub fn render(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// The JSON type of `v` as the errors word it: `null`, `a boolean`, `an integer`, `a number`
/// (not whole), `a string`, `a list`, `an object`.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => BOOLEAN,
        Value::Number(n) if n.is_i64() || n.is_u64() => INTEGER,
        Value::Number(_) => "a number",
        Value::String(_) => STRING,
        Value::Array(_) => LIST,
        Value::Object(_) => OBJECT,
    }
}

/// The expected-type words of the accessors.
pub const OBJECT: &str = "an object";
pub const LIST: &str = "a list";
pub const STRING: &str = "a string";
pub const BOOLEAN: &str = "a boolean";
pub const INTEGER: &str = "an integer";

fn render_or_root(path: &Path) -> String {
    let path = path.render();
    if path.is_empty() {
        ROOT_NAME.into()
    } else {
        path
    }
}

/// `found` at `path` is not `expected`.
pub fn wrong(path: &Path, expected: &'static str, found: &Value) -> JsonError {
    JsonError::WrongType {
        path: render_or_root(path),
        expected,
        found: type_name(found),
        value: render(found),
    }
}

/// A required value: `Missing` at `path` when `None`.
pub fn required<T>(v: Option<T>, path: &Path) -> Result<T, JsonError> {
    v.ok_or_else(|| JsonError::Missing {
        path: render_or_root(path),
    })
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

/// A field path, rendered (`spec.template.containers[0].args`) only for an error message.
#[derive(Clone, Copy, Debug)]
pub enum Path<'a> {
    /// A literal path; `""` is the root.
    Lit(&'a str),
    /// `parent.key` (just `key` under the root).
    Key(&'a Path<'a>, &'a str),
    /// `parent[i]`.
    Index(&'a Path<'a>, usize),
    /// `parent[key]` (map keys such as annotation keys, as Kubernetes writes them).
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

    /// `self[key]`.
    pub fn sub(&'a self, key: &'a str) -> Path<'a> {
        Path::Sub(self, key)
    }

    fn write_to(&self, out: &mut String) {
        match *self {
            Path::Lit(s) => out.push_str(s),
            Path::Key(parent, key) => {
                parent.write_to(out);
                push_key(out, key);
            }
            Path::Index(parent, i) => {
                parent.write_to(out);
                push_index(out, i);
            }
            Path::Sub(parent, key) => {
                parent.write_to(out);
                push_sub(out, key);
            }
            Path::Item(base, list, i) => {
                out.push_str(base);
                push_key(out, list);
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

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

fn push_index(out: &mut String, i: usize) {
    use fmt::Write;
    let _ = write!(out, "[{i}]");
}

fn push_sub(out: &mut String, key: &str) {
    out.push('[');
    out.push_str(key);
    out.push(']');
}

/// `path.key` (`key` when `path` is empty), for callers that keep rendered paths.
pub fn key_path(path: &str, key: &str) -> String {
    let mut out = path.to_string();
    push_key(&mut out, key);
    out
}

/// `path[i]`.
pub fn index_path(path: &str, i: usize) -> String {
    let mut out = path.to_string();
    push_index(&mut out, i);
    out
}

/// `path[key]` (map keys, as Kubernetes renders them).
pub fn sub_path(path: &str, key: &str) -> String {
    let mut out = path.to_string();
    push_sub(&mut out, key);
    out
}

/// One step of an owned path (where a preset's template sits).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// `.a[0].b` for `[Key(a), Index(0), Key(b)]` (the caller puts the base in front: `spec.a[0].b`).
pub fn render_segs(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        match s {
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => push_index(&mut out, *i),
        }
    }
    out
}

/// The value at `path` under `v`; `None` when a step is absent or of another type.
pub fn at_segs_mut<'a>(v: &'a mut Value, path: &[Seg]) -> Option<&'a mut Value> {
    let mut cur = v;
    for s in path {
        cur = match (s, cur) {
            (Seg::Key(k), Value::Object(m)) => m.get_mut(k)?,
            (Seg::Index(i), Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(cur)
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// `v` as an object; `path` is the path of `v` itself.
pub fn as_obj<'a>(v: &'a Value, path: &Path) -> Result<&'a Obj, JsonError> {
    v.as_object().ok_or_else(|| wrong(path, OBJECT, v))
}

/// `v` as a mutable object; `path` is the path of `v` itself.
pub fn as_obj_mut<'a>(v: &'a mut Value, path: &Path) -> Result<&'a mut Obj, JsonError> {
    match v {
        Value::Object(m) => Ok(m),
        other => Err(wrong(path, OBJECT, other)),
    }
}

/// Objects up to this size are searched linearly: cheaper than hashing the key (most objects of
/// a service are small; the lookup finds the same entry either way, keys being unique).
const SCAN: usize = 16;

/// `m.get(key)`.
pub fn get<'a>(m: &'a Obj, key: &str) -> Option<&'a Value> {
    if m.len() <= SCAN {
        m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
    } else {
        m.get(key)
    }
}

/// `m.get_mut(key)`.
pub fn get_mut<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Value> {
    if m.len() <= SCAN {
        m.iter_mut()
            .find(|(k, _)| k.as_str() == key)
            .map(|(_, v)| v)
    } else {
        m.get_mut(key)
    }
}

/// The value of `key`; `None` when absent or null.
pub fn present<'a>(m: &'a Obj, key: &str) -> Option<&'a Value> {
    get(m, key).filter(|v| !v.is_null())
}

/// Whether `key` holds a non-null value.
pub fn has(m: &Obj, key: &str) -> bool {
    present(m, key).is_some()
}

// The typed accessors take the owner `m`, the `key` and the path `at` of the owner: the field's
// path is `at.key`, built only for an error. `None` when absent or null.

/// The value of `key` converted by `conv`, or a [`JsonError::WrongType`] naming `expected`.
pub fn typed<'a, T>(
    m: &'a Obj,
    key: &str,
    at: &Path,
    expected: &'static str,
    conv: impl FnOnce(&'a Value) -> Option<T>,
) -> Result<Option<T>, JsonError> {
    match present(m, key) {
        None => Ok(None),
        Some(v) => conv(v)
            .map(Some)
            .ok_or_else(|| wrong(&at.key(key), expected, v)),
    }
}

/// A child object.
pub fn child<'a>(m: &'a Obj, key: &str, at: &Path) -> Result<Option<&'a Obj>, JsonError> {
    typed(m, key, at, OBJECT, Value::as_object)
}

/// A child list.
pub fn get_arr<'a>(m: &'a Obj, key: &str, at: &Path) -> Result<Option<&'a Vec<Value>>, JsonError> {
    typed(m, key, at, LIST, Value::as_array)
}

/// A string.
pub fn get_str<'a>(m: &'a Obj, key: &str, at: &Path) -> Result<Option<&'a str>, JsonError> {
    typed(m, key, at, STRING, Value::as_str)
}

/// A boolean.
pub fn get_bool(m: &Obj, key: &str, at: &Path) -> Result<Option<bool>, JsonError> {
    typed(m, key, at, BOOLEAN, Value::as_bool)
}

/// An integer (that fits `i64`).
pub fn get_int(m: &Obj, key: &str, at: &Path) -> Result<Option<i64>, JsonError> {
    typed(m, key, at, INTEGER, Value::as_i64)
}

/// The string at `key` of `v`, `""` when `v` is not an object or the field is absent or not a
/// string (lenient reading of envelopes: an AdmissionReview's `kind`, `uid`).
pub fn str_or_empty<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The object at the keys `path` under `v` (`None` when a step is absent or not an object).
pub fn obj_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Obj> {
    let mut cur = v;
    for k in path {
        cur = cur.get(k)?;
    }
    cur.as_object()
}

/// Strings of a list of strings; `path` is the path of the list.
pub fn str_list(v: &[Value], path: &Path) -> Result<Vec<String>, JsonError> {
    Ok(str_refs(v, path)?.into_iter().map(str::to_string).collect())
}

/// Borrowed strings of a list of strings; `path` is the path of the list.
pub fn str_refs<'a>(v: &'a [Value], path: &Path) -> Result<Vec<&'a str>, JsonError> {
    v.iter()
        .enumerate()
        .map(|(i, x)| x.as_str().ok_or_else(|| wrong(&path.idx(i), STRING, x)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Editing (unknown fields and key order kept)
// ---------------------------------------------------------------------------------------------

/// A child object, mutable.
pub fn child_mut<'a>(
    m: &'a mut Obj,
    key: &str,
    at: &Path,
) -> Result<Option<&'a mut Obj>, JsonError> {
    match get_mut(m, key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => as_obj_mut(v, &at.key(key)).map(Some),
    }
}

/// The slot of `key`, inserted (`empty`, at the end) when absent, replaced by `empty` when null:
/// no key allocation when the key exists. Always `Some` (the borrow checker does not allow
/// returning the first lookup, so the present case looks the key up a second time).
fn slot<'a>(m: &'a mut Obj, key: &str, empty: fn() -> Value) -> Option<&'a mut Value> {
    if get(m, key).is_none() {
        return Some(m.entry(key.to_string()).or_insert_with(empty));
    }
    let slot = get_mut(m, key)?;
    if slot.is_null() {
        *slot = empty();
    }
    Some(slot)
}

/// A child object, created (`{}`) when absent or null.
pub fn ensure_obj<'a>(m: &'a mut Obj, key: &str, at: &Path) -> Result<&'a mut Obj, JsonError> {
    match slot(m, key, || Value::Object(Obj::new())) {
        Some(v) => as_obj_mut(v, &at.key(key)),
        None => Err(wrong(&at.key(key), OBJECT, &Value::Null)),
    }
}

/// A child list, created (`[]`) when absent or null.
pub fn ensure_arr<'a>(
    m: &'a mut Obj,
    key: &str,
    at: &Path,
) -> Result<&'a mut Vec<Value>, JsonError> {
    match slot(m, key, || Value::Array(Vec::new())) {
        Some(Value::Array(a)) => Ok(a),
        other => Err(wrong(
            &at.key(key),
            LIST,
            other.map_or(&Value::Null, |v| &*v),
        )),
    }
}

/// Sets `key` when absent or null. Returns whether it was set.
pub fn set_default(m: &mut Obj, key: &str, value: Value) -> bool {
    set_default_with(m, key, || value)
}

/// Sets `key` to `value()` when absent or null; `value` is only built when it is used.
pub fn set_default_with(m: &mut Obj, key: &str, value: impl FnOnce() -> Value) -> bool {
    if has(m, key) {
        return false;
    }
    m.insert(key.to_string(), value());
    true
}

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

/// A Kubernetes quantity (`resource.Quantity`, k8s.io/apimachinery/pkg/api/resource): a signed
/// decimal number with an optional suffix, binary (`Ki Mi Gi Ti Pi Ei`), decimal SI
/// (`n u m k M G T P E`) or an exponent (`e3`, `E-2`). Held exactly, as `num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quantity {
    num: i128,
    /// A power of ten, > 0.
    den: i128,
}

impl Quantity {
    /// Parses a quantity string (surrounding white space ignored); `None` when it is not one or
    /// is too large to hold.
    pub fn parse(q: &str) -> Option<Quantity> {
        let q = q.trim();
        let split = q
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(q.len());
        let (number, suffix) = q.split_at(split);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int.is_empty() && frac.is_empty()
            || !all_digits(int)
            || !all_digits(frac)
            || int.len() + frac.len() > 30
        {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        // Binary suffixes are powers of 1024, decimal ones powers of 1000 (`n` = 10^-9).
        const BINARY: [&str; 6] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
        const DECIMAL: [&str; 10] = ["n", "u", "m", "", "k", "M", "G", "T", "P", "E"];
        let (pow2, pow10): (u32, i32) = if let Some(i) = BINARY.iter().position(|s| *s == suffix) {
            (10 * (i as u32 + 1), 0)
        } else if let Some(i) = DECIMAL.iter().position(|s| *s == suffix) {
            (0, 3 * (i as i32 - 3))
        } else if let Some(e) = suffix.strip_prefix(['e', 'E']) {
            (0, e.parse().ok()?)
        } else {
            return None;
        };
        let exp = pow10.checked_sub(i32::try_from(frac.len()).ok()?)?;
        let ten = |e: i32| 10i128.checked_pow(e.unsigned_abs());
        let mut num = mantissa.checked_mul(1i128.checked_shl(pow2)?)?;
        let mut den = 1;
        if exp >= 0 {
            num = num.checked_mul(ten(exp)?)?;
        } else {
            den = ten(exp)?;
        }
        Some(Quantity {
            num: if negative { -num } else { num },
            den,
        })
    }

    /// A quantity from JSON: a string, or a number (as Kubernetes accepts `cpu: 2`).
    pub fn of_value(v: &Value) -> Option<Quantity> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    /// The value rounded up to an integer (Go's `Quantity.Value()`), saturated to `i64`.
    pub fn ceil(&self) -> i64 {
        let q = self.num.div_euclid(self.den);
        let q = if self.num.rem_euclid(self.den) == 0 {
            q
        } else {
            q + 1
        };
        i64::try_from(q).unwrap_or(if q < 0 { i64::MIN } else { i64::MAX })
    }

    /// The value when it is a whole number that fits `i64` (`"2000m"` is 2, `"1500m"` none).
    pub fn whole(&self) -> Option<i64> {
        (self.num % self.den == 0)
            .then(|| i64::try_from(self.num / self.den).ok())
            .flatten()
    }

    /// Is it greater than zero?
    pub fn is_positive(&self) -> bool {
        self.num > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(ann.sub("a/b").render(), "metadata.annotations[a/b]");
        assert_eq!(root.idx(2).render(), "[2]");
        assert_eq!(key_path("", "spec"), "spec");
        assert_eq!(key_path("spec", "x"), "spec.x");
        assert_eq!(index_path("spec.x", 1), "spec.x[1]");
        assert_eq!(sub_path("spec.x", "a/b"), "spec.x[a/b]");
        let segs = [Seg::Key("a".into()), Seg::Index(0), Seg::Key("b".into())];
        assert_eq!(render_segs(&segs), ".a[0].b");
    }

    /// Every accessor's error names the field's full path, what was expected and what was found.
    #[test]
    fn errors_carry_the_path() {
        let v = json!({"spec": {"n": "x", "s": 1, "b": 1, "o": [], "l": {}, "z": null,
                       "args": ["a", 2]}});
        let root = as_obj(&v, &Path::ROOT).unwrap();
        let spec = child(root, "spec", &Path::ROOT).unwrap().unwrap();
        let at = Path::Lit("spec");
        let cases: [(Result<(), JsonError>, &str, &str, &str); 6] = [
            (get_int(spec, "n", &at).map(drop), "spec.n", INTEGER, STRING),
            (get_str(spec, "s", &at).map(drop), "spec.s", STRING, INTEGER),
            (
                get_bool(spec, "b", &at).map(drop),
                "spec.b",
                BOOLEAN,
                INTEGER,
            ),
            (child(spec, "o", &at).map(drop), "spec.o", OBJECT, LIST),
            (get_arr(spec, "l", &at).map(drop), "spec.l", LIST, OBJECT),
            (
                str_refs(spec["args"].as_array().unwrap(), &at.key("args")).map(drop),
                "spec.args[1]",
                STRING,
                INTEGER,
            ),
        ];
        for (got, path, expected, found) in cases {
            let e = got.unwrap_err();
            assert!(
                matches!(&e, JsonError::WrongType { path: p, expected: x, found: y, .. }
                    if p == path && *x == expected && *y == found),
                "{e:?}"
            );
            assert_eq!(e.to_string(), format!("{path}: expected {expected}"));
            assert_eq!(e.field(), Some(path));
        }
        // The value found, as Kubernetes shows it, and validation's wording.
        let e = get_int(spec, "n", &at).unwrap_err();
        assert_eq!(e.value(), Some("\"x\""));
        assert_eq!(e.detail(), "must be an integer, not a string");
        // null and absent are the same: nothing, no error.
        assert_eq!(get_int(spec, "z", &at), Ok(None));
        assert_eq!(get_int(spec, "absent", &at), Ok(None));
        let e = as_obj(&json!(1), &Path::ROOT).unwrap_err();
        assert_eq!(e.to_string(), "<root>: expected an object");
        assert_eq!(e.field(), None);
        let e = required(get_str(spec, "z", &at).unwrap(), &at.key("z")).unwrap_err();
        assert_eq!(e.to_string(), "spec.z is missing");
        assert_eq!(e.detail(), "is missing");
    }

    #[test]
    fn ensure_keeps_order_and_replaces_null_in_place() {
        let mut m: Obj = serde_json::from_str(r#"{"a":null,"b":1}"#).unwrap();
        ensure_obj(&mut m, "a", &Path::ROOT).unwrap();
        ensure_arr(&mut m, "c", &Path::ROOT).unwrap();
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(keys, ["a", "b", "c"]);
        assert_eq!(m["a"], json!({}));
        let err = ensure_arr(&mut m, "b", &Path::Lit("spec")).unwrap_err();
        assert_eq!(err.to_string(), "spec.b: expected a list");
    }

    #[test]
    fn type_names() {
        let cases = [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(1), "an integer"),
            (json!(1.5), "a number"),
            (json!("x"), "a string"),
            (json!([]), "a list"),
            (json!({}), "an object"),
        ];
        for (v, want) in cases {
            assert_eq!(type_name(&v), want, "{v}");
        }
    }

    #[test]
    fn quantities() {
        // (text, rounded up, whole)
        let cases = [
            ("2", Some(2), Some(2)),
            ("10Gi", Some(10 << 30), Some(10 << 30)),
            ("1.5k", Some(1500), Some(1500)),
            ("100m", Some(1), None),
            ("2000m", Some(2), Some(2)),
            ("1500m", Some(2), None),
            ("1e3", Some(1000), Some(1000)),
            ("1E-2", Some(1), None),
            (" 4 ", Some(4), Some(4)),
            ("-1", Some(-1), Some(-1)),
            ("-1.5", Some(-1), None),
            ("0", Some(0), Some(0)),
            ("0.0Gi", Some(0), Some(0)),
            ("1Ei", Some(1 << 60), Some(1 << 60)),
            ("3u", Some(1), None),
            ("2M", Some(2_000_000), Some(2_000_000)),
            ("1.5Ki", Some(1536), Some(1536)),
            ("x", None, None),
            ("", None, None),
            (".", None, None),
            ("1Q", None, None),
            ("1e999", None, None),
        ];
        for (text, ceil, whole) in cases {
            let q = Quantity::parse(text);
            assert_eq!(q.map(|q| q.ceil()), ceil, "{text:?}");
            assert_eq!(q.and_then(|q| q.whole()), whole, "{text:?}");
        }
        let of = |v: Value| Quantity::of_value(&v).and_then(|q| q.whole());
        assert_eq!(of(json!(2)), Some(2));
        assert_eq!(of(json!(2.0)), Some(2));
        assert_eq!(of(json!(-1)), Some(-1));
        assert_eq!(of(json!("1k")), Some(1000));
        assert_eq!(of(json!([])), None);
        assert!(Quantity::parse("1m").unwrap().is_positive());
        assert!(!Quantity::parse("0Gi").unwrap().is_positive());
    }
}
