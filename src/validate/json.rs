//! Reading user JSON without panicking, through [`crate::model::json`]: every accessor reports a
//! wrong JSON type as a field error and returns `None`, so the rules only ever see well-typed
//! values.

use serde_json::{Map, Value};

use super::{ErrorKind, FieldError};
use crate::model::json::{self as model, JsonError, Path};
pub use crate::model::json::{
    index_path as index, key_path as child, render, sub_path as key, type_name,
};

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
    /// Exactly one of two fields under `field` (`present`): both is `Forbidden` (`both`),
    /// neither `Required` (`neither`).
    pub fn exactly_one(&mut self, field: &str, present: [bool; 2], both: &str, neither: &str) {
        match present {
            [true, true] => self.forbidden(field, both),
            [false, false] => self.required(field, neither),
            _ => {}
        }
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

    /// A [`JsonError`] about `value`, as [`Sink::wrong_type`].
    pub fn json_error(&mut self, e: &JsonError, value: &Value) {
        match e {
            JsonError::WrongType { path, expected, .. } => self.wrong_type(path, value, expected),
            JsonError::Missing { path } => self.required(path.as_str(), "is required"),
        }
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
                s.wrong_type(&path, other, model::OBJECT);
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
        model::present(self.map?, k)
    }

    pub fn has(&self, k: &str) -> bool {
        self.raw(k).is_some()
    }

    pub fn obj(&self, k: &str, s: &mut Sink) -> Obj<'a> {
        Obj::of(self.raw(k), self.path_of(k), s)
    }

    /// The field read by `read` ([`crate::model::json`]); a wrong type is reported, `None`.
    fn read<T>(
        &self,
        k: &str,
        s: &mut Sink,
        read: impl FnOnce(&'a Map<String, Value>, &str, &Path) -> Result<Option<T>, JsonError>,
    ) -> Option<T> {
        match read(self.map?, k, &Path::Lit(&self.path)) {
            Ok(v) => v,
            Err(e) => {
                s.json_error(&e, self.raw(k).unwrap_or(&Value::Null));
                None
            }
        }
    }

    pub fn int(&self, k: &str, s: &mut Sink) -> Option<i64> {
        self.read(k, s, model::get_int)
    }

    pub fn str(&self, k: &str, s: &mut Sink) -> Option<&'a str> {
        self.read(k, s, model::get_str)
    }

    pub fn bool(&self, k: &str, s: &mut Sink) -> Option<bool> {
        self.read(k, s, model::get_bool)
    }

    pub fn list(&self, k: &str, s: &mut Sink) -> Option<&'a Vec<Value>> {
        self.read(k, s, model::get_arr)
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

/// A whole-number quantity (`2`, `"2"`, `"2000m"`, `"1k"`; [`crate::model::json::Quantity`]);
/// `None` when it is not one.
pub fn whole_quantity(v: &Value) -> Option<i64> {
    model::Quantity::of_value(v)?.whole()
}
