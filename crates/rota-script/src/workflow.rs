//! Lifecycle workflows: a Rhai script defining `run(ctx)`, run on a
//! schedule by a `workflow` block (`schedule`, `timezone`, `script`,
//! settings). [`Workflow::load`] compiles and checks it; [`Workflow::run`]
//! calls `run` with the host modules bound to the configured backend and
//! returns a [`WorkflowReport`] (the CLI and daemon schedule it and record
//! the report in the run history).
//!
//! `ctx` holds `workflow` (its name), `settings`, `now` (Unix seconds, from
//! the caller's clock, so tests pin it), `now_rfc3339`, `rotation` (what the
//! caller knows of each secret's rotation: a map by secret name, e.g.
//! `#{configured: true, last_success: "…", failing: true, last_error: "…"}`)
//! and `deadline_ms`. `run` returns a map; its `summary` string, if any,
//! becomes the report's summary. Log lines (`log::…`, `print`) are captured
//! into the report, scrubbed of secret values.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rhai::{AST, Dynamic, Map};
use rota_kms::{KmsClient, OpenApi};
use serde_json::Value;

use crate::convert::to_dynamic;
use crate::env::{CancelFlag, LogLine};
use crate::error::{LoadError, ScriptError};
use crate::plugin::check_hooks;
use crate::runtime::{CallSpec, ScriptRuntime};

/// A loaded workflow.
#[derive(Debug)]
pub struct Workflow {
    name: String,
    path: PathBuf,
    script: Arc<str>,
    settings: Value,
    http_hosts: Vec<String>,
    runtime: Arc<ScriptRuntime>,
    ast: RwLock<Arc<AST>>,
}

/// What a run gets from its caller.
#[derive(Debug, Clone)]
pub struct WorkflowContext {
    /// KMS on the configured backend.
    pub kms: KmsClient,
    /// OpenAPI on the configured backend.
    pub api: OpenApi,
    /// When the run must be done.
    pub deadline: tokio::time::Instant,
    /// The run's clock reading.
    pub now: DateTime<Utc>,
    /// Rotation state per secret name (see the module docs); `Null` if unknown.
    pub rotation: Value,
    /// Cancels the run.
    pub cancel: CancelFlag,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct WorkflowReport {
    /// The workflow's name.
    pub workflow: String,
    /// One line for history and notifications.
    pub summary: String,
    /// What `run` returned, secrets shown as `***`.
    pub result: Value,
    /// Captured log lines.
    pub logs: Vec<LogLine>,
    /// How long it took.
    #[serde(skip)]
    pub duration: Duration,
}

impl Workflow {
    /// Loads the script at `path` with `settings` (an object, or null).
    /// The name is the file stem.
    pub fn load(
        runtime: &Arc<ScriptRuntime>,
        path: &Path,
        settings: Value,
    ) -> Result<Self, LoadError> {
        if !(settings.is_object() || settings.is_null()) {
            return Err(LoadError::WorkflowSettings {
                path: path.to_owned(),
            });
        }
        let settings = if settings.is_null() {
            Value::Object(serde_json::Map::new())
        } else {
            settings
        };
        let (ast, _) = runtime.compile_file(path)?;
        check_hooks(path, &ast, &["run"], &[])?;
        Ok(Self {
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_owned(),
            script: Arc::from(path.display().to_string()),
            settings,
            http_hosts: Vec::new(),
            runtime: runtime.clone(),
            ast: RwLock::new(ast),
        })
    }

    /// Renames it (the `workflow` block's label).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Grants `http::` access to `hosts`.
    pub fn with_http_hosts(mut self, hosts: Vec<String>) -> Self {
        self.http_hosts = hosts;
        self
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The script's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Recompiles the script if it changed; returns whether it did.
    pub fn reload_if_changed(&self) -> Result<bool, LoadError> {
        let (ast, changed) = self.runtime.compile_file(&self.path)?;
        if changed {
            check_hooks(&self.path, &ast, &["run"], &[])?;
            *self
                .ast
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = ast;
        }
        Ok(changed)
    }

    /// Runs `run(ctx)`.
    ///
    /// A script edited since the last run is recompiled first (a workflow
    /// runs rarely, so the file is simply reread); a broken edit is logged
    /// and the previous script runs.
    pub async fn run(&self, ctx: WorkflowContext) -> Result<WorkflowReport, ScriptError> {
        if let Err(e) = self.reload_if_changed() {
            tracing::warn!(workflow = %self.name, error = %e, "the changed script does not load; the previous one runs");
        }
        let started = std::time::Instant::now();
        let ast = self
            .ast
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let name = self.name.clone();
        let settings = self.settings.clone();
        let rotation = ctx.rotation.clone();
        let now = ctx.now;
        let remaining = ctx
            .deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_millis() as i64;
        let spec = CallSpec {
            script: self.script.clone(),
            hook: "run".into(),
            kms: Some(ctx.kms),
            api: Some(ctx.api),
            deadline: ctx.deadline.into_std(),
            cancel: ctx.cancel,
            http_hosts: self.http_hosts.clone(),
            capture_logs: true,
            report: true,
            speculate: None,
            span: tracing::Span::current(),
            arg: Box::new(move || {
                let mut m = Map::new();
                m.insert("workflow".into(), Dynamic::from(name.clone()));
                m.insert("settings".into(), to_dynamic(&settings));
                m.insert("now".into(), Dynamic::from_int(now.timestamp()));
                m.insert(
                    "now_rfc3339".into(),
                    Dynamic::from(now.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                );
                m.insert("rotation".into(), to_dynamic(&rotation));
                m.insert("deadline_ms".into(), Dynamic::from_int(remaining));
                Dynamic::from_map(m)
            }),
        };
        let out = self.runtime.call(ast, spec).await?;
        let result = out.report;
        let summary = result
            .get("summary")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| format!("{} finished", self.name));
        Ok(WorkflowReport {
            workflow: self.name.clone(),
            summary,
            result,
            logs: out.logs,
            duration: started.elapsed(),
        })
    }
}
