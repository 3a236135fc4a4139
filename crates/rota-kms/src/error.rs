//! Errors: the service's error envelope ([`ApiError`]) and everything that can
//! go wrong around it ([`Error`]).
//!
//! Messages never contain secret values. A `SignatureDoesNotMatch` message
//! quotes the server's string to sign, which includes every parameter (the
//! secret value too), so the client cuts it off when it parses the error.

use std::fmt;

/// What an error means, whatever code spelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The secret (or another resource) does not exist.
    NotFound,
    /// A resource with that name already exists.
    AlreadyExists,
    /// The secret is scheduled for deletion.
    InDeleteWindow,
    /// The KMS key that encrypts the secret is disabled, pending deletion
    /// or deleted (`Rejected.Disabled`, `Rejected.PendingDeletion`,
    /// `Forbidden.KeyNotFound`): nothing under it is read or written until
    /// someone enables it or cancels its deletion, so sending again does
    /// not help.
    KeyUnusable,
    /// The request was throttled (HTTP 429, `Throttling*`).
    Throttled,
    /// The caller is not allowed to do this.
    PermissionDenied,
    /// A parameter is missing or invalid.
    InvalidParameter,
    /// A quota is exhausted.
    LimitExceeded,
    /// The signature, timestamp or nonce was refused.
    Signature,
    /// The access key or security token is unknown, inactive or expired.
    InvalidAccessKey,
    /// The action (or version) does not exist here.
    UnsupportedAction,
    /// The service failed (HTTP 5xx).
    ServerError,
    /// The service is temporarily unavailable.
    Unavailable,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Classifies an Alibaba Cloud error code and HTTP status.
    pub fn classify(code: &str, status: u16) -> Self {
        match code {
            "Forbidden.ResourceNotFound" | "EntityNotExist.Secret" => return Self::NotFound,
            "Rejected.ResourceExist" => return Self::AlreadyExists,
            "Rejected.ResourceInDeleteWindow" => return Self::InDeleteWindow,
            "Rejected.Disabled" | "Rejected.PendingDeletion" | "Forbidden.KeyNotFound" => {
                return Self::KeyUnusable;
            }
            "Rejected.LimitExceeded" | "QuotaExceeded" => return Self::LimitExceeded,
            "InvalidAction.NotFound" | "InvalidAction" | "InvalidVersion" => {
                return Self::UnsupportedAction;
            }
            "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "SignatureNonceUsed"
            | "IllegalTimestamp" => return Self::Signature,
            "ServiceUnavailable" | "ServiceUnavailableTemporary" => return Self::Unavailable,
            "InternalFailure" | "InternalError" => return Self::ServerError,
            _ => {}
        }
        if code.contains("Throttling") || status == 429 {
            Self::Throttled
        } else if code.starts_with("InvalidAccessKeyId")
            || code.starts_with("InvalidSecurityToken")
            || code == "MissingSecurityToken"
        {
            Self::InvalidAccessKey
        } else if code.starts_with("InvalidTimeStamp") {
            Self::Signature
        } else if code.ends_with(".NotFound")
            || code.ends_with("NotExist")
            || code.ends_with("NotExists")
        {
            Self::NotFound
        } else if code.ends_with(".AlreadyExist") || code.ends_with("AlreadyExists") {
            Self::AlreadyExists
        } else if code.starts_with("Forbidden") || code.starts_with("NoPermission") || status == 403
        {
            Self::PermissionDenied
        } else if code.starts_with("Invalid") || code.starts_with("Missing") {
            Self::InvalidParameter
        } else if status == 503 {
            Self::Unavailable
        } else if status >= 500 {
            Self::ServerError
        } else {
            Self::Other
        }
    }

    /// Whether a request failing this way may succeed if sent again later.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::Throttled | Self::Unavailable | Self::ServerError
        )
    }
}

/// An error answered by the service: its envelope, as parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The error `Code`, never empty.
    pub code: String,
    /// The `Message`.
    pub message: String,
    /// `RequestId`.
    pub request_id: String,
    /// `HostId`.
    pub host_id: String,
    /// HTTP status of the response.
    pub status: u16,
    /// The action that failed.
    pub action: String,
}

impl ApiError {
    /// Builds an error from its parts, cutting any string to sign out of the message.
    pub fn new(
        action: impl Into<String>,
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
        request_id: impl Into<String>,
        host_id: impl Into<String>,
    ) -> Self {
        let code = code.into();
        let mut message: String = message.into();
        if let Some(pos) = message.find("string to sign is:") {
            let dropped = message.len() - pos - "string to sign is:".len();
            message.truncate(pos);
            message.push_str(&format!("string to sign is:<{dropped} bytes withheld>"));
        }
        Self {
            code,
            message,
            request_id: request_id.into(),
            host_id: host_id.into(),
            status,
            action: action.into(),
        }
    }

    /// What the error means.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::classify(&self.code, self.status)
    }
}

impl fmt::Debug for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiError")
            .field("action", &self.action)
            .field("status", &self.status)
            .field("code", &self.code)
            .field("message", &self.message)
            .field("request_id", &self.request_id)
            .finish()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed with {} (HTTP {}): {}",
            self.action, self.code, self.status, self.message
        )?;
        if !self.request_id.is_empty() {
            write!(f, " (request id {})", self.request_id)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service answered with an error.
    #[error(transparent)]
    Api(Box<ApiError>),

    /// The request could not be sent or its response not read.
    #[error("{action}: request to {endpoint} failed")]
    Http {
        /// Action being called.
        action: String,
        /// Base URL the request went to.
        endpoint: String,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// No answer within the request timeout.
    #[error("{action}: no answer from {endpoint} within {timeout_ms} ms")]
    Timeout {
        /// Action being called.
        action: String,
        /// Base URL the request went to.
        endpoint: String,
        /// The timeout that expired.
        timeout_ms: u64,
    },

    /// The response body could not be understood.
    #[error("{action}: the response (HTTP {status}, {len} bytes) is not valid: {reason}")]
    Decode {
        /// Action being called.
        action: String,
        /// HTTP status.
        status: u16,
        /// Body length in bytes (the body itself is never quoted: it may hold a secret).
        len: usize,
        /// What was wrong, without body content.
        reason: String,
    },

    /// An error status came back with a body that has no `Code`.
    #[error("{action}: HTTP {status} error response has no Code ({len} bytes)")]
    MalformedError {
        /// Action being called.
        action: String,
        /// HTTP status.
        status: u16,
        /// Body length in bytes.
        len: usize,
    },

    /// The caller's input is invalid before anything is sent.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The parameter or field.
        field: String,
        /// Why, and what is allowed.
        reason: String,
    },

    /// The client is misconfigured (region, endpoint, …).
    #[error("invalid configuration {key}: {reason}")]
    Config {
        /// The configuration key.
        key: String,
        /// Why, and what is allowed.
        reason: String,
    },

    /// No usable credentials.
    #[error(transparent)]
    Credentials(#[from] crate::credentials::CredentialsError),

    /// Retries stopped; carries the last failure.
    #[error("{action}: gave up after {attempts} attempts")]
    RetriesExhausted {
        /// Action being called.
        action: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<Error>,
    },

    /// A transport-specific failure (for example the embedded cloud's store).
    #[error("{action}: {message}")]
    Transport {
        /// Action being called.
        action: String,
        /// What failed.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Self::Api(Box::new(e))
    }
}

impl Error {
    /// The service error, if this is one (looking through retries).
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(e) => Some(e),
            Self::RetriesExhausted { last, .. } => last.api(),
            _ => None,
        }
    }

    /// The error code, if the service answered with one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(|e| e.code.as_str())
    }

    /// A short name for what failed: the service's `Code` when it answered
    /// one (looking through retries), else the failure's class — `http`,
    /// `timeout`, `decode`, `malformed_error`, `invalid_input`, `config`,
    /// `credentials` or `transport`. Never a message, never a value: for
    /// metrics labels and log fields.
    pub fn code_or_class(&self) -> &str {
        match self {
            Self::Api(e) => &e.code,
            Self::RetriesExhausted { last, .. } => last.code_or_class(),
            Self::Http { .. } => "http",
            Self::Timeout { .. } => "timeout",
            Self::Decode { .. } => "decode",
            Self::MalformedError { .. } => "malformed_error",
            Self::InvalidInput { .. } => "invalid_input",
            Self::Config { .. } => "config",
            Self::Credentials(_) => "credentials",
            Self::Transport { .. } => "transport",
        }
    }

    /// What the error means; transport failures are `Unavailable`.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Api(e) => e.kind(),
            Self::RetriesExhausted { last, .. } => last.kind(),
            Self::Http { .. } | Self::Timeout { .. } => ErrorKind::Unavailable,
            Self::InvalidInput { .. } | Self::Config { .. } => ErrorKind::InvalidParameter,
            Self::Credentials(_) => ErrorKind::InvalidAccessKey,
            Self::Decode { .. } | Self::MalformedError { .. } | Self::Transport { .. } => {
                ErrorKind::Other
            }
        }
    }

    /// Shorthand for an [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for an [`Error::Config`].
    pub fn config(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_codes() {
        use ErrorKind::*;
        for (code, status, kind) in [
            ("Forbidden.ResourceNotFound", 404, NotFound),
            ("Rejected.ResourceExist", 409, AlreadyExists),
            ("Rejected.ResourceInDeleteWindow", 409, InDeleteWindow),
            ("Rejected.Disabled", 409, KeyUnusable),
            ("Rejected.PendingDeletion", 409, KeyUnusable),
            ("Forbidden.KeyNotFound", 404, KeyUnusable),
            ("InvalidSecurityToken.Expired", 403, InvalidAccessKey),
            ("MissingSecurityToken", 400, InvalidAccessKey),
            ("Rejected.Throttling", 429, Throttled),
            ("Throttling.User", 400, Throttled),
            ("Forbidden.NoPermission", 403, PermissionDenied),
            ("InvalidParameter", 400, InvalidParameter),
            ("MissingParameter", 400, InvalidParameter),
            ("SignatureDoesNotMatch", 400, Signature),
            ("InvalidTimeStamp.Expired", 400, Signature),
            ("InvalidAccessKeyId.NotFound", 404, InvalidAccessKey),
            ("InvalidAction.NotFound", 404, UnsupportedAction),
            ("InternalFailure", 500, ServerError),
            ("ServiceUnavailableTemporary", 503, Unavailable),
            ("Weird", 502, ServerError),
            ("Weird", 400, Other),
        ] {
            assert_eq!(ErrorKind::classify(code, status), kind, "{code}");
        }
    }

    #[test]
    fn code_or_class_names_the_code_or_the_failure_class() {
        let api = || {
            Error::from(ApiError::new(
                "GetSecretValue",
                429,
                "Throttling.User",
                "slow down",
                "r",
                "h",
            ))
        };
        assert_eq!(api().code_or_class(), "Throttling.User");
        let exhausted = Error::RetriesExhausted {
            action: "GetSecretValue".into(),
            attempts: 3,
            last: Box::new(api()),
        };
        assert_eq!(exhausted.code_or_class(), "Throttling.User");
        let timeout = Error::Timeout {
            action: "GetSecretValue".into(),
            endpoint: "https://kms".into(),
            timeout_ms: 10,
        };
        assert_eq!(timeout.code_or_class(), "timeout");
        assert_eq!(
            Error::invalid("SecretName", "empty").code_or_class(),
            "invalid_input"
        );
    }

    #[test]
    fn string_to_sign_is_withheld() {
        let e = ApiError::new(
            "PutSecretValue",
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&SecretData%3Dcanary",
            "r1",
            "h",
        );
        assert!(!e.to_string().contains("canary"));
        assert!(
            e.message.ends_with("string to sign is:<28 bytes withheld>"),
            "{}",
            e.message
        );
    }
}
