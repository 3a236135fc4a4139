//! `rota`: the command line and daemon.
//!
//! This is the only crate that parses argv, reads environment variables,
//! prints, exits or installs a tracing subscriber. It parses arguments into
//! plain values ([`cli`]), resolves configuration once, then runs a command
//! ([`commands`]).
//!
//! Exit codes: 0 success, 1 error, 2 usage error (and the plan codes
//! documented with `rota plan`).
#![forbid(unsafe_code)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod backend;
mod cli;
mod commands;
mod logging;
mod metrics;
mod output;
mod plugins;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse_from(cli::terraform_flags(std::env::args_os())) {
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
    logging::init(&cli.global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
