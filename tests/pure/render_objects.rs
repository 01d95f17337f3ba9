//! `llmisvc render --objects`: the children the reconciler would apply, for every example.
//!
//! `tests/golden/objects/NAME.out.yaml` is the output for `examples/NAME.yaml` with the
//! shipped presets, `tests/golden/objects/samples/NAME.out.yaml` for `examples/samples/NAME.yaml`
//! (one service per KServe sample feature: P/D, tokenizer, managed DRA, ...). Regenerate with
//! `UPDATE_GOLDEN=1 cargo test --test pure render_objects::`.

use crate::support;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn render(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_llmisvc"))
        .arg("render")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("llmisvc runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `examples/*.yaml` and `examples/samples/*.yaml`, as paths below `examples/` without `.yaml`.
fn examples() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut v = Vec::new();
    for sub in ["", "samples/"] {
        for e in std::fs::read_dir(root.join(sub)).unwrap() {
            let Ok(n) = e.unwrap().file_name().into_string() else {
                continue;
            };
            if let Some(stem) = n.strip_suffix(".yaml") {
                v.push(format!("{sub}{stem}"));
            }
        }
    }
    v.sort();
    assert!(v.iter().any(|n| n.starts_with("samples/")));
    v
}

#[test]
fn golden_files() {
    let mut goldens = support::golden::Goldens::updatable(
        "UPDATE_GOLDEN=1 cargo test --test pure render_objects::",
    );
    for name in examples() {
        let input = format!("examples/{name}.yaml");
        let (ok, yaml, err) = render(&["-f", &input, "--objects"]);
        assert!(ok, "{input}: {err}");
        let golden = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/objects")
            .join(format!("{name}.out.yaml"));
        goldens.check(&golden, &yaml);
        // JSON output: the same objects.
        let (ok, json, err) = render(&["-f", &input, "--objects", "-o", "json"]);
        assert!(ok, "{input}: {err}");
        let from_json: Vec<Value> = serde_json::Deserializer::from_str(&json)
            .into_iter::<Value>()
            .map(Result::unwrap)
            .collect();
        let from_yaml: Vec<Value> = llmisvc::presets::parse_yaml_documents(&yaml, &input).unwrap();
        assert_eq!(from_json, from_yaml, "{input}");
        assert!(
            from_yaml.iter().any(|o| o["kind"] == "Service"),
            "{input}: no workload Service"
        );
    }
    goldens.finish();
}

#[test]
fn refused_services_print_no_objects() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\nmetadata:\n  name: llama-3.2-3b-instruct\nspec:\n  model:\n    uri: hf://meta-llama/Llama-3.2-3B-Instruct\n",
    )
    .unwrap();
    let (ok, out, err) = render(&["-f", f.to_str().unwrap(), "--objects"]);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("metadata.name"), "{err}");
}

/// `llmisvc render ... | head` ends quietly when the reader goes away (no panic on a broken
/// pipe, found by a new user: `render --explain | head` exited 101 with a panic message).
#[test]
fn a_closed_stdout_ends_render_quietly() {
    use std::io::Read;
    let root = env!("CARGO_MANIFEST_DIR");
    // Four copies: ~200 KB, more than a pipe holds, so the writer meets the closed end.
    let file = format!("{root}/examples/prefill-decode-multinode.yaml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_llmisvc"))
        .args(["render", "--explain"])
        .args(["-f", &file, "-f", &file, "-f", &file, "-f", &file])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let mut err = String::new();
    child
        .stderr
        .as_mut()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(status.code(), Some(101), "{err}");
}

/// A refused service: `render` (plain, `--objects`, `--explain`, `--diff`) prints the field
/// error as `validate` and kubectl do
/// (`field: Invalid value: <value>: why`), with the document it came from, and exits 1.
#[test]
fn render_prints_a_refusal_as_a_field_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\n\
         metadata: {name: bad, namespace: demo}\n\
         spec:\n  model: {uri: \"hf://Qwen/Qwen3-0.6B\"}\n  parallelism: {tensor: \"4\"}\n",
    )
    .unwrap();
    for extra in [&[][..], &["--objects"], &["--explain"], &["--diff"]] {
        let mut args = vec!["-f", file.to_str().unwrap()];
        args.extend_from_slice(extra);
        let (ok, stdout, stderr) = render(&args);
        assert!(!ok, "{extra:?}");
        assert!(stdout.is_empty(), "{extra:?}: {stdout}");
        assert_eq!(
            stderr.trim(),
            format!(
                "{}#1: spec.parallelism.tensor: Invalid value: \"4\": must be an integer, not a string",
                file.display()
            ),
            "{extra:?}"
        );
    }
}

/// `validate` names the document of every error (`<file>#<n>: field: ...`), so the errors of
/// several files stay apart; the valid ones are reported on stderr.
#[test]
fn validate_names_the_document_of_each_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: serving.kserve.io/v1alpha2\nkind: LLMInferenceService\n\
         metadata: {name: bad, namespace: demo}\n\
         spec:\n  model: {uri: \"hf://Qwen/Qwen3-0.6B\"}\n  parallelism: {tensor: \"4\"}\n",
    )
    .unwrap();
    let good = format!("{}/examples/minimal.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(env!("CARGO_BIN_EXE_llmisvc"))
        .args(["validate", "-f", &good, "-f"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        format!(
            "{}#1: spec.parallelism.tensor: Invalid value: \"4\": must be an integer, not a string",
            bad.display()
        )
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{good}#1 (")), "{stderr}");
    assert!(stderr.contains("): valid"), "{stderr}");
}
