//! llmisvc: admission webhook, CRD conversion server and minimal reconciler for KServe's
//! `LLMInferenceService`.
//!
//! The pure core (`api`, `model`, `presets`, `mutate`, `validate`, `policy`, `convert`,
//! `pipeline`) does no I/O; the server, certificate and kube layers are thin wrappers around it.

pub mod api;
pub mod certs;
pub mod cli;
pub mod convert;
pub mod explain;
pub mod model;
pub mod mutate;
pub mod parallelism;
pub mod pipeline;
pub mod policy;
pub mod presets;
pub mod process;
pub mod reconcile;
pub mod serve;
pub mod server;
pub mod validate;
pub mod webhook_config;
