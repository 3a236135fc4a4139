//! A client-side token-bucket rate limiter, one bucket per quota class, so a
//! busy Rota stays under the Alibaba Cloud KMS quotas (rotation.md, "Quotas
//! to respect") instead of being throttled.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::transport::Product;

/// The quota classes of the KMS shared gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaClass {
    /// CreateSecret, DeleteSecret, RestoreSecret (about 10 QPS).
    CreateDelete,
    /// GetSecretValue, BatchGetSecretValue, GetRandomPassword (about 450 QPS).
    Query,
    /// List, Describe and the other metadata and update calls (about 40 QPS).
    Metadata,
    /// RotateSecret (at most 50 per hour).
    Rotate,
}

impl QuotaClass {
    /// The class of a KMS action.
    pub fn of(action: &str) -> Self {
        match action {
            "CreateSecret" | "DeleteSecret" | "RestoreSecret" => Self::CreateDelete,
            "GetSecretValue" | "BatchGetSecretValue" | "GetRandomPassword" => Self::Query,
            "RotateSecret" => Self::Rotate,
            _ => Self::Metadata,
        }
    }
}

/// A rate: `per_second` tokens refill continuously; up to `burst` accumulate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Largest burst.
    pub burst: f64,
}

impl Rate {
    /// `n` per second with a burst of `n` (at least 1).
    pub fn per_second(n: f64) -> Self {
        Self {
            per_second: n,
            burst: n.max(1.0),
        }
    }

    /// `n` per hour with a burst of `burst`.
    pub fn per_hour(n: f64, burst: f64) -> Self {
        Self {
            per_second: n / 3600.0,
            burst,
        }
    }
}

/// Rates per quota class for KMS; other products are not limited.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateLimits {
    /// CreateDelete class.
    pub create_delete: Option<Rate>,
    /// Query class.
    pub query: Option<Rate>,
    /// Metadata class.
    pub metadata: Option<Rate>,
    /// RotateSecret.
    pub rotate: Option<Rate>,
}

impl RateLimits {
    /// No limits.
    pub fn unlimited() -> Self {
        Self::default()
    }

    /// Under the documented shared-gateway quotas: 8/s create/delete,
    /// 400/s queries, 35/s metadata, 45/h RotateSecret.
    pub fn alibaba_kms_defaults() -> Self {
        Self {
            create_delete: Some(Rate::per_second(8.0)),
            query: Some(Rate::per_second(400.0)),
            metadata: Some(Rate::per_second(35.0)),
            rotate: Some(Rate::per_hour(45.0, 5.0)),
        }
    }

    fn rate(&self, class: QuotaClass) -> Option<Rate> {
        match class {
            QuotaClass::CreateDelete => self.create_delete,
            QuotaClass::Query => self.query,
            QuotaClass::Metadata => self.metadata,
            QuotaClass::Rotate => self.rotate,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    state: Mutex<(f64, Instant)>,
}

impl Bucket {
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            state: Mutex::new((rate.burst, Instant::now())),
        }
    }

    /// Takes a token, returning how long the caller must wait before using it.
    fn reserve(&self) -> Duration {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = *state;
        let refilled = (tokens + now.duration_since(last).as_secs_f64() * self.rate.per_second)
            .min(self.rate.burst);
        let after = refilled - 1.0;
        *state = (after, now);
        if after >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-after / self.rate.per_second)
        }
    }
}

/// The limiter: one bucket per configured class.
#[derive(Debug)]
pub struct RateLimiter {
    buckets: [Option<Bucket>; 4],
}

impl RateLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: RateLimits) -> Self {
        let b = |c| {
            limits
                .rate(c)
                .filter(|r| r.per_second > 0.0)
                .map(Bucket::new)
        };
        Self {
            buckets: [
                b(QuotaClass::CreateDelete),
                b(QuotaClass::Query),
                b(QuotaClass::Metadata),
                b(QuotaClass::Rotate),
            ],
        }
    }

    /// Waits until a request for `action` of `product` may go.
    pub async fn acquire(&self, product: &Product, action: &str) {
        if *product != Product::Kms {
            return;
        }
        let idx = match QuotaClass::of(action) {
            QuotaClass::CreateDelete => 0,
            QuotaClass::Query => 1,
            QuotaClass::Metadata => 2,
            QuotaClass::Rotate => 3,
        };
        if let Some(bucket) = &self.buckets[idx] {
            let wait = bucket.reserve();
            if !wait.is_zero() {
                tracing::debug!(
                    kms.action = action,
                    wait_ms = wait.as_millis() as u64,
                    "rate limited by the client"
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_requests() {
        let limiter = RateLimiter::new(RateLimits {
            create_delete: Some(Rate::per_second(2.0)),
            ..RateLimits::default()
        });
        let start = Instant::now();
        for _ in 0..6 {
            limiter.acquire(&Product::Kms, "CreateSecret").await;
        }
        // Burst of 2, then 4 more at 2/s: 2 s of (paused, virtual) time.
        assert_eq!(start.elapsed().as_millis(), 2000);
        // Unlimited classes and other products never wait.
        let t = Instant::now();
        for _ in 0..100 {
            limiter.acquire(&Product::Kms, "GetSecretValue").await;
            limiter.acquire(&Product::Ecs, "CreateSecret").await;
        }
        assert_eq!(t.elapsed(), Duration::ZERO);
    }
}
