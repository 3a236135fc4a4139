//! Credentials and where they come from.
//!
//! A [`CredentialsProvider`] yields [`Credentials`]; providers are chained in a
//! documented order by [`CredentialsChain`]. Library code never reads the
//! process environment or the home directory itself: callers (rota-cli) pass
//! an environment snapshot and paths in, which keeps tests hermetic.

use std::fmt;
use std::time::SystemTime;

use crate::secret::SecretString;
use crate::transport::BoxFuture;

/// An access key, optionally with an STS security token.
///
/// `Debug` shows the key id and whether a token is present, never the secret.
#[derive(Clone)]
pub struct Credentials {
    /// Access key id (STS ids start with `STS.`).
    pub access_key_id: String,
    /// Access key secret.
    pub access_key_secret: SecretString,
    /// STS security token, sent as `SecurityToken` (V1) or `x-acs-security-token` (V3).
    pub security_token: Option<SecretString>,
    /// When temporary credentials stop working.
    pub expires_at: Option<SystemTime>,
}

impl Credentials {
    /// Long-lived access key credentials.
    pub fn new(
        access_key_id: impl Into<String>,
        access_key_secret: impl Into<SecretString>,
    ) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
            expires_at: None,
        }
    }

    /// Adds an STS security token.
    pub fn with_security_token(mut self, token: impl Into<SecretString>) -> Self {
        self.security_token = Some(token.into());
        self
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret)
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why no credentials could be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// Every provider in the chain came up empty.
    #[error("no Alibaba Cloud credentials found; looked in: {}", looked.join("; "))]
    NotFound {
        /// One line per place looked, in order, with what was missing.
        looked: Vec<String>,
    },
    /// A provider found something but it is unusable.
    #[error("credentials from {provider}: {reason}")]
    Invalid {
        /// The provider (e.g. `profile file ~/.aliyun/config.json`).
        provider: String,
        /// What is wrong, without secret material.
        reason: String,
    },
    /// Fetching credentials failed (metadata service unreachable, …).
    #[error("credentials from {provider}: {reason}")]
    Fetch {
        /// The provider.
        provider: String,
        /// What failed.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// The outcome of asking one provider: credentials, nothing here (with a note
/// on what was missing, for the chain's error), or an error.
pub type ProviderResult = Result<Option<Credentials>, CredentialsError>;

/// A source of credentials.
pub trait CredentialsProvider: Send + Sync + fmt::Debug {
    /// A short description (`environment`, `profile "default" in ~/.aliyun/config.json`).
    fn describe(&self) -> String;

    /// Fetches credentials: `Ok(None)` when this source has none.
    fn provide(&self) -> BoxFuture<'_, ProviderResult>;
}

/// Fixed credentials given in code or configuration.
#[derive(Debug, Clone)]
pub struct StaticCredentials(Credentials);

impl StaticCredentials {
    /// Wraps fixed credentials.
    pub fn new(credentials: Credentials) -> Self {
        Self(credentials)
    }
}

impl CredentialsProvider for StaticCredentials {
    fn describe(&self) -> String {
        "static access key".to_owned()
    }

    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        let c = self.0.clone();
        Box::pin(async move { Ok(Some(c)) })
    }
}

/// Providers asked in order; the first that yields credentials wins.
#[derive(Debug, Default)]
pub struct CredentialsChain {
    providers: Vec<Box<dyn CredentialsProvider>>,
}

impl CredentialsChain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a provider.
    pub fn with(mut self, provider: impl CredentialsProvider + 'static) -> Self {
        self.providers.push(Box::new(provider));
        self
    }

    /// Asks each provider in turn. When none has credentials, the error lists
    /// every place looked.
    pub async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        let mut looked = Vec::with_capacity(self.providers.len());
        for p in &self.providers {
            if let Some(c) = p.provide().await? {
                return Ok(c);
            }
            looked.push(p.describe());
        }
        Err(CredentialsError::NotFound { looked })
    }
}

impl CredentialsProvider for CredentialsChain {
    fn describe(&self) -> String {
        let parts: Vec<String> = self.providers.iter().map(|p| p.describe()).collect();
        format!("chain [{}]", parts.join(", "))
    }

    fn provide(&self) -> BoxFuture<'_, ProviderResult> {
        Box::pin(async move {
            for p in &self.providers {
                if let Some(c) = p.provide().await? {
                    return Ok(Some(c));
                }
            }
            Ok(None)
        })
    }
}
