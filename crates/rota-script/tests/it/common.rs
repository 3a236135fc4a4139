//! Shared helpers: a local cloud in a temp dir (default world or one given
//! in HCL), plugin folders written from text, a rotator over the shipped
//! plugins, a step context for calling hooks directly, captured logs, and a
//! loopback HTTP stub.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rota_kms::SecretString;
use rota_rotation::{CrashHook, MemoryHistory, Rotator, SecretInfo, StepContext};
use rota_script::{RuntimeOptions, ScriptPlugin, ScriptRuntime};
use rota_test_support::cloud::Cloud;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

pub(crate) const CANARY: &str = "canary-5f3e9a7c";

/// A local cloud ([`rota_test_support::cloud::Cloud`]: `dir`, `kms`, `api`,
/// `create`, `stage`) and a script runtime.
pub(crate) struct Env {
    cloud: Cloud,
    pub(crate) runtime: Arc<ScriptRuntime>,
}

impl std::ops::Deref for Env {
    type Target = Cloud;

    fn deref(&self) -> &Cloud {
        &self.cloud
    }
}

pub(crate) async fn env() -> Env {
    env_world(None).await
}

pub(crate) async fn env_world(world: Option<&str>) -> Env {
    env_on(world, Arc::new(rota_test_support::system_clock())).await
}

/// An env whose cloud runs on `clock`.
pub(crate) async fn env_on(world: Option<&str>, clock: Arc<dyn rota_test_support::Clock>) -> Env {
    Env {
        cloud: rota_test_support::cloud::open_on(world, clock).await,
        runtime: ScriptRuntime::new(RuntimeOptions {
            region: "cn-hangzhou".into(),
            clock: Arc::new(rota_test_support::system_clock()),
            ..Default::default()
        }),
    }
}

impl Env {
    /// A plugin folder under the temp dir.
    pub(crate) fn plugin_dir(&self, name: &str, manifest: &str, hooks: Option<&str>) -> PathBuf {
        write_plugin(self.dir.path(), name, manifest, hooks)
    }

    /// A step context for calling hooks directly.
    pub(crate) fn step(&self, pending: Option<&str>, timeout: Duration) -> StepContext {
        StepContext {
            secret: SecretInfo {
                name: "app/x".into(),
                secret_type: "Generic".into(),
                ..Default::default()
            },
            token: "rota-test-1".into(),
            pending: pending.map(SecretString::new),
            current: Some(SecretString::new("current-value")),
            previous: None,
            settings: Arc::new(serde_json::json!({})),
            api: self.api.clone(),
            kms: self.kms.clone(),
            deadline: tokio::time::Instant::now() + timeout,
            crash: CrashHook::none(),
            span: tracing::Span::none(),
        }
    }

    /// A rotator whose registry holds the built-ins and `plugins`.
    pub(crate) fn rotator(&self, plugins: Vec<ScriptPlugin>) -> (Rotator, Arc<MemoryHistory>) {
        self.rotator_with(plugins, CrashHook::none())
    }

    pub(crate) fn rotator_with(
        &self,
        plugins: Vec<ScriptPlugin>,
        crash: CrashHook,
    ) -> (Rotator, Arc<MemoryHistory>) {
        let (rotator, history) = rota_test_support::rotation::rotator(
            self,
            plugins.into_iter().map(|p| Arc::new(p) as Arc<_>),
        );
        let rotator = rotator
            .with_crash_hook(crash)
            .with_step_timeout(Duration::from_secs(60));
        (rotator, history)
    }

    /// A shipped plugin from the repository's plugins/ folder.
    pub(crate) fn shipped(&self, name: &str) -> ScriptPlugin {
        ScriptPlugin::load(&self.runtime, &repo().join("plugins").join(name)).unwrap()
    }
}

pub(crate) fn write_plugin(
    root: &Path,
    name: &str,
    manifest: &str,
    hooks: Option<&str>,
) -> PathBuf {
    let dir = root.join("plugins").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.toml"), manifest).unwrap();
    if let Some(h) = hooks {
        std::fs::write(dir.join("hooks.rhai"), h).unwrap();
    }
    dir
}

pub(crate) fn manifest(name: &str) -> String {
    format!("name = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"test\"\n")
}

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) use rota_test_support::rotation::request;

// ------------------------------------------------------------------ logs

pub(crate) use rota_test_support::logs::{capture as capture_logs, logs};

// ------------------------------------------------------------------ HTTP stub

/// A loopback HTTP server answering 200 to every request and keeping the bodies.
pub(crate) struct Stub {
    pub(crate) addr: std::net::SocketAddr,
    pub(crate) bodies: Arc<Mutex<Vec<String>>>,
}

pub(crate) async fn stub() -> Stub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let keep = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + len {
                            keep.lock().unwrap().push(text[end + 4..].to_owned());
                            break;
                        }
                    }
                }
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    Stub { addr, bodies }
}
