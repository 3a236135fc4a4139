//! Delivery of the outbox to the sinks, at least once.
//!
//! One task per sink, and per sink one process at a time (a lease in the
//! store, renewed every pass). A pass drops the oldest undelivered events
//! beyond the sink's cap, takes what is due (per subject only the oldest
//! pending event: the order per secret holds), attempts them concurrently,
//! and records each result: delivered, retried with exponential backoff
//! (1 s doubling to 1 min, with jitter), or dead once the event is older
//! than the sink's `retry_for`.
//!
//! Webhooks carry the [Standard Webhooks](https://www.standardwebhooks.com)
//! headers: `webhook-id` (the event id), `webhook-timestamp` (Unix
//! seconds) and, with a key, `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "<id>.<timestamp>.<body>">`. A 2xx answer is a delivery. Commands get
//! the event on standard input and `ROTA_EVENT_ID` / `ROTA_EVENT_TYPE` in
//! their environment; exit status 0 is a delivery.
//!
//! Errors recorded and logged name the sink, the URL's scheme, host and
//! port, the status or failure class — never a body or a path.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rota_scheduler::outbox::{Pending, Settle};
use sha2::Sha256;

use super::{Events, SinkSpec, SinkTarget, chain};

/// Most deliveries attempted in one pass.
const BATCH: u32 = 64;
/// How long a process keeps the right to deliver a sink unless renewed.
const SINK_LEASE: Duration = Duration::from_secs(15);
/// The longest wait between passes (other hosts' events, lease renewal).
const POLL: Duration = Duration::from_secs(2);
/// How often delivered events past their retention are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The key bytes of a configured signing key: `whsec_<base64>` is
/// decoded (as Standard Webhooks libraries expect); anything else is used
/// as it is.
pub fn signing_key(key: &str) -> Vec<u8> {
    key.strip_prefix("whsec_")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_else(|| key.as_bytes().to_vec())
}

/// The HMAC-SHA256 under `key` of `<id>.<timestamp>.<body>`, not finalized.
fn signed_content(key: &[u8], id: &str, timestamp: i64, body: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body.as_bytes());
    mac
}

/// The `webhook-signature` value of `body`: `v1,<base64 HMAC-SHA256>` over
/// `<id>.<timestamp>.<body>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let sig = signed_content(key, id, timestamp, body)
        .finalize()
        .into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(sig)
    )
}

/// Whether `header` (one or more space-separated `v1,<sig>`) holds the
/// signature of `body`: what a receiver checks (in constant time).
pub fn verify(key: &[u8], id: &str, timestamp: i64, body: &str, header: &str) -> bool {
    let mac = signed_content(key, id, timestamp, body);
    header.split(' ').any(|s| {
        s.strip_prefix("v1,")
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .is_some_and(|sig| mac.clone().verify_slice(&sig).is_ok())
    })
}

/// The wait before attempt `attempts + 1`: 1 s doubling to 1 min, then
/// between 80 % and 100 % of it.
fn backoff(attempts: u32) -> Duration {
    let base = Duration::from_secs(1u64 << attempts.min(6)).min(Duration::from_secs(60));
    let factor = 0.8 + 0.2 * rand::random::<f64>();
    base.mul_f64(factor)
}

/// Delivers the outbox (see the module docs).
pub struct Deliverer {
    events: Arc<Events>,
    owner: String,
    client: reqwest::Client,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A deliverer of `events`' outbox; `owner` identifies this process in
    /// the sinks' leases.
    ///
    /// # Errors
    ///
    /// When the HTTP client cannot be built.
    pub fn new(events: Arc<Events>, owner: impl Into<String>) -> Result<Self, String> {
        crate::notify::install_crypto_provider();
        let client = reqwest::Client::builder()
            .user_agent(concat!("rota/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| chain(&e))?;
        Ok(Self {
            events,
            owner: owner.into(),
            client,
        })
    }

    /// Delivers until `stop` turns true: one task per configured sink
    /// (following reloads), and the retention of delivered events.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tasks: std::collections::HashMap<String, tokio::task::JoinHandle<()>> =
            std::collections::HashMap::new();
        let mut last_prune: Option<std::time::Instant> = None;
        loop {
            let config = self.events.config();
            tasks.retain(|_, t| !t.is_finished());
            for sink in &config.sinks {
                if !tasks.contains_key(&sink.name) {
                    let me = Arc::clone(&self);
                    let (name, stop) = (sink.name.clone(), stop.clone());
                    tasks.insert(
                        sink.name.clone(),
                        tokio::spawn(async move { me.sink_loop(name, stop).await }),
                    );
                }
            }
            if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
                last_prune = Some(std::time::Instant::now());
                self.prune(config.retention).await;
            }
            let notified = self.events.wake().notified();
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        for (_, t) in tasks {
            let _ = t.await;
        }
    }

    async fn prune(&self, retention: Duration) {
        let outbox = Arc::clone(self.events.outbox());
        let before = self.events.now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let before_ms = before.timestamp_millis();
        match tokio::task::spawn_blocking(move || outbox.prune_events(before_ms)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(events = n, "events past their retention deleted"),
            Ok(Err(e)) => tracing::warn!(error = %chain(&e), "cannot prune the outbox"),
            Err(e) => tracing::warn!(error = %e, "cannot prune the outbox"),
        }
    }

    /// Delivers `name` until it is no longer configured or `stop`.
    async fn sink_loop(
        self: Arc<Self>,
        name: String,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                return;
            }
            let config = self.events.config();
            let Some(sink) = config.sinks.iter().find(|s| s.name == name).cloned() else {
                return;
            };
            let notified = self.events.wake().notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wait = match self.pass(&sink).await {
                Ok(Some(n)) if n >= BATCH as usize => continue,
                Ok(Some(_)) => self.until_next(&name).await,
                Ok(None) => POLL,
                Err(e) => {
                    tracing::warn!(sink = %name, error = %e, "cannot deliver events: the store failed");
                    POLL
                }
            };
            let until = self.events.now() + chrono::Duration::from_std(wait).unwrap_or_default();
            tokio::select! {
                () = &mut notified => {}
                () = self.events.clock().sleep_until(until) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// How long until the next pending delivery of `sink` is due (at most
    /// [`POLL`]).
    async fn until_next(&self, sink: &str) -> Duration {
        let outbox = Arc::clone(self.events.outbox());
        let s = sink.to_owned();
        let next = tokio::task::spawn_blocking(move || outbox.next_due_ms(&s))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let now = self.events.now().timestamp_millis();
        next.map_or(POLL, |n| {
            Duration::from_millis(u64::try_from(n - now).unwrap_or(0)).min(POLL)
        })
    }

    /// Delivers everything due now, for commands that wrote events (`rota
    /// apply`, `rota rotate`), until nothing is due or `within` passed.
    /// Sinks another process delivers are left to it. Returns how many were
    /// delivered.
    pub async fn drain(&self, within: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + within;
        let mut delivered = 0;
        for sink in &self.events.config().sinks {
            loop {
                let attempt = tokio::time::timeout_at(deadline, self.pass_counting(sink)).await;
                match attempt {
                    Ok(Ok(Some((n, ok)))) => {
                        delivered += ok;
                        if n == 0 || ok < n {
                            break;
                        }
                    }
                    Ok(Ok(None)) | Err(_) => break,
                    Ok(Err(e)) => {
                        tracing::warn!(sink = %sink.name, error = %e, "cannot deliver events");
                        break;
                    }
                }
            }
        }
        delivered
    }

    async fn pass(&self, sink: &SinkSpec) -> Result<Option<usize>, String> {
        Ok(self.pass_counting(sink).await?.map(|(n, _)| n))
    }

    /// One pass over `sink`: `None` when another process holds it, else
    /// (attempted, delivered).
    async fn pass_counting(&self, sink: &SinkSpec) -> Result<Option<(usize, usize)>, String> {
        let outbox = Arc::clone(self.events.outbox());
        let now = self.events.now();
        let now_ms = now.timestamp_millis();
        let until_ms = now_ms + i64::try_from(SINK_LEASE.as_millis()).unwrap_or(i64::MAX);
        let (name, owner, max) = (sink.name.clone(), self.owner.clone(), sink.max_pending);
        let (due, dropped) = tokio::task::spawn_blocking(move || {
            if !outbox.take_sink(&name, &owner, now_ms, until_ms)? {
                return Ok::<_, rota_scheduler::StoreError>((None, 0));
            }
            let dropped = outbox.cap(&name, max, now_ms)?;
            Ok((Some(outbox.due(&name, now_ms, BATCH)?), dropped))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| chain(&e))?;
        let observer = self.events.observer();
        if dropped > 0 {
            tracing::warn!(sink = %sink.name, dropped, max_pending = sink.max_pending, "the sink's backlog reached its cap: the oldest undelivered events were dropped");
            if let Some(o) = &observer {
                o.dropped(&sink.name, dropped);
            }
        }
        let Some(due) = due else { return Ok(None) };
        if due.is_empty() {
            return Ok(Some((0, 0)));
        }
        let mut set = tokio::task::JoinSet::new();
        let ts = now.timestamp();
        for (i, p) in due.iter().enumerate() {
            let (client, sink, p) = (self.client.clone(), sink.clone(), p.clone());
            set.spawn(async move { (i, attempt(&client, &sink, &p, ts).await) });
        }
        let mut results: Vec<(usize, Result<(), String>)> = Vec::with_capacity(due.len());
        while let Some(r) = set.join_next().await {
            match r {
                Ok(r) => results.push(r),
                Err(e) => tracing::error!(error = %e, "an event delivery task failed"),
            }
        }
        let now = self.events.now();
        let now_ms = now.timestamp_millis();
        let mut settles = Vec::with_capacity(results.len());
        let mut delivered = 0;
        for (i, r) in results {
            let p = &due[i];
            let age = Duration::from_millis(u64::try_from(now_ms - p.event.time_ms).unwrap_or(0));
            let settle = match r {
                Ok(()) => {
                    delivered += 1;
                    if let Some(o) = &observer {
                        o.delivered(&sink.name, &p.event.kind, age);
                    }
                    Settle::Delivered { at_ms: now_ms }
                }
                Err(error) if age >= sink.retry_for => {
                    tracing::error!(sink = %sink.name, event.id = %p.event.id, event.type = %p.event.kind, attempts = p.attempts + 1, error = %error, "event delivery given up: parked as dead");
                    if let Some(o) = &observer {
                        o.dead(&sink.name, &p.event.kind);
                    }
                    Settle::Dead {
                        at_ms: now_ms,
                        error,
                    }
                }
                Err(error) => {
                    let wait = backoff(p.attempts);
                    tracing::warn!(sink = %sink.name, event.id = %p.event.id, event.type = %p.event.kind, attempts = p.attempts + 1, retry_in_ms = wait.as_millis() as u64, error = %error, "event delivery failed; will retry");
                    if let Some(o) = &observer {
                        o.retried(&sink.name, &p.event.kind);
                    }
                    Settle::Retry {
                        next_ms: now_ms + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                        error,
                    }
                }
            };
            settles.push((p.event.seq, settle));
        }
        let outbox = Arc::clone(self.events.outbox());
        let name = sink.name.clone();
        let attempted = settles.len();
        tokio::task::spawn_blocking(move || outbox.settle(&name, &settles))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| chain(&e))?;
        Ok(Some((attempted, delivered)))
    }
}

/// One attempt to deliver `p` to `sink`; `Err` is a redacted reason.
async fn attempt(
    client: &reqwest::Client,
    sink: &SinkSpec,
    p: &Pending,
    ts: i64,
) -> Result<(), String> {
    match &sink.target {
        SinkTarget::Webhook { url, key, timeout } => {
            let origin = crate::notify::redact_url(url);
            let mut req = client
                .post(url)
                .timeout(*timeout)
                .header("content-type", "application/cloudevents+json")
                .header("webhook-id", &p.event.id)
                .header("webhook-timestamp", ts.to_string())
                .header("ce-type", &p.event.kind);
            if let Some(key) = key {
                let sig = sign(
                    &signing_key(key.expose_secret()),
                    &p.event.id,
                    ts,
                    &p.event.body,
                );
                req = req.header("webhook-signature", sig);
            }
            match req.body(p.event.body.clone()).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{origin} answered HTTP {}", r.status().as_u16())),
                Err(e) if e.is_timeout() => {
                    Err(format!("{origin} did not answer within {timeout:?}"))
                }
                Err(e) if e.is_connect() => Err(format!("cannot connect to {origin}")),
                Err(_) => Err(format!("the request to {origin} failed")),
            }
        }
        SinkTarget::Command { argv, timeout } => run_command(argv, *timeout, p).await,
    }
}

async fn run_command(argv: &[String], timeout: Duration, p: &Pending) -> Result<(), String> {
    use tokio::io::AsyncWriteExt as _;
    let Some((program, args)) = argv.split_first() else {
        return Err("the command is empty".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("ROTA_EVENT_ID", &p.event.id)
        .env("ROTA_EVENT_TYPE", &p.event.kind)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {program:?}: {e}"))?;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // The document and its newline in one write: a pipe write of
            // up to 4 KiB is atomic, so a program appending its input to a
            // file (`cat >> log`) while another delivery does the same
            // writes whole lines, never two documents on one line. A
            // program that does not read its input is not a failure.
            let mut line = Vec::with_capacity(p.event.body.len() + 1);
            line.extend_from_slice(p.event.body.as_bytes());
            line.push(b'\n');
            let _ = stdin.write_all(&line).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(format!("{program:?} did not finish within {timeout:?}")),
        Ok(Err(e)) => Err(format!("{program:?} failed: {e}")),
        Ok(Ok(s)) if s.success() => Ok(()),
        Ok(Ok(s)) => Err(format!("{program:?} exited with {s}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_tampered_body_does_not() {
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        assert_eq!(key.len(), 24);
        let body = r#"{"type":"rotation.rotated"}"#;
        let sig = sign(&key, "msg_1", 1_700_000_000, body);
        assert!(sig.starts_with("v1,"));
        assert!(verify(&key, "msg_1", 1_700_000_000, body, &sig));
        assert!(!verify(
            &key,
            "msg_1",
            1_700_000_000,
            &body.replace("rotated", "failed"),
            &sig
        ));
        assert!(!verify(&key, "msg_1", 1_700_000_001, body, &sig));
        assert!(!verify(b"other", "msg_1", 1_700_000_000, body, &sig));
        assert_eq!(signing_key("plain"), b"plain");
    }

    #[test]
    fn the_signature_matches_the_standard_webhooks_vector() {
        // The example of the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_doubles_to_a_minute() {
        assert!(backoff(0) <= Duration::from_secs(1));
        assert!(backoff(0) >= Duration::from_millis(800));
        assert!(backoff(3) >= Duration::from_millis(6400));
        assert!(backoff(20) <= Duration::from_secs(64));
    }
}
