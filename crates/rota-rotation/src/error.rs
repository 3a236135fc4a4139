//! How a rotation fails: [`RotationError`] names the step, the kind of
//! failure, whether a later attempt may succeed, and keeps the error it
//! came from (a [`rota_kms::Error`] or a [`PluginError`]) as its source.
//!
//! The message is redacted: plugin errors and KMS errors never carry a
//! secret value, so it may be logged, recorded in history and posted to a
//! webhook. It already includes the source's text, so a printer of the
//! cause chain shows the [`Display`](std::fmt::Display) alone.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::plugin::PluginError;
use crate::protocol::Step;

/// What kind of failure a [`RotationError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// A KMS call failed.
    Kms,
    /// The plugin failed the step.
    Plugin,
    /// The step ran past its deadline.
    Timeout,
    /// The plugin or its settings do not fit the secret.
    Configuration,
    /// The secret is in a state rotation cannot start from (scheduled for
    /// deletion, no ACSCurrent version, an unreadable value).
    State,
    /// This process may no longer finish the rotation (its lease or the
    /// secret's lock is gone): another daemon resumes it.
    Fenced,
    /// The verification after the promotion failed (rolled back, or
    /// alerted).
    Verification,
    /// The consumers did not report ACSCurrent within the adoption
    /// timeout: nothing was changed.
    Adoption,
}

/// A failed rotation.
#[derive(Debug, Clone)]
pub struct RotationError {
    /// Where it failed.
    pub step: Step,
    /// What kind of failure.
    pub kind: FailureKind,
    /// What happened (redacted; includes the source's text).
    pub message: String,
    /// Whether a later attempt may succeed.
    pub retryable: bool,
    source: Option<Source>,
}

#[derive(Debug, Clone)]
enum Source {
    Kms(Arc<rota_kms::Error>),
    Plugin(PluginError),
}

impl RotationError {
    /// A failure of `kind` with no underlying error.
    pub(crate) fn new(
        step: Step,
        kind: FailureKind,
        message: impl Into<String>,
        retryable: bool,
    ) -> Self {
        Self {
            step,
            kind,
            message: message.into(),
            retryable,
            source: None,
        }
    }

    /// A KMS call `action` failed.
    pub(crate) fn kms(step: Step, action: &str, e: rota_kms::Error) -> Self {
        let retryable = e.kind().is_retryable() || e.kind() == rota_kms::ErrorKind::Other;
        Self {
            step,
            kind: FailureKind::Kms,
            message: format!("{action}: {e}"),
            retryable,
            source: Some(Source::Kms(Arc::new(e))),
        }
    }

    /// The plugin failed `step`.
    pub(crate) fn plugin(step: Step, e: PluginError) -> Self {
        let kind = match e {
            PluginError::DeadlineExceeded => FailureKind::Timeout,
            PluginError::Permanent(_) => FailureKind::Configuration,
            _ => FailureKind::Plugin,
        };
        Self {
            step,
            kind,
            message: e.to_string(),
            retryable: e.is_retryable(),
            source: Some(Source::Plugin(e)),
        }
    }

    /// The KMS error behind this failure, if a KMS call failed.
    pub fn kms_error(&self) -> Option<&rota_kms::Error> {
        match &self.source {
            Some(Source::Kms(e)) => Some(e),
            _ => None,
        }
    }

    /// The plugin's error behind this failure, if the plugin failed.
    pub fn plugin_error(&self) -> Option<&PluginError> {
        match &self.source {
            Some(Source::Plugin(e)) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for RotationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.step, self.message)
    }
}

impl std::error::Error for RotationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.source {
            Some(Source::Kms(e)) => Some(e.as_ref()),
            Some(Source::Plugin(e)) => Some(e),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_and_kind_are_kept() {
        let e = RotationError::plugin(Step::Set, PluginError::DeadlineExceeded);
        assert_eq!(e.kind, FailureKind::Timeout);
        assert!(e.retryable);
        assert_eq!(e.plugin_error(), Some(&PluginError::DeadlineExceeded));
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            e.to_string(),
            "set failed: the step did not finish before its deadline"
        );
        let e = RotationError::new(Step::Inspect, FailureKind::State, "gone", false);
        assert!(std::error::Error::source(&e).is_none());
        assert!(e.kms_error().is_none());
    }
}
