//! The jobs, wired together: the same pure calls serve the webhook and the offline CLI.
//! No I/O here; the server keeps an `Engine` behind an `ArcSwap` and swaps it on reload.

use serde_json::Value;

use crate::policy::PolicySet;
use crate::{convert, mutate, validate};

/// Everything a request needs, built once (presets parsed, policies compiled) and shared.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    pub mutate_cfg: mutate::MutateConfig,
    pub validate_cfg: validate::ValidateConfig,
    pub policies: PolicySet,
}

impl Engine {
    /// The mutating webhook's decision: the expanded object.
    pub fn mutate(&self, obj: &Value) -> Result<Value, String> {
        mutate::mutate(obj, &self.mutate_cfg).map_err(|e| e.to_string())
    }

    /// The validating webhook's decision.
    pub fn validate(&self, old: Option<&Value>, new: &Value) -> validate::Outcome {
        validate::validate(old, new, &self.validate_cfg, &self.policies)
    }

    /// The conversion webhook's job for one object.
    pub fn convert(&self, obj: &Value, to: &str) -> Result<Value, String> {
        convert::convert(obj, to).map_err(|e| e.to_string())
    }
}
