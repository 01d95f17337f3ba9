//! Schema helpers: embedded Kubernetes objects kept verbatim, and the structural rewrite that
//! turns a schemars schema into a Kubernetes structural OpenAPI v3 schema.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// An embedded Kubernetes object (a `PodSpec`, say) kept exactly as the user wrote it.
///
/// The CRD declares it `type: object` with `x-kubernetes-preserve-unknown-fields: true` so that
/// the CRD stays small (KServe's embeds the PodSpec schema six times and weighs 2.7 MB); the
/// webhook checks it field by field against `T` instead. Nothing in it is lost on a round trip,
/// not even fields newer than the `T` this binary was built with.
pub struct Embedded<T> {
    raw: Map<String, Value>,
    _marker: PhantomData<fn() -> T>,
}

impl<T> Embedded<T> {
    pub fn from_map(raw: Map<String, Value>) -> Self {
        Self {
            raw,
            _marker: PhantomData,
        }
    }
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.raw
    }
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.raw
    }
    pub fn into_map(self) -> Map<String, Value> {
        self.raw
    }
}

impl<T: DeserializeOwned> Embedded<T> {
    /// The typed view. Fields unknown to `T` are ignored here (they stay in the raw map).
    pub fn typed(&self) -> Result<T, serde_json::Error> {
        T::deserialize(&Value::Object(self.raw.clone()))
    }
}

impl<T: Serialize> Embedded<T> {
    pub fn from_typed(value: &T) -> Result<Self, serde_json::Error> {
        match serde_json::to_value(value)? {
            Value::Object(raw) => Ok(Self::from_map(raw)),
            other => Err(serde::de::Error::custom(format!(
                "expected an object, got {other}"
            ))),
        }
    }
}

impl<T> Clone for Embedded<T> {
    fn clone(&self) -> Self {
        Self::from_map(self.raw.clone())
    }
}
impl<T> Default for Embedded<T> {
    fn default() -> Self {
        Self::from_map(Map::new())
    }
}
impl<T> PartialEq for Embedded<T> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}
impl<T> fmt::Debug for Embedded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.raw.fmt(f)
    }
}
impl<T> Serialize for Embedded<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}
impl<'de, T> Deserialize<'de> for Embedded<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Map::deserialize(d).map(Self::from_map)
    }
}

/// The name of the Kubernetes type an [`Embedded`] holds, for documentation.
pub trait EmbeddedKind {
    const KIND: &'static str;
}
impl EmbeddedKind for k8s_openapi::api::core::v1::PodSpec {
    const KIND: &'static str = "core/v1 PodSpec";
}

impl<T: EmbeddedKind> JsonSchema for Embedded<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("Embedded{}", T::KIND.replace(['/', ' '], "")).into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "description": format!("A Kubernetes {}, kept as written and checked field by field by the llmisvc webhook.", T::KIND),
        })
    }
}

/// A JSON object of another API (Gateway API HTTPRouteSpec, InferencePoolSpec, EPP config)
/// kept verbatim; the webhook checks what it relies on.
pub type Opaque = OpaqueObject;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OpaqueObject(pub Map<String, Value>);

impl JsonSchema for OpaqueObject {
    fn schema_name() -> Cow<'static, str> {
        "OpaqueObject".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
        })
    }
}

/// Any JSON value, kept verbatim (KServe's `Schemaless` fields, such as LoRA adapters).
pub fn schemaless(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "x-kubernetes-preserve-unknown-fields": true })
}

/// Rewrites a schemars (OpenAPI 3 flavour, subschemas inlined) schema into a Kubernetes
/// structural schema: no `nullable`, `$schema`, `title`, `format: uint*`, `default`;
/// `anyOf`/`oneOf` of `null` and a type collapsed to the type; `additionalProperties: true`
/// next to `properties` removed (pruning would drop them anyway and it is not structural).
pub fn make_structural(v: &mut Value) {
    let Value::Object(m) = v else { return };
    m.remove("$schema");
    m.remove("title");
    m.remove("nullable");
    m.remove("$defs");
    m.remove("definitions");
    // Defaults would make the API server add fields the user did not write; llmisvc's
    // mutating webhook does the defaulting, visibly.
    m.remove("default");
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = m.get(key).cloned() {
            let non_null: Vec<Value> = alts
                .into_iter()
                .filter(|a| a.get("type") != Some(&Value::String("null".into())))
                .collect();
            if non_null.len() == 1 {
                m.remove(key);
                if let Value::Object(inner) = &non_null[0] {
                    for (k, val) in inner {
                        m.entry(k.clone()).or_insert_with(|| val.clone());
                    }
                }
            }
        }
    }
    if let Some(Value::Array(types)) = m.get("type").cloned() {
        let non_null: Vec<Value> = types.into_iter().filter(|t| t != "null").collect();
        if non_null.len() == 1 {
            m.insert("type".into(), non_null[0].clone());
        }
    }
    if let Some(Value::String(f)) = m.get("format")
        && (f.starts_with("uint") || f == "double" || f == "float")
        && m.get("type") == Some(&Value::String("integer".into()))
    {
        let f = if f == "uint64" { "int64" } else { "int32" };
        m.insert("format".into(), Value::String(f.into()));
    }
    if m.contains_key("properties") && m.get("additionalProperties") == Some(&Value::Bool(true)) {
        m.remove("additionalProperties");
    }
    if m.get("additionalProperties") == Some(&Value::Bool(false)) {
        m.remove("additionalProperties");
    }
    if m.contains_key("properties") && !m.contains_key("type") {
        m.insert("type".into(), Value::String("object".into()));
    }
    if let Some(Value::Object(props)) = m.get_mut("properties") {
        for (_, p) in props.iter_mut() {
            make_structural(p);
        }
    }
    if let Some(items) = m.get_mut("items") {
        make_structural(items);
    }
    if let Some(ap @ Value::Object(_)) = m.get_mut("additionalProperties") {
        make_structural(ap);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(alts)) = m.get_mut(key) {
            for a in alts {
                make_structural(a);
            }
        }
    }
}

/// A schema generator that inlines every subschema (CRDs cannot use `$ref`).
pub fn generator() -> SchemaGenerator {
    schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator()
}

/// The structural schema of `T`, ready for a CRD.
pub fn structural_schema_for<T: JsonSchema>() -> Value {
    let schema = generator().into_root_schema_for::<T>();
    let mut v = schema.to_value();
    make_structural(&mut v);
    v
}
