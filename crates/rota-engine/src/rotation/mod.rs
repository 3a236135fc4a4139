//! Rotation: the resumable four-step protocol ([`protocol`]), the plugin
//! contract ([`plugin`]) with settings schemas ([`settings`]), the built-in
//! `password` and `managed` plugins, crash injection points ([`crash`]) and
//! the step history ([`history`]), rotations as scheduler jobs ([`jobs`]),
//! the per-secret lock ([`lease`]) and `on_failure` webhooks ([`notify`]).

pub mod crash;
pub mod history;
pub mod jobs;
pub mod lease;
pub mod managed;
pub mod notify;
pub mod password;
pub mod plugin;
pub mod protocol;
pub mod settings;

pub use crash::{CrashHook, CrashPoint};
pub use history::{HistorySink, MemoryHistory, NoHistory, SqliteHistory, StepEvent, StepOutcome};
pub use jobs::{JobPayload, RotationJobs, RunRotationError, job_spec};
pub use lease::{SecretLock, SecretLocks};
pub use notify::{FailureNotice, NoticeKind, Notifier, NotifyError};
pub use plugin::{
    PluginDescriptor, PluginError, PluginRegistry, RegistryError, RotationPlugin, SecretInfo,
    StepContext, StepSet, Strategy,
};
pub use protocol::{
    DryRunReport, RotationError, RotationOutcome, RotationRequest, Rotator, Step, manual_token,
    slot_token,
};
pub use settings::{SettingField, SettingKind, SettingsError, SettingsSchema};

// The client types in the plugin contract's signatures, re-exported so plugin
// hosts (rota-plugin-host) implement it without depending on rota-kms.
pub use rota_kms::{OpenApi, SecretString};
