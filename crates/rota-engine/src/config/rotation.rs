//! `rotation` blocks: which secrets rotate, when, and with which plugin.
//!
//! ```hcl
//! rotation "db-passwords" {
//!   secrets  = ["alicloud_kms_secret.db", "app/*"] # addresses, names or glob patterns
//!   match {                                         # and/or: select by name pattern, type and tags
//!     name = "svc/*"
//!     type = "Generic"
//!     tags = { team = "ops" }
//!   }
//!   schedule      = "0 3 * * 0"     # any scheduler dialect; default: the secret's rotation_interval
//!   timezone      = "Europe/Berlin" # IANA zone, default UTC
//!   window        = "2h"            # start only inside [slot, slot + window)
//!   jitter        = true            # spread starts across the window (default true)
//!   catch_up      = "once"          # or "skip"
//!   rotate_immediately = false      # a newly scheduled secret rotates at once (default false)
//!   plugin        = "password"      # default: password for Generic, managed for managed types
//!   settings      = { length = 32, field = "password" }
//!   max_attempts  = 5               # retry budget per slot, then *needs attention*
//!   retry_backoff = "30s"           # first backoff (doubling, with jitter)
//!   timeout       = "15m"           # one attempt
//!   on_failure { webhook = "https://hooks.example/rota" }
//! }
//! ```
//!
//! Entries of `secrets` are resource addresses (`alicloud_kms_secret.db`),
//! secret names, or glob patterns (`*`, `?`) over the configured secrets'
//! names. A name that matches no configured resource is taken as a secret
//! that exists outside this configuration; its type is learned when it
//! rotates. A secret matched by two blocks is an error.
//!
//! A resource with `enable_automatic_rotation = true` that no block matches
//! gets an implicit rotation named `auto:<resource name>`: plugin `managed`
//! for managed types (`password` for Generic), scheduled every
//! `rotation_interval` (default `7d`). Rota's scheduler drives it.
//!
//! Every problem is a [`Diagnostic`] with file, line and column. Plugin names
//! and settings are checked by [`validate_plugins`] against a
//! [`PluginRegistry`] the caller builds (built-ins plus whatever Rhai or
//! native plugins it registered).
//!
//! `workflow` blocks (lifecycle workflows run by rota-script) are parsed by
//! [`super::workflow`]; a workflow as an `on_failure` action next to
//! `webhook` is not built yet.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::eval::{Context, Evaluate as _};
use rota_scheduler::{CatchUp, Schedule};

use super::diag::{Diagnostic, Location, SourceFile};
use super::{Resource, eval_message, funcs, suggest};
use crate::resource::{RESOURCE_TYPE, parse_duration};
use rota_rotation::{OnFailure, PluginRegistry, RegistryError, RotationTarget};

/// Arguments of a `rotation` block.
pub const ROTATION_ARGS: &[&str] = &[
    "secrets",
    "schedule",
    "timezone",
    "window",
    "jitter",
    "catch_up",
    "rotate_immediately",
    "plugin",
    "settings",
    "max_attempts",
    "retry_backoff",
    "timeout",
];

/// Blocks inside a `rotation` block.
const ROTATION_BLOCKS: &[&str] = &["match", "on_failure"];

/// Where each rotation target is configured: (rotation, secret) → the
/// plugin attribute, else the block (the resource for implicit rotations).
pub type RotationLocations = BTreeMap<(String, String), Location>;

/// Matches `pattern` (with `*` and `?`) against `text`.
pub use rota_kms::pattern::wildcard_match as glob_match;

fn is_pattern(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

struct Selector {
    name: Option<String>,
    secret_type: Option<String>,
    tags: BTreeMap<String, String>,
}

impl Selector {
    fn matches(&self, r: &Resource) -> bool {
        self.name
            .as_deref()
            .is_none_or(|n| glob_match(n, &r.args.secret_name))
            && self
                .secret_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case(&r.args.secret_type))
            && self
                .tags
                .iter()
                .all(|(k, v)| r.args.tags.get(k).is_some_and(|have| glob_match(v, have)))
    }
}

/// Reads the `rotation` blocks (and the implicit rotations) of a loaded
/// configuration. Problems go to `diags`.
pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    resources: &[Resource],
    diags: &mut Vec<Diagnostic>,
) -> Vec<(RotationTarget, Option<Location>)> {
    let mut out: Vec<(RotationTarget, Option<Location>)> = Vec::new();
    // secret name → (rotation, location) that claimed it.
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut names: BTreeMap<String, ()> = BTreeMap::new();
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
                Diagnostic::new("a rotation block takes one label, its name")
                    .at(here(&head))
                    .help("rotation \"db-passwords\" { secrets = [\"app/*\"] … }"),
            );
            continue;
        };
        let address = format!("rotation.{name}");
        if names.insert(name.clone(), ()).is_some() {
            diags.push(
                Diagnostic::new(format!("rotation {name:?} is declared twice"))
                    .at(here(&head))
                    .address(&address),
            );
            continue;
        }
        let eval = |a: &hcl::edit::structure::Attribute,
                    diags: &mut Vec<Diagnostic>|
         -> Option<(Value, Range<usize>)> {
            let expr: hcl::Expression = a.value.clone().into();
            let span = super::expr_span(&a.value);
            match funcs::with_base_dir(root, || expr.evaluate(ctx)) {
                Ok(v) => Some((v, span)),
                Err(e) => {
                    let (msg, help) = eval_message(&e, file.slice(&span), false);
                    let mut d = Diagnostic::new(format!("{}: {msg}", a.key.as_str()))
                        .at(here(&span))
                        .address(&address);
                    d.help = help;
                    diags.push(d);
                    None
                }
            }
        };
        let mut t = RotationTarget {
            rotation: name.clone(),
            secret: String::new(),
            address: None,
            secret_type: None,
            schedule: String::new(),
            timezone: "UTC".into(),
            window: Duration::ZERO,
            jitter: true,
            catch_up: CatchUp::Once,
            rotate_immediately: false,
            plugin: String::new(),
            settings: serde_json::Value::Null,
            max_attempts: 3,
            retry_backoff: Duration::from_secs(10),
            timeout: Duration::from_secs(15 * 60),
            on_failure: OnFailure::default(),
            implicit: false,
        };
        // Where the plugin is named, else the block.
        let mut location = Some(here(&head));
        let mut entries: Vec<(String, Range<usize>)> = Vec::new();
        let mut selectors: Vec<Selector> = Vec::new();
        let mut schedule_span = None;
        let bad = |span: &Range<usize>, msg: String, help: &str| {
            Diagnostic::new(msg)
                .at(Location::of(file, span, true))
                .address(&address)
                .help(help.to_owned())
        };
        for a in block.body.attributes() {
            let key = a.key.as_str();
            if !ROTATION_ARGS.contains(&key) {
                diags.push(
                    Diagnostic::new(format!("unknown attribute `{key}` in rotation {name:?}"))
                        .at(here(&a.key.span().unwrap_or(0..0)))
                        .address(&address)
                        .help(format!(
                            "{}allowed: {}; blocks: match, on_failure",
                            suggest(key, ROTATION_ARGS),
                            ROTATION_ARGS.join(", ")
                        )),
                );
                continue;
            }
            let Some((v, span)) = eval(a, diags) else {
                continue;
            };
            let string = |v: &Value| v.as_str().map(str::to_owned);
            let duration = |v: &Value, diags: &mut Vec<Diagnostic>| -> Option<Duration> {
                let d = v.as_str().and_then(parse_duration);
                if d.is_none() {
                    diags.push(bad(
                        &span,
                        format!("{key} must be a duration"),
                        "write e.g. \"30s\", \"15m\", \"2h\", \"1h30m\" or \"1d\"",
                    ));
                }
                d
            };
            match key {
                "secrets" => match v {
                    Value::Array(items) => {
                        for item in items {
                            match item {
                                Value::String(s) => entries.push((s, span.clone())),
                                _ => diags.push(bad(
                                    &span,
                                    "secrets must be a list of strings".into(),
                                    "addresses (\"alicloud_kms_secret.db\"), names or patterns (\"app/*\")",
                                )),
                            }
                        }
                    }
                    Value::String(s) => entries.push((s, span.clone())),
                    _ => diags.push(bad(
                        &span,
                        "secrets must be a list of strings".into(),
                        "addresses (\"alicloud_kms_secret.db\"), names or patterns (\"app/*\")",
                    )),
                },
                "schedule" => match string(&v) {
                    Some(s) => {
                        t.schedule = s;
                        schedule_span = Some(span.clone());
                    }
                    None => diags.push(bad(
                        &span,
                        "schedule must be a string".into(),
                        "cron (\"0 3 * * 0\"), a macro (\"@daily\"), an interval (\"7d\") or a time",
                    )),
                },
                "timezone" => match string(&v) {
                    Some(z) => match rota_scheduler::parse_tz(&z) {
                        Ok(_) => t.timezone = z,
                        Err(e) => diags.push(bad(
                            &span,
                            format!("timezone: {e}"),
                            "an IANA zone name such as \"Europe/Berlin\" or \"UTC\"",
                        )),
                    },
                    None => diags.push(bad(
                        &span,
                        "timezone must be a string".into(),
                        "an IANA zone name",
                    )),
                },
                "window" => {
                    if let Some(d) = duration(&v, diags) {
                        t.window = d;
                    }
                }
                "retry_backoff" => {
                    if let Some(d) = duration(&v, diags) {
                        t.retry_backoff = d;
                    }
                }
                "timeout" => {
                    if let Some(d) = duration(&v, diags) {
                        if d.is_zero() {
                            diags.push(bad(&span, "timeout must be positive".into(), "e.g. \"15m\""));
                        } else {
                            t.timeout = d;
                        }
                    }
                }
                "jitter" => match v {
                    Value::Bool(b) => t.jitter = b,
                    _ => diags.push(bad(&span, "jitter must be true or false".into(), "")),
                },
                "rotate_immediately" => match v {
                    Value::Bool(b) => t.rotate_immediately = b,
                    _ => diags.push(bad(
                        &span,
                        "rotate_immediately must be true or false".into(),
                        "",
                    )),
                },
                "catch_up" => match v.as_str() {
                    Some("once") => t.catch_up = CatchUp::Once,
                    Some("skip") => t.catch_up = CatchUp::Skip,
                    _ => diags.push(bad(
                        &span,
                        "catch_up must be \"once\" or \"skip\"".into(),
                        "once: one rotation for all slots missed while down; skip: wait for the next slot",
                    )),
                },
                "plugin" => match string(&v) {
                    Some(p) => {
                        t.plugin = p;
                        location = Some(here(&span));
                    }
                    None => diags.push(bad(&span, "plugin must be a string".into(), "e.g. \"password\"")),
                },
                "settings" => match serde_json::to_value(&v) {
                    Ok(j @ serde_json::Value::Object(_)) => t.settings = j,
                    _ => diags.push(bad(
                        &span,
                        "settings must be a map".into(),
                        "settings = { length = 32 }",
                    )),
                },
                "max_attempts" => match v.as_u64() {
                    Some(n) if (1..=100).contains(&n) => t.max_attempts = n as u32,
                    _ => diags.push(bad(
                        &span,
                        "max_attempts must be a whole number from 1 to 100".into(),
                        "",
                    )),
                },
                _ => {}
            }
        }
        for b in block.body.blocks() {
            let ident = b.ident.as_str();
            let bspan = b.ident.span().unwrap_or(0..0);
            match ident {
                "match" => {
                    let mut sel = Selector {
                        name: None,
                        secret_type: None,
                        tags: BTreeMap::new(),
                    };
                    for a in b.body.attributes() {
                        let Some((v, span)) = eval(a, diags) else {
                            continue;
                        };
                        match (a.key.as_str(), v) {
                            ("name", Value::String(s)) => sel.name = Some(s),
                            ("type", Value::String(s)) => sel.secret_type = Some(s),
                            ("tags", Value::Object(m)) => {
                                for (k, v) in m {
                                    match v {
                                        Value::String(s) => {
                                            sel.tags.insert(k, s);
                                        }
                                        _ => diags.push(bad(
                                            &span,
                                            format!("tag {k:?} must be a string"),
                                            "",
                                        )),
                                    }
                                }
                            }
                            (k @ ("name" | "type" | "tags"), _) => diags.push(bad(
                                &span,
                                format!("match {k} has the wrong type"),
                                "name and type are strings, tags a map of strings",
                            )),
                            (k, _) => diags.push(bad(
                                &a.key.span().unwrap_or(0..0),
                                format!("unknown attribute `{k}` in match"),
                                "match takes name (a pattern), type and tags",
                            )),
                        }
                    }
                    selectors.push(sel);
                }
                "on_failure" => {
                    for a in b.body.attributes() {
                        let Some((v, span)) = eval(a, diags) else {
                            continue;
                        };
                        match (a.key.as_str(), v) {
                            ("webhook", Value::String(u))
                                if u.starts_with("https://") || u.starts_with("http://") =>
                            {
                                t.on_failure.webhook = Some(u);
                            }
                            ("webhook", _) => diags.push(bad(
                                &span,
                                "webhook must be an http:// or https:// URL".into(),
                                "",
                            )),
                            (k, _) => diags.push(bad(
                                &a.key.span().unwrap_or(0..0),
                                format!("unknown attribute `{k}` in on_failure"),
                                "on_failure takes webhook (workflow actions come with lifecycle workflows)",
                            )),
                        }
                    }
                }
                other => diags.push(bad(
                    &bspan,
                    format!("unknown block type `{other}` in rotation {name:?}"),
                    &format!(
                        "{}a rotation takes the blocks match and on_failure",
                        suggest(other, ROTATION_BLOCKS)
                    ),
                )),
            }
        }
        if entries.is_empty() && selectors.is_empty() {
            diags.push(
                Diagnostic::new(format!("rotation {name:?} selects no secrets"))
                    .at(here(&head))
                    .address(&address)
                    .help("set secrets = [\"alicloud_kms_secret.db\", \"app/*\"] or a match { name, type, tags } block"),
            );
            continue;
        }
        if !t.schedule.is_empty()
            && let Err(e) = Schedule::parse_in(&t.schedule, &t.timezone)
        {
            diags.push(bad(
                schedule_span.as_ref().unwrap_or(&head),
                format!("schedule: {e}"),
                "cron (\"0 3 * * 0\"), a macro (\"@daily\"), an interval (\"7d\") or a one-shot time",
            ));
        }
        // Resolve the selection, in configuration order.
        let mut selected: Vec<(String, Option<&Resource>)> = Vec::new();
        for (entry, span) in &entries {
            let by_address = entry
                .strip_prefix(RESOURCE_TYPE)
                .and_then(|r| r.strip_prefix('.'));
            if let Some(rname) = by_address {
                match resources.iter().find(|r| r.name == rname) {
                    Some(r) => selected.push((r.args.secret_name.clone(), Some(r))),
                    None => {
                        let declared: Vec<&str> =
                            resources.iter().map(|r| r.name.as_str()).collect();
                        diags.push(bad(
                            span,
                            format!("rotation {name:?} refers to undeclared resource {entry}"),
                            &format!(
                                "{}declared: {}",
                                suggest(rname, &declared),
                                declared.join(", ")
                            ),
                        ));
                    }
                }
            } else if is_pattern(entry) {
                let before = selected.len();
                for r in resources
                    .iter()
                    .filter(|r| glob_match(entry, &r.args.secret_name))
                {
                    selected.push((r.args.secret_name.clone(), Some(r)));
                }
                if selected.len() == before {
                    diags.push(bad(
                        span,
                        format!("the pattern {entry:?} matches no configured secret"),
                        "patterns match the secret_name of the alicloud_kms_secret resources here",
                    ));
                }
            } else {
                let r = resources.iter().find(|r| &r.args.secret_name == entry);
                selected.push((entry.clone(), r));
            }
        }
        for sel in &selectors {
            for r in resources.iter().filter(|r| sel.matches(r)) {
                selected.push((r.args.secret_name.clone(), Some(r)));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (secret, resource) in selected {
            if !seen.insert(secret.clone()) {
                continue;
            }
            if let Some(other) = claimed.get(&secret) {
                diags.push(
                    Diagnostic::new(format!(
                        "secret {secret:?} is selected by rotation {other:?} and rotation {name:?}"
                    ))
                    .at(here(&head))
                    .address(&address)
                    .help(
                        "a secret rotates under one rotation block: narrow one of the selections",
                    ),
                );
                continue;
            }
            claimed.insert(secret.clone(), name.clone());
            let mut target = t.clone();
            target.secret = secret.clone();
            if let Some(r) = resource {
                target.address = Some(r.address.clone());
                target.secret_type = Some(r.args.secret_type.clone());
                if target.plugin.is_empty() {
                    target.plugin = default_plugin(&r.args.secret_type).into();
                }
                if target.schedule.is_empty() {
                    match r.args.enable_automatic_rotation.unwrap_or(false) {
                        true => target.schedule = interval_schedule(r),
                        false => {
                            diags.push(
                                Diagnostic::new(format!(
                                    "rotation {name:?} has no schedule, and {} does not enable automatic rotation",
                                    r.address
                                ))
                                .at(here(&head))
                                .address(&address)
                                .help("set schedule = \"0 3 * * 0\" (or \"7d\"), or enable_automatic_rotation = true with a rotation_interval on the secret"),
                            );
                            continue;
                        }
                    }
                }
            } else {
                if target.plugin.is_empty() {
                    target.plugin = "password".into();
                }
                if target.schedule.is_empty() {
                    diags.push(
                        Diagnostic::new(format!(
                            "rotation {name:?} has no schedule for {secret:?}, which is not configured here"
                        ))
                        .at(here(&head))
                        .address(&address)
                        .help("set schedule = \"0 3 * * 0\" (or \"7d\")"),
                    );
                    continue;
                }
            }
            out.push((target, location.clone()));
        }
    }
    // Implicit rotations: enable_automatic_rotation without a block.
    for r in resources {
        if !r.args.enable_automatic_rotation.unwrap_or(false)
            || claimed.contains_key(&r.args.secret_name)
        {
            continue;
        }
        let file = &files[r.file];
        let location = r
            .attrs
            .iter()
            .find(|a| a.key == "enable_automatic_rotation")
            .map(|a| Location::of(file, &a.span, true));
        out.push((
            RotationTarget {
                rotation: format!("auto:{}", r.name),
                secret: r.args.secret_name.clone(),
                address: Some(r.address.clone()),
                secret_type: Some(r.args.secret_type.clone()),
                schedule: interval_schedule(r),
                timezone: "UTC".into(),
                window: Duration::ZERO,
                jitter: true,
                catch_up: CatchUp::Once,
                rotate_immediately: false,
                plugin: default_plugin(&r.args.secret_type).into(),
                settings: serde_json::Value::Null,
                max_attempts: 3,
                retry_backoff: Duration::from_secs(10),
                timeout: Duration::from_secs(15 * 60),
                on_failure: OnFailure::default(),
                implicit: true,
            },
            location,
        ));
    }
    out
}

fn default_plugin(secret_type: &str) -> &'static str {
    if crate::resource::is_managed(secret_type) {
        "managed"
    } else {
        "password"
    }
}

fn interval_schedule(r: &Resource) -> String {
    format!("{}s", r.args.interval_seconds().unwrap_or(604_800))
}

/// Checks every rotation's plugin name and settings against `registry`
/// (and the plugin's secret types, when the secret is configured here).
pub fn validate_plugins(
    targets: &[RotationTarget],
    locations: &RotationLocations,
    registry: &PluginRegistry,
) -> Result<(), super::Diagnostics> {
    let mut diags = Vec::new();
    let mut reported = std::collections::BTreeSet::new();
    for t in targets {
        let result = match &t.secret_type {
            Some(ty) => registry.resolve(&t.plugin, ty, &t.settings).map(|_| ()),
            None => registry.get(&t.plugin).and_then(|p| {
                let d = p.descriptor();
                let s =
                    d.settings
                        .validate(&t.settings)
                        .map_err(|source| RegistryError::Settings {
                            plugin: d.name.clone(),
                            source,
                        })?;
                p.validate_settings(&s)
                    .map_err(|source| RegistryError::Settings {
                        plugin: d.name.clone(),
                        source,
                    })
            }),
        };
        if let Err(e) = result {
            let message = format!("rotation {:?} of secret {:?}: {e}", t.rotation, t.secret);
            if reported.insert(message.clone()) {
                let address = match (&t.address, t.implicit) {
                    (Some(a), true) => a.clone(),
                    _ => format!("rotation.{}", t.rotation),
                };
                let mut d = Diagnostic::new(message)
                    .at_opt(
                        locations
                            .get(&(t.rotation.clone(), t.secret.clone()))
                            .cloned(),
                    )
                    .address(address);
                if matches!(e, RegistryError::Unknown { .. }) {
                    let names: Vec<String> = registry
                        .iter()
                        .map(|p| p.descriptor().name.clone())
                        .collect();
                    d = d.help(format!("plugins available: {}", names.join(", ")));
                }
                diags.push(d);
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(super::Diagnostics(diags))
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match("app/*", "app/db"));
        assert!(glob_match("app/*", "app/"));
        assert!(!glob_match("app/*", "ap/db"));
        assert!(glob_match("*db*", "app/db-1"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(glob_match("exact", "exact"));
    }
}
