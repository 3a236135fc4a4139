//! Argument definitions: argv parsed into plain values, nothing resolved yet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Rota automates the lifecycle of Alibaba Cloud KMS secrets: declare,
/// rotate on schedules, and run lifecycle workflows.
#[derive(Debug, Parser)]
#[command(name = "rota", version, propagate_version = true, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Configuration file or directory (default: the current directory)
    #[arg(short = 'c', long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Data directory of the embedded local cloud (default: .rota/ beside the configuration)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// aliyun CLI profile to take credentials from
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// Alibaba Cloud region id, e.g. cn-hangzhou
    #[arg(long, global = true, value_name = "REGION")]
    pub(crate) region: Option<String>,

    /// Send API requests to this endpoint (e.g. http://127.0.0.1:8080)
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint: Option<String>,

    /// Output format of commands that print data
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub(crate) output: OutputFormat,

    /// Less output (errors only)
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// More output (-v debug, -vv trace)
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Never use colour (also: the NO_COLOR environment variable)
    #[arg(long, global = true)]
    pub(crate) no_color: bool,

    /// Log format on standard error
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

/// How data is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// Human-readable tables and lines
    Text,
    /// Stable JSON
    Json,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines
    Text,
    /// One JSON object per line
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print a shell completion script
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Inspect schedules
    Schedule {
        #[command(subcommand)]
        command: ScheduleCommand,
    },
}

/// `rota schedule …`
#[derive(Debug, Subcommand)]
pub(crate) enum ScheduleCommand {
    /// Print the next fire times of a schedule, one RFC 3339 UTC time per line
    ///
    /// EXPR is 5-field cron (minute hour day-of-month month day-of-week;
    /// Sunday is 0 or 7), 6-field cron with seconds first, a macro (@hourly,
    /// @daily, @weekly, @monthly, @yearly), an interval (30m, 12h, 7d,
    /// 604800s) or a one-shot time (2026-03-08T02:30:00Z).
    Next {
        /// The schedule expression
        #[arg(value_name = "EXPR", allow_hyphen_values = true)]
        expr: String,
        /// IANA time zone the schedule's wall clock is in
        #[arg(long, value_name = "ZONE", default_value = "UTC")]
        tz: String,
        /// How many fire times to print
        #[arg(short = 'n', long, value_name = "N", default_value_t = 5)]
        count: usize,
        /// Start after this RFC 3339 time instead of now
        #[arg(long, value_name = "RFC3339")]
        after: Option<String>,
    },
}
