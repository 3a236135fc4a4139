//! Shared helpers: clouds in temp dirs with a manual clock, clients over
//! both transports, and a global log capture.

use std::io::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rota_kms::credentials::{Credentials, StaticCredentials};
use rota_kms::{Endpoints, HttpTransport, KmsClient, SignatureVersion};
use rota_local::server::{ServerConfig, ServerHandle, serve};
use rota_local::{LocalCloud, ManualClock, World};

pub(crate) const START: &str = "2024-01-01T00:00:00Z";

pub(crate) fn start_time() -> DateTime<Utc> {
    rota_local::clock::parse_wire_time(START).unwrap()
}

/// A cloud in a fresh temp dir, with a manual clock.
pub(crate) struct Env {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) clock: ManualClock,
    pub(crate) cloud: LocalCloud,
}

pub(crate) const TEST_WORLD: &str = r#"
account_id = "1234567890123456"
region     = "cn-hangzhou"
kms_instance "kst-test00000000000000001" {}
key "key-test00000000000000001" {
  description  = "instance key"
  kms_instance = "kst-test00000000000000001"
}
key "key-plain0000000000000001" {}
key "key-rsa00000000000000001" {
  spec = "RSA_2048"
}
access_key "LTAIaliceexample0001" {
  secret = "alice-secret"
  user   = "alice"
}
access_key "LTAIbobexample000001" {
  secret = "bob-secret"
  user   = "bob"
}
ecs_instance "i-test00000000000001" {
  account "root" {
    password = "Root-Passw0rd"
  }
  account "app" {
    password = "App-Passw0rd1"
  }
  account "deploy" {
    public_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKeyOldKeyOldKeyOldKeyOldKeyOldKeyOldK deploy@old"]
  }
}
ecs_instance "i-win0000000000001" {
  os_type = "windows"
  account "Administrator" {
    password = "Win-Passw0rd1"
  }
}
rds_instance "rm-test000000000001" {
  engine = "MySQL"
  account "app" {
    password = "App-Passw0rd1"
  }
}
ram_user "svc" {
  access_key "LTAIsvcinitialkey0001" {
    secret = "svc-initial-secret"
  }
}
ecs_instance "i-conformance000001" {
  account "app" {
    password = "Conf-Passw0rd1"
  }
}
rds_instance "rm-conformance00001" {
  engine = "PostgreSQL"
  account "app" {
    password = "Conf-Passw0rd1"
  }
}
ram_user "conformance" {
  access_key "LTAIconformancekey001" {
    secret = "conformance-secret"
  }
}
"#;

pub(crate) async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(start_time());
    let cloud = open(dir.path(), &clock).await;
    Env { dir, clock, cloud }
}

pub(crate) async fn open(dir: &std::path::Path, clock: &ManualClock) -> LocalCloud {
    open_world(dir, clock, TEST_WORLD).await
}

/// Options for a cloud on `world` with the manual clock, the test root key,
/// and no background rotation (tests call `rotate_due` themselves).
pub(crate) fn options(
    dir: &std::path::Path,
    clock: &ManualClock,
    world: &str,
) -> rota_local::OpenOptions {
    capture_logs();
    LocalCloud::options(dir)
        .world(World::parse(world).unwrap())
        .clock(Arc::new(clock.clone()))
        .root_key("LTAIroottestkey00001", "root-test-secret")
        .automatic_rotation(false)
}

pub(crate) async fn open_world(
    dir: &std::path::Path,
    clock: &ManualClock,
    world: &str,
) -> LocalCloud {
    options(dir, clock, world).open().await.unwrap()
}

/// A cloud on `world` in a fresh temp dir.
pub(crate) async fn env_world(world: &str) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(start_time());
    let cloud = open_world(dir.path(), &clock, world).await;
    Env { dir, clock, cloud }
}

impl Env {
    /// A generic OpenAPI caller (ECS, RDS, RAM) over the in-process transport.
    pub(crate) fn api(&self) -> rota_kms::OpenApi {
        rota_kms::OpenApi::new(Arc::new(self.cloud.clone()))
    }
}

impl Env {
    pub(crate) fn client(&self) -> KmsClient {
        KmsClient::new(Arc::new(self.cloud.clone()))
    }

    pub(crate) fn client_as(&self, ak: &str) -> KmsClient {
        KmsClient::new(Arc::new(self.cloud.as_access_key(ak).unwrap()))
    }

    pub(crate) async fn server(&self) -> ServerHandle {
        serve(self.cloud.clone(), ServerConfig::default())
            .await
            .unwrap()
    }

    /// An HTTP client signing with `version` as the root key, on the manual clock.
    pub(crate) fn http(&self, server: &ServerHandle, version: SignatureVersion) -> HttpTransport {
        self.http_with(server, version, self.cloud.root_credentials())
    }

    pub(crate) fn http_with(
        &self,
        server: &ServerHandle,
        version: SignatureVersion,
        creds: Credentials,
    ) -> HttpTransport {
        let clock = self.clock.clone();
        HttpTransport::builder()
            .endpoints(
                Endpoints::custom("cn-hangzhou", &format!("http://{}", server.local_addr()))
                    .unwrap(),
            )
            .credentials(Arc::new(StaticCredentials::new(creds)))
            .signature_version(version)
            .retry(rota_kms::http::RetryPolicy::none())
            .clock(Arc::new(move || rota_local::Clock::now(&clock)))
            .build()
            .unwrap()
    }
}

/// The error code of a failed call.
pub(crate) fn code<T: std::fmt::Debug>(r: Result<T, rota_kms::Error>) -> String {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e
            .code()
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("not an API error: {e}")),
    }
}

/// The HTTP status of a failed call.
pub(crate) fn status<T: std::fmt::Debug>(r: Result<T, rota_kms::Error>) -> u16 {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => e.api().expect("an API error").status,
    }
}

pub(crate) use rota_test_support::logs::{capture as capture_logs, logs};

/// Writes one line to the real stdout (for the crash test's child).
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
