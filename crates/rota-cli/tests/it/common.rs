//! Running the `rota` binary in tests.

use std::process::{Command, Output};

/// The built `rota` binary.
pub(crate) fn rota() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rota"));
    cmd.env_remove("RUST_LOG")
        .env_remove("ROTA_METRICS_ADDR")
        .env("NO_COLOR", "1")
        .env("COLUMNS", "100");
    cmd
}

/// Runs `rota ARGS` and returns its output.
pub(crate) fn run(args: &[&str]) -> Output {
    rota().args(args).output().expect("rota runs")
}

/// Standard output as text.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
