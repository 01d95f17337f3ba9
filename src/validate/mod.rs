//! Validation of LLMInferenceService / LLMInferenceServiceConfig (either version, already
//! mutated), as a pure function over JSON: parallelism and GPUs, KServe's own rules, pod
//! templates checked as PodSpecs. The platform policies (`crate::policy`, built on this
//! module's `FieldError`/`Outcome` and readers) run after these, in `crate::pipeline`.
//!
//! Nothing here panics on user data: wrong JSON types become field errors.

use serde_json::Value;

pub mod dra;
pub mod json;
pub mod kserve;
pub mod names;
pub mod parallelism;
pub mod podspec;
pub mod unsupported;

use json::{Obj, Sink};

/// A Kubernetes-style field error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Kind of error: `FieldValueInvalid`, `FieldValueRequired`, `FieldValueForbidden`, ... (metav1.CauseType).
    pub kind: ErrorKind,
    /// Field path, e.g. `spec.parallelism.tensor`.
    pub field: String,
    /// The offending value rendered as Kubernetes does (`4`, `"hf"`), if any.
    pub value: Option<String>,
    /// Why, with a hint on how to fix it.
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Required,
    Forbidden,
    NotSupported,
    Duplicate,
}

impl ErrorKind {
    /// The `metav1.CauseType` string.
    pub fn cause_type(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::NotSupported => "FieldValueNotSupported",
            ErrorKind::Duplicate => "FieldValueDuplicate",
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.kind {
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::Required => "Required value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::NotSupported => "Unsupported value",
            ErrorKind::Duplicate => "Duplicate value",
        };
        match &self.value {
            Some(v) => write!(f, "{}: {what}: {v}: {}", self.field, self.detail),
            None => write!(f, "{}: {what}: {}", self.field, self.detail),
        }
    }
}

/// The outcome of validation: errors reject, warnings are shown to the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub errors: Vec<FieldError>,
    pub warnings: Vec<String>,
}

/// Settings of the validator (GPU node profile, ...).
#[derive(Clone, Debug)]
pub struct ValidateConfig {
    /// Extended resource names counted as GPUs, a trailing `*` matching any suffix (by default
    /// [`DEFAULT_ACCELERATORS`]: `nvidia.com/gpu`, `nvidia.com/mig-*`, `amd.com/gpu`,
    /// `gpu.intel.com/*`); matched by [`crate::mutate::is_accelerator`], as in mutation.
    pub accelerator_resources: Vec<String>,
    /// GPUs of one node of the GPU profile: no pod may request more (default 8).
    pub max_gpus_per_node: u32,
}

impl Default for ValidateConfig {
    fn default() -> Self {
        Self {
            accelerator_resources: DEFAULT_ACCELERATORS.iter().map(|s| s.to_string()).collect(),
            max_gpus_per_node: 8,
        }
    }
}

/// The default accelerator resource names (the first is the default one): mutation's
/// [`crate::mutate::ACCELERATOR_PATTERNS`], one definition for both.
pub const DEFAULT_ACCELERATORS: &[&str] = crate::mutate::ACCELERATOR_PATTERNS;

/// The two kinds validated here.
pub const KIND_SERVICE: &str = "LLMInferenceService";
pub const KIND_CONFIG: &str = "LLMInferenceServiceConfig";

/// Validates `new` (already mutated), with `old` on UPDATE: the built-in checks
/// ([`check_object`]), each error and warning once. Platform policies are not run here:
/// `crate::policy` sits above this module, and the caller (`crate::pipeline::Engine::validate_in`)
/// evaluates them after these checks and joins the two with [`Outcome::merge`].
///
/// Works for `LLMInferenceService` and `LLMInferenceServiceConfig` in `v1alpha1` and
/// `v1alpha2`. For the Config kind (a partial preset) only what is present is checked.
pub fn validate(old: Option<&Value>, new: &Value, cfg: &ValidateConfig) -> Outcome {
    // Like KServe: an object being deleted is not validated (finalizer removal must pass).
    if is_deleting(old, new) {
        return Outcome::default();
    }
    let mut s = Sink::default();
    check_object(old, new, cfg, &mut s);
    s.dedup();
    Outcome {
        errors: s.errors,
        warnings: s.warnings,
    }
}

/// An UPDATE of an object being deleted (`old` given, `metadata.deletionTimestamp` set): KServe
/// validates none, so removing a finalizer always passes. Callers skip their own checks too.
pub fn is_deleting(old: Option<&Value>, new: &Value) -> bool {
    old.is_some()
        && new
            .get("metadata")
            .and_then(|m| m.get("deletionTimestamp"))
            .is_some_and(|t| !t.is_null())
}

impl Outcome {
    /// Appends `more` (errors after errors, warnings after warnings), keeping the first of
    /// each duplicate: a field two rules read (the built-in checks and a policy) is reported
    /// once.
    pub fn merge(&mut self, more: Outcome) {
        let mut errors = std::mem::take(&mut self.errors);
        errors.extend(more.errors);
        let mut s = Sink {
            errors,
            ..Sink::default()
        };
        s.warnings.append(&mut self.warnings);
        s.warnings.extend(more.warnings);
        s.dedup();
        self.errors = s.errors;
        self.warnings = s.warnings;
    }
}

/// The built-in checks (everything but policies).
pub fn check_object(old: Option<&Value>, new: &Value, cfg: &ValidateConfig, s: &mut Sink) {
    let Some(root) = new.as_object() else {
        s.wrong_type("", new, "an object");
        return;
    };
    let kind = root
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or(KIND_SERVICE);
    let is_config = kind == KIND_CONFIG;
    // A service stored un-expanded because its baseRefs named configs that do not exist yet
    // (see `presets::MISSING_BASE_REFS_ANNOTATION`) is checked like a preset: what it has must
    // be right, what the configs will add may be missing.
    let pending = !is_config && !crate::presets::missing_base_refs(new).is_empty();
    let partial = is_config || pending;
    let top = Obj {
        map: Some(root),
        path: String::new(),
    };
    let meta = top.obj("metadata", s);
    // KServe checks the managed DRA annotations of services (not of configs).
    if !is_config {
        dra::check_annotations(&meta, s);
    }
    let spec = top.obj("spec", s);
    if !spec.present() {
        if !is_config && !top.has("spec") {
            s.required("spec", "spec is required");
        }
        return;
    }
    let name = kserve::meta_name(new);
    names::check_child_names(name, is_config, s);

    // 1. Parallelism and GPUs, decode and prefill.
    parallelism::check_workload(&spec, cfg, partial, s);
    let prefill = spec.obj("prefill", s);
    parallelism::check_workload(&prefill, cfg, partial, s);
    // An old object stored un-expanded (waiting for its configs) never ran: the expansion that
    // completes it may set the parallelism the configs give.
    let old = old.filter(|o| crate::presets::missing_base_refs(o).is_empty());
    if let Some(old_spec) = old.and_then(|o| o.get("spec")) {
        let new_spec = new.get("spec");
        parallelism::check_immutable(Some(old_spec), new_spec, "spec", s);
        parallelism::check_immutable(
            old_spec.get("prefill"),
            new_spec.and_then(|sp| sp.get("prefill")),
            "spec.prefill",
            s,
        );
    }

    // 2. KServe's rules.
    if is_config {
        kserve::check_config_base_refs(&spec, s);
    }
    for w in [&spec, &prefill] {
        kserve::check_scaling(w, s);
        kserve::check_kv_cache(w, s);
        kserve::check_rollout(w, s);
    }
    kserve::check_actuator_consistency(&spec, &prefill, s);
    kserve::check_router(&spec, is_config, s);
    kserve::check_model(&spec, name, partial, s);
    unsupported::check(&spec, s);

    // 3. Pod templates as PodSpecs.
    for (path, tpl) in podspec::templates(&spec, s) {
        podspec::check_template(&path, tpl, s);
        podspec::check_pod(&path, tpl, !is_config, s);
    }
}

#[cfg(test)]
mod tests {
    use super::json::{Sink, render, whole_quantity};
    use super::*;
    use serde_json::json;

    #[test]
    fn display_matches_kubernetes() {
        let e = FieldError {
            kind: ErrorKind::Invalid,
            field: "spec.parallelism.tensor".into(),
            value: Some("4".into()),
            detail: "why".into(),
        };
        assert_eq!(
            e.to_string(),
            "spec.parallelism.tensor: Invalid value: 4: why"
        );
        assert_eq!(render(&json!("hf")), "\"hf\"");
        assert!(render(&json!({"a": "x".repeat(300)})).ends_with("..."));
    }

    #[test]
    fn quantities() {
        assert_eq!(whole_quantity(&json!(2)), Some(2));
        assert_eq!(whole_quantity(&json!("4")), Some(4));
        assert_eq!(whole_quantity(&json!("2000m")), Some(2));
        assert_eq!(whole_quantity(&json!("1500m")), None);
        assert_eq!(whole_quantity(&json!("1k")), Some(1000));
        assert_eq!(whole_quantity(&json!("two")), None);
        assert_eq!(whole_quantity(&json!(-1)), Some(-1));
        assert_eq!(whole_quantity(&json!(2.0)), Some(2));
        assert_eq!(whole_quantity(&json!([])), None);
    }

    #[test]
    fn pod_spec_schema_builds_and_walks() {
        let mut s = Sink::default();
        podspec::check_template(
            "spec.template",
            &json!({"containers": [{"name": "main", "resources": {"limits": {"cpu": 1}}, "imagePullPolicy": "Always"}], "nodeName": 1}),
            &mut s,
        );
        let r: Vec<String> = s.errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            r,
            vec![
                "spec.template.nodeName: Invalid value: 1: must be a string, not an integer"
                    .to_string()
            ]
        );
    }

    #[test]
    fn deleting_objects_are_not_validated() {
        let bad = json!({"kind": "LLMInferenceService", "metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"parallelism": {"tensor": 0}}});
        assert!(
            validate(Some(&bad), &bad, &ValidateConfig::default())
                .errors
                .is_empty()
        );
        assert!(
            !validate(None, &bad, &ValidateConfig::default())
                .errors
                .is_empty()
        );
    }

    #[test]
    fn duplicates_are_reported_once() {
        // tensor is read by several parallelism rules; one error.
        let o = validate(
            None,
            &json!({"kind": "LLMInferenceService", "metadata": {"name": "x"}, "spec": {"model": {"uri": "hf://a/b"}, "parallelism": {"tensor": "2"}}}),
            &ValidateConfig::default(),
        );
        assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
        // Merging keeps order and the first of each duplicate.
        let mut merged = o.clone();
        merged.merge(Outcome {
            errors: vec![o.errors[0].clone()],
            warnings: vec!["w".into(), "w".into()],
        });
        assert_eq!(merged.errors, o.errors);
        assert_eq!(merged.warnings, vec!["w".to_string()]);
    }
}
