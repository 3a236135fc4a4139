//! Rotators over a test [`Cloud`](crate::cloud::Cloud): the registry of the
//! built-ins plus the plugins a test brings, a history kept in memory, the
//! suites' clock; and the requests tests send.

use std::sync::Arc;

use rota_rotation::{
    MemoryHistory, PluginRegistry, RotationOutcome, RotationPlugin, RotationRequest, Rotator,
};

use crate::cloud::Cloud;

/// A rotator on `cloud` with the built-in plugins and `plugins`, recording
/// into the returned history.
///
/// # Panics
///
/// When two plugins share a name.
pub fn rotator(
    cloud: &Cloud,
    plugins: impl IntoIterator<Item = Arc<dyn RotationPlugin>>,
) -> (Rotator, Arc<MemoryHistory>) {
    let mut registry = PluginRegistry::with_builtins();
    for p in plugins {
        registry.register(p).expect("unique plugin names");
    }
    let history = Arc::new(MemoryHistory::default());
    let r = Rotator::new(
        cloud.kms.clone(),
        cloud.api.clone(),
        Arc::new(registry),
        history.clone(),
    )
    .with_clock(Arc::new(crate::system_clock()));
    (r, history)
}

/// A request to rotate `secret` with `plugin` at `token`.
pub fn request(
    secret: &str,
    plugin: &str,
    settings: serde_json::Value,
    token: &str,
    attempt: u32,
) -> RotationRequest {
    RotationRequest {
        secret: secret.into(),
        plugin: plugin.into(),
        settings,
        token: token.into(),
        attempt,
        timeout: None,
        fence: Default::default(),
        verify: None,
        adoption: None,
    }
}

/// The outcome of a fresh rotation to `version`.
pub fn rotated(version: &str) -> RotationOutcome {
    RotationOutcome::Rotated {
        version_id: version.to_owned(),
        resumed: false,
    }
}
