//! `rota plugins list` and `rota plugins check NAME`: the Rhai plugins
//! found in `plugins/` (beside the configuration, or in the current
//! directory) and in every `--dir`, loaded exactly as a rotation would load
//! them, so a bad manifest, an unknown setting type, a missing hook or a
//! syntax error shows here with its file, line and column.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use rota_script::{RuntimeOptions, ScriptPlugin, ScriptRuntime, discover};

use crate::cli::{GlobalArgs, OutputFormat, PluginsCommand};

fn search_dirs(global: &GlobalArgs, extra: &[PathBuf]) -> Vec<PathBuf> {
    let base = match &global.config {
        Some(p) if p.is_file() => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        Some(p) => p.clone(),
        None => PathBuf::from("."),
    };
    let mut dirs = vec![base.join("plugins")];
    dirs.extend(extra.iter().cloned());
    dirs
}

fn steps(p: &ScriptPlugin) -> String {
    use rota_engine::rotation::RotationPlugin as _;
    let s = p.descriptor().steps;
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

/// Runs a `rota plugins` command: exit 1 when a plugin fails to load.
pub(crate) fn run(command: PluginsCommand, global: &GlobalArgs) -> Result<ExitCode> {
    let runtime = ScriptRuntime::new(RuntimeOptions::default());
    match command {
        PluginsCommand::List { dirs } => {
            let found = discover(&runtime, &search_dirs(global, &dirs));
            let mut failed = false;
            let mut rows = Vec::new();
            for p in &found {
                match p {
                    Ok(p) => {
                        let m = p.manifest();
                        rows.push(serde_json::json!({
                            "name": m.name,
                            "version": m.version,
                            "secret_types": m.secret_types,
                            "steps": steps(p),
                            "path": p.dir().display().to_string(),
                            "description": m.description,
                        }));
                        if global.output == OutputFormat::Text {
                            println!(
                                "{:<16} {:<8} {:<34} {}",
                                m.name,
                                m.version,
                                steps(p),
                                m.description
                            );
                        }
                    }
                    Err(e) => {
                        failed = true;
                        eprintln!("error: {e}");
                    }
                }
            }
            if global.output == OutputFormat::Json {
                println!("{}", serde_json::Value::from(rows));
            }
            Ok(if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        PluginsCommand::Check { name, dirs } => {
            let as_path = PathBuf::from(&name);
            let result = if as_path.join(rota_script::MANIFEST).is_file() {
                Some(ScriptPlugin::load(&runtime, &as_path))
            } else {
                discover(&runtime, &search_dirs(global, &dirs))
                    .into_iter()
                    .find(|p| match p {
                        Ok(p) => p.manifest().name == name,
                        Err(e) => e.to_string().contains(&format!("/{name}/")),
                    })
            };
            match result {
                Some(Ok(p)) => {
                    println!(
                        "{}: ok (version {}, steps {})",
                        p.manifest().name,
                        p.manifest().version,
                        steps(&p)
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Some(Err(e)) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::FAILURE)
                }
                None => {
                    eprintln!(
                        "error: no plugin named {name:?} in {}",
                        search_dirs(global, &dirs)
                            .iter()
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
