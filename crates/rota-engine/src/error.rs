//! The engine's error type. Messages are lower-case, never quote a secret
//! value, and keep their source.

use crate::config::Diagnostics;

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The configuration is invalid (before any call is made).
    #[error("the configuration is invalid:\n{0}")]
    Config(Diagnostics),

    /// The plan cannot be made as configured (a replacement that would
    /// collide with the recovery window, secret_data without a new version…).
    #[error("the plan is refused:\n{0}")]
    Refused(Diagnostics),

    /// A KMS call failed.
    #[error("{action} of secret {secret} failed")]
    Kms {
        /// The secret concerned (`*` for listing calls).
        secret: String,
        /// The KMS action.
        action: &'static str,
        /// What KMS or the transport said.
        #[source]
        source: rota_kms::Error,
    },

    /// A saved plan no longer matches the configuration or the live state.
    #[error("the saved plan cannot be applied: {0}")]
    StalePlan(String),

    /// A saved plan file is not readable.
    #[error("the saved plan is not valid: {0}")]
    BadPlanFile(String),

    /// An address names no resource of the configuration.
    #[error("{0} is not in the configuration")]
    UnknownAddress(String),

    /// `rota import` cannot print the block of this address (an instance,
    /// a module's resource): the message says what to write instead.
    #[error("rota import cannot print the block of {0}")]
    NotImportable(String),

    /// A resource did not finish within its timeout.
    #[error("{operation} of {address} did not finish within {seconds} s")]
    Timeout {
        /// The resource.
        address: String,
        /// create, update or delete.
        operation: &'static str,
        /// The timeout.
        seconds: u64,
    },

    /// A resource was not applied because one it depends on failed.
    #[error("not applied: {0} failed")]
    DependencyFailed(String),

    /// Something that should not happen (a panicked task).
    #[error("internal error: {0}")]
    Internal(String),
}
