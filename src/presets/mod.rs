//! Presets: `LLMInferenceServiceConfig` objects merged under a service's own spec.
//!
//! * [`PresetStore`]: an immutable snapshot of all known presets, loaded from the binary
//!   ([`PresetStore::embedded`], `deploy/presets/`), a directory, or a kube watch cache. Every
//!   preset's templates are compiled at load time: a bad template or an unknown field path is a
//!   load error, never an admission error.
//! * [`resolve`]: picks the well-known presets (KServe's names and rules), then the object's
//!   `spec.baseRefs` in order, renders their templates, merges them and puts the object's own
//!   spec on top (the user always wins).
//! * [`merge`]: the strategic-merge-like merge (see [`merge`](merge::merge) for the rules).
//! * [`template`]: the Go text/template subset.
//!
//! # The applied-presets annotation
//!
//! [`resolve`] records the presets it applied, in the order applied, in the
//! `metadata.annotations["serving.kserve.io/applied-presets"]` annotation of the object, as a
//! compact JSON list:
//!
//! ```json
//! [{"name":"kserve-config-llm-template","namespace":"llmisvc-system","resourceVersion":"fnv1a64:0123456789abcdef","source":"Preset"},
//!  {"name":"my-base","namespace":"team-a","resourceVersion":"81723","source":"UserRef"}]
//! ```
//!
//! `source` uses KServe's `status.appliedConfigs[].source` words: `Preset` for a well-known
//! preset ([`PresetSource::WellKnown`]), `UserRef` for a `baseRefs` entry
//! ([`PresetSource::BaseRef`]). `resourceVersion` is the cluster's `metadata.resourceVersion` of
//! the preset when it came from a cluster, otherwise `fnv1a64:` and the 16-hex-digit FNV-1a hash
//! of the preset's canonical JSON (keys sorted), so a changed embedded or file preset is
//! detectable too. [`parse_applied_annotation`] reads it back.
//!
//! # Choices
//!
//! * Templates are evaluated against the object with the merged spec (all selected presets,
//!   baseRefs and the user's spec, before rendering), so `{{ .Spec.Parallelism.Tensor }}` sees a
//!   value that came from a baseRef. For the evaluation only, `spec.model.name` defaults to
//!   `metadata.name` (KServe defaults it before its presets are rendered; our defaulting step
//!   runs after `resolve`). `.GlobalConfig` comes from [`TemplateGlobals`] in the store.
//! * Well-known selection looks at the spec merged from the baseRefs and the user's spec (as
//!   KServe does), then re-selects on the merged result until the choice is stable (at most 4
//!   rounds) so that resolving the output again picks the same presets.
//! * A well-known preset missing from the store is skipped. A missing baseRef is not an error
//!   (so `kubectl apply -f dir/` works in any order): nothing is merged, the object is returned
//!   as given with the [`MISSING_BASE_REFS_ANNOTATION`] and [`Resolved::missing`] set, and the
//!   webhook admits it with a warning. Lookup: the object's namespace (`default` when
//!   `metadata.namespace` is absent), then the system namespace.
//! * A preset's own `spec.baseRefs` is ignored (presets do not chain).
//! * Presets and objects are merged as JSON whatever their apiVersion; the fields that differ
//!   between v1alpha1 and v1alpha2 (the InferencePool spec shape) are not converted here.

use crate::model::md5;
pub mod merge;
pub mod template;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

pub use merge::merge;
use template::Template;

/// The namespace holding the platform's presets, by default.
pub const SYSTEM_NAMESPACE_DEFAULT: &str = "llmisvc-system";
/// The annotation listing the applied presets (see the module documentation for its format).
pub const APPLIED_PRESETS_ANNOTATION: &str = "serving.kserve.io/applied-presets";
/// The kind of a preset.
pub const PRESET_KIND: &str = "LLMInferenceServiceConfig";

/// KServe's well-known preset names.
pub mod well_known {
    pub const TEMPLATE: &str = "kserve-config-llm-template";
    pub const DECODE_TEMPLATE: &str = "kserve-config-llm-decode-template";
    pub const PREFILL_TEMPLATE: &str = "kserve-config-llm-prefill-template";
    pub const WORKER_DATA_PARALLEL: &str = "kserve-config-llm-worker-data-parallel";
    pub const DECODE_WORKER_DATA_PARALLEL: &str = "kserve-config-llm-decode-worker-data-parallel";
    pub const PREFILL_WORKER_DATA_PARALLEL: &str = "kserve-config-llm-prefill-worker-data-parallel";
    pub const WORKER_PIPELINE_PARALLEL: &str = "kserve-config-llm-worker-pipeline-parallel";
    pub const DECODE_WORKER_PIPELINE_PARALLEL: &str =
        "kserve-config-llm-decode-worker-pipeline-parallel";
    pub const PREFILL_WORKER_PIPELINE_PARALLEL: &str =
        "kserve-config-llm-prefill-worker-pipeline-parallel";
    pub const SCHEDULER: &str = "kserve-config-llm-scheduler";
    pub const TOKENIZER: &str = "kserve-config-llm-tokenizer";
    pub const SCHEDULER_LATENCY_PREDICTOR: &str = "kserve-config-llm-scheduler-latency-predictor";
    pub const ROUTER_ROUTE: &str = "kserve-config-llm-router-route";
    pub const TRACING: &str = "kserve-config-llm-tracing";
}

/// Why presets could not be loaded or applied. [`PresetError::field`] names the field of the
/// object being admitted, when the error is about one (`crate::pipeline::Refused::field_errors`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PresetError {
    /// A template does not compile (at load) or fails to evaluate (at admission).
    #[error("preset {preset}: {field}: {message}")]
    Template {
        /// `namespace/name` of the preset.
        preset: String,
        /// The preset's field holding the template (`spec.template.containers[0].args[1]`).
        field: String,
        /// The template engine's error.
        message: String,
    },
    /// A field of the service being resolved is wrong: metadata of the wrong JSON type, or a
    /// `{{ ... }}` placeholder of the user's own spec that does not compile or render.
    #[error("invalid object: {field}: {message}")]
    Field {
        /// Field path of the service (`spec.template.containers[0].env[1].value`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A preset source (file, document, object) is not a valid LLMInferenceServiceConfig.
    #[error("{source_name}: {message}")]
    Parse {
        source_name: String,
        message: String,
    },
    /// Two presets with the same namespace and name.
    #[error("duplicate preset {namespace}/{name} (in {source_name})")]
    Duplicate {
        name: String,
        namespace: String,
        source_name: String,
    },
    /// The object to resolve is malformed (not an object; an internal invariant broken; the
    /// applied-presets annotation unreadable).
    #[error("invalid object: {0}")]
    Invalid(String),
}

impl PresetError {
    /// The field of the object being admitted that the error is about, with the reason
    /// without it: [`PresetError::Field`] only (a preset's own template error is the
    /// preset's fault, not a field of the service: it keeps the preset's name instead).
    pub fn field(&self) -> Option<(&str, &str)> {
        match self {
            PresetError::Field { field, message } => Some((field.as_str(), message.as_str())),
            _ => None,
        }
    }
}

use crate::model::json::{Seg, at_segs_mut as at_path, obj_at, render_segs as show_path};
use crate::model::view::{Part, PoolView, ServiceView};

/// One preset, parsed and with its templates compiled at load time.
#[derive(Clone, Debug)]
pub struct Preset {
    pub name: String,
    pub namespace: String,
    /// `metadata.resourceVersion` when the preset came from a cluster.
    pub resource_version: Option<String>,
    /// `fnv1a64:<16 hex>` of the preset's canonical JSON.
    pub content_hash: String,
    /// The spec as written (templates not rendered, `baseRefs` removed).
    pub spec: Value,
    templates: Vec<(Vec<Seg>, Template)>,
    /// Whether a template reads the object's spec ([`template::reads_spec`]).
    reads_spec: bool,
    /// The part of the spec that well-known selection reads (see [`project`]).
    selection: Value,
}

impl Preset {
    /// Parses one LLMInferenceServiceConfig object. `default_namespace` is used when
    /// `metadata.namespace` is absent (or always, with `force_namespace`).
    fn from_value(
        obj: Value,
        source_name: &str,
        default_namespace: &str,
        force_namespace: bool,
    ) -> Result<Preset, PresetError> {
        let perr = |message: String| PresetError::Parse {
            source_name: source_name.to_string(),
            message,
        };
        let Value::Object(mut root) = obj else {
            return Err(perr("expected an object".into()));
        };
        match root.get("kind") {
            None | Some(Value::Null) => {}
            Some(Value::String(k)) if k == PRESET_KIND => {}
            Some(other) => return Err(perr(format!("kind is {other}, expected {PRESET_KIND}"))),
        }
        let meta = root.get("metadata").and_then(Value::as_object);
        let name = meta
            .and_then(|m| m.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| perr("metadata.name is missing".into()))?
            .to_string();
        let namespace = match meta
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
        {
            Some(ns) if !ns.is_empty() && !force_namespace => ns.to_string(),
            _ => default_namespace.to_string(),
        };
        let resource_version = meta
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        let mut spec = match root.remove("spec") {
            None | Some(Value::Null) => Value::Object(Map::new()),
            Some(s @ Value::Object(_)) => s,
            Some(_) => return Err(perr(format!("{namespace}/{name}: spec must be an object"))),
        };
        if let Value::Object(m) = &mut spec {
            m.remove("baseRefs");
        }
        let content_hash = format!("fnv1a64:{:016x}", md5::fnv1a64(canonical(&spec).as_bytes()));
        let mut templates = Vec::new();
        let mut path = Vec::new();
        compile_all(&spec, &mut path, &mut templates).map_err(|(p, message)| {
            PresetError::Template {
                preset: format!("{namespace}/{name}"),
                field: format!("spec{p}"),
                message,
            }
        })?;
        let reads_spec = templates
            .iter()
            .any(|(_, t)| t.field_paths().into_iter().any(template::reads_spec));
        let selection = project(&spec, &SELECTION);
        Ok(Preset {
            name,
            namespace,
            resource_version,
            content_hash,
            spec,
            templates,
            reads_spec,
            selection,
        })
    }

    /// Parses and compiles one LLMInferenceServiceConfig object (for example to reject a bad
    /// preset when it is admitted). A preset without `metadata.namespace` goes to
    /// `default_namespace`.
    pub fn from_object(obj: &Value, default_namespace: &str) -> Result<Preset, PresetError> {
        Preset::from_value(obj.clone(), "object", default_namespace, false)
    }

    /// The version recorded in the annotation: the resourceVersion, else the content hash.
    pub fn version(&self) -> String {
        self.resource_version
            .clone()
            .unwrap_or_else(|| self.content_hash.clone())
    }

    /// Number of compiled templates (string values with actions).
    pub fn template_count(&self) -> usize {
        self.templates.len()
    }

    /// The spec with its templates rendered against `ctx` (the object plus `GlobalConfig`).
    pub fn render(&self, ctx: &Value) -> Result<Value, PresetError> {
        let mut out = self.spec.clone();
        for (path, t) in &self.templates {
            let text = t.render(ctx).map_err(|message| PresetError::Template {
                preset: format!("{}/{}", self.namespace, self.name),
                field: format!("spec{}", show_path(path)),
                message,
            })?;
            if let Some(slot) = at_path(&mut out, path) {
                *slot = Value::String(text);
            }
        }
        Ok(out)
    }
}

fn compile_all(
    v: &Value,
    path: &mut Vec<Seg>,
    out: &mut Vec<(Vec<Seg>, Template)>,
) -> Result<(), (String, String)> {
    match v {
        Value::String(s) if s.contains("{{") => {
            let t = template::compile(s).map_err(|e| (show_path(path), e))?;
            out.push((path.clone(), t));
        }
        Value::Object(m) => {
            for (k, v) in m {
                if k.contains("{{") {
                    return Err((
                        show_path(path),
                        format!("templates in keys are not supported: {k:?}"),
                    ));
                }
                path.push(Seg::Key(k.clone()));
                compile_all(v, path, out)?;
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(Seg::Index(i));
                compile_all(v, path, out)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

/// Whether a value holds a string or an object key with a template action (`{{`). A walk
/// without allocation: most services have none, and admission checks every one.
pub fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => s.contains("{{"),
        Value::Object(m) => m.iter().any(|(k, v)| k.contains("{{") || has_template(v)),
        Value::Array(a) => a.iter().any(has_template),
        _ => false,
    }
}

/// Every string of a service's own `spec` that does not compile as a template, as
/// `(field path, the string, message)` (path like `spec.template.containers[0].env[1].value`), for
/// admission. KServe renders the whole merged spec as one Go template
/// (`pkg/controller/v1alpha2/llmisvc/config_merge.go`, `ReplaceVariables`), the user's own
/// strings included, so such a string would fail every reconcile there; a template in an object
/// key (KServe would render it too) is refused as unsupported.
pub fn user_template_errors(spec: &Value) -> Vec<(String, Option<String>, String)> {
    type Out = Vec<(String, Option<String>, String)>;
    fn walk(v: &Value, path: &mut Vec<Seg>, out: &mut Out) {
        match v {
            Value::String(s) if s.contains("{{") => {
                if let Err(e) = template::compile(s) {
                    out.push((format!("spec{}", show_path(path)), Some(s.clone()), e));
                }
            }
            Value::Object(m) => {
                for (k, v) in m {
                    if k.contains("{{") {
                        out.push((
                            format!("spec{}", show_path(path)),
                            None,
                            format!("templates in keys are not supported: {k:?}"),
                        ));
                    }
                    path.push(Seg::Key(k.clone()));
                    walk(v, path, out);
                    path.pop();
                }
            }
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    if has_template(spec) {
        walk(spec, &mut Vec::new(), &mut out);
    }
    out
}

/// JSON with object keys sorted, for hashing.
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            o => o.clone(),
        }
    }
    sorted(v).to_string()
}

/// Values of `.GlobalConfig` in templates (KServe's `templateGlobalConfig`).
#[derive(Clone, Debug)]
pub struct TemplateGlobals {
    pub ingress_gateway_name: String,
    pub ingress_gateway_namespace: String,
    pub enable_tls: bool,
    pub model_based_routing_header_name: String,
}

impl Default for TemplateGlobals {
    fn default() -> Self {
        TemplateGlobals {
            ingress_gateway_name: "kserve-ingress-gateway".into(),
            ingress_gateway_namespace: "kserve".into(),
            enable_tls: false,
            model_based_routing_header_name: "X-Gateway-Model-Name".into(),
        }
    }
}

struct Inner {
    /// By namespace, then name (looked up by `&str`, no allocation per request).
    presets: HashMap<String, HashMap<String, Preset>>,
    system_namespace: String,
    globals: TemplateGlobals,
}

/// An immutable snapshot of all known presets (cheap to clone, `Send + Sync`).
#[derive(Clone)]
pub struct PresetStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PresetStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<String> = self
            .iter()
            .map(|p| format!("{}/{}", p.namespace, p.name))
            .collect();
        names.sort();
        f.debug_struct("PresetStore")
            .field("system_namespace", &self.inner.system_namespace)
            .field("presets", &names)
            .finish()
    }
}

/// The presets compiled into the binary: every file of `deploy/presets/`.
pub const EMBEDDED_FILES: &[(&str, &str)] = &[
    (
        "kserve-config-llm-template.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-template.yaml"),
    ),
    (
        "kserve-config-llm-decode-template.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-decode-template.yaml"),
    ),
    (
        "kserve-config-llm-prefill-template.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-prefill-template.yaml"),
    ),
    (
        "kserve-config-llm-worker-data-parallel.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-worker-data-parallel.yaml"),
    ),
    (
        "kserve-config-llm-decode-worker-data-parallel.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-decode-worker-data-parallel.yaml"),
    ),
    (
        "kserve-config-llm-prefill-worker-data-parallel.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-prefill-worker-data-parallel.yaml"),
    ),
    (
        "kserve-config-llm-worker-pipeline-parallel.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-worker-pipeline-parallel.yaml"),
    ),
    (
        "kserve-config-llm-decode-worker-pipeline-parallel.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-decode-worker-pipeline-parallel.yaml"),
    ),
    (
        "kserve-config-llm-prefill-worker-pipeline-parallel.yaml",
        include_str!(
            "../../deploy/presets/kserve-config-llm-prefill-worker-pipeline-parallel.yaml"
        ),
    ),
    (
        "kserve-config-llm-scheduler.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-scheduler.yaml"),
    ),
    (
        "kserve-config-llm-tokenizer.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-tokenizer.yaml"),
    ),
    (
        "kserve-config-llm-router-route.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-router-route.yaml"),
    ),
    (
        "kserve-config-llm-tracing.yaml",
        include_str!("../../deploy/presets/kserve-config-llm-tracing.yaml"),
    ),
];

/// Parses YAML text (several documents allowed; empty documents skipped) into JSON values.
pub fn parse_yaml_documents(text: &str, source_name: &str) -> Result<Vec<Value>, PresetError> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v = Value::deserialize(doc).map_err(|e| PresetError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?;
        if !v.is_null() {
            out.push(v);
        }
    }
    Ok(out)
}

impl PresetStore {
    fn build(
        items: Vec<(String, Value)>,
        system_namespace: &str,
        force_namespace: bool,
    ) -> Result<PresetStore, PresetError> {
        let mut presets = HashMap::new();
        for (source_name, v) in items {
            let p = Preset::from_value(v, &source_name, system_namespace, force_namespace)?;
            let in_ns: &mut HashMap<String, Preset> =
                presets.entry(p.namespace.clone()).or_default();
            if in_ns.contains_key(&p.name) {
                return Err(PresetError::Duplicate {
                    name: p.name,
                    namespace: p.namespace,
                    source_name,
                });
            }
            in_ns.insert(p.name.clone(), p);
        }
        Ok(PresetStore {
            inner: Arc::new(Inner {
                presets,
                system_namespace: system_namespace.to_string(),
                globals: TemplateGlobals::default(),
            }),
        })
    }

    /// The presets shipped in `deploy/presets/`, compiled into the binary, all placed in
    /// `system_namespace` (whatever namespace the files name).
    pub fn embedded(system_namespace: &str) -> Result<PresetStore, PresetError> {
        let mut items = Vec::new();
        for (file, text) in EMBEDDED_FILES {
            for v in parse_yaml_documents(text, file)? {
                items.push((file.to_string(), v));
            }
        }
        Self::build(items, system_namespace, true)
    }

    /// Every `*.yaml` / `*.yml` file of `dir` (not recursive; several documents per file
    /// allowed). A preset without `metadata.namespace` goes to `system_namespace`.
    pub fn from_dir(dir: &Path, system_namespace: &str) -> Result<PresetStore, PresetError> {
        let io = |e: std::io::Error| PresetError::Parse {
            source_name: dir.display().to_string(),
            message: e.to_string(),
        };
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        let mut items = Vec::new();
        for f in files {
            let name = f.display().to_string();
            let text = std::fs::read_to_string(&f).map_err(|e| PresetError::Parse {
                source_name: name.clone(),
                message: e.to_string(),
            })?;
            for v in parse_yaml_documents(&text, &name)? {
                items.push((name.clone(), v));
            }
        }
        Self::build(items, system_namespace, false)
    }

    /// Objects from a kube watch cache (with `metadata.namespace` and `resourceVersion`).
    pub fn from_objects(
        objs: Vec<Value>,
        system_namespace: &str,
    ) -> Result<PresetStore, PresetError> {
        let items = objs
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let meta = v.get("metadata");
                let label = format!(
                    "object {i} ({}/{})",
                    meta.and_then(|m| m.get("namespace"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                    meta.and_then(|m| m.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                );
                (label, v)
            })
            .collect();
        Self::build(items, system_namespace, false)
    }

    /// The same presets with other `.GlobalConfig` values.
    pub fn with_globals(self, globals: TemplateGlobals) -> PresetStore {
        let inner = Inner {
            presets: self.inner.presets.clone(),
            system_namespace: self.inner.system_namespace.clone(),
            globals,
        };
        PresetStore {
            inner: Arc::new(inner),
        }
    }

    /// The preset `name` in `namespace`, else in the system namespace.
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Preset> {
        let m = &self.inner.presets;
        m.get(namespace)
            .and_then(|ns| ns.get(name))
            .or_else(|| m.get(&self.inner.system_namespace)?.get(name))
    }

    pub fn system_namespace(&self) -> &str {
        &self.inner.system_namespace
    }

    pub fn globals(&self) -> &TemplateGlobals {
        &self.inner.globals
    }

    /// All presets, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Preset> {
        self.inner.presets.values().flat_map(HashMap::values)
    }

    pub fn len(&self) -> usize {
        self.inner.presets.values().map(HashMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.presets.values().all(HashMap::is_empty)
    }
}

/// Why a preset was applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresetSource {
    /// Picked by what the object uses (KServe's "Preset").
    WellKnown,
    /// Named in `spec.baseRefs` (KServe's "UserRef").
    BaseRef,
}

impl PresetSource {
    /// The word used in the annotation (KServe's `AppliedConfigRef.source`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PresetSource::WellKnown => "Preset",
            PresetSource::BaseRef => "UserRef",
        }
    }
}

/// A preset applied by [`resolve`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedPreset {
    pub name: String,
    pub namespace: String,
    /// The cluster's resourceVersion, or `fnv1a64:<hex>` for embedded / file presets.
    pub resource_version: Option<String>,
    pub source: PresetSource,
}

/// The annotation value for `applied` (see the module documentation).
pub fn applied_annotation(applied: &[AppliedPreset]) -> String {
    let list: Vec<Value> = applied
        .iter()
        .map(|a| {
            let mut m = Map::new();
            m.insert("name".into(), a.name.clone().into());
            m.insert("namespace".into(), a.namespace.clone().into());
            if let Some(rv) = &a.resource_version {
                m.insert("resourceVersion".into(), rv.clone().into());
            }
            m.insert("source".into(), a.source.as_str().into());
            Value::Object(m)
        })
        .collect();
    Value::Array(list).to_string()
}

/// Reads an annotation written by [`applied_annotation`].
pub fn parse_applied_annotation(s: &str) -> Result<Vec<AppliedPreset>, PresetError> {
    let bad = |m: &str| PresetError::Invalid(format!("{APPLIED_PRESETS_ANNOTATION}: {m}"));
    let v: Value = serde_json::from_str(s).map_err(|e| bad(&e.to_string()))?;
    let list = v.as_array().ok_or_else(|| bad("not a list"))?;
    list.iter()
        .map(|e| {
            let field = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            Ok(AppliedPreset {
                name: field("name").ok_or_else(|| bad("name missing"))?,
                namespace: field("namespace").ok_or_else(|| bad("namespace missing"))?,
                resource_version: field("resourceVersion"),
                source: match field("source").as_deref() {
                    Some("Preset") => PresetSource::WellKnown,
                    Some("UserRef") => PresetSource::BaseRef,
                    _ => return Err(bad("bad source")),
                },
            })
        })
        .collect()
}

/// Options of [`resolve`].
#[derive(Clone, Debug, Default)]
pub struct ResolveOptions {
    /// Apply only the baseRefs, no well-known presets.
    pub no_well_known: bool,
}

/// The result of [`resolve`].
#[derive(Clone, Debug)]
pub struct Resolved {
    pub object: Value,
    pub applied: Vec<AppliedPreset>,
    /// The baseRefs that exist in none of the namespaces searched. When there are any, nothing
    /// was merged: `object` is the object as given, marked with [`MISSING_BASE_REFS_ANNOTATION`]
    /// (see [`resolve`]).
    pub missing: Vec<MissingRef>,
}

/// A baseRef that names no known preset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MissingRef {
    pub name: String,
    /// Where it was looked up, in order.
    pub namespaces: Vec<String>,
}

impl MissingRef {
    /// The admission warning for it.
    pub fn warning(&self) -> String {
        format!(
            "spec.baseRefs: LLMInferenceServiceConfig {:?} not found in namespaces {:?}; the service is stored without its presets (un-expanded) and is expanded when it is admitted again after the config exists (the reconciler does this, or apply it again)",
            self.name, self.namespaces
        )
    }
}

/// Marks a service stored un-expanded because baseRefs named configs that did not exist yet:
/// a JSON list of their names. Written and removed only by [`resolve`]; the reconciler waits
/// on it and asks for re-admission once the configs exist.
pub const MISSING_BASE_REFS_ANNOTATION: &str = "llmisvc.serving.kserve.io/missing-base-refs";

/// The baseRefs of `obj` that name no preset of `store` (looked up as [`resolve`] does).
/// Malformed objects and refs give nothing here; [`resolve`] and validation report them.
pub fn missing_refs(obj: &Value, store: &PresetStore) -> Vec<MissingRef> {
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    let Some(refs) = obj.pointer("/spec/baseRefs").and_then(Value::as_array) else {
        return Vec::new();
    };
    let mut out: Vec<MissingRef> = Vec::new();
    for n in refs
        .iter()
        .filter_map(|r| r.get("name").and_then(Value::as_str))
        .filter(|n| !n.is_empty())
    {
        if store.get(namespace, n).is_none() && !out.iter().any(|m| m.name == n) {
            let mut namespaces = vec![namespace.to_string()];
            if store.system_namespace() != namespace {
                namespaces.push(store.system_namespace().to_string());
            }
            out.push(MissingRef {
                name: n.to_string(),
                namespaces,
            });
        }
    }
    out
}

/// The names in a [`MISSING_BASE_REFS_ANNOTATION`] of `obj` (empty when it has none).
pub fn missing_base_refs(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(MISSING_BASE_REFS_ANNOTATION))
        .and_then(Value::as_str)
        .map(|s| serde_json::from_str::<Vec<String>>(s).unwrap_or_else(|_| vec![s.to_string()]))
        .unwrap_or_default()
}

/// EndpointPickerConfig plugin types that call the standalone tokenizer (KServe's
/// `tokenProducerPlugin`, and the legacy `precisePrefixCacheScorerPlugin` it decomposes).
pub const TOKENIZER_PLUGINS: [&str; 2] = ["token-producer", "precise-prefix-cache-scorer"];

/// Whether the scheduler `s` (`spec.router.scheduler`, merged) runs with the standalone
/// tokenizer, as KServe's `isTokenizerEnabled` (tokenizer.go): `tokenizer` is set, or the inline
/// config (`config.inline`) has a plugin of a [`TOKENIZER_PLUGINS`] type. (KServe also reads a
/// `--config-text` argument of the scheduler template; llmisvc does not: see README.)
pub fn tokenizer_enabled(s: &Map<String, Value>) -> bool {
    if s.get("tokenizer").is_some_and(Value::is_object) {
        return true;
    }
    s.get("config")
        .and_then(|c| c.get("inline"))
        .and_then(|i| i.get("plugins"))
        .and_then(Value::as_array)
        .is_some_and(|ps| {
            ps.iter().any(|p| {
                p.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| TOKENIZER_PLUGINS.contains(&t))
            })
        })
}

/// The well-known presets `spec` calls for, in KServe's order. The spec is read as
/// [`ServiceView::read_lenient`] reads it (a size of the wrong type counts as unset: validation
/// reports it).
pub fn select_well_known(spec: &Value) -> Vec<&'static str> {
    use well_known::*;
    let mut out = Vec::new();
    let view = ServiceView::read_lenient(spec);
    if let Some(s) = obj_at(spec, &["router", "scheduler"]) {
        if view.router.scheduler != Part::Refs {
            out.push(SCHEDULER);
        }
        if tokenizer_enabled(s) {
            out.push(TOKENIZER);
        }
        if s.get("config")
            .and_then(|c| c.get("inline"))
            .is_some_and(|i| i.to_string().contains("predicted-latency-producer"))
        {
            out.push(SCHEDULER_LATENCY_PREDICTOR);
        }
    }
    if view.router.route == Part::Managed {
        out.push(ROUTER_ROUTE);
    }
    if obj_at(spec, &["tracing"]).is_some() {
        out.push(TRACING);
    }
    // A positive data / dataLocal / pipeline size picks the multi-node preset.
    let positive = |n: Option<i64>| n.is_some_and(|n| n > 0);
    let data = |p: &PoolView| positive(p.sizes.data) || positive(p.sizes.data_local);
    let pipeline = |p: &PoolView| positive(p.sizes.pipeline);
    // Per pool: the single-node, data-parallel or pipeline-parallel preset.
    let pick = |p: &PoolView, [single, dp, pp]: [&'static str; 3]| {
        if !p.multi_node() {
            Some(single)
        } else if data(p) {
            Some(dp)
        } else if pipeline(p) {
            Some(pp)
        } else {
            None
        }
    };
    let decode = &view.decode;
    if let Some(prefill) = &view.prefill {
        out.extend(pick(
            prefill,
            [
                PREFILL_TEMPLATE,
                PREFILL_WORKER_DATA_PARALLEL,
                PREFILL_WORKER_PIPELINE_PARALLEL,
            ],
        ));
        out.extend(pick(
            decode,
            [
                DECODE_TEMPLATE,
                DECODE_WORKER_DATA_PARALLEL,
                DECODE_WORKER_PIPELINE_PARALLEL,
            ],
        ));
    } else {
        out.extend(pick(
            decode,
            [TEMPLATE, WORKER_DATA_PARALLEL, WORKER_PIPELINE_PARALLEL],
        ));
    }
    out
}

/// What of a spec a lookup reads, for [`project`].
enum Shape {
    /// The whole value.
    Keep,
    /// Only whether it is an object (a list or a scalar is kept as such: merging them
    /// replaces objects).
    Exists,
    /// These members of an object.
    Fields(&'static [(&'static str, Shape)]),
}

const PAR: Shape = Shape::Fields(&[
    ("data", Shape::Keep),
    ("dataLocal", Shape::Keep),
    ("pipeline", Shape::Keep),
]);

/// Everything [`select_well_known`] reads, and the InferencePool name of `.GlobalConfig`.
const SELECTION: Shape = Shape::Fields(&[
    (
        "router",
        Shape::Fields(&[
            (
                "scheduler",
                Shape::Fields(&[
                    (
                        "pool",
                        Shape::Fields(&[("ref", Shape::Fields(&[("name", Shape::Keep)]))]),
                    ),
                    ("tokenizer", Shape::Exists),
                    ("config", Shape::Fields(&[("inline", Shape::Keep)])),
                ]),
            ),
            (
                "route",
                Shape::Fields(&[("http", Shape::Fields(&[("refs", Shape::Keep)]))]),
            ),
        ]),
    ),
    ("tracing", Shape::Exists),
    ("parallelism", PAR),
    ("worker", Shape::Exists),
    (
        "prefill",
        Shape::Fields(&[("worker", Shape::Exists), ("parallelism", PAR)]),
    ),
]);

/// The part of `v` that `shape` reads. Projection commutes with [`merge`] (objects merge key by
/// key, and a list or scalar replaces an object either way; none of the fields kept have a
/// patch merge key), so merging projections gives the projection of the merge, at a fraction
/// of the cost: [`resolve`] selects presets on merged projections.
fn project(v: &Value, shape: &Shape) -> Value {
    match (shape, v) {
        (Shape::Keep, _) => v.clone(),
        (Shape::Exists, Value::Object(_)) => Value::Object(Map::new()),
        (Shape::Fields(fields), Value::Object(m)) => {
            let mut out = Map::new();
            for (k, sub) in *fields {
                if let Some(x) = m.get(*k) {
                    out.insert((*k).to_string(), project(x, sub));
                }
            }
            Value::Object(out)
        }
        (_, Value::Array(_)) => Value::Array(Vec::new()),
        (_, other) => other.clone(),
    }
}

fn fold_projections<'a>(specs: impl IntoIterator<Item = &'a Value>, user: &Value) -> Value {
    let mut acc = Value::Object(Map::new());
    for s in specs {
        merge::merge_into(&mut acc, s.clone());
    }
    merge::merge_into(&mut acc, project(user, &SELECTION));
    acc
}

/// Applies the well-known presets picked by what the object uses, then its baseRefs in order,
/// then the object's own spec on top (user values always win). Records the applied presets in
/// the [`APPLIED_PRESETS_ANNOTATION`] annotation of the returned object. Idempotent: resolving
/// the output again yields the same object.
pub fn resolve(
    obj: &Value,
    store: &PresetStore,
    opts: &ResolveOptions,
) -> Result<Resolved, PresetError> {
    resolve_owned(obj.clone(), store, opts)
}

/// [`resolve`] on an object it may consume: the admission path, where nothing of the object is
/// copied (the user's spec is moved into the merge, the rest into the template context and
/// back).
pub fn resolve_owned(
    obj: Value,
    store: &PresetStore,
    opts: &ResolveOptions,
) -> Result<Resolved, PresetError> {
    let invalid = |m: &str| PresetError::Invalid(m.to_string());
    let field = |f: &str, m: &str| PresetError::Field {
        field: f.to_string(),
        message: m.to_string(),
    };
    let Value::Object(mut root) = obj else {
        return Err(invalid("the object is not a JSON object"));
    };
    let meta = match root.get("metadata") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(field("metadata", "must be an object")),
    };
    let namespace = match meta.and_then(|m| m.get("namespace")) {
        None | Some(Value::Null) => "default".to_string(),
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::String(_)) => "default".to_string(),
        Some(_) => return Err(field("metadata.namespace", "must be a string")),
    };
    let name = match meta.and_then(|m| m.get("name")) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(field("metadata.name", "must be a string")),
    };
    // A service expanded before (it records its presets) already carries what the missing
    // config gave it, as its own values: it is expanded again with the presets that exist.
    let expanded_before = meta
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .is_some_and(|a| {
            a.contains_key(APPLIED_PRESETS_ANNOTATION)
                && !a.contains_key(MISSING_BASE_REFS_ANNOTATION)
        });
    // Taken out (its slot stays, so the object's key order does not change).
    let user_spec = match root.get_mut("spec") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(s @ Value::Object(_)) => s.take(),
        Some(_) => return Err(field("spec", "must be an object")),
    };
    let ref_names: Vec<&str> = match user_spec.get("baseRefs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, r)| match r.get("name") {
                Some(Value::String(n)) if !n.is_empty() => Ok(n.as_str()),
                _ => Err(field(
                    &format!("spec.baseRefs[{i}].name"),
                    "must be a non-empty string",
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(field("spec.baseRefs", "must be a list")),
    };
    let mut refs: Vec<&Preset> = Vec::with_capacity(ref_names.len());
    let mut missing: Vec<MissingRef> = Vec::new();
    for n in ref_names {
        match store.get(&namespace, n) {
            Some(p) => refs.push(p),
            None => {
                let mut namespaces = vec![namespace.clone()];
                if store.system_namespace() != namespace {
                    namespaces.push(store.system_namespace().to_string());
                }
                if !missing.iter().any(|m| m.name == n) {
                    missing.push(MissingRef {
                        name: n.to_string(),
                        namespaces,
                    });
                }
            }
        }
    }
    if !missing.is_empty() && !expanded_before {
        // Nothing is merged: presets merged now would be stored as the user's own values and
        // outrank the missing baseRef once it exists (the user always wins). The object stays
        // as written, marked, and is expanded whole when admitted again.
        root.insert("spec".into(), user_spec);
        let names: Vec<&str> = missing.iter().map(|m| m.name.as_str()).collect();
        let mark = Value::String(Value::from(names).to_string());
        set_annotation(&mut root, MISSING_BASE_REFS_ANNOTATION, Some(mark))?;
        return Ok(Resolved {
            object: Value::Object(root),
            applied: Vec::new(),
            missing,
        });
    }

    // Well-known selection on the merged projections, iterated until stable.
    let prelim = fold_projections(refs.iter().map(|p| &p.selection), &user_spec);
    let mut selection = if opts.no_well_known {
        Vec::new()
    } else {
        select_well_known(&prelim)
    };
    let lookup = |sel: &[&'static str]| -> Vec<&Preset> {
        sel.iter()
            .filter_map(|n| store.get(&namespace, n))
            .collect()
    };
    let mut wk = lookup(&selection);
    let mut merged_sel = fold_projections(
        wk.iter().chain(refs.iter()).map(|p| &p.selection),
        &user_spec,
    );
    if !opts.no_well_known {
        for _ in 0..4 {
            let next = select_well_known(&merged_sel);
            if next == selection {
                break;
            }
            selection = next;
            wk = lookup(&selection);
            merged_sel = fold_projections(
                wk.iter().chain(refs.iter()).map(|p| &p.selection),
                &user_spec,
            );
        }
    }

    // The user's own strings are templates too (KServe renders the merged spec, theirs
    // included): compiled here, rendered below with the presets' context.
    let mut user_templates = Vec::new();
    if has_template(&user_spec) {
        compile_all(&user_spec, &mut Vec::new(), &mut user_templates).map_err(|(p, m)| {
            PresetError::Field {
                field: format!("spec{p}"),
                message: format!(
                    "{m} (the spec is rendered as a Go template, as KServe renders it)"
                ),
            }
        })?;
    }
    // Template context: the object with the merged spec, plus GlobalConfig. The merged spec is
    // only built when a template can read it; otherwise the projection stands in for it.
    let reads_spec = wk.iter().chain(refs.iter()).any(|p| p.reads_spec)
        || user_templates
            .iter()
            .any(|(_, t)| t.field_paths().into_iter().any(template::reads_spec));
    let mut ctx_spec = if reads_spec {
        let mut acc = Value::Object(Map::new());
        for p in wk.iter().chain(refs.iter()) {
            merge::merge_into(&mut acc, p.spec.clone());
        }
        merge::merge_into(&mut acc, user_spec.clone());
        acc
    } else {
        merged_sel
    };
    if let Value::Object(s) = &mut ctx_spec {
        let model = s.entry("model").or_insert_with(|| json!({}));
        if let Value::Object(m) = model
            && m.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            m.insert("name".into(), Value::String(name.clone()));
        }
    }
    let g = store.globals();
    let pool_name = ctx_spec
        .pointer("/router/scheduler/pool/ref/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| crate::model::children::pool(&name));
    let global_config = json!({
        "SystemNamespace": store.system_namespace(),
        "IngressGatewayName": g.ingress_gateway_name,
        "IngressGatewayNamespace": g.ingress_gateway_namespace,
        "EnableTLS": g.enable_tls,
        "ModelBasedRoutingHeaderName": g.model_based_routing_header_name,
        "InferencePoolNamespacedName": format!("{namespace}/{pool_name}"),
    });
    // Metadata as an object (appended when absent, as the output has it); the object's own
    // `GlobalConfig` member, if it has one, is set aside while rendering and put back.
    if !matches!(root.get("metadata"), Some(Value::Object(_))) {
        root.insert("metadata".into(), Value::Object(Map::new()));
    }
    root.insert("spec".into(), ctx_spec);
    let own_global_config = match root.get_mut("GlobalConfig") {
        Some(v) => Some(std::mem::replace(v, global_config)),
        None => {
            root.insert("GlobalConfig".into(), global_config);
            None
        }
    };

    let ctx = Value::Object(root);
    let mut presets_spec = Value::Object(Map::new());
    let mut applied = Vec::with_capacity(wk.len() + refs.len());
    for (p, source) in wk
        .iter()
        .map(|p| (p, PresetSource::WellKnown))
        .chain(refs.iter().map(|p| (p, PresetSource::BaseRef)))
    {
        merge::merge_into(&mut presets_spec, p.render(&ctx)?);
        applied.push(AppliedPreset {
            name: p.name.clone(),
            namespace: p.namespace.clone(),
            resource_version: Some(p.version()),
            source,
        });
    }
    let mut user_spec = user_spec;
    for (path, t) in &user_templates {
        let at = || format!("spec{}", show_path(path));
        let text = t.render(&ctx).map_err(|message| PresetError::Field {
            field: at(),
            message,
        })?;
        if text.contains("{{") {
            // Stored rendered: a `{{` left in the output would be rendered again by the next
            // admission.
            return Err(PresetError::Field {
                field: at(),
                message: format!(
                    "the template renders to {text:?}, which still contains \"{{{{\"; a stored value is rendered again on every admission"
                ),
            });
        }
        if let Some(slot) = at_path(&mut user_spec, path) {
            *slot = Value::String(text);
        }
    }
    // The user's spec over the presets, computed in the user's spec: what it already has is
    // not copied.
    let set = |p: &str| user_spec.pointer(p).is_some_and(|v| !v.is_null());
    let user_config_ref_only =
        set("/router/scheduler/config/ref") && !set("/router/scheduler/config/inline");
    // The scheduler config is the well-known presets' default: neither the user nor a baseRef
    // set one.
    let default_scheduler_config = !set("/router/scheduler/config")
        && refs
            .iter()
            .all(|p| p.spec.pointer("/router/scheduler/config").is_none());
    let mut spec = user_spec;
    merge::merge_under(&mut spec, &presets_spec);
    if user_config_ref_only {
        drop_preset_inline_config(&mut spec);
    }
    if default_scheduler_config {
        prefill_decode_scheduler_config(&mut spec);
    }

    let Value::Object(mut root) = ctx else {
        return Err(invalid("internal: the template context is not an object"));
    };
    match own_global_config {
        Some(v) => root.insert("GlobalConfig".into(), v),
        // The last member: removing it keeps the order of the others.
        None => root.remove("GlobalConfig"),
    };
    root.insert("spec".into(), spec);
    set_annotation(&mut root, MISSING_BASE_REFS_ANNOTATION, None)?;
    set_annotation(
        &mut root,
        APPLIED_PRESETS_ANNOTATION,
        Some(Value::String(applied_annotation(&applied))),
    )?;
    Ok(Resolved {
        object: Value::Object(root),
        applied,
        missing,
    })
}

/// Sets (or, with `None`, removes) one annotation of an object whose metadata is an object or
/// absent. Removing from an object without annotations changes nothing.
fn set_annotation(
    root: &mut Map<String, Value>,
    key: &str,
    value: Option<Value>,
) -> Result<(), PresetError> {
    let invalid = |m: &str| PresetError::Invalid(m.to_string());
    if value.is_none()
        && root
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
            .is_none_or(|a| !a.contains_key(key))
    {
        return Ok(());
    }
    if !matches!(root.get("metadata"), Some(Value::Object(_))) {
        root.insert("metadata".into(), Value::Object(Map::new()));
    }
    let Some(Value::Object(meta)) = root.get_mut("metadata") else {
        return Err(invalid("internal: metadata is not an object"));
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if annotations.is_null() {
        *annotations = Value::Object(Map::new());
    }
    let Value::Object(ann) = annotations else {
        return Err(PresetError::Field {
            field: "metadata.annotations".into(),
            message: "must be an object".into(),
        });
    };
    match value {
        Some(v) => {
            ann.insert(key.into(), v);
        }
        None => {
            ann.remove(key);
        }
    }
    Ok(())
}

/// KServe's default scheduler config of a prefill/decode service is its P/D disaggregation
/// profile, not the single profile: every request is split (threshold 0), a `prefill` profile
/// picks the prefill pod and a `decode` profile the decode pod (with `lora-affinity-scorer` in
/// both when LoRA adapters are set). Written in the plugin dialect of the shipped scheduler
/// image (llm-d-inference-scheduler v0.3: `prefill-header-handler`, `pd-profile-handler`
/// with `threshold`; KServe's newer EPPs name them `disagg-*`).
fn prefill_decode_scheduler_config(spec: &mut Value) {
    if !spec.get("prefill").is_some_and(Value::is_object) {
        return;
    }
    let lora = spec
        .pointer("/model/lora/adapters")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let Some(Value::Object(config)) = spec.pointer_mut("/router/scheduler/config") else {
        return;
    };
    if !config.get("inline").is_some_and(Value::is_object) {
        return;
    }
    let mut plugins = vec![
        json!({"type": "prefill-header-handler"}),
        json!({"type": "prefill-filter"}),
        json!({"type": "decode-filter"}),
        json!({"type": "queue-scorer"}),
        json!({"type": "prefix-cache-scorer"}),
        json!({"type": "max-score-picker"}),
        json!({"type": "pd-profile-handler", "parameters": {"threshold": 0}}),
    ];
    if lora {
        plugins.push(json!({"type": "lora-affinity-scorer"}));
    }
    let profile = |name: &str, filter: &str| {
        let mut refs = vec![json!({"pluginRef": filter})];
        if lora {
            refs.push(json!({"pluginRef": "lora-affinity-scorer", "weight": 4}));
        }
        refs.push(json!({"pluginRef": "queue-scorer", "weight": 2}));
        refs.push(json!({"pluginRef": "prefix-cache-scorer", "weight": 3}));
        refs.push(json!({"pluginRef": "max-score-picker"}));
        json!({"name": name, "plugins": refs})
    };
    config.insert(
        "inline".into(),
        json!({
            "apiVersion": "inference.networking.x-k8s.io/v1alpha1",
            "kind": "EndpointPickerConfig",
            "plugins": plugins,
            "schedulingProfiles": [
                profile("prefill", "prefill-filter"),
                profile("decode", "decode-filter"),
            ],
        }),
    );
}

/// The scheduler's `config.ref` (set by the user) and `config.inline` (a preset's) are
/// alternatives: KServe resolves the ref into the inline config, replacing the preset's.
fn drop_preset_inline_config(spec: &mut Value) {
    if let Some(Value::Object(c)) = spec.pointer_mut("/router/scheduler/config") {
        c.remove("inline");
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::{JsonShape, json_values};
    use super::*;
    use proptest::prelude::*;

    /// Values over the keys selection reads, and some it does not.
    fn spec_value() -> impl Strategy<Value = Value> {
        json_values(JsonShape {
            ints: 3,
            strings: &[
                "",
                "p",
                "predicted-latency-producer",
                "token-producer",
                "precise-prefix-cache-scorer",
            ],
            keys: &[
                "router",
                "scheduler",
                "pool",
                "ref",
                "name",
                "tokenizer",
                "config",
                "inline",
                "plugins",
                "type",
                "route",
                "http",
                "refs",
                "tracing",
                "parallelism",
                "data",
                "dataLocal",
                "pipeline",
                "worker",
                "prefill",
                "containers",
                "x",
            ],
            depth: 5,
            nodes: 48,
            items: 3,
            entries: 5,
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Selecting on merged projections is selecting on the merge.
        #[test]
        fn projection_commutes_with_merge(a in spec_value(), b in spec_value(), c in spec_value()) {
            let full = merge(&merge(&a, &b), &c);
            let mut acc = Value::Object(Map::new());
            for v in [&a, &b] {
                merge::merge_into(&mut acc, project(v, &SELECTION));
            }
            merge::merge_into(&mut acc, project(&c, &SELECTION));
            if full.is_object() {
                // (null members, which every reader takes as absent, may differ)
                prop_assert_eq!(
                    merge::strip_nulls(&project(&full, &SELECTION)),
                    merge::strip_nulls(&acc)
                );
                prop_assert_eq!(select_well_known(&full), select_well_known(&acc));
            }
        }
    }

    /// KServe's `isTokenizerEnabled` (tokenizer.go) selects `kserve-config-llm-tokenizer`.
    #[test]
    fn tokenizer_preset_follows_kserve_trigger() {
        let sel = |sched: Value| {
            select_well_known(&json!({"router": {"scheduler": sched}}))
                .contains(&well_known::TOKENIZER)
        };
        let inline =
            |t: &str| json!({"config": {"inline": {"plugins": [{"type": "x"}, {"type": t}]}}});
        assert!(sel(inline("token-producer")));
        assert!(sel(inline("precise-prefix-cache-scorer")));
        assert!(sel(json!({"tokenizer": {}})));
        assert!(!sel(inline("precise-prefix-cache-producer")));
        assert!(!sel(json!({})));
        // Selected with `pool.ref` too (as KServe), though no tokenizer is built then.
        let mut r = inline("token-producer");
        r["pool"] = json!({"ref": {"name": "p"}});
        assert!(sel(r));
        assert!(
            PresetStore::embedded(SYSTEM_NAMESPACE_DEFAULT)
                .unwrap()
                .get(SYSTEM_NAMESPACE_DEFAULT, well_known::TOKENIZER)
                .is_some()
        );
    }

    #[test]
    fn reads_spec_table() {
        let p = |s: &str| -> Vec<String> {
            s.split('.')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        };
        for (path, want) in [
            (".", true),
            (".Spec.Model.Name", true),
            (".spec", true),
            (".TypeMeta", true),
            (".TypeMeta.Spec", true),
            (".WorkloadSpec.Spec", true),
            (".ObjectMeta.Name", false),
            (".Name", false),
            (".Annotations", false),
            (".GlobalConfig.IngressGatewayName", false),
            (".Kind", false),
            (".TypeMeta.Kind", false),
            (".Status.URL", false),
        ] {
            assert_eq!(template::reads_spec(&p(path)), want, "{path}");
        }
    }

    #[test]
    fn shipped_presets_do_not_read_the_spec() {
        // The admission fast path: no shipped preset needs the merged spec to render.
        let store = PresetStore::embedded(SYSTEM_NAMESPACE_DEFAULT).unwrap();
        for p in store.iter() {
            assert!(!p.reads_spec, "{}", p.name);
        }
    }

    #[test]
    fn a_preset_reading_the_spec_sees_the_merged_spec() {
        let base = json!({
            "metadata": {"name": "b", "namespace": "ns"},
            "spec": {"parallelism": {"tensor": 2}}
        });
        let reader = json!({
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"template": {"containers": [{"name": "main",
                "args": ["--tp={{ .Spec.Parallelism.Tensor }}", "--model={{ .Spec.Model.Name }}"]}]}}
        });
        let store = PresetStore::from_objects(vec![base, reader], "sys").unwrap();
        let obj = json!({
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "LLMInferenceService",
            "metadata": {"name": "svc", "namespace": "ns"},
            "spec": {"baseRefs": [{"name": "r"}, {"name": "b"}], "model": {"uri": "hf://x/y"}}
        });
        let opts = ResolveOptions {
            no_well_known: true,
        };
        let out = resolve(&obj, &store, &opts).unwrap().object;
        assert_eq!(
            out.pointer("/spec/template/containers/0/args").unwrap(),
            &json!(["--tp=2", "--model=svc"])
        );
        // Key order of the object is kept, and the context's GlobalConfig does not leak.
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["apiVersion", "kind", "metadata", "spec"]);
    }

    #[test]
    fn an_objects_own_global_config_member_survives() {
        let store = PresetStore::from_objects(Vec::new(), "sys").unwrap();
        let obj = json!({"kind": "LLMInferenceService", "GlobalConfig": {"mine": 1}, "spec": {}});
        let out = resolve(&obj, &store, &ResolveOptions::default())
            .unwrap()
            .object;
        assert_eq!(out["GlobalConfig"], json!({"mine": 1}));
        let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["kind", "GlobalConfig", "spec", "metadata"]);
    }
}

/// Property-test strategies shared by the preset tests.
#[cfg(test)]
pub(crate) mod strategies {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    /// The shape of generated JSON values.
    pub(crate) struct JsonShape {
        /// Integers `0..ints`.
        pub ints: i64,
        /// The strings leaves take.
        pub strings: &'static [&'static str],
        /// The keys objects take.
        pub keys: &'static [&'static str],
        /// Nesting depth, total nodes (proptest's `prop_recursive`).
        pub depth: u32,
        pub nodes: u32,
        /// Most list items and object entries.
        pub items: usize,
        pub entries: usize,
    }

    /// JSON values of `shape`: null, booleans, small integers and the given strings as leaves;
    /// lists and objects over the given keys.
    pub(crate) fn json_values(shape: JsonShape) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (0..shape.ints).prop_map(|n| json!(n)),
            prop::sample::select(shape.strings).prop_map(|s| json!(s)),
        ];
        let (keys, items, entries) = (shape.keys, shape.items, shape.entries);
        leaf.prop_recursive(shape.depth, shape.nodes, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..items).prop_map(Value::Array),
                prop::collection::vec((prop::sample::select(keys), inner), 0..entries).prop_map(
                    |kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
                ),
            ]
        })
    }
}
