//! Generated files in the repository match what the binary generates.
//! Regenerate with `cargo run -- crds --write crds`.

use llmisvc::api::Kind;
use llmisvc::api::crd::{CrdOptions, crd_yaml, file_name};

#[test]
fn committed_crds_match_the_generator() {
    for kind in Kind::ALL {
        let path = format!("{}/crds/{}", env!("CARGO_MANIFEST_DIR"), file_name(kind));
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = crd_yaml(kind, &CrdOptions::default()).unwrap();
        assert!(
            committed == generated,
            "{path} is out of date: run `cargo run -- crds --write crds`"
        );
    }
}
