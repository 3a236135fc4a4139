//! Shared helpers: building a plugin variant and copying it to its own
//! folder, the embedded local cloud, and KMS shortcuts.

use std::sync::Arc;

use rota_plugin_host::LoadedPlugin;
use rota_rotation::{MemoryHistory, RotationRequest, Rotator};
use rota_test_support::cloud::Cloud;
use serde_json::Value;

pub(crate) use rota_test_support::{build_plugin, copy_into, workspace_root};

/// Builds and loads a plugin variant.
pub(crate) fn load(package: &str, features: &str) -> LoadedPlugin {
    rota_plugin_host::load(&build_plugin(package, features)).unwrap()
}

/// A local cloud ([`rota_test_support::cloud::Cloud`]: `kms`, `api`,
/// `create`, `stage`) and rotators on it.
pub(crate) struct Env(Cloud);

impl std::ops::Deref for Env {
    type Target = Cloud;

    fn deref(&self) -> &Cloud {
        &self.0
    }
}

pub(crate) async fn env() -> Env {
    Env(rota_test_support::cloud::open(None).await)
}

impl Env {
    pub(crate) fn rotator(&self, plugin: LoadedPlugin) -> (Rotator, Arc<MemoryHistory>) {
        rota_test_support::rotation::rotator(self, [Arc::new(plugin) as Arc<_>])
    }
}

pub(crate) fn request(secret: &str, plugin: &str, settings: Value, token: &str) -> RotationRequest {
    rota_test_support::rotation::request(secret, plugin, settings, token, 1)
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
