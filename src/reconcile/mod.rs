//! The reconciler: turns a stored (already expanded) `LLMInferenceService` into Kubernetes
//! objects and reports their state back.
//!
//! - [`build`]: pure; service in, child objects out (names and labels follow KServe's).
//! - [`group`]: pure; `route.group` traffic splitting (members' weighted backendRefs).
//! - [`status`]: pure; service + live children + presets in, `status` out.
//! - [`controller`]: the kube-runtime controller (server-side apply, pruning, status, leader
//!   election).

pub mod build;
pub mod controller;
pub mod group;
pub mod status;

pub use build::{BuildError, build};
pub use status::status;
