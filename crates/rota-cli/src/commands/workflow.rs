//! `rota workflow run SCRIPT`: runs a lifecycle workflow's `run(ctx)` once
//! on the configured backend (the embedded local cloud by default) and
//! prints its report. Scheduling workflows on cron (`workflow` blocks under
//! `rota run`) builds on the same library call, `rota_script::Workflow`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;
use rota_script::{CancelFlag, RuntimeOptions, ScriptRuntime, Workflow, WorkflowContext};

use super::lifecycle;
use crate::backend;
use crate::cli::{GlobalArgs, OutputFormat, WorkflowCommand};

/// Runs a `rota workflow` command.
pub(crate) async fn run(command: WorkflowCommand, global: &GlobalArgs) -> Result<ExitCode> {
    let WorkflowCommand::Run {
        vars,
        script,
        settings,
        http_hosts,
        timeout,
    } = command;
    let settings: serde_json::Value = match settings {
        Some(text) => serde_json::from_str(&text).context("--settings is not valid JSON")?,
        None => serde_json::Value::Null,
    };
    let runtime = ScriptRuntime::new(RuntimeOptions {
        region: global.region.clone().unwrap_or_default(),
        ..Default::default()
    });
    let workflow = match Workflow::load(&runtime, &script, settings) {
        Ok(w) => w.with_http_hosts(http_hosts),
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let Some(config) = lifecycle::load(global, &vars)? else {
        return Ok(ExitCode::FAILURE);
    };
    let backend = backend::resolve(global, &config).await?;
    let ctx = WorkflowContext {
        kms: backend.client.clone(),
        api: backend.api.clone(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(timeout),
        now: Utc::now(),
        rotation: serde_json::Value::Null,
        cancel: CancelFlag::new(),
    };
    match workflow.run(ctx).await {
        Ok(report) => {
            match global.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&report)?),
                OutputFormat::Text => {
                    for line in &report.logs {
                        println!("{:<5} {}", line.level, line.message);
                    }
                    println!("{}: {}", report.workflow, report.summary);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
