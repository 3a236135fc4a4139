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

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::Block;
use hcl::eval::Context;
use rota_scheduler::CatchUp;

use super::block::{Attr, BlockDecoder, TypeWording};
use super::diag::{Diagnostic, Location, SourceFile};
use super::{Resource, suggest};
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
    "remind_before",
];

/// Blocks inside a `rotation` block.
const ROTATION_BLOCKS: &[&str] = &["match", "on_failure", "verify", "adoption"];

/// Where each rotation target is configured: (rotation, secret) → the
/// plugin attribute, else the block (the resource for implicit rotations).
pub type RotationLocations = BTreeMap<(String, String), Location>;

/// Matches `pattern` (with `*` and `?`) against `text`.
pub use rota_kms::pattern::wildcard_match as glob_match;

fn is_pattern(s: &str) -> bool {
    s.contains('*') || s.contains('?')
}

/// A `match` block: secrets selected by name pattern, type and tags.
#[derive(Default)]
struct Selector {
    name: Option<String>,
    secret_type: Option<String>,
    tags: BTreeMap<String, String>,
}

impl Selector {
    /// Whether `r` matches every condition of the block.
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

/// Help for a `secrets` value that is not a list of strings.
const SECRETS_HELP: &str = "addresses (\"alicloud_kms_secret.db\"), names or patterns (\"app/*\")";

/// Reads the `rotation` blocks (and the implicit rotations) of a loaded
/// configuration. Problems go to `diags`.
pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    resources: &[Resource],
    empty_blocks: &BTreeMap<String, Value>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(RotationTarget, Option<Location>)> {
    let mut out: Vec<(RotationTarget, Option<Location>)> = Vec::new();
    // secret name → the rotation that claimed it.
    let mut claimed: BTreeMap<String, String> = BTreeMap::new();
    let mut names = BTreeMap::new();
    for (fi, block) in blocks {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "rotation",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        let Some(name) = d.name_label(
            "rotation",
            "rotation \"db-passwords\" { secrets = [\"app/*\"] … }",
        ) else {
            continue;
        };
        if !d.first_declaration(&mut names, &name) {
            continue;
        }
        let Some(rotation) = RotationBlock::decode(&mut d, name) else {
            continue;
        };
        let selected = rotation.select(&mut d, resources, empty_blocks);
        rotation.targets(&mut d, selected, &mut claimed, &mut out);
    }
    // Implicit rotations: enable_automatic_rotation without a block.
    for r in resources {
        if r.args.enable_automatic_rotation.unwrap_or(false) && !claimed.contains_key(claim_key(r))
        {
            out.push(implicit_rotation(&files[r.file], r));
        }
    }
    out
}

/// What a rotation claims a configured secret by: its name, or its
/// address while KMS has not named it (`$Auto`).
fn claim_key(r: &Resource) -> &str {
    if r.args.secret_name == rota_rotation::AUTO_NAME {
        &r.address
    } else {
        &r.args.secret_name
    }
}

/// A rotation target with every setting at its default, for no secret yet.
fn default_target(rotation: String) -> RotationTarget {
    RotationTarget {
        rotation,
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
        verify: None,
        remind_before: None,
        adoption: None,
    }
}

/// The implicit rotation of a resource with `enable_automatic_rotation`
/// that no block selects, located at that attribute.
fn implicit_rotation(file: &SourceFile, r: &Resource) -> (RotationTarget, Option<Location>) {
    let location = r
        .attrs
        .iter()
        .find(|a| a.key == "enable_automatic_rotation")
        .map(|a| Location::of(file, &a.span, true));
    let target = RotationTarget {
        secret: r.args.secret_name.clone(),
        address: Some(r.address.clone()),
        secret_type: Some(r.args.secret_type.clone()),
        schedule: interval_schedule(r),
        plugin: default_plugin(&r.args.secret_type).into(),
        implicit: true,
        ..default_target(format!("auto:{}", r.name))
    };
    (target, location)
}

/// A decoded `rotation` block, before its selection is resolved.
struct RotationBlock {
    /// The block's label.
    name: String,
    /// The settings every selected secret gets (`secret` still empty).
    template: RotationTarget,
    /// Where the plugin is named, else the block.
    location: Option<Location>,
    /// The `secrets` entries, each with the span of the value it is in.
    entries: Vec<(String, Range<usize>)>,
    /// The `match` blocks.
    selectors: Vec<Selector>,
    /// Where `schedule` is written, if it is.
    schedule_span: Option<Range<usize>>,
}

impl RotationBlock {
    /// Decodes the attributes and inner blocks of rotation `name`, then
    /// checks that it selects something and that its schedule parses.
    /// `None` when it selects nothing.
    fn decode(d: &mut BlockDecoder<'_>, name: String) -> Option<Self> {
        let mut rotation = Self {
            template: default_target(name.clone()),
            name,
            location: Some(d.head_location()),
            entries: Vec::new(),
            selectors: Vec::new(),
            schedule_span: None,
        };
        for a in d.block().body.attributes() {
            if let Some(attr) = d.known_attribute(
                a,
                ROTATION_ARGS,
                "; blocks: match, on_failure, verify, adoption",
            ) {
                rotation.attribute(d, attr);
            }
        }
        for b in d.block().body.blocks() {
            match b.ident.as_str() {
                "match" => rotation.selectors.push(decode_match(d, b)),
                "on_failure" => decode_on_failure(d, b, &mut rotation.template.on_failure),
                "verify" => rotation.template.verify = super::verify::decode(d, b),
                "adoption" => rotation.template.adoption = decode_adoption(d, b),
                other => d.error(
                    &b.ident.span().unwrap_or(0..0),
                    format!(
                        "unknown block type `{other}` in rotation {:?}",
                        rotation.name
                    ),
                    &format!(
                        "{}a rotation takes the blocks match, on_failure and verify",
                        suggest(other, ROTATION_BLOCKS)
                    ),
                ),
            }
        }
        if rotation.entries.is_empty() && rotation.selectors.is_empty() {
            d.error_at_head(
                format!("rotation {:?} selects no secrets", rotation.name),
                "set secrets = [\"alicloud_kms_secret.db\", \"app/*\"] or a match { name, type, tags } block",
            );
            return None;
        }
        let t = &rotation.template;
        if !t.schedule.is_empty() {
            let span = rotation.schedule_span.clone().unwrap_or_else(|| d.head());
            d.check_schedule(&t.schedule, &t.timezone, &span);
        }
        Some(rotation)
    }

    /// Takes one known, evaluated attribute of the block into the template
    /// (or the selection), reporting values of the wrong type.
    fn attribute(&mut self, d: &mut BlockDecoder<'_>, attr: Attr) {
        let t = &mut self.template;
        match attr.key.as_str() {
            "secrets" => match &attr.value {
                Value::Array(items) => {
                    for s in d.each_string(&attr, items, SECRETS_HELP) {
                        self.entries.push((s, attr.span.clone()));
                    }
                }
                Value::String(s) => self.entries.push((s.clone(), attr.span.clone())),
                _ => d.must_be(&attr, "a list of strings", SECRETS_HELP),
            },
            "schedule" => {
                let help = "cron (\"0 3 * * 0\"), a macro (\"@daily\"), an interval (\"7d\") or a time";
                if let Some(s) = d.string(&attr, help) {
                    t.schedule = s;
                    self.schedule_span = Some(attr.span.clone());
                }
            }
            "timezone" => {
                if let Some(z) = d.timezone(&attr, "an IANA zone name") {
                    t.timezone = z;
                }
            }
            "window" => {
                if let Some(w) = d.duration(&attr) {
                    t.window = w;
                }
            }
            "retry_backoff" => {
                if let Some(b) = d.duration(&attr) {
                    t.retry_backoff = b;
                }
            }
            "timeout" => match d.duration(&attr) {
                Some(limit) if limit.is_zero() => d.must_be(&attr, "positive", "e.g. \"15m\""),
                Some(limit) => t.timeout = limit,
                None => {}
            },
            "remind_before" => match d.duration(&attr) {
                Some(lead) if lead.is_zero() => d.must_be(&attr, "positive", "e.g. \"1h\""),
                Some(lead) => t.remind_before = Some(lead),
                None => {}
            },
            "jitter" => {
                if let Some(b) = d.bool(&attr, "") {
                    t.jitter = b;
                }
            }
            "rotate_immediately" => {
                if let Some(b) = d.bool(&attr, "") {
                    t.rotate_immediately = b;
                }
            }
            "catch_up" => match attr.value.as_str() {
                Some("once") => t.catch_up = CatchUp::Once,
                Some("skip") => t.catch_up = CatchUp::Skip,
                _ => d.must_be(
                    &attr,
                    "\"once\" or \"skip\"",
                    "once: one rotation for all slots missed while down; skip: wait for the next slot",
                ),
            },
            "plugin" => {
                if let Some(p) = d.string(&attr, "e.g. \"password\"") {
                    t.plugin = p;
                    self.location = Some(d.location(&attr.span));
                }
            }
            "settings" => {
                if let Some(j) = d.json_object(&attr, "settings = { length = 32 }") {
                    t.settings = j;
                }
            }
            "max_attempts" => match attr.value.as_u64() {
                Some(n) if (1..=100).contains(&n) => t.max_attempts = n as u32,
                _ => d.must_be(&attr, "a whole number from 1 to 100", ""),
            },
            _ => {}
        }
    }

    /// The secrets the block selects, in configuration order (the
    /// `secrets` entries, then the `match` blocks), with their resource
    /// when they are configured here. May hold a secret twice.
    fn select<'r>(
        &self,
        d: &mut BlockDecoder<'_>,
        resources: &'r [Resource],
        empty_blocks: &BTreeMap<String, Value>,
    ) -> Vec<(String, Option<&'r Resource>)> {
        let mut selected = Vec::new();
        for (entry, span) in &self.entries {
            let block = crate::resource::name_of_address(entry);
            // A block with no instance (count = 0) selects nothing.
            if block.is_some_and(|b| empty_blocks.contains_key(b)) {
                continue;
            }
            self.select_entry(d, entry, span, resources, &mut selected);
        }
        for sel in &self.selectors {
            for r in resources.iter().filter(|r| sel.matches(r)) {
                selected.push((r.args.secret_name.clone(), Some(r)));
            }
        }
        // The scheduler needs the name before any call.
        selected.retain(|(_, r)| match r {
            Some(r) if r.args.is_unknown("secret_name") => {
                d.error_at_head(
                    format!(
                        "rotation {:?} selects {}, whose secret_name is known only once a plan has read what it refers to (a data source, or another secret's computed attribute)",
                        self.name, r.address
                    ),
                    "a rotated secret's name must be known before any call: write it from variables, locals and literals",
                );
                false
            }
            _ => true,
        });
        selected
    }

    /// Adds what one `secrets` entry selects: a resource address, a glob
    /// pattern over the configured names, or a secret name. An undeclared
    /// address or a pattern that matches nothing is reported.
    fn select_entry<'r>(
        &self,
        d: &mut BlockDecoder<'_>,
        entry: &str,
        span: &Range<usize>,
        resources: &'r [Resource],
        selected: &mut Vec<(String, Option<&'r Resource>)>,
    ) {
        let by_address = crate::resource::name_of_address(entry);
        if let Some(rname) = by_address {
            // An instance address, or a block's: all of its instances.
            let matching: Vec<&Resource> = match resources.iter().find(|r| r.name == rname) {
                Some(r) => vec![r],
                None => resources.iter().filter(|r| r.block == rname).collect(),
            };
            match matching.as_slice() {
                [] => {
                    let declared: Vec<&str> = resources.iter().map(|r| r.name.as_str()).collect();
                    d.error(
                        span,
                        format!(
                            "rotation {:?} refers to undeclared resource {entry}",
                            self.name
                        ),
                        &format!(
                            "{}declared: {}",
                            suggest(rname, &declared),
                            declared.join(", ")
                        ),
                    );
                }
                rs => {
                    for r in rs {
                        selected.push((r.args.secret_name.clone(), Some(*r)));
                    }
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
                d.error(
                    span,
                    format!("the pattern {entry:?} matches no configured secret"),
                    "patterns match the secret_name of the alicloud_kms_secret resources here",
                );
            }
        } else {
            let r = resources.iter().find(|r| r.args.secret_name == entry);
            selected.push((entry.to_owned(), r));
        }
    }

    /// One target per selected secret (each once), pushed to `out` with
    /// the block's location. A secret another block already `claimed` is
    /// reported; the others are claimed for this block.
    fn targets(
        &self,
        d: &mut BlockDecoder<'_>,
        selected: Vec<(String, Option<&Resource>)>,
        claimed: &mut BTreeMap<String, String>,
        out: &mut Vec<(RotationTarget, Option<Location>)>,
    ) {
        let name = &self.name;
        let mut seen = BTreeSet::new();
        for (secret, resource) in selected {
            let key = resource.map_or(secret.as_str(), claim_key).to_owned();
            if !seen.insert(key.clone()) {
                continue;
            }
            if let Some(other) = claimed.get(&key) {
                d.error_at_head(
                    format!(
                        "secret {key:?} is selected by rotation {other:?} and rotation {name:?}"
                    ),
                    "a secret rotates under one rotation block: narrow one of the selections",
                );
                continue;
            }
            claimed.insert(key, name.clone());
            if let Some(target) = self.target(d, secret, resource) {
                out.push((target, self.location.clone()));
            }
        }
    }

    /// The template for one secret: the plugin defaults by secret type, the
    /// schedule to the resource's rotation interval when it enables
    /// automatic rotation. Without a schedule, reports it and gives `None`.
    fn target(
        &self,
        d: &mut BlockDecoder<'_>,
        secret: String,
        resource: Option<&Resource>,
    ) -> Option<RotationTarget> {
        let name = &self.name;
        let mut target = self.template.clone();
        target.secret = secret;
        let Some(r) = resource else {
            if target.plugin.is_empty() {
                target.plugin = "password".into();
            }
            if target.schedule.is_empty() {
                d.error_at_head(
                    format!(
                        "rotation {name:?} has no schedule for {:?}, which is not configured here",
                        target.secret
                    ),
                    "set schedule = \"0 3 * * 0\" (or \"7d\")",
                );
                return None;
            }
            return Some(target);
        };
        target.address = Some(r.address.clone());
        target.secret_type = Some(r.args.secret_type.clone());
        if target.plugin.is_empty() {
            target.plugin = default_plugin(&r.args.secret_type).into();
        }
        if target.schedule.is_empty() {
            if !r.args.enable_automatic_rotation.unwrap_or(false) {
                d.error_at_head(
                    format!(
                        "rotation {name:?} has no schedule, and {} does not enable automatic rotation",
                        r.address
                    ),
                    "set schedule = \"0 3 * * 0\" (or \"7d\"), or enable_automatic_rotation = true with a rotation_interval on the secret",
                );
                return None;
            }
            target.schedule = interval_schedule(r);
        }
        Some(target)
    }
}

/// Decodes a `match` block of a rotation into a [`Selector`].
fn decode_match(d: &mut BlockDecoder<'_>, b: &Block) -> Selector {
    let mut sel = Selector::default();
    for a in b.body.attributes() {
        let Some(attr) = d.eval(a) else {
            continue;
        };
        match (attr.key.as_str(), &attr.value) {
            ("name", Value::String(s)) => sel.name = Some(s.clone()),
            ("type", Value::String(s)) => sel.secret_type = Some(s.clone()),
            ("tags", Value::Object(m)) => {
                for (k, v) in m {
                    match v {
                        Value::String(s) => {
                            sel.tags.insert(k.clone(), s.clone());
                        }
                        _ => d.error(&attr.span, format!("tag {k:?} must be a string"), ""),
                    }
                }
            }
            (k @ ("name" | "type" | "tags"), _) => d.error(
                &attr.span,
                format!("match {k} has the wrong type"),
                "name and type are strings, tags a map of strings",
            ),
            (k, _) => d.error(
                &a.key.span().unwrap_or(0..0),
                format!("unknown attribute `{k}` in match"),
                "match takes name (a pattern), type and tags",
            ),
        }
    }
    sel
}

/// Decodes an `on_failure` block of a rotation into `on_failure`.
fn decode_on_failure(d: &mut BlockDecoder<'_>, b: &Block, on_failure: &mut OnFailure) {
    for a in b.body.attributes() {
        let Some(attr) = d.eval(a) else {
            continue;
        };
        match (attr.key.as_str(), &attr.value) {
            ("webhook", Value::String(u))
                if u.starts_with("https://") || u.starts_with("http://") =>
            {
                on_failure.webhook = Some(u.clone());
            }
            ("webhook", _) => d.must_be(&attr, "an http:// or https:// URL", ""),
            (k, _) => d.error(
                &a.key.span().unwrap_or(0..0),
                format!("unknown attribute `{k}` in on_failure"),
                "on_failure takes webhook (workflow actions come with lifecycle workflows)",
            ),
        }
    }
}

/// An `adoption { consumers, timeout, fresh_for }` block.
fn decode_adoption(
    d: &mut BlockDecoder<'_>,
    b: &Block,
) -> Option<rota_rotation::adoption::AdoptionSpec> {
    let mut spec = rota_rotation::adoption::AdoptionSpec {
        consumers: 0,
        timeout: Duration::from_secs(3600),
        fresh_for: Duration::from_secs(300),
    };
    let problems_before = d.problem_count();
    let head = b.ident.span().unwrap_or(0..0);
    for a in b.body.attributes() {
        let Some(attr) = d.eval(a) else {
            continue;
        };
        match attr.key.as_str() {
            "consumers" => match attr.value.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(n) if n >= 1 => spec.consumers = n,
                _ => d.must_be(&attr, "a whole number of at least 1", "consumers = 2"),
            },
            "timeout" => match d.duration(&attr) {
                Some(t) if !t.is_zero() => spec.timeout = t,
                Some(_) => d.must_be(&attr, "positive", "timeout = \"1h\""),
                None => {}
            },
            "fresh_for" => match d.duration(&attr) {
                Some(t) if !t.is_zero() => spec.fresh_for = t,
                Some(_) => d.must_be(&attr, "positive", "fresh_for = \"5m\""),
                None => {}
            },
            k => d.error(
                &a.key.span().unwrap_or(0..0),
                format!("unknown attribute `{k}` in adoption"),
                "adoption takes consumers, timeout, fresh_for",
            ),
        }
    }
    if spec.consumers == 0 && d.problem_count() == problems_before {
        d.error(
            &head,
            "an adoption block needs consumers".into(),
            "consumers = 2: how many agents must report ACSCurrent before a rotation changes the credential ACSPrevious holds",
        );
    }
    (d.problem_count() == problems_before).then_some(spec)
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
    let mut reported = BTreeSet::new();
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
        if result.is_ok()
            && let (Some(v), Ok(p)) = (&t.verify, registry.get(&t.plugin))
        {
            let has_hook = p.descriptor().steps.verify;
            let problem = if v.plugin_hook_required && !has_hook {
                Some(format!(
                    "rotation {:?}: verify asks for the plugin's verify hook (plugin = true), and plugin {:?} has none",
                    t.rotation, t.plugin
                ))
            } else if v.http.is_empty() && v.prometheus.is_empty() && !(v.plugin_hook && has_hook) {
                Some(format!(
                    "rotation {:?}: verify has no check (no http or prometheus block, and plugin {:?} has no verify hook)",
                    t.rotation, t.plugin
                ))
            } else {
                None
            };
            if let Some(message) = problem
                && reported.insert(message.clone())
            {
                diags.push(
                    Diagnostic::new(message)
                        .at_opt(locations.get(&(t.rotation.clone(), t.secret.clone())).cloned())
                        .address(format!("rotation.{}", t.rotation))
                        .help("add an http { url } or prometheus { url, query, max } block, or use a plugin with a verify hook (Rhai: fn verify(ctx))"),
                );
            }
        }
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
