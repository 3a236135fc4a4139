//! Rota's Rhai layer: rotation hooks written as Rhai plugins, and
//! lifecycle workflows run on cron.
//!
//! - [`engine`]: the one hardened engine factory (style.md rule 11) and its
//!   [`Limits`];
//! - [`ScriptRuntime`]: that engine plus the compiled-AST cache and the call
//!   path (a blocking thread, the deadline and cancellation, redaction);
//! - [`host`](crate::host) (private): the namespaced host modules `kms::`, `cloud::`,
//!   `ecs::`, `rds::`, `ram::`, `password::`, `ssh::`, `json::`, `base64::`,
//!   `time::`, `log::`, `http::`;
//! - [`Secret`]: how secret values reach scripts (prints as `***`);
//! - [`ScriptPlugin`] and [`discover`]: plugin folders (`plugin.toml` +
//!   `hooks.rhai`) implementing the engine's `RotationPlugin`;
//! - [`Workflow`]: a script's `run(ctx)`, returning a [`WorkflowReport`].
//!
//! Depends on `rota-engine` (the plugin contract) and `rota-kms` (the
//! clients host functions call) only. Prints nothing; logs go to tracing.
#![forbid(unsafe_code)]

mod convert;
pub mod engine;
mod env;
mod error;
mod host;
pub mod manifest;
mod plugin;
mod runtime;
mod secret;
mod workflow;

pub use engine::{Limits, build_engine};
pub use env::{CancelFlag, LogLine};
pub use error::{LoadError, ScriptError, ScriptErrorKind};
pub use manifest::Manifest;
pub use plugin::{HOOKS, MANIFEST, OPTIONAL_HOOKS, REQUIRED_HOOKS, ScriptPlugin, discover};
pub use runtime::{RuntimeOptions, ScriptRuntime};
pub use secret::Secret;
pub use workflow::{Workflow, WorkflowContext, WorkflowReport};
