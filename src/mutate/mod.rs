//! The mutating webhook's pure core. PLACEHOLDER: being written.

use serde_json::Value;

/// Why an object could not be mutated (for example a `baseRef` that does not exist).
#[derive(Debug, thiserror::Error)]
pub enum MutateError {
    #[error("{0}")]
    Invalid(String),
}

/// Settings of the mutation pipeline.
#[derive(Clone, Debug, Default)]
pub struct MutateConfig {}

/// Expands `obj` into its full form.
pub fn mutate(obj: &Value, _cfg: &MutateConfig) -> Result<Value, MutateError> {
    Ok(obj.clone())
}
