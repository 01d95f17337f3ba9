//! Generated files in the repository match what the binary generates.
//! Regenerate with `cargo run -- crds --write crds` and
//! `cargo run -- webhook-config --write webhook-config`.

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

#[test]
fn committed_webhook_configs_match_the_generator() {
    use llmisvc::webhook_config::{FILE_NAME, Target, webhook_configs_yaml};
    let path = format!("{}/webhook-config/{FILE_NAME}", env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = webhook_configs_yaml(&Target::default(), None).unwrap();
    assert!(
        committed == generated,
        "{path} is out of date: run `cargo run -- webhook-config --write webhook-config`"
    );
}
