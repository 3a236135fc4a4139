//! [`HttpTransport`]: signed RPC over HTTPS (or plain HTTP to a local
//! endpoint) with connection reuse, timeouts, retries with jittered
//! exponential backoff and a client-side rate limiter.
//!
//! Retries happen only where a second try can help and cannot hurt:
//! throttling (`Throttling*`, HTTP 429, honouring `x-acs-retry-after`), 5xx and
//! unavailability, and connection failures; a timeout (the request may have
//! been applied) is retried only when the action is idempotent.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng as _;

use crate::credentials::CredentialsProvider;
use crate::endpoint::{BaseUrl, Endpoints};
use crate::error::{ApiError, Error, ErrorKind, Result};
use crate::ratelimit::{RateLimiter, RateLimits};
use crate::sign::SignatureVersion;
use crate::transport::{ApiRequest, BoxFuture, Transport};
use crate::wire::{self, SigningContext};

/// Largest response body read, in bytes.
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// How failed requests are retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// Backoff before the second attempt; doubles each time.
    pub base_delay: Duration,
    /// Cap on one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before attempt `attempt + 1` ("full jitter": uniform in
    /// `[0, min(max, base·2^(attempt-1))]`), at least `retry_after` when the
    /// service asked for it.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(20));
        let cap = exp.min(self.max_delay);
        let jittered = Duration::from_nanos(rand::rng().random_range(0..=cap.as_nanos() as u64));
        match retry_after {
            Some(after) => jittered.max(after.min(self.max_delay.max(after))),
            None => jittered,
        }
    }
}

/// A clock for request timestamps (default: the system clock; `rota` passes
/// its own, which `ROTA_TEST_NOW` can start at a fixed instant).
pub type SigningClock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Builds an [`HttpTransport`]; values are checked at [`HttpTransportBuilder::build`]
/// so errors name the setting.
pub struct HttpTransportBuilder {
    endpoints: Option<Endpoints>,
    credentials: Option<Arc<dyn CredentialsProvider>>,
    signature: SignatureVersion,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    rate_limits: Option<RateLimits>,
    clock: SigningClock,
    proxy: Option<String>,
    extra_roots: Vec<u8>,
}

impl std::fmt::Debug for HttpTransportBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransportBuilder")
            .field("endpoints", &self.endpoints)
            .field("signature", &self.signature)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

impl Default for HttpTransportBuilder {
    fn default() -> Self {
        Self {
            endpoints: None,
            credentials: None,
            signature: SignatureVersion::V1,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            rate_limits: None,
            clock: Arc::new(|| rota_clock::Clock::now(&rota_clock::SystemClock::new())),
            proxy: None,
            extra_roots: Vec::new(),
        }
    }
}

impl HttpTransportBuilder {
    /// Where requests go (required).
    pub fn endpoints(mut self, endpoints: Endpoints) -> Self {
        self.endpoints = Some(endpoints);
        self
    }

    /// Where credentials come from (required).
    pub fn credentials(mut self, provider: Arc<dyn CredentialsProvider>) -> Self {
        self.credentials = Some(provider);
        self
    }

    /// V1 (default) or V3 signatures.
    pub fn signature_version(mut self, version: SignatureVersion) -> Self {
        self.signature = version;
        self
    }

    /// TCP/TLS connect timeout (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whole-request timeout (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retry policy (default 5 attempts, 200 ms base, 20 s cap).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Client-side rate limits. Default: the Alibaba Cloud KMS quotas
    /// ([`RateLimits::alibaba_kms_defaults`]) when KMS is an `aliyuncs.com`
    /// host, none for a custom endpoint such as `rota local serve`.
    pub fn rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// Sends every request through this HTTP(S) proxy. The library never
    /// reads proxy variables from the environment itself: the caller (rota-cli)
    /// passes `HTTPS_PROXY` here if it wants it.
    pub fn proxy(mut self, url: Option<String>) -> Self {
        self.proxy = url.filter(|u| !u.trim().is_empty());
        self
    }

    /// Also trusts the CA certificates in `pem` (a PEM bundle), beside the
    /// system's: for example the local CA of `rota local serve --tls`.
    pub fn extra_root_certificates(mut self, pem: Vec<u8>) -> Self {
        self.extra_roots = pem;
        self
    }

    /// The clock used for request timestamps (tests fix it).
    pub fn clock(mut self, clock: SigningClock) -> Self {
        self.clock = clock;
        self
    }

    /// Builds the transport.
    pub fn build(self) -> Result<HttpTransport> {
        let endpoints = self
            .endpoints
            .ok_or_else(|| Error::config("endpoints", "no region or endpoint configured"))?;
        let credentials = self
            .credentials
            .ok_or_else(|| Error::config("credentials", "no credentials provider configured"))?;
        if self.retry.max_attempts == 0 {
            return Err(Error::config("retry.max_attempts", "must be at least 1"));
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(Error::config(
                "timeout",
                "timeouts must be greater than zero",
            ));
        }
        install_crypto_provider();
        let mut client = reqwest::Client::builder().no_proxy();
        if let Some(url) = &self.proxy {
            let proxy = reqwest::Proxy::all(url.as_str())
                .map_err(|e| Error::config("proxy", format!("{url:?} is not a proxy URL: {e}")))?;
            client = client.proxy(proxy);
        }
        if !self.extra_roots.is_empty() {
            let certs = reqwest::Certificate::from_pem_bundle(&self.extra_roots).map_err(|e| {
                Error::config("CA bundle", format!("not a PEM certificate bundle: {e}"))
            })?;
            if certs.is_empty() {
                return Err(Error::config("CA bundle", "holds no CERTIFICATE block"));
            }
            client = client.tls_certs_merge(certs);
        }
        let client = client
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(wire::USER_AGENT)
            .build()
            .map_err(|e| {
                Error::config("http client", format!("cannot build the HTTP client: {e}"))
            })?;
        let kms_base = endpoints.resolve(&crate::transport::Product::Kms);
        let limits = self.rate_limits.unwrap_or_else(|| {
            if kms_base.is_alibaba_cloud() {
                RateLimits::alibaba_kms_defaults()
            } else {
                RateLimits::unlimited()
            }
        });
        Ok(HttpTransport {
            inner: Arc::new(Inner {
                client,
                endpoints,
                credentials,
                signature: self.signature,
                request_timeout: self.request_timeout,
                retry: self.retry,
                limiter: RateLimiter::new(limits),
                clock: self.clock,
            }),
        })
    }
}

/// Installs rustls' ring provider once per process (reqwest is built without
/// a default provider so that no aws-lc toolchain is needed). Every crate
/// that builds a reqwest or rustls client calls it first.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another component may have installed a provider first; that one is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

struct Inner {
    client: reqwest::Client,
    endpoints: Endpoints,
    credentials: Arc<dyn CredentialsProvider>,
    signature: SignatureVersion,
    request_timeout: Duration,
    retry: RetryPolicy,
    limiter: RateLimiter,
    clock: SigningClock,
}

/// Signed RPC over HTTP(S). Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct HttpTransport {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("endpoints", &self.inner.endpoints)
            .field("signature", &self.inner.signature)
            .field("credentials", &self.inner.credentials.describe())
            .finish_non_exhaustive()
    }
}

/// One attempt's failure, with what the retry loop needs to know.
struct AttemptError {
    error: Error,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl HttpTransport {
    /// A builder.
    pub fn builder() -> HttpTransportBuilder {
        HttpTransportBuilder::default()
    }

    /// The endpoints in use.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    async fn call_with_retries(&self, req: ApiRequest) -> Result<serde_json::Value> {
        let inner = &*self.inner;
        let base = inner.endpoints.resolve(&req.product);
        let mut attempt = 1;
        loop {
            inner.limiter.acquire(&req.product, &req.action).await;
            match self.attempt(&req, &base).await {
                Ok(v) => return Ok(v),
                Err(AttemptError {
                    error,
                    retryable,
                    retry_after,
                }) => {
                    if !retryable || attempt >= inner.retry.max_attempts {
                        return Err(if attempt > 1 {
                            Error::RetriesExhausted {
                                action: req.action.to_string(),
                                attempts: attempt,
                                last: Box::new(error),
                            }
                        } else {
                            error
                        });
                    }
                    let delay = inner.retry.backoff(attempt, retry_after);
                    tracing::debug!(
                        kms.action = %req.action,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = %error,
                        "retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(
        &self,
        req: &ApiRequest,
        base: &BaseUrl,
    ) -> Result<serde_json::Value, AttemptError> {
        let inner = &*self.inner;
        let fatal = |error: Error| AttemptError {
            error,
            retryable: false,
            retry_after: None,
        };
        let creds = inner
            .credentials
            .provide()
            .await
            .map_err(|e| fatal(e.into()))?
            .ok_or_else(|| {
                fatal(Error::Credentials(
                    crate::credentials::CredentialsError::NotFound {
                        looked: vec![inner.credentials.describe()],
                    },
                ))
            })?;
        let nonce = wire::new_nonce();
        let ctx = SigningContext {
            credentials: &creds,
            version: inner.signature,
            time: (inner.clock)(),
            nonce: &nonce,
            region_id: inner.endpoints.region_id(),
        };
        let prepared = wire::prepare(req, base, &ctx);
        let mut builder = inner.client.post(&prepared.url);
        for (k, v) in &prepared.headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        if !prepared.body.is_empty() {
            builder = builder.body(prepared.body);
        }
        let action = req.action.to_string();
        let endpoint = base.to_string();
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                return Err(classify_send_error(
                    e,
                    action,
                    endpoint,
                    req.idempotent,
                    inner.request_timeout,
                ));
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let body = match read_body(response).await {
            Ok(b) => b,
            Err(e) => {
                return Err(classify_send_error(
                    e,
                    action,
                    endpoint,
                    req.idempotent,
                    inner.request_timeout,
                ));
            }
        };
        let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        if (200..300).contains(&status) {
            return match parsed {
                Some(v @ serde_json::Value::Object(_)) => {
                    if let Some(id) = v.get("RequestId").and_then(|v| v.as_str()) {
                        tracing::trace!(kms.action = %action, kms.request_id = id, status, "ok");
                    }
                    Ok(v)
                }
                Some(_) => Err(fatal(Error::Decode {
                    action,
                    status,
                    len: body.len(),
                    reason: "expected a JSON object".into(),
                })),
                None => Err(fatal(Error::Decode {
                    action,
                    status,
                    len: body.len(),
                    reason: "the body is not JSON (truncated or not JSON at all)".into(),
                })),
            };
        }
        let error = match parsed
            .as_ref()
            .and_then(|v| parse_error(&action, status, v))
        {
            Some(api) => api,
            None => {
                let error = Error::MalformedError {
                    action,
                    status,
                    len: body.len(),
                };
                let retryable = status == 429 || status >= 500;
                return Err(AttemptError {
                    error,
                    retryable,
                    retry_after,
                });
            }
        };
        let kind = error.kind();
        let retryable =
            kind.is_retryable() || retry_after.is_some() && kind == ErrorKind::Throttled;
        tracing::debug!(kms.action = %error.action, kms.request_id = %error.request_id, code = %error.code, status, "error response");
        Err(AttemptError {
            error: error.into(),
            retryable,
            retry_after,
        })
    }
}

async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            // Stop reading: the decode step reports a truncated body.
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn classify_send_error(
    e: reqwest::Error,
    action: String,
    endpoint: String,
    idempotent: bool,
    timeout: Duration,
) -> AttemptError {
    if e.is_timeout() {
        return AttemptError {
            error: Error::Timeout {
                action,
                endpoint,
                timeout_ms: timeout.as_millis() as u64,
            },
            retryable: idempotent,
            retry_after: None,
        };
    }
    // A refused connection never reached the service: always safe to retry.
    // Other failures may have happened after the request was applied.
    let retryable = e.is_connect() || idempotent;
    AttemptError {
        error: Error::Http {
            action,
            endpoint,
            source: Box::new(e.without_url()),
        },
        retryable,
        retry_after: None,
    }
}

/// Parses an error envelope; `None` when it has no `Code`.
fn parse_error(action: &str, status: u16, v: &serde_json::Value) -> Option<ApiError> {
    let field = |names: &[&str]| {
        names.iter().find_map(|n| v.get(*n)).and_then(|x| match x {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let code = field(&["Code", "code"]).filter(|c| !c.is_empty())?;
    Some(ApiError::new(
        action,
        status,
        code,
        field(&["Message", "message"]).unwrap_or_default(),
        field(&["RequestId", "requestId"]).unwrap_or_default(),
        field(&["HostId", "hostId"]).unwrap_or_default(),
    ))
}

impl Transport for HttpTransport {
    fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value>> {
        Box::pin(self.call_with_retries(request))
    }

    fn describe(&self) -> String {
        self.inner
            .endpoints
            .resolve(&crate::transport::Product::Kms)
            .to_string()
    }
}
