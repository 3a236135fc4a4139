//! The daemon's metrics (`rota run --metrics-addr`): what is counted, and
//! the observer hooks that count it.
//!
//! - KMS and other OpenAPI calls: [`Metrics`] is the [`CallObserver`] of a
//!   [`rota_kms::observe::Observed`] transport the daemon wraps around its
//!   backend (`Backend::observed`), so the typed client, plugins, hooks
//!   and workflows are all counted, below the engine and above the HTTP
//!   transport's retries.
//! - Rotation steps: [`MeteredHistory`] wraps the engine's
//!   [`HistorySink`], the one place the protocol reports every step it
//!   finished (with plugin, step and duration); the durable history still
//!   gets every event.
//! - Rotation and workflow outcomes and start lag: [`Metrics`] is the
//!   daemon core's [`DaemonObserver`].
//! - Jobs needing attention: the runner's in-memory counts, read when
//!   `/metrics` is scraped.
//!
//! Labels are bounded: plugin, step, outcome, workflow (configured names),
//! product, action and error code — never a secret name, version or value.
//! The text format is prometheus-client's (OpenMetrics text, which
//! Prometheus reads); the HTTP front is [`server`].

pub(crate) mod server;

use std::sync::Arc;
use std::time::Duration;

use rota_kms::Product;
use rota_kms::observe::{Call, CallObserver};
use rota_rotation::history::{HistorySink, StepEvent};
use rota_rotation::{DaemonObserver, RunOutcome};
use rota_scheduler::JobCounts;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Step durations: from a local in-process step (milliseconds) to the
/// default step timeout (5 minutes).
const STEP_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// Start lag: from the dispatcher's own latency to a daemon that was down.
const LAG_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0,
];
/// The longest error code used as a label; longer ones are `other`.
const MAX_CODE_LEN: usize = 64;

/// The content type of [`Metrics::render`].
pub(crate) const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A series' labels, in the order they are declared.
type Labels = Vec<(&'static str, String)>;

/// A family of counters with `N` labels.
#[derive(Debug, Clone)]
struct Counters<const N: usize> {
    names: [&'static str; N],
    family: Family<Labels, Counter>,
}

impl<const N: usize> Counters<N> {
    fn new(registry: &mut Registry, name: &str, help: &str, names: [&'static str; N]) -> Self {
        let family = Family::default();
        // The registry adds `_total` to a counter's name.
        registry.register(name.trim_end_matches("_total"), help, family.clone());
        Self { names, family }
    }

    fn labels(&self, values: [&str; N]) -> Labels {
        self.names
            .iter()
            .zip(values)
            .map(|(k, v)| (*k, v.to_owned()))
            .collect()
    }

    /// Creates the series at zero.
    fn touch(&self, values: [&str; N]) {
        let _ = self.family.get_or_create(&self.labels(values));
    }

    fn inc(&self, values: [&str; N]) {
        self.family.get_or_create(&self.labels(values)).inc();
    }

    #[cfg(test)]
    fn get(&self, values: [&str; N]) -> u64 {
        self.family.get_or_create(&self.labels(values)).get()
    }
}

fn latency_histogram() -> Histogram {
    Histogram::new(LAG_BUCKETS.iter().copied())
}

impl rota_rotation::events::EventsObserver for Metrics {
    fn written(&self, kind: &str) {
        self.events_written.inc([kind]);
    }

    fn delivered(&self, sink: &str, kind: &str, latency: Duration) {
        self.events_delivered.inc([sink, kind]);
        self.event_latency
            .get_or_create(&vec![("sink", sink.to_owned())])
            .observe(latency.as_secs_f64());
    }

    fn retried(&self, sink: &str, kind: &str) {
        self.events_retried.inc([sink, kind]);
    }

    fn dead(&self, sink: &str, kind: &str) {
        self.events_dead.inc([sink, kind]);
    }

    fn dropped(&self, sink: &str, n: u64) {
        self.events_dropped
            .family
            .get_or_create(&self.events_dropped.labels([sink]))
            .inc_by(n);
    }
}

fn step_histogram() -> Histogram {
    Histogram::new(STEP_BUCKETS.iter().copied())
}

/// Everything the daemon counts.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    rotations: Counters<2>,
    step_seconds: Family<Labels, Histogram, fn() -> Histogram>,
    jobs_needing_attention: Gauge,
    verifications: Counters<2>,
    rollbacks: Counters<2>,
    events_written: Counters<1>,
    events_delivered: Counters<2>,
    events_retried: Counters<2>,
    events_dead: Counters<2>,
    events_dropped: Counters<1>,
    event_latency: Family<Labels, Histogram, fn() -> Histogram>,
    store_up: Gauge,
    cluster_needing_attention: Gauge,
    slot_lag: Histogram,
    workflow_runs: Counters<2>,
    kms_requests: Counters<1>,
    kms_errors: Counters<2>,
    cloud_requests: Counters<2>,
    cloud_errors: Counters<3>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every family, empty but for `rota_build_info`.
    pub(crate) fn new() -> Self {
        let mut r = Registry::default();
        let build_info = Family::<Labels, Gauge>::default();
        r.register(
            "rota_build_info",
            "Always 1; the version label is the running rota's version.",
            build_info.clone(),
        );
        build_info
            .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
            .set(1);
        let rotations = Counters::new(
            &mut r,
            "rota_rotations_total",
            "Scheduled rotation attempts by plugin and outcome (rotated, resumed, already_done, failed).",
            ["plugin", "outcome"],
        );
        let step_seconds = Family::new_with_constructor(step_histogram as fn() -> Histogram);
        r.register(
            "rota_rotation_step_duration_seconds",
            "Duration of rotation protocol steps (inspect, create, set, test, finish, rollback), failed ones included.",
            step_seconds.clone(),
        );
        let jobs_needing_attention = Gauge::default();
        r.register(
            "rota_jobs_needing_attention",
            "Jobs whose retry budget is spent with no success since.",
            jobs_needing_attention.clone(),
        );
        let verifications = Counters::new(
            &mut r,
            "rota_verifications_total",
            "Soaks of verified rotations by plugin and outcome (passed, failed).",
            ["plugin", "outcome"],
        );
        let rollbacks = Counters::new(
            &mut r,
            "rota_rollbacks_total",
            "Rollbacks (a failed step before the promotion, or a failed verification after it) by plugin and outcome (ok, failed).",
            ["plugin", "outcome"],
        );
        let events_written = Counters::new(
            &mut r,
            "rota_events_written_total",
            "Events this process wrote to the outbox, by type.",
            ["type"],
        );
        let events_delivered = Counters::new(
            &mut r,
            "rota_events_delivered_total",
            "Events delivered, by sink and type.",
            ["sink", "type"],
        );
        let events_retried = Counters::new(
            &mut r,
            "rota_events_retried_total",
            "Failed deliveries that will be retried, by sink and type.",
            ["sink", "type"],
        );
        let events_dead = Counters::new(
            &mut r,
            "rota_events_dead_total",
            "Events given up after the sink's retry_for (parked as dead), by sink and type.",
            ["sink", "type"],
        );
        let events_dropped = Counters::new(
            &mut r,
            "rota_events_dropped_total",
            "Undelivered events dropped because the sink's backlog reached max_pending, by sink.",
            ["sink"],
        );
        let event_latency = Family::new_with_constructor(latency_histogram as fn() -> Histogram);
        r.register(
            "rota_event_delivery_seconds",
            "From an event's time to its delivery, by sink.",
            event_latency.clone(),
        );
        let store_up = Gauge::default();
        r.register(
            "rota_store_up",
            "1 while the last operation on the scheduler's store (SQLite, or the shared PostgreSQL) succeeded, else 0.",
            store_up.clone(),
        );
        let cluster_needing_attention = Gauge::default();
        r.register(
            "rota_cluster_jobs_needing_attention",
            "Jobs needing attention across every daemon sharing the store (read from the store).",
            cluster_needing_attention.clone(),
        );
        let slot_lag = Histogram::new(LAG_BUCKETS.iter().copied());
        r.register(
            "rota_next_slot_lag_seconds",
            "How late each scheduled run started after the time it was due (slot plus deliberate jitter, or retry time).",
            slot_lag.clone(),
        );
        let workflow_runs = Counters::new(
            &mut r,
            "rota_workflow_runs_total",
            "Scheduled workflow runs by workflow and outcome (ran, failed).",
            ["workflow", "outcome"],
        );
        let kms_requests = Counters::new(
            &mut r,
            "rota_kms_requests_total",
            "KMS API requests by action (retries inside one request not counted).",
            ["action"],
        );
        let kms_errors = Counters::new(
            &mut r,
            "rota_kms_errors_total",
            "Failed KMS API requests by action and error code (the service's Code, else the failure class).",
            ["action", "code"],
        );
        let cloud_requests = Counters::new(
            &mut r,
            "rota_cloud_requests_total",
            "Other OpenAPI requests (ECS, RDS, RAM, ...) made by plugins and hooks, by product and action.",
            ["product", "action"],
        );
        let cloud_errors = Counters::new(
            &mut r,
            "rota_cloud_errors_total",
            "Failed OpenAPI requests to products other than KMS, by product, action and error code.",
            ["product", "action", "code"],
        );
        Self {
            registry: r,
            rotations,
            step_seconds,
            jobs_needing_attention,
            verifications,
            rollbacks,
            events_written,
            events_delivered,
            events_retried,
            events_dead,
            events_dropped,
            event_latency,
            store_up,
            cluster_needing_attention,
            slot_lag,
            workflow_runs,
            kms_requests,
            kms_errors,
            cloud_requests,
            cloud_errors,
        }
    }

    /// Creates the rotation series of `plugin` at zero, so rates over them
    /// start at the first scrape.
    pub(crate) fn expect_plugin(&self, plugin: &str) {
        for o in RunOutcome::ROTATION {
            self.rotations.touch([plugin, o.as_str()]);
        }
    }

    /// Creates the run series of workflow `name` at zero.
    pub(crate) fn expect_workflow(&self, name: &str) {
        for o in ["ran", "failed"] {
            self.workflow_runs.touch([name, o]);
        }
    }

    /// Creates every series of the configured plugins and workflows at
    /// zero (at start and on each reload).
    pub(crate) fn expect(&self, targets: &rota_rotation::Targets) {
        for t in &targets.rotations {
            self.expect_plugin(&t.plugin);
        }
        for w in &targets.workflows {
            self.expect_workflow(&w.name);
        }
    }

    /// Follows the store: whether it answers, and how many jobs need
    /// attention across every daemon that shares it; every `every`.
    pub(crate) async fn watch_store(
        self: Arc<Self>,
        store: Arc<dyn rota_scheduler::JobStore>,
        every: Duration,
    ) {
        loop {
            let s = store.clone();
            let read = tokio::task::spawn_blocking(move || s.jobs()).await;
            match read {
                Ok(Ok(jobs)) => {
                    self.store_up.set(1);
                    let n = jobs.iter().filter(|j| j.needs_attention).count();
                    self.cluster_needing_attention
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                _ => {
                    self.store_up.set(0);
                }
            }
            tokio::time::sleep(every).await;
        }
    }

    /// The text exposition of every family; `counts` (the runner's, once
    /// it runs) updates the job gauge first.
    pub(crate) fn render(&self, counts: Option<JobCounts>) -> String {
        if let Some(c) = counts {
            self.jobs_needing_attention
                .set(i64::try_from(c.needs_attention).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// An error code as a label: codes come from the service, so an odd one
/// (too long, or with characters no Alibaba code has) becomes `other`.
fn code_label(code: &str) -> &str {
    if !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        code
    } else {
        "other"
    }
}

impl CallObserver for Metrics {
    fn observe(&self, call: &Call<'_>) {
        let code = call.error.map(|e| code_label(e.code_or_class()));
        match call.product {
            Product::Kms => {
                self.kms_requests.inc([call.action]);
                if let Some(code) = code {
                    self.kms_errors.inc([call.action, code]);
                }
            }
            product => {
                self.cloud_requests.inc([product.code(), call.action]);
                if let Some(code) = code {
                    self.cloud_errors.inc([product.code(), call.action, code]);
                }
            }
        }
    }
}

/// Outcomes and start lag of the daemon's runs.
impl DaemonObserver for Metrics {
    fn run_started(&self, lag: Duration) {
        self.slot_lag.observe(lag.as_secs_f64());
    }

    fn rotation_finished(&self, plugin: &str, outcome: RunOutcome) {
        self.rotations.inc([plugin, outcome.as_str()]);
    }

    fn workflow_finished(&self, workflow: &str, ok: bool) {
        self.workflow_runs
            .inc([workflow, if ok { "ran" } else { "failed" }]);
    }
}

/// The rotator's history sink with step durations observed on the way.
#[derive(Debug)]
pub(crate) struct MeteredHistory {
    inner: Arc<dyn HistorySink>,
    metrics: Arc<Metrics>,
}

impl MeteredHistory {
    /// `inner`, with every step's duration observed in `metrics`.
    pub(crate) fn new(inner: Arc<dyn HistorySink>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }
}

impl HistorySink for MeteredHistory {
    fn record(&self, event: StepEvent) {
        self.metrics
            .step_seconds
            .get_or_create(&vec![
                ("plugin", event.plugin.clone()),
                ("step", event.step.name().to_owned()),
            ])
            .observe(event.duration.as_secs_f64());
        let ok = event.outcome == rota_rotation::StepOutcome::Ok;
        match event.step {
            rota_rotation::Step::Verify => self
                .metrics
                .verifications
                .inc([&event.plugin, if ok { "passed" } else { "failed" }]),
            rota_rotation::Step::Rollback => self
                .metrics
                .rollbacks
                .inc([&event.plugin, if ok { "ok" } else { "failed" }]),
            _ => {}
        }
        self.inner.record(event);
    }

    fn record_workflow(&self, run: rota_rotation::WorkflowRunRecord) {
        self.inner.record_workflow(run);
    }
}

#[cfg(test)]
mod tests {
    use rota_kms::observe::Observed;
    use rota_kms::{ApiError, ApiRequest, BoxFuture, Error, Transport};
    use rota_rotation::history::{MemoryHistory, StepOutcome};

    use super::*;

    /// Fails `DescribeInstances` with an odd code, `PutSecretValue` with a
    /// permission error, and answers everything else.
    #[derive(Debug)]
    struct Scripted;

    impl Transport for Scripted {
        fn call(&self, request: ApiRequest) -> BoxFuture<'_, Result<serde_json::Value, Error>> {
            Box::pin(async move {
                let code = match &*request.action {
                    "DescribeInstances" => "a code with spaces and a canary-value",
                    "PutSecretValue" => "Forbidden.NoPermission",
                    _ => return Ok(serde_json::json!({"RequestId": "r"})),
                };
                Err(ApiError::new(request.action.to_string(), 403, code, "no", "r", "h").into())
            })
        }

        fn describe(&self) -> String {
            "scripted".into()
        }
    }

    #[tokio::test]
    async fn calls_are_counted_by_product_action_and_code() {
        let m = Arc::new(Metrics::new());
        let t = Observed::new(Arc::new(Scripted), m.clone());
        let mut put = ApiRequest::kms("PutSecretValue");
        put.body("SecretData", "canary-value");
        assert!(t.call(ApiRequest::kms("GetSecretValue")).await.is_ok());
        assert!(t.call(put).await.is_err());
        let ecs = ApiRequest::new(
            Product::Ecs,
            rota_kms::transport::version::ECS,
            "DescribeInstances",
        );
        assert!(t.call(ecs).await.is_err());
        assert_eq!(m.kms_requests.get(["GetSecretValue"]), 1);
        assert_eq!(m.kms_requests.get(["PutSecretValue"]), 1);
        assert_eq!(
            m.kms_errors
                .get(["PutSecretValue", "Forbidden.NoPermission"]),
            1
        );
        assert_eq!(m.cloud_requests.get(["ecs", "DescribeInstances"]), 1);
        assert_eq!(m.cloud_errors.get(["ecs", "DescribeInstances", "other"]), 1);
        assert!(!m.render(None).contains("canary-value"));
    }

    #[test]
    fn steps_are_observed_and_still_recorded() {
        let m = Arc::new(Metrics::new());
        let inner = Arc::new(MemoryHistory::default());
        let h = MeteredHistory::new(inner.clone(), m.clone());
        h.record(StepEvent {
            secret: "app/canary-secret".into(),
            token: "rota-x".into(),
            plugin: "password".into(),
            step: rota_rotation::Step::Set,
            attempt: 1,
            at: chrono::DateTime::UNIX_EPOCH,
            duration: Duration::from_millis(20),
            outcome: StepOutcome::Ok,
            error: None,
        });
        assert_eq!(inner.events().len(), 1);
        let text = m.render(None);
        assert!(
            text.contains(
                "rota_rotation_step_duration_seconds_bucket{le=\"0.025\",plugin=\"password\",step=\"set\"} 1\n"
            ),
            "{text}"
        );
        assert!(!text.contains("canary-secret"), "{text}");
    }

    #[test]
    fn expected_series_start_at_zero_and_the_gauge_follows_the_runner() {
        let m = Metrics::new();
        m.expect_plugin("password");
        m.expect_workflow("compliance");
        m.rotation_finished("password", RunOutcome::Rotated);
        m.workflow_finished("compliance", false);
        m.run_started(Duration::from_millis(30));
        let mut counts = JobCounts::default();
        counts.needs_attention = 2;
        let text = m.render(Some(counts));
        for line in [
            "rota_rotations_total{plugin=\"password\",outcome=\"failed\"} 0\n",
            "rota_rotations_total{plugin=\"password\",outcome=\"rotated\"} 1\n",
            "rota_workflow_runs_total{workflow=\"compliance\",outcome=\"failed\"} 1\n",
            "rota_workflow_runs_total{workflow=\"compliance\",outcome=\"ran\"} 0\n",
            "rota_jobs_needing_attention 2\n",
            "rota_next_slot_lag_seconds_count 1\n",
            "# TYPE rota_next_slot_lag_seconds histogram\n",
            "# TYPE rota_rotations counter\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert!(text.contains(&format!(
            "rota_build_info{{version=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION")
        )));
    }

    #[test]
    fn odd_codes_become_other() {
        assert_eq!(code_label("Throttling.User"), "Throttling.User");
        assert_eq!(code_label("timeout"), "timeout");
        assert_eq!(code_label(""), "other");
        assert_eq!(code_label("has space"), "other");
        assert_eq!(code_label(&"A".repeat(65)), "other");
    }
}
