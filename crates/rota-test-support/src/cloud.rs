//! The embedded local cloud in a temp dir, on the suites' clock, with the
//! KMS shortcuts tests of several crates repeat.

use std::sync::Arc;

use rota_kms::kms::{CreateSecret, GetSecretValue};
use rota_kms::{KmsClient, OpenApi, SecretString, Transport};
use rota_local::{LocalCloud, World};

/// A local cloud in a fresh temp dir (`<dir>/cloud`), with clients on it.
pub struct Cloud {
    /// The temp dir (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The cloud (kept open: it holds the data directory's lock).
    pub cloud: LocalCloud,
    /// KMS on it.
    pub kms: KmsClient,
    /// OpenAPI (ECS, RDS, RAM) on it.
    pub api: OpenApi,
}

/// A cloud with the default world (or `world`, in HCL) on
/// [`crate::system_clock`].
///
/// # Panics
///
/// When the world does not parse or the cloud does not open.
pub async fn open(world: Option<&str>) -> Cloud {
    open_on(world, Arc::new(crate::system_clock())).await
}

/// [`open`] on `clock` (a [`crate::ManualClock`] when a test moves time).
///
/// # Panics
///
/// When the world does not parse or the cloud does not open.
pub async fn open_on(world: Option<&str>, clock: Arc<dyn rota_clock::Clock>) -> Cloud {
    let dir = tempfile::tempdir().expect("temp dir");
    let world = world.map_or_else(World::default, |w| World::parse(w).expect("test world"));
    let cloud = LocalCloud::options(dir.path().join("cloud"))
        .world(world)
        .clock(clock)
        .open()
        .await
        .expect("the local cloud opens");
    let transport: Arc<dyn Transport> = Arc::new(cloud.clone());
    Cloud {
        dir,
        cloud,
        kms: KmsClient::new(transport.clone()),
        api: OpenApi::new(transport),
    }
}

impl Cloud {
    /// Creates a Generic secret `name` with `value` as version `v1`.
    ///
    /// # Panics
    ///
    /// When KMS refuses.
    pub async fn create(&self, name: &str, value: &str) {
        create_in(&self.kms, name, value).await;
    }

    /// `(version id, value)` of the version of `name` carrying `stage`.
    pub async fn stage(&self, name: &str, stage: &str) -> Option<(String, String)> {
        stage_of(&self.kms, name, stage).await
    }

    /// Every version of `name` with its stages.
    ///
    /// # Panics
    ///
    /// When KMS refuses.
    pub async fn versions(&self, name: &str) -> Vec<(String, Vec<String>)> {
        self.kms
            .list_all_versions(name)
            .await
            .expect("ListSecretVersionIds")
            .into_iter()
            .map(|v| (v.version_id, v.version_stages.version_stage))
            .collect()
    }
}

/// Creates a Generic secret `name` with `value` as version `v1`, through
/// any client.
///
/// # Panics
///
/// When KMS refuses.
pub async fn create_in(kms: &KmsClient, name: &str, value: &str) {
    kms.send(&CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new(value),
        version_id: "v1".into(),
        ..Default::default()
    })
    .await
    .expect("CreateSecret");
}

/// `(version id, value)` of the version of `name` carrying `stage`, through
/// any client.
pub async fn stage_of(kms: &KmsClient, name: &str, stage: &str) -> Option<(String, String)> {
    kms.send(&GetSecretValue {
        secret_name: name.into(),
        version_stage: Some(stage.into()),
        ..Default::default()
    })
    .await
    .ok()
    .map(|v| (v.version_id, v.secret_data.expose_secret().to_owned()))
}
