//! The `notify` blocks (Rota's): where rotation events are delivered, and
//! the `events` block: how long they are kept.
//!
//! ```hcl
//! notify "ops" {
//!   url             = "https://hooks.example/rota"   # a webhook, or:
//!   # command       = ["/usr/local/bin/page-oncall", "--team", "ops"]
//!   signing_key_env = "ROTA_HOOK_KEY"                # webhooks: the HMAC key's variable
//!   timeout         = "10s"                          # one delivery (default 10s)
//!   types           = ["rotation.failed", "rotation.needs_attention", "secret.*"]
//!   secrets         = ["app/*"]                      # default: every secret
//!   retry_for       = "24h"                          # then the event is parked as dead
//!   max_pending     = 100000                         # then the oldest undelivered are dropped
//! }
//!
//! events {
//!   retention = "7d"                                 # delivered events are kept this long
//! }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use hcl::eval::Context;

use super::block::{BlockDecoder, TypeWording};
use super::diag::{Diagnostic, Location, SourceFile};

/// Arguments of a `notify` block.
pub const NOTIFY_ARGS: &[&str] = &[
    "url",
    "command",
    "signing_key_env",
    "timeout",
    "types",
    "secrets",
    "retry_for",
    "max_pending",
];

/// Arguments of the `events` block.
pub const EVENTS_ARGS: &[&str] = &["retention"];

/// A `notify` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// Its label.
    pub name: String,
    /// The webhook URL.
    pub url: Option<String>,
    /// The program and its arguments.
    pub command: Vec<String>,
    /// The environment variable holding the webhook's signing key.
    pub signing_key_env: Option<String>,
    /// One delivery.
    pub timeout: Duration,
    /// Event type patterns (empty: all).
    pub types: Vec<String>,
    /// Secret name patterns (empty: all).
    pub secrets: Vec<String>,
    /// How long an event is retried.
    pub retry_for: Duration,
    /// The most undelivered events kept.
    pub max_pending: u64,
    /// Where the block is.
    pub location: Option<Location>,
}

/// The `events` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventsSettings {
    /// How long events are kept once delivered everywhere.
    pub retention: Duration,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(7 * 86_400),
        }
    }
}

const EXAMPLE: &str =
    "notify \"ops\" { url = \"https://hooks.example/rota\", signing_key_env = \"ROTA_HOOK_KEY\" }";

/// Reads the `notify` blocks; a block with a problem is left out.
pub(crate) fn load(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> Vec<NotifyConfig> {
    let mut out = Vec::new();
    let mut names = BTreeMap::new();
    for (fi, block) in blocks {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "notify",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        let Some(name) = d.name_label("notify", EXAMPLE) else {
            continue;
        };
        if !d.first_declaration(&mut names, &name) {
            continue;
        }
        if let Some(n) = decode(&mut d, name) {
            out.push(n);
        }
    }
    out
}

fn decode(d: &mut BlockDecoder<'_>, name: String) -> Option<NotifyConfig> {
    let mut n = NotifyConfig {
        name,
        url: None,
        command: Vec::new(),
        signing_key_env: None,
        timeout: Duration::from_secs(10),
        types: Vec::new(),
        secrets: Vec::new(),
        retry_for: Duration::from_secs(86_400),
        max_pending: 100_000,
        location: Some(d.head_location()),
    };
    d.no_blocks("a notify block has attributes only: url or command, and filters");
    for a in d.block().body.attributes() {
        let Some(attr) = d.known_attribute(a, NOTIFY_ARGS, "") else {
            continue;
        };
        match attr.key.as_str() {
            "url" => {
                let Some(url) = d.string(&attr, "url = \"https://hooks.example/rota\"") else {
                    continue;
                };
                if url.starts_with("http://") || url.starts_with("https://") {
                    n.url = Some(url);
                } else {
                    d.error(
                        &attr.span,
                        "notify url must be an http:// or https:// URL".into(),
                        "url = \"https://hooks.example/rota\"",
                    );
                }
            }
            "command" => {
                let Some(argv) = d.strings(
                    &attr,
                    "command = [\"/usr/local/bin/page\", \"--team\", \"ops\"]",
                ) else {
                    continue;
                };
                if argv.first().is_none_or(String::is_empty) {
                    d.error(
                        &attr.span,
                        "notify command is empty".into(),
                        "the program, then its arguments: command = [\"/usr/local/bin/page\", \"--team\", \"ops\"]",
                    );
                } else {
                    n.command = argv;
                }
            }
            "signing_key_env" => {
                n.signing_key_env = d.string(&attr, "signing_key_env = \"ROTA_HOOK_KEY\"");
            }
            "timeout" => match d.duration(&attr) {
                Some(t) if t.is_zero() => d.must_be(&attr, "positive", "e.g. \"10s\""),
                Some(t) => n.timeout = t,
                None => {}
            },
            "retry_for" => match d.duration(&attr) {
                Some(t) if t.is_zero() => d.must_be(&attr, "positive", "e.g. \"24h\""),
                Some(t) => n.retry_for = t,
                None => {}
            },
            "max_pending" => match attr.value.as_u64() {
                Some(m) if m >= 1 => n.max_pending = m,
                _ => d.must_be(
                    &attr,
                    "a whole number of at least 1",
                    "max_pending = 100000",
                ),
            },
            "types" => {
                let Some(types) = d.strings(&attr, "types = [\"rotation.failed\", \"secret.*\"]")
                else {
                    continue;
                };
                for t in &types {
                    let known = rota_rotation::events::TYPES
                        .iter()
                        .any(|k| rota_kms::pattern::wildcard_match(t, k));
                    if !known {
                        d.error(
                            &attr.span,
                            format!("notify types: {t:?} matches no event type"),
                            &format!(
                                "event types: {}; a * matches any run of characters (\"rotation.*\")",
                                rota_rotation::events::TYPES.join(", ")
                            ),
                        );
                    }
                }
                n.types = types;
            }
            "secrets" => {
                if let Some(s) = d.strings(&attr, "secrets = [\"app/*\"]") {
                    n.secrets = s;
                }
            }
            _ => {}
        }
    }
    match (&n.url, n.command.is_empty()) {
        (Some(_), false) => d.error_at_head(
            format!("notify {:?} has both url and command", n.name),
            "a sink is a webhook (url) or a command: split it into two notify blocks",
        ),
        (None, true) if !d.found_problems() => {
            d.error_at_head(format!("notify {:?} needs url or command", n.name), EXAMPLE)
        }
        _ => {}
    }
    if n.url.is_none() && n.signing_key_env.is_some() && !d.found_problems() {
        d.error_at_head(
            format!("notify {:?}: signing_key_env signs webhooks only", n.name),
            "a command gets the event on its standard input: remove signing_key_env",
        );
    }
    (!d.found_problems()).then_some(n)
}

/// Reads the `events` block (at most one).
pub(crate) fn load_settings(
    files: &[SourceFile],
    blocks: &[(usize, hcl::edit::structure::Block)],
    ctx: &Context<'_>,
    root: &std::path::Path,
    diags: &mut Vec<Diagnostic>,
) -> EventsSettings {
    let mut out = EventsSettings::default();
    for (i, (fi, block)) in blocks.iter().enumerate() {
        let mut d = BlockDecoder::new(
            &files[*fi],
            block,
            "events",
            ctx,
            root,
            TypeWording::MustBe,
            diags,
        );
        if !d.no_label("events", "events { retention = \"7d\" }") {
            continue;
        }
        if i > 0 {
            d.error_at_head("a second events block".into(), "keep one events block");
            continue;
        }
        d.no_blocks("an events block has attributes only: retention");
        for a in block.body.attributes() {
            let Some(attr) = d.known_attribute(a, EVENTS_ARGS, "") else {
                continue;
            };
            if attr.key == "retention" {
                match d.duration(&attr) {
                    Some(t) if t.is_zero() => d.must_be(&attr, "positive", "e.g. \"7d\""),
                    Some(t) => out.retention = t,
                    None => {}
                }
            }
        }
    }
    out
}
