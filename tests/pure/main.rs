//! The tests that need no cluster: pure suites (mutate, validate, convert, presets, build), the
//! in-process TLS server, hostile input and the memory bound of a spawned server. One binary: one
//! link on a 2-core machine instead of one per file. `cargo test --test pure mutate::` runs one file.

#[path = "../support/mod.rs"]
mod support;

mod api_roundtrip;
mod children;
mod convert;
mod generated_files;
mod hostile;
mod imports;
mod kserve_compat;
mod kserve_presets;
mod memory;
mod monitoring;
mod mutate;
mod pipeline;
mod presets;
mod readme;
mod reconcile_build;
mod regressions;
mod render_objects;
mod review_errors;
mod server_tls;
mod spec_consumers;
mod validate;
