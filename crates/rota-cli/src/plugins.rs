//! The rotation plugin registry the CLI builds once and hands to validation,
//! `rota rotate` and `rota run`: the built-in plugins (`password`,
//! `managed`), the Rhai plugins (rota-script) and the native plugin
//! libraries (rota-plugin-host) found in the plugin directories: `plugins/`
//! beside the configuration, `plugins/` of the current directory, the
//! configuration's `plugins { paths = … }`, and every `--plugin-dir`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rota_plugin_host::{LoadError, LoadedPlugin};
use rota_rotation::PluginRegistry;
use rota_script::{RuntimeOptions, ScriptRuntime, discover};

use crate::cli::GlobalArgs;

/// Where plugins are looked for: `plugins/` beside the configuration (the
/// configuration directory, or the folder of a configuration file),
/// `plugins/` of the current directory, the folders the configuration names
/// in `plugins { paths = … }`, every `--plugin-dir`, then `extra`; the same
/// directory named twice is searched once.
pub(crate) fn plugin_dirs(
    global: &GlobalArgs,
    configured: &[PathBuf],
    extra: &[PathBuf],
) -> Vec<PathBuf> {
    let base = match &global.config {
        Some(p) if p.is_file() => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        Some(p) => p.clone(),
        None => PathBuf::from("."),
    };
    let candidates = [base.join("plugins"), PathBuf::from("plugins")]
        .into_iter()
        .chain(configured.iter().cloned())
        .chain(global.plugin_dirs.iter().cloned())
        .chain(extra.iter().cloned());
    let mut seen = Vec::new();
    let mut dirs = Vec::new();
    for dir in candidates {
        let key = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !seen.contains(&key) {
            seen.push(key);
            dirs.push(dir);
        }
    }
    dirs
}

/// Every plugin this build knows, for `config` (its `plugins` block adds
/// folders; Rhai hooks default to its region). Two plugins with one name —
/// two folders, or a folder shadowing a built-in — are an error naming
/// both: which one a rotation would run must never be a matter of search
/// order.
pub(crate) fn registry(
    global: &GlobalArgs,
    config: &rota_engine::config::Config,
) -> anyhow::Result<PluginRegistry> {
    let dirs = plugin_dirs(global, &config.plugin_paths, &[]);
    let mut registry = PluginRegistry::with_builtins();
    let mut conflicts = register_rhai(
        &mut registry,
        &dirs,
        &crate::backend::region(global, &config.provider),
    );
    conflicts.extend(register_native(&mut registry, &dirs));
    if conflicts.is_empty() {
        return Ok(registry);
    }
    Err(crate::output::Hint::error(
        conflicts.join("; "),
        "rename one of them (the name in its plugin.toml, or a native plugin's describe()), or remove it from the plugin folders",
    ))
}

/// The message of a name conflict, naming both plugins' origins.
fn conflict(e: &rota_rotation::RegistryError) -> Option<String> {
    match e {
        rota_rotation::RegistryError::Duplicate {
            name,
            first,
            second,
        } => Some(format!(
            "two plugins are named {name:?}: {first} and {second}"
        )),
        _ => None,
    }
}

/// Registers the Rhai plugins under `dirs`, their `ecs::`/`rds::`/`ram::`
/// calls defaulting to `region`. A plugin that does not load is skipped
/// with a warning (`rota plugins check NAME` says why); a configuration
/// naming it then fails validation as an unknown plugin.
pub(crate) fn register_rhai(
    registry: &mut PluginRegistry,
    dirs: &[PathBuf],
    region: &str,
) -> Vec<String> {
    let mut conflicts = Vec::new();
    let runtime = ScriptRuntime::new(RuntimeOptions {
        region: region.to_owned(),
        clock: crate::clock::shared(),
        ..Default::default()
    });
    for plugin in discover(&runtime, dirs) {
        match plugin {
            Ok(p) => {
                if let Err(e) = registry.register(Arc::new(p)) {
                    match conflict(&e) {
                        Some(c) => conflicts.push(c),
                        None => tracing::warn!(error = %e, "Rhai plugin not registered"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "Rhai plugin not loaded"),
        }
    }
    conflicts
}

/// Loads the native plugin libraries under `dirs` (directly inside or one
/// folder down), each with its outcome.
pub(crate) fn discover_native(dirs: &[PathBuf]) -> Vec<(PathBuf, Result<LoadedPlugin, LoadError>)> {
    rota_plugin_host::discover(dirs)
}

/// Registers the native plugins under `dirs`. A library that is refused
/// (wrong ABI, checksum mismatch, not a plugin) is skipped with a warning,
/// like a Rhai plugin that does not load; Rota goes on.
pub(crate) fn register_native(registry: &mut PluginRegistry, dirs: &[PathBuf]) -> Vec<String> {
    let mut conflicts = Vec::new();
    for (_, plugin) in discover_native(dirs) {
        match plugin {
            Ok(p) => {
                if let Err(e) = registry.register(Arc::new(p)) {
                    match conflict(&e) {
                        Some(c) => conflicts.push(c),
                        None => tracing::warn!(error = %e, "native plugin not registered"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "native plugin not loaded"),
        }
    }
    conflicts
}
