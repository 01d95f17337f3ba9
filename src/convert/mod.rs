//! Conversion between `v1alpha1` and `v1alpha2` (both kinds). PLACEHOLDER: being written.

use serde_json::Value;

/// Why an object could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{0}")]
    Invalid(String),
}

/// Converts `obj` (an LLMInferenceService or LLMInferenceServiceConfig in either version) to
/// `desired_api_version` (`serving.kserve.io/v1alpha1` or `serving.kserve.io/v1alpha2`).
/// `metadata` is kept as is except for the annotations that carry what the target version lacks.
pub fn convert(obj: &Value, desired_api_version: &str) -> Result<Value, ConvertError> {
    let mut out = obj.clone();
    out["apiVersion"] = Value::String(desired_api_version.to_string());
    Ok(out)
}
