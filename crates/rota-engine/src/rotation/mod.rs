//! Rotation: the resumable four-step protocol ([`protocol`]), the plugin
//! contract ([`plugin`]) with settings schemas ([`settings`]), the built-in
//! `password` and `managed` plugins, crash injection points ([`crash`]) and
//! the step history ([`history`]).

pub mod crash;
pub mod history;
pub mod managed;
pub mod password;
pub mod plugin;
pub mod protocol;
pub mod settings;

pub use crash::{CrashHook, CrashPoint};
pub use history::{HistorySink, MemoryHistory, NoHistory, SqliteHistory, StepEvent, StepOutcome};
pub use plugin::{
    PluginDescriptor, PluginError, PluginRegistry, RegistryError, RotationPlugin, SecretInfo,
    StepContext, StepSet, Strategy,
};
pub use protocol::{
    DryRunReport, RotationError, RotationOutcome, RotationRequest, Rotator, Step, manual_token,
    slot_token,
};
pub use settings::{SettingField, SettingKind, SettingsError, SettingsSchema};
