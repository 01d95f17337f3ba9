//! Test support shared by the integration tests.
#![allow(dead_code)]

pub mod client;
pub mod cluster;
pub mod e2e;
pub mod golden;
pub mod server;
