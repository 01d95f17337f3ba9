//! The real-cluster suite: etcd + kube-apiserver (and, where a test needs it, controller-manager,
//! scheduler, kwok GPU nodes and the LeaderWorkerSet controller) from the test bed
//! (`tests/e2e/provision.sh`). Outside CI a missing test bed skips each test with a message; with
//! `CI` set it fails. `cargo test --test cluster e2e_testbed::` runs one file.

#[path = "../support/mod.rs"]
mod support;

mod e2e_convert;
mod e2e_crds;
mod e2e_helm;
mod e2e_mutate;
mod e2e_namespaces;
mod e2e_presets;
mod e2e_reconcile;
mod e2e_selfmanaged;
mod e2e_testbed;
mod e2e_webhook;
