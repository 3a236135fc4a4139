//! The one hardened factory every Rhai engine in Rota comes from (style.md
//! rule 11, after apollographql/router's `rhai/engine`):
//!
//! - `Engine::new_raw()` plus only the packages scripts need (core language,
//!   logic, maths, strings, arrays, maps) — no time, no blobs, no bit fields;
//! - limits on operations, call depth, expression depth, string, array and
//!   map sizes, always set ([`Limits`]);
//! - strict variables; `eval` disabled; no module resolver (no `import`);
//! - `print`/`debug` into tracing, with the script's path and hook, scrubbed
//!   of the call's secret values;
//! - an `on_progress` check that stops the script at the step's deadline or
//!   when the caller cancels (every 256 operations, so the check costs
//!   nothing measurable);
//! - a debugger hook that notes the position of every evaluated node, so an
//!   error Rhai reports without a position still names its line;
//! - the `Secret` type and the host modules, registered by
//!   [`crate::host::register`], the same function in production and tests.

use rhai::packages::{
    BasicArrayPackage, BasicMapPackage, BasicMathPackage, CorePackage, LogicPackage,
    MoreStringPackage, Package as _,
};
use rhai::{Dynamic, Engine};

use crate::env::{self, Stop};

/// The limits every engine enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Operations per call (a runaway loop stops here if the deadline is far).
    pub max_operations: u64,
    /// Function call depth.
    pub max_call_levels: usize,
    /// Expression nesting depth (global level).
    pub max_expr_depth: usize,
    /// Expression nesting depth inside functions.
    pub max_function_expr_depth: usize,
    /// Bytes in one string.
    pub max_string_size: usize,
    /// Elements in one array.
    pub max_array_size: usize,
    /// Entries in one map.
    pub max_map_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_operations: 50_000_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            max_function_expr_depth: 32,
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 10_000,
        }
    }
}

/// Builds an engine with `limits` and the host modules.
pub fn build_engine(limits: &Limits) -> Engine {
    let mut engine = Engine::new_raw();
    for pkg in [
        CorePackage::new().as_shared_module(),
        LogicPackage::new().as_shared_module(),
        BasicMathPackage::new().as_shared_module(),
        MoreStringPackage::new().as_shared_module(),
        BasicArrayPackage::new().as_shared_module(),
        BasicMapPackage::new().as_shared_module(),
    ] {
        engine.register_global_module(pkg);
    }
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_modules(0)
        .set_strict_variables(true);
    engine.disable_symbol("eval");
    // `import` would only fail at run time ("too many modules"), or never
    // when written at the top level: refuse it when the script loads.
    engine.disable_symbol("import");
    engine.on_progress(|ops| {
        if ops & 0xf != 0 {
            return None;
        }
        if env::speculation_over(ops) {
            return Some(env::off_thread_token());
        }
        if ops & 0xff != 0 {
            return None;
        }
        match env::should_stop()? {
            Stop::Deadline => Some(Dynamic::from("deadline".to_owned())),
            Stop::Cancelled => Some(Dynamic::from(crate::error::CANCELLED.to_owned())),
        }
    });
    engine.on_print(|text| {
        let (script, hook) = where_am_i();
        let text = env::redact(text);
        capture("info", &text);
        env::emit(move || {
            tracing::info!(script.path = %script, script.hook = %hook, "{text}");
        });
    });
    engine.on_debug(|text, _source, pos| {
        let (script, hook) = where_am_i();
        let text = env::redact(text);
        let line = pos.line().unwrap_or(0);
        capture("debug", &text);
        env::emit(move || {
            tracing::debug!(script.path = %script, script.hook = %hook, script.line = line, "{text}");
        });
    });
    // Rhai reports limit and host errors at the outermost call site (or
    // nowhere); a debugger hook that notes every evaluated node's position
    // lets errors name the line the script was really on.
    #[allow(deprecated)] // "volatile", not deprecated (Rhai marks it so)
    engine.register_debugger(
        |_, debugger| debugger,
        |_, event, _, _, pos| {
            if matches!(event, rhai::debugger::DebuggerEvent::Step) {
                env::note_position(pos);
            }
            Ok(rhai::debugger::DebuggerCommand::StepInto)
        },
    );
    crate::secret::register(&mut engine);
    crate::host::register(&mut engine);
    engine
}

fn where_am_i() -> (String, String) {
    env::with(|e| (e.script.to_string(), e.hook.clone())).unwrap_or_default()
}

/// Keeps a (redacted) log line in the call's report when it captures logs.
pub(crate) fn capture(level: &'static str, message: &str) {
    env::with(|e| {
        if e.capture_logs {
            e.logs.borrow_mut().push(env::LogLine {
                level,
                message: message.to_owned(),
            });
        }
    });
}
