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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hcl::eval::Context;

use super::block::{BlockDecoder, TypeWording};
use super::diag::{Diagnostic, Location, SourceFile};
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

/// Reads the `workflow` blocks. A block with any problem is left out;
/// problems go to `diags`.
pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<WorkflowBlock> {
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    for (fi, block) in blocks {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "workflow",
            ctx,
            root,
            TypeWording::HasTheWrongType,
            diags,
        );
        let Some(name) = d.name_label(
            "workflow",
            "workflow \"compliance\" { schedule = \"@daily\", script = \"scripts/compliance-report.rhai\" }",
        ) else {
            continue;
        };
        if !d.first_declaration(&mut names, &name) {
            continue;
        }
        if let Some(w) = decode(&mut d, name) {
            out.push(w);
        }
    }
    out
}

/// Decodes the block of workflow `name`: its attributes, then the required
/// schedule and script. `None` when anything in the block was reported.
fn decode(d: &mut BlockDecoder<'_>, name: String) -> Option<WorkflowBlock> {
    let mut w = WorkflowBlock {
        name: name.clone(),
        schedule: String::new(),
        timezone: "UTC".into(),
        script: PathBuf::new(),
        settings: serde_json::Value::Object(serde_json::Map::new()),
        timeout: Duration::from_secs(600),
        http_hosts: Vec::new(),
        run_immediately: false,
        location: Some(d.head_location()),
    };
    let mut schedule_span = d.head();
    d.no_blocks("a workflow block has attributes only");
    for a in d.block().body.attributes() {
        let Some(attr) = d.known_attribute(a, WORKFLOW_ARGS, "") else {
            continue;
        };
        match attr.key.as_str() {
            "schedule" => {
                if let Some(s) = d.string(&attr, "a string") {
                    w.schedule = s;
                    schedule_span = attr.span.clone();
                }
            }
            "timezone" => {
                if let Some(z) = d.timezone(&attr, "a string") {
                    w.timezone = z;
                }
            }
            "script" => {
                if let Some(s) = d.string(&attr, "a string") {
                    let path = d.root().join(&s);
                    if path.is_file() {
                        w.script = path;
                    } else {
                        d.error(
                            &attr.span,
                            format!("script {s:?} does not exist"),
                            "a path relative to the configuration directory, e.g. \"scripts/compliance-report.rhai\"",
                        );
                    }
                }
            }
            "timeout" => {
                if let Some(s) = d.string(&attr, "a string") {
                    match parse_duration(&s) {
                        Some(t) if !t.is_zero() => w.timeout = t,
                        _ => d.must_be(&attr, "a positive duration", "e.g. \"10m\""),
                    }
                }
            }
            "settings" => {
                if let Some(j) = d.json_object(&attr, "settings = { max_age_days = 90 }") {
                    w.settings = j;
                }
            }
            "run_immediately" => {
                if let Some(b) = d.bool(&attr, "true or false") {
                    w.run_immediately = b;
                }
            }
            "http_hosts" => {
                let help = "a list of host names, e.g. [\"hooks.example.com\"]";
                if let Some(hosts) = d.strings(&attr, help) {
                    w.http_hosts = hosts;
                }
            }
            _ => {}
        }
    }
    if w.schedule.is_empty() {
        d.error_at_head(
            format!("workflow {name:?} has no schedule"),
            "schedule = \"@daily\" (cron, a macro, an interval or a time)",
        );
    } else {
        d.check_schedule(&w.schedule, &w.timezone, &schedule_span);
    }
    if w.script.as_os_str().is_empty() && !d.found_problems() {
        d.error_at_head(
            format!("workflow {name:?} has no script"),
            "script = \"scripts/compliance-report.rhai\"",
        );
    }
    (!d.found_problems()).then_some(w)
}
