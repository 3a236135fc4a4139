//! `cargo xtask`: all of Rota's automation, so CI and developers run the same
//! thing.
//!
//! - `cargo xtask ci`: formatting, clippy with warnings denied (also on
//!   example-echo's test-only feature variants), the whole test suite (the
//!   tidy checks are tests in this crate), then the time-sensitive suites
//!   again at hostile instants (`ROTA_TEST_NOW`: the last seconds of a
//!   year; minutes before a DST change under `TZ=America/New_York` and a
//!   German locale) — exactly what CI runs;
//! - `cargo xtask bench [NAME…]`: the benchmarks, printing their figures;
//! - `cargo xtask tidy`: only the repository hygiene tests;
//! - `cargo xtask plugins`: builds the native plugins in release mode into
//!   `target/plugins/<name>/` (what `rota` discovers with
//!   `--plugin-dir target/plugins`); tests build what they load themselves;
//! - `cargo xtask interop-setup`: the Python venv with the official SDKs and
//!   the official Node.js KMS SDK (`npm ci` into `target/interop-node`)
//!   that the interop tests use (`ci` runs it before the tests);
//! - `cargo xtask fuzz [TARGET…] [SECONDS]`: runs the `cargo fuzz` targets
//!   in `fuzz/` (nightly; not part of CI), each for SECONDS (default 60),
//!   from the seed corpora, and prints executions, coverage and crashes.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// The benchmarks `cargo xtask bench` knows: name, package, bench target.
const BENCHES: &[(&str, &str, &str)] = &[
    ("sign", "rota-kms", "sign"),
    ("local", "rota-local", "local"),
    ("load", "rota-local", "load"),
    ("scheduler", "rota-scheduler", "scheduler"),
    ("lifecycle", "rota-engine", "lifecycle"),
    ("plugin", "rota-plugin-host", "plugin"),
    ("rotation", "rota-rotation", "rotation"),
    ("events", "rota-rotation", "events"),
    ("script", "rota-script", "script"),
];

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("bench") => bench(&args[1..]),
        Some("tidy") => cargo(&["test", "-p", "xtask", "--", "tidy"]),
        Some("interop-setup") => interop_setup().and_then(|()| interop_node_setup()),
        Some("plugins") => plugins(),
        Some("fuzz") => fuzz(&args[1..]),
        Some("help" | "--help" | "-h") | None => {
            println!(
                "usage: cargo xtask <ci | bench [{}] | plugins | tidy | interop-setup | fuzz [{}] [SECONDS]>",
                bench_names().join(" | "),
                FUZZ_TARGETS.join(" | ")
            );
            Ok(())
        }
        Some(other) => {
            bail!("unknown task {other:?}; tasks: ci, bench, plugins, tidy, interop-setup, fuzz")
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace root")
        .to_path_buf()
}

fn bench_names() -> Vec<&'static str> {
    BENCHES.iter().map(|b| b.0).collect()
}

fn ci() -> Result<()> {
    // Snapshots are reviewed, never written by CI.
    step("format", || cargo(&["fmt", "--all", "--check"]))?;
    step("clippy", || {
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ])
    })?;
    // example-echo's test-only variants are not part of --workspace builds.
    for features in ["wrong-abi", "panic-in-set", "no-entry"] {
        step(
            &format!("clippy example-echo --features {features}"),
            || {
                cargo(&[
                    "clippy",
                    "-p",
                    "example-echo",
                    "--all-targets",
                    "--locked",
                    "--features",
                    features,
                    "--",
                    "-D",
                    "warnings",
                ])
            },
        )?;
    }
    step("interop venv", interop_setup)?;
    step("interop node packages", interop_node_setup)?;
    step("prometheus", prometheus_setup)?;
    step("tests", || tests(None, &[]))?;
    // The time-sensitive suites again, at instants where a test that reads
    // the wall clock (or assumes a time zone) breaks: the build is reused.
    for run in HOSTILE_RUNS {
        let mut env = vec![("ROTA_TEST_NOW", run.now)];
        env.extend_from_slice(run.env);
        step(&format!("tests at {} ({})", run.now, run.what), || {
            tests(Some(TIME_SENSITIVE), &env)
        })?;
    }
    println!("xtask ci: all steps passed");
    Ok(())
}

/// A moment at which the time-sensitive suites run again.
struct HostileRun {
    /// What makes it hostile.
    what: &'static str,
    /// The suites' base instant (`ROTA_TEST_NOW`).
    now: &'static str,
    /// More environment: the machine's time zone and locale.
    env: &'static [(&'static str, &'static str)],
}

/// The instants `cargo xtask ci` runs [`TIME_SENSITIVE`] at, after the
/// ordinary run: the suites' clocks start there and run on, so a test that
/// takes a few seconds crosses the moment.
const HOSTILE_RUNS: &[HostileRun] = &[
    HostileRun {
        what: "30 s before a new year",
        now: "2026-12-31T23:59:30Z",
        env: &[("TZ", "UTC")],
    },
    HostileRun {
        what: "5 min before New York's spring DST change, in that zone, German locale",
        now: "2027-03-14T06:55:00Z",
        env: &[
            ("TZ", "America/New_York"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_ALL", "de_DE.UTF-8"),
        ],
    },
];

/// The packages whose tests depend on "now" (through the suites' base
/// instant or the `rota` binary's clock).
const TIME_SENSITIVE: &[&str] = &[
    "rota-clock",
    "rota-test-support",
    "rota-scheduler",
    "rota-local",
    "rota-rotation",
    "rota-engine",
    "rota-script",
    "rota-cli",
];

/// Runs the workspace's tests with `env`, only those of `packages` when
/// given. The selection is a nextest filter over the whole workspace, so
/// features resolve as in the full run and nothing is rebuilt; without
/// nextest, `cargo test` runs every package.
fn tests(packages: Option<&[&str]>, env: &[(&str, &str)]) -> Result<()> {
    if !has_nextest() {
        return cargo_env(&["test", "--workspace", "--locked", "--no-fail-fast"], env);
    }
    let mut args = vec![
        "nextest",
        "run",
        "--workspace",
        "--locked",
        "--no-fail-fast",
        "--test-threads",
        "4",
    ];
    let filter = packages.map(|ps| {
        ps.iter()
            .map(|p| format!("package({p})"))
            .collect::<Vec<_>>()
            .join(" | ")
    });
    if let Some(f) = &filter {
        args.extend(["-E", f.as_str()]);
    }
    cargo_env(&args, env)
}

fn bench(names: &[String]) -> Result<()> {
    let selected: Vec<&(&str, &str, &str)> = if names.is_empty() {
        BENCHES.iter().collect()
    } else {
        let mut out = Vec::new();
        for n in names {
            let b = BENCHES.iter().find(|b| b.0 == n).with_context(|| {
                format!(
                    "unknown benchmark {n:?}; known: {}",
                    bench_names().join(", ")
                )
            })?;
            out.push(b);
        }
        out
    };
    for (name, package, target) in selected {
        step(&format!("bench {name}"), || {
            cargo(&["bench", "--locked", "-p", package, "--bench", target])
        })?;
    }
    Ok(())
}

/// The fuzz targets in fuzz/fuzz_targets.
const FUZZ_TARGETS: &[&str] = &[
    "http_request",
    "dispatch",
    "form",
    "sign_v1",
    "sign_v3",
    "config_hcl",
    "world",
    "schedule",
    "plugin_manifest",
    "answers",
];

/// `cargo xtask fuzz [TARGET…] [SECONDS]`.
fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets: Vec<&str> = Vec::new();
    for a in args {
        if let Ok(n) = a.parse::<u64>() {
            seconds = n.max(1);
        } else if let Some(t) = FUZZ_TARGETS.iter().find(|t| **t == a.as_str()) {
            targets.push(t);
        } else {
            bail!(
                "unknown fuzz target {a:?}; targets: {} (then, optionally, the seconds per target)",
                FUZZ_TARGETS.join(", ")
            );
        }
    }
    if targets.is_empty() {
        targets = FUZZ_TARGETS.to_vec();
    }
    let nightly = Command::new("cargo")
        .args(["+nightly", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !nightly {
        bail!("cargo fuzz needs the nightly toolchain: rustup toolchain install nightly");
    }
    let has_fuzz = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_fuzz {
        step("install cargo-fuzz", || {
            cargo(&["install", "cargo-fuzz", "--locked"])
        })?;
    }
    seed_corpora()?;
    let mut summary = Vec::new();
    for t in &targets {
        let corpus = format!("corpus/{t}");
        let seeds = format!("seeds/{t}");
        std::fs::create_dir_all(Path::new("fuzz").join(&corpus))?;
        std::fs::create_dir_all(Path::new("fuzz").join(&seeds))?;
        let max_time = format!("-max_total_time={seconds}");
        let out = Command::new("cargo")
            .current_dir("fuzz")
            .args(["+nightly", "fuzz", "run", "-O", t, &corpus, &seeds, "--"])
            .args([
                max_time.as_str(),
                "-rss_limit_mb=4096",
                "-max_len=65536",
                "-print_final_stats=1",
            ])
            .output()
            .with_context(|| format!("cannot run cargo fuzz for {t}"))?;
        let log = String::from_utf8_lossy(&out.stderr);
        std::fs::create_dir_all("target/fuzz-logs")?;
        std::fs::write(format!("target/fuzz-logs/{t}.log"), log.as_bytes())?;
        let stat = |name: &str| {
            log.lines()
                .rev()
                .find_map(|l| {
                    l.strip_prefix(name)
                        .map(|v| v.trim().trim_start_matches(':').trim().to_owned())
                })
                .unwrap_or_else(|| "?".to_owned())
        };
        let cov = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split_once(" cov: ")
                    .map(|(_, r)| r.split_whitespace().next().unwrap_or("?").to_owned())
            })
            .unwrap_or_else(|| "?".to_owned());
        let line = format!(
            "{t:<16} {} runs in {} s, {} exec/s, coverage {cov} edges, corpus {}: {}",
            stat("stat::number_of_executed_units"),
            seconds,
            stat("stat::average_exec_per_sec"),
            stat("stat::new_units_added").replace('?', "+0"),
            if out.status.success() {
                "no crash".to_owned()
            } else {
                format!("FAILED (see target/fuzz-logs/{t}.log and fuzz/artifacts/{t}/)")
            }
        );
        println!("{line}");
        summary.push((line, out.status.success()));
    }
    println!("\nfuzz summary ({seconds} s per target):");
    for (l, _) in &summary {
        println!("  {l}");
    }
    if summary.iter().any(|(_, ok)| !ok) {
        bail!("a fuzz target crashed: each crash becomes a regression test");
    }
    Ok(())
}

/// Seeds from the repository's own inputs: example configurations and
/// world files, plugin manifests (fuzz/seeds holds the hand-written ones).
fn seed_corpora() -> Result<()> {
    let copy = |from: &Path, target: &str| -> Result<()> {
        let dir = Path::new("fuzz/corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        let name = from.to_string_lossy().replace(['/', '\\'], "_");
        std::fs::copy(from, dir.join(name))
            .with_context(|| format!("cannot copy {}", from.display()))?;
        Ok(())
    };
    for entry in walk(Path::new("examples"))? {
        match entry.extension().and_then(|e| e.to_str()) {
            Some("tf" | "hcl") if entry.file_name().is_some_and(|f| f == "world.hcl") => {
                copy(&entry, "world")?;
            }
            Some("tf" | "hcl") => copy(&entry, "config_hcl")?,
            _ => {}
        }
    }
    for entry in walk(Path::new("plugins"))? {
        if entry.file_name().is_some_and(|f| f == "plugin.toml") {
            copy(&entry, "plugin_manifest")?;
        }
    }
    Ok(())
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The native plugins shipped in plugins/ (cargo packages).
const NATIVE_PLUGINS: &[&str] = &["example-echo", "postgres-role"];

/// Builds the native plugins (release) and copies each library to
/// `target/plugins/<name>/`.
fn plugins() -> Result<()> {
    let mut args = vec!["build", "--release", "--locked"];
    for p in NATIVE_PLUGINS {
        args.extend(["-p", p]);
    }
    cargo(&args)?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    for p in NATIVE_PLUGINS {
        let file = format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            p.replace('-', "_"),
            std::env::consts::DLL_SUFFIX
        );
        let dir = Path::new("target/plugins").join(p);
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let from = target.join("release").join(&file);
        std::fs::copy(&from, dir.join(&file))
            .with_context(|| format!("cannot copy {}", from.display()))?;
        println!("{}", dir.join(&file).display());
    }
    Ok(())
}

/// The Python virtual environment the SDK interop tests run in.
const INTEROP_VENV: &str = "target/interop-venv";

/// Creates the interop venv and installs the official SDKs pinned in
/// tests/interop/requirements.txt (the KMS SDK, and the caching Secrets
/// Manager client with the old core it brings), unless they are there.
fn interop_setup() -> Result<()> {
    let python = Path::new(INTEROP_VENV).join("bin/python");
    let ready = python.exists()
        && Command::new(&python)
            .args([
                "-c",
                "import alibabacloud_kms20160120, alibaba_cloud_secretsmanager_client",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if ready {
        println!("interop venv ready at {INTEROP_VENV}");
        return Ok(());
    }
    run_cmd(Command::new("python3").args(["-m", "venv", INTEROP_VENV]))?;
    run_cmd(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "-r",
        "tests/interop/requirements.txt",
    ]))
}

/// Where the Node.js interop packages go (tests/interop/node/package.json
/// and its lock, installed with `npm ci`).
const INTEROP_NODE: &str = "target/interop-node";

/// Installs the official Node.js KMS SDK pinned in tests/interop/node for
/// the Node interop test, unless it is already there.
fn interop_node_setup() -> Result<()> {
    let dir = Path::new(INTEROP_NODE);
    let lock = Path::new("tests/interop/node/package-lock.json");
    let installed = dir.join("package-lock.json");
    let ready = dir.join("node_modules/@alicloud/kms20160120").is_dir()
        && std::fs::read(&installed).ok() == std::fs::read(lock).ok();
    if ready {
        println!("interop node packages ready at {INTEROP_NODE}");
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for f in ["package.json", "package-lock.json"] {
        std::fs::copy(Path::new("tests/interop/node").join(f), dir.join(f))
            .with_context(|| format!("cannot copy tests/interop/node/{f}"))?;
    }
    run_cmd(
        Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(dir),
    )
}

/// The verified-rotation tests start the real Prometheus (the Debian
/// package): installed here when the machine lacks it (as root, or through
/// sudo).
fn prometheus_setup() -> Result<()> {
    let present = ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .any(|p| Path::new(p).exists());
    if present {
        println!("prometheus is installed");
        return Ok(());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let apt = |args: &[&str]| {
        let mut c = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        c.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        run_cmd(&mut c)
    };
    if apt(&["install", "-y", "--no-install-recommends", "prometheus"]).is_err() {
        apt(&["update"])?;
        apt(&["install", "-y", "--no-install-recommends", "prometheus"])?;
    }
    Ok(())
}

fn run_cmd(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} exited with {status}");
    }
    Ok(())
}

fn has_nextest() -> bool {
    Command::new("cargo")
        .args(["nextest", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    println!("==> {name}");
    let start = std::time::Instant::now();
    f().with_context(|| format!("step {name:?} failed"))?;
    println!("<== {name} ({:.1} s)", start.elapsed().as_secs_f64());
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    cargo_env(args, &[])
}

fn cargo_env(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(args)
        .env("INSTA_UPDATE", "no")
        .envs(env.iter().copied())
        .status()
        .with_context(|| format!("cannot run cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} exited with {status}", args.join(" "));
    }
    Ok(())
}
