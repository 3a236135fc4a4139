//! `on_failure` notifications: a JSON POST to the webhook a `rotation`
//! block configures (`on_failure { webhook = "https://…" }`) when a
//! rotation needs attention (its retry budget is spent) or a manual
//! rotation failed permanently.
//!
//! The body names the secret, the rotation, the plugin, the failed step,
//! the redacted error ([`RotationError`](super::RotationError) messages
//! never carry a value), the attempt and the time — never a secret value.
//! Delivery has a short timeout and no retries; [`Notifier::notify`] logs a
//! failed delivery and never fails the rotation. Only the URL's scheme,
//! host and port appear in errors and logs (a webhook's path often holds a
//! token).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::protocol::Step;
use crate::target::RotationTarget;

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The scheduler spent the retry budget: the secret needs attention.
    NeedsAttention,
    /// A manual rotation (`rota rotate`) failed permanently.
    Failed,
}

/// The body of a notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureNotice {
    /// Why.
    pub event: NoticeKind,
    /// The secret.
    pub secret: String,
    /// The rotation block.
    pub rotation: String,
    /// The plugin.
    pub plugin: String,
    /// The step that failed, when known (`create`, `set`, …).
    pub step: Option<String>,
    /// The redacted error.
    pub error: String,
    /// The attempt that failed (1 for the first).
    pub attempt: u32,
    /// When, RFC 3339 UTC.
    pub time: String,
}

impl FailureNotice {
    /// A notice about `target` at `time`; the step, error and attempt are
    /// set with the builder methods.
    pub fn new(event: NoticeKind, target: &RotationTarget, time: DateTime<Utc>) -> Self {
        Self {
            event,
            secret: target.secret.clone(),
            rotation: target.rotation.clone(),
            plugin: target.plugin.clone(),
            step: None,
            error: String::new(),
            attempt: 1,
            time: time.to_rfc3339_opts(SecondsFormat::Secs, true),
        }
    }

    /// The step that failed, when known.
    pub fn step(mut self, step: Option<Step>) -> Self {
        self.step = step.map(|s| s.name().to_owned());
        self
    }

    /// The redacted error.
    pub fn error(mut self, error: impl Into<String>) -> Self {
        self.error = error.into();
        self
    }

    /// The attempt that failed.
    pub fn attempt(mut self, attempt: u32) -> Self {
        self.attempt = attempt;
        self
    }
}

/// A failed delivery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// The HTTP client could not be built.
    #[error("cannot build the webhook HTTP client")]
    Client(#[source] reqwest::Error),
    /// The URL is not an http(s) URL.
    #[error("the webhook {0:?} is not an http:// or https:// URL")]
    Url(String),
    /// The request could not be sent or timed out.
    #[error("POST to the webhook {url} failed")]
    Send {
        /// Scheme, host and port of the webhook.
        url: String,
        /// Why (without the URL).
        #[source]
        source: reqwest::Error,
    },
    /// The webhook answered with an error status.
    #[error("the webhook {url} answered HTTP {status}")]
    Status {
        /// Scheme, host and port of the webhook.
        url: String,
        /// The status code.
        status: u16,
    },
}

/// Scheme, host and port of `url` (its path may hold a token).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or_default();
            match u.port() {
                Some(p) => format!("{}://{host}:{p}", u.scheme()),
                None => format!("{}://{host}", u.scheme()),
            }
        }
        Err(_) => "(invalid URL)".to_owned(),
    }
}

/// Sends notifications.
#[derive(Debug, Clone)]
pub struct Notifier {
    client: reqwest::Client,
}

impl Notifier {
    /// A notifier whose deliveries give up after `timeout`.
    pub fn new(timeout: Duration) -> Result<Self, NotifyError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("rota/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(NotifyError::Client)?;
        Ok(Self { client })
    }

    /// POSTs `notice` as JSON to `url`.
    pub async fn send(&self, url: &str, notice: &FailureNotice) -> Result<(), NotifyError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| NotifyError::Url(redact_url(url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(NotifyError::Url(redact_url(url)));
        }
        let response = self
            .client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(serde_json::to_vec(notice).unwrap_or_default())
            .send()
            .await
            .map_err(|e| NotifyError::Send {
                url: redact_url(url),
                source: e.without_url(),
            })?;
        let status = response.status();
        if !status.is_success() {
            return Err(NotifyError::Status {
                url: redact_url(url),
                status: status.as_u16(),
            });
        }
        Ok(())
    }

    /// Sends `notice`, logging (not returning) a failed delivery. Returns
    /// whether it was delivered.
    pub async fn notify(&self, url: &str, notice: &FailureNotice) -> bool {
        match self.send(url, notice).await {
            Ok(()) => {
                tracing::info!(secret.name = %notice.secret, webhook = %redact_url(url), "failure notification sent");
                true
            }
            Err(e) => {
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message.push_str(": ");
                    message.push_str(&s.to_string());
                    source = s.source();
                }
                tracing::warn!(secret.name = %notice.secret, error = %message, "the failure notification was not delivered");
                false
            }
        }
    }
}

/// Installs rustls' ring provider once per process (see
/// [`rota_kms::install_crypto_provider`]).
pub(crate) fn install_crypto_provider() {
    rota_kms::install_crypto_provider();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scheme_host_and_port_of_a_webhook_are_shown() {
        assert_eq!(
            redact_url("https://hooks.example/services/T0/B0/s3cr3t?x=1"),
            "https://hooks.example"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:8080/hook"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(redact_url("not a url"), "(invalid URL)");
    }

    #[test]
    fn a_notice_serialises_without_surprises() {
        let target = RotationTarget {
            rotation: "apps".into(),
            secret: "app/db".into(),
            address: None,
            secret_type: None,
            schedule: "@daily".into(),
            timezone: "UTC".into(),
            window: Duration::ZERO,
            jitter: false,
            catch_up: rota_scheduler::CatchUp::Once,
            rotate_immediately: false,
            plugin: "password".into(),
            settings: serde_json::Value::Null,
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            on_failure: crate::OnFailure::default(),
            implicit: false,
            verify: None,
            remind_before: None,
            adoption: None,
        };
        let n = FailureNotice::new(
            NoticeKind::NeedsAttention,
            &target,
            DateTime::from_timestamp(0, 0).unwrap(),
        )
        .step(Some(Step::Set))
        .error("set failed: refused")
        .attempt(3);
        let v = serde_json::to_value(&n).unwrap();
        assert_eq!(v["event"], "needs_attention");
        assert_eq!(v["time"], "1970-01-01T00:00:00Z");
        assert_eq!(v["attempt"], 3);
        assert_eq!(v["step"], "set");
        assert_eq!(v["secret"], "app/db");
    }
}
