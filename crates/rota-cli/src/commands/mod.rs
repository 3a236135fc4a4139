//! Command implementations: one module per command family.

use std::process::ExitCode;

use anyhow::Result;
use clap::CommandFactory as _;

use crate::cli::{Cli, Command};

mod daemon;
mod events;
mod init;
mod lifecycle;
mod local;
mod plugins;
mod records;
mod rotate;
mod rotation;
mod schedule;
mod secret;
mod workflow;

pub(crate) use lifecycle::load as load_config;
pub(crate) use rotation::{host_name, owner_id};

/// Runs the parsed command.
pub(crate) async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics on a failed write
            // (a closed pipe), output::write_stdout does not.
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "rota", &mut script);
            crate::output::write_stdout(&script);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedule { command } => Ok(schedule::run(command, cli.global.output)),
        Command::Local { command } => local::run(command, &cli.global).await,
        Command::Plugins { command } => plugins::run(command, &cli.global),
        Command::Workflow { command } => workflow::run(command, &cli.global).await,
        Command::Init { dir } => init::run(dir, &cli.global),
        Command::Agent(args) => crate::agent::run(&cli.global, args).await,
        Command::Secret { command } => secret::run(command, &cli.global).await,
        Command::Validate(_)
        | Command::Plan(_)
        | Command::Apply(_)
        | Command::Destroy(_)
        | Command::Import(_)
        | Command::Show(_)
        | Command::Output(_) => lifecycle::run(cli.command, &cli.global).await,
        Command::Rotate(_)
        | Command::Run(_)
        | Command::Status(_)
        | Command::History(_)
        | Command::Events(_) => rotation::run(cli.command, cli.global).await,
    }
}
