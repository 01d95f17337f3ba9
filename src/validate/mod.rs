//! Validation of LLMInferenceService / LLMInferenceServiceConfig. PLACEHOLDER: being written.

use serde_json::Value;

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
#[derive(Clone, Debug, Default)]
pub struct ValidateConfig {}

/// Validates `new` (already mutated), with `old` on UPDATE.
pub fn validate(_old: Option<&Value>, _new: &Value, _cfg: &ValidateConfig) -> Outcome {
    Outcome::default()
}
