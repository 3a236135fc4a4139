//! The typed KMS secrets API, written once over [`Transport`].

pub mod types;

/// The version stages KMS itself gives meaning to, named once for every
/// crate.
pub mod stage {
    /// The version readers get by default.
    pub const CURRENT: &str = "ACSCurrent";
    /// The version ACSCurrent had before the last rotation.
    pub const PREVIOUS: &str = "ACSPrevious";
    /// The candidate of a rotation in progress.
    pub const PENDING: &str = "ACSPending";
}

use std::sync::Arc;

use tracing::Instrument as _;

pub use types::*;

use crate::error::{Error, Result};
use crate::transport::Transport;

/// A KMS client over any transport.
#[derive(Debug, Clone)]
pub struct KmsClient {
    transport: Arc<dyn Transport>,
}

impl KmsClient {
    /// A client sending through `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Self { transport }
    }

    /// The transport underneath.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Sends a typed action and decodes its response.
    pub async fn send<A: KmsAction>(&self, action: &A) -> Result<A::Response> {
        let request = action.to_request()?;
        let span = tracing::debug_span!("kms.call", kms.action = A::ACTION);
        let value = self.transport.call(request).instrument(span).await?;
        decode::<A::Response>(A::ACTION, value)
    }

    /// The ACSCurrent value of a secret.
    pub async fn get_secret_value(&self, name: &str) -> Result<SecretValue> {
        self.send(&GetSecretValue::current(name)).await
    }

    /// A secret's metadata, with tags.
    pub async fn describe_secret(&self, name: &str) -> Result<SecretMetadata> {
        self.send(&DescribeSecret {
            secret_name: name.to_owned(),
            fetch_tags: Some(true),
        })
        .await
    }

    /// Every version of a secret (deprecated ones too), following pages.
    pub async fn list_all_versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let mut out = Vec::new();
        for page in 1u32.. {
            let resp = self
                .send(&ListSecretVersionIds {
                    secret_name: name.to_owned(),
                    include_deprecated: Some(true),
                    page_number: Some(page),
                    page_size: Some(50),
                })
                .await?;
            let n = resp.version_ids.version_id.len();
            out.extend(resp.version_ids.version_id);
            if n < 50 || out.len() as u64 >= resp.total_count {
                break;
            }
        }
        Ok(out)
    }

    /// Every secret matching `filters`, following pages.
    pub async fn list_all_secrets(
        &self,
        filters: Vec<Filter>,
        fetch_tags: bool,
    ) -> Result<Vec<SecretSummary>> {
        let mut out = Vec::new();
        for page in 1u32.. {
            let resp = self
                .send(&ListSecrets {
                    page_number: Some(page),
                    page_size: Some(100),
                    fetch_tags: Some(fetch_tags),
                    filters: filters.clone(),
                })
                .await?;
            let n = resp.secret_list.secret.len();
            out.extend(resp.secret_list.secret);
            if n < 100 || out.len() as u64 >= resp.total_count {
                break;
            }
        }
        Ok(out)
    }
}

/// Decodes a response object into its typed shape. The error never quotes the
/// body (it may hold a secret value).
pub(crate) fn decode<T: for<'de> serde::Deserialize<'de>>(
    action: &str,
    value: serde_json::Value,
) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Decode {
        action: action.to_owned(),
        status: 200,
        len: 0,
        reason: format!("unexpected response shape: {}", redact_serde_error(&e)),
    })
}

/// serde_json error messages can quote a value (`invalid type: string "…"`);
/// keep only the part that names what was expected and where.
fn redact_serde_error(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match (msg.find('"'), msg.rfind('"')) {
        (Some(a), Some(b)) if b > a => format!("{}<value>{}", &msg[..a], &msg[b + 1..]),
        _ => msg,
    }
}
