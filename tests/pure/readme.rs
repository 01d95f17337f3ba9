//! README's test command is the one `.ci/run` runs.

#[test]
fn ci_runs_the_readme_test_command() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let ci = std::fs::read_to_string(format!("{root}/.ci/run")).unwrap();
    let cmd = ci.lines().last().unwrap().trim();
    assert!(
        cmd.contains("cargo test"),
        "last line of .ci/run is the test command: {cmd}"
    );
    assert!(
        readme.lines().any(|l| l.trim() == cmd),
        "README.md must show the exact test command `{cmd}`"
    );
}
