//! Typed errors: [`LoadError`] when a plugin or workflow is refused at load
//! time, [`ScriptError`] when a hook or a workflow fails while running. Both
//! name the file, and where Rhai knows it the line and column; a
//! [`ScriptError`] names the hook. Messages are scrubbed of the call's
//! secret values before they are built.

use std::fmt;
use std::path::PathBuf;

use rhai::EvalAltResult;
use rota_rotation::PluginError;

/// Why a plugin or workflow cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `plugin.toml` is not valid TOML or does not follow the manifest format.
    #[error("{path}: invalid plugin manifest: {message}")]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong (with line and column from the TOML parser).
        message: String,
    },
    /// A setting of the manifest is wrong.
    #[error("{path}: setting {setting:?}: {message}")]
    Setting {
        /// The manifest.
        path: PathBuf,
        /// The setting.
        setting: String,
        /// What is wrong.
        message: String,
    },
    /// The script does not parse.
    #[error("{path}:{line}:{column}: syntax error: {message}")]
    Syntax {
        /// The script.
        path: PathBuf,
        /// Line (1-based; 0 when unknown).
        line: usize,
        /// Column (1-based; 0 when unknown).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// A required hook is not defined.
    #[error(
        "{path}: missing hook `{hook}`: define `fn {hook}(ctx) {{ … }}` (required hooks: {required})"
    )]
    MissingHook {
        /// The script.
        path: PathBuf,
        /// The hook.
        hook: &'static str,
        /// All required hooks.
        required: &'static str,
    },
    /// A hook is defined with the wrong parameters.
    #[error("{path}: hook `{hook}` must take exactly one parameter (ctx), not {params}")]
    HookArity {
        /// The script.
        path: PathBuf,
        /// The hook.
        hook: String,
        /// How many it takes.
        params: usize,
    },
    /// A workflow's settings are not an object.
    #[error("{path}: workflow settings must be a map of name = value")]
    WorkflowSettings {
        /// The script.
        path: PathBuf,
    },
}

/// What kind of failure a [`ScriptError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScriptErrorKind {
    /// The script threw (`throw "…"`), or a host function failed.
    Thrown,
    /// A runtime error (unknown variable or function, type mismatch, …).
    Runtime,
    /// A limit was hit: operations, call depth, string/array/map size.
    Limit,
    /// The deadline passed.
    Deadline,
    /// The caller cancelled.
    Cancelled,
    /// The hook returned a value of the wrong type.
    BadReturn,
}

/// A failed hook or workflow run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScriptError {
    /// The script.
    pub path: String,
    /// The hook (`set`, …, or `run` for workflows).
    pub hook: String,
    /// Line (1-based), when known.
    pub line: Option<usize>,
    /// Column (1-based), when known.
    pub column: Option<usize>,
    /// What kind of failure.
    pub kind: ScriptErrorKind,
    /// What happened, scrubbed of secret values.
    pub message: String,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": in hook `{}`: {}", self.hook, self.message)
    }
}

impl ScriptError {
    pub(crate) fn new(path: &str, hook: &str, kind: ScriptErrorKind, message: String) -> Self {
        Self {
            path: path.to_owned(),
            hook: hook.to_owned(),
            line: None,
            column: None,
            kind,
            message,
        }
    }

    /// Converts a Rhai evaluation error, innermost position first.
    pub(crate) fn from_eval(path: &str, hook: &str, err: &EvalAltResult) -> Self {
        // Errors inside called functions are wrapped; the innermost one says where.
        // The innermost known position wins.
        let mut inner = err;
        let mut pos = err.position();
        while let EvalAltResult::ErrorInFunctionCall(_, _, e, _) = inner {
            inner = e;
            if !inner.position().is_none() {
                pos = inner.position();
            }
        }
        if pos.is_none() {
            pos = crate::env::last_position();
        }
        let (kind, message) = match inner {
            EvalAltResult::ErrorRuntime(v, _) => (ScriptErrorKind::Thrown, display_thrown(v)),
            EvalAltResult::ErrorTerminated(v, _) => {
                if v.clone().try_cast::<String>().as_deref() == Some(CANCELLED) {
                    (
                        ScriptErrorKind::Cancelled,
                        "the script was cancelled".to_owned(),
                    )
                } else {
                    (
                        ScriptErrorKind::Deadline,
                        "the script was stopped at the step's deadline".to_owned(),
                    )
                }
            }
            EvalAltResult::ErrorTooManyOperations(_) => (
                ScriptErrorKind::Limit,
                "the script was stopped: too many operations (limit reached)".to_owned(),
            ),
            EvalAltResult::ErrorStackOverflow(_) => (
                ScriptErrorKind::Limit,
                "the script was stopped: call depth limit reached (runaway recursion?)".to_owned(),
            ),
            EvalAltResult::ErrorDataTooLarge(what, _) => (
                ScriptErrorKind::Limit,
                format!("the script was stopped: {what} over the limit"),
            ),
            other => (ScriptErrorKind::Runtime, other.to_string()),
        };
        Self {
            path: path.to_owned(),
            hook: hook.to_owned(),
            line: pos.line(),
            column: pos.position(),
            kind,
            message: crate::env::redact(&message),
        }
    }

    /// The engine's error for this failure: limits and bad return values
    /// are permanent (the same script fails the same way), the rest may
    /// pass on a retry.
    pub fn to_plugin_error(&self) -> PluginError {
        match self.kind {
            ScriptErrorKind::Limit | ScriptErrorKind::BadReturn => {
                PluginError::permanent(self.to_string())
            }
            _ => PluginError::failed(self.to_string()),
        }
    }
}

/// The `on_progress` token of a cancellation.
pub(crate) const CANCELLED: &str = "cancelled";

/// What a `throw` shows: a thrown string (scrubbed later), a map's
/// `message` string, else only the value's type — an array or map could
/// carry a value in pieces (one character per element) that no scrubbing
/// recognises.
fn display_thrown(v: &rhai::Dynamic) -> String {
    if v.is_string() {
        v.clone().into_string().unwrap_or_default()
    } else if v.is::<crate::secret::Secret>() {
        "***".to_owned()
    } else if let Some(m) = v.read_lock::<rhai::Map>()
        && let Some(msg) = m.get("message").filter(|m| m.is_string())
    {
        msg.to_string()
    } else if v.is_int() || v.is_bool() || v.is_float() || v.is_unit() {
        v.to_string()
    } else {
        format!(
            "the script threw a value of type {} (only a thrown string, or a map's message, is shown)",
            v.type_name()
        )
    }
}
