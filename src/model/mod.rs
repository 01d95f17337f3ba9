//! The one model of an `LLMInferenceService`: the only code that interprets one.
//!
//! Pure (no I/O, no kube client). Everything else reads a service through it:
//!
//! - [`json`]: the one path-aware accessor over `serde_json::Value` (null counts as absent) with
//!   one error type, [`json::JsonError`] (the field path and the JSON type expected, or that the
//!   field is missing); also the one JSON type wording ([`json::type_name`]) and the one
//!   Kubernetes quantity parser ([`json::Quantity`]).
//! - [`view`]: [`view::ServiceView`] / [`view::PoolView`], a service read once: its version,
//!   its pools (decode, prefill), multi-node (a `worker`), the prefill/decode split, scaling, the
//!   router's shape, and the only `gpus_per_pod`, `group_size` and local ranks (the size rules of
//!   [`crate::parallelism::Sizes`]).
//! - [`children`]: KServe's child names (`ChildName`), labels and label values, ports and
//!   group/version/kinds.
//! - [`md5`]: the digests the names (knative's `ChildName`) and content hashes use.
//!
//! `mutate`, `validate` and `presets` keep editing the `Value` itself (unknown fields kept,
//! minimal patches) but read it through this module.

pub mod children;
pub mod json;
pub mod md5;
pub mod view;
