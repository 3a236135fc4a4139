//! Backend resolution: which KMS a configuration talks to, decided once.
//!
//! - **Real Alibaba Cloud** when credentials are configured, first found in
//!   this order: the provider block's `access_key`/`secret_key`; the
//!   environment (`ALIBABA_CLOUD_ACCESS_KEY_ID`/`…_SECRET`, or the Terraform
//!   provider's `ALICLOUD_ACCESS_KEY`/`ALICLOUD_SECRET_KEY`); a named aliyun
//!   CLI profile (`--profile`, the provider's `profile`,
//!   `ALIBABA_CLOUD_PROFILE`, `ALICLOUD_PROFILE`); the ECS instance's RAM
//!   role when named (the provider's `ecs_role_name`,
//!   `ALICLOUD_ECS_ROLE_NAME`, `ALIBABA_CLOUD_ECS_METADATA`; hardened
//!   metadata mode, required with `ALIBABA_CLOUD_IMDSV1_DISABLED=true`). The endpoint is
//!   `--endpoint`, the provider's `endpoints { kms }`, `ALIBABA_CLOUD_ENDPOINT_KMS`,
//!   or the region's public endpoint; the region is `--region`, the
//!   provider's `region`, `ALIBABA_CLOUD_REGION_ID` (or the Terraform
//!   provider's `ALICLOUD_REGION`), else `cn-hangzhou`.
//! - Otherwise **the embedded local cloud** in the data directory
//!   (`--data-dir`, default `.rota/` beside the configuration), with the
//!   world declared in `world.hcl` beside the configuration (else the default
//!   world), and one line on standard error saying so.
//!
//! Either way the backend carries a data directory for Rota's own state
//! (the scheduler store `scheduler.db`, rotation history and locks):
//! `--data-dir`, else `.rota/` beside the configuration. With the embedded
//! cloud it is the same directory (rota-local keeps `kms.db`, `master.key`,
//! `lock` and `root-access-key.json` there; the names do not collide).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use rota_engine::Config;
use rota_kms::credentials::{
    Credentials, CredentialsProvider, EcsRamRoleCredentials, EnvCredentials, ProfileCredentials,
    StaticCredentials,
};
use rota_kms::{Endpoints, HttpTransport, KmsClient, OpenApi, Transport};
use rota_local::{LocalCloud, World};
use rota_rotation::CrashPoint;

use crate::cli::GlobalArgs;
use crate::output::errln;

/// The resolved backend.
pub(crate) struct Backend {
    /// The client every command uses.
    pub(crate) client: KmsClient,
    /// Signed OpenAPI calls on the same backend (rotation plugins).
    pub(crate) api: OpenApi,
    /// Rota's own state: scheduler store, rotation history, locks.
    pub(crate) data_dir: PathBuf,
    /// Kept open while the command runs (it holds the data directory's lock).
    _local: Option<LocalCloud>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Backend {
    /// The same backend with every call reported to `observer` (the
    /// daemon's metrics): the client and the OpenAPI caller share one
    /// [`rota_kms::observe::Observed`] transport.
    pub(crate) fn observed(self, observer: Arc<dyn rota_kms::observe::CallObserver>) -> Self {
        let transport: Arc<dyn Transport> = Arc::new(rota_kms::observe::Observed::new(
            self.client.transport().clone(),
            observer,
        ));
        Self {
            client: KmsClient::new(transport.clone()),
            api: OpenApi::new(transport),
            ..self
        }
    }
}

/// Resolves the backend for `config`.
pub(crate) async fn resolve(global: &GlobalArgs, config: &Config) -> Result<Backend> {
    let provider = &config.provider;
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut credentials: Option<Arc<dyn CredentialsProvider>> = None;
    if let (Some(id), Some(secret)) = (&provider.access_key, &provider.secret_key) {
        let mut c = Credentials::new(id.clone(), secret.expose_secret().to_owned());
        if let Some(t) = &provider.security_token {
            c = c.with_security_token(t.expose_secret().to_owned());
        }
        credentials = Some(Arc::new(StaticCredentials::new(c)));
    }
    if credentials.is_none() {
        let from_env = EnvCredentials::from_vars(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        if from_env
            .credentials()
            .context("invalid credentials in the environment")?
            .is_some()
        {
            credentials = Some(Arc::new(from_env));
        }
    }
    let profile = global
        .profile
        .clone()
        .or_else(|| provider.profile.clone())
        .or_else(|| env_var("ALIBABA_CLOUD_PROFILE"))
        .or_else(|| env_var("ALICLOUD_PROFILE"));
    if credentials.is_none()
        && let Some(name) = profile
    {
        let home = env_var("HOME").map(PathBuf::from).unwrap_or_default();
        credentials = Some(Arc::new(ProfileCredentials::new(
            ProfileCredentials::default_path(&home),
            Some(name),
        )));
    }
    // The ECS instance's RAM role, when named (as the Terraform provider's
    // `ecs_role_name`): never probed for, so a laptop does not wait on the
    // metadata address before falling back to the embedded cloud.
    let ecs_role = provider
        .ecs_role_name
        .clone()
        .or_else(|| env_var("ALICLOUD_ECS_ROLE_NAME"))
        .or_else(|| env_var("ALIBABA_CLOUD_ECS_METADATA"))
        .filter(|r| !r.trim().is_empty());
    if credentials.is_none()
        && let Some(role) = ecs_role
    {
        let v1_disabled = env_var("ALIBABA_CLOUD_IMDSV1_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let mut ecs = EcsRamRoleCredentials::new(Some(role))
            .disable_imds_v1(v1_disabled)
            .clock(crate::clock::credentials());
        if let Some(url) = env_var("ROTA_ECS_METADATA_URL").filter(|u| !u.trim().is_empty()) {
            ecs = ecs.metadata_base_url(url.trim_end_matches('/'));
        }
        credentials = Some(Arc::new(ecs));
    }
    let endpoint = global
        .endpoint
        .clone()
        .or_else(|| provider.kms_endpoint.clone())
        .or_else(|| env_var("ALIBABA_CLOUD_ENDPOINT_KMS"));
    let region = region(global, provider);

    if let Some(credentials) = credentials {
        let endpoints = match &endpoint {
            Some(url) => {
                let url = if url.contains("://") {
                    url.clone()
                } else {
                    let scheme = match provider.protocol.as_deref() {
                        Some(p) if p.eq_ignore_ascii_case("http") => "http",
                        _ => "https",
                    };
                    format!("{scheme}://{url}")
                };
                Endpoints::custom(&region, &url)?
            }
            None => Endpoints::region(&region)?,
        };
        let mut builder = HttpTransport::builder()
            .endpoints(endpoints)
            .credentials(credentials)
            .clock(crate::clock::signing());
        if let Some(ms) = provider.client_read_timeout_ms {
            builder = builder.request_timeout(std::time::Duration::from_millis(ms));
        }
        if let Some(ms) = provider.client_connect_timeout_ms {
            builder = builder.connect_timeout(std::time::Duration::from_millis(ms));
        }
        if let Some(path) = env_var("ALIBABA_CLOUD_CA_BUNDLE").filter(|p| !p.trim().is_empty()) {
            let pem = rota_engine::files::read_text(Path::new(&path), 1024 * 1024)
                .map_err(|e| anyhow::anyhow!("ALIBABA_CLOUD_CA_BUNDLE {path}: {e}"))?;
            builder = builder.extra_root_certificates(pem.into_bytes());
        }
        let transport = builder.build().context("cannot set up the HTTPS client")?;
        tracing::info!(backend = %Transport::describe(&transport), "using Alibaba Cloud");
        let transport: Arc<dyn Transport> = Arc::new(transport);
        return Ok(Backend {
            client: KmsClient::new(transport.clone()),
            api: OpenApi::new(transport),
            data_dir: data_dir(global, config),
            _local: None,
        });
    }
    if let Some(url) = endpoint {
        bail!(
            "no credentials for the endpoint {url}: set access_key and secret_key in the provider block, \
             ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or --profile"
        );
    }
    let data_dir = data_dir(global, config);
    let world = match config.world_file() {
        Some(p) => {
            World::load(&p).with_context(|| format!("invalid world file {}", p.display()))?
        }
        None => World::default(),
    };
    // A command such as `rota plan` must not rotate anything as a side
    // effect: the embedded cloud's own automatic rotation stays off here.
    let mut options = LocalCloud::options(&data_dir)
        .clock(crate::clock::shared())
        .world(world)
        .automatic_rotation(false);
    if let Some(hook) = cloud_crash_hook() {
        options = options.rotation_hook(hook);
    }
    let cloud = options
        .open()
        .await
        .with_context(|| format!("cannot open the local cloud in {}", data_dir.display()))?;
    if !global.quiet {
        errln!(
            "using the embedded local cloud in {} (no cloud credentials configured)",
            display_dir(&data_dir)
        );
    }
    let transport: Arc<dyn Transport> = Arc::new(cloud.clone());
    Ok(Backend {
        client: KmsClient::new(transport.clone()),
        api: OpenApi::new(transport),
        data_dir,
        _local: Some(cloud),
    })
}

/// Rota's data directory: `--data-dir`, else `.rota/` beside the configuration.
pub(crate) fn data_dir(global: &GlobalArgs, config: &Config) -> PathBuf {
    global
        .data_dir
        .clone()
        .unwrap_or_else(|| config.root.join(".rota"))
}

fn display_dir(p: &Path) -> String {
    let s = p.display().to_string();
    if p.is_relative() && !s.starts_with('.') {
        format!("./{s}")
    } else {
        s
    }
}

/// The embedded cloud's rotation hook for `ROTA_TEST_CRASH_AT`: a managed
/// rotation runs its steps inside the cloud (`RotateSecret`), so two of the
/// protocol's points are reached there. `after-create` aborts once the
/// cloud stored the new value as ACSPending (target untouched);
/// `in-finish` aborts once the target accepted it, right before the cloud's
/// finishing commit (ACSCurrent moves and ACSPending goes in one atomic
/// write, so this is the last moment inside it). The other points are
/// Rota's own (`commands::rotation`). `None` without the variable or
/// for another point.
pub(crate) fn cloud_crash_hook() -> Option<rota_local::RotationHook> {
    let point: CrashPoint = std::env::var("ROTA_TEST_CRASH_AT")
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let step = match point {
        CrashPoint::AfterCreate => rota_local::RotationStep::PendingStored,
        CrashPoint::InFinish => rota_local::RotationStep::TargetChanged,
        _ => return None,
    };
    Some(Arc::new(
        move |_secret: &str, s: rota_local::RotationStep| {
            if s == step {
                errln!(
                    "ROTA_TEST_CRASH_AT: aborting at {point} (inside the embedded cloud's RotateSecret)"
                );
                std::process::abort();
            }
        },
    ))
}

/// The region every call defaults to: `--region`, the provider's `region`,
/// `ALIBABA_CLOUD_REGION_ID`, the Terraform provider's `ALICLOUD_REGION`,
/// else `cn-hangzhou`.
pub(crate) fn region(
    global: &GlobalArgs,
    provider: &rota_engine::config::ProviderConfig,
) -> String {
    global
        .region
        .clone()
        .or_else(|| provider.region.clone())
        .or_else(|| env_var("ALIBABA_CLOUD_REGION_ID"))
        .or_else(|| env_var("ALICLOUD_REGION"))
        .unwrap_or_else(|| "cn-hangzhou".into())
}
