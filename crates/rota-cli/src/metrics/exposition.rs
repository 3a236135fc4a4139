//! The Prometheus text exposition format, version 0.0.4, for the few metric
//! kinds the daemon needs: counters, gauges and histograms, each a family of
//! series keyed by a fixed number of labels.
//!
//! Written here rather than taken from the `prometheus` crate: the format
//! is a page of rules (`# HELP` and `# TYPE` lines, `name{label="value"}
//! number` samples, three escapes, cumulative `le` buckets with `+Inf`,
//! `_sum` and `_count`), while the crate brings a registry, protobuf
//! support and process collectors the daemon has no use for.
//!
//! The label count is a const generic, so a series with the wrong number of
//! labels does not compile. Series are kept in `BTreeMap`s: the output is
//! sorted by label values and identical for identical state (snapshots).
//! Families are written in the order the caller passes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The `Content-Type` of the format.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family that can write itself.
pub(crate) trait Encode {
    /// Appends the family's `# HELP`, `# TYPE` and sample lines to `out`.
    fn encode(&self, out: &mut String);
}

/// Renders `families` in order.
pub(crate) fn render(families: &[&dyn Encode]) -> String {
    let mut out = String::with_capacity(4096);
    for f in families {
        f.encode(&mut out);
    }
    out
}

/// A family's name, help text and label names.
#[derive(Debug)]
struct Desc<const N: usize> {
    name: &'static str,
    help: &'static str,
    labels: [&'static str; N],
}

impl<const N: usize> Desc<N> {
    /// Checks the names: they are chosen in code, so a bad one is a bug
    /// that the first test constructing the family finds.
    fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        assert!(valid_metric_name(name), "invalid metric name {name:?}");
        for l in labels {
            assert!(
                valid_label_name(l) && l != "le",
                "invalid label name {l:?} in {name}"
            );
        }
        Self { name, help, labels }
    }

    fn header(&self, out: &mut String, kind: &str) {
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {kind}", self.name);
    }

    /// One sample line: `name{labels} value`, with an optional extra label
    /// last (`le` of a bucket).
    fn sample(
        &self,
        out: &mut String,
        suffix: &str,
        values: &[String; N],
        extra: Option<(&str, &str)>,
        value: &str,
    ) {
        out.push_str(self.name);
        out.push_str(suffix);
        let pairs = self
            .labels
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .chain(extra);
        let mut first = true;
        for (name, v) in pairs {
            out.push(if first { '{' } else { ',' });
            first = false;
            out.push_str(name);
            out.push_str("=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        if !first {
            out.push('}');
        }
        out.push(' ');
        out.push_str(value);
        out.push('\n');
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a few arithmetic operations: a panic cannot leave a
    // series half-written in a way that matters.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key<const N: usize>(labels: [&str; N]) -> [String; N] {
    labels.map(str::to_owned)
}

/// A family of monotonically increasing counts.
#[derive(Debug)]
pub(crate) struct CounterVec<const N: usize> {
    desc: Desc<N>,
    series: Mutex<BTreeMap<[String; N], u64>>,
}

impl<const N: usize> CounterVec<N> {
    /// A family named `name` (ending in `_total`) with these label names.
    pub(crate) fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        assert!(
            name.ends_with("_total"),
            "counter {name} must end in _total"
        );
        Self {
            desc: Desc::new(name, help, labels),
            series: Mutex::default(),
        }
    }

    /// Adds one to a series (creating it).
    pub(crate) fn inc(&self, labels: [&str; N]) {
        *lock(&self.series).entry(key(labels)).or_insert(0) += 1;
    }

    /// Creates a series at zero if it does not exist, so that rates over
    /// it start from the first scrape rather than from its first event.
    pub(crate) fn touch(&self, labels: [&str; N]) {
        lock(&self.series).entry(key(labels)).or_insert(0);
    }

    /// A series' value (0 when absent).
    #[cfg(test)]
    pub(crate) fn get(&self, labels: [&str; N]) -> u64 {
        lock(&self.series).get(&key(labels)).copied().unwrap_or(0)
    }
}

impl<const N: usize> Encode for CounterVec<N> {
    fn encode(&self, out: &mut String) {
        self.desc.header(out, "counter");
        for (labels, v) in lock(&self.series).iter() {
            self.desc.sample(out, "", labels, None, &v.to_string());
        }
    }
}

/// A family of values that go up and down.
#[derive(Debug)]
pub(crate) struct GaugeVec<const N: usize> {
    desc: Desc<N>,
    series: Mutex<BTreeMap<[String; N], f64>>,
}

impl<const N: usize> GaugeVec<N> {
    /// A family named `name` with these label names.
    pub(crate) fn new(name: &'static str, help: &'static str, labels: [&'static str; N]) -> Self {
        Self {
            desc: Desc::new(name, help, labels),
            series: Mutex::default(),
        }
    }

    /// Sets a series (creating it).
    pub(crate) fn set(&self, labels: [&str; N], value: f64) {
        lock(&self.series).insert(key(labels), value);
    }
}

impl<const N: usize> Encode for GaugeVec<N> {
    fn encode(&self, out: &mut String) {
        self.desc.header(out, "gauge");
        for (labels, v) in lock(&self.series).iter() {
            self.desc.sample(out, "", labels, None, &float(*v));
        }
    }
}

/// One histogram series: per-bucket counts (not yet cumulative), the count
/// and the sum of observations.
#[derive(Debug, Clone)]
struct Buckets {
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

/// A family of distributions over fixed buckets.
#[derive(Debug)]
pub(crate) struct HistogramVec<const N: usize> {
    desc: Desc<N>,
    bounds: Vec<f64>,
    series: Mutex<BTreeMap<[String; N], Buckets>>,
}

impl<const N: usize> HistogramVec<N> {
    /// A family named `name` with these label names and bucket upper bounds
    /// (finite, strictly increasing; `+Inf` is implied).
    pub(crate) fn new(
        name: &'static str,
        help: &'static str,
        labels: [&'static str; N],
        bounds: &[f64],
    ) -> Self {
        assert!(
            bounds.iter().all(|b| b.is_finite()) && bounds.windows(2).all(|w| w[0] < w[1]),
            "buckets of {name} must be finite and increasing"
        );
        Self {
            desc: Desc::new(name, help, labels),
            bounds: bounds.to_vec(),
            series: Mutex::default(),
        }
    }

    /// Records one observation. NaN is ignored.
    pub(crate) fn observe(&self, labels: [&str; N], value: f64) {
        if value.is_nan() {
            return;
        }
        let mut series = lock(&self.series);
        let b = series.entry(key(labels)).or_insert_with(|| Buckets {
            counts: vec![0; self.bounds.len()],
            count: 0,
            sum: 0.0,
        });
        if let Some(i) = self.bounds.iter().position(|&le| value <= le) {
            b.counts[i] += 1;
        }
        b.count += 1;
        b.sum += value;
    }

    /// A series' observation count (0 when absent).
    #[cfg(test)]
    pub(crate) fn count(&self, labels: [&str; N]) -> u64 {
        lock(&self.series).get(&key(labels)).map_or(0, |b| b.count)
    }
}

impl<const N: usize> Encode for HistogramVec<N> {
    fn encode(&self, out: &mut String) {
        self.desc.header(out, "histogram");
        for (labels, b) in lock(&self.series).iter() {
            let mut cumulative = 0;
            for (le, n) in self.bounds.iter().zip(&b.counts) {
                cumulative += n;
                let le = float(*le);
                self.desc.sample(
                    out,
                    "_bucket",
                    labels,
                    Some(("le", &le)),
                    &cumulative.to_string(),
                );
            }
            self.desc.sample(
                out,
                "_bucket",
                labels,
                Some(("le", "+Inf")),
                &b.count.to_string(),
            );
            self.desc.sample(out, "_sum", labels, None, &float(b.sum));
            self.desc
                .sample(out, "_count", labels, None, &b.count.to_string());
        }
    }
}

/// A sample value as the format spells it (`+Inf`, `-Inf`, `NaN`, else
/// the shortest decimal that reads back as the same number).
fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else if v == f64::INFINITY {
        "+Inf".to_owned()
    } else if v == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        v.to_string()
    }
}

/// `# HELP` text: backslash and line feed escaped.
fn escape_help(s: &str) -> String {
    s.replace('\\', r"\\").replace('\n', r"\n")
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label_value(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
fn valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    !s.starts_with("__")
        && b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_registry_renders_in_the_text_format() {
        let requests = CounterVec::new(
            "demo_requests_total",
            "Requests by action.\nSecond line with a \\ backslash.",
            ["action"],
        );
        requests.inc(["Get"]);
        requests.inc(["Get"]);
        requests.inc(["Put"]);
        requests.touch(["Delete"]);
        let odd = CounterVec::new("demo_odd_total", "Label values that need escapes.", ["v"]);
        odd.inc(["quote \" backslash \\ newline \n end"]);
        odd.inc(["ünïcode"]);
        let up = GaugeVec::new("demo_up", "A gauge with no labels.", []);
        up.set([], 1.0);
        let temp = GaugeVec::new("demo_ratio", "Gauge values.", ["kind"]);
        temp.set(["half"], 0.5);
        temp.set(["inf"], f64::INFINITY);
        temp.set(["neg"], -2.25);
        let latency = HistogramVec::new("demo_seconds", "A histogram.", ["step"], &[0.1, 0.5, 1.0]);
        for v in [0.05, 0.1, 0.3, 2.0] {
            latency.observe(["set"], v);
        }
        latency.observe(["test"], 0.7);
        latency.observe(["test"], f64::NAN);
        let empty = HistogramVec::new("demo_empty_seconds", "No observations yet.", [], &[1.0]);
        insta::assert_snapshot!(render(&[&requests, &odd, &up, &temp, &latency, &empty]));
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_bounds_inclusive() {
        let h = HistogramVec::new("h_seconds", "h", [], &[1.0, 2.0]);
        h.observe([], 1.0);
        h.observe([], 2.0);
        h.observe([], 3.0);
        assert_eq!(h.count([]), 3);
        let text = render(&[&h]);
        assert!(text.contains("h_seconds_bucket{le=\"1\"} 1\n"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"2\"} 2\n"), "{text}");
        assert!(text.contains("h_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("h_seconds_sum 6\n"), "{text}");
    }

    #[test]
    fn names_are_checked() {
        for ok in ["rota_x", "_x", "a:b", "rota_kms_requests_total"] {
            assert!(valid_metric_name(ok), "{ok}");
        }
        for bad in ["", "1x", "a-b", "a b", "é"] {
            assert!(!valid_metric_name(bad), "{bad}");
        }
        for ok in ["plugin", "_x", "a1"] {
            assert!(valid_label_name(ok), "{ok}");
        }
        for bad in ["", "__name", "a:b", "1a", "a-b"] {
            assert!(!valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn floats_use_the_formats_spellings() {
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(0.005), "0.005");
        assert_eq!(float(300.0), "300");
        assert_eq!(float(300.0).parse::<f64>().unwrap(), 300.0);
    }
}
