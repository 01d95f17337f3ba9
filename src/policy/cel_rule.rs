//! The `cel` rule kind: a CEL expression over `object` and `oldObject` (null on CREATE), as in
//! a Kubernetes ValidatingAdmissionPolicy. The expression states what must hold: `true`
//! admits, `false` is a violation, an evaluation error is a violation too (fail closed).

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, Program, Value as Cel};
use serde::Deserialize;
use serde_json::Value;

use super::Violation;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawCel {
    expression: String,
    /// Field path the violation is reported at (default `spec`).
    #[serde(default)]
    field_path: Option<String>,
}

pub(super) struct CelRule {
    source: String,
    program: Program,
    field_path: String,
}

impl CelRule {
    pub(super) fn parse(body: serde_norway::Value) -> Result<Self, String> {
        let raw: RawCel =
            serde_norway::from_value(body).map_err(|e| format!("invalid cel: {e}"))?;
        let program = Program::compile(&raw.expression)
            .map_err(|e| format!("CEL expression does not compile: {e}"))?;
        Ok(CelRule {
            source: raw.expression,
            program,
            field_path: raw.field_path.unwrap_or_else(|| "spec".to_string()),
        })
    }

    pub(super) fn run(&self, vars: &Vars) -> Vec<Violation> {
        let (object, old_object) = vars.get();
        let mut ctx = Context::default();
        ctx.add_variable_from_value("object", object);
        ctx.add_variable_from_value("oldObject", old_object);
        let text = match self.program.execute(&ctx) {
            Ok(Cel::Bool(true)) => return Vec::new(),
            Ok(Cel::Bool(false)) => format!("expression {:?} is false", self.source),
            Ok(other) => format!(
                "expression {:?} must return a bool, returned {other:?}",
                self.source
            ),
            Err(e) => format!("expression {:?} failed: {e}", self.source),
        };
        vec![super::v(&self.field_path, text)]
    }
}

/// `object` and `oldObject` as CEL values, converted once per evaluation (on first use) and
/// shared by every CEL rule (CEL values are reference counted).
pub(super) struct Vars<'a> {
    old: Option<&'a Value>,
    new: &'a Value,
    cell: std::cell::OnceCell<(Cel, Cel)>,
}

impl<'a> Vars<'a> {
    pub(super) fn new(old: Option<&'a Value>, new: &'a Value) -> Self {
        Vars {
            old,
            new,
            cell: std::cell::OnceCell::new(),
        }
    }

    fn get(&self) -> (Cel, Cel) {
        self.cell
            .get_or_init(|| {
                (
                    to_cel(self.new, 0),
                    self.old.map_or(Cel::Null, |o| to_cel(o, 0)),
                )
            })
            .clone()
    }
}

/// JSON to CEL: integers become `int` (so `object.spec.replicas > 2` works), other numbers `double`.
fn to_cel(v: &Value, depth: usize) -> Cel {
    if depth > 100 {
        return Cel::Null;
    }
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(|x| to_cel(x, depth + 1)).collect())),
        Value::Object(m) => {
            let map: HashMap<Key, Cel> = m
                .iter()
                .map(|(k, x)| (Key::String(Arc::new(k.clone())), to_cel(x, depth + 1)))
                .collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<CelRule>();
    is::<super::PolicySet>();
}
