//! The per-call environment of a running script, kept in a thread-local so
//! one shared [`rhai::Engine`] can serve every plugin and workflow.
//!
//! Rhai evaluates synchronously on the thread that calls it (a tokio
//! blocking thread), so "the call in progress on this thread" is exact:
//! [`enter`] installs the environment for the duration of one hook call and
//! the engine's `on_progress`, `print`/`debug` callbacks and the host
//! functions read it. It carries the backend clients, the runtime handle
//! host functions `block_on`, the deadline and cancel flag, the script's path
//! and hook (for logs), the HTTP grant, and every secret value the call has
//! seen, so that anything leaving the script (logs, errors, reports) can be
//! scrubbed of them.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rota_clock::{Clock, SystemClock};
use rota_kms::{KmsClient, OpenApi, SecretString};

/// A cancellation flag shared between the async caller and the script.
#[derive(Debug, Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    /// A fresh, unset flag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the script to stop at its next operation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Sets the flag when dropped: a step future dropped by a timeout or a
/// shutdown stops its script.
#[derive(Debug)]
pub(crate) struct CancelOnDrop(Option<CancelFlag>);

impl CancelOnDrop {
    /// Arms the guard for `flag`.
    pub(crate) fn new(flag: CancelFlag) -> Self {
        Self(Some(flag))
    }

    /// The call completed: nothing to cancel.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(f) = &self.0 {
            f.cancel();
        }
    }
}

/// One captured log line (workflows return them in their report).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: &'static str,
    /// The redacted message.
    pub message: String,
}

/// What a call runs with.
pub(crate) struct CallEnv {
    pub(crate) kms: Option<KmsClient>,
    pub(crate) api: Option<OpenApi>,
    pub(crate) handle: Option<tokio::runtime::Handle>,
    pub(crate) deadline: Instant,
    pub(crate) cancel: CancelFlag,
    pub(crate) script: Arc<str>,
    pub(crate) hook: String,
    pub(crate) region: String,
    /// What `time::now` reads.
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) http_hosts: Vec<String>,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) secrets: RefCell<Vec<SecretString>>,
    /// What [`CallEnv::redact`] replaces: every remembered value and its
    /// encodings, longest first.
    pub(crate) scrub: RefCell<Vec<SecretString>>,
    pub(crate) logs: RefCell<Vec<LogLine>>,
    pub(crate) capture_logs: bool,
    /// The call runs speculatively on an async worker thread: anything that
    /// would block or take long stops it with [`OFF_THREAD`] (it is then
    /// run again from the start on a blocking thread), and log lines wait in
    /// `deferred` until the call succeeds.
    pub(crate) speculative: bool,
    /// Set (for good) once a speculative call has to move: every later
    /// check stops it again, so a stop swallowed on the way out (Rhai wraps
    /// errors of closures called by `map`, `filter`, … in a catchable
    /// error) still ends the run, and the caller re-runs it whatever the
    /// script returned.
    pub(crate) moved: std::cell::Cell<bool>,
    /// When the call started (the speculative time budget).
    pub(crate) started: Instant,
    pub(crate) deferred: RefCell<Vec<Box<dyn FnOnce()>>>,
}

impl CallEnv {
    /// An environment with no backend (unit tests, `rota plugins check`).
    pub(crate) fn bare(script: Arc<str>, hook: &str, deadline: Instant) -> Self {
        Self {
            kms: None,
            api: None,
            handle: None,
            deadline,
            cancel: CancelFlag::new(),
            script,
            hook: hook.to_owned(),
            region: String::new(),
            clock: Arc::new(SystemClock::new()),
            http_hosts: Vec::new(),
            http: None,
            secrets: RefCell::new(Vec::new()),
            scrub: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            capture_logs: false,
            speculative: false,
            moved: std::cell::Cell::new(false),
            started: Instant::now(),
            deferred: RefCell::new(Vec::new()),
        }
    }

    /// Remembers a secret value so it — and its common encodings — are
    /// scrubbed from anything the call emits.
    pub(crate) fn remember(&self, value: &SecretString) {
        if value.len() >= MIN_SCRUB {
            let mut s = self.secrets.borrow_mut();
            if !s.iter().any(|v| v == value) {
                s.push(value.clone());
                self.scrub
                    .borrow_mut()
                    .extend(encodings(value.expose_secret()));
            }
        }
    }

    /// `text` with every remembered secret value, and each of its common
    /// encodings, replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.scrub.borrow().iter() {
            if out.contains(s.expose_secret()) {
                out = out.replace(s.expose_secret(), "***");
            }
        }
        out
    }
}

/// `value` and the forms it takes when a script or a library transforms it
/// on the way out: percent-encoded (URL paths and queries, upper- and
/// lower-case hex, `+` for spaces), JSON-escaped, Base64 (standard and
/// URL-safe, with and without padding) and hex (both cases). Longest first,
/// so a longer form is replaced before a shorter one inside it.
fn encodings(value: &str) -> Vec<SecretString> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = value.as_bytes();
    let mut forms = vec![value.to_owned()];
    let mut pct_upper = String::new();
    let mut pct_form = String::new();
    for b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            pct_upper.push(char::from(*b));
            pct_form.push(char::from(*b));
        } else {
            pct_upper.push_str(&format!("%{b:02X}"));
            if *b == b' ' {
                pct_form.push('+');
            } else {
                pct_form.push_str(&format!("%{b:02X}"));
            }
        }
    }
    forms.push(lower_case_escapes(&pct_upper));
    forms.push(pct_upper);
    forms.push(pct_form);
    if let Ok(json) = serde_json::to_string(value) {
        forms.push(json.trim_matches('"').to_owned());
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        forms.push(engine.encode(bytes));
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    forms.push(hex.to_ascii_uppercase());
    forms.push(hex);
    forms.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    forms.dedup();
    forms
        .into_iter()
        .filter(|f| f.len() >= MIN_SCRUB)
        .map(SecretString::new)
        .collect()
}

/// `text` with the hex digits of its `%XX` escapes in lower case.
fn lower_case_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut escape = 0;
    for c in text.chars() {
        if c == '%' {
            escape = 2;
            out.push(c);
        } else if escape > 0 {
            escape -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The termination token of a speculative call that must run on a blocking
/// thread instead. `ErrorTerminated` passes through script functions and
/// `try`/`catch` untouched, so the script cannot swallow it.
pub(crate) const OFF_THREAD: &str = "rota:run-on-a-blocking-thread";

/// Operations and time a speculative call may take before it moves to a
/// blocking thread: an async worker is not held longer than about a
/// millisecond (checked every 16 operations; single native calls on large
/// inputs move at once, see [`needs_thread_for`]).
pub(crate) const SPECULATIVE_OPS: u64 = 10_000;
const SPECULATIVE_TIME: std::time::Duration = std::time::Duration::from_millis(1);

/// Input sizes above which a native call moves a speculative call first.
const SPECULATIVE_BYTES: usize = 64 * 1024;

/// The token a speculative call is stopped with.
pub(crate) fn off_thread_token() -> rhai::Dynamic {
    rhai::Dynamic::from(OFF_THREAD.to_owned())
}

/// Called by every host function that blocks, waits or computes for long:
/// in a speculative call it stops the call (before any effect) so that it
/// runs again on a blocking thread.
pub(crate) fn needs_thread() -> Result<(), Box<rhai::EvalAltResult>> {
    let speculative = with(|e| {
        if e.speculative {
            e.moved.set(true);
        }
        e.speculative
    })
    .unwrap_or(false);
    if speculative {
        return Err(
            rhai::EvalAltResult::ErrorTerminated(off_thread_token(), rhai::Position::NONE).into(),
        );
    }
    Ok(())
}

/// [`needs_thread`] for a native call whose cost grows with `len` bytes of
/// input: only large inputs move.
pub(crate) fn needs_thread_for(len: usize) -> Result<(), Box<rhai::EvalAltResult>> {
    if len > SPECULATIVE_BYTES {
        needs_thread()
    } else {
        Ok(())
    }
}

/// Checked by `on_progress`: whether a speculative call has run long
/// enough (or already had to move) and must stop now.
pub(crate) fn speculation_over(ops: u64) -> bool {
    with(|e| {
        if !e.speculative {
            return false;
        }
        if !e.moved.get() && (ops >= SPECULATIVE_OPS || e.started.elapsed() > SPECULATIVE_TIME) {
            e.moved.set(true);
        }
        e.moved.get()
    })
    .unwrap_or(false)
}

/// Emits a log line now, or, in a speculative call, when it succeeds.
pub(crate) fn emit(f: impl FnOnce() + 'static) {
    let mut f = Some(f);
    with(|e| {
        if e.speculative
            && let Some(f) = f.take()
        {
            e.deferred.borrow_mut().push(Box::new(f));
        }
    });
    if let Some(f) = f {
        f();
    }
}

/// Values shorter than this are not scrubbed (they would mangle ordinary
/// text); generated secrets are far longer.
const MIN_SCRUB: usize = 4;

thread_local! {
    static CURRENT: RefCell<Option<Rc<CallEnv>>> = const { RefCell::new(None) };
    static LAST_POSITION: std::cell::Cell<rhai::Position> = const { std::cell::Cell::new(rhai::Position::NONE) };
}

/// Notes the position of the node being evaluated (the engine's debugger hook).
pub(crate) fn note_position(pos: rhai::Position) {
    if !pos.is_none() {
        LAST_POSITION.with(|p| p.set(pos));
    }
}

/// The position of the last node evaluated on this thread.
pub(crate) fn last_position() -> rhai::Position {
    LAST_POSITION.with(std::cell::Cell::get)
}

/// Removes the environment when the call ends, even by panic.
pub(crate) struct Entered(Option<Rc<CallEnv>>);

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Installs `env` on this thread until the guard drops.
pub(crate) fn enter(env: Rc<CallEnv>) -> Entered {
    LAST_POSITION.with(|p| p.set(rhai::Position::NONE));
    let previous = CURRENT.with(|c| c.borrow_mut().replace(env));
    Entered(previous)
}

/// Runs `f` with the current environment, if a call is in progress.
pub(crate) fn with<R>(f: impl FnOnce(&CallEnv) -> R) -> Option<R> {
    let env = CURRENT.with(|c| c.borrow().clone())?;
    Some(f(&env))
}

/// Scrubs `text` of the current call's secrets (identity outside a call).
pub(crate) fn redact(text: &str) -> String {
    with(|e| e.redact(text)).unwrap_or_else(|| text.to_owned())
}

/// The reason `on_progress` stops a script.
pub(crate) enum Stop {
    Deadline,
    Cancelled,
}

/// Checked by the engine's `on_progress`.
pub(crate) fn should_stop() -> Option<Stop> {
    with(|e| {
        if e.cancel.is_cancelled() {
            Some(Stop::Cancelled)
        } else if Instant::now() > e.deadline {
            Some(Stop::Deadline)
        } else {
            None
        }
    })
    .flatten()
}

#[cfg(test)]
mod tests {
    use super::encodings;

    #[test]
    fn every_common_encoding_of_a_value_is_scrubbed() {
        let forms: Vec<String> = encodings("can\"ary/x y+1")
            .iter()
            .map(|s| s.expose_secret().to_owned())
            .collect();
        for want in [
            "can\"ary/x y+1",
            "can%22ary%2Fx%20y%2B1",
            "can%22ary%2fx%20y%2b1",
            "can%22ary%2Fx+y%2B1",
            "can\\\"ary/x y+1",
            "Y2FuImFyeS94IHkrMQ==",
            "Y2FuImFyeS94IHkrMQ",
            "63616e226172792f7820792b31",
            "63616E226172792F7820792B31",
        ] {
            assert!(
                forms.iter().any(|f| f == want),
                "{want} missing from {forms:?}"
            );
        }
        // Longest first, no duplicates.
        assert!(
            forms
                .windows(2)
                .all(|w| w[0].len() >= w[1].len() && w[0] != w[1])
        );
    }
}
