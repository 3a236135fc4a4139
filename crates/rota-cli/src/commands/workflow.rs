//! `rota workflow run SCRIPT`: runs a lifecycle workflow's `run(ctx)` once
//! on the configured backend (the embedded local cloud by default) and
//! prints its report. Scheduling workflows on cron (`workflow` blocks under
//! `rota run`) builds on the same library call, `rota_script::Workflow`.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context as _, Result};
use rota_rotation::{WorkflowOutput, WorkflowRunner};
use rota_script::{CancelFlag, RuntimeOptions, ScriptRuntime, Workflow, WorkflowContext};

use super::lifecycle;
use crate::backend;
use crate::cli::{GlobalArgs, OutputFormat, WorkflowCommand};
use crate::output::{emit_json, errln, outln};

/// Runs a `rota workflow` command.
pub(crate) async fn run(command: WorkflowCommand, global: &GlobalArgs) -> Result<ExitCode> {
    let WorkflowCommand::Run {
        vars,
        script,
        settings,
        http_hosts,
        timeout,
    } = command;
    // A bare number is seconds, as this option took before durations.
    let timeout = match timeout.trim().parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => rota_clock::parse_duration(&timeout).context("--timeout")?,
    };
    let settings: serde_json::Value = match settings {
        Some(text) => serde_json::from_str(&text).context("--settings is not valid JSON")?,
        None => serde_json::Value::Null,
    };
    let Some(config) = lifecycle::load_or_empty(global, &vars)? else {
        return Ok(ExitCode::FAILURE);
    };
    let runtime = ScriptRuntime::new(RuntimeOptions {
        region: backend::region(global, &config.provider),
        clock: crate::clock::shared(),
        ..Default::default()
    });
    let workflow = match Workflow::load(&runtime, &script, settings) {
        Ok(w) => w.with_http_hosts(http_hosts),
        Err(e) => {
            errln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let backend = backend::resolve(global, &config).await?;
    let ctx = WorkflowContext {
        kms: backend.client.clone(),
        api: backend.api.clone(),
        deadline: tokio::time::Instant::now() + timeout,
        now: crate::clock::now(),
        rotation: serde_json::Value::Null,
        cancel: CancelFlag::new(),
    };
    match workflow.run(ctx).await {
        Ok(report) => {
            match global.output {
                OutputFormat::Json => emit_json(&report)?,
                OutputFormat::Text => {
                    for line in &report.logs {
                        outln!("{:<5} {}", line.level, line.message);
                    }
                    outln!("{}: {}", report.workflow, report.summary);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            errln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The configured `workflow` blocks, loaded for the daemon, which runs them
/// through [`WorkflowRunner`] (the daemon core records each run in the
/// history: `rota history workflow:<name>`). A reload (SIGHUP) compiles the
/// new set first and swaps it in only if every script loads; a run in
/// flight keeps the workflow it started with.
pub(crate) struct WorkflowJobs {
    loaded: RwLock<Arc<Loaded>>,
    region: String,
    kms: rota_kms::KmsClient,
    api: rota_kms::OpenApi,
}

type Entry = Arc<(Workflow, rota_engine::config::workflow::WorkflowBlock)>;

/// Workflows compiled by [`WorkflowJobs::prepare`], not yet installed.
pub(crate) struct Prepared(Arc<Loaded>);

/// One configuration's workflows.
struct Loaded {
    workflows: HashMap<String, Entry>,
    /// What the compliance report needs to know: which secrets rotate.
    rotation: serde_json::Value,
}

impl Loaded {
    fn compile(config: &rota_engine::config::Config, region: &str) -> Result<Self> {
        let runtime = ScriptRuntime::new(RuntimeOptions {
            region: region.to_owned(),
            clock: crate::clock::shared(),
            ..Default::default()
        });
        let mut workflows = HashMap::new();
        for block in &config.workflows {
            let w = Workflow::load(&runtime, &block.script, block.settings.clone())
                .with_context(|| format!("workflow {:?}", block.name))?
                .with_name(block.name.clone())
                .with_http_hosts(block.http_hosts.clone());
            workflows.insert(block.name.clone(), Arc::new((w, block.clone())));
        }
        let rotation = serde_json::Value::Object(
            config
                .rotations
                .iter()
                .map(|t| (t.secret.clone(), serde_json::json!({"configured": true})))
                .collect(),
        );
        Ok(Self {
            workflows,
            rotation,
        })
    }
}

impl WorkflowJobs {
    /// Loads (compiles and checks) every workflow of `config`.
    pub(crate) fn load(
        config: &rota_engine::config::Config,
        global: &GlobalArgs,
        backend: &backend::Backend,
    ) -> Result<Self> {
        let region = backend::region(global, &config.provider);
        let loaded = Loaded::compile(config, &region)?;
        Ok(Self {
            loaded: RwLock::new(Arc::new(loaded)),
            region,
            kms: backend.client.clone(),
            api: backend.api.clone(),
        })
    }

    /// Compiles `config`'s workflows without installing them (a reload
    /// checks them first).
    pub(crate) fn prepare(&self, config: &rota_engine::config::Config) -> Result<Prepared> {
        Ok(Prepared(Arc::new(Loaded::compile(config, &self.region)?)))
    }

    /// Installs prepared workflows: runs from now on use them.
    pub(crate) fn install(&self, prepared: Prepared) {
        if let Ok(mut l) = self.loaded.write() {
            *l = prepared.0;
        }
    }

    fn current(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .map(|l| l.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

impl WorkflowRunner for WorkflowJobs {
    fn run<'a>(
        &'a self,
        name: &'a str,
        _run: &'a rota_scheduler::JobRun,
    ) -> rota_kms::BoxFuture<'a, std::result::Result<WorkflowOutput, String>> {
        Box::pin(async move {
            let loaded = self.current();
            let Some(entry) = loaded.workflows.get(name).cloned() else {
                return Err("workflow no longer configured".to_owned());
            };
            let (w, b) = (&entry.0, &entry.1);
            let ctx = WorkflowContext {
                kms: self.kms.clone(),
                api: self.api.clone(),
                deadline: tokio::time::Instant::now() + b.timeout,
                now: crate::clock::now(),
                rotation: loaded.rotation.clone(),
                cancel: CancelFlag::new(),
            };
            match w.run(ctx).await {
                Ok(report) => Ok(WorkflowOutput {
                    summary: report.summary.clone(),
                    report: serde_json::to_value(&report).unwrap_or_default(),
                }),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}
