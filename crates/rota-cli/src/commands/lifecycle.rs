//! `rota validate | plan | apply | destroy | import | show`: the lifecycle of
//! `alicloud_kms_secret` resources (crate `rota-engine`).
//!
//! Exit codes: 0 success, 1 error, 2 usage error; `rota plan
//! --detailed-exitcode` exits 0 without changes, 2 with changes, 1 on error.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use rota_engine::apply::{ApplyEvent, Status};
use rota_engine::config::{Config, Diagnostics, LoadOptions};
use rota_engine::import::ImportOptions;
use rota_engine::live::{self, ReadOptions};
use rota_engine::plan::{Action, Plan, PlanMode, PlanOptions, SavedPlan};
use rota_engine::{EngineError, Ownership, Progress};

use crate::backend;
use crate::cli::{Command, GlobalArgs, OutputFormat, VarArgs};
use crate::output::{Hint, emit_json, errln, out, outln};
use crate::progress;

/// Runs one lifecycle command.
pub(crate) async fn run(command: Command, global: &GlobalArgs) -> Result<ExitCode> {
    match command {
        Command::Validate(vars) => {
            let Some((config, _)) = load_checked(global, &vars, Some(crate::clock::now()))? else {
                return Ok(ExitCode::FAILURE);
            };
            // The embedded local cloud's world beside the configuration.
            if let Some(p) = config.world_file()
                && let Err(e) = rota_local::World::load(&p)
            {
                errln!("error: invalid world file {}: {e}", p.display());
                errln!(
                    "hint: world.hcl declares the embedded local cloud (its format: `rota init` writes a commented one)"
                );
                return Ok(ExitCode::FAILURE);
            }
            let n = config.resources.len();
            let r = config.rotations.len();
            match global.output {
                OutputFormat::Json => emit_json(&serde_json::json!({
                    "valid": true,
                    "resources": n,
                    "rotations": r,
                    "workflows": config.workflows.len(),
                }))?,
                OutputFormat::Text if !global.quiet => {
                    let rotating = if r == 0 {
                        String::new()
                    } else {
                        format!(", {r} rotating")
                    };
                    outln!(
                        "The configuration is valid: {n} secret{}{rotating}.",
                        if n == 1 { "" } else { "s" }
                    );
                }
                OutputFormat::Text => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(args) => {
            let Some(config) = load(global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            let mode = if args.destroy {
                PlanMode::Destroy
            } else {
                PlanMode::Apply
            };
            let backend = backend::resolve(global, &config).await?;
            let Some(plan) = make_plan(&backend, &config, mode, None, &args.scope).await? else {
                return Ok(ExitCode::FAILURE);
            };
            print_plan(global, &plan)?;
            if let Some(out) = &args.out {
                write_private(out, plan.save().to_json().as_bytes())
                    .with_context(|| format!("cannot write the plan to {}", out.display()))?;
                if !global.quiet {
                    errln!(
                        "Saved the plan to {}; apply exactly it with: rota apply {}",
                        out.display(),
                        out.display()
                    );
                }
            }
            Ok(if args.detailed_exitcode && plan.has_changes() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Apply(args) => {
            let Some(config) = load(global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            let backend = backend::resolve(global, &config).await?;
            let (plan, saved) = match &args.plan {
                Some(file) => {
                    let text = std::fs::read_to_string(file)
                        .with_context(|| format!("cannot read the plan {}", file.display()))?;
                    let saved = SavedPlan::from_json(&text)?;
                    let scope = crate::cli::ScopeArgs {
                        targets: saved.targets.clone(),
                        replace: saved.replace.clone(),
                    };
                    let Some(plan) = make_plan(
                        &backend,
                        &config,
                        saved.mode,
                        Some(saved.salt.clone()),
                        &scope,
                    )
                    .await?
                    else {
                        return Ok(ExitCode::FAILURE);
                    };
                    saved.verify(&plan)?;
                    (plan, true)
                }
                None => {
                    let Some(plan) =
                        make_plan(&backend, &config, PlanMode::Apply, None, &args.scope).await?
                    else {
                        return Ok(ExitCode::FAILURE);
                    };
                    (plan, false)
                }
            };
            execute(
                global,
                &backend,
                &config,
                &plan,
                Execution {
                    approval: Approval::given(saved || args.auto_approve),
                    verb: Verb::Apply,
                    report_as: Report::AsOutput,
                    parallelism: usize::from(args.parallelism),
                },
            )
            .await
        }
        Command::Destroy(args) => {
            let Some(config) = load(global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            let backend = backend::resolve(global, &config).await?;
            let scope = crate::cli::ScopeArgs::default();
            let Some(plan) = make_plan(&backend, &config, PlanMode::Destroy, None, &scope).await?
            else {
                return Ok(ExitCode::FAILURE);
            };
            execute(
                global,
                &backend,
                &config,
                &plan,
                Execution {
                    approval: Approval::given(args.auto_approve),
                    verb: Verb::Destroy,
                    report_as: Report::AsOutput,
                    parallelism: usize::from(args.parallelism),
                },
            )
            .await
        }
        Command::Import(args) => {
            let path = config_path(global);
            let config = match Config::load(&load_options(&path, &VarArgs::default())?) {
                Ok(c) => c,
                // Import needs no configuration: only its provider block, when there is one.
                Err(_) => Config::from_text(
                    "none.tf",
                    "",
                    &LoadOptions {
                        path: config_root(&path),
                        ..LoadOptions::default()
                    },
                )
                .map_err(|d| anyhow::anyhow!("{d}"))?,
            };
            let backend = backend::resolve(global, &config).await?;
            let hcl = rota_engine::import(
                &backend.client,
                &args.address,
                &args.id,
                ImportOptions {
                    include_secret_data: args.include_secret_data,
                },
            )
            .await?;
            match &args.write {
                Some(file) => {
                    let mut f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(file)
                        .with_context(|| format!("cannot open {}", file.display()))?;
                    writeln!(f)?;
                    f.write_all(hcl.as_bytes())?;
                    if !global.quiet {
                        errln!("Wrote {} to {}.", args.address, file.display());
                    }
                }
                None => out!("{hcl}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Show(args) => {
            let Some(config) = load(global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            let backend = backend::resolve(global, &config).await?;
            show(global, &backend, &config, args.address.as_deref()).await
        }
        Command::Output(args) => {
            let Some(config) = load(global, &args.vars)? else {
                return Ok(ExitCode::FAILURE);
            };
            if let Some(n) = &args.name
                && !config.outputs.iter().any(|o| &o.name == n)
            {
                let names: Vec<&str> = config.outputs.iter().map(|o| o.name.as_str()).collect();
                return Err(Hint::error(
                    format!("no output named {n:?}"),
                    if names.is_empty() {
                        "the configuration declares no output block".to_owned()
                    } else {
                        format!(
                            "{}outputs: {}",
                            rota_engine::suggest(n, &names),
                            names.join(", ")
                        )
                    },
                ));
            }
            let backend = backend::resolve(global, &config).await?;
            print_outputs(global, &backend, &config, args.name.as_deref(), args.reveal).await
        }
        _ => bail!("not a lifecycle command"),
    }
}

/// Evaluates the `output` blocks against the live secrets and prints them:
/// `NAME = VALUE` lines (sensitive ones as `<sensitive>` unless `reveal`),
/// one value alone for `name` (a string as it is), or a JSON object.
pub(crate) async fn print_outputs(
    global: &GlobalArgs,
    backend: &backend::Backend,
    config: &Config,
    name: Option<&str>,
    reveal: bool,
) -> Result<ExitCode> {
    if config.outputs.is_empty() {
        if name.is_none() && global.output == OutputFormat::Json {
            emit_json(&serde_json::json!({}))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let options = PlanOptions::new(PlanMode::Apply, ownership(config));
    let known = rota_engine::plan::live_known(&backend.client, config, &options)
        .await
        .map_err(anyhow::Error::new)?;
    let values = match config.output_values(&known) {
        Ok(v) => v,
        Err(d) => {
            errln!("{d}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let shown =
        |o: &rota_engine::config::OutputBlock, v: &serde_json::Value| -> serde_json::Value {
            if o.sensitive && !reveal {
                serde_json::Value::String("<sensitive>".into())
            } else {
                v.clone()
            }
        };
    if let Some(n) = name {
        let Some((o, v)) = values.iter().find(|(o, _)| o.name == n) else {
            return Ok(ExitCode::FAILURE);
        };
        match (global.output, shown(o, v)) {
            (OutputFormat::Text, serde_json::Value::String(s)) => outln!("{s}"),
            (OutputFormat::Text, other) => outln!("{}", serde_json::to_string_pretty(&other)?),
            (OutputFormat::Json, other) => emit_json(&other)?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if global.output == OutputFormat::Json {
        let obj: serde_json::Map<String, serde_json::Value> = values
            .iter()
            .map(|(o, v)| {
                (
                    o.name.clone(),
                    serde_json::json!({ "sensitive": o.sensitive, "value": shown(o, v) }),
                )
            })
            .collect();
        emit_json(&obj)?;
    } else {
        for (o, v) in &values {
            outln!("{} = {}", o.name, serde_json::to_string(&shown(o, v))?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn config_path(global: &GlobalArgs) -> PathBuf {
    global.config.clone().unwrap_or_else(|| PathBuf::from("."))
}

/// The folders the configuration's `plugins` block names, for commands that
/// do not otherwise need the configuration (`rota plugins`). Without `-c`
/// and with no configuration file in the current directory there are none;
/// a configuration that does not load is reported in one warning and its
/// paths are not searched.
pub(crate) fn configured_plugin_paths(global: &GlobalArgs) -> Vec<PathBuf> {
    let path = config_path(global);
    if global.config.is_none() {
        let has_config = std::fs::read_dir(&path).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.ends_with(".tf")
                    || name.ends_with(".hcl") && name != rota_engine::config::WORLD_FILE
            })
        });
        if !has_config {
            return Vec::new();
        }
    }
    match load_options(&path, &VarArgs::default()).map(|o| Config::load(&o)) {
        Ok(Ok(c)) => c.plugin_paths,
        Ok(Err(_)) | Err(_) => {
            tracing::warn!(
                config = %path.display(),
                "the configuration does not load (see `rota validate`); its plugin paths are not searched"
            );
            Vec::new()
        }
    }
}

/// `-c PATH` names something that is not there: say so with what to do
/// (the engine's diagnostic would point at line 1 of a missing file).
/// The configuration when there is one (it must then be valid); an empty
/// one rooted at the configuration directory when there is none (for the
/// commands that work without: `rota secret`, `rota workflow run`).
pub(crate) fn load_or_empty(global: &GlobalArgs, vars: &VarArgs) -> Result<Option<Config>> {
    let path = config_path(global);
    if has_config_files(&path) {
        return load(global, vars);
    }
    check_config_exists(&path)?;
    Config::from_text(
        "none.tf",
        "",
        &LoadOptions {
            path,
            ..LoadOptions::default()
        },
    )
    .map(Some)
    .map_err(|d| anyhow::anyhow!("{d}"))
}

fn has_config_files(path: &Path) -> bool {
    if path.is_file() {
        return true;
    }
    std::fs::read_dir(path).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.ends_with(".tf") || n.ends_with(".hcl")) && n != "world.hcl" && e.path().is_file()
        })
    })
}

pub(crate) fn check_config_exists(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    Err(Hint::error(
        format!("the configuration {} does not exist", path.display()),
        "pass -c with a .tf/.hcl file or a directory of them, or write a starter one with rota init",
    ))
}

pub(crate) fn config_root(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path.to_path_buf()
    }
}

fn load_options(path: &Path, vars: &VarArgs) -> Result<LoadOptions> {
    let mut parsed = Vec::new();
    for v in &vars.vars {
        let Some((name, value)) = v.split_once('=') else {
            bail!("-var {v:?}: write NAME=VALUE");
        };
        parsed.push((name.trim().to_owned(), value.to_owned()));
    }
    let env_vars = std::env::vars()
        .filter_map(|(k, v)| k.strip_prefix("TF_VAR_").map(|n| (n.to_owned(), v)))
        .collect();
    Ok(LoadOptions {
        path: path.to_path_buf(),
        vars: parsed,
        var_files: vars.var_files.clone(),
        env_vars,
        now: None,
    })
}

/// Loads the configuration and checks its rotation plugins against the
/// CLI's registry; prints diagnostics and returns `None` when invalid.
pub(crate) fn load(global: &GlobalArgs, vars: &VarArgs) -> Result<Option<Config>> {
    Ok(load_with_plugins(global, vars)?.map(|(c, _)| c))
}

/// [`load`], also returning the plugin registry the configuration was
/// checked against (for the commands that rotate with it).
pub(crate) fn load_with_plugins(
    global: &GlobalArgs,
    vars: &VarArgs,
) -> Result<Option<(Config, rota_rotation::PluginRegistry)>> {
    load_checked(global, vars, None)
}

/// [`load_with_plugins`]; with `now`, a one-shot schedule before it is an
/// error too (`rota validate`: a daemon restarted after its one-shot ran
/// must keep loading the same file).
fn load_checked(
    global: &GlobalArgs,
    vars: &VarArgs,
    now: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Option<(Config, rota_rotation::PluginRegistry)>> {
    let path = config_path(global);
    check_config_exists(&path)?;
    let mut options = load_options(&path, vars)?;
    options.now = now;
    let config = match Config::load(&options) {
        Ok(c) => c,
        Err(d) => {
            print_diagnostics(&d);
            return Ok(None);
        }
    };
    let registry = crate::plugins::registry(global, &config)?;
    match config.validate_plugins(&registry) {
        Ok(()) => Ok(Some((config, registry))),
        Err(d) => {
            print_diagnostics(&d);
            Ok(None)
        }
    }
}

fn print_diagnostics(d: &Diagnostics) {
    errln!("{d}");
    errln!(
        "\n{} error{} found; nothing was called.",
        d.len(),
        if d.len() == 1 { "" } else { "s" }
    );
}

pub(crate) fn ownership(config: &Config) -> Ownership {
    let root = std::fs::canonicalize(&config.root).unwrap_or_else(|_| config.root.clone());
    Ownership::for_directory(&root)
}

pub(crate) async fn make_plan(
    backend: &backend::Backend,
    config: &Config,
    mode: PlanMode,
    salt: Option<String>,
    scope: &crate::cli::ScopeArgs,
) -> Result<Option<Plan>> {
    let mut options = PlanOptions::new(mode, ownership(config));
    options.salt = salt;
    options.targets = scope.targets.clone();
    options.replace = scope.replace.clone();
    if !scope.targets.is_empty() {
        errln!(
            "Warning: resource targeting is in effect: only {} and what it depends on are planned",
            scope.targets.join(", ")
        );
    }
    match rota_engine::plan(&backend.client, config, &options).await {
        Ok(p) => Ok(Some(p)),
        Err(EngineError::Refused(d) | EngineError::Config(d)) => {
            errln!("{d}");
            errln!("\nThe plan was refused; nothing was changed.");
            Ok(None)
        }
        Err(e) => Err(explain_engine_error(e)),
    }
}

/// Adds what to do to the engine errors a user can act on.
pub(crate) fn explain_engine_error(e: EngineError) -> anyhow::Error {
    if let EngineError::Kms {
        secret,
        action,
        source,
    } = &e
        && source.kind() == rota_kms::ErrorKind::PermissionDenied
    {
        let hint = Hint::new(
            format!("{secret}: kms:{action} is not allowed"),
            format!(
                "the secret's policy (or the RAM policy of Rota's access key) denies it: `rota secret policy {secret}` shows the policy, and the account owner can replace it with `rota secret policy {secret} --policy FILE`"
            ),
        );
        return anyhow::Error::new(e).context(hint);
    }
    e.into()
}

fn print_plan(global: &GlobalArgs, plan: &Plan) -> Result<()> {
    match global.output {
        OutputFormat::Json => emit_json(&plan.to_json()),
        OutputFormat::Text => {
            out!("{}", plan.render());
            Ok(())
        }
    }
}

/// Whether [`execute`] may go ahead without asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Approval {
    /// Approved already (`--auto-approve`, a saved plan, `rota run --apply`).
    Approved,
    /// Ask on the terminal (refused without one).
    Ask,
}

impl Approval {
    /// `Approved` when `yes`, else `Ask`.
    pub(crate) fn given(yes: bool) -> Self {
        if yes { Self::Approved } else { Self::Ask }
    }
}

/// What [`execute`] does with the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// `rota apply`.
    Apply,
    /// `rota destroy`.
    Destroy,
}

impl Verb {
    fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Destroy => "destroy",
        }
    }
}

/// What `rota apply`/`rota destroy` print on standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// As `-o` says: the plan, per-resource lines and the summary as text,
    /// or one JSON document (the plan and each resource's outcome).
    AsOutput,
    /// Nothing but the text of a failure (`rota run --apply -o json`,
    /// whose standard output is the run's JSON summary).
    FailuresOnly,
}

/// Terraform-like lines per resource on standard output, and the progress
/// (bar or lines on standard error, [`crate::progress`]).
struct Printer<'a> {
    lines: bool,
    progress: &'a progress::Task,
}

impl Progress for Printer<'_> {
    fn event(&self, event: &ApplyEvent<'_>) {
        match event {
            ApplyEvent::Started { address, .. } => self.progress.set_item(address),
            ApplyEvent::Finished { .. }
            | ApplyEvent::Failed { .. }
            | ApplyEvent::Skipped { .. } => {
                self.progress.inc(1);
            }
            _ => {}
        }
        if !self.lines {
            return;
        }
        match event {
            ApplyEvent::Started { address, action } => {
                let verb = match action {
                    Action::Create => "Creating...",
                    Action::Update => "Modifying...",
                    Action::Replace => "Replacing...",
                    Action::Delete => "Destroying...",
                    _ => "Working...",
                };
                outln!("{address}: {verb}");
            }
            ApplyEvent::Call { address, action } => outln!("{address}: {action} done"),
            ApplyEvent::Finished {
                address,
                action,
                id,
            } => {
                let what = match action {
                    Action::Create => "Creation complete",
                    Action::Update => "Modifications complete",
                    Action::Replace => "Replacement complete",
                    Action::Delete => "Destruction complete",
                    _ => "Complete",
                };
                match id {
                    Some(id) => outln!("{address}: {what} [id={id}]"),
                    None => outln!("{address}: {what}"),
                }
            }
            ApplyEvent::Failed { address, .. } => outln!("{address}: failed"),
            ApplyEvent::Skipped { address, reason } => outln!("{address}: skipped ({reason})"),
            _ => {}
        }
    }
}

/// How [`execute`] runs a plan.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Execution {
    pub(crate) approval: Approval,
    pub(crate) verb: Verb,
    pub(crate) report_as: Report,
    /// Most resources applied at once.
    pub(crate) parallelism: usize,
}

pub(crate) async fn execute(
    global: &GlobalArgs,
    backend: &backend::Backend,
    config: &Config,
    plan: &Plan,
    how: Execution,
) -> Result<ExitCode> {
    let Execution {
        approval,
        verb,
        report_as,
        parallelism,
    } = how;
    let text = report_as == Report::AsOutput && global.output == OutputFormat::Text;
    let json = report_as == Report::AsOutput && global.output == OutputFormat::Json;
    if text {
        print_plan(global, plan)?;
    }
    if !plan.has_changes() {
        if json {
            emit_json(&apply_json(
                plan,
                &rota_engine::apply::ApplyReport::default(),
            ))?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let verb = verb.as_str();
    if approval == Approval::Ask {
        if !std::io::stdin().is_terminal() {
            return Err(Hint::error(
                format!(
                    "refusing to {verb} without confirmation: standard input is not a terminal"
                ),
                "review the plan and pass --auto-approve, or save it with rota plan --out FILE and run rota apply FILE",
            ));
        }
        let question = format!("\nDo you want to {verb}? Only 'yes' will be accepted: ");
        if json {
            // Standard output is for the JSON document: ask on standard error.
            crate::output::write_stderr(format!("{}{question}", plan.render()).as_bytes());
        } else {
            out!("{question}");
        }
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            errln!("{verb} cancelled; nothing was changed.");
            return Ok(ExitCode::FAILURE);
        }
    }
    if text {
        outln!();
    }
    let total = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::NoOp)
        .count() as u64;
    let task = progress::Task::start(
        progress::Context::detect(global),
        verb,
        "resources",
        Some(total),
        progress::LINES_FROM,
    );
    let report = rota_engine::apply_with(
        &backend.client,
        config,
        plan,
        &ownership(config),
        &Printer {
            lines: text && !global.quiet,
            progress: &task,
        },
        rota_engine::ApplyOptions { parallelism },
    )
    .await;
    drop(task);
    crate::events::after_apply(global, config, &backend.data_dir, plan, &report).await;
    let (added, changed, destroyed) = report.counts();
    let failures: Vec<_> = report.failures().collect();
    for f in &failures {
        match &f.status {
            Status::Failed(e) => errln!(
                "error: {}: {:#}",
                f.address,
                anyhow::Error::new(clone_error(e))
            ),
            Status::Skipped(reason) => errln!("error: {}: not applied: {reason}", f.address),
            _ => {}
        }
        if !f.done.is_empty() {
            errln!("  calls made: {}", f.done.join(", "));
        }
        if !f.not_done.is_empty() {
            errln!("  calls not made: {}", f.not_done.join(", "));
        }
    }
    if json {
        emit_json(&apply_json(plan, &report))?;
    }
    let title = if verb == "destroy" {
        "Destroy"
    } else {
        "Apply"
    };
    if failures.is_empty() {
        if text {
            outln!(
                "\n{title} complete! Resources: {added} added, {changed} changed, {destroyed} destroyed."
            );
            if title == "Apply" && !config.outputs.is_empty() {
                outln!("\nOutputs:\n");
                print_outputs(global, backend, config, None, false).await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    } else {
        let summary = format!(
            "{title} failed for {} resource{}. Done: {added} added, {changed} changed, {destroyed} destroyed.",
            failures.len(),
            if failures.len() == 1 { "" } else { "s" }
        );
        if text {
            outln!("\n{summary}");
        } else if !json {
            errln!("{summary}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// `rota apply -o json` / `rota destroy -o json`: the plan and how each
/// changed resource ended (errors redacted as everywhere: no values).
fn apply_json(plan: &Plan, report: &rota_engine::apply::ApplyReport) -> serde_json::Value {
    let (added, changed, destroyed) = report.counts();
    let resources: Vec<serde_json::Value> = report
        .outcomes
        .iter()
        .map(|o| {
            let (status, error) = match &o.status {
                Status::Applied => ("applied", None),
                Status::Failed(e) => (
                    "failed",
                    Some(format!("{:#}", anyhow::Error::new(clone_error(e)))),
                ),
                Status::Skipped(reason) => ("skipped", Some(reason.clone())),
                _ => ("unknown", None),
            };
            serde_json::json!({
                "address": o.address,
                "action": o.action,
                "status": status,
                "id": o.id,
                "calls_made": o.done,
                "calls_not_made": o.not_done,
                "error": error,
            })
        })
        .collect();
    serde_json::json!({
        "plan": plan.to_json(),
        "result": {
            "added": added,
            "changed": changed,
            "destroyed": destroyed,
            "failed": report.failures().count(),
        },
        "resources": resources,
    })
}

/// `anyhow` wants an owned error; rebuild one that prints the same chain.
fn clone_error(e: &EngineError) -> ChainError {
    let mut chain = Vec::new();
    let mut cur: Option<&dyn std::error::Error> = Some(e);
    while let Some(err) = cur {
        chain.push(err.to_string());
        cur = err.source();
    }
    ChainError(chain)
}

#[derive(Debug)]
struct ChainError(Vec<String>);

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(": "))
    }
}

impl std::error::Error for ChainError {}

async fn show(
    global: &GlobalArgs,
    backend: &backend::Backend,
    config: &Config,
    address: Option<&str>,
) -> Result<ExitCode> {
    let resources: Vec<_> = match address {
        Some(a) => vec![
            config
                .resource(a)
                .ok_or_else(|| EngineError::UnknownAddress(a.to_owned()))?,
        ],
        None => config.resources.iter().collect(),
    };
    let mut out = Vec::new();
    for r in resources {
        let l = live::read(
            &backend.client,
            &r.args.secret_name,
            ReadOptions {
                policy: true,
                versions: true,
            },
        )
        .await?;
        out.push((r.address.clone(), l, &r.sensitive));
    }
    // A sensitive argument (a sensitive variable, `sensitive(…)`) is not
    // shown, as in plans.
    let attributes = |l: &live::LiveSecret, sensitive: &std::collections::BTreeSet<String>| {
        let mut attrs = attributes(l);
        if let Some(obj) = attrs.as_object_mut() {
            for k in sensitive {
                if let Some(v) = obj.get_mut(k) {
                    *v = serde_json::Value::String("(sensitive)".into());
                }
            }
        }
        attrs
    };
    match global.output {
        OutputFormat::Json => {
            let items: Vec<serde_json::Value> = out
                .iter()
                .map(|(addr, l, sensitive)| match l {
                    None => serde_json::json!({"address": addr, "exists": false}),
                    Some(l) => serde_json::json!({
                        "address": addr,
                        "exists": true,
                        "attributes": attributes(l, sensitive),
                    }),
                })
                .collect();
            emit_json(&items)?;
        }
        OutputFormat::Text => {
            for (i, (addr, l, sensitive)) in out.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                match l {
                    None => outln!("# {addr}: the secret does not exist (run rota apply)"),
                    Some(l) => {
                        outln!("# {addr}:");
                        let attrs = attributes(l, sensitive);
                        let obj = attrs.as_object().expect("an object");
                        let width = obj.keys().map(String::len).max().unwrap_or(0);
                        for (k, v) in obj {
                            let text = match v {
                                serde_json::Value::String(s) if s == "(sensitive)" => s.clone(),
                                other => other.to_string(),
                            };
                            outln!("{k:width$} = {text}");
                        }
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn attributes(l: &rota_engine::LiveSecret) -> serde_json::Value {
    serde_json::json!({
        "id": l.name,
        "arn": l.arn,
        "create_time": l.create_time,
        "planned_delete_time": l.planned_delete_time,
        "secret_name": l.name,
        "secret_type": l.secret_type,
        "secret_data": "(sensitive)",
        "secret_data_type": l.secret_data_type,
        "version_id": l.version_id,
        "version_stages": l.version_stages,
        "versions": l.versions.as_ref().map(|vs| vs.iter().map(|v| serde_json::json!({
            "version_id": v.version_id,
            "version_stages": v.version_stages.version_stage,
        })).collect::<Vec<_>>()),
        "description": l.description,
        "encryption_key_id": l.encryption_key_id,
        "dkms_instance_id": l.dkms_instance_id,
        "extended_config": l.extended_config,
        "enable_automatic_rotation": l.automatic_rotation,
        "rotation_interval": l.rotation_interval,
        "policy": l.policy,
        "tags": l.user_tags(),
        "managed_by_rota": l.tags.get(rota_engine::ownership::MANAGED_TAG).is_some_and(|v| v == "true"),
    })
}

/// Writes a file readable only by its owner (a plan names secrets).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(bytes)
}
