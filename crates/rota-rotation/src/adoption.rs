//! The adoption gate: a rotation that would change the credential
//! ACSPrevious holds waits until the secret's consumers (`rota agent`s)
//! report that they use ACSCurrent.
//!
//! With alternating users, each rotation changes the user of ACSPrevious:
//! an application still on that value would be locked out. A rotation
//! block's `adoption { consumers = N, timeout = "1h" }` makes the rotation
//! wait, before it creates its new version, until at least `N` consumers
//! reported ACSCurrent (rendered and reloaded) within `fresh_for`; after
//! `timeout` it fails without retry (the job needs attention) and changes
//! nothing. A secret with no ACSPrevious (its first rotation) changes no
//! credential a consumer holds and does not wait.

use std::sync::Arc;
use std::time::Duration;

use rota_kms::BoxFuture;
use rota_scheduler::Outbox;
use rota_scheduler::outbox::AdoptionReport;
use serde::{Deserialize, Serialize};

/// A rotation block's `adoption`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptionSpec {
    /// How many consumers must report ACSCurrent.
    pub consumers: u32,
    /// How long the rotation waits for them.
    #[serde(with = "crate::verify::millis")]
    pub timeout: Duration,
    /// How recent a report must be to count (agents report again
    /// periodically; a stopped one stops counting).
    #[serde(with = "crate::verify::millis")]
    pub fresh_for: Duration,
}

/// Where the gate reads consumers' reports.
pub trait AdoptionView: Send + Sync + std::fmt::Debug {
    /// The latest report of every consumer of `secret`.
    fn reports<'a>(&'a self, secret: &'a str)
    -> BoxFuture<'a, Result<Vec<AdoptionReport>, String>>;
}

/// The reports in the scheduler store (where the daemon's events endpoint
/// records them).
#[derive(Clone)]
pub struct StoreAdoption(pub Arc<dyn Outbox>);

impl std::fmt::Debug for StoreAdoption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreAdoption")
    }
}

impl AdoptionView for StoreAdoption {
    fn reports<'a>(
        &'a self,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<Vec<AdoptionReport>, String>> {
        Box::pin(async move {
            let store = Arc::clone(&self.0);
            let secret = secret.to_owned();
            tokio::task::spawn_blocking(move || store.adoption(&secret))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| crate::events::chain(&e))
        })
    }
}

/// The consumers of `reports` on `version` (rendered and reloaded) whose
/// report is at most `fresh_for` old at `now_ms`.
pub fn consumers_on(
    reports: &[AdoptionReport],
    version: &str,
    now_ms: i64,
    fresh_for: Duration,
) -> Vec<String> {
    let fresh_ms = i64::try_from(fresh_for.as_millis()).unwrap_or(i64::MAX);
    reports
        .iter()
        .filter(|r| r.version_id == version && r.reloaded && now_ms - r.at_ms <= fresh_ms)
        .map(|r| r.consumer.clone())
        .collect()
}
