//! llmisvc: admission webhook, CRD conversion server and minimal reconciler for KServe's
//! `LLMInferenceService`.
//!
//! The pure core (`api`, and the jobs built on it) does no I/O; the server, certificate and
//! kube layers are thin wrappers around it.

pub mod api;
pub mod cli;
pub mod convert;
pub mod mutate;
pub mod presets;
pub mod validate;
