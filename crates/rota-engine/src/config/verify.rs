//! The `verify` block of a rotation (Rota's): watch the consumers after each
//! rotation and roll back when they break.
//!
//! ```hcl
//! rotation "db" {
//!   secrets = ["app/db"]
//!   verify {
//!     soak       = "10m"        # how long to watch after the promotion
//!     interval   = "30s"        # how often the checks run (default 30s)
//!     on_failure = "rollback"   # or "alert" (keep the new version)
//!     retries    = 3            # attempts before an unreachable check fails
//!     plugin     = true         # the plugin's verify hook (default: when it has one)
//!     http {
//!       url           = "http://127.0.0.1:8080/healthz"
//!       expect_status = 200      # default 200
//!       timeout       = "5s"     # default 5s
//!     }
//!     prometheus {
//!       url     = "http://127.0.0.1:9090"
//!       query   = "sum(rate(app_auth_errors_total[1m]))"
//!       max     = 0
//!       timeout = "5s"
//!     }
//!   }
//! }
//! ```
//!
//! Several `http` and `prometheus` blocks may be given. Whether the plugin
//! has a `verify` hook is known only once plugins load: a block with no
//! check at all is refused then (see `rotation::validate_plugins`).

use std::time::Duration;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::Block;
use rota_rotation::verify::{HttpCheck, OnVerifyFailure, PrometheusCheck, VerifySpec};

use super::block::BlockDecoder;

/// Arguments of a `verify` block.
pub const VERIFY_ARGS: &[&str] = &["soak", "interval", "on_failure", "retries", "plugin"];
const HTTP_ARGS: &[&str] = &["url", "expect_status", "timeout"];
const PROMETHEUS_ARGS: &[&str] = &["url", "query", "max", "timeout"];
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Decodes a `verify` block; `None` after reporting its problems.
pub(super) fn decode(d: &mut BlockDecoder<'_>, b: &Block) -> Option<VerifySpec> {
    let before_problems = d.found_problems();
    let mut spec = VerifySpec {
        soak: Duration::ZERO,
        interval: Duration::from_secs(30),
        http: Vec::new(),
        prometheus: Vec::new(),
        plugin_hook: true,
        plugin_hook_required: false,
        on_failure: OnVerifyFailure::Rollback,
        retries: 3,
    };
    let mut soak_given = false;
    let head = b.ident.span().unwrap_or(0..0);
    for a in b.body.attributes() {
        let key = a.key.as_str();
        if !VERIFY_ARGS.contains(&key) {
            d.error(
                &a.key.span().unwrap_or(0..0),
                format!("unknown attribute `{key}` in verify"),
                &format!(
                    "{}verify takes {}; blocks: http, prometheus",
                    rota_suggest(key, VERIFY_ARGS),
                    VERIFY_ARGS.join(", ")
                ),
            );
            continue;
        }
        let Some(attr) = d.eval(a) else { continue };
        match key {
            "soak" => {
                if let Some(v) = d.duration(&attr) {
                    spec.soak = v;
                    soak_given = true;
                }
            }
            "interval" => {
                if let Some(v) = d.duration(&attr) {
                    if v < Duration::from_secs(1) {
                        d.error(
                            &attr.span,
                            "verify interval is under one second".into(),
                            "interval = \"30s\"",
                        );
                    } else {
                        spec.interval = v;
                    }
                }
            }
            "on_failure" => match attr.value.as_str() {
                Some("rollback") => spec.on_failure = OnVerifyFailure::Rollback,
                Some("alert") => spec.on_failure = OnVerifyFailure::Alert,
                _ => d.must_be(
                    &attr,
                    "\"rollback\" or \"alert\"",
                    "rollback (default) moves ACSCurrent back; alert keeps the new version",
                ),
            },
            "retries" => match attr.value.as_u64() {
                Some(n @ 1..=10) => spec.retries = n as u32,
                _ => d.must_be(&attr, "a whole number from 1 to 10", "retries = 3"),
            },
            "plugin" => match attr.value.as_bool() {
                Some(true) => spec.plugin_hook_required = true,
                Some(false) => spec.plugin_hook = false,
                None => d.must_be(
                    &attr,
                    "true or false",
                    "plugin = true runs the plugin's verify hook",
                ),
            },
            _ => {}
        }
    }
    for nested in b.body.blocks() {
        match nested.ident.as_str() {
            "http" => {
                if let Some(h) = decode_http(d, nested) {
                    spec.http.push(h);
                }
            }
            "prometheus" => {
                if let Some(p) = decode_prometheus(d, nested) {
                    spec.prometheus.push(p);
                }
            }
            other => d.error(
                &nested.ident.span().unwrap_or(0..0),
                format!("unknown block type `{other}` in verify"),
                "verify takes the blocks http and prometheus",
            ),
        }
    }
    if !soak_given {
        d.error(
            &head,
            "a verify block needs soak".into(),
            "soak = \"10m\": how long to watch the consumers after each rotation",
        );
    } else if spec.interval > spec.soak && spec.soak > Duration::ZERO {
        spec.interval = spec.soak;
    }
    if d.found_problems() && !before_problems {
        return None;
    }
    Some(spec)
}

fn rota_suggest(word: &str, candidates: &[&str]) -> String {
    super::suggest(word, candidates)
}

fn url_attr(
    d: &mut BlockDecoder<'_>,
    value: &Value,
    span: &std::ops::Range<usize>,
    what: &str,
) -> Option<String> {
    match value.as_str() {
        Some(u)
            if (u.starts_with("http://") || u.starts_with("https://")) && reqwest_like_valid(u) =>
        {
            Some(u.to_owned())
        }
        _ => {
            d.error(
                span,
                format!("{what} url must be an http:// or https:// URL"),
                "e.g. url = \"http://127.0.0.1:8080/healthz\"",
            );
            None
        }
    }
}

/// A URL with a host after the scheme.
fn reqwest_like_valid(u: &str) -> bool {
    u.split_once("://")
        .is_some_and(|(_, rest)| !rest.is_empty() && !rest.starts_with('/'))
}

fn decode_http(d: &mut BlockDecoder<'_>, b: &Block) -> Option<HttpCheck> {
    let mut url = None;
    let mut expect_status = 200u16;
    let mut timeout = DEFAULT_TIMEOUT;
    for a in b.body.attributes() {
        let key = a.key.as_str();
        if !HTTP_ARGS.contains(&key) {
            d.error(
                &a.key.span().unwrap_or(0..0),
                format!("unknown attribute `{key}` in http"),
                &format!("http takes {}", HTTP_ARGS.join(", ")),
            );
            continue;
        }
        let Some(attr) = d.eval(a) else { continue };
        match key {
            "url" => url = url_attr(d, &attr.value, &attr.span, "http"),
            "expect_status" => match attr.value.as_u64() {
                Some(s @ 100..=599) => expect_status = s as u16,
                _ => d.must_be(
                    &attr,
                    "an HTTP status from 100 to 599",
                    "expect_status = 200",
                ),
            },
            "timeout" => {
                if let Some(t) = d.duration(&attr) {
                    timeout = t;
                }
            }
            _ => {}
        }
    }
    match url {
        Some(url) => Some(HttpCheck {
            url,
            expect_status,
            timeout,
        }),
        None => {
            d.error(
                &b.ident.span().unwrap_or(0..0),
                "an http check needs url".into(),
                "url = \"http://127.0.0.1:8080/healthz\"",
            );
            None
        }
    }
}

fn decode_prometheus(d: &mut BlockDecoder<'_>, b: &Block) -> Option<PrometheusCheck> {
    let (mut url, mut query, mut max) = (None, None, None);
    let mut timeout = DEFAULT_TIMEOUT;
    let mut given: Vec<String> = Vec::new();
    for a in b.body.attributes() {
        let key = a.key.as_str();
        given.push(key.to_owned());
        if !PROMETHEUS_ARGS.contains(&key) {
            d.error(
                &a.key.span().unwrap_or(0..0),
                format!("unknown attribute `{key}` in prometheus"),
                &format!("prometheus takes {}", PROMETHEUS_ARGS.join(", ")),
            );
            continue;
        }
        let Some(attr) = d.eval(a) else { continue };
        match key {
            "url" => url = url_attr(d, &attr.value, &attr.span, "prometheus"),
            "query" => match attr.value.as_str().map(str::trim) {
                Some(q) if !q.is_empty() && balanced(q) => query = Some(q.to_owned()),
                Some(q) if !q.is_empty() => d.error(
                    &attr.span,
                    format!("prometheus query {q:?} has unbalanced brackets"),
                    "check its ( ) [ ] { } and quotes",
                ),
                _ => d.must_be(
                    &attr,
                    "a PromQL query",
                    "query = \"sum(rate(app_auth_errors_total[1m]))\"",
                ),
            },
            "max" => match attr.value.as_f64() {
                Some(m) if m.is_finite() => max = Some(m),
                _ => d.must_be(&attr, "a number", "max = 0"),
            },
            "timeout" => {
                if let Some(t) = d.duration(&attr) {
                    timeout = t;
                }
            }
            _ => {}
        }
    }
    let span = b.ident.span().unwrap_or(0..0);
    match (url, query, max) {
        (Some(url), Some(query), Some(max)) => Some(PrometheusCheck {
            url,
            query,
            max,
            timeout,
        }),
        _ => {
            // What is absent (a given but wrong attribute is reported already).
            let missing: Vec<&str> = ["url", "query", "max"]
                .into_iter()
                .filter(|k| !given.iter().any(|g| g == k))
                .collect();
            if missing.is_empty() {
                return None;
            }
            d.error(
                &span,
                format!("a prometheus check needs {}", missing.join(", ")),
                "url = \"http://127.0.0.1:9090\", query = \"…\", max = 0",
            );
            None
        }
    }
}

/// Whether brackets and quotes of a PromQL query pair up (what can be known
/// without asking Prometheus).
fn balanced(q: &str) -> bool {
    let mut stack = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in q.chars() {
        if let Some(open) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == open {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(want) {
                    return false;
                }
            }
            _ => {}
        }
    }
    stack.is_empty() && quote.is_none()
}

#[cfg(test)]
mod tests {
    #[test]
    fn brackets_pair_up() {
        assert!(super::balanced("sum(rate(x{a=\"(\"}[1m]))"));
        assert!(!super::balanced("sum(rate(x[1m])"));
        assert!(!super::balanced("x{a=\"b}"));
    }
}
