//! `workflow` blocks: lifecycle workflow scripts (Rhai, run by rota-script)
//! on a schedule.
//!
//! ```hcl
//! workflow "compliance" {
//!   schedule   = "0 6 * * 1"                    # any scheduler dialect (required)
//!   timezone   = "Europe/Berlin"                # IANA zone, default UTC
//!   script     = "scripts/compliance-report.rhai" # relative to the configuration directory
//!   settings   = { max_age_days = 90 }           # the script's ctx.settings
//!   timeout    = "10m"                           # one run (default 10m)
//!   http_hosts = ["hooks.example.com"]           # hosts the script's http:: may reach
//!   run_immediately = false                      # a new workflow runs at once, then on schedule
//! }
//! ```
//!
//! Every problem is a [`Diagnostic`] with file, line and column. The script
//! itself is compiled and checked by rota-script when the daemon loads it.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::eval::{Context, Evaluate as _};
use rota_scheduler::Schedule;

use super::diag::{Diagnostic, Location, SourceFile};
use super::{eval_message, funcs, suggest};
use crate::resource::parse_duration;

/// Arguments of a `workflow` block.
pub const WORKFLOW_ARGS: &[&str] = &[
    "schedule",
    "timezone",
    "script",
    "settings",
    "timeout",
    "http_hosts",
    "run_immediately",
];

/// A configured workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowBlock {
    /// The block's label.
    pub name: String,
    /// The schedule expression.
    pub schedule: String,
    /// The IANA zone.
    pub timezone: String,
    /// The script, resolved against the configuration directory.
    pub script: PathBuf,
    /// The script's settings (an object).
    pub settings: serde_json::Value,
    /// How long one run may take.
    pub timeout: Duration,
    /// Hosts the script's `http::` may reach.
    pub http_hosts: Vec<String>,
    /// A workflow newly scheduled (no job for it in the scheduler's store
    /// yet) runs at once instead of waiting for its first slot.
    pub run_immediately: bool,
    /// Where the block is.
    pub location: Option<Location>,
}

impl WorkflowBlock {
    /// The scheduler job's name: `workflow:<name>`.
    pub fn job_name(&self) -> String {
        self.target().job_name()
    }

    /// The block as the rotation daemon schedules it.
    pub fn target(&self) -> rota_rotation::WorkflowTarget {
        rota_rotation::WorkflowTarget {
            name: self.name.clone(),
            schedule: self.schedule.clone(),
            timezone: self.timezone.clone(),
            script: self.script.display().to_string(),
            timeout: self.timeout,
            run_immediately: self.run_immediately,
        }
    }
}

pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<WorkflowBlock> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (fi, block) in blocks {
        let file = &files[*fi];
        let head = block.ident.span().unwrap_or(0..0);
        let here = |span: &Range<usize>| Location::of(file, span, true);
        let Some(name) = block
            .labels
            .first()
            .map(|l| l.as_str().to_owned())
            .filter(|_| block.labels.len() == 1)
        else {
            diags.push(
                Diagnostic::new("a workflow block takes one label, its name")
                    .at(here(&head))
                    .help("workflow \"compliance\" { schedule = \"@daily\", script = \"scripts/compliance-report.rhai\" }"),
            );
            continue;
        };
        let address = format!("workflow.{name}");
        if !names.insert(name.clone()) {
            diags.push(
                Diagnostic::new(format!("workflow {name:?} is declared twice"))
                    .at(here(&head))
                    .address(&address),
            );
            continue;
        }
        let bad = |span: &Range<usize>, msg: String, help: &str| {
            Diagnostic::new(msg)
                .at(Location::of(file, span, true))
                .address(&address)
                .help(help.to_owned())
        };
        let mut w = WorkflowBlock {
            name: name.clone(),
            schedule: String::new(),
            timezone: "UTC".into(),
            script: PathBuf::new(),
            settings: serde_json::Value::Object(serde_json::Map::new()),
            timeout: Duration::from_secs(600),
            http_hosts: Vec::new(),
            run_immediately: false,
            location: Some(here(&head)),
        };
        let before = diags.len();
        let mut schedule_span = head.clone();
        for sub in block.body.blocks() {
            diags.push(bad(
                &sub.ident.span().unwrap_or(0..0),
                format!(
                    "unknown block `{}` in workflow {name:?}",
                    sub.ident.as_str()
                ),
                "a workflow block has attributes only",
            ));
        }
        for a in block.body.attributes() {
            let key = a.key.as_str();
            if !WORKFLOW_ARGS.contains(&key) {
                diags.push(bad(
                    &a.key.span().unwrap_or(0..0),
                    format!("unknown attribute `{key}` in workflow {name:?}"),
                    &format!(
                        "{}allowed: {}",
                        suggest(key, WORKFLOW_ARGS),
                        WORKFLOW_ARGS.join(", ")
                    ),
                ));
                continue;
            }
            let expr: hcl::Expression = a.value.clone().into();
            let span = super::expr_span(&a.value);
            let v = match funcs::with_base_dir(root, || expr.evaluate(ctx)) {
                Ok(v) => v,
                Err(e) => {
                    let (msg, help) = eval_message(&e, file.slice(&span), false);
                    let mut d = Diagnostic::new(format!("{key}: {msg}"))
                        .at(here(&span))
                        .address(&address);
                    d.help = help;
                    diags.push(d);
                    continue;
                }
            };
            match (key, &v) {
                ("schedule", Value::String(s)) => {
                    w.schedule = s.clone();
                    schedule_span = span.clone();
                }
                ("timezone", Value::String(z)) => match rota_scheduler::parse_tz(z) {
                    Ok(_) => w.timezone = z.clone(),
                    Err(e) => diags.push(bad(
                        &span,
                        format!("timezone: {e}"),
                        "an IANA zone name such as \"Europe/Berlin\" or \"UTC\"",
                    )),
                },
                ("script", Value::String(s)) => {
                    let path = root.join(s);
                    if path.is_file() {
                        w.script = path;
                    } else {
                        diags.push(bad(&span, format!("script {s:?} does not exist"), "a path relative to the configuration directory, e.g. \"scripts/compliance-report.rhai\""));
                    }
                }
                ("timeout", Value::String(s)) => match parse_duration(s) {
                    Some(d) if !d.is_zero() => w.timeout = d,
                    _ => diags.push(bad(
                        &span,
                        "timeout must be a positive duration".into(),
                        "e.g. \"10m\"",
                    )),
                },
                ("settings", _) => match serde_json::to_value(&v) {
                    Ok(j @ serde_json::Value::Object(_)) => w.settings = j,
                    _ => diags.push(bad(
                        &span,
                        "settings must be a map".into(),
                        "settings = { max_age_days = 90 }",
                    )),
                },
                ("run_immediately", Value::Bool(b)) => w.run_immediately = *b,
                ("http_hosts", Value::Array(a)) if a.iter().all(|h| h.is_string()) => {
                    w.http_hosts = a
                        .iter()
                        .filter_map(|h| h.as_str().map(str::to_owned))
                        .collect();
                }
                _ => diags.push(bad(
                    &span,
                    format!("{key} has the wrong type"),
                    match key {
                        "http_hosts" => "a list of host names, e.g. [\"hooks.example.com\"]",
                        "run_immediately" => "true or false",
                        _ => "a string",
                    },
                )),
            }
        }
        if w.schedule.is_empty() {
            diags.push(bad(
                &head,
                format!("workflow {name:?} has no schedule"),
                "schedule = \"@daily\" (cron, a macro, an interval or a time)",
            ));
        } else if let Err(e) = Schedule::parse_in(&w.schedule, &w.timezone) {
            diags.push(bad(&schedule_span, format!("schedule: {e}"), "cron (\"0 3 * * 0\"), a macro (\"@daily\"), an interval (\"7d\") or a one-shot time"));
        }
        if w.script.as_os_str().is_empty() && diags.len() == before {
            diags.push(bad(
                &head,
                format!("workflow {name:?} has no script"),
                "script = \"scripts/compliance-report.rhai\"",
            ));
        }
        if diags.len() == before {
            out.push(w);
        }
    }
    out
}
