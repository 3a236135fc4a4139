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
    pub(crate) http_hosts: Vec<String>,
    pub(crate) http: Option<reqwest::Client>,
    pub(crate) secrets: RefCell<Vec<SecretString>>,
    pub(crate) logs: RefCell<Vec<LogLine>>,
    pub(crate) capture_logs: bool,
    /// The call runs speculatively on an async worker thread: anything that
    /// would block or take long stops it with [`OFF_THREAD`] (it is then
    /// run again from the start on a blocking thread), and log lines wait in
    /// `deferred` until the call succeeds.
    pub(crate) speculative: bool,
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
            http_hosts: Vec::new(),
            http: None,
            secrets: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            capture_logs: false,
            speculative: false,
            deferred: RefCell::new(Vec::new()),
        }
    }

    /// Remembers a secret value so it is scrubbed from anything the call emits.
    pub(crate) fn remember(&self, value: &SecretString) {
        if value.len() >= MIN_SCRUB {
            let mut s = self.secrets.borrow_mut();
            if !s.iter().any(|v| v == value) {
                s.push(value.clone());
            }
        }
    }

    /// `text` with every remembered secret value replaced by `***`.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.secrets.borrow().iter() {
            if out.contains(s.expose_secret()) {
                out = out.replace(s.expose_secret(), "***");
            }
        }
        out
    }
}

/// The termination token of a speculative call that must run on a blocking
/// thread instead. `ErrorTerminated` passes through script functions and
/// `try`/`catch` untouched, so the script cannot swallow it.
pub(crate) const OFF_THREAD: &str = "rota:run-on-a-blocking-thread";

/// Operations a speculative call may run before it moves to a blocking
/// thread (about a millisecond of script: an async worker is never held
/// longer).
pub(crate) const SPECULATIVE_OPS: u64 = 10_000;

/// Called by every host function that blocks, waits or computes for long:
/// in a speculative call it stops the call (before any effect) so that it
/// runs again on a blocking thread.
pub(crate) fn needs_thread() -> Result<(), Box<rhai::EvalAltResult>> {
    if with(|e| e.speculative).unwrap_or(false) {
        return Err(rhai::EvalAltResult::ErrorTerminated(
            rhai::Dynamic::from(OFF_THREAD.to_owned()),
            rhai::Position::NONE,
        )
        .into());
    }
    Ok(())
}

/// Whether `err` is a speculative call's request to move to a thread.
pub(crate) fn is_off_thread(err: &rhai::EvalAltResult) -> bool {
    matches!(err, rhai::EvalAltResult::ErrorTerminated(token, _)
        if token.read_lock::<rhai::ImmutableString>().is_some_and(|t| t.as_str() == OFF_THREAD))
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
