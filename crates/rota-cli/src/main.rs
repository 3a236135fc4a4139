//! `rota`: the command line and daemon.
//!
//! This is the only crate that parses argv, reads environment variables,
//! prints, exits or installs a tracing subscriber. It parses arguments into
//! plain values ([`cli`]), resolves configuration once, then runs a command
//! ([`commands`]). Everything it prints goes through [`output`]; progress
//! on long work through [`progress`].
//!
//! Exit codes: 0 success, 1 error, 2 usage error (and the plan codes
//! documented with `rota plan`). A closed standard output (`rota … | head`)
//! is not an error. An error is one `error: …` line with its cause chain,
//! and a `hint: …` line where there is something to do about it; a panic
//! (a bug) is reported the same way, without Rust's panic text.
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

/// mimalloc: under `rota local serve`'s load glibc malloc took ~12 % of
/// the CPU per request; with mimalloc the server spends 25–35 % less CPU
/// per request (`cargo xtask bench load`).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod agent;
mod backend;
mod cli;
mod clock;
mod commands;
mod events;
mod logging;
mod metrics;
mod output;
mod plugins;
mod progress;
mod signals;
mod store;

use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};

use crate::output::errln;

fn main() -> ExitCode {
    install_panic_hook();
    // Every HTTP client of the process (reqwest is built without a default
    // TLS provider) finds the provider installed.
    rota_kms::install_crypto_provider();
    let args = cli::terraform_flags(std::env::args_os());
    let mut command = cli::Cli::command();
    // Usage errors and help are printed before the options are parsed:
    // look for --no-color by hand (clap itself honours NO_COLOR).
    if args.iter().any(|a| a == "--no-color") {
        command = command.color(clap::ColorChoice::Never);
    }
    let cli = match command
        .try_get_matches_from(args)
        .and_then(|mut m| cli::Cli::from_arg_matches_mut(&mut m))
    {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version print to stdout and succeed; usage errors exit 2.
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if let Err(e) = clock::init() {
        errln!("error: {e}");
        return ExitCode::from(2);
    }
    logging::init(&cli.global, cli.command.is_service());
    clock::warn_if_moved();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // A native plugin step that overran its deadline still occupies a
    // blocking thread (a native call cannot be stopped); its result was
    // dropped already. Do not wait for it: exit now.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            output::report(&e);
            ExitCode::FAILURE
        }
    };
    match output::finish() {
        Ok(()) => code,
        Err(e) => {
            output::report(&e);
            ExitCode::FAILURE
        }
    }
}

/// A panic is a bug in Rota: report it as one `error:` line naming where
/// it happened instead of Rust's `thread … panicked at` text (with
/// `RUST_BACKTRACE=1`, the backtrace follows). The process still exits
/// through the panic (status 101).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        // A panic inside the HCL library while an expression is evaluated
        // becomes that expression's error (rota_engine's guard).
        if rota_engine::config::funcs::expecting_panic() {
            return;
        }
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        errln!("error: internal error{place}: {message}; this is a bug in rota, please report it");
        let backtrace = std::backtrace::Backtrace::capture();
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            errln!("{backtrace}");
        }
    }));
}
