//! Rota's rotation: everything between a scheduler slot and a secret whose
//! ACSCurrent holds a new value the target accepts.
//!
//! - [`protocol`]: the resumable `create → set → test → finish` protocol of
//!   rotation.md ([`Rotator`]), one token per rotation;
//! - [`plugin`]: the plugin contract ([`RotationPlugin`], [`StepContext`],
//!   the [`PluginRegistry`]) with settings schemas ([`settings`]); Rhai
//!   plugins (rota-script), native plugins (rota-plugin-host) and the
//!   built-in [`password`] and [`managed`] plugins implement it;
//! - [`target`]: what the daemon schedules ([`RotationTarget`],
//!   [`WorkflowTarget`]) and the typed job names ([`JobKind`]);
//! - [`jobs`]: a rotation under the per-secret lock ([`lease`]), and the
//!   mapping from a scheduler run to a protocol request;
//! - [`history`]: every protocol step and workflow run, durably;
//!   [`report`]: the rows `rota status` and `rota history` show;
//! - [`daemon`]: the daemon core — jobs kept in step with the targets, the
//!   scheduler's handler, `--once` passes, needs-attention webhooks;
//! - [`notify`]: `on_failure` webhooks; [`crash`]: the crash points tests
//!   abort at.
//!
//! It depends on rota-kms (the client every step calls) and rota-scheduler
//! (jobs and clocks), never on HCL: the configuration is read elsewhere
//! (rota-engine) and handed in as targets.
#![forbid(unsafe_code)]

pub mod adoption;
pub mod crash;
pub mod daemon;
pub mod error;
pub mod events;
pub mod history;
pub mod history_pg;
pub mod jobs;
pub mod lease;
pub mod managed;
pub mod notify;
pub mod password;
pub mod plugin;
pub mod protocol;
pub mod report;
pub mod settings;
pub mod target;
pub mod verify;

pub use crash::{CrashHook, CrashPoint};
pub use daemon::{
    Daemon, DaemonError, DaemonObserver, DaemonOptions, NoWorkflows, OnceReport, RunOutcome,
    Targets, WorkflowOutput, WorkflowRunner,
};
pub use history::{
    HistorySink, HistoryStore, MemoryHistory, NoHistory, SqliteHistory, StepEvent, StepOutcome,
    StoredStep, WorkflowRunRecord,
};
pub use history_pg::PgHistory;
pub use jobs::{JobPayload, RotationJobs, RunRotationError};
pub use lease::{LockError, SecretLock, SecretLocks};
pub use notify::{FailureNotice, NoticeKind, Notifier, NotifyError};
pub use plugin::{
    PluginDescriptor, PluginError, PluginRegistry, RegistryError, RotationPlugin, SecretInfo,
    StepContext, StepSet, Strategy,
};
pub use protocol::{
    DryRunReport, FailureKind, Fence, FenceCheck, RotationError, RotationOutcome, RotationRequest,
    Rotator, Step, manual_token, slot_token,
};
pub use settings::{SettingField, SettingKind, SettingsError, SettingsSchema};
pub use target::{AUTO_NAME, JobKind, OnFailure, RotationTarget, WorkflowTarget};

// The client types in the plugin contract's signatures, re-exported so plugin
// hosts (rota-plugin-host) implement it without depending on rota-kms.
pub use rota_kms::{BoxFuture, OpenApi, SecretString};
