//! `rota run --events-addr IP:PORT`: the outbox as Server-Sent Events.
//!
//! `GET /events` answers `text/event-stream`: every stored event, oldest
//! first, then each new one as it is written (this daemon's at once,
//! other processes' within a quarter of a second), as
//!
//! ```text
//! id: 42
//! event: rotation.rotated
//! data: {"specversion":"1.0","id":"…","type":"rotation.rotated",…}
//! ```
//!
//! The SSE `id` is the event's position in the outbox: a client that
//! reconnects with `Last-Event-ID: 42` (or `?after=42`) gets what came
//! after it; `?after=latest` skips what is stored. `?types=rotation.failed,rotation.needs_attention` filters by
//! type. `POST /adoption` takes a consumer's report (`rota agent`:
//! `{"consumer","secret","version_id","reloaded"}`), stored for the
//! adoption gate and `rota status`. A comment line (`: keep-alive`) every 15 s keeps proxies from
//! closing an idle stream. Other paths are 404. No TLS, no
//! authentication: bind to loopback or a private interface.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::{Body, Frame};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rota_rotation::events::Events;
use rota_scheduler::outbox::EventQuery;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How often a stream looks for events other processes wrote (`rota
/// rotate`, `rota apply`, other daemons); this daemon's wake it at once.
const POLL: Duration = Duration::from_millis(250);
/// How often an idle stream sends a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A response body fed by a channel.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
struct StreamRequest {
    /// After this position; `None`: after the newest event (`after=latest`).
    after: Option<i64>,
    kinds: Vec<String>,
}

/// Parses `?after=N&types=a,b` and `Last-Event-ID` (which wins).
fn parse(query: Option<&str>, last_event_id: Option<&str>) -> Result<StreamRequest, String> {
    let mut r = StreamRequest {
        after: Some(0),
        kinds: Vec::new(),
    };
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "after" if v == "latest" => r.after = None,
            "after" => {
                r.after = Some(
                    v.parse()
                        .map_err(|_| format!("after={v:?} is not an event position or latest"))?,
                )
            }
            "types" => {
                for t in v.split(',').filter(|t| !t.is_empty()) {
                    let t = t.replace("%2A", "*").replace("%2a", "*");
                    let matched: Vec<&str> = rota_rotation::events::TYPES
                        .iter()
                        .copied()
                        .filter(|k| rota_kms::pattern::wildcard_match(&t, k))
                        .collect();
                    if matched.is_empty() {
                        return Err(format!(
                            "types: {t:?} matches no event type (one of: {})",
                            rota_rotation::events::TYPES.join(", ")
                        ));
                    }
                    r.kinds.extend(matched.into_iter().map(str::to_owned));
                }
            }
            other => return Err(format!("unknown parameter {other:?}: after, types")),
        }
    }
    if let Some(id) = last_event_id.map(str::trim).filter(|s| !s.is_empty()) {
        r.after = Some(
            id.parse()
                .map_err(|_| format!("Last-Event-ID {id:?} is not an event position"))?,
        );
    }
    Ok(r)
}

fn plain(status: StatusCode, text: &str) -> Response<ChannelBody> {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(format!("{text}\n")));
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(ChannelBody(rx))
        .unwrap_or_else(|_| Response::new(ChannelBody(mpsc::channel(1).1)))
}

fn respond(events: &Arc<Events>, req: &Request<hyper::body::Incoming>) -> Response<ChannelBody> {
    if req.uri().path() != "/events" {
        return plain(StatusCode::NOT_FOUND, "not found: try /events or /adoption");
    }
    if req.method() != Method::GET {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: GET");
    }
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let wanted = match parse(req.uri().query(), last) {
        Ok(w) => w,
        Err(e) => return plain(StatusCode::BAD_REQUEST, &e),
    };
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(stream(Arc::clone(events), wanted, tx));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .body(ChannelBody(rx))
        .unwrap_or_else(|_| Response::new(ChannelBody(mpsc::channel(1).1)))
}

/// The most a consumer's report may weigh.
const MAX_REPORT: usize = 16 * 1024;

/// What `rota agent` posts to `/adoption`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    consumer: String,
    secret: String,
    version_id: String,
    reloaded: bool,
}

/// `POST /adoption`: a consumer says which version of a secret it renders
/// and whether its reload worked; stored with the daemon's time.
async fn adoption(
    events: &Arc<Events>,
    req: Request<hyper::body::Incoming>,
) -> Response<ChannelBody> {
    use http_body_util::BodyExt as _;
    if req.method() != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed: POST");
    }
    let limited = http_body_util::Limited::new(req.into_body(), MAX_REPORT);
    let body = match tokio::time::timeout(Duration::from_secs(10), limited.collect()).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "report too large"),
        Err(_) => return plain(StatusCode::REQUEST_TIMEOUT, "report too slow"),
    };
    let report: Report = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return plain(
                StatusCode::BAD_REQUEST,
                &format!(
                    "invalid report ({e}): {{\"consumer\", \"secret\", \"version_id\", \"reloaded\"}}"
                ),
            );
        }
    };
    if report.consumer.is_empty() || report.consumer.len() > 200 || report.secret.is_empty() {
        return plain(StatusCode::BAD_REQUEST, "consumer and secret must be set");
    }
    let stored = rota_scheduler::outbox::AdoptionReport {
        consumer: report.consumer,
        secret: report.secret,
        version_id: report.version_id,
        reloaded: report.reloaded,
        at_ms: events.now().timestamp_millis(),
    };
    let outbox = Arc::clone(events.outbox());
    match tokio::task::spawn_blocking(move || outbox.report_adoption(&stored)).await {
        Ok(Ok(())) => plain(StatusCode::OK, "recorded"),
        _ => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "the store cannot record it now",
        ),
    }
}

/// Feeds one client until it goes away.
async fn stream(events: Arc<Events>, wanted: StreamRequest, tx: mpsc::Sender<Bytes>) {
    let mut after = match wanted.after {
        Some(a) => a,
        None => {
            let outbox = Arc::clone(events.outbox());
            match tokio::task::spawn_blocking(move || outbox.last_seq()).await {
                Ok(Ok(n)) => n,
                _ => return,
            }
        }
    };
    let mut idle = tokio::time::Instant::now();
    // Tells the client how long to wait before reconnecting.
    if tx
        .send(Bytes::from_static(b"retry: 1000\n\n"))
        .await
        .is_err()
    {
        return;
    }
    loop {
        let notified = events.wake().notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let outbox = Arc::clone(events.outbox());
        let query = EventQuery {
            after_seq: after,
            since_ms: None,
            kinds: wanted.kinds.clone(),
            limit: 500,
        };
        let page = tokio::task::spawn_blocking(move || outbox.events(&query)).await;
        let page = match page {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "events stream: cannot read the outbox");
                Vec::new()
            }
            Err(_) => return,
        };
        let full = page.len() == 500;
        for e in page {
            after = e.seq;
            let frame = format!("id: {}\nevent: {}\ndata: {}\n\n", e.seq, e.kind, e.body);
            if tx.send(Bytes::from(frame)).await.is_err() {
                return;
            }
            idle = tokio::time::Instant::now();
        }
        if full {
            continue;
        }
        if idle.elapsed() >= KEEP_ALIVE {
            if tx
                .send(Bytes::from_static(b": keep-alive\n\n"))
                .await
                .is_err()
            {
                return;
            }
            idle = tokio::time::Instant::now();
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(POLL) => {}
            () = tx.closed() => return,
        }
    }
}

/// The running server.
#[derive(Debug)]
pub(crate) struct EventsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl EventsServer {
    /// The bound address.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting; open streams end.
    pub(crate) async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` and serves the event stream.
pub(crate) async fn serve(addr: SocketAddr, events: Arc<Events>) -> io::Result<EventsServer> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10));
        let mut conns = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "events: accept failed");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let ev = Arc::clone(&events);
                    let conn = http.serve_connection(
                        TokioIo::new(stream),
                        service_fn(move |req| {
                            let ev = Arc::clone(&ev);
                            async move {
                                let answer = if req.uri().path() == "/adoption" {
                                    adoption(&ev, req).await
                                } else {
                                    respond(&ev, &req)
                                };
                                Ok::<_, Infallible>(answer)
                            }
                        }),
                    );
                    conns.spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::trace!(error = %e, "events connection ended with an error");
                        }
                    });
                }
                _ = stopped.changed() => break,
            }
        }
        conns.abort_all();
    });
    Ok(EventsServer {
        local_addr,
        stop,
        task,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_resume_and_filter() {
        assert_eq!(
            parse(None, None),
            Ok(StreamRequest {
                after: Some(0),
                kinds: vec![]
            })
        );
        let r = parse(Some("after=3&types=rotation.failed,secret.*"), Some("7")).unwrap();
        assert_eq!(r.after, Some(7), "Last-Event-ID wins");
        assert_eq!(parse(Some("after=latest"), None).unwrap().after, None);
        assert_eq!(
            r.kinds,
            [
                "rotation.failed",
                "secret.created",
                "secret.updated",
                "secret.replaced",
                "secret.deleted"
            ]
        );
        assert!(
            parse(Some("types=nope"), None)
                .unwrap_err()
                .contains("matches no event type")
        );
        assert!(parse(Some("after=x"), None).is_err());
        assert!(
            parse(Some("since=1"), None)
                .unwrap_err()
                .contains("unknown parameter")
        );
    }
}
