//! [`ScriptRuntime`]: one hardened engine, the compiled-AST cache, and the
//! call path every hook and workflow goes through.
//!
//! Scripts compile once into an `AST` cached by path and content hash; a
//! changed file compiles again on the next [`ScriptRuntime::compile_file`]
//! (what `rota run` does before each run). A call runs on a tokio blocking
//! thread (Rhai is synchronous) inside a [`crate::env`] environment whose
//! runtime handle the host functions `block_on`; dropping the call's
//! future cancels the script at its next operation check. A rotation hook
//! first runs speculatively on the calling thread: most hooks that do not
//! wait finish there in microseconds; the first host call that would block,
//! or 10,000 operations, stops it before any effect and it runs again from
//! the start on a blocking thread (its deferred log lines are dropped). A
//! hook whose speculative run had to move skips speculation for its next
//! 31 calls, so hooks that always wait do not pay for it each time.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use rhai::{AST, CallFnOptions, Dynamic, Engine, Scope};
use rota_clock::{Clock, SystemClock};
use rota_kms::{KmsClient, OpenApi};
use sha2::{Digest as _, Sha256};

use crate::engine::{Limits, build_engine};
use crate::env::{self, CallEnv, CancelFlag, CancelOnDrop, LogLine};
use crate::error::{LoadError, ScriptError, ScriptErrorKind};

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Engine limits.
    pub limits: Limits,
    /// The default region of `ecs::` calls (the configured region).
    pub region: String,
    /// What `time::now` reads (default: the system clock).
    pub clock: Arc<dyn Clock>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            region: String::new(),
            clock: Arc::new(SystemClock::new()),
        }
    }
}

struct Cached {
    hash: [u8; 32],
    ast: Arc<AST>,
}

/// The engine and the AST cache, shared by every plugin and workflow.
pub struct ScriptRuntime {
    engine: Engine,
    region: String,
    clock: Arc<dyn Clock>,
    http: OnceLock<Option<reqwest::Client>>,
    cache: Mutex<HashMap<PathBuf, Cached>>,
}

impl std::fmt::Debug for ScriptRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRuntime")
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Calls of a hook that go straight to a blocking thread after its
/// speculative run had to move there; then it is tried again.
const SKIP_AFTER_MOVE: u32 = 31;

/// One call of a script function.
pub(crate) struct CallSpec {
    pub(crate) script: Arc<str>,
    pub(crate) hook: String,
    pub(crate) kms: Option<KmsClient>,
    pub(crate) api: Option<OpenApi>,
    pub(crate) deadline: Instant,
    pub(crate) cancel: CancelFlag,
    pub(crate) http_hosts: Vec<String>,
    pub(crate) capture_logs: bool,
    /// Whether to build the JSON report of the returned value.
    pub(crate) report: bool,
    /// Whether the call may first run speculatively on the calling (async)
    /// thread: rotation hooks, most of which never block, save the round
    /// trip to a blocking thread. The cell counts calls still to skip
    /// speculation after it last failed, so a hook that always blocks does
    /// not pay for a wasted attempt each time.
    pub(crate) speculate: Option<Arc<AtomicU32>>,
    /// Builds the argument inside the call's environment, so the secrets it
    /// holds are remembered for redaction (called again when a speculative
    /// call moves to a blocking thread).
    pub(crate) arg: Box<dyn Fn() -> Dynamic + Send + Sync>,
    /// The span the script's log lines belong to (a rotation step's, with
    /// the secret and token), entered on whichever thread runs the call.
    pub(crate) span: tracing::Span,
}

/// What a call returned.
pub(crate) struct CallOutput {
    pub(crate) value: Dynamic,
    /// The value as JSON for reports: secrets as `***`, and every string
    /// scrubbed of the call's secret values.
    pub(crate) report: serde_json::Value,
    pub(crate) logs: Vec<LogLine>,
}

impl ScriptRuntime {
    /// A runtime with the hardened engine.
    pub fn new(options: RuntimeOptions) -> Arc<Self> {
        Arc::new(Self {
            engine: build_engine(&options.limits),
            region: options.region,
            clock: options.clock,
            http: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The engine (tests and the bench use it directly).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Compiles `source`, labelled `path` in errors and logs.
    pub fn compile_source(&self, path: &Path, source: &str) -> Result<AST, LoadError> {
        let mut ast = self.engine.compile(source).map_err(|e| {
            let pos = e.position();
            LoadError::Syntax {
                path: path.to_owned(),
                line: pos.line().unwrap_or(0),
                column: pos.position().unwrap_or(0),
                message: match e.err_type() {
                    rhai::ParseErrorType::Reserved(word) if word == "import" || word == "eval" => {
                        format!(
                            "`{word}` is not allowed in Rota scripts: the host modules (kms::, http::, json::, …) are always available"
                        )
                    }
                    other => other.to_string(),
                },
            }
        })?;
        ast.set_source(path.display().to_string());
        Ok(ast)
    }

    /// Compiles the file at `path`, or returns the cached AST if its content
    /// has not changed. The flag says whether it was (re)compiled.
    pub fn compile_file(&self, path: &Path) -> Result<(Arc<AST>, bool), LoadError> {
        let source = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let hash: [u8; 32] = Sha256::digest(source.as_bytes()).into();
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = cache.get(path)
            && c.hash == hash
        {
            return Ok((c.ast.clone(), false));
        }
        let ast = Arc::new(self.compile_source(path, &source)?);
        cache.insert(
            path.to_owned(),
            Cached {
                hash,
                ast: ast.clone(),
            },
        );
        Ok((ast, true))
    }

    fn http_client(&self) -> Option<reqwest::Client> {
        self.http
            .get_or_init(|| crate::host::http_client().ok())
            .clone()
    }

    /// Calls `spec.hook` in `ast` on the current thread (the caller is a
    /// blocking thread, or a test or bench without a runtime). With
    /// `speculative`, the call must not block: it returns `None` as soon as
    /// the script needs to (a host call that waits, a long computation),
    /// before any effect, and nothing it logged is emitted.
    pub(crate) fn call_blocking(
        &self,
        ast: &AST,
        spec: &CallSpec,
        handle: Option<tokio::runtime::Handle>,
        speculative: bool,
    ) -> Option<Result<CallOutput, ScriptError>> {
        // A speculative call never sends (it moves first): no client, which
        // the first time would be built (certificates read) on this thread.
        let http = if spec.http_hosts.is_empty() || speculative {
            None
        } else {
            self.http_client()
        };
        let _span = spec.span.enter();
        let call_env = Rc::new(CallEnv {
            kms: spec.kms.clone(),
            api: spec.api.clone(),
            handle,
            http,
            http_hosts: spec.http_hosts.clone(),
            region: self.region.clone(),
            clock: self.clock.clone(),
            capture_logs: spec.capture_logs,
            cancel: spec.cancel.clone(),
            speculative,
            ..CallEnv::bare(spec.script.clone(), &spec.hook, spec.deadline)
        });
        let _entered = env::enter(call_env.clone());
        let arg = (spec.arg)();
        let mut scope = Scope::new();
        let options = CallFnOptions::new().eval_ast(false).rewind_scope(false);
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut scope,
            ast,
            &spec.hook,
            (arg,),
        );
        if speculative {
            if call_env.moved.get() {
                return None;
            }
            for line in call_env.deferred.take() {
                line();
            }
        }
        let logs = call_env.logs.take();
        Some(match result {
            Ok(value) => {
                let report = if spec.report {
                    crate::convert::scrub(crate::convert::to_json_redacted(&value), &|t| {
                        call_env.redact(t)
                    })
                } else {
                    serde_json::Value::Null
                };
                Ok(CallOutput {
                    value,
                    report,
                    logs,
                })
            }
            Err(e) => Err(ScriptError::from_eval(&spec.script, &spec.hook, &e)),
        })
    }

    /// The speculative run of a call, a panic in it reported like one on a
    /// blocking thread.
    fn speculate(&self, ast: &AST, spec: &CallSpec) -> Option<Result<CallOutput, ScriptError>> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.call_blocking(ast, spec, None, true)
        }))
        .unwrap_or_else(|_| {
            Some(Err(ScriptError::new(
                &spec.script,
                &spec.hook,
                ScriptErrorKind::Runtime,
                "the script's host call panicked".to_owned(),
            )))
        })
    }

    /// Calls `spec.hook` on a blocking thread; dropping the future cancels it.
    pub(crate) async fn call(
        self: &Arc<Self>,
        ast: Arc<AST>,
        spec: CallSpec,
    ) -> Result<CallOutput, ScriptError> {
        if let Some(skip) = &spec.speculate {
            let left = skip.load(Ordering::Relaxed);
            if left > 0 {
                skip.store(left - 1, Ordering::Relaxed);
            } else if let Some(done) = self.speculate(&ast, &spec) {
                return done;
            } else {
                skip.store(SKIP_AFTER_MOVE, Ordering::Relaxed);
            }
        }
        let handle = tokio::runtime::Handle::try_current().ok();
        let guard = CancelOnDrop::new(spec.cancel.clone());
        let (script, hook) = (spec.script.clone(), spec.hook.clone());
        let this = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            this.call_blocking(&ast, &spec, handle, false)
                .unwrap_or_else(|| {
                    Err(ScriptError::new(
                        &spec.script,
                        &spec.hook,
                        ScriptErrorKind::Runtime,
                        "the call stopped to move threads outside a speculative run".to_owned(),
                    ))
                })
        })
        .await;
        guard.disarm();
        match joined {
            Ok(r) => r,
            Err(e) => Err(ScriptError::new(
                &script,
                &hook,
                ScriptErrorKind::Runtime,
                if e.is_panic() {
                    "the script's host call panicked".to_owned()
                } else {
                    "the script's thread was cancelled".to_owned()
                },
            )),
        }
    }
}
