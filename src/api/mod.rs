//! The `serving.kserve.io` API: `LLMInferenceService` and `LLMInferenceServiceConfig` in
//! `v1alpha1` and `v1alpha2` (storage), field-compatible with KServe, and the CRDs generated
//! from these types.

pub mod common;
pub mod crd;
mod resource;
pub mod schema;
pub mod v1alpha1;
pub mod v1alpha2;

/// The API group.
pub const GROUP: &str = "serving.kserve.io";
/// The storage version.
pub const STORAGE_VERSION: &str = "v1alpha2";
/// Served versions, oldest first.
pub const VERSIONS: [&str; 2] = ["v1alpha1", "v1alpha2"];

/// The two kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Service,
    Config,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Service => "LLMInferenceService",
            Kind::Config => "LLMInferenceServiceConfig",
        }
    }
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Service => "llminferenceservices",
            Kind::Config => "llminferenceserviceconfigs",
        }
    }
    pub fn from_name(kind: &str) -> Option<Kind> {
        match kind {
            "LLMInferenceService" => Some(Kind::Service),
            "LLMInferenceServiceConfig" => Some(Kind::Config),
            _ => None,
        }
    }
    pub const ALL: [Kind; 2] = [Kind::Service, Kind::Config];
}
