//! The `agent` and `template` blocks (Rota's): what `rota agent` renders
//! for an application, and how it tells the application.
//!
//! ```hcl
//! agent {
//!   consumer     = "web-1"                  # reported for adoption (default: the host name)
//!   events_url   = "http://10.0.0.5:9465"   # the daemon's --events-addr (optional)
//!   poll         = "5m"                     # GetSecretValue every 5m ±10% (default 5m)
//!   report_every = "1m"                     # adoption reports (default 1m)
//! }
//!
//! template "db" {
//!   secrets        = { db = "app/db" }      # name in the template → secret (or: secret = "app/db")
//!   format         = "template"             # raw | json_field | dotenv | template
//!   template       = "postgres://{{ db.username }}:{{ db.password }}@{{ db.host }}/{{ db.dbname }}"
//!   destination    = "/run/app/db.url"
//!   mode           = "0600"
//!   reload_command = ["systemctl", "reload", "app"]
//! }
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hcl::Value;
use hcl::eval::Context;

use super::block::{BlockDecoder, TypeWording};
use super::diag::{Diagnostic, Location, SourceFile};

/// Arguments of the `agent` block.
pub const AGENT_ARGS: &[&str] = &["consumer", "events_url", "poll", "report_every"];
/// Arguments of a `template` block.
pub const TEMPLATE_ARGS: &[&str] = &[
    "secret",
    "secrets",
    "format",
    "field",
    "template",
    "template_file",
    "destination",
    "mode",
    "owner",
    "reload_command",
    "reload_signal",
    "pid_file",
    "reload_url",
];
/// The formats of a template.
pub const FORMATS: &[&str] = &["raw", "json_field", "dotenv", "template"];

/// The `agent` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The consumer id (default: the host name, chosen by the binary).
    pub consumer: Option<String>,
    /// The daemon's events address.
    pub events_url: Option<String>,
    /// The polling interval.
    pub poll: Duration,
    /// How often adoption is reported again.
    pub report_every: Duration,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            consumer: None,
            events_url: None,
            poll: Duration::from_secs(300),
            report_every: Duration::from_secs(60),
        }
    }
}

/// How a template tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reload {
    /// Nothing: the application reads the file when it needs it.
    None,
    /// Run a program (exit 0 is success).
    Command(Vec<String>),
    /// Send a signal to the process in a pid file.
    Signal {
        /// `HUP`, `USR1`, …
        signal: String,
        /// The pid file.
        pid_file: PathBuf,
    },
    /// `POST` to a URL (2xx is success).
    Http(String),
}

/// A `template` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateConfig {
    /// Its label.
    pub name: String,
    /// Name in the template → secret name.
    pub secrets: BTreeMap<String, String>,
    /// `raw`, `json_field`, `dotenv` or `template`.
    pub format: String,
    /// The JSON field (`json_field`).
    pub field: Option<String>,
    /// The template text (`template`).
    pub template: Option<String>,
    /// Where the template text came from: the file, or the configuration
    /// file and line of the attribute.
    pub template_origin: String,
    /// The file written.
    pub destination: PathBuf,
    /// Its permission bits.
    pub mode: u32,
    /// Its owner (a user name or uid).
    pub owner: Option<String>,
    /// The reload action.
    pub reload: Reload,
    /// Where the block is.
    pub location: Option<Location>,
}

const TEMPLATE_EXAMPLE: &str = "template \"db\" { secret = \"app/db\", format = \"raw\", destination = \"/run/app/db.password\" }";

/// Reads the `agent` block (at most one) and the `template` blocks.
pub(crate) fn load(
    files: &[SourceFile],
    agents: &[(usize, hcl::edit::structure::Block)],
    templates: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> (Option<AgentConfig>, Vec<TemplateConfig>) {
    let mut agent = None;
    for (i, (fi, block)) in agents.iter().enumerate() {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "agent",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        if !d.no_label("agent", "agent { events_url = \"http://127.0.0.1:9465\" }") {
            continue;
        }
        if i > 0 {
            d.error_at_head("a second agent block".into(), "keep one agent block");
            continue;
        }
        d.no_blocks("an agent block has attributes only");
        let mut a = AgentConfig::default();
        for attr in block.body.attributes() {
            let Some(attr) = d.known_attribute(attr, AGENT_ARGS, "") else {
                continue;
            };
            match attr.key.as_str() {
                "consumer" => a.consumer = d.string(&attr, "consumer = \"web-1\""),
                "events_url" => {
                    if let Some(u) = d.string(&attr, "events_url = \"http://127.0.0.1:9465\"") {
                        if u.starts_with("http://") || u.starts_with("https://") {
                            a.events_url = Some(u.trim_end_matches('/').to_owned());
                        } else {
                            d.must_be(
                                &attr,
                                "an http:// or https:// URL",
                                "the daemon's --events-addr, e.g. \"http://127.0.0.1:9465\"",
                            );
                        }
                    }
                }
                "poll" => match d.duration(&attr) {
                    Some(t) if t >= Duration::from_secs(1) => a.poll = t,
                    Some(_) => d.must_be(&attr, "at least 1s", "poll = \"5m\""),
                    None => {}
                },
                "report_every" => match d.duration(&attr) {
                    Some(t) if t >= Duration::from_secs(1) => a.report_every = t,
                    Some(_) => d.must_be(&attr, "at least 1s", "report_every = \"1m\""),
                    None => {}
                },
                _ => {}
            }
        }
        if !d.found_problems() {
            agent = Some(a);
        }
    }
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    let mut destinations: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (fi, block) in templates {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "template",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        let Some(name) = d.name_label("template", TEMPLATE_EXAMPLE) else {
            continue;
        };
        if !d.first_declaration(&mut names, &name) {
            continue;
        }
        if let Some(t) = decode_template(&mut d, name) {
            if let Some(other) = destinations.insert(t.destination.clone(), t.name.clone()) {
                d.error_at_head(
                    format!(
                        "template {:?} writes {}, as template {other:?} does",
                        t.name,
                        t.destination.display()
                    ),
                    "each template writes its own file",
                );
                continue;
            }
            out.push(t);
        }
    }
    (agent, out)
}

fn decode_template(d: &mut BlockDecoder<'_>, name: String) -> Option<TemplateConfig> {
    let mut t = TemplateConfig {
        name,
        secrets: BTreeMap::new(),
        format: "raw".into(),
        field: None,
        template: None,
        template_origin: String::new(),
        destination: PathBuf::new(),
        mode: 0o600,
        owner: None,
        reload: Reload::None,
        location: Some(d.head_location()),
    };
    let (mut signal, mut pid_file): (Option<String>, Option<PathBuf>) = (None, None);
    let mut reloads = 0;
    d.no_blocks("a template block has attributes only");
    for a in d.block().body.attributes() {
        let Some(attr) = d.known_attribute(a, TEMPLATE_ARGS, "") else {
            continue;
        };
        match attr.key.as_str() {
            "secret" => {
                if let Some(s) = d.string(&attr, "secret = \"app/db\"") {
                    t.secrets.insert("secret".into(), s);
                }
            }
            "secrets" => match &attr.value {
                Value::Object(m) => {
                    for (k, v) in m {
                        match v.as_str() {
                            Some(s) => {
                                t.secrets.insert(k.to_string(), s.to_owned());
                            }
                            None => d.must_be(
                                &attr,
                                "a map of names to secret names",
                                "secrets = { db = \"app/db\" }",
                            ),
                        }
                    }
                }
                _ => d.must_be(
                    &attr,
                    "a map of names to secret names",
                    "secrets = { db = \"app/db\" }",
                ),
            },
            "format" => match attr.value.as_str() {
                Some(f) if FORMATS.contains(&f) => t.format = f.to_owned(),
                _ => d.must_be(
                    &attr,
                    "one of raw, json_field, dotenv, template",
                    "format = \"template\"",
                ),
            },
            "field" => t.field = d.string(&attr, "field = \"password\""),
            "template" => {
                if let Some(s) = d.string(&attr, "template = \"{{ db.password }}\"") {
                    t.template = Some(s);
                    t.template_origin = d.location(&attr.span).place();
                }
            }
            "template_file" => {
                if let Some(s) = d.string(&attr, "template_file = \"db.url.tmpl\"") {
                    let path = d.root().join(&s);
                    match crate::files::read_text(&path, crate::files::FILE_LIMIT) {
                        Ok(text) => {
                            t.template = Some(text);
                            t.template_origin = path.display().to_string();
                        }
                        Err(e) => d.error(
                            &attr.span,
                            format!("template_file {s:?} cannot be read: {e}"),
                            "a path relative to the configuration directory",
                        ),
                    }
                }
            }
            "destination" => {
                if let Some(s) = d.string(&attr, "destination = \"/run/app/db.url\"") {
                    t.destination = d.root().join(s);
                }
            }
            "mode" => match attr
                .value
                .as_str()
                .and_then(|m| u32::from_str_radix(m, 8).ok())
            {
                Some(m) if m <= 0o7777 => t.mode = m,
                _ => d.must_be(&attr, "an octal string such as \"0600\"", "mode = \"0640\""),
            },
            "owner" => t.owner = d.string(&attr, "owner = \"app\""),
            "reload_command" => {
                if let Some(argv) = d.strings(
                    &attr,
                    "reload_command = [\"systemctl\", \"reload\", \"app\"]",
                ) {
                    if argv.first().is_none_or(String::is_empty) {
                        d.must_be(
                            &attr,
                            "a program and its arguments",
                            "reload_command = [\"systemctl\", \"reload\", \"app\"]",
                        );
                    } else {
                        t.reload = Reload::Command(argv);
                        reloads += 1;
                    }
                }
            }
            "reload_signal" => {
                match attr
                    .value
                    .as_str()
                    .map(|s| s.trim_start_matches("SIG").to_ascii_uppercase())
                {
                    Some(s)
                        if ["HUP", "USR1", "USR2", "TERM", "INT", "QUIT"].contains(&s.as_str()) =>
                    {
                        signal = Some(s);
                        reloads += 1;
                    }
                    _ => d.must_be(
                        &attr,
                        "one of HUP, USR1, USR2, TERM, INT, QUIT",
                        "reload_signal = \"HUP\"",
                    ),
                }
            }
            "pid_file" => {
                pid_file = d
                    .string(&attr, "pid_file = \"/run/app.pid\"")
                    .map(|p| d.root().join(p));
            }
            "reload_url" => {
                if let Some(u) = d.string(&attr, "reload_url = \"http://127.0.0.1:8080/-/reload\"")
                {
                    if u.starts_with("http://") || u.starts_with("https://") {
                        t.reload = Reload::Http(u);
                        reloads += 1;
                    } else {
                        d.must_be(
                            &attr,
                            "an http:// or https:// URL",
                            "reload_url = \"http://127.0.0.1:8080/-/reload\"",
                        );
                    }
                }
            }
            _ => {}
        }
    }
    let found = d.found_problems();
    let problem = |d: &mut BlockDecoder<'_>, msg: String, help: &str| {
        if !found {
            d.error_at_head(msg, help);
        }
    };
    if t.secrets.is_empty() {
        problem(
            d,
            format!("template {:?} names no secret", t.name),
            "secret = \"app/db\", or secrets = { db = \"app/db\" }",
        );
    }
    if t.destination.as_os_str().is_empty() {
        problem(
            d,
            format!("template {:?} needs destination", t.name),
            "destination = \"/run/app/db.url\"",
        );
    }
    if reloads > 1 {
        problem(
            d,
            format!("template {:?} has more than one reload action", t.name),
            "one of reload_command, reload_signal (with pid_file), reload_url",
        );
    }
    match (signal, pid_file) {
        (Some(signal), Some(pid_file)) => t.reload = Reload::Signal { signal, pid_file },
        (Some(_), None) => problem(
            d,
            format!("template {:?}: reload_signal needs pid_file", t.name),
            "pid_file = \"/run/app.pid\"",
        ),
        (None, Some(_)) => problem(
            d,
            format!("template {:?}: pid_file without reload_signal", t.name),
            "reload_signal = \"HUP\"",
        ),
        (None, None) => {}
    }
    match t.format.as_str() {
        "raw" | "json_field" if t.secrets.len() != 1 => problem(
            d,
            format!(
                "template {:?}: format {} renders one secret",
                t.name, t.format
            ),
            "secret = \"app/db\"; for several secrets use dotenv or template",
        ),
        "json_field" if t.field.is_none() => problem(
            d,
            format!("template {:?}: json_field needs field", t.name),
            "field = \"password\"",
        ),
        "template" if t.template.is_none() => problem(
            d,
            format!(
                "template {:?}: format template needs template or template_file",
                t.name
            ),
            "template = \"{{ db.password }}\"",
        ),
        _ => {}
    }
    (!d.found_problems()).then_some(t)
}
