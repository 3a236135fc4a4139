//! Argument definitions: argv parsed into plain values, nothing resolved yet.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod secret;
pub(crate) use secret::{NameArg, PutArgs, SecretCommand};

/// The end of `rota -h`.
const AFTER_HELP: &str = "\
Exit codes: 0 success, 1 error, 2 usage error (rota plan --detailed-exitcode: 2 = changes).
rota --help also lists examples, the environment variables and where output goes.";

/// The end of `rota --help`.
const AFTER_LONG_HELP: &str = "\
Examples:
  rota init && rota apply --auto-approve    write a starter configuration, then apply it
  rota plan --detailed-exitcode             what apply would change
  rota rotate --all --dry-run               what rotating everything would do
  rota run --once --all-due-within 1h       rotate what is due (cron and CI); exit 1 on failure
  rota secret list -o json | jq .           the secrets as JSON

Exit codes:
  0  success; rota plan --detailed-exitcode: no changes
  1  error, or a rotation failed (rotate, run --once) or a resource failed (apply, destroy)
  2  usage error (invalid arguments); rota plan --detailed-exitcode: there are changes
  A closed standard output (rota secret list | head -1) is not an error: rota stops printing,
  finishes what it was doing and exits as it would have.

Output:
  Data goes to standard output: text, or stable JSON with -o json. Messages, logs, errors
  (error: ..., then hint: ...) and progress go to standard error. apply, destroy, rotate and
  secret list show a progress bar when standard error is a terminal; elsewhere long work prints
  a line per tenth of it (quick work none). -q shows neither, nor notes or logs below errors.

Environment:
  ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALIBABA_CLOUD_SECURITY_TOKEN
      Credentials for the real Alibaba Cloud (or ALICLOUD_ACCESS_KEY, ALICLOUD_SECRET_KEY,
      ALICLOUD_SECURITY_TOKEN). With no credentials anywhere, rota uses the embedded local cloud.
  ALIBABA_CLOUD_PROFILE, ALICLOUD_PROFILE
      An aliyun CLI profile (~/.aliyun/config.json), when neither --profile nor the provider
      block names one
  ALIBABA_CLOUD_ECS_METADATA, ALICLOUD_ECS_ROLE_NAME
      The RAM role of the ECS instance rota runs on (as the provider's ecs_role_name)
  ALIBABA_CLOUD_IMDSV1_DISABLED
      true: the ECS metadata service must issue a hardened-mode token
  ROTA_ECS_METADATA_URL
      Where the ECS metadata service is (default http://100.100.100.200): e.g. the one of
      rota local serve --metadata-addr
  ALIBABA_CLOUD_REGION_ID, ALICLOUD_REGION
      The region, when neither --region nor the provider block sets one
  ALIBABA_CLOUD_ENDPOINT_KMS
      The KMS endpoint, when neither --endpoint nor the provider block sets one
  ALIBABA_CLOUD_CA_BUNDLE
      More CA certificates to trust (a PEM file), beside the system's: e.g. the ca.pem of
      rota local serve --tls
  TF_VAR_<name>
      The value of variable <name> (as with Terraform)
  NO_COLOR, CLICOLOR, CLICOLOR_FORCE
      NO_COLOR=1 (or --no-color) turns colour off, CLICOLOR_FORCE=1 on off a terminal
  RUST_LOG
      A log filter replacing the level -q and -v set (e.g. rota=debug)
  ROTA_LOCAL_ACCESS_KEY_ID, ROTA_LOCAL_ACCESS_KEY_SECRET
      The root access key of rota local serve
  ROTA_METRICS_ADDR
      The address of rota run's /metrics and /healthz (as --metrics-addr)
  ROTA_STORE_URL
      The shared PostgreSQL store (as --store)
  PGPASSWORD, PGPASSFILE
      The store's password, when its URL and the store block's password_env give none (a
      PGPASSFILE, default ~/.pgpass, is read as libpq reads it)
  ROTA_TEST_CRASH_AT
      Tests only: abort a rotation at a named point (see rota rotate --help)";

/// Rota automates the lifecycle of Alibaba Cloud KMS secrets: declare,
/// rotate on schedules, and run lifecycle workflows.
#[derive(Debug, Parser)]
#[command(
    name = "rota",
    version,
    max_term_width = 100,
    after_help = AFTER_HELP,
    after_long_help = AFTER_LONG_HELP
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: GlobalArgs,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command accepts (shown under their own heading).
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub(crate) struct GlobalArgs {
    /// Configuration file or directory (default: the current directory)
    #[arg(short = 'c', long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// Data directory of the embedded local cloud (default: .rota/ beside the configuration)
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Shared store of the scheduler, history and locks: postgres://USER@HOST:PORT/DB
    /// (default: the configuration's store block, else SQLite in the data directory)
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "ROTA_STORE_URL",
        hide_env_values = true
    )]
    pub(crate) store: Option<String>,

    /// aliyun CLI profile to take credentials from
    #[arg(long, global = true, value_name = "NAME")]
    pub(crate) profile: Option<String>,

    /// Alibaba Cloud region id, e.g. cn-hangzhou
    #[arg(long, global = true, value_name = "REGION")]
    pub(crate) region: Option<String>,

    /// Send API requests to this endpoint (e.g. http://127.0.0.1:8080)
    #[arg(long, global = true, value_name = "URL")]
    pub(crate) endpoint: Option<String>,

    /// Output format of the data a command prints: text, or stable JSON
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = OutputFormat::Text,
        hide_possible_values = true
    )]
    pub(crate) output: OutputFormat,

    /// Quiet: data and errors only; no progress, notes or logs below errors
    #[arg(short = 'q', long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// More output (-v debug, -vv trace)
    #[arg(short = 'v', long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Never use colour (also: the NO_COLOR environment variable)
    #[arg(long, global = true)]
    pub(crate) no_color: bool,

    /// Log format on standard error: text, or one JSON object per line
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Text,
        hide_possible_values = true
    )]
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
    /// Check the configuration without calling any API
    ///
    /// Reports every error with its file, line, column, the resource address
    /// and the allowed values, and checks the rotation plugins and their
    /// settings. Exit 0 when valid, 1 when not.
    #[command(after_help = "\
Examples:
  rota validate
  rota validate -c prod/ -var env=prod")]
    Validate(VarArgs),
    /// Show what apply would change
    ///
    /// Secret values are always shown as (sensitive). With --detailed-exitcode:
    /// exit 0 when there are no changes, 2 when there are, 1 on error.
    #[command(after_help = "\
Examples:
  rota plan
  rota plan --out tfplan && rota apply tfplan     apply exactly what was reviewed
  rota plan --detailed-exitcode -q >/dev/null     exit 2 when the live secrets drifted")]
    Plan(PlanArgs),
    /// Make the live secrets match the configuration (or apply a saved plan)
    ///
    /// Prints the plan, asks for confirmation (unless --auto-approve or a
    /// saved plan), then one line per resource and KMS call and a summary;
    /// with -o json, one JSON document with the plan and each resource's
    /// outcome. A failed resource does not stop the others; exit 1 if any failed.
    #[command(after_help = "\
Examples:
  rota apply
  rota apply --auto-approve -c prod/
  rota apply tfplan                      a plan saved by rota plan --out tfplan")]
    Apply(ApplyArgs),
    /// Delete the configured secrets
    ///
    /// Also deletes the secrets this configuration created (rota:config tag)
    /// but no longer declares. Output as for apply; exit 1 if any failed.
    #[command(after_help = "\
Examples:
  rota plan --destroy                    what destroy would delete
  rota destroy --auto-approve")]
    Destroy(DestroyArgs),
    /// Read a live secret and print the HCL block that describes it
    ///
    /// The value becomes a variable reference unless --include-secret-data.
    /// Needs no configuration file (its provider block is used when there is one).
    #[command(after_help = "\
Examples:
  rota import alicloud_kms_secret.db app/db
  rota import alicloud_kms_secret.db app/db --write main.tf")]
    Import(ImportArgs),
    /// Show the live attributes of the configured secrets
    ///
    /// Values are always (sensitive); the version list, policy and tags are
    /// read live.
    #[command(after_help = "\
Examples:
  rota show
  rota show alicloud_kms_secret.db -o json")]
    Show(ShowArgs),
    /// Print the configuration's output blocks, evaluated against the live secrets
    ///
    /// Sensitive outputs show as <sensitive> unless --reveal. With NAME: that
    /// value alone (a string as it is, for scripts).
    #[command(after_help = "\
Examples:
  rota output
  rota output arns -o json
  rota output db_url --reveal")]
    Output(OutputArgs),
    /// Rotate secrets now through the rotation protocol
    ///
    /// NAME is a secret name, a resource address or a rotation block name.
    /// Rotations run one at a time, each through create, set, test and
    /// finish; a rotation left half-done by a crash is resumed. Prints one
    /// line per secret (or a JSON array with -o json) and exits 1 if any
    /// rotation failed. ROTA_TEST_CRASH_AT (tests only) aborts at a point:
    /// after-create, before-target-change, after-target-change, after-set,
    /// after-test or in-finish.
    #[command(after_help = "\
Examples:
  rota rotate app/db
  rota rotate alicloud_kms_secret.db apps    a resource address and a rotation block
  rota rotate --all --dry-run                what rotating everything would do")]
    Rotate(RotateArgs),
    /// Run the rotation daemon: one scheduled job per configured rotation
    ///
    /// Stops gracefully on Ctrl-C or SIGTERM; SIGHUP reloads the
    /// configuration. With --once: run every job that is due, print a
    /// summary and exit (1 if any failed).
    #[command(after_help = "\
Examples:
  rota run --apply                              apply, then run as the daemon
  rota run --once --all-due-within 1h -o json   the cron and CI form")]
    Run(RunArgs),
    /// Show each configured rotation: last rotation, next slot, state
    ///
    /// The state is active, paused, needs attention (with the reason: the
    /// retry budget is spent) or not scheduled (rota run has not run yet).
    #[command(after_help = "\
Examples:
  rota status
  rota status -o json")]
    Status(StatusArgs),
    /// Show rotation runs with their steps and outcomes
    ///
    /// One run per rotation attempt: its steps with their durations and
    /// outcomes, and the error (redacted) of a failed step. Workflow runs
    /// are listed as workflow:NAME.
    #[command(after_help = "\
Examples:
  rota history app/db --limit 5
  rota history workflow:compliance -o json")]
    History(HistoryArgs),
    /// Keep an application's files on the current secret values (the consumer side)
    ///
    /// Renders every template block of the configuration into its file
    /// (atomically, only when the content changed), runs its reload action,
    /// follows the daemon's events (agent { events_url }) and polls KMS, and
    /// reports the version in use to the daemon for the adoption gate. No
    /// value is ever logged. --once renders once and exits (1 if a template
    /// failed).
    #[command(after_help = "\
Examples:
  rota agent -c /etc/rota-agent/            run as a service beside the application
  rota agent -c /etc/rota-agent/ --once     render once (an init container, a deploy step)")]
    Agent(AgentArgs),
    /// List and follow rotation events (the outbox)
    ///
    /// Every event written by rotations, the daemon's reminders, workflows,
    /// apply and destroy, oldest first, with where each stands with each
    /// notify sink (delivered, pending, dead, dropped). --follow prints new
    /// ones as they are written until Ctrl-C; --sinks prints the delivery
    /// counts of each sink.
    #[command(after_help = "\
Examples:
  rota events --since 1h
  rota events --type rotation.failed --type 'rotation.needs_*' -o json
  rota events --follow -o json          one JSON object per line
  rota events --sinks                   pending and dead deliveries per sink")]
    Events(EventsArgs),
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
    #[command(after_help = "\
Examples:
  rota init
  rota init ops/secrets && rota apply -c ops/secrets --auto-approve")]
    Init {
        /// Directory to write into (default: the -c directory, else the current directory)
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Direct KMS secret operations, for scripting and incident work
    ///
    /// Works on the same backend as every other command (the embedded local
    /// cloud unless cloud credentials are configured) and needs no
    /// configuration file. A value is printed only by `get --reveal`.
    #[command(after_help = "\
Examples:
  rota secret list --filter TagKey=team
  rota secret versions app/db --include-deprecated
  printf %s \"$TOKEN\" | rota secret put app/token --version-id v7 --value-file -
  rota secret get app/token --reveal > token.txt")]
    Secret {
        #[command(subcommand)]
        command: SecretCommand,
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
    /// Print a shell completion script
    #[command(after_help = "\
Examples:
  rota completions bash > ~/.local/share/bash-completion/completions/rota
  rota completions zsh > \"${fpath[1]}/_rota\"")]
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
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
    /// Honour the rotation's verify block: watch the consumers for its soak
    /// and roll back when a check fails (the command waits for the soak)
    #[arg(long)]
    pub(crate) verify: bool,
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
    // The value is not shown: the help (and its snapshot) must not depend
    // on the environment it is printed in.
    #[arg(
        long,
        value_name = "IP:PORT",
        env = "ROTA_METRICS_ADDR",
        hide_env_values = true
    )]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// Serve the event stream (Server-Sent Events) on IP:PORT at
    /// GET /events; resume with Last-Event-ID; off when not given
    #[arg(
        long,
        value_name = "IP:PORT",
        env = "ROTA_EVENTS_ADDR",
        hide_env_values = true
    )]
    pub(crate) events_addr: Option<std::net::SocketAddr>,
}

/// `rota agent`.
#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Render every template once, reload, report, and exit
    #[arg(long)]
    pub(crate) once: bool,
}

/// `rota events`.
#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Print new events as they are written, until Ctrl-C
    #[arg(long)]
    pub(crate) follow: bool,
    /// Only events of the last D (e.g. 1h, 7d) or since an RFC 3339 time
    #[arg(long, value_name = "D|TIME")]
    pub(crate) since: Option<String>,
    /// Only this event type (repeatable; * matches any run of characters)
    #[arg(long = "type", value_name = "T")]
    pub(crate) types: Vec<String>,
    /// Most events listed (the latest ones)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub(crate) limit: usize,
    /// Show the delivery counts of each notify sink instead
    #[arg(long, conflicts_with_all = ["follow", "since", "types"])]
    pub(crate) sinks: bool,
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
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
}

/// `-target` and `-replace`, as Terraform spells them.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct ScopeArgs {
    /// Only this resource and what it depends on (repeatable; also -target)
    #[arg(long = "target", value_name = "ADDRESS")]
    pub(crate) targets: Vec<String>,
    /// Replace this existing secret (repeatable; also -replace)
    #[arg(long = "replace", value_name = "ADDRESS")]
    pub(crate) replace: Vec<String>,
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
    #[command(flatten)]
    pub(crate) scope: ScopeArgs,
    /// Most resources applied at once, dependencies respected (also -parallelism)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) parallelism: u16,
}

/// `rota destroy`.
#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Do not ask for confirmation
    #[arg(long)]
    pub(crate) auto_approve: bool,
    /// Most resources destroyed at once, dependencies respected (also -parallelism)
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) parallelism: u16,
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

/// `rota output`.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    #[command(flatten)]
    pub(crate) vars: VarArgs,
    /// Only this output
    #[arg(value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// Show sensitive values
    #[arg(long)]
    pub(crate) reveal: bool,
}

/// `rota local …`
#[derive(Debug, Subcommand)]
pub(crate) enum LocalCommand {
    /// Serve the local cloud over HTTP or HTTPS (for the official SDKs, Terraform, another rota)
    ///
    /// Speaks the Alibaba Cloud RPC protocol (signature V1 and V3) on ADDR.
    /// The root access key comes from --access-key-id/--access-key-secret
    /// (or ROTA_LOCAL_ACCESS_KEY_ID/ROTA_LOCAL_ACCESS_KEY_SECRET); without
    /// them one is generated on first start and kept in a 0600 file in the
    /// data directory. Stops gracefully on Ctrl-C or SIGTERM.
    #[command(after_help = "\
Examples:
  rota local serve --addr 127.0.0.1:0 --data-dir ./kms-data
  rota local serve --tls --addr 127.0.0.1:8443 --http-addr 127.0.0.1:8080
  ROTA_LOCAL_ACCESS_KEY_ID=ak ROTA_LOCAL_ACCESS_KEY_SECRET=... rota local serve")]
    Serve(Box<ServeArgs>),
    /// Show what the local world holds and which secret holds each credential
    ///
    /// Accounts, keys, instances, and which secret version each credential
    /// belongs to (never a credential itself). Reads the embedded local cloud in the data directory (--data-dir,
    /// default .rota/ beside the configuration) without changing it.
    #[command(after_help = "\
Examples:
  rota local world
  rota local world -c examples/seed-corrected -o json")]
    World {
        /// World file (default: world.hcl beside the configuration)
        #[arg(long, value_name = "FILE")]
        world: Option<PathBuf>,
    },
}

/// The options of `rota local serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    pub(crate) addr: std::net::SocketAddr,
    /// World file declaring keys, KMS instances and other resources
    /// (default: world.hcl beside the configuration, when there is one)
    #[arg(long, value_name = "FILE")]
    pub(crate) world: Option<PathBuf>,
    /// Root access key id
    #[arg(
        long,
        value_name = "ID",
        env = "ROTA_LOCAL_ACCESS_KEY_ID",
        hide_env_values = true,
        requires = "access_key_secret"
    )]
    pub(crate) access_key_id: Option<String>,
    /// Root access key secret
    #[arg(
        long,
        value_name = "SECRET",
        env = "ROTA_LOCAL_ACCESS_KEY_SECRET",
        hide_env_values = true,
        requires = "access_key_id"
    )]
    pub(crate) access_key_secret: Option<String>,
    /// Do not rotate managed secrets when their NextRotationDate passes
    /// (for when Rota's own scheduler drives rotations)
    #[arg(long)]
    pub(crate) no_auto_rotation: bool,
    /// Most connections open at once; past it a new one is answered 503
    /// (ServiceUnavailable) and closed
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub(crate) max_connections: usize,
    /// How long a client may take to send a request's headers (and to
    /// finish a TLS handshake); also how long an idle keep-alive
    /// connection stays open
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub(crate) header_timeout: String,
    /// How long a client may take to send a request's body
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub(crate) body_timeout: String,
    /// Serve Prometheus metrics (GET /metrics: connections open,
    /// refused at the cap, requests, errors, body timeouts, replay
    /// window narrowings) and GET /healthz on this address
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<std::net::SocketAddr>,
    /// Serve HTTPS on --addr. The certificate is issued at each start by
    /// a local CA kept in <data-dir>/tls/ (made on first start; its
    /// ca.pem is what clients trust) for localhost, 127.0.0.1, ::1 and
    /// every --tls-name; or give your own with --tls-cert and --tls-key
    #[arg(long)]
    pub(crate) tls: bool,
    /// Another name the generated certificate is valid for (a DNS name
    /// or an IP address); repeatable
    #[arg(
        long = "tls-name",
        value_name = "NAME",
        requires = "tls",
        conflicts_with = "tls_cert"
    )]
    pub(crate) tls_names: Vec<String>,
    /// Certificate chain to serve (PEM, the server's certificate first)
    /// instead of one from the local CA
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_key"])]
    pub(crate) tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, value_name = "FILE", requires_all = ["tls", "tls_cert"])]
    pub(crate) tls_key: Option<PathBuf>,
    /// With --tls, also serve plain HTTP on this address
    #[arg(long, value_name = "HOST:PORT", requires = "tls")]
    pub(crate) http_addr: Option<std::net::SocketAddr>,
    /// Serve the ECS metadata service of one instance of the world here
    /// (its RAM role's STS credentials at
    /// /latest/meta-data/ram/security-credentials/ROLE)
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) metadata_addr: Option<std::net::SocketAddr>,
    /// The instance the metadata service speaks for (default: the world's
    /// only ecs_instance with a ram_role)
    #[arg(long, value_name = "ID", requires = "metadata_addr")]
    pub(crate) metadata_instance: Option<String>,
    /// The metadata service's hardened mode: every GET needs a token from
    /// PUT /latest/api/token
    #[arg(long, requires = "metadata_addr")]
    pub(crate) metadata_hardened: bool,
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
    #[command(after_help = "\
Examples:
  rota schedule next '0 3 * * 0' --tz Europe/Berlin -n 3
  rota schedule next @daily --after 2026-03-29T00:00:00Z -o json")]
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
            Some("-target") => "--target".into(),
            Some("-replace") => "--replace".into(),
            Some("-parallelism") => "--parallelism".into(),
            Some(s)
                if s.starts_with("-var=")
                    || s.starts_with("-var-file=")
                    || s.starts_with("-target=")
                    || s.starts_with("-replace=")
                    || s.starts_with("-parallelism=") =>
            {
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
    ///
    /// A plugin that fails to load is an error: line on standard error (exit 1);
    /// the others are listed all the same.
    #[command(after_help = "\
Examples:
  rota plugins list
  rota plugins list --dir ./my-plugins -o json")]
    List {
        /// Another directory to search (repeatable)
        #[arg(long = "dir", value_name = "PATH")]
        dirs: Vec<PathBuf>,
    },
    /// Load one plugin and report what is wrong with it
    ///
    /// Exit 0 when it loads, 1 with the file, line and reason when it does not.
    #[command(after_help = "\
Examples:
  rota plugins check ecs-password
  rota plugins check ./plugins/rds-account")]
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
    #[command(after_help = "\
Examples:
  rota workflow run scripts/compliance-report.rhai
  rota workflow run scripts/cleanup-deprecated-versions.rhai --settings '{\"dry_run\": true}'")]
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
        /// How long the run may take (e.g. 90s, 10m; a bare number is seconds)
        #[arg(long, value_name = "DURATION", default_value = "10m")]
        timeout: String,
    },
}

impl Command {
    /// Whether the command is a long-running service (the `rota run`
    /// daemon, `rota local serve`), whose log lines are its output: services
    /// log at `info` by default, one-shot commands at `warn` (their results
    /// are what they print).
    pub(crate) fn is_service(&self) -> bool {
        match self {
            Self::Run(args) => !args.once,
            Self::Local {
                command: LocalCommand::Serve { .. },
            } => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::Cli;

    /// The command tree as `rota` builds it, at the width the snapshots use.
    fn tree() -> clap::Command {
        let mut cmd = Cli::command().term_width(100);
        cmd.build();
        cmd
    }

    /// Every command and subcommand, depth first, with its path (`rota
    /// secret get`); clap's generated `help` subcommands left out.
    fn walk(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        out.push((path.to_owned(), cmd.clone()));
        for sc in cmd.get_subcommands().filter(|sc| sc.get_name() != "help") {
            walk(sc, &format!("{path} {}", sc.get_name()), out);
        }
    }

    fn commands() -> Vec<(String, clap::Command)> {
        let mut out = Vec::new();
        walk(&tree(), "rota", &mut out);
        out
    }

    /// Whether `--help` prints the long form: clap's own rule
    /// (`Command::long_help_exists`, not public), else the compact one.
    fn long_help_exists(cmd: &clap::Command) -> bool {
        let long_arg = |a: &clap::Arg| {
            !a.is_hide_set()
                && (a.get_long_help().is_some()
                    || a.is_hide_long_help_set()
                    || a.is_hide_short_help_set()
                    || (!a.is_hide_possible_values_set()
                        && a.get_possible_values()
                            .iter()
                            .any(|v| !v.is_hide_set() && v.get_help().is_some())))
        };
        cmd.get_long_about().is_some()
            || cmd.get_before_long_help().is_some()
            || cmd.get_after_long_help().is_some()
            || cmd.get_arguments().any(long_arg)
    }

    /// `rota … --help` of every command, walked from the clap tree so a new
    /// command cannot be left out; `rota --help` itself is `help_rota`.
    #[test]
    fn help_of_every_command() {
        let all = commands();
        assert!(all.len() > 30, "the walk found {} commands", all.len());
        for (path, mut cmd) in all {
            let text = if long_help_exists(&cmd) {
                cmd.render_long_help()
            } else {
                cmd.render_help()
            }
            .to_string();
            insta::assert_snapshot!(format!("help_{}", path.replace(' ', "_")), text, &path);
        }
    }

    /// Every command says what it does, and every argument what it is.
    #[test]
    fn every_command_and_argument_is_documented() {
        for (path, cmd) in commands() {
            assert!(cmd.get_about().is_some(), "{path} has no about");
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "{path}: {id} has no help"
                );
            }
        }
    }
}
