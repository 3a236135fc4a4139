//! Shared helpers: building a plugin variant and copying it to its own
//! folder, the embedded local cloud, and KMS shortcuts.

use std::sync::Arc;

use rota_kms::kms::{CreateSecret, GetSecretValue};
use rota_kms::{KmsClient, OpenApi, SecretString, Transport};
use rota_local::LocalCloud;
use rota_plugin_host::LoadedPlugin;
use rota_rotation::{MemoryHistory, PluginRegistry, RotationRequest, Rotator};
use serde_json::Value;

pub(crate) use rota_test_support::{build_plugin, copy_into, workspace_root};

/// Builds and loads a plugin variant.
pub(crate) fn load(package: &str, features: &str) -> LoadedPlugin {
    rota_plugin_host::load(&build_plugin(package, features)).unwrap()
}

pub(crate) struct Env {
    pub(crate) _dir: tempfile::TempDir,
    pub(crate) kms: KmsClient,
    pub(crate) api: OpenApi,
}

pub(crate) async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let cloud = LocalCloud::options(dir.path().join("cloud"))
        .clock(Arc::new(rota_test_support::system_clock()))
        .open()
        .await
        .unwrap();
    let transport: Arc<dyn Transport> = Arc::new(cloud);
    Env {
        _dir: dir,
        kms: KmsClient::new(transport.clone()),
        api: OpenApi::new(transport),
    }
}

impl Env {
    pub(crate) fn rotator(&self, plugin: LoadedPlugin) -> (Rotator, Arc<MemoryHistory>) {
        let mut registry = PluginRegistry::with_builtins();
        registry.register(Arc::new(plugin)).unwrap();
        let history = Arc::new(MemoryHistory::default());
        let r = Rotator::new(
            self.kms.clone(),
            self.api.clone(),
            Arc::new(registry),
            history.clone(),
        )
        .with_clock(Arc::new(rota_test_support::system_clock()));
        (r, history)
    }

    pub(crate) async fn create(&self, name: &str, value: &str) {
        self.kms
            .send(&CreateSecret {
                secret_name: name.into(),
                secret_data: SecretString::new(value),
                version_id: "v1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }

    /// `(version id, value)` of the version carrying `stage`.
    pub(crate) async fn stage(&self, name: &str, stage: &str) -> Option<(String, String)> {
        self.kms
            .send(&GetSecretValue {
                secret_name: name.into(),
                version_stage: Some(stage.into()),
                ..Default::default()
            })
            .await
            .ok()
            .map(|v| (v.version_id, v.secret_data.expose_secret().to_owned()))
    }
}

pub(crate) fn request(secret: &str, plugin: &str, settings: Value, token: &str) -> RotationRequest {
    RotationRequest {
        secret: secret.into(),
        plugin: plugin.into(),
        settings,
        token: token.into(),
        attempt: 1,
    }
}

pub(crate) fn token(n: i64) -> String {
    rota_rotation::slot_token(
        "s",
        chrono::DateTime::from_timestamp(1_700_000_000 + n * 3600, 0).unwrap(),
    )
}

/// The steps recorded in history, with their outcomes.
pub(crate) fn steps(h: &MemoryHistory) -> Vec<(&'static str, String)> {
    h.events()
        .iter()
        .map(|e| (e.step.name(), e.outcome.as_str().to_owned()))
        .collect()
}
