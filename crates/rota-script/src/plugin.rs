//! Rhai rotation plugins: a folder with `plugin.toml` ([`Manifest`]) and
//! `hooks.rhai` defining `set(ctx)` and `test(ctx)` (required) and any of
//! `generate(ctx)`, `finish(ctx)`, `rollback(ctx)`. [`ScriptPlugin`]
//! implements the engine's [`RotationPlugin`]; [`discover`] finds the
//! plugin folders under a list of directories.
//!
//! Every hook receives one map, `ctx`:
//!
//! | key | value |
//! |---|---|
//! | `plugin`, `step` | the plugin's name, the step (`generate`, `set`, …) |
//! | `secret` | `#{name, type, description, tags, extended_config}` |
//! | `token` | the rotation token (the pending version id) |
//! | `pending`, `current`, `previous` | `Secret` values, or `()` |
//! | `settings` | the validated settings, defaults filled in |
//! | `deadline_ms` | milliseconds left before the step's deadline |
//!
//! `generate` returns the new value (a string or a `Secret`; `()` lets the
//! engine's password policy choose); the other hooks return anything and
//! fail by throwing.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rhai::{AST, Dynamic, Map};
use rota_kms::SecretString;
use rota_rotation::plugin::StepFuture;
use rota_rotation::{PluginDescriptor, PluginError, RotationPlugin, StepContext, StepSet};

use crate::convert::to_dynamic;
use crate::env::CancelFlag;
use crate::error::{LoadError, ScriptError, ScriptErrorKind};
use crate::manifest::Manifest;
use crate::runtime::{CallSpec, ScriptRuntime};
use crate::secret::Secret;

/// The manifest's file name.
pub const MANIFEST: &str = "plugin.toml";
/// The hooks' file name.
pub const HOOKS: &str = "hooks.rhai";
/// Hooks a plugin must define.
pub const REQUIRED_HOOKS: [&str; 2] = ["set", "test"];
/// Hooks a plugin may define.
pub const OPTIONAL_HOOKS: [&str; 4] = ["generate", "finish", "rollback", "verify"];

/// A Rhai plugin.
pub struct ScriptPlugin {
    descriptor: PluginDescriptor,
    manifest: Manifest,
    dir: PathBuf,
    script: Arc<str>,
    runtime: Arc<ScriptRuntime>,
    ast: RwLock<Arc<AST>>,
    /// `hooks.rhai`'s modification time and length when last compiled: a
    /// cheap check before each call, so an edited script is picked up by a
    /// running `rota run` without rereading the file every time.
    stamp: std::sync::Mutex<Option<(std::time::SystemTime, u64)>>,
    /// Per hook (generate, set, test, finish, rollback): how many calls to
    /// run straight on a blocking thread because the last speculative run
    /// of that hook had to move there (see [`crate::runtime`]).
    speculation: [Arc<std::sync::atomic::AtomicU32>; 5],
}

/// The hooks, in the order of `ScriptPlugin::speculation`.
const HOOKS_ORDER: [&str; 6] = ["generate", "set", "test", "finish", "rollback", "verify"];

fn file_stamp(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

impl std::fmt::Debug for ScriptPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptPlugin")
            .field("name", &self.descriptor.name)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Checks the hooks `ast` defines; returns which optional ones exist.
pub(crate) fn check_hooks(
    path: &Path,
    ast: &AST,
    required: &[&'static str],
    optional: &[&'static str],
) -> Result<Vec<&'static str>, LoadError> {
    let mut found = Vec::new();
    for f in ast.iter_functions() {
        let Some(hook) = required.iter().chain(optional).find(|h| **h == f.name) else {
            continue;
        };
        if f.params.len() != 1 {
            // Another definition of the same name with one parameter is fine.
            if ast
                .iter_functions()
                .any(|g| g.name == f.name && g.params.len() == 1)
            {
                continue;
            }
            return Err(LoadError::HookArity {
                path: path.to_owned(),
                hook: f.name.to_owned(),
                params: f.params.len(),
            });
        }
        if !found.contains(hook) {
            found.push(*hook);
        }
    }
    if let Some(missing) = required.iter().find(|h| !found.contains(h)) {
        return Err(LoadError::MissingHook {
            path: path.to_owned(),
            hook: missing,
            required: if required.len() == 1 {
                "run"
            } else {
                "set, test"
            },
        });
    }
    Ok(found)
}

impl ScriptPlugin {
    /// Loads the plugin in `dir`: manifest, script, hooks.
    pub fn load(runtime: &Arc<ScriptRuntime>, dir: &Path) -> Result<Self, LoadError> {
        let manifest = Manifest::load(&dir.join(MANIFEST))?;
        let script_path = dir.join(HOOKS);
        let (ast, _) = runtime.compile_file(&script_path)?;
        let found = check_hooks(&script_path, &ast, &REQUIRED_HOOKS, &OPTIONAL_HOOKS)?;
        let descriptor = PluginDescriptor {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            description: manifest.description.clone(),
            secret_types: manifest.secret_types.clone(),
            settings: manifest.settings.clone(),
            origin: format!("rhai: {}", script_path.display()),
            steps: StepSet {
                generate: found.contains(&"generate"),
                finish: found.contains(&"finish"),
                rollback: found.contains(&"rollback"),
                verify: found.contains(&"verify"),
            },
        };
        Ok(Self {
            descriptor,
            manifest,
            dir: dir.to_owned(),
            script: Arc::from(script_path.display().to_string()),
            runtime: runtime.clone(),
            ast: RwLock::new(ast),
            stamp: std::sync::Mutex::new(file_stamp(&script_path)),
            speculation: Default::default(),
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The plugin's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Recompiles `hooks.rhai` if it changed (the hooks must still be
    /// valid; the old AST stays in use otherwise). Returns whether it did.
    pub fn reload_if_changed(&self) -> Result<bool, LoadError> {
        let path = self.dir.join(HOOKS);
        let (ast, changed) = self.runtime.compile_file(&path)?;
        if changed {
            let found = check_hooks(&path, &ast, &REQUIRED_HOOKS, &OPTIONAL_HOOKS)?;
            let same = ["generate", "finish", "rollback", "verify"]
                .iter()
                .zip([
                    self.descriptor.steps.generate,
                    self.descriptor.steps.finish,
                    self.descriptor.steps.rollback,
                    self.descriptor.steps.verify,
                ])
                .all(|(h, had)| found.contains(h) == had);
            if !same {
                return Err(LoadError::Manifest {
                    path,
                    message: "the set of optional hooks changed; restart to load it".into(),
                });
            }
            *self
                .ast
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = ast;
        }
        Ok(changed)
    }

    fn http_hosts(&self, settings: &serde_json::Value) -> Vec<String> {
        let mut hosts = self.manifest.http_hosts.clone();
        for s in &self.manifest.http_from_settings {
            if let Some(url) = settings
                .get(s)
                .and_then(serde_json::Value::as_str)
                .and_then(|u| reqwest::Url::parse(u).ok())
                && let Some(host) = url.host_str()
            {
                hosts.push(match url.port() {
                    Some(p) => format!("{host}:{p}"),
                    None => host.to_owned(),
                });
            }
        }
        hosts
    }

    fn spec(&self, hook: &'static str, ctx: &StepContext) -> CallSpec {
        let secret = &ctx.secret;
        let info: Map = [
            ("name", Dynamic::from(secret.name.clone())),
            ("type", Dynamic::from(secret.secret_type.clone())),
            ("description", Dynamic::from(secret.description.clone())),
            (
                "tags",
                Dynamic::from_map(
                    secret
                        .tags
                        .iter()
                        .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                        .collect::<Map>(),
                ),
            ),
            (
                "extended_config",
                secret
                    .extended_config
                    .as_ref()
                    .map_or(Dynamic::UNIT, to_dynamic),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v))
        .collect();
        let values = [
            ctx.pending.clone(),
            ctx.current.clone(),
            ctx.previous.clone(),
        ];
        let settings = ctx.settings.clone();
        let token = ctx.token.clone();
        let plugin = self.descriptor.name.clone();
        let remaining = ctx.remaining().as_millis() as i64;
        CallSpec {
            script: self.script.clone(),
            hook: hook.to_owned(),
            kms: Some(ctx.kms.clone()),
            api: Some(ctx.api.clone()),
            deadline: ctx.deadline.into_std(),
            cancel: CancelFlag::new(),
            http_hosts: self.http_hosts(&ctx.settings),
            capture_logs: false,
            report: false,
            span: ctx.span.clone(),
            speculate: HOOKS_ORDER
                .iter()
                .position(|h| *h == hook)
                .map(|i| self.speculation[i].clone()),
            arg: Box::new(move || {
                let [pending, current, previous] = values
                    .clone()
                    .map(|v| v.map_or(Dynamic::UNIT, Secret::dynamic));
                let mut m = Map::new();
                m.insert("plugin".into(), Dynamic::from(plugin.clone()));
                m.insert("step".into(), Dynamic::from(hook.to_owned()));
                m.insert("secret".into(), Dynamic::from_map(info.clone()));
                m.insert("token".into(), Dynamic::from(token.clone()));
                m.insert("pending".into(), pending);
                m.insert("current".into(), current);
                m.insert("previous".into(), previous);
                m.insert("settings".into(), to_dynamic(&settings));
                m.insert("deadline_ms".into(), Dynamic::from_int(remaining));
                Dynamic::from_map(m)
            }),
        }
    }

    /// Recompiles `hooks.rhai` when its modification time or length changed
    /// since the last compile. A broken edit is logged and the previous
    /// script keeps running.
    fn refresh(&self) {
        let path = self.dir.join(HOOKS);
        let now = file_stamp(&path);
        let mut stamp = self
            .stamp
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if now.is_none() || *stamp == now {
            return;
        }
        *stamp = now;
        match self.reload_if_changed() {
            Ok(true) => {
                tracing::info!(plugin = %self.descriptor.name, script = %self.script, "reloaded the changed script")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(plugin = %self.descriptor.name, error = %e, "the changed script does not load; the previous one stays in use")
            }
        }
    }

    async fn call(&self, hook: &'static str, ctx: &StepContext) -> Result<Dynamic, ScriptError> {
        self.refresh();
        let ast = self
            .ast
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let out = self.runtime.call(ast, self.spec(hook, ctx)).await?;
        Ok(out.value)
    }

    async fn step(&self, hook: &'static str, ctx: &StepContext) -> Result<(), PluginError> {
        self.call(hook, ctx)
            .await
            .map(|_| ())
            .map_err(|e| e.to_plugin_error())
    }
}

impl RotationPlugin for ScriptPlugin {
    fn descriptor(&self) -> &PluginDescriptor {
        &self.descriptor
    }

    fn generate<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, Option<SecretString>> {
        Box::pin(async move {
            if !self.descriptor.steps.generate {
                return Ok(None);
            }
            let v = self
                .call("generate", ctx)
                .await
                .map_err(|e| e.to_plugin_error())?;
            if v.is_unit() {
                Ok(None)
            } else if let Some(s) = v.clone().try_cast::<Secret>() {
                Ok(Some(s.expose().clone()))
            } else if v.is_string() {
                Ok(Some(SecretString::new(v.into_string().unwrap_or_default())))
            } else {
                Err(ScriptError::new(
                    &self.script,
                    "generate",
                    ScriptErrorKind::BadReturn,
                    format!(
                        "generate must return a string or a Secret, not {}",
                        v.type_name()
                    ),
                )
                .to_plugin_error())
            }
        })
    }

    fn set<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(self.step("set", ctx))
    }

    fn test<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(self.step("test", ctx))
    }

    fn finish<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            if self.descriptor.steps.finish {
                self.step("finish", ctx).await
            } else {
                Ok(())
            }
        })
    }

    fn rollback<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            if self.descriptor.steps.rollback {
                self.step("rollback", ctx).await
            } else {
                Err(PluginError::Unsupported("rollback"))
            }
        })
    }

    fn verify<'a>(&'a self, ctx: &'a StepContext) -> StepFuture<'a, ()> {
        Box::pin(async move {
            if self.descriptor.steps.verify {
                self.step("verify", ctx).await
            } else {
                Err(PluginError::Unsupported("verify"))
            }
        })
    }
}

/// A folder with `plugin.toml` is a Rhai plugin unless it is a native
/// plugin's crate (a `Cargo.toml` and no `hooks.rhai`) or a native plugin's
/// folder (a shared library and no `hooks.rhai`), which rota-plugin-host
/// loads instead.
fn is_rhai_plugin(dir: &Path) -> bool {
    dir.join(MANIFEST).is_file()
        && (dir.join(HOOKS).is_file()
            || (!dir.join("Cargo.toml").is_file() && !holds_native_library(dir)))
}

/// Whether `dir` holds a shared library: a native plugin's folder, whose
/// `plugin.toml` pins the library's checksum (rota-plugin-host loads it).
fn holds_native_library(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == std::env::consts::DLL_EXTENSION)
        })
    })
}

/// Finds the plugin folders (those holding a `plugin.toml`) directly under
/// each of `dirs` (a directory that is itself a plugin folder counts too)
/// and loads each; folders are visited in name order.
pub fn discover(
    runtime: &Arc<ScriptRuntime>,
    dirs: &[PathBuf],
) -> Vec<Result<ScriptPlugin, LoadError>> {
    let mut out = Vec::new();
    for dir in dirs {
        if is_rhai_plugin(dir) {
            out.push(ScriptPlugin::load(runtime, dir));
            continue;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut folders: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_rhai_plugin(p))
            .collect();
        folders.sort();
        for f in folders {
            out.push(ScriptPlugin::load(runtime, &f));
        }
    }
    out
}
