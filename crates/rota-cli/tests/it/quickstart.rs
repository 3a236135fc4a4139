//! The README's main command, run as written from the repository root
//! (only `--data-dir` added, so the run starts from a fresh temp directory):
//! apply the quickstart, rotate every secret through three plugins
//! (password, managed, the Rhai ecs-password), run the compliance workflow,
//! print the summary.

use std::path::Path;
use std::process::Output;

use crate::common::{rota, stderr, stdout};

/// The README's command line after `cargo run --release -p rota-cli --`.
const MAIN_COMMAND: &[&str] = &["run", "examples/quickstart", "--apply", "--once"];

fn run_main_command(data: &Path) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    rota()
        .current_dir(root)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALICLOUD_ACCESS_KEY")
        .env_remove("ALICLOUD_SECRET_KEY")
        .env_remove("ALIBABA_CLOUD_ENDPOINT_KMS")
        .env_remove("ALIBABA_CLOUD_REGION_ID")
        .env("HOME", data)
        .args(MAIN_COMMAND)
        .arg("--data-dir")
        .arg(data)
        .output()
        .expect("rota runs")
}

#[test]
fn the_readme_main_command_applies_rotates_and_summarises() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let line = format!(
        "cargo run --release -p rota-cli -- {}",
        MAIN_COMMAND.join(" ")
    );
    assert!(readme.contains(&line), "the README does not show: {line}");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = run_main_command(&data);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let summary = &out[out.find("Apply complete!").expect("apply ran")..];
    insta::assert_snapshot!(summary);
    // The README quotes the summary as printed.
    for line in summary.lines().skip(1).filter(|l| !l.is_empty()) {
        assert!(readme.contains(line), "the README does not quote: {line}");
    }
    assert!(
        stderr(&o).contains("using the embedded local cloud"),
        "{}",
        stderr(&o)
    );

    // A second run succeeds: nothing changed, nothing due until next week.
    let o = run_main_command(&data);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("No changes.") && stdout(&o).contains("0 due: 0 rotated"),
        "{}",
        stdout(&o)
    );
}
