//! Rotations as scheduler jobs: the [`JobSpec`] of a configured rotation,
//! the payload it carries, and the handler that maps a scheduler run onto
//! the protocol — `JobRun.slot` → [`slot_token`], `JobRun.attempt` →
//! [`RotationRequest::attempt`], [`RotationError`] → retryable or permanent
//! [`RunError`] with the redacted message — under the per-secret lock.
//!
//! The daemon (`rota run`), manual rotations (`rota rotate`) and the
//! benchmark share this code.

use std::sync::Arc;

use rota_scheduler::{JobRun, RunError};
use serde::{Deserialize, Serialize};

use super::lease::SecretLocks;
use super::protocol::{RotationError, RotationOutcome, RotationRequest, Rotator, Step, slot_token};

/// What a rotation job carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobPayload {
    /// The rotation block.
    pub rotation: String,
    /// The secret.
    pub secret: String,
    /// The plugin.
    pub plugin: String,
    /// Its settings as configured.
    pub settings: serde_json::Value,
    /// The time one attempt may take, in milliseconds (absent in jobs
    /// registered by older versions: the step limit alone applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// The rotation's `verify` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<crate::verify::VerifySpec>,
    /// The rotation's `adoption` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<crate::adoption::AdoptionSpec>,
}

/// Why a rotation did not run or did not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunRotationError {
    /// Another rotation of the secret is running (in this or another process).
    #[error("another rotation of {0:?} is running")]
    Busy(String),
    /// The lock could not be taken.
    #[error("cannot take the rotation lock of {secret:?}")]
    Lock {
        /// The secret.
        secret: String,
        /// Why.
        #[source]
        source: crate::lease::LockError,
    },
    /// The protocol failed.
    #[error(transparent)]
    Rotation(#[from] RotationError),
}

impl RunRotationError {
    /// Whether a later attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Busy(_) | Self::Lock { .. } => true,
            Self::Rotation(e) => e.retryable,
        }
    }

    /// The protocol step that failed, when the protocol ran.
    pub fn step(&self) -> Option<Step> {
        match self {
            Self::Busy(_) | Self::Lock { .. } => None,
            Self::Rotation(e) => Some(e.step),
        }
    }

    /// The scheduler's view: retryable or permanent, with the redacted message.
    pub fn to_run_error(&self) -> RunError {
        let message = self.to_string();
        if self.is_retryable() {
            RunError::retryable(message)
        } else {
            RunError::permanent(message)
        }
    }
}

/// Runs rotations under the per-secret lock.
#[derive(Debug, Clone)]
pub struct RotationJobs {
    rotator: Rotator,
    locks: SecretLocks,
}

impl RotationJobs {
    /// Rotations through `rotator`, locked in `locks`.
    pub fn new(rotator: Rotator, locks: SecretLocks) -> Self {
        Self { rotator, locks }
    }

    /// The rotator.
    pub fn rotator(&self) -> &Rotator {
        &self.rotator
    }

    /// Rotates one secret now, unless another rotation of it is running.
    pub async fn rotate(&self, req: &RotationRequest) -> Result<RotationOutcome, RunRotationError> {
        let lock = self
            .locks
            .try_lock(&req.secret)
            .await
            .map_err(|source| RunRotationError::Lock {
                secret: req.secret.clone(),
                source,
            })?
            .ok_or_else(|| RunRotationError::Busy(req.secret.clone()))?;
        let lock = Arc::new(lock);
        let mut req = req.clone();
        req.fence
            .push(Arc::clone(&lock) as Arc<dyn crate::protocol::FenceCheck>);
        let result = self.rotator.rotate(&req).await;
        drop(lock);
        Ok(result?)
    }

    /// The request of a scheduler run.
    pub fn request(run: &JobRun) -> Result<RotationRequest, RunError> {
        let p: JobPayload = serde_json::from_value(run.payload.clone())
            .map_err(|e| RunError::permanent(format!("invalid rotation job payload: {e}")))?;
        Ok(RotationRequest {
            token: slot_token(&p.secret, run.slot),
            secret: p.secret,
            plugin: p.plugin,
            settings: p.settings,
            attempt: run.attempt.max(1),
            timeout: p.timeout_ms.map(std::time::Duration::from_millis),
            fence: crate::protocol::Fence::default(),
            verify: p.verify,
            adoption: p.adoption,
        })
    }

    /// Runs one scheduler run: the handler of the daemon's runner.
    pub async fn run(&self, run: JobRun) -> Result<RotationOutcome, RunError> {
        let mut req = Self::request(&run)?;
        req.fence.push(Arc::new(run.lease.clone()));
        self.rotate(&req).await.map_err(|e| e.to_run_error())
    }
}
