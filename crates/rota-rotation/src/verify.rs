//! Verified rotation: after a rotation promotes its new version, watch the
//! consumers for a while (the *soak*) and undo the rotation when they break.
//!
//! A [`VerifySpec`] (the rotation block's `verify`) lists checks, run every
//! `interval` for `soak`:
//!
//! - [`HttpCheck`]: a URL that must keep answering `expect_status`;
//! - [`PrometheusCheck`]: an instant query through Prometheus's HTTP API
//!   whose value must stay at or under `max` (say, the rate of the
//!   application's authentication errors);
//! - the plugin's own `verify` hook (Rhai `fn verify(ctx)`, native ABI 1.1).
//!
//! A check that answers and says no fails at once. A check that cannot be
//! asked (connection refused, timeout, HTTP 5xx from Prometheus) fails only
//! after [`VerifySpec::retries`] attempts in a row, one second apart. A
//! query that answers with no series, a non-numeric value or a syntax error
//! is a configuration error: the verification fails naming the query, and
//! nothing is rolled back (the rotation is not what failed).
//!
//! The durable state lives in the secret's stages, so a crash anywhere is
//! resumed by the next run: [`SOAKING`] marks the new version while it
//! soaks (a resumed soak starts its clock again); [`FAILED`] marks a version
//! whose verification failed — it is never promoted again — and is set
//! before ACSCurrent moves back, so a rollback cut short is finished.

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The stage of a version whose soak is running.
pub const SOAKING: &str = "RotaSoaking";
/// The stage of a version whose verification failed and was rolled back.
pub const FAILED: &str = "RotaFailed";

/// What to do when a check fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnVerifyFailure {
    /// Move ACSCurrent back, have the plugin put the target back, mark the
    /// version failed; the job needs attention.
    #[default]
    Rollback,
    /// Keep the new version; the job needs attention and the webhook is
    /// called.
    Alert,
}

/// An HTTP endpoint that must keep answering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCheck {
    /// The URL (`http://` or `https://`).
    pub url: String,
    /// The status it must answer (default 200).
    pub expect_status: u16,
    /// How long one request may take.
    #[serde(with = "millis")]
    pub timeout: Duration,
}

/// A Prometheus instant query whose value must stay at or under `max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrometheusCheck {
    /// Prometheus's base URL (`http://127.0.0.1:9090`).
    pub url: String,
    /// The PromQL query.
    pub query: String,
    /// The highest acceptable value.
    pub max: f64,
    /// How long one request may take.
    #[serde(with = "millis")]
    pub timeout: Duration,
}

/// A rotation's `verify` block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifySpec {
    /// How long to watch after the promotion.
    #[serde(with = "millis")]
    pub soak: Duration,
    /// How often the checks run.
    #[serde(with = "millis")]
    pub interval: Duration,
    /// HTTP checks.
    #[serde(default)]
    pub http: Vec<HttpCheck>,
    /// Prometheus checks.
    #[serde(default)]
    pub prometheus: Vec<PrometheusCheck>,
    /// Whether the plugin's `verify` hook runs (a plugin without one
    /// passes it).
    #[serde(default)]
    pub plugin_hook: bool,
    /// Whether the configuration asked for the hook explicitly
    /// (`plugin = true`): a plugin without one is then refused.
    #[serde(default)]
    pub plugin_hook_required: bool,
    /// Rollback or alert.
    #[serde(default)]
    pub on_failure: OnVerifyFailure,
    /// Attempts before an unreachable check counts as failed.
    pub retries: u32,
}

impl VerifySpec {
    /// The checks, named as messages and the history name them.
    pub fn check_names(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .http
            .iter()
            .map(|h| format!("http {}", h.url))
            .collect();
        out.extend(
            self.prometheus
                .iter()
                .map(|p| format!("prometheus {:?} <= {}", p.query, p.max)),
        );
        if self.plugin_hook {
            out.push("the plugin's verify hook".into());
        }
        out
    }
}

/// Why a round of checks did not pass.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckFailure {
    /// A consumer is unhappy: roll back (or alert).
    Failed {
        /// The check.
        check: String,
        /// What it saw (never a secret value).
        detail: String,
    },
    /// The check itself is wrong: alert, never roll back.
    Misconfigured {
        /// The check.
        check: String,
        /// What is wrong.
        detail: String,
    },
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Failed { check, detail } => write!(f, "check {check} failed: {detail}"),
            Self::Misconfigured { check, detail } => {
                write!(f, "check {check} is misconfigured: {detail}")
            }
        }
    }
}

/// The checks' HTTP client.
#[derive(Debug, Clone)]
pub struct Checker {
    client: reqwest::Client,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome of asking one check once.
enum Ask {
    Pass,
    Fail(CheckFailure),
    /// Could not ask: worth another attempt.
    Unreachable(String),
}

impl Checker {
    /// A checker (rustls, no proxy from the environment).
    pub fn new() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap_or_default();
        Self { client }
    }

    /// Runs the HTTP and Prometheus checks of `spec` once (the plugin hook
    /// is the protocol's), each with its retries; the first failure wins.
    pub async fn round(&self, spec: &VerifySpec) -> Result<(), CheckFailure> {
        for h in &spec.http {
            self.with_retries(spec.retries, || self.http(h)).await?;
        }
        for p in &spec.prometheus {
            self.with_retries(spec.retries, || self.prometheus(p))
                .await?;
        }
        Ok(())
    }

    async fn with_retries<F, Fut>(&self, retries: u32, mut ask: F) -> Result<(), CheckFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = (String, Ask)>,
    {
        let mut last = String::new();
        let mut name = String::new();
        for attempt in 0..retries.max(1) {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let (check, answer) = ask().await;
            name = check;
            match answer {
                Ask::Pass => return Ok(()),
                Ask::Fail(f) => return Err(f),
                Ask::Unreachable(why) => last = why,
            }
        }
        Err(CheckFailure::Failed {
            check: name,
            detail: format!("unreachable after {} attempts: {last}", retries.max(1)),
        })
    }

    async fn http(&self, h: &HttpCheck) -> (String, Ask) {
        let name = format!("http {}", h.url);
        let answer = match self.client.get(&h.url).timeout(h.timeout).send().await {
            Err(e) => Ask::Unreachable(error_chain(&e)),
            Ok(r) if r.status().as_u16() == h.expect_status => Ask::Pass,
            Ok(r) => Ask::Fail(CheckFailure::Failed {
                check: name.clone(),
                detail: format!(
                    "answered {} instead of {}",
                    r.status().as_u16(),
                    h.expect_status
                ),
            }),
        };
        (name, answer)
    }

    async fn prometheus(&self, p: &PrometheusCheck) -> (String, Ask) {
        let name = format!("prometheus {:?} <= {}", p.query, p.max);
        let base = format!("{}/api/v1/query", p.url.trim_end_matches('/'));
        let url = match reqwest::Url::parse_with_params(&base, &[("query", p.query.as_str())]) {
            Ok(u) => u,
            Err(e) => {
                return (
                    name.clone(),
                    Ask::Fail(CheckFailure::Misconfigured {
                        check: name,
                        detail: format!("invalid URL: {e}"),
                    }),
                );
            }
        };
        let sent = self.client.get(url).timeout(p.timeout).send().await;
        let response = match sent {
            Err(e) => return (name, Ask::Unreachable(error_chain(&e))),
            Ok(r) => r,
        };
        let status = response.status();
        if status.is_server_error() {
            return (
                name,
                Ask::Unreachable(format!("Prometheus answered {status}")),
            );
        }
        let body: Value = match response.bytes().await.map(|b| serde_json::from_slice(&b)) {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                return (
                    name,
                    Ask::Unreachable(format!("the answer is not JSON: {e}")),
                );
            }
            Err(e) => return (name, Ask::Unreachable(format!("unreadable answer: {e}"))),
        };
        let answer = match prometheus_value(&body) {
            Ok(v) if v <= p.max => Ask::Pass,
            Ok(v) => Ask::Fail(CheckFailure::Failed {
                check: name.clone(),
                detail: format!("value {v} is over {}", p.max),
            }),
            Err(detail) => Ask::Fail(CheckFailure::Misconfigured {
                check: name.clone(),
                detail,
            }),
        };
        (name, answer)
    }
}

/// The one value of an instant query's answer (a vector of one series, or a
/// scalar); the highest when the vector has several.
pub fn prometheus_value(body: &Value) -> Result<f64, String> {
    if body["status"] != "success" {
        return Err(format!(
            "Prometheus refused the query ({}): {}",
            body["errorType"].as_str().unwrap_or("error"),
            body["error"].as_str().unwrap_or("no message")
        ));
    }
    let data = &body["data"];
    let number = |v: &Value| -> Result<f64, String> {
        let text = v[1].as_str().ok_or("the answer has no value")?;
        let n: f64 = text
            .parse()
            .map_err(|_| format!("the value {text:?} is not a number"))?;
        if n.is_nan() {
            return Err("the value is NaN".into());
        }
        Ok(n)
    };
    match data["resultType"].as_str() {
        Some("scalar") => number(&data["result"]),
        Some("vector") => {
            let series = data["result"].as_array().cloned().unwrap_or_default();
            if series.is_empty() {
                return Err(
                    "the query returned no series (check the metric name and labels)".into(),
                );
            }
            let mut max = f64::MIN;
            for s in &series {
                max = max.max(number(&s["value"])?);
            }
            Ok(max)
        }
        other => Err(format!(
            "the query returned a {}, not one value (use an instant vector or a scalar)",
            other.unwrap_or("nothing")
        )),
    }
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

pub(crate) mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prometheus_answers_are_read_or_explained() {
        let vector = |vals: &[&str]| {
            json!({"status":"success","data":{"resultType":"vector","result":
                vals.iter().map(|v| json!({"metric":{},"value":[1.0, v]})).collect::<Vec<_>>()}})
        };
        assert_eq!(prometheus_value(&vector(&["0.5", "2"])), Ok(2.0));
        assert_eq!(
            prometheus_value(
                &json!({"status":"success","data":{"resultType":"scalar","result":[1.0,"3"]}})
            ),
            Ok(3.0)
        );
        assert!(
            prometheus_value(&vector(&[]))
                .unwrap_err()
                .contains("no series")
        );
        assert!(
            prometheus_value(&vector(&["abc"]))
                .unwrap_err()
                .contains("not a number")
        );
        let bad = json!({"status":"error","errorType":"bad_data","error":"parse error at char 5"});
        assert!(prometheus_value(&bad).unwrap_err().contains("bad_data"));
        let matrix = json!({"status":"success","data":{"resultType":"matrix","result":[]}});
        assert!(prometheus_value(&matrix).unwrap_err().contains("matrix"));
    }
}
