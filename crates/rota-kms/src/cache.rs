//! A caching client for applications and for `rota agent`: the ACSCurrent
//! value of each secret, kept for a time-to-live with jitter.
//!
//! - **TTL with jitter**: an entry is fresh for `ttl` less up to `jitter`
//!   of it (drawn per fetch), so many processes started together do not
//!   refresh in step.
//! - **One fetch per secret at a time**: callers asking for a secret that
//!   is being fetched wait for that fetch instead of sending their own.
//! - **Refresh on demand**: [`SecretCache::invalidate`] when a rotation
//!   event names the secret; [`SecretCache::auth_failed`] when the
//!   application's login with the cached value was refused (the value
//!   probably rotated): the next read fetches, unless the entry was
//!   fetched within `min_refresh` (a burst of failures costs one fetch).
//! - **Serve stale on error**: when KMS cannot be reached, an expired entry
//!   is still served for up to `stale_for` past its expiry (logged once per
//!   failure); then the error is returned.
//!
//! Values stay [`SecretString`]s: the cache never logs or formats one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rota_clock::Clock;

use crate::error::Result;
use crate::kms::{KmsClient, SecretValue};

/// How a [`SecretCache`] behaves.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// How long a value is fresh.
    pub ttl: Duration,
    /// Up to this fraction of `ttl` is taken off each entry at random.
    pub jitter: f64,
    /// How long past its expiry a value is served while KMS fails.
    pub stale_for: Duration,
    /// A refresh asked for (auth failure) within this time of the last
    /// fetch is ignored.
    pub min_refresh: Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            jitter: 0.1,
            stale_for: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(5),
        }
    }
}

/// One cached secret.
#[derive(Debug, Clone)]
pub struct Cached {
    /// What KMS answered.
    pub value: Arc<SecretValue>,
    /// When it was fetched.
    pub fetched: DateTime<Utc>,
    /// When it stops being fresh.
    pub expires: DateTime<Utc>,
    /// Whether it is served past its expiry because KMS failed.
    pub stale: bool,
}

#[derive(Debug, Default)]
struct Slot {
    entry: Option<Cached>,
    /// Set by invalidate/auth_failed: the next read fetches.
    force: bool,
}

/// The cache (cloneable; clones share entries).
#[derive(Clone)]
pub struct SecretCache {
    client: KmsClient,
    options: CacheOptions,
    clock: Arc<dyn Clock>,
    slots: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>>,
}

impl std::fmt::Debug for SecretCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretCache")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SecretCache {
    /// A cache over `client`, on the system clock.
    pub fn new(client: KmsClient, options: CacheOptions) -> Self {
        Self::with_clock(client, options, Arc::new(rota_clock::SystemClock::new()))
    }

    /// A cache reading the time from `clock`.
    pub fn with_clock(client: KmsClient, options: CacheOptions, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            options,
            clock,
            slots: Arc::default(),
        }
    }

    fn slot(&self, name: &str) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(slots.entry(name.to_owned()).or_default())
    }

    /// The ACSCurrent value of `name`: cached while fresh, else fetched
    /// (one fetch at a time per secret), else the stale value within
    /// `stale_for`.
    ///
    /// # Errors
    ///
    /// KMS's error when there is no value to serve.
    pub async fn get(&self, name: &str) -> Result<Cached> {
        let slot = self.slot(name);
        // Held across the fetch: concurrent readers of this secret wait
        // for it and then find the fresh entry.
        let mut s = slot.lock().await;
        let now = self.clock.now();
        if let Some(e) = &s.entry
            && !s.force
            && now < e.expires
        {
            return Ok(e.clone());
        }
        match self.client.get_secret_value(name).await {
            Ok(v) => {
                let ttl = self
                    .options
                    .ttl
                    .mul_f64(1.0 - self.options.jitter.clamp(0.0, 1.0) * rand::random::<f64>());
                let e = Cached {
                    value: Arc::new(v),
                    fetched: now,
                    expires: now + chrono::Duration::from_std(ttl).unwrap_or_default(),
                    stale: false,
                };
                s.entry = Some(e.clone());
                s.force = false;
                Ok(e)
            }
            Err(err) => {
                let stale_for =
                    chrono::Duration::from_std(self.options.stale_for).unwrap_or_default();
                match &s.entry {
                    Some(e) if now < e.expires + stale_for && !err.is_permanent_for_cache() => {
                        tracing::warn!(secret.name = %name, error = %err, "KMS failed; serving the cached value past its expiry");
                        let mut e = e.clone();
                        e.stale = true;
                        Ok(e)
                    }
                    _ => Err(err),
                }
            }
        }
    }

    /// Forgets whether `name` is fresh: the next read fetches it (a
    /// rotation event named it).
    pub async fn invalidate(&self, name: &str) {
        self.slot(name).lock().await.force = true;
    }

    /// The application's login with `name`'s cached value was refused:
    /// the next read fetches, unless it was fetched within `min_refresh`.
    pub async fn auth_failed(&self, name: &str) {
        let slot = self.slot(name);
        let mut s = slot.lock().await;
        let recent = s.entry.as_ref().is_some_and(|e| {
            self.clock.now() - e.fetched
                < chrono::Duration::from_std(self.options.min_refresh).unwrap_or_default()
        });
        if !recent {
            s.force = true;
        }
    }

    /// The names cached.
    pub fn names(&self) -> Vec<String> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }
}

impl crate::error::Error {
    /// Whether the error says the secret is gone or not readable (served
    /// stale would hide that): not found, access denied.
    fn is_permanent_for_cache(&self) -> bool {
        self.code().is_some_and(|c| {
            c.starts_with("Forbidden") || c.contains("NotFound") || c.contains("AccessDenied")
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use serde_json::json;

    use super::*;
    use crate::transport::{ApiRequest, BoxFuture, Transport};

    /// Answers GetSecretValue with version `v<n>` (n counts the calls),
    /// after a short pause; fails while `down`.
    #[derive(Debug, Default)]
    struct Counting {
        calls: AtomicU32,
        down: AtomicBool,
    }

    impl Transport for Counting {
        fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                if self.down.load(Ordering::SeqCst) {
                    return Err(crate::Error::Timeout {
                        action: request.action.to_string(),
                        endpoint: "http://127.0.0.1:9".into(),
                        timeout_ms: 1,
                    });
                }
                let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(
                    json!({"RequestId": "r", "SecretName": "app/db", "SecretData": "value", "VersionId": format!("v{n}")}),
                )
            })
        }

        fn describe(&self) -> String {
            "counting".into()
        }
    }

    fn cache(t: &Arc<Counting>, clock: &rota_clock::ManualClock) -> SecretCache {
        SecretCache::with_clock(
            KmsClient::new(t.clone()),
            CacheOptions {
                ttl: Duration::from_secs(60),
                jitter: 0.1,
                stale_for: Duration::from_secs(600),
                min_refresh: Duration::from_secs(5),
            },
            Arc::new(clock.clone()),
        )
    }

    /// The README's example, compiled.
    #[allow(dead_code)]
    async fn readme_example(key_id: String, key_secret: String) -> Result<()> {
        use crate::credentials::{Credentials, StaticCredentials};
        use crate::{Endpoints, HttpTransport};
        let transport = HttpTransport::builder()
            .endpoints(Endpoints::region("cn-hangzhou")?)
            .credentials(Arc::new(StaticCredentials::new(Credentials::new(
                key_id, key_secret,
            ))))
            .build()?;
        let cache = SecretCache::new(KmsClient::new(Arc::new(transport)), CacheOptions::default());
        let db = cache.get("app/db").await?;
        let _ = db.value.secret_data.len();
        cache.auth_failed("app/db").await;
        cache.invalidate("app/db").await;
        Ok(())
    }

    #[tokio::test]
    async fn one_fetch_per_secret_ttl_invalidation_and_stale_serving() {
        let t = Arc::new(Counting::default());
        let clock =
            rota_clock::ManualClock::new(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        let c = cache(&t, &clock);
        // Ten readers at once: one fetch.
        let reads: Vec<_> = (0..10)
            .map(|_| {
                let c = c.clone();
                tokio::spawn(async move { c.get("app/db").await.unwrap().value.version_id.clone() })
            })
            .collect();
        for r in reads {
            assert_eq!(r.await.unwrap(), "v1");
        }
        assert_eq!(t.calls.load(Ordering::SeqCst), 1);
        // Fresh within the TTL less its jitter; refetched after it.
        clock.advance(chrono::Duration::seconds(50));
        assert_eq!(c.get("app/db").await.unwrap().value.version_id, "v1");
        clock.advance(chrono::Duration::seconds(11));
        assert_eq!(c.get("app/db").await.unwrap().value.version_id, "v2");
        // A rotation event: the next read fetches.
        c.invalidate("app/db").await;
        assert_eq!(c.get("app/db").await.unwrap().value.version_id, "v3");
        // Auth failures right after a fetch cost nothing; later, one fetch.
        c.auth_failed("app/db").await;
        assert_eq!(c.get("app/db").await.unwrap().value.version_id, "v3");
        clock.advance(chrono::Duration::seconds(6));
        c.auth_failed("app/db").await;
        c.auth_failed("app/db").await;
        assert_eq!(c.get("app/db").await.unwrap().value.version_id, "v4");
        // KMS down: the expired value is served, marked stale, within the bound.
        t.down.store(true, Ordering::SeqCst);
        clock.advance(chrono::Duration::seconds(120));
        let stale = c.get("app/db").await.unwrap();
        assert!(stale.stale);
        assert_eq!(stale.value.version_id, "v4");
        clock.advance(chrono::Duration::seconds(600));
        assert!(c.get("app/db").await.is_err());
        assert_eq!(c.names(), ["app/db"]);
    }
}
