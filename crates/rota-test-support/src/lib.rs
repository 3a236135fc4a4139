//! What Rota's test suites share (a dev-dependency only).
//!
//! **The suite's base instant.** No test reads the wall clock: a test that
//! needs "now" takes [`base_now`], which is `ROTA_TEST_NOW` (an RFC 3339
//! instant) when the environment sets it, else [`DEFAULT_BASE`]. `cargo
//! xtask ci` runs the time-sensitive suites again with `ROTA_TEST_NOW` at
//! hostile moments (the last seconds of a year, minutes before a DST
//! change) so that a test that only passes at some hours fails in CI, not
//! on a user's machine at 23:30. Tests that run the `rota` binary pass the
//! same instant to it as `ROTA_TEST_NOW` ([`base_rfc3339`]); the binary's
//! clock starts there and runs on.
//!
//! Tests that pin their own instants (a DST fixture, a schedule's known
//! answers) keep them: they never depended on the wall clock.
//!
//! **The local cloud.** [`cloud::open`] gives a cloud in a temp dir with
//! clients on it and the KMS shortcuts tests keep writing ([`cloud::Cloud`]);
//! [`logs::capture`] collects every tracing event for canary checks;
//! [`db`] reaches the machine's PostgreSQL and MariaDB; [`rotation`] builds
//! rotators and requests over a test cloud.
//!
//! **Native plugins.** [`build_plugin`] builds a shipped plugin crate (or a
//! test variant of it) into its own target directory, so tests of several
//! crates need nothing prebuilt.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};

pub mod cloud;
pub mod db;
pub mod logs;
pub mod rotation;
pub use rota_clock::{Clock, ManualClock, SystemClock};

/// The variable that moves the suite's base instant (and the `rota`
/// binary's clock).
pub const TEST_NOW_VAR: &str = "ROTA_TEST_NOW";

/// The base instant when `ROTA_TEST_NOW` is not set: an ordinary weekday
/// morning, far from midnight, the end of a month and any DST change.
pub const DEFAULT_BASE: &str = "2026-06-16T10:00:00Z";

/// The suite's base instant: `ROTA_TEST_NOW`, else [`DEFAULT_BASE`].
///
/// # Panics
///
/// When `ROTA_TEST_NOW` is set but not an RFC 3339 instant: the run is
/// misconfigured, and every test says so.
pub fn base_now() -> DateTime<Utc> {
    let text = std::env::var(TEST_NOW_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE.to_owned());
    parse(&text).unwrap_or_else(|| {
        panic!("{TEST_NOW_VAR}={text:?} is not an RFC 3339 instant such as {DEFAULT_BASE}")
    })
}

/// [`base_now`] as RFC 3339 text with seconds, e.g. for `ROTA_TEST_NOW`
/// of a child process.
pub fn base_rfc3339() -> String {
    rfc3339(base_now())
}

/// A manual clock standing at [`base_now`].
pub fn manual_clock() -> ManualClock {
    ManualClock::new(base_now())
}

/// A system clock started at [`base_now`], running on at the real pace.
pub fn system_clock() -> SystemClock {
    SystemClock::starting_at(base_now())
}

/// An RFC 3339 instant; `None` if `text` is not one.
pub fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// `t` as RFC 3339 text with whole seconds and `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/rota-test-support is two levels down")
        .to_path_buf()
}

/// The file name of `package`'s library on this platform
/// (`libexample_echo.so` for `example-echo` on Linux).
pub fn library_file(package: &str) -> String {
    format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        package.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Builds the plugin crate `package` with `features` into a target
/// directory of its own under `target/plugin-tests` (no wait on the running
/// test's build lock, and variants never overwrite each other), and
/// returns the library's path. Each variant is built once per process;
/// cargo makes repeated builds no-ops.
///
/// # Panics
///
/// When the build fails (with cargo's output).
pub fn build_plugin(package: &str, features: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let variant = if features.is_empty() {
        package.to_owned()
    } else {
        format!("{package}+{}", features.replace(',', "+"))
    };
    if let Some(p) = built.get_or_insert_with(HashMap::new).get(&variant) {
        return p.clone();
    }
    let root = workspace_root();
    let target = root.join("target/plugin-tests").join(&variant);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .env_remove("CARGO_TARGET_DIR")
        .args(["build", "--quiet", "-p", package, "--target-dir"])
        .arg(&target);
    if !features.is_empty() {
        cmd.args(["--features", features]);
    }
    let out = cmd.output().expect("cargo runs");
    assert!(
        out.status.success(),
        "building {variant} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = target.join("debug").join(library_file(package));
    assert!(path.exists(), "{} was not built", path.display());
    built
        .get_or_insert_with(HashMap::new)
        .insert(variant, path.clone());
    path
}

/// Copies a built library into `dir` (created), returning the copy.
///
/// # Panics
///
/// When the copy fails.
pub fn copy_into(lib: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).expect("create the plugin folder");
    let dest = dir.join(lib.file_name().expect("a library file"));
    std::fs::copy(lib, &dest).expect("copy the library");
    dest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_base_parses() {
        assert_eq!(rfc3339(parse(DEFAULT_BASE).unwrap()), DEFAULT_BASE);
        assert_eq!(
            rfc3339(parse("2027-03-14T01:55:00-05:00").unwrap()),
            "2027-03-14T06:55:00Z"
        );
        assert!(parse("tomorrow").is_none());
    }
}
