//! The HTTP front of the local cloud (`rota local serve`).
//!
//! Per request: GET or POST on `/` only; the body is read up to
//! [`ServerConfig::max_body_bytes`] (larger → 413
//! `InvalidParameter.RequestTooLarge`); query and form-body parameters are
//! merged (kms-api.md §1.2, G5); then the signature is verified
//! (kms-api.md §1.8):
//!
//! - `Authorization: ACS3-…` → V3: action and version from `x-acs-action` and
//!   `x-acs-version`, canonical request rebuilt from the `SignedHeaders` list
//!   (raw `Host` with its port) and the SHA-256 of the body actually received;
//! - otherwise V1: `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`,
//!   every parameter but `Signature` signed, empty values included (G9);
//!
//! then, for both, the timestamp must be within ±15 minutes of the local
//! cloud's clock and the `(access key, nonce)` pair must be new: see
//! [`crate::replay`] (a pair is remembered until its request's own
//! timestamp leaves the window; past [`ServerConfig::nonce_capacity`] the
//! window narrows instead of forgetting). A nonce is recorded only once the
//! signature verified, so forged requests cannot burn nonces.
//!
//! Answers are JSON, or XML when `Format=XML` (any case) or the `Accept`
//! header asks for XML. Every answer carries `RequestId` (body and
//! `x-acs-request-id` header); errors carry `Code`, `Message`, `HostId` and
//! `Recommend` with the status from [`crate::errors`]. Logs name the action,
//! status and request id, never parameter values.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rota_kms::encode::parse_form;
use rota_kms::sign::{self, V3_ALGORITHM, V3Input};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::parse_wire_time;
use crate::cloud::LocalCloud;
use crate::dispatch::{new_request_id, with_request_id};
use crate::envelope_io::EnvelopeIo;
use crate::errors::ServiceError;
use crate::params::Params;

/// Server settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port.
    pub addr: SocketAddr,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Most remembered nonces.
    pub nonce_capacity: usize,
    /// How often expired deletion windows are purged.
    pub sweep_interval: Duration,
    /// Most connections open at once; past it a new connection gets a 503
    /// in the error envelope and is closed.
    pub max_connections: usize,
    /// How long a client may take to send a request's headers (also how
    /// long an idle keep-alive connection stays open).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body.
    pub body_timeout: Duration,
    /// Where to serve Prometheus metrics (`GET /metrics`) and `GET
    /// /healthz`, on a listener of their own; `None`: not served.
    pub metrics_addr: Option<SocketAddr>,
    /// HTTPS on `addr` with this configuration (see [`crate::tls`]);
    /// `None`: plain HTTP. The TLS handshake must end within
    /// `header_timeout`; past `max_connections` a new TLS connection is
    /// closed without an answer (a plain-text 503 would mean nothing to a
    /// TLS client, and a handshake costs the server what the cap saves).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Also serve plain HTTP here (with `tls`: for clients that cannot
    /// speak it); `None`: not served.
    pub plain_addr: Option<SocketAddr>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            max_body_bytes: 1024 * 1024,
            nonce_capacity: 1_000_000,
            sweep_interval: Duration::from_secs(60),
            max_connections: 1024,
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            metrics_addr: None,
            tls: None,
            plain_addr: None,
        }
    }
}

/// What the server counts (its `/metrics`).
#[derive(Debug, Default)]
struct Stats {
    /// Connections accepted (and not refused).
    accepted: std::sync::atomic::AtomicU64,
    /// Connections refused at the cap.
    refused: std::sync::atomic::AtomicU64,
    /// Requests answered, and those answered with an error.
    requests: std::sync::atomic::AtomicU64,
    errors: std::sync::atomic::AtomicU64,
    /// Bodies that did not arrive within the body timeout.
    body_timeouts: std::sync::atomic::AtomicU64,
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    plain_addr: Option<SocketAddr>,
    metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    /// The address it listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the extra plain HTTP listener, when served.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain_addr
    }

    /// The address of `/metrics`, when served.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, lets in-flight requests finish (at most 10 s), and
    /// returns when the server has stopped.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }

    /// Runs until [`ServerHandle::shutdown`] is called elsewhere or the task ends.
    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

/// How the server asks its open connections to finish at shutdown: the
/// last id given, and each open connection's close channel by id.
#[derive(Default)]
struct Closers {
    open: std::sync::Mutex<OpenConnections>,
}

type OpenConnections = (u64, HashMap<u64, tokio::sync::oneshot::Sender<()>>);

impl Closers {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenConnections> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn add(&self, close: tokio::sync::oneshot::Sender<()>) -> u64 {
        let mut open = self.lock();
        open.0 += 1;
        let id = open.0;
        open.1.insert(id, close);
        id
    }

    fn remove(&self, id: u64) {
        self.lock().1.remove(&id);
    }

    /// Asks every open connection to finish its request and close.
    fn close_all(&self) {
        for (_, close) in self.lock().1.drain() {
            let _ = close.send(());
        }
    }
}

/// Binds `config.addr` (and `config.plain_addr`) and serves `cloud` on the
/// current tokio runtime.
pub async fn serve(cloud: LocalCloud, config: ServerConfig) -> io::Result<ServerHandle> {
    let listener = TcpListener::bind(config.addr).await?;
    let local_addr = listener.local_addr()?;
    let plain = match config.plain_addr {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let plain_addr = plain.as_ref().map(TcpListener::local_addr).transpose()?;
    let tls = config.tls.clone().map(tokio_rustls::TlsAcceptor::from);
    let (stop, mut stopped) = watch::channel(false);
    let state = Arc::new(State {
        host_id: cloud.host_id(),
        cloud,
        nonces: crate::replay::ReplayGuard::new(config.nonce_capacity),
        max_body: config.max_body_bytes,
        body_timeout: config.body_timeout,
        stats: Stats::default(),
    });
    let host_id: Arc<str> = Arc::from(state.host_id.as_str());
    let permits = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
    let metrics_addr = match config.metrics_addr {
        Some(addr) => Some(
            serve_metrics(
                addr,
                state.clone(),
                permits.clone(),
                config.max_connections.max(1),
                stop.subscribe(),
            )
            .await?,
        ),
        None => None,
    };
    tracing::info!(addr = %local_addr, tls = tls.is_some(), "local cloud listening");
    if let Some(addr) = plain_addr {
        tracing::info!(addr = %addr, "local cloud listening (plain HTTP)");
    }
    let sweep_every = config.sweep_interval;
    let task = tokio::spawn(async move {
        let closers = Arc::new(Closers::default());
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .keep_alive(true)
            .header_read_timeout(config.header_timeout);
        let conns = Connections {
            state: state.clone(),
            host_id,
            http,
            closers: closers.clone(),
            handshake_timeout: config.header_timeout,
        };
        let mut sweep = tokio::time::interval(sweep_every);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let (accepted, tls) = tokio::select! {
                accepted = listener.accept() => (accepted, tls.as_ref()),
                accepted = accept_if(plain.as_ref()) => (accepted, None),
                _ = sweep.tick() => {
                    let cloud = state.cloud.clone();
                    tokio::spawn(async move {
                        if let Err(e) = cloud.sweep().await {
                            tracing::warn!(error = %e, "deletion sweep failed");
                        }
                    });
                    continue;
                }
                _ = stopped.changed() => break,
            };
            let (stream, _) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                state
                    .stats
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::warn!(
                    max = config.max_connections,
                    "too many connections: a new one is refused"
                );
                if tls.is_none() {
                    tokio::spawn(refuse_busy(stream, state.host_id.clone()));
                }
                continue;
            };
            state
                .stats
                .accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match tls {
                None => conns.spawn(stream, permit),
                Some(acceptor) => conns.spawn_tls(acceptor.clone(), stream, permit),
            }
        }
        drop(listener);
        drop(plain);
        closers.close_all();
        // Every connection holds a permit until it ends.
        let all = u32::try_from(config.max_connections.max(1)).unwrap_or(u32::MAX);
        if tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("connections still open after 10 s; stopping anyway");
        }
        tracing::info!("local cloud server stopped");
    });
    Ok(ServerHandle {
        local_addr,
        plain_addr,
        metrics_addr,
        stop,
        task,
    })
}

/// The next connection of `listener`; never, when there is none.
async fn accept_if(
    listener: Option<&TcpListener>,
) -> io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => std::future::pending().await,
    }
}

/// What every connection task shares.
struct Connections {
    state: Arc<State>,
    host_id: Arc<str>,
    http: hyper::server::conn::http1::Builder,
    closers: Arc<Closers>,
    handshake_timeout: Duration,
}

impl Connections {
    /// Serves a plain connection on a task of its own.
    fn spawn(&self, stream: tokio::net::TcpStream, permit: tokio::sync::OwnedSemaphorePermit) {
        tokio::spawn(self.serve(stream, permit));
    }

    /// Serves a TLS connection on a task of its own, once its handshake
    /// ends (within the header timeout; otherwise it is closed).
    fn spawn_tls(
        &self,
        acceptor: tokio_rustls::TlsAcceptor,
        stream: tokio::net::TcpStream,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) {
        let limit = self.handshake_timeout;
        let serve = self.server_of();
        tokio::spawn(async move {
            match tokio::time::timeout(limit, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => serve.serve(tls, permit).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        });
    }

    fn server_of(&self) -> Self {
        Self {
            state: self.state.clone(),
            host_id: self.host_id.clone(),
            http: self.http.clone(),
            closers: self.closers.clone(),
            handshake_timeout: self.handshake_timeout,
        }
    }

    /// Serves one connection until it ends, or finishes its request and
    /// closes when the server stops.
    fn serve<I>(
        &self,
        io: I,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> impl Future<Output = ()> + Send + 'static
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let st = self.state.clone();
        let conn = self.http.serve_connection(
            TokioIo::new(EnvelopeIo::new(io, self.host_id.clone())),
            service_fn(move |req| {
                let st = st.clone();
                async move { Ok::<_, Infallible>(st.handle(req).await) }
            }),
        );
        // Closed gracefully at shutdown through a channel of its own (a
        // shared watcher would be polled, under one lock, at every wake of
        // every connection).
        let (close, closed) = tokio::sync::oneshot::channel::<()>();
        let id = self.closers.add(close);
        let closers = self.closers.clone();
        async move {
            let mut conn = std::pin::pin!(conn);
            let mut closed = closed;
            let ended = tokio::select! {
                biased;
                ended = conn.as_mut() => ended,
                _ = &mut closed => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            closers.remove(id);
            drop(permit);
        }
    }
}

/// Serves `GET /metrics` (Prometheus text format) and `GET /healthz` on
/// `addr` until `stopped` changes.
async fn serve_metrics(
    addr: SocketAddr,
    state: Arc<State>,
    permits: Arc<tokio::sync::Semaphore>,
    max_connections: usize,
    mut stopped: watch::Receiver<bool>,
) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "local cloud metrics listening");
    tokio::spawn(async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let state = state.clone();
                    let permits = permits.clone();
                    let conn = http.serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req: Request<Incoming>| {
                            let body = match req.uri().path() {
                                "/metrics" => Some(render_metrics(&state, &permits, max_connections)),
                                "/healthz" => Some("ok\n".to_owned()),
                                _ => None,
                            };
                            async move {
                                let mut resp = Response::new(Full::new(Bytes::from(body.clone().unwrap_or_default())));
                                if body.is_none() {
                                    *resp.status_mut() = StatusCode::NOT_FOUND;
                                }
                                resp.headers_mut().insert(
                                    http::header::CONTENT_TYPE,
                                    http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                                );
                                Ok::<_, Infallible>(resp)
                            }
                        }),
                    );
                    tokio::spawn(conn);
                }
                _ = stopped.changed() => break,
            }
        }
    });
    Ok(local)
}

/// The server's counters in Prometheus text format.
fn render_metrics(state: &State, permits: &tokio::sync::Semaphore, max: usize) -> String {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let s = &state.stats;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    metric(
        "rota_local_connections_open",
        "gauge",
        "Connections open now.",
        max.saturating_sub(permits.available_permits()) as u64,
    );
    metric(
        "rota_local_connections_max",
        "gauge",
        "The connection cap (--max-connections).",
        max as u64,
    );
    metric(
        "rota_local_connections_accepted_total",
        "counter",
        "Connections accepted.",
        s.accepted.load(Relaxed),
    );
    metric(
        "rota_local_connections_refused_total",
        "counter",
        "Connections refused at the cap (answered 503 ServiceUnavailable).",
        s.refused.load(Relaxed),
    );
    metric(
        "rota_local_requests_total",
        "counter",
        "Requests answered.",
        s.requests.load(Relaxed),
    );
    metric(
        "rota_local_request_errors_total",
        "counter",
        "Requests answered with an error envelope.",
        s.errors.load(Relaxed),
    );
    metric(
        "rota_local_body_timeouts_total",
        "counter",
        "Request bodies that did not arrive within the body timeout.",
        s.body_timeouts.load(Relaxed),
    );
    metric(
        "rota_local_replay_window_narrowed_total",
        "counter",
        "Times the accepted timestamp window was narrowed to bound the nonce memory.",
        state.nonces.narrowed(),
    );
    metric(
        "rota_local_replay_nonces",
        "gauge",
        "Nonces remembered now.",
        state.nonces.len() as u64,
    );
    out
}

/// Serves one connection whose client sent `input` and then closed its
/// side, and returns every byte the server wrote back: the whole request
/// path (HTTP parsing, the error envelope, form decoding, signature
/// checks, dispatch) without a socket. For fuzzing and tests.
#[doc(hidden)]
pub async fn exchange(cloud: &LocalCloud, input: &[u8]) -> Vec<u8> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let config = ServerConfig::default();
    let state = Arc::new(State {
        host_id: cloud.host_id(),
        cloud: cloud.clone(),
        nonces: crate::replay::ReplayGuard::new(config.nonce_capacity),
        max_body: config.max_body_bytes,
        body_timeout: config.body_timeout,
        stats: Stats::default(),
    });
    let host_id: Arc<str> = Arc::from(state.host_id.as_str());
    let (client, server) = tokio::io::duplex(64 * 1024);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .keep_alive(true)
        .half_close(true);
    let conn = http.serve_connection(
        TokioIo::new(EnvelopeIo::new(server, host_id)),
        service_fn(move |req| {
            let st = state.clone();
            async move { Ok::<_, Infallible>(st.handle(req).await) }
        }),
    );
    let serving = tokio::spawn(conn);
    let mut out = Vec::with_capacity(input.len());
    // Read while writing: an input of many requests fills the pipe with
    // answers before it is all written.
    let (mut reader, mut writer) = tokio::io::split(client);
    let talk = async {
        let write = async {
            let _ = writer.write_all(input).await;
            let _ = writer.shutdown().await;
        };
        let read = reader.read_to_end(&mut out);
        let _ = tokio::join!(write, read);
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), talk).await;
    serving.abort();
    out
}

struct State {
    cloud: LocalCloud,
    nonces: crate::replay::ReplayGuard,
    max_body: usize,
    body_timeout: Duration,
    host_id: String,
    stats: Stats,
}

/// What a verified request asks for (borrowed from the request).
struct Verified<'a> {
    signer: Arc<crate::engine::Signer>,
    version: &'a str,
    action: &'a str,
}

/// A header's value as text. Give a [`http::header::HeaderName`] constant
/// where the name is fixed: a `&str` name is parsed again at each call.
fn header(h: &HeaderMap, name: impl http::header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

impl State {
    // The future of this function is moved whole at each step into the
    // connection's task, so it holds little: the body is read by a boxed
    // future (none for a GET), GetSecretValue is answered without awaiting,
    // and every other action runs boxed (their futures are kilobytes).
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let request_id = crate::dispatch::RequestId::new();
        let request_id = request_id.as_str();
        let mut xml = false;
        let mut action = String::new();
        let (parts, body) = req.into_parts();
        let result = match self.admit(&parts) {
            Err(e) => Err(e),
            Ok(()) => {
                let body = if hyper::body::Body::is_end_stream(&body) {
                    Ok(Bytes::new())
                } else {
                    Box::pin(read_body(
                        body,
                        self.max_body,
                        self.body_timeout,
                        &self.stats,
                    ))
                    .await
                };
                match body.and_then(|body: Bytes| {
                    self.process(&parts, &body, request_id, &mut xml, &mut action)
                }) {
                    Ok(Step::Now(answer)) => Ok(answer),
                    Ok(Step::Later(answer)) => answer.await,
                    Err(e) => Err(e),
                }
            }
        };
        self.stats
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if result.is_err() {
            self.stats
                .errors
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        match result {
            Ok(Answer::Json(bytes)) => {
                tracing::debug!(kms.action = %action, kms.request_id = %request_id, status = 200, "request");
                respond_bytes(StatusCode::OK, request_id, bytes, JSON)
            }
            Ok(Answer::Value(v)) => {
                let v = with_request_id(v, request_id);
                tracing::debug!(kms.action = %action, kms.request_id = %request_id, status = 200, "request");
                respond(
                    StatusCode::OK,
                    request_id,
                    xml,
                    &format!("{action}Response"),
                    &v,
                )
            }
            Err(e) => {
                let w = e.wire();
                tracing::debug!(kms.action = %action, kms.request_id = %request_id, status = w.status, code = w.code, "request failed");
                let body = json!({
                    "RequestId": request_id,
                    "HostId": self.host_id,
                    "Code": w.code,
                    "Message": w.message,
                    "Recommend": format!(
                        "https://api.aliyun.com/troubleshoot?q={}&product=Kms&requestId={request_id}",
                        w.code
                    ),
                });
                let status =
                    StatusCode::from_u16(w.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                respond(status, request_id, xml, "Error", &body)
            }
        }
    }

    /// Refuses a request for another path or method, or announcing a body
    /// past the limit, before its body is read.
    fn admit(&self, parts: &http::request::Parts) -> Result<(), ServiceError> {
        if (parts.method != Method::GET && parts.method != Method::POST) || parts.uri.path() != "/"
        {
            return Err(ServiceError::BadRoute);
        }
        if let Some(len) = header(&parts.headers, http::header::CONTENT_LENGTH)
            .and_then(|l| l.parse::<usize>().ok())
            && len > self.max_body
        {
            return Err(ServiceError::BodyTooLarge {
                limit: self.max_body,
            });
        }
        Ok(())
    }

    /// Decodes and verifies a request whose body was read, then answers
    /// it at once or hands back the boxed work that will.
    fn process<'s>(
        &'s self,
        parts: &http::request::Parts,
        body: &[u8],
        request_id: &str,
        xml: &mut bool,
        action_out: &mut String,
    ) -> Result<Step<'s>, ServiceError> {
        let query = parts.uri.query().unwrap_or_default();
        const FORM: &str = "application/x-www-form-urlencoded";
        let is_form = header(&parts.headers, http::header::CONTENT_TYPE).is_none_or(|ct| {
            ct.get(..FORM.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(FORM))
        });
        let body_text = if is_form && !body.is_empty() {
            std::str::from_utf8(body)
                .map_err(|_| ServiceError::invalid("body", "a form body must be UTF-8"))?
        } else {
            ""
        };
        let params = Params::from_forms(&[query, body_text]).map_err(|(n, e)| {
            ServiceError::invalid(if n == 0 { "query" } else { "body" }, e.to_string())
        })?;
        let authorization = header(&parts.headers, http::header::AUTHORIZATION)
            .filter(|a| a.trim_start().starts_with("ACS3-"));
        // V3 signs the query apart from the body; V1 signs them merged, so
        // only V3 reads the query's own pairs.
        let v3_query = match authorization {
            Some(_) => {
                Some(parse_form(query).map_err(|e| ServiceError::invalid("query", e.to_string()))?)
            }
            None => None,
        };
        *xml = params
            .opt("Format")
            .is_some_and(|f| f.eq_ignore_ascii_case("xml"))
            || header(&parts.headers, http::header::ACCEPT)
                .is_some_and(|a| a.contains("xml") && !a.contains("json"));

        let verified = match (authorization, &v3_query) {
            (Some(a), Some(query)) => {
                self.verify_v3(a, parts.method.as_str(), &parts.headers, query, body)?
            }
            _ => self.verify_v1(parts.method.as_str(), &params)?,
        };
        // The action names the XML root and the debug log line; copied
        // only when either wants it.
        if *xml || tracing::enabled!(tracing::Level::DEBUG) {
            verified.action.clone_into(action_out);
        }
        let dispatcher = self.cloud.dispatcher();
        if !*xml
            && let Some(answer) = dispatcher.json_now(
                &verified.signer.caller,
                verified.version,
                verified.action,
                &params,
                request_id,
            )
        {
            return answer.map(|bytes| Step::Now(Answer::Json(bytes)));
        }
        let Verified {
            signer,
            version,
            action,
        } = verified;
        let (version, action) = (version.to_owned(), action.to_owned());
        let (xml, request_id) = (*xml, request_id.to_owned());
        Ok(Step::Later(Box::pin(async move {
            let dispatcher = self.cloud.dispatcher();
            let caller = &signer.caller;
            if xml {
                dispatcher
                    .dispatch(caller, &version, &action, &params)
                    .await
                    .map(Answer::Value)
            } else {
                dispatcher
                    .dispatch_json(caller, &version, &action, &params, &request_id)
                    .await
                    .map(Answer::Json)
            }
        })))
    }

    /// The request's timestamp and the server's clock (Unix seconds), if
    /// the timestamp is within the window.
    fn check_time(&self, timestamp: &str) -> Result<(i64, i64), ServiceError> {
        let t = parse_wire_time(timestamp).ok_or_else(|| ServiceError::TimestampFormat {
            timestamp: timestamp.to_owned(),
        })?;
        let now = self.cloud.clock().now();
        let skew = (now - t).num_seconds().abs();
        if skew > crate::replay::WINDOW_SECS {
            return Err(ServiceError::TimestampExpired {
                timestamp: timestamp.to_owned(),
            });
        }
        Ok((t.timestamp(), now.timestamp()))
    }

    fn key(&self, id: &str) -> Result<Arc<crate::engine::Signer>, ServiceError> {
        self.cloud.signer(id)
    }

    fn record_nonce(
        &self,
        access_key_id: &str,
        nonce: &str,
        (request_time, now): (i64, i64),
        timestamp: &str,
    ) -> Result<(), ServiceError> {
        match self.nonces.record(access_key_id, nonce, request_time, now) {
            Ok(()) => Ok(()),
            Err(crate::replay::Refusal::Used) => Err(ServiceError::NonceUsed),
            Err(crate::replay::Refusal::Expired) => Err(ServiceError::TimestampExpired {
                timestamp: timestamp.to_owned(),
            }),
        }
    }

    fn verify_v1<'a>(
        &self,
        method: &str,
        params: &'a Params,
    ) -> Result<Verified<'a>, ServiceError> {
        let action = params.req("Action")?;
        let version = params.req("Version")?;
        let ak = params.req("AccessKeyId")?;
        let signature = params.req("Signature")?;
        let timestamp = params.req("Timestamp")?;
        let nonce = params.req("SignatureNonce")?;
        match params.opt("SignatureMethod") {
            Some("HMAC-SHA1") => {}
            None => return Err(ServiceError::missing("SignatureMethod")),
            Some(other) => {
                return Err(ServiceError::IncompleteSignature {
                    reason: format!(
                        "SignatureMethod {other:?} is not supported here (use HMAC-SHA1)"
                    ),
                });
            }
        }
        if params.opt("SignatureVersion") != Some("1.0") {
            return Err(ServiceError::IncompleteSignature {
                reason: "SignatureVersion must be 1.0".into(),
            });
        }
        if let Some(t) = params.opt("SignatureType") {
            return Err(ServiceError::IncompleteSignature {
                reason: format!("SignatureType {t:?} is not supported here (access keys only)"),
            });
        }
        let signer = self.key(ak)?;
        let times = self.check_time(timestamp)?;
        if !sign::v1_matches(&signer.v1, method, params.pairs(), signature) {
            return Err(ServiceError::SignatureDoesNotMatch {
                // The string to sign as the server built it, with secret values
                // (SecretData) shown as *** — an error never carries a value.
                string_to_sign: sign::v1_string_to_sign(
                    method,
                    params.pairs().map(|(k, v)| {
                        let shown = if SECRET_PARAMS.contains(&k) { "***" } else { v };
                        (k, shown)
                    }),
                ),
            });
        }
        self.record_nonce(ak, nonce, times, timestamp)?;
        if signer.session.is_some() {
            self.cloud
                .check_token(&signer, params.opt("SecurityToken"))?;
        }
        Ok(Verified {
            signer,
            version,
            action,
        })
    }

    fn verify_v3<'a>(
        &self,
        authorization: &str,
        method: &str,
        headers: &'a HeaderMap,
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<Verified<'a>, ServiceError> {
        let auth = sign::parse_v3_authorization(authorization).map_err(|e| {
            ServiceError::IncompleteSignature {
                reason: e.to_string(),
            }
        })?;
        if auth.algorithm != V3_ALGORITHM {
            return Err(ServiceError::IncompleteSignature {
                reason: format!(
                    "the algorithm {:?} is not supported here (use {V3_ALGORITHM})",
                    auth.algorithm
                ),
            });
        }
        let need = |name: &str| header(headers, name).ok_or_else(|| ServiceError::missing(name));
        let action = need("x-acs-action")?;
        let version = need("x-acs-version")?;
        let date = need("x-acs-date")?;
        let nonce = need("x-acs-signature-nonce")?;
        // What the signature must cover: the host and every x-acs-* header
        // sent, so that none can be changed (x-acs-action, say) under a
        // captured signature.
        let covered: HashSet<String> = auth
            .signed_headers
            .iter()
            .map(|h| h.to_ascii_lowercase())
            .collect();
        let mut uncovered: Vec<String> = headers
            .keys()
            .map(|k| k.as_str().to_ascii_lowercase())
            .filter(|k| (k == "host" || k.starts_with("x-acs-")) && !covered.contains(k))
            .collect();
        if !covered.contains("host") && !uncovered.iter().any(|k| k == "host") {
            uncovered.push("host".into());
        }
        if !uncovered.is_empty() {
            uncovered.sort();
            uncovered.dedup();
            return Err(ServiceError::IncompleteSignature {
                reason: format!(
                    "SignedHeaders must include host and every x-acs-* header sent; missing: {}",
                    uncovered.join(";")
                ),
            });
        }
        let hashed = sign::sha256_hex(body);
        if let Some(claimed) = header(headers, "x-acs-content-sha256")
            && !claimed.eq_ignore_ascii_case(&hashed)
        {
            return Err(ServiceError::IncompleteSignature {
                reason: "x-acs-content-sha256 does not match the body".into(),
            });
        }
        let signer = self.key(&auth.access_key_id)?;
        let times = self.check_time(date)?;
        let mut signed: Vec<(&str, String)> = Vec::with_capacity(auth.signed_headers.len());
        for name in &auth.signed_headers {
            let values: Vec<&str> = headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if values.is_empty() {
                return Err(ServiceError::IncompleteSignature {
                    reason: format!("the signed header {name:?} is not in the request"),
                });
            }
            for v in values {
                signed.push((name.as_str(), v.to_owned()));
            }
        }
        let header_refs: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let query_refs: Vec<(&str, &str)> = query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let input = V3Input {
            method,
            path: "/",
            query: &query_refs,
            headers: &header_refs,
            hashed_payload: &hashed,
        };
        sign::v3_verify(&input, signer.secret.expose_secret(), &auth.signature).map_err(|m| {
            ServiceError::SignatureDoesNotMatch {
                string_to_sign: m.string_to_sign,
            }
        })?;
        self.record_nonce(&auth.access_key_id, nonce, times, date)?;
        if signer.session.is_some() {
            self.cloud
                .check_token(&signer, header(headers, "x-acs-security-token"))?;
        }
        Ok(Verified {
            signer,
            version,
            action,
        })
    }
}

/// Parameters whose values an error never echoes.
const SECRET_PARAMS: &[&str] = &[
    "SecretData",
    "AccessKeySecret",
    "SecurityToken",
    "Password",
    "AccountPassword",
];

/// Reads a request body into one buffer (however small its chunks: a
/// body sent a byte at a time costs its bytes, not a buffer per byte),
/// refusing more than `max` bytes or a body slower than `within`.
async fn read_body(
    mut body: Incoming,
    max: usize,
    within: Duration,
    stats: &Stats,
) -> Result<Bytes, ServiceError> {
    let read = async {
        let mut gathered = Gather::new(max);
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|_| ServiceError::invalid("body", "the request body could not be read"))?;
            if let Ok(data) = frame.into_data() {
                gathered.push(data)?;
            }
        }
        Ok(gathered.finish())
    };
    tokio::time::timeout(within, read)
        .await
        .unwrap_or_else(|_| {
            stats
                .body_timeouts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ServiceError::invalid(
                "body",
                format!(
                    "the request body did not arrive within {} s",
                    within.as_secs()
                ),
            ))
        })
}

/// A request body as its frames arrive: a body that comes in one frame
/// (most do) is kept as it came; more frames are copied into one buffer,
/// so that at most one frame (and the read buffer it points into) is held.
struct Gather {
    max: usize,
    first: Option<Bytes>,
    buf: Vec<u8>,
}

impl Gather {
    fn new(max: usize) -> Self {
        Self {
            max,
            first: None,
            buf: Vec::new(),
        }
    }

    /// Adds a frame; past `max` bytes in all, `BodyTooLarge`.
    fn push(&mut self, data: Bytes) -> Result<(), ServiceError> {
        let held = self.first.as_ref().map_or(0, Bytes::len) + self.buf.len();
        if held + data.len() > self.max {
            return Err(ServiceError::BodyTooLarge { limit: self.max });
        }
        match self.first.take() {
            None if self.buf.is_empty() => self.first = Some(data),
            None => self.buf.extend_from_slice(&data),
            Some(earlier) => {
                self.buf.extend_from_slice(&earlier);
                self.buf.extend_from_slice(&data);
            }
        }
        Ok(())
    }

    fn finish(self) -> Bytes {
        self.first.unwrap_or_else(|| Bytes::from(self.buf))
    }
}

/// Answers a connection past the cap with 503 in the error envelope.
async fn refuse_busy(mut stream: tokio::net::TcpStream, host_id: String) {
    use tokio::io::AsyncWriteExt as _;
    let request_id = new_request_id();
    let body = json!({
        "RequestId": request_id,
        "HostId": host_id,
        "Code": "ServiceUnavailable",
        "Message": "The server has too many open connections; retry later.",
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q=ServiceUnavailable&product=Kms&requestId={request_id}"),
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json;charset=utf-8\r\nx-acs-request-id: {request_id}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.write_all(answer.as_bytes())).await;
}

/// What a verified request needs: its answer, or the work that will
/// produce it (boxed: see [`State::handle`]).
enum Step<'s> {
    Now(Answer),
    Later(std::pin::Pin<Box<dyn Future<Output = Result<Answer, ServiceError>> + Send + 's>>),
}

/// A success answer: an object to write as JSON or XML, or JSON already
/// written (with its `RequestId`).
enum Answer {
    Value(Value),
    Json(Vec<u8>),
}

const JSON: &str = "application/json;charset=utf-8";

/// An answer's body: the bytes as written, handed to the connection
/// without another allocation (a `Bytes` made from a `Vec` whose length
/// is not its capacity allocates a shared header).
type Body = Full<io::Cursor<Vec<u8>>>;

const X_ACS_REQUEST_ID: http::header::HeaderName =
    http::header::HeaderName::from_static("x-acs-request-id");

fn respond(
    status: StatusCode,
    request_id: &str,
    xml: bool,
    root: &str,
    body: &Value,
) -> Response<Body> {
    let (bytes, ct) = if xml {
        (
            crate::xml::to_xml(root, body).into_bytes(),
            "text/xml;charset=utf-8",
        )
    } else {
        (
            serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
            JSON,
        )
    };
    respond_bytes(status, request_id, bytes, ct)
}

fn respond_bytes(
    status: StatusCode,
    request_id: &str,
    bytes: Vec<u8>,
    ct: &'static str,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(io::Cursor::new(bytes)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(ct),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        h.insert(X_ACS_REQUEST_ID, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::Gather;
    use crate::errors::ServiceError;

    #[test]
    fn bodies_are_gathered_whole_whatever_their_frames() {
        let body = b"SecretName=app%2Fx&SecretData=canary";
        // One frame, every split in two, and one byte per frame.
        let mut splits: Vec<Vec<&[u8]>> = vec![vec![&body[..]]];
        for at in 0..=body.len() {
            splits.push(vec![&body[..at], &body[at..]]);
        }
        splits.push(body.chunks(1).collect());
        for frames in splits {
            let mut g = Gather::new(body.len());
            for f in &frames {
                g.push(Bytes::copy_from_slice(f)).expect("within the limit");
            }
            assert_eq!(&g.finish()[..], &body[..], "{} frames", frames.len());
        }
        // No frame at all: an empty body.
        assert!(Gather::new(10).finish().is_empty());
    }

    #[test]
    fn a_body_past_the_limit_is_refused_at_the_frame_that_passes_it() {
        let mut g = Gather::new(5);
        assert!(g.push(Bytes::from_static(b"abc")).is_ok());
        assert!(g.push(Bytes::from_static(b"de")).is_ok());
        assert!(matches!(
            g.push(Bytes::from_static(b"f")),
            Err(ServiceError::BodyTooLarge { limit: 5 })
        ));
        assert!(matches!(
            Gather::new(2).push(Bytes::from_static(b"abc")),
            Err(ServiceError::BodyTooLarge { limit: 2 })
        ));
    }
}
