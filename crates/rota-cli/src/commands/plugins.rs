//! `rota plugins list` and `rota plugins check NAME`: the built-in plugins,
//! the Rhai plugins and the native plugin libraries found in the plugin
//! directories (`plugins/` beside the configuration and in the current
//! directory, every `--plugin-dir` and every `--dir`), loaded exactly as a
//! rotation would load them. A Rhai plugin with a bad manifest, an unknown
//! setting type, a missing hook or a syntax error shows with its file, line
//! and column; a native library that is refused (wrong ABI version,
//! checksum mismatch, not a plugin, not a library) shows with its file and
//! the reason. The other plugins are listed all the same.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use rota_rotation::{PluginDescriptor, PluginRegistry, RotationPlugin as _};
use rota_script::{RuntimeOptions, ScriptPlugin, ScriptRuntime, discover};

use crate::cli::{GlobalArgs, OutputFormat, PluginsCommand};
use crate::output::{emit_json, errln, outln};
use crate::plugins::{discover_native, plugin_dirs};

fn steps(d: &PluginDescriptor) -> String {
    let s = d.steps;
    let mut out = vec!["set", "test"];
    for (on, name) in [
        (s.generate, "generate"),
        (s.finish, "finish"),
        (s.rollback, "rollback"),
    ] {
        if on {
            out.push(name);
        }
    }
    out.join(",")
}

/// One line of `rota plugins list`, and its JSON row.
fn row(kind: &str, d: &PluginDescriptor, path: Option<String>) -> (String, serde_json::Value) {
    let types = if d.secret_types.is_empty() {
        "any type".to_owned()
    } else {
        d.secret_types.join(",")
    };
    let origin = match &path {
        Some(p) => format!(" ({kind}, {types}: {p})"),
        None => format!(" ({kind}, {types})"),
    };
    let text = format!(
        "{:<16} {:<8} {:<34} {}{origin}",
        d.name,
        d.version,
        steps(d),
        d.description
    );
    let json = serde_json::json!({
        "name": d.name,
        "kind": kind,
        "version": d.version,
        "secret_types": d.secret_types,
        "steps": steps(d),
        "path": path,
        "description": d.description,
    });
    (text, json)
}

/// Runs a `rota plugins` command: exit 1 when a plugin fails to load.
pub(crate) fn run(command: PluginsCommand, global: &GlobalArgs) -> Result<ExitCode> {
    let runtime = ScriptRuntime::new(RuntimeOptions::default());
    match command {
        PluginsCommand::List { dirs } => {
            let configured = super::lifecycle::configured_plugin_paths(global);
            let dirs = plugin_dirs(global, &configured, &dirs);
            let mut failed = false;
            let mut rows = Vec::new();
            let mut errors = Vec::new();
            for p in PluginRegistry::with_builtins().iter() {
                rows.push(row("built-in", p.descriptor(), None));
            }
            for p in discover(&runtime, &dirs) {
                match p {
                    Ok(p) => rows.push(row(
                        "rhai",
                        p.descriptor(),
                        Some(p.dir().display().to_string()),
                    )),
                    Err(e) => errors.push(e.to_string()),
                }
            }
            for (path, p) in discover_native(&dirs) {
                match p {
                    Ok(p) => rows.push(row(
                        "native",
                        p.descriptor(),
                        Some(path.display().to_string()),
                    )),
                    Err(e) => errors.push(format!("refused native plugin: {e}")),
                }
            }
            // Two plugins with one name: an error naming both.
            let mut by_name: std::collections::BTreeMap<String, Vec<String>> =
                std::collections::BTreeMap::new();
            for (_, j) in &rows {
                let name = j["name"].as_str().unwrap_or_default().to_owned();
                let origin = j["path"].as_str().map_or_else(
                    || j["kind"].as_str().unwrap_or_default().to_owned(),
                    str::to_owned,
                );
                by_name.entry(name).or_default().push(origin);
            }
            for (name, origins) in by_name.iter().filter(|(_, o)| o.len() > 1) {
                errors.push(format!(
                    "two plugins are named {name:?}: {} (rename one)",
                    origins.join(" and ")
                ));
            }
            match global.output {
                OutputFormat::Text => {
                    for (text, _) in &rows {
                        outln!("{text}");
                    }
                }
                OutputFormat::Json => {
                    emit_json(&rows.into_iter().map(|(_, j)| j).collect::<Vec<_>>())?;
                }
            }
            for e in errors {
                failed = true;
                errln!("error: {e}");
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        PluginsCommand::Check { name, dirs } => {
            let configured = super::lifecycle::configured_plugin_paths(global);
            let dirs = plugin_dirs(global, &configured, &dirs);
            let as_path = PathBuf::from(&name);
            if rota_plugin_host::is_library(&as_path) && as_path.is_file() {
                return Ok(report_native(&name, Some(rota_plugin_host::load(&as_path))));
            }
            if as_path.is_dir() && !as_path.join(rota_script::HOOKS).is_file() {
                return Ok(check_native_folder(&as_path));
            }
            let result = if as_path.join(rota_script::HOOKS).is_file() {
                Some(ScriptPlugin::load(&runtime, &as_path))
            } else {
                let mut found: Vec<_> = discover(&runtime, &dirs)
                    .into_iter()
                    .filter(|p| match p {
                        Ok(p) => p.manifest().name == name,
                        Err(e) => e.to_string().contains(&format!("/{name}/")),
                    })
                    .collect();
                let mut origins: Vec<String> = found
                    .iter()
                    .filter_map(|p| p.as_ref().ok().map(|p| p.dir().display().to_string()))
                    .collect();
                if PluginRegistry::with_builtins().get(&name).is_ok() && !origins.is_empty() {
                    origins.insert(0, "the built-in plugin".to_owned());
                }
                if origins.len() > 1 {
                    errln!(
                        "error: two plugins are named {name:?}: {}",
                        origins.join(" and ")
                    );
                    errln!("hint: rename one (the name in its plugin.toml)");
                    return Ok(ExitCode::FAILURE);
                }
                (!found.is_empty()).then(|| found.remove(0))
            };
            match result {
                Some(Ok(p)) => {
                    outln!(
                        "{}: ok (version {}, steps {})",
                        p.manifest().name,
                        p.manifest().version,
                        steps(p.descriptor())
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(Err(e)) => {
                    errln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
                None => {
                    // A native plugin by its name, or a refused library by
                    // its file name (`libexample_echo.so` for example-echo).
                    let file = format!(
                        "{}{}{}",
                        std::env::consts::DLL_PREFIX,
                        name.replace('-', "_"),
                        std::env::consts::DLL_SUFFIX
                    );
                    let native = discover_native(&dirs)
                        .into_iter()
                        .find(|(path, p)| match p {
                            Ok(p) => p.descriptor().name == name,
                            Err(_) => path.file_name().is_some_and(|f| f == file.as_str()),
                        });
                    if native.is_some() {
                        return Ok(report_native(&name, native.map(|(_, p)| p)));
                    }
                    errln!(
                        "error: no plugin named {name:?} in {}",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    Ok(ExitCode::FAILURE)
                }
            }
        }
    }
}

/// `rota plugins check FOLDER` for a folder without `hooks.rhai`: every
/// shared library in it is loaded as a native plugin (its `plugin.toml`, if
/// any, is the checksum pin).
fn check_native_folder(dir: &std::path::Path) -> ExitCode {
    let libraries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            let mut v: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && rota_plugin_host::is_library(p))
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    if libraries.is_empty() {
        let has_manifest = dir.join(rota_script::MANIFEST).is_file();
        errln!(
            "error: {} holds no plugin: {}",
            dir.display(),
            if has_manifest {
                "it has a plugin.toml but neither hooks.rhai (a Rhai plugin) nor a shared library (a native plugin)"
            } else {
                "a Rhai plugin has plugin.toml and hooks.rhai, a native plugin a shared library"
            }
        );
        errln!(
            "hint: a native plugin's library is named {}<name>{} (built with crate-type = [\"cdylib\"])",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        );
        return ExitCode::FAILURE;
    }
    let mut code = ExitCode::SUCCESS;
    for lib in libraries {
        let name = lib.display().to_string();
        if report_native(&name, Some(rota_plugin_host::load(&lib))) != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    code
}

fn report_native(
    name: &str,
    found: Option<Result<rota_plugin_host::LoadedPlugin, rota_plugin_host::LoadError>>,
) -> ExitCode {
    match found {
        Some(Ok(p)) => {
            let d = p.descriptor();
            outln!(
                "{}: ok (native, version {}, steps {}, secret types {}, sha256 {}, {})",
                d.name,
                d.version,
                steps(d),
                if d.secret_types.is_empty() {
                    "any".to_owned()
                } else {
                    d.secret_types.join(",")
                },
                p.sha256(),
                p.path().display()
            );
            ExitCode::SUCCESS
        }
        Some(Err(e)) => {
            errln!("error: refused native plugin: {e}");
            ExitCode::FAILURE
        }
        None => {
            errln!("error: no plugin named {name:?}");
            ExitCode::FAILURE
        }
    }
}
