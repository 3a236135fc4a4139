//! The rotation plugin registry the CLI builds once and hands to validation,
//! `rota rotate` and `rota run`: the built-in plugins (`password`,
//! `managed`) now; Rhai plugins (rota-script) and native plugins
//! (rota-plugin-host) register theirs here as well.

use rota_engine::rotation::PluginRegistry;

/// Every plugin this build knows.
pub(crate) fn registry() -> PluginRegistry {
    PluginRegistry::with_builtins()
}
