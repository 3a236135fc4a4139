//! The daemon's HTTP front for `--metrics-addr`: `GET /metrics` (the
//! Prometheus text format) and `GET /healthz` (JSON), nothing else.
//!
//! - `/healthz`: 503 `{"status":"store-down","jobs":N}` while the shared
//!   store cannot be reached (nothing new starts);
//!   200 `{"status":"ok","jobs":N,"needs_attention":K}` while
//!   the scheduler runs; 503 with `"status":"starting"` before it has
//!   started (the daemon may still be applying the configuration) and
//!   `"status":"draining"` once shutdown has begun.
//! - Other paths 404, other methods 405 (HEAD is GET without a body).
//!
//! hyper's HTTP/1 server on its own task, as `rota-local`'s server; a
//! request never reads a body and every answer is built in memory, so a
//! scrape costs one pass over the metric families and the runner's jobs.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rota_scheduler::Runner;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::CONTENT_TYPE;
use super::Metrics;

/// What the server reports on: the metrics, and the runner once it runs.
#[derive(Debug)]
struct State {
    metrics: Arc<Metrics>,
    runner: OnceLock<Runner>,
}

impl State {
    fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            runner: OnceLock::new(),
        }
    }
}

/// A plain answer: status, content type, body.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    status: StatusCode,
    content_type: &'static str,
    body: String,
}

impl Answer {
    fn text(status: StatusCode, body: &str) -> Self {
        Self {
            status,
            content_type: "text/plain; charset=utf-8",
            body: format!("{body}\n"),
        }
    }
}

/// The answer to `method path`; pure but for reading the state.
fn route(state: &State, method: &Method, path: &str) -> Answer {
    if path != "/metrics" && path != "/healthz" {
        return Answer::text(StatusCode::NOT_FOUND, "not found: try /metrics or /healthz");
    }
    if method != Method::GET && method != Method::HEAD {
        return Answer::text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let counts = state.runner.get().map(Runner::counts);
    if path == "/metrics" {
        return Answer {
            status: StatusCode::OK,
            content_type: CONTENT_TYPE,
            body: state.metrics.render(counts),
        };
    }
    // Written by hand so the field order is fixed: status first.
    let (status, body) = match (state.runner.get(), counts) {
        (Some(runner), Some(c)) if !runner.store_up() && !runner.is_stopping() => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(r#"{{"status":"store-down","jobs":{}}}"#, c.jobs),
        ),
        (Some(runner), Some(c)) if !runner.is_stopping() => (
            StatusCode::OK,
            format!(
                r#"{{"status":"ok","jobs":{},"needs_attention":{}}}"#,
                c.jobs, c.needs_attention
            ),
        ),
        (Some(_), Some(c)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(r#"{{"status":"draining","jobs":{}}}"#, c.jobs),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"starting"}"#.to_owned(),
        ),
    };
    Answer {
        status,
        content_type: "application/json",
        body: format!("{body}\n"),
    }
}

fn respond(state: &State, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let answer = route(state, req.method(), req.uri().path());
    let mut builder = Response::builder()
        .status(answer.status)
        .header(header::CONTENT_TYPE, answer.content_type)
        .header(header::CACHE_CONTROL, "no-store");
    if answer.status == StatusCode::METHOD_NOT_ALLOWED {
        builder = builder.header(header::ALLOW, "GET, HEAD");
    }
    let body = if req.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(answer.body)
    };
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

/// The running server.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    local_addr: SocketAddr,
    state: Arc<State>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// The scheduler has started: `/healthz` reports on `runner` from now on.
    pub(crate) fn running(&self, runner: Runner) {
        let _ = self.state.runner.set(runner);
    }

    /// The bound address (the real port when 0 was asked for).
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits (at most 2 s) for open scrapes to end.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves `metrics` on the current runtime; `/healthz`
/// says `starting` until [`MetricsServer::running`].
pub(crate) async fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> io::Result<MetricsServer> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let state = Arc::new(State::new(metrics));
    let server_state = state.clone();
    let task = tokio::spawn(async move {
        let state = server_state;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        // A timer bounds how long a client may take to send its headers.
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "metrics: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let st = state.clone();
                    let conn = http.serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| {
                            let answer = respond(&st, &req);
                            async move { Ok::<_, Infallible>(answer) }
                        }),
                    );
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::trace!(error = %e, "metrics connection ended with an error");
                        }
                    });
                }
                _ = stopped.changed() => break,
            }
        }
        drop(listener);
        let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
    });
    Ok(MetricsServer {
        local_addr,
        state,
        stop,
        task,
    })
}

#[cfg(test)]
mod tests {
    use rota_scheduler::{ManualClock, RunnerConfig, SqliteStore};

    use super::*;

    fn runner() -> Runner {
        Runner::new(
            Arc::new(SqliteStore::in_memory().expect("store")),
            Arc::new(ManualClock::new(chrono::DateTime::UNIX_EPOCH)),
            RunnerConfig::with_owner("test"),
            |_run: rota_scheduler::JobRun| async { Ok::<(), rota_scheduler::RunError>(()) },
        )
    }

    fn get(state: &State, path: &str) -> (u16, String) {
        let a = route(state, &Method::GET, path);
        (a.status.as_u16(), a.body)
    }

    #[tokio::test]
    async fn health_follows_the_scheduler_from_starting_to_draining() {
        let state = State::new(Arc::new(Metrics::new()));
        assert_eq!(
            get(&state, "/healthz"),
            (503, "{\"status\":\"starting\"}\n".into())
        );
        let r = runner();
        r.register(rota_scheduler::JobSpec::new("rotate:a", "@daily"))
            .await
            .expect("registered");
        r.start().await.expect("started");
        let _ = state.runner.set(r.clone());
        assert_eq!(
            get(&state, "/healthz"),
            (
                200,
                "{\"status\":\"ok\",\"jobs\":1,\"needs_attention\":0}\n".into()
            )
        );
        r.shutdown(Duration::from_secs(1)).await;
        assert_eq!(
            get(&state, "/healthz"),
            (503, "{\"status\":\"draining\",\"jobs\":1}\n".into())
        );
    }

    #[test]
    fn metrics_unknown_paths_and_methods() {
        let state = State::new(Arc::new(Metrics::new()));
        let m = route(&state, &Method::GET, "/metrics");
        assert_eq!((m.status, m.content_type), (StatusCode::OK, CONTENT_TYPE));
        assert!(
            m.body.contains("# TYPE rota_build_info gauge\n"),
            "{}",
            m.body
        );
        assert!(m.body.ends_with("# EOF\n"), "{}", m.body);
        assert_eq!(get(&state, "/").0, 404);
        assert_eq!(get(&state, "/metrics/x").0, 404);
        assert_eq!(route(&state, &Method::POST, "/metrics").status, 405);
        assert_eq!(route(&state, &Method::HEAD, "/healthz").status, 503);
    }
}
