//! Lossless conversion between `serving.kserve.io/v1alpha1` and `serving.kserve.io/v1alpha2`
//! for `LLMInferenceService` and `LLMInferenceServiceConfig` (both kinds share the spec shape).
//!
//! The conversion works on `serde_json::Value`, so fields neither version knows are copied
//! through untouched, in their place. `metadata` is kept as it is except for the annotations
//! below. The rules:
//!
//! - **Criticality** (`v1alpha1` only): `spec.model.criticality` and
//!   `spec.model.lora.adapters[i].criticality` move into KServe's annotations
//!   [`stash::MODEL_CRITICALITY`] (the string) and [`stash::LORA_CRITICALITIES`] (JSON, index to
//!   string, as KServe writes it) going up, and back into the spec going down; so llmisvc and
//!   KServe read each other's objects the same way.
//! - **`v1alpha2`-only fields** (`spec.model.confidential`, the adapters' `confidential`,
//!   `spec.kvCacheOffloading`, `spec.prefill.kvCacheOffloading`; status `appliedConfigs`,
//!   `workloads`, `router.group`, `addresses[].origin`, `addresses[].models`, and for the
//!   Config kind `referencedBy`) are removed going down and kept in the stash annotation
//!   [`stash::V1ALPHA2_FIELDS`]; going up they are put back (where the `v1alpha1` client left
//!   their parent in place) and the annotation removed. A `v1alpha1` client that reads, edits
//!   and writes back does not erase them. Entries inside arrays (an adapter's `confidential`,
//!   an address's `origin`) follow their element by its `name`/`uri`/`url`, see [`stash`].
//! - **The InferencePool spec** (`spec.router.scheduler.pool.spec`) changes shape, see
//!   [`pool`]. When a shape cannot carry all of a spec (`appProtocol`, a second port, an empty
//!   `targetPorts: []`, ...) the whole original spec is stashed, and restored on the way back
//!   when the other version's view of it is unchanged; when that view was edited, the edit is
//!   converted and the `v1alpha2`-only parts the edit did not touch are kept
//!   ([`pool::merge_v2_only`]).
//! - **Names of the other version**: a field carrying a name that only the target version
//!   knows (say an unknown `kvCacheOffloading` on a `v1alpha1` spec, or a `criticality` on a
//!   `v1alpha2` model), an annotation with one of the reserved keys that only the target
//!   version interprets, or data KServe's annotations cannot carry (a criticality that is not a
//!   non-empty string, a `lora-criticalities` value that does not match the adapters) are
//!   stashed as well, in [`stash::V1ALPHA1_FIELDS`] on `v1alpha2` objects and
//!   [`stash::V1ALPHA2_FIELDS`] on `v1alpha1` objects, so they neither gain a meaning nor get lost.
//! - **Annotations map**: added only when something is stored in it, removed when the
//!   conversion empties a map it had to create; an empty or null map that had to be filled is
//!   recorded (entry `/metadata/annotations`) and given back as it was; so is `metadata: null`
//!   when the annotations had to be written into it (entry `/metadata`). An object without
//!   `metadata` that needs the stash comes back with `metadata: {}` (the API server never sends
//!   one, and the conversion webhook refuses it).
//! - `status` converts in both directions; `status: {}` stays `{}`. No empty field is ever
//!   added.
//!
//! Both round trips (`v1alpha1 -> v1alpha2 -> v1alpha1` and `v1alpha2 -> v1alpha1 -> v1alpha2`)
//! give back an equal JSON value (object key order aside: a restored field comes last).

pub mod pool;
pub mod stash;

use std::collections::BTreeMap;

use crate::model::json::type_name;
use serde_json::{Map, Value};

use stash::{
    ANNOTATIONS_POINTER, LORA_CRITICALITIES, METADATA_POINTER, MODEL_CRITICALITY, Stash,
    V1ALPHA1_FIELDS, V1ALPHA2_FIELDS,
};

/// The API group of both kinds.
pub const GROUP: &str = "serving.kserve.io";
/// `apiVersion` of the older served version.
pub const V1ALPHA1: &str = "serving.kserve.io/v1alpha1";
/// `apiVersion` of the storage version.
pub const V1ALPHA2: &str = "serving.kserve.io/v1alpha2";

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The object is not a JSON object.
    #[error("object to convert is not a JSON object (got {0})")]
    NotAnObject(&'static str),
    /// The object has no `apiVersion`.
    #[error("object has no apiVersion")]
    MissingApiVersion,
    /// The object's `apiVersion` is not one of ours.
    #[error(
        "unsupported apiVersion {0:?}: expected serving.kserve.io/v1alpha1 or serving.kserve.io/v1alpha2"
    )]
    UnsupportedApiVersion(String),
    /// The desired API version is empty.
    #[error("no desired apiVersion given")]
    MissingDesiredApiVersion,
    /// The desired API version is not one of ours.
    #[error(
        "unsupported desired apiVersion {0:?}: expected serving.kserve.io/v1alpha1 or serving.kserve.io/v1alpha2"
    )]
    UnsupportedDesiredApiVersion(String),
    /// The object has no `kind`.
    #[error("object has no kind")]
    MissingKind,
    /// The object's kind is not one of ours.
    #[error("unsupported kind {0:?}: expected LLMInferenceService or LLMInferenceServiceConfig")]
    UnsupportedKind(String),
    /// A field has the wrong JSON type.
    #[error("{field} must be {expected}, got {found}")]
    WrongType {
        /// Path of the field.
        field: &'static str,
        /// Expected JSON type.
        expected: &'static str,
        /// JSON type found.
        found: &'static str,
    },
}

/// The two served versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Version {
    V1alpha1,
    V1alpha2,
}

impl Version {
    fn parse(api_version: &str) -> Option<Self> {
        match api_version {
            V1ALPHA1 => Some(Self::V1alpha1),
            V1ALPHA2 => Some(Self::V1alpha2),
            _ => None,
        }
    }

    fn api_version(self) -> &'static str {
        match self {
            Self::V1alpha1 => V1ALPHA1,
            Self::V1alpha2 => V1ALPHA2,
        }
    }
}

/// The two kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Service,
    Config,
}

/// `v1alpha2`-only spec fields (both kinds). `*` is every array index.
const SPEC_V2_ONLY: &[&[&str]] = &[
    &["spec", "model", "confidential"],
    &["spec", "model", "lora", "adapters", "*", "confidential"],
    &["spec", "kvCacheOffloading"],
    &["spec", "prefill", "kvCacheOffloading"],
];

/// `v1alpha2`-only status fields of LLMInferenceService.
const SERVICE_STATUS_V2_ONLY: &[&[&str]] = &[
    &["status", "appliedConfigs"],
    &["status", "workloads"],
    &["status", "router", "group"],
    &["status", "addresses", "*", "origin"],
    &["status", "addresses", "*", "models"],
];

/// `v1alpha2`-only status fields of LLMInferenceServiceConfig.
const CONFIG_STATUS_V2_ONLY: &[&[&str]] = &[&["status", "referencedBy"]];

/// `v1alpha1`-only fields (both kinds): the criticalities.
const MODEL_CRITICALITY_PATH: &[&str] = &["spec", "model", "criticality"];
const LORA_CRITICALITY_PATH: &[&str] = &["spec", "model", "lora", "adapters", "*", "criticality"];
const ADAPTERS_PATH: &[&str] = &["spec", "model", "lora", "adapters"];
const MODEL_PATH: &[&str] = &["spec", "model"];

/// The InferencePool spec.
const POOL_PATH: &[&str] = &["spec", "router", "scheduler", "pool", "spec"];

/// Converts `obj` (an LLMInferenceService or LLMInferenceServiceConfig in either version) to
/// `desired_api_version` (`serving.kserve.io/v1alpha1` or `serving.kserve.io/v1alpha2`).
/// `metadata` is kept as is except for the annotations that carry what the target version lacks.
/// An object already in the desired version is returned unchanged.
pub fn convert(obj: &Value, desired_api_version: &str) -> Result<Value, ConvertError> {
    let root = obj
        .as_object()
        .ok_or(ConvertError::NotAnObject(type_name(obj)))?;
    let from = match root.get("apiVersion") {
        None | Some(Value::Null) => return Err(ConvertError::MissingApiVersion),
        Some(Value::String(s)) => {
            Version::parse(s).ok_or_else(|| ConvertError::UnsupportedApiVersion(s.clone()))?
        }
        Some(other) => return Err(wrong_type("apiVersion", "a string", other)),
    };
    let to = if desired_api_version.is_empty() {
        return Err(ConvertError::MissingDesiredApiVersion);
    } else {
        Version::parse(desired_api_version).ok_or_else(|| {
            ConvertError::UnsupportedDesiredApiVersion(desired_api_version.to_string())
        })?
    };
    let kind = match root.get("kind") {
        None | Some(Value::Null) => return Err(ConvertError::MissingKind),
        Some(Value::String(k)) if k == "LLMInferenceService" => Kind::Service,
        Some(Value::String(k)) if k == "LLMInferenceServiceConfig" => Kind::Config,
        Some(Value::String(k)) => return Err(ConvertError::UnsupportedKind(k.clone())),
        Some(other) => return Err(wrong_type("kind", "a string", other)),
    };
    check_object(root.get("spec"), "spec")?;
    check_object(root.get("status"), "status")?;
    check_object(root.get("metadata"), "metadata")?;
    if let Some(Value::Object(meta)) = root.get("metadata") {
        check_object(meta.get("annotations"), "metadata.annotations")?;
    }

    if from == to {
        return Ok(obj.clone());
    }
    let mut conversion = Conversion::new(obj.clone(), to);
    match to {
        Version::V1alpha2 => conversion.up(kind),
        Version::V1alpha1 => conversion.down(kind),
    }
    Ok(conversion.finish())
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> ConvertError {
    ConvertError::WrongType {
        field,
        expected,
        found: type_name(found),
    }
}

/// Absent, null and objects pass.
fn check_object(v: Option<&Value>, field: &'static str) -> Result<(), ConvertError> {
    match v {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(other) => Err(wrong_type(field, "an object", other)),
    }
}

/// One conversion in progress.
struct Conversion {
    /// The object being converted (its annotations are in `ann` until [`Conversion::finish`]).
    out: Value,
    to: Version,
    /// The input's `metadata.annotations` (`None`: absent).
    original_annotations: Option<Value>,
    /// The annotations being built.
    ann: Map<String, Value>,
    /// What the reverse conversion stashed (the stash annotation of the source version).
    incoming: Stash,
    /// An empty or null annotations map recorded by the reverse conversion.
    annotations_marker: Option<Value>,
    /// `metadata: null` recorded by the reverse conversion.
    metadata_marker: Option<Value>,
    /// The input has `metadata: null`.
    metadata_was_null: bool,
    /// What the target version lacks.
    outgoing: Stash,
}

impl Conversion {
    fn new(out: Value, to: Version) -> Self {
        let original_annotations = out
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .cloned();
        let mut ann = match &original_annotations {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        let incoming_key = match to {
            Version::V1alpha2 => V1ALPHA2_FIELDS,
            Version::V1alpha1 => V1ALPHA1_FIELDS,
        };
        // Only a well-formed stash is ours. Anything else under that key is the object's own
        // annotation, which the target version would read as a stash: it travels verbatim in
        // the outgoing stash and comes back as it was.
        let mut outgoing = Stash::new();
        let parsed = ann
            .get(incoming_key)
            .and_then(Value::as_str)
            .and_then(Stash::parse);
        let mut incoming = match parsed {
            Some(stash) => {
                ann.shift_remove(incoming_key);
                stash
            }
            None => {
                if let Some(own) = ann.shift_remove(incoming_key) {
                    outgoing.insert(
                        stash::pointer(&["metadata", "annotations", incoming_key]),
                        own,
                    );
                }
                Stash::new()
            }
        };
        let annotations_marker = incoming.take(ANNOTATIONS_POINTER);
        let metadata_marker = incoming.take(METADATA_POINTER);
        let metadata_was_null = out.get("metadata").is_some_and(Value::is_null);
        Self {
            out,
            to,
            original_annotations,
            ann,
            incoming,
            annotations_marker,
            metadata_marker,
            metadata_was_null,
            outgoing,
        }
    }

    /// Moves annotations with `keys` (reserved keys only the target version interprets) to the
    /// outgoing stash.
    fn stash_annotations(&mut self, keys: &[&str]) {
        for key in keys {
            if let Some(v) = self.ann.shift_remove(*key) {
                self.outgoing
                    .insert(stash::pointer(&["metadata", "annotations", key]), v);
            }
        }
    }

    fn stash_fields(&mut self, patterns: &[&[&str]]) {
        for pattern in patterns {
            stash::move_matching(&mut self.out, pattern, &mut self.outgoing);
        }
    }

    /// `v1alpha1` to `v1alpha2`.
    fn up(&mut self, kind: Kind) {
        self.stash_annotations(&[MODEL_CRITICALITY, LORA_CRITICALITIES, V1ALPHA1_FIELDS]);
        // v1alpha2 names on a v1alpha1 object are unknown fields there: keep them out of reach.
        self.stash_fields(SPEC_V2_ONLY);
        self.stash_fields(status_v2_only(kind));

        // Criticalities into KServe's annotations; what they cannot carry into the stash.
        let mut model = None;
        for (tokens, v) in stash::remove_matching(&mut self.out, MODEL_CRITICALITY_PATH) {
            match v {
                Value::String(s) if !s.is_empty() => model = Some(s),
                v => self.outgoing.put(&self.out, &tokens, v),
            }
        }
        let mut lora = BTreeMap::new();
        for (tokens, v) in stash::remove_matching(&mut self.out, LORA_CRITICALITY_PATH) {
            match v {
                Value::String(s) if !s.is_empty() => {
                    lora.insert(tokens[4].clone(), s);
                }
                v => self.outgoing.put(&self.out, &tokens, v),
            }
        }
        if let Some(c) = model {
            self.ann.insert(MODEL_CRITICALITY.into(), Value::String(c));
        }
        if !lora.is_empty() {
            self.ann.insert(
                LORA_CRITICALITIES.into(),
                Value::String(lora_annotation(&lora)),
            );
        }

        let original = self.incoming.take(&stash::pointer(POOL_PATH));
        if let Some(cur) = stash::get_mut(&mut self.out, POOL_PATH) {
            match original {
                Some(orig) if pool::down(&orig) == *cur => *cur = orig,
                original => {
                    let mut new = pool::up(cur);
                    if let Some(orig) = &original {
                        pool::merge_v2_only(&mut new, orig);
                    }
                    if pool::down(&new) != *cur {
                        self.outgoing
                            .insert(stash::pointer(POOL_PATH), std::mem::replace(cur, new));
                    } else {
                        *cur = new;
                    }
                }
            }
        }
        self.restore_incoming();
    }

    /// `v1alpha2` to `v1alpha1`.
    fn down(&mut self, kind: Kind) {
        self.stash_annotations(&[V1ALPHA2_FIELDS]);
        self.stash_fields(SPEC_V2_ONLY);
        self.stash_fields(status_v2_only(kind));
        // v1alpha1 names on a v1alpha2 object are unknown fields there: keep them out of reach.
        self.stash_fields(&[MODEL_CRITICALITY_PATH, LORA_CRITICALITY_PATH]);

        let original = self.incoming.take(&stash::pointer(POOL_PATH));
        if let Some(cur) = stash::get_mut(&mut self.out, POOL_PATH) {
            match original {
                Some(orig) if pool::up(&orig) == *cur => *cur = orig,
                _ => {
                    let new = pool::down(cur);
                    if pool::up(&new) != *cur {
                        self.outgoing
                            .insert(stash::pointer(POOL_PATH), std::mem::replace(cur, new));
                    } else {
                        *cur = new;
                    }
                }
            }
        }

        // Criticalities back from KServe's annotations into the spec. What cannot go back
        // exactly (no model, an empty value, an index without adapter, a non-canonical JSON)
        // is stashed verbatim instead, so the way up gives the same annotation back.
        if let Some(v) = self.ann.shift_remove(MODEL_CRITICALITY) {
            let restored = match &v {
                Value::String(s) if !s.is_empty() => {
                    stash::get_mut(&mut self.out, MODEL_PATH).is_some_and(|m| m.is_object())
                        && stash::restore(&mut self.out, MODEL_CRITICALITY_PATH, v.clone())
                }
                _ => false,
            };
            if !restored {
                self.outgoing.insert(
                    stash::pointer(&["metadata", "annotations", MODEL_CRITICALITY]),
                    v,
                );
            }
        }
        if let Some(v) = self.ann.shift_remove(LORA_CRITICALITIES) {
            match parse_lora(&v, &mut self.out) {
                Some(entries) => {
                    for (i, c) in entries {
                        let tokens = [ADAPTERS_PATH, &[i.as_str(), "criticality"]].concat();
                        stash::restore(&mut self.out, &tokens, Value::String(c));
                    }
                }
                None => self.outgoing.insert(
                    stash::pointer(&["metadata", "annotations", LORA_CRITICALITIES]),
                    v,
                ),
            }
        }
        self.restore_incoming();
    }

    /// Puts back what the reverse conversion stashed, where the slot is free and the parent is
    /// still there; annotations are restored into the annotation map.
    fn restore_incoming(&mut self) {
        let entries = std::mem::take(&mut self.incoming).resolve(&self.out);
        for (tokens, v) in entries {
            let Some(tokens) = tokens else {
                continue;
            };
            match tokens.as_slice() {
                [m, a, key] if m == "metadata" && a == "annotations" => {
                    if !self.ann.contains_key(key) {
                        self.ann.insert(key.clone(), v);
                    }
                }
                _ => {
                    stash::restore(&mut self.out, &tokens, v);
                }
            }
        }
    }

    /// Writes the annotations and `apiVersion`.
    fn finish(mut self) -> Value {
        let original_was_empty = match &self.original_annotations {
            Some(Value::Null) => true,
            Some(Value::Object(map)) => map.is_empty(),
            _ => false,
        };
        let filled = !self.ann.is_empty() || !self.outgoing.is_empty();
        if filled && self.metadata_was_null {
            // The annotations need a `metadata` that was `null`: record it, to give it back.
            self.outgoing.insert(METADATA_POINTER.into(), Value::Null);
        }
        if filled
            && original_was_empty
            && let Some(original) = self.original_annotations.clone()
        {
            self.outgoing.insert(ANNOTATIONS_POINTER.into(), original);
        }
        if !self.outgoing.is_empty() {
            let key = match self.to {
                Version::V1alpha1 => V1ALPHA2_FIELDS,
                Version::V1alpha2 => V1ALPHA1_FIELDS,
            };
            // An own value restored under the key the stash is written to rides in the stash.
            let own = stash::pointer(&["metadata", "annotations", key]);
            if let Some(v) = self.ann.shift_remove(key)
                && !self.outgoing.contains(&own)
            {
                self.outgoing.insert(own, v);
            }
            self.ann
                .insert(key.into(), Value::String(self.outgoing.to_annotation()));
        }

        let annotations = if !self.ann.is_empty() {
            Some(Value::Object(std::mem::take(&mut self.ann)))
        } else if let Some(marker) = self.annotations_marker.take() {
            Some(marker)
        } else if original_was_empty {
            self.original_annotations.clone()
        } else {
            None
        };
        if let Value::Object(root) = &mut self.out {
            match annotations {
                Some(a) => {
                    let meta = root
                        .entry("metadata")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if meta.is_null() {
                        *meta = Value::Object(Map::new());
                    }
                    if let Value::Object(meta) = meta {
                        meta.insert("annotations".into(), a);
                    }
                }
                None => {
                    if let Some(Value::Object(meta)) = root.get_mut("metadata") {
                        meta.shift_remove("annotations");
                        // Created for the stash from `metadata: null`: null again.
                        if meta.is_empty()
                            && let Some(marker) = self.metadata_marker.take()
                        {
                            root.insert("metadata".into(), marker);
                        }
                    }
                }
            }
            root.insert(
                "apiVersion".into(),
                Value::String(self.to.api_version().into()),
            );
        }
        self.out
    }
}

fn status_v2_only(kind: Kind) -> &'static [&'static [&'static str]] {
    match kind {
        Kind::Service => SERVICE_STATUS_V2_ONLY,
        Kind::Config => CONFIG_STATUS_V2_ONLY,
    }
}

/// KServe's `lora-criticalities` value: a JSON object from adapter index to criticality with
/// the keys sorted as strings, as Go's `encoding/json` writes a `map[int]string`.
fn lora_annotation(entries: &BTreeMap<String, String>) -> String {
    let map: Map<String, Value> = entries
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    Value::Object(map).to_string()
}

/// The entries of a `lora-criticalities` value if all of them can go back into the spec and
/// the way up writes exactly this value again; `None` otherwise.
fn parse_lora(v: &Value, out: &mut Value) -> Option<Vec<(String, String)>> {
    let text = v.as_str()?;
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return None;
    };
    if map.is_empty() {
        return None;
    }
    let adapters = stash::get_mut(out, ADAPTERS_PATH)?.as_array()?;
    let mut entries = BTreeMap::new();
    for (k, c) in &map {
        let i = stash::index(k)?;
        let adapter = adapters.get(i)?.as_object()?;
        if adapter.contains_key("criticality") {
            return None;
        }
        match c {
            Value::String(s) if !s.is_empty() => {
                entries.insert(k.clone(), s.clone());
            }
            _ => return None,
        }
    }
    (lora_annotation(&entries) == text).then(|| entries.into_iter().collect())
}
