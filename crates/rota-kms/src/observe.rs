//! Watching calls without changing them: [`Observed`] wraps any
//! [`Transport`] and tells a [`CallObserver`] about every call that went
//! through it — its product, action and, when it failed, the error.
//!
//! Like rate limiting, this is a behaviour written as a wrapper that
//! implements the same trait, so the typed [`crate::KmsClient`] and
//! [`crate::OpenApi::call`] are observed alike and know nothing about it.
//! The binary installs it to count requests and errors for its metrics;
//! this crate knows nothing about metrics. An observer sees no parameter
//! and no response: only names and the (redacted) error.
//!
//! Calls are counted as the client makes them: retries inside
//! [`crate::HttpTransport`] happen below the wrapper and are one call here.

use std::fmt;
use std::sync::Arc;

use crate::error::Error;
use crate::transport::{ApiRequest, BoxFuture, Product, Transport};

/// One finished call, as an observer sees it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct Call<'a> {
    /// The product called.
    pub product: &'a Product,
    /// The action, e.g. `GetSecretValue`.
    pub action: &'a str,
    /// Why it failed; `None` when it succeeded.
    pub error: Option<&'a Error>,
}

/// Told about every call an [`Observed`] transport makes.
///
/// `observe` runs on the caller's task right after the call ends: it must
/// be quick and must not block.
pub trait CallObserver: Send + Sync + fmt::Debug {
    /// One call ended.
    fn observe(&self, call: &Call<'_>);
}

/// A transport that reports every call to an observer, then returns the
/// inner transport's answer unchanged.
#[derive(Debug, Clone)]
pub struct Observed {
    inner: Arc<dyn Transport>,
    observer: Arc<dyn CallObserver>,
}

impl Observed {
    /// `inner`, with every call reported to `observer`.
    pub fn new(inner: Arc<dyn Transport>, observer: Arc<dyn CallObserver>) -> Self {
        Self { inner, observer }
    }
}

impl Transport for Observed {
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
        Box::pin(async move {
            let product = request.product.clone();
            let action = request.action.clone();
            let result = self.inner.call(request).await;
            self.observer.observe(&Call {
                product: &product,
                action: &action,
                error: result.as_ref().err(),
            });
            result
        })
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::error::ApiError;

    /// Answers `GetSecretValue` and fails everything else with a service error.
    #[derive(Debug)]
    struct Fixed;

    impl Transport for Fixed {
        fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
            Box::pin(async move {
                if request.action == "GetSecretValue" {
                    Ok(json!({"RequestId": "r1", "SecretData": "canary-value"}))
                } else {
                    Err(ApiError::new(
                        request.action.to_string(),
                        404,
                        "Forbidden.ResourceNotFound",
                        "no such secret",
                        "r2",
                        "h",
                    )
                    .into())
                }
            })
        }

        fn describe(&self) -> String {
            "fixed answers".into()
        }
    }

    #[derive(Debug, Default)]
    struct Seen(Mutex<Vec<String>>);

    impl CallObserver for Seen {
        fn observe(&self, call: &Call<'_>) {
            self.0.lock().unwrap().push(format!(
                "{} {} {}",
                call.product,
                call.action,
                call.error.map_or("ok", Error::code_or_class)
            ));
        }
    }

    #[tokio::test]
    async fn every_call_is_reported_and_answered_unchanged() {
        let seen = Arc::new(Seen::default());
        let t = Observed::new(Arc::new(Fixed), seen.clone());
        let ok = t
            .call(ApiRequest::kms("GetSecretValue"))
            .await
            .expect("answered");
        assert_eq!(ok["SecretData"], "canary-value");
        let err = t
            .call(ApiRequest::new(
                Product::Ecs,
                crate::transport::version::ECS,
                "DescribeInstances",
            ))
            .await
            .expect_err("fails");
        assert_eq!(err.code(), Some("Forbidden.ResourceNotFound"));
        assert_eq!(t.describe(), "fixed answers");
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "kms GetSecretValue ok",
                "ecs DescribeInstances Forbidden.ResourceNotFound"
            ]
        );
    }
}
