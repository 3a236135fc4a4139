//! The rotation plugin registry the CLI builds once and hands to validation,
//! `rota rotate` and `rota run`: the built-in plugins (`password`,
//! `managed`), and the Rhai plugins (rota-script) found in `plugins/` of
//! the current directory; native plugins (rota-plugin-host) register theirs
//! here as well.

use std::path::PathBuf;
use std::sync::Arc;

use rota_engine::rotation::PluginRegistry;
use rota_script::{RuntimeOptions, ScriptRuntime, discover};

/// Where Rhai plugins are looked for.
pub(crate) fn rhai_plugin_dirs() -> Vec<PathBuf> {
    vec![PathBuf::from("plugins")]
}

/// Every plugin this build knows.
pub(crate) fn registry() -> PluginRegistry {
    let mut registry = PluginRegistry::with_builtins();
    register_rhai(&mut registry, &rhai_plugin_dirs());
    registry
}

/// Registers the Rhai plugins under `dirs`. A plugin that does not load is
/// skipped with a warning (`rota plugins check NAME` says why); a
/// configuration naming it then fails validation as an unknown plugin.
pub(crate) fn register_rhai(registry: &mut PluginRegistry, dirs: &[PathBuf]) {
    let runtime = ScriptRuntime::new(RuntimeOptions::default());
    for plugin in discover(&runtime, dirs) {
        match plugin {
            Ok(p) => {
                if let Err(e) = registry.register(Arc::new(p)) {
                    tracing::warn!(error = %e, "Rhai plugin not registered");
                }
            }
            Err(e) => tracing::warn!(error = %e, "Rhai plugin not loaded"),
        }
    }
}
