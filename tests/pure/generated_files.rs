//! Generated files in the repository match what the binary generates.
//! Regenerate with `cargo run -- crds --write crds` and
//! `cargo run -- webhook-config --write webhook-config`.

use std::path::Path;

use crate::support::golden::Goldens;
use llmisvc::api::Kind;
use llmisvc::api::crd::{CrdOptions, crd_yaml, file_name};

#[test]
fn committed_crds_match_the_generator() {
    let mut goldens = Goldens::generated("run `cargo run -- crds --write crds`");
    for kind in Kind::ALL {
        let path = format!("{}/crds/{}", env!("CARGO_MANIFEST_DIR"), file_name(kind));
        let generated = crd_yaml(kind, &CrdOptions::default()).unwrap();
        goldens.check(Path::new(&path), &generated);
    }
    goldens.finish();
}

#[test]
fn committed_webhook_configs_match_the_generator() {
    use llmisvc::webhook_config::{FILE_NAME, Target, webhook_configs_yaml};
    let path = format!("{}/webhook-config/{FILE_NAME}", env!("CARGO_MANIFEST_DIR"));
    let generated = webhook_configs_yaml(&Target::default(), None).unwrap();
    let mut goldens =
        Goldens::generated("run `cargo run -- webhook-config --write webhook-config`");
    goldens.check(Path::new(&path), &generated);
    goldens.finish();
}
