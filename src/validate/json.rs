//! Reading user JSON without panicking: every accessor reports a wrong JSON type as a field
//! error and returns `None`, so the rules only ever see well-typed values.

use serde_json::{Map, Value};

use super::{ErrorKind, FieldError};

/// Appends `.key` to a path (or `key` to an empty one).
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Appends `[i]` to a path.
pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}

/// Appends `[key]` to a path (map keys, as Kubernetes renders them).
pub fn key(path: &str, k: &str) -> String {
    format!("{path}[{k}]")
}

/// Renders a value as Kubernetes does in `Invalid value: ...`: strings quoted, numbers and
/// booleans plain, objects and lists as compact JSON (cut at 120 characters).
pub fn render(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 120 {
        let cut: String = s.chars().take(117).collect();
        format!("{cut}...")
    } else {
        s
    }
}

/// Collects errors and warnings.
#[derive(Default, Debug)]
pub struct Sink {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
}

impl Sink {
    pub fn err(
        &mut self,
        kind: ErrorKind,
        field: impl Into<String>,
        value: Option<String>,
        detail: impl Into<String>,
    ) {
        self.errors.push(FieldError {
            kind,
            field: field.into(),
            value,
            detail: detail.into(),
        });
    }
    pub fn invalid(&mut self, field: impl Into<String>, value: &Value, detail: impl Into<String>) {
        self.err(ErrorKind::Invalid, field, Some(render(value)), detail);
    }
    pub fn invalid_int(&mut self, field: impl Into<String>, value: i64, detail: impl Into<String>) {
        self.err(ErrorKind::Invalid, field, Some(value.to_string()), detail);
    }
    pub fn invalid_str(
        &mut self,
        field: impl Into<String>,
        value: &str,
        detail: impl Into<String>,
    ) {
        self.err(
            ErrorKind::Invalid,
            field,
            Some(Value::String(value.to_string()).to_string()),
            detail,
        );
    }
    pub fn required(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.err(ErrorKind::Required, field, None, detail);
    }
    pub fn forbidden(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.err(ErrorKind::Forbidden, field, None, detail);
    }
    pub fn warn(&mut self, w: impl Into<String>) {
        self.warnings.push(w.into());
    }

    /// A wrong JSON type. The wording is shared with the PodSpec schema walk so that the same
    /// problem found twice is reported once (see [`Sink::dedup`]).
    pub fn wrong_type(&mut self, field: &str, value: &Value, expected: &str) {
        self.invalid(
            field,
            value,
            format!("must be {expected}, not {}", type_name(value)),
        );
    }

    /// Removes exact duplicates, keeping the first occurrence.
    pub fn dedup(&mut self) {
        let mut seen = std::collections::HashSet::new();
        self.errors.retain(|e| {
            seen.insert((
                e.kind.cause_type(),
                e.field.clone(),
                e.value.clone(),
                e.detail.clone(),
            ))
        });
        let mut seen = std::collections::HashSet::new();
        self.warnings.retain(|w| seen.insert(w.clone()));
    }
}

pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Typed, path-aware accessors on an optional object.
pub struct Obj<'a> {
    pub map: Option<&'a Map<String, Value>>,
    pub path: String,
}

impl<'a> Obj<'a> {
    pub fn none(path: impl Into<String>) -> Self {
        Obj {
            map: None,
            path: path.into(),
        }
    }

    /// Views `v` as an object; reports a type error unless it is an object (null = absent).
    pub fn of(v: Option<&'a Value>, path: impl Into<String>, s: &mut Sink) -> Self {
        let path = path.into();
        match v {
            None | Some(Value::Null) => Obj { map: None, path },
            Some(Value::Object(m)) => Obj { map: Some(m), path },
            Some(other) => {
                s.wrong_type(&path, other, "an object");
                Obj { map: None, path }
            }
        }
    }

    pub fn present(&self) -> bool {
        self.map.is_some()
    }

    pub fn path_of(&self, k: &str) -> String {
        child(&self.path, k)
    }

    /// The raw value (null counts as absent).
    pub fn raw(&self, k: &str) -> Option<&'a Value> {
        match self.map?.get(k) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn has(&self, k: &str) -> bool {
        self.raw(k).is_some()
    }

    pub fn obj(&self, k: &str, s: &mut Sink) -> Obj<'a> {
        Obj::of(self.raw(k), self.path_of(k), s)
    }

    pub fn int(&self, k: &str, s: &mut Sink) -> Option<i64> {
        let v = self.raw(k)?;
        match v.as_i64() {
            Some(i) => Some(i),
            None => {
                s.wrong_type(&self.path_of(k), v, "an integer");
                None
            }
        }
    }

    pub fn str(&self, k: &str, s: &mut Sink) -> Option<&'a str> {
        let v = self.raw(k)?;
        match v.as_str() {
            Some(x) => Some(x),
            None => {
                s.wrong_type(&self.path_of(k), v, "a string");
                None
            }
        }
    }

    pub fn bool(&self, k: &str, s: &mut Sink) -> Option<bool> {
        let v = self.raw(k)?;
        match v.as_bool() {
            Some(x) => Some(x),
            None => {
                s.wrong_type(&self.path_of(k), v, "a boolean");
                None
            }
        }
    }

    pub fn list(&self, k: &str, s: &mut Sink) -> Option<&'a Vec<Value>> {
        let v = self.raw(k)?;
        match v.as_array() {
            Some(x) => Some(x),
            None => {
                s.wrong_type(&self.path_of(k), v, "a list");
                None
            }
        }
    }

    /// A list of objects, each with its path; wrong elements are reported and skipped.
    pub fn objs(&self, k: &str, s: &mut Sink) -> Vec<(usize, Obj<'a>)> {
        let path = self.path_of(k);
        let Some(list) = self.list(k, s) else {
            return Vec::new();
        };
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| {
                let o = Obj::of(Some(v), index(&path, i), s);
                o.present().then_some((i, o))
            })
            .collect()
    }
}

/// Parses a whole-number quantity (`2`, `"2"`, `"2000m"`, `"1k"`); `None` when it is not one.
pub fn whole_quantity(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            let (num, mult, div): (&str, i64, i64) = if let Some(n) = s.strip_suffix('m') {
                (n, 1, 1000)
            } else if let Some(n) = s.strip_suffix('k') {
                (n, 1000, 1)
            } else {
                (s, 1, 1)
            };
            if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 15 {
                return None;
            }
            let n: i64 = num.parse().ok()?;
            let n = n.checked_mul(mult)?;
            (n % div == 0).then_some(n / div)
        }
        _ => None,
    }
}
