//! Running the `rota` binary in tests.
//!
//! Every command runs with `ROTA_TEST_NOW` at the suite's base instant
//! (`rota_test_support::base_now`): the binary's clock starts there, so
//! nothing a test sees depends on the day or hour it runs. The binary's
//! warning about the variable is left out of [`stderr`].

use std::process::{Command, Output};

/// The built `rota` binary, on the suite's clock.
pub(crate) fn rota() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rota"));
    cmd.env_remove("RUST_LOG")
        .env_remove("ROTA_METRICS_ADDR")
        .env("ROTA_TEST_NOW", rota_test_support::base_rfc3339())
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    cmd
}

/// `rota` in `dir`, on the embedded cloud: no cloud credentials or
/// endpoint from the environment, no crash point, `HOME` in `dir`.
pub(crate) fn rota_in(dir: &std::path::Path) -> Command {
    let mut c = rota();
    c.current_dir(dir)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALICLOUD_ACCESS_KEY")
        .env_remove("ALICLOUD_SECRET_KEY")
        .env_remove("ALIBABA_CLOUD_ENDPOINT_KMS")
        .env_remove("ROTA_TEST_CRASH_AT")
        .env("HOME", dir);
    c
}

/// Runs `rota ARGS` in `dir` ([`rota_in`]).
pub(crate) fn run_in(dir: &std::path::Path, args: &[&str]) -> Output {
    rota_in(dir).args(args).output().expect("rota runs")
}

/// Runs `rota ARGS` and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    rota().args(args).output().expect("rota runs")
}

/// Standard output as text.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text, without the `ROTA_TEST_NOW` warning.
pub(crate) fn stderr(o: &Output) -> String {
    without_clock_warning(&String::from_utf8_lossy(&o.stderr))
}

/// `text` without the warning line `rota` logs when `ROTA_TEST_NOW` is set.
pub(crate) fn without_clock_warning(text: &str) -> String {
    text.split_inclusive('\n')
        .filter(|l| !l.contains("ROTA_TEST_NOW is set"))
        .collect()
}

/// Asserts `o` succeeded, showing its output otherwise; returns it.
#[track_caller]
pub(crate) fn ok_output(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    o
}

/// Polls `cond` up to `attempts` times, 100 ms apart: a hang guard for
/// waiting on another process, never a timing assertion.
#[track_caller]
pub(crate) fn eventually(what: &str, attempts: u32, mut cond: impl FnMut() -> bool) {
    for _ in 0..attempts {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("timed out waiting for {what}");
}
