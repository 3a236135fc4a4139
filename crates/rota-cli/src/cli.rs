//! Argument definitions: argv parsed into plain values, nothing resolved yet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod secret;
pub(crate) use secret::{NameArg, PutArgs, SecretCommand};

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

    /// Another directory of Rhai and native plugins (repeatable; plugins/
    /// beside the configuration and in the current directory are always searched)
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub(crate) plugin_dirs: Vec<PathBuf>,
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
    /// The embedded local Alibaba Cloud
    Local {
        #[command(subcommand)]
        command: LocalCommand,
    },
    /// Check the configuration without calling any API
    Validate(VarArgs),
    /// Show what apply would change
    ///
    /// With --detailed-exitcode: exit 0 when there are no changes, 2 when there are, 1 on error.
    Plan(PlanArgs),
    /// Make the live secrets match the configuration (or apply a saved plan)
    Apply(ApplyArgs),
    /// Delete the configured secrets
    ///
    /// Also deletes the secrets this configuration created (rota:config tag) but no longer declares.
    Destroy(DestroyArgs),
    /// Read a live secret and print the HCL block that describes it
    Import(ImportArgs),
    /// Show the live attributes of the configured secrets
    Show(ShowArgs),
    /// Rotate secrets now through the rotation protocol
    ///
    /// NAME is a secret name, a resource address or a rotation block name.
    /// Exits 1 if any rotation failed.
    Rotate(RotateArgs),
    /// Run the rotation daemon: one scheduled job per configured rotation
    ///
    /// Stops gracefully on Ctrl-C or SIGTERM; SIGHUP reloads the
    /// configuration. With --once: run every job that is due, print a
    /// summary and exit (1 if any failed).
    Run(RunArgs),
    /// Show each configured rotation: last rotation, next slot, state
    Status(StatusArgs),
    /// Show rotation runs with their steps and outcomes
    History(HistoryArgs),
    /// List and check rotation plugins (built-in, Rhai and native)
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Run lifecycle workflow scripts (Rhai)
    Workflow {
        #[command(subcommand)]
        command: WorkflowCommand,
    },
    /// Write a commented starter configuration (main.tf, world.hcl) into DIR
    ///
    /// Refuses to overwrite existing files.
    Init {
        /// Directory to write into (default: the current directory)
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Direct KMS secret operations, for scripting and incident work
    ///
    /// Works on the same backend as every other command (the embedded local
    /// cloud unless cloud credentials are configured) and needs no
    /// configuration file. A value is printed only by `get --reveal`.
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
    },
}

/// `rota rotate`.
#[derive(Debug, Args)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Secrets to rotate (names, addresses or rotation names)
    #[arg(
        value_name = "NAME",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) names: Vec<String>,
    /// Rotate every configured secret
    #[arg(long)]
    pub(crate) all: bool,
    /// Change nothing: resolve the plugin, validate its settings, run the
    /// read-only probes and say what would happen
    #[arg(long)]
    pub(crate) dry_run: bool,
}

/// `rota run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Configuration file or directory (same as -c)
    #[arg(value_name = "CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Apply the configuration first (as rota apply --auto-approve)
    #[arg(long)]
    pub(crate) apply: bool,
    /// Run every job that is due now, print a summary and exit
    #[arg(long)]
    pub(crate) once: bool,
    /// With --once: also run jobs due within DURATION (e.g. 1h, 30m)
    #[arg(long, value_name = "DURATION", requires = "once")]
    pub(crate) all_due_within: Option<String>,
    /// Rotations running at once
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// How long rotations in flight may take to finish on shutdown
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub(crate) grace: String,
    /// Serve Prometheus /metrics and /healthz on IP:PORT (e.g.
    /// 127.0.0.1:9464; port 0 picks a free one, logged as `metrics
    /// listening addr=…`); off when not given
    #[arg(long, value_name = "IP:PORT", env = "ROTA_METRICS_ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
}

/// `rota status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
}

/// `rota history`.
#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Only this secret (name or address)
    #[arg(value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Most runs shown
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) limit: usize,
}

/// Variable values (`-var` and `-var-file` are accepted as spelled by Terraform).
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct VarArgs {
    /// Set a variable: NAME=VALUE (repeatable; also -var)
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub(crate) vars: Vec<String>,
    /// Read variables from a file (repeatable; also -var-file)
    #[arg(long = "var-file", value_name = "FILE")]
    pub(crate) var_files: Vec<PathBuf>,
}

/// `rota plan`.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Save the plan to FILE; `rota apply FILE` applies exactly it
    #[arg(long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Exit 0 when there are no changes, 2 when there are, 1 on error
    #[arg(long)]
    pub(crate) detailed_exitcode: bool,
    /// Plan the destruction of every configured secret
    #[arg(long)]
    pub(crate) destroy: bool,
}

/// `rota apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// A plan saved by `rota plan --out FILE`
    #[arg(value_name = "PLAN")]
    pub(crate) plan: Option<PathBuf>,
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) auto_approve: bool,
}

/// `rota destroy`.
#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) auto_approve: bool,
}

/// `rota import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// Resource address, e.g. alicloud_kms_secret.db
    #[arg(value_name = "ADDRESS")]
    pub(crate) address: String,
    /// The secret's name (its id)
    #[arg(value_name = "ID")]
    pub(crate) id: String,
    /// Append the block to FILE instead of printing it
    #[arg(long, value_name = "FILE")]
    pub(crate) write: Option<PathBuf>,
    /// Write the secret's value into the block (in clear text)
    #[arg(long)]
    pub(crate) include_secret_data: bool,
}

/// `rota show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Only this resource (e.g. alicloud_kms_secret.db)
    #[arg(value_name = "ADDRESS")]
    pub(crate) address: Option<String>,
}

/// `rota local …`
#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
    /// Serve the local cloud over HTTP for the official SDKs, the Terraform
    /// provider or another rota
    ///
    /// Speaks the Alibaba Cloud RPC protocol (signature V1 and V3) on ADDR.
    /// The root access key comes from --access-key-id/--access-key-secret
    /// (or ROTA_LOCAL_ACCESS_KEY_ID/ROTA_LOCAL_ACCESS_KEY_SECRET); without
    /// them one is generated on first start and kept in a 0600 file in the
    /// data directory. Stops gracefully on Ctrl-C or SIGTERM.
    Serve {
        /// Address to listen on; port 0 picks a free port
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// World file declaring keys, KMS instances and other resources
        #[arg(long, value_name = "FILE")]
        world: Option<PathBuf>,
        /// Root access key id
        #[arg(
            long,
            value_name = "ID",
            env = "ROTA_LOCAL_ACCESS_KEY_ID",
            hide_env_values = true,
            requires = "access_key_secret"
        )]
        access_key_id: Option<String>,
        /// Root access key secret
        #[arg(
            long,
            value_name = "SECRET",
            env = "ROTA_LOCAL_ACCESS_KEY_SECRET",
            hide_env_values = true,
            requires = "access_key_id"
        )]
        access_key_secret: Option<String>,
        /// Do not rotate managed secrets when their NextRotationDate passes
        /// (for when Rota's own scheduler drives rotations)
        #[arg(long)]
        no_auto_rotation: bool,
    },
    /// Show what the local world holds: accounts, keys, instances and which
    /// secret version each credential belongs to (never a credential itself)
    World {
        /// World file (default: world.hcl beside the configuration)
        #[arg(long, value_name = "FILE")]
        world: Option<PathBuf>,
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

/// Rewrites Terraform's single-dash `-var`, `-var-file` (and their `=` forms)
/// into the double-dash options clap parses; every other argument is kept.
pub(crate) fn terraform_flags<I>(args: I) -> Vec<std::ffi::OsString>
where
    I: IntoIterator<Item = std::ffi::OsString>,
{
    args.into_iter()
        .map(|a| match a.to_str() {
            Some("-var") => "--var".into(),
            Some("-var-file") => "--var-file".into(),
            Some(s) if s.starts_with("-var=") || s.starts_with("-var-file=") => {
                format!("-{s}").into()
            }
            _ => a,
        })
        .collect()
}

/// `rota plugins …`: the built-in plugins, and the Rhai and native plugins
/// found in `plugins/` under the configuration directory and the current
/// directory, in every --plugin-dir and in every --dir.
#[derive(Debug, Subcommand)]
pub(crate) enum PluginsCommand {
    /// List the plugins found, with their versions and steps
    List {
        /// Another directory to search (repeatable)
        #[arg(long = "dir", value_name = "PATH")]
        dirs: Vec<PathBuf>,
    },
    /// Load one plugin and report what is wrong with it
    Check {
        /// The plugin's name (or the path of its folder)
        name: String,
        /// Another directory to search (repeatable)
        #[arg(long = "dir", value_name = "PATH")]
        dirs: Vec<PathBuf>,
    },
}

/// `rota workflow …`.
#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Run a workflow script's `run(ctx)` once against the configured backend
    ///
    /// Prints the run's summary and log lines (or the whole report with -o
    /// json); exits 1 if the script failed.
    Run {
        #[command(flatten)]
        vars: VarArgs,
        /// The script (e.g. scripts/compliance-report.rhai)
        script: PathBuf,
        /// Settings, as a JSON object
        #[arg(long, value_name = "JSON")]
        settings: Option<String>,
        /// A host http:: may reach (repeatable)
        #[arg(long = "http-host", value_name = "HOST[:PORT]")]
        http_hosts: Vec<String>,
        /// How long the run may take, in seconds
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        timeout: u64,
    },
}
