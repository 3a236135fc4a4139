//! Credential providers and the default chain: precedence, the environment
//! variables, aliyun CLI profiles, the ECS metadata role (against a loopback
//! stub, with an injected clock), the `NotFound` message and redaction.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rota_kms::credentials::{
    Credentials, CredentialsChain, CredentialsClock, CredentialsError, CredentialsProvider,
    EcsRamRoleCredentials, EnvCredentials, ProfileCredentials, StaticCredentials, region_from_vars,
};

use crate::stub::{Recorded, Reply, Stub};

const CANARY_SECRET: &str = "canary-SECRET-5d1f";
const CANARY_TOKEN: &str = "canary-TOKEN-9a7e";

/// 2026-01-01T00:00:00Z.
const NEW_YEAR: u64 = 1_767_225_600;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn env(pairs: &[(&str, &str)]) -> Result<Option<Credentials>, CredentialsError> {
    EnvCredentials::from_vars(vars(pairs)).credentials()
}

fn invalid_reason(e: CredentialsError) -> String {
    match e {
        CredentialsError::Invalid { reason, .. } => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn env_alibaba_cloud_pair_wins_over_alicloud() {
    let c = env(&[
        ("ALICLOUD_ACCESS_KEY", "LTAI-alicloud"),
        ("ALICLOUD_SECRET_KEY", "s-alicloud"),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-alibaba"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s-alibaba"),
        ("PATH", "/usr/bin"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(c.access_key_id, "LTAI-alibaba");
    assert_eq!(c.access_key_secret.expose_secret(), "s-alibaba");
    assert!(c.security_token.is_none());

    // The Terraform names alone, with their token.
    let c = env(&[
        ("ALICLOUD_ACCESS_KEY", " STS.alicloud\n"),
        ("ALICLOUD_SECRET_KEY", "s-alicloud"),
        ("ALICLOUD_SECURITY_TOKEN", "tok"),
    ])
    .unwrap()
    .unwrap();
    assert_eq!(c.access_key_id, "STS.alicloud", "values are trimmed");
    assert_eq!(c.security_token.unwrap().expose_secret(), "tok");

    // Each pair takes its own token only.
    let c = env(&[
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-alibaba"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "s-alibaba"),
        ("ALICLOUD_SECURITY_TOKEN", "tok"),
    ])
    .unwrap()
    .unwrap();
    assert!(c.security_token.is_none());

    // Nothing set, or only empty values: nothing here.
    assert!(env(&[]).unwrap().is_none());
    assert!(
        env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "  ")
        ])
        .unwrap()
        .is_none()
    );
}

#[test]
fn env_half_set_pair_is_an_error_naming_the_variables() {
    for (pairs, expected) in [
        (
            &[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-x")][..],
            "ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not; set both or neither",
        ),
        (
            &[("ALICLOUD_SECRET_KEY", CANARY_SECRET)][..],
            "ALICLOUD_SECRET_KEY is set but ALICLOUD_ACCESS_KEY is not; set both or neither",
        ),
        (
            // Half of the winning pair is an error even when the other pair is whole.
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-x"),
                ("ALICLOUD_ACCESS_KEY", "LTAI-y"),
                ("ALICLOUD_SECRET_KEY", "s"),
            ][..],
            "ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not; set both or neither",
        ),
        (
            &[("ALIBABA_CLOUD_SECURITY_TOKEN", CANARY_TOKEN)][..],
            "ALIBABA_CLOUD_SECURITY_TOKEN is set but ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET are not",
        ),
    ] {
        let err = env(pairs).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(CANARY_SECRET) && !shown.contains(CANARY_TOKEN));
        assert_eq!(invalid_reason(err), expected);
    }
    let err = env(&[("ALICLOUD_ACCESS_KEY", "LTAI-y")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "credentials from environment (ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, \
         ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY): ALICLOUD_ACCESS_KEY is set but ALICLOUD_SECRET_KEY \
         is not; set both or neither"
    );
}

#[test]
fn region_comes_from_either_variable() {
    assert_eq!(
        region_from_vars(vars(&[
            ("ALICLOUD_REGION", "eu-central-1"),
            ("ALIBABA_CLOUD_REGION_ID", "cn-shanghai")
        ])),
        Some("cn-shanghai".to_owned())
    );
    assert_eq!(
        region_from_vars(vars(&[("ALICLOUD_REGION", "eu-central-1")])),
        Some("eu-central-1".to_owned())
    );
    assert_eq!(
        region_from_vars(vars(&[("ALIBABA_CLOUD_REGION_ID", "")])),
        None
    );
}

// ------------------------------------------------------------------ profiles

const CONFIG: &str = r#"{
  "current": "work",
  "profiles": [
    {"name": "default", "mode": "AK", "access_key_id": "LTAI-default",
     "access_key_secret": "canary-SECRET-5d1f", "region_id": "cn-hangzhou"},
    {"name": "work", "mode": "StsToken", "access_key_id": "STS.work",
     "access_key_secret": "canary-SECRET-5d1f", "sts_token": "canary-TOKEN-9a7e",
     "sts_expiration": 1767225600, "region_id": "eu-central-1"},
    {"name": "role", "mode": "RamRoleArn", "access_key_id": "LTAI-r",
     "access_key_secret": "x", "ram_role_arn": "acs:ram::1:role/r"},
    {"name": "empty", "mode": ""},
    {"name": "half", "mode": "AK", "access_key_id": "LTAI-half"},
    {"name": "typed", "mode": "AK", "access_key_id": "LTAI-t", "access_key_secret": 12345}
  ],
  "meta_path": ""
}"#;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.json");
    std::fs::write(&path, text).unwrap();
    path
}

fn profile_error(path: &Path, profile: Option<&str>) -> String {
    let err = ProfileCredentials::new(path, profile.map(str::to_owned))
        .load()
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(CANARY_SECRET) && !shown.contains(CANARY_TOKEN),
        "{shown}"
    );
    assert!(matches!(err, CredentialsError::Invalid { .. }), "{err:?}");
    err.to_string()
}

#[tokio::test]
async fn profile_modes_and_selection() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), CONFIG);

    // No name: the file's current profile (StsToken).
    let current = ProfileCredentials::new(&path, None);
    let c = current.provide().await.unwrap().unwrap();
    assert_eq!(c.access_key_id, "STS.work");
    assert_eq!(c.access_key_secret.expose_secret(), CANARY_SECRET);
    assert_eq!(c.security_token.unwrap().expose_secret(), CANARY_TOKEN);
    assert_eq!(
        c.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(NEW_YEAR))
    );
    assert_eq!(
        current.region_id().unwrap().as_deref(),
        Some("eu-central-1")
    );

    // A named profile (AK).
    let named = ProfileCredentials::new(&path, Some("default".into()));
    let p = named.load().unwrap().unwrap();
    assert_eq!(p.name, "default");
    assert_eq!(p.credentials.access_key_id, "LTAI-default");
    assert!(p.credentials.security_token.is_none());
    assert_eq!(p.region_id.as_deref(), Some("cn-hangzhou"));

    // No `current`: the profile named default.
    let dir2 = tempfile::tempdir().unwrap();
    let path2 = write_config(
        dir2.path(),
        r#"{"profiles":[{"name":"default","mode":"AK","access_key_id":"LTAI-d","access_key_secret":"s"}]}"#,
    );
    let c = ProfileCredentials::new(&path2, None)
        .provide()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.access_key_id, "LTAI-d");
}

#[tokio::test]
async fn profile_missing_file_is_nothing_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent").join("config.json");
    let p = ProfileCredentials::new(&path, Some("prod".into()));
    assert!(p.provide().await.unwrap().is_none());
    assert_eq!(
        p.describe(),
        format!(
            "aliyun CLI profile \"prod\" in {} (file not found)",
            path.display()
        )
    );
    assert_eq!(p.region_id().unwrap(), None);
}

#[test]
fn profile_errors_name_the_file_the_profile_and_the_modes() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), CONFIG);
    let file = path.display().to_string();
    let label = |name: &str| format!("credentials from aliyun CLI profile \"{name}\" in {file}");

    assert_eq!(
        profile_error(&path, Some("nope")),
        format!(
            "{}: no such profile; profiles in the file: \"default\", \"work\", \"role\", \"empty\", \"half\", \"typed\"",
            label("nope")
        )
    );
    assert_eq!(
        profile_error(&path, Some("role")),
        format!(
            "{}: mode \"RamRoleArn\" is not supported; supported modes: AK, StsToken",
            label("role")
        )
    );
    assert_eq!(
        profile_error(&path, Some("empty")),
        format!(
            "{}: the profile has no mode (not configured?); supported modes: AK, StsToken",
            label("empty")
        )
    );
    assert_eq!(
        profile_error(&path, Some("half")),
        format!(
            "{}: mode AK needs \"access_key_secret\", which is missing or empty",
            label("half")
        )
    );
    assert_eq!(
        profile_error(&path, Some("typed")),
        format!("{}: \"access_key_secret\" is not a string", label("typed"))
    );

    // Malformed JSON: the position, never the content (which holds the canary).
    let bad = write_config(
        dir.path(),
        "{\"profiles\": [{\"name\": \"default\", \"access_key_secret\": \"canary-SECRET-5d1f\",,]}",
    );
    assert_eq!(
        profile_error(&bad, None),
        format!(
            "credentials from aliyun CLI current profile in {file}: the file is not valid JSON (line 1, column 77)"
        )
    );
    let bad = write_config(dir.path(), "[]");
    assert!(profile_error(&bad, Some("x")).ends_with(": the file is not a JSON object"));
    let bad = write_config(dir.path(), "{\"current\":\"default\"}");
    assert_eq!(
        profile_error(&bad, None),
        format!("{}: the file has no \"profiles\" array", label("default"))
    );
}

// ------------------------------------------------------------ ECS metadata

const ROLE_PATH: &str = "/latest/meta-data/ram/security-credentials/";

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

const TOKEN_PATH: &str = "/latest/api/token";
const METADATA_TOKEN: &str = "metadata-token-7c1e";

/// A metadata service with role `rota-role` that issues hardened-mode
/// tokens (and also answers plain requests); fetch number `n` (1-based)
/// returns key `STS.key-n` expiring `n` hours after 2025-12-31T23:00:00Z.
async fn metadata_stub() -> Stub {
    let fetches = Arc::new(AtomicUsize::new(0));
    Stub::start(move |_, req| match req.path() {
        TOKEN_PATH if req.method == "PUT" => Reply::text(200, METADATA_TOKEN),
        ROLE_PATH => Reply::text(200, "rota-role\n"),
        p if p == format!("{ROLE_PATH}rota-role") => {
            let n = fetches.fetch_add(1, Ordering::SeqCst) as u64 + 1;
            Reply::json(
                200,
                &serde_json::json!({
                    "AccessKeyId": format!("STS.key-{n}"),
                    "AccessKeySecret": CANARY_SECRET,
                    "SecurityToken": CANARY_TOKEN,
                    "Expiration": rfc3339(NEW_YEAR - 3600 + n * 3600),
                    "LastUpdated": "2025-12-31T23:00:00Z",
                    "Code": "Success"
                })
                .to_string(),
            )
        }
        _ => Reply::text(404, "not found"),
    })
    .await
}

/// The metadata reads (GETs) a stub received; token requests are PUTs.
fn gets(stub: &Stub) -> Vec<Recorded> {
    stub.requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect()
}

/// A settable clock.
fn clock(start: u64) -> (Arc<AtomicU64>, CredentialsClock) {
    let now = Arc::new(AtomicU64::new(start));
    let read = Arc::clone(&now);
    (
        now,
        Arc::new(move || UNIX_EPOCH + Duration::from_secs(read.load(Ordering::SeqCst))),
    )
}

async fn refused_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[tokio::test]
async fn metadata_credentials_are_cached_until_the_refresh_margin() {
    let stub = metadata_stub().await;
    let (now, clock) = clock(NEW_YEAR - 3600); // 23:00, key 1 expires at 00:00
    let ecs = EcsRamRoleCredentials::new(None)
        .metadata_base_url(stub.url())
        .refresh_margin(Duration::from_secs(300))
        .clock(clock);

    let c = ecs.provide().await.unwrap().unwrap();
    assert_eq!(c.access_key_id, "STS.key-1");
    assert_eq!(c.access_key_secret.expose_secret(), CANARY_SECRET);
    assert_eq!(
        c.security_token.as_ref().unwrap().expose_secret(),
        CANARY_TOKEN
    );
    assert_eq!(
        c.expires_at,
        Some(UNIX_EPOCH + Duration::from_secs(NEW_YEAR))
    );
    let seen: Vec<String> = stub.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(
        seen,
        [
            TOKEN_PATH.to_owned(),
            ROLE_PATH.to_owned(),
            format!("{ROLE_PATH}rota-role")
        ]
    );
    // Hardened mode: a six-hour token, carried by every read.
    assert_eq!(
        stub.requests()[0].header("x-aliyun-ecs-metadata-token-ttl-seconds"),
        Some("21600")
    );
    assert!(
        gets(&stub)
            .iter()
            .all(|r| r.header("x-aliyun-ecs-metadata-token") == Some(METADATA_TOKEN))
    );

    // 23:54: six minutes left, more than the margin: the cached value.
    now.store(NEW_YEAR - 360, Ordering::SeqCst);
    assert_eq!(
        ecs.provide().await.unwrap().unwrap().access_key_id,
        "STS.key-1"
    );
    assert_eq!(gets(&stub).len(), 2);

    // 23:56: within five minutes of expiry: refreshed (the role is remembered).
    now.store(NEW_YEAR - 240, Ordering::SeqCst);
    assert_eq!(
        ecs.provide().await.unwrap().unwrap().access_key_id,
        "STS.key-2"
    );
    assert_eq!(gets(&stub).len(), 3);
    assert_eq!(gets(&stub)[2].target, format!("{ROLE_PATH}rota-role"));
    // The token is still valid: not asked for again.
    assert_eq!(stub.count(), 4);

    // Key 2 expires at 01:00; at 00:30 it is still served from the cache.
    now.store(NEW_YEAR + 1800, Ordering::SeqCst);
    assert_eq!(
        ecs.provide().await.unwrap().unwrap().access_key_id,
        "STS.key-2"
    );
    assert_eq!(gets(&stub).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh() {
    let stub = metadata_stub().await;
    let (now, clock) = clock(NEW_YEAR - 3600);
    let ecs = Arc::new(
        EcsRamRoleCredentials::new(Some("rota-role".into()))
            .metadata_base_url(stub.url())
            .clock(clock),
    );
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let ecs = Arc::clone(&ecs);
        tasks.spawn(async move { ecs.provide().await.unwrap().unwrap().access_key_id });
    }
    while let Some(id) = tasks.join_next().await {
        assert_eq!(id.unwrap(), "STS.key-1");
    }
    // A named role is not listed; sixteen callers, one fetch.
    assert_eq!(gets(&stub).len(), 1);

    now.store(NEW_YEAR - 60, Ordering::SeqCst);
    for _ in 0..16 {
        let ecs = Arc::clone(&ecs);
        tasks.spawn(async move { ecs.provide().await.unwrap().unwrap().access_key_id });
    }
    while let Some(id) = tasks.join_next().await {
        assert_eq!(id.unwrap(), "STS.key-2");
    }
    assert_eq!(gets(&stub).len(), 2);
}

#[tokio::test]
async fn failed_refresh_serves_cached_credentials_until_they_expire() {
    // A service without hardened mode (no token): plain reads, the first
    // succeeds, later ones fail.
    let reads = Arc::new(AtomicUsize::new(0));
    let stub = Stub::start(move |_, req| {
        if req.method == "PUT" {
            return Reply::text(404, "not found");
        }
        if reads.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(
                200,
                &serde_json::json!({
                    "AccessKeyId": "STS.only", "AccessKeySecret": "s", "SecurityToken": "t",
                    "Expiration": rfc3339(NEW_YEAR), "Code": "Success"
                })
                .to_string(),
            )
        } else {
            Reply::text(500, "boom")
        }
    })
    .await;
    let (now, clock) = clock(NEW_YEAR - 3600);
    let ecs = EcsRamRoleCredentials::new(Some("r".into()))
        .metadata_base_url(stub.url())
        .clock(clock);
    assert_eq!(
        ecs.provide().await.unwrap().unwrap().access_key_id,
        "STS.only"
    );
    now.store(NEW_YEAR - 60, Ordering::SeqCst);
    assert_eq!(
        ecs.provide().await.unwrap().unwrap().access_key_id,
        "STS.only"
    );
    assert_eq!(gets(&stub).len(), 2, "a refresh was attempted");
    assert!(
        gets(&stub)
            .iter()
            .all(|r| r.header("x-aliyun-ecs-metadata-token").is_none())
    );
    now.store(NEW_YEAR + 1, Ordering::SeqCst);
    let err = ecs.provide().await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "credentials from ECS instance RAM role \"r\" via {}{ROLE_PATH}: the metadata service answered HTTP 500 for role \"r\"",
            stub.url()
        )
    );
}

#[tokio::test]
async fn metadata_failures_explicit_and_probing() {
    // Unreachable: an error when asked for, nothing-here when probing.
    let url = refused_url().await;
    let err = EcsRamRoleCredentials::new(None)
        .metadata_base_url(&url)
        .provide()
        .await
        .unwrap_err();
    assert!(matches!(err, CredentialsError::Fetch { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with(": the ECS metadata service is unreachable"),
        "{err}"
    );
    let probe = EcsRamRoleCredentials::probe().metadata_base_url(&url);
    assert!(probe.provide().await.unwrap().is_none());
    assert_eq!(
        probe.describe(),
        format!(
            "ECS instance RAM role attached via {url}{ROLE_PATH} (metadata service unreachable)"
        )
    );

    // No role attached (the listing is a 404).
    let none = Stub::always(Reply::text(404, "not found")).await;
    let err = EcsRamRoleCredentials::new(None)
        .metadata_base_url(none.url())
        .provide()
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with(": no RAM role is attached to this instance"),
        "{err}"
    );
    let probe = EcsRamRoleCredentials::probe().metadata_base_url(none.url());
    assert!(probe.provide().await.unwrap().is_none());
    assert!(
        probe
            .describe()
            .ends_with("(no RAM role attached to the instance)")
    );
    // Probing does not ask again at once.
    let before = none.count();
    assert!(probe.provide().await.unwrap().is_none());
    assert_eq!(none.count(), before);

    // A malformed answer is an error even when probing.
    for (body, reason) in [
        (
            serde_json::json!({"Code": "Failed", "AccessKeySecret": CANARY_SECRET}).to_string(),
            "the metadata service answered Code \"Failed\" for role \"r\"",
        ),
        (
            serde_json::json!({"Code": "Success", "AccessKeyId": "STS.x",
                "AccessKeySecret": CANARY_SECRET, "SecurityToken": CANARY_TOKEN})
            .to_string(),
            "the credentials of role \"r\" have no Expiration",
        ),
        (
            serde_json::json!({"Code": "Success", "AccessKeyId": "STS.x",
                "AccessKeySecret": CANARY_SECRET, "SecurityToken": CANARY_TOKEN,
                "Expiration": "tomorrow"})
            .to_string(),
            "the Expiration of role \"r\" is not an RFC 3339 time",
        ),
        (
            format!("<html>{CANARY_SECRET}</html>"),
            "the credentials of role \"r\" are not JSON (31 bytes)",
        ),
    ] {
        let stub = Stub::always(Reply::json(200, &body)).await;
        let err = EcsRamRoleCredentials::probe()
            .metadata_base_url(stub.url())
            .provide()
            .await
            .map(|_| ())
            .unwrap_err();
        // The probe has no role name yet: it lists, and the stub answers the
        // listing with the same body, which is not a role name.
        assert!(
            err.to_string()
                .ends_with("the metadata service's role listing is not a RAM role name"),
            "{err}"
        );
        let err = EcsRamRoleCredentials::new(Some("r".into()))
            .probing(true)
            .metadata_base_url(stub.url())
            .provide()
            .await
            .unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(CANARY_SECRET) && !shown.contains(CANARY_TOKEN));
        assert!(err.to_string().ends_with(reason), "{err}");
    }
}

// -------------------------------------------------------------------- chain

fn static_creds() -> Credentials {
    Credentials::new("LTAI-static", CANARY_SECRET)
}

#[tokio::test]
async fn chain_precedence_static_env_profile_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), CONFIG);
    let stub = metadata_stub().await;
    let env_vars = vars(&[
        ("ALICLOUD_ACCESS_KEY", "LTAI-env"),
        ("ALICLOUD_SECRET_KEY", CANARY_SECRET),
    ]);
    let ecs = || Some(EcsRamRoleCredentials::probe().metadata_base_url(stub.url()));

    let id =
        |chain: CredentialsChain| async move { chain.credentials().await.unwrap().access_key_id };
    let all = CredentialsChain::default_chain(
        Some(static_creds()),
        env_vars.clone(),
        Some(path.clone()),
        Some("default".into()),
        ecs(),
    );
    assert_eq!(all.describe_each().len(), 4);
    assert_eq!(id(all).await, "LTAI-static");
    assert_eq!(
        id(CredentialsChain::default_chain(
            None,
            env_vars.clone(),
            Some(path.clone()),
            Some("default".into()),
            ecs(),
        ))
        .await,
        "LTAI-env"
    );
    assert_eq!(
        id(CredentialsChain::default_chain(
            None,
            Vec::<(String, String)>::new(),
            Some(path.clone()),
            Some("default".into()),
            ecs(),
        ))
        .await,
        "LTAI-default"
    );
    // Earlier sources answered: the metadata service was never asked.
    assert_eq!(stub.count(), 0);
    assert_eq!(
        id(CredentialsChain::default_chain(
            None,
            Vec::<(String, String)>::new(),
            Some(dir.path().join("missing.json")),
            None,
            ecs(),
        ))
        .await,
        "STS.key-1"
    );
    assert_eq!(gets(&stub).len(), 2);

    // An invalid source stops the chain instead of falling through.
    let err = CredentialsChain::default_chain(
        None,
        vars(&[("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAI-half")]),
        Some(path.clone()),
        None,
        ecs(),
    )
    .credentials()
    .await
    .unwrap_err();
    assert!(matches!(err, CredentialsError::Invalid { .. }), "{err:?}");
}

#[tokio::test]
async fn not_found_lists_every_place_looked() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join(".aliyun").join("config.json");
    let url = refused_url().await;
    let chain = CredentialsChain::default_chain(
        None,
        vars(&[("HOME", "/home/me")]),
        Some(config.clone()),
        None,
        Some(EcsRamRoleCredentials::probe().metadata_base_url(&url)),
    );
    let err = chain.credentials().await.unwrap_err();
    let CredentialsError::NotFound { looked } = &err else {
        panic!("expected NotFound, got {err:?}");
    };
    assert_eq!(
        looked,
        &[
            "environment (ALIBABA_CLOUD_ACCESS_KEY_ID/ALIBABA_CLOUD_ACCESS_KEY_SECRET, ALICLOUD_ACCESS_KEY/ALICLOUD_SECRET_KEY: none set)".to_owned(),
            format!("aliyun CLI current profile in {} (file not found)", config.display()),
            format!("ECS instance RAM role attached via {url}{ROLE_PATH} (metadata service unreachable)"),
        ]
    );
    assert!(err.to_string().starts_with(
        "no Alibaba Cloud credentials found; looked in: environment (ALIBABA_CLOUD_ACCESS_KEY_ID/"
    ));

    // Asked as a provider (what the transport does), the chain reports the same list.
    let err = chain.provide().await.unwrap_err();
    assert!(matches!(err, CredentialsError::NotFound { ref looked } if looked.len() == 3));
}

#[tokio::test]
async fn transport_reports_missing_credentials_without_sending() {
    let stub = Stub::always(Reply::json(200, "{}")).await;
    let transport = rota_kms::HttpTransport::builder()
        .endpoints(rota_kms::Endpoints::custom("cn-hangzhou", &stub.url()).unwrap())
        .credentials(Arc::new(CredentialsChain::default_chain(
            None,
            Vec::<(String, String)>::new(),
            None,
            None,
            None,
        )))
        .build()
        .unwrap();
    let err = rota_kms::KmsClient::new(Arc::new(transport))
        .get_secret_value("s")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, rota_kms::Error::Credentials(CredentialsError::NotFound { looked }) if looked.len() == 1),
        "{err:?}"
    );
    assert_eq!(stub.count(), 0);
}

#[tokio::test]
async fn no_credential_type_or_error_prints_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), CONFIG);
    let stub = metadata_stub().await;
    let with_token = static_creds()
        .with_security_token(CANARY_TOKEN)
        .with_expiry(SystemTime::UNIX_EPOCH + Duration::from_secs(NEW_YEAR));
    let env = EnvCredentials::from_vars(vars(&[
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "STS.env"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", CANARY_SECRET),
        ("ALIBABA_CLOUD_SECURITY_TOKEN", CANARY_TOKEN),
    ]));
    assert!(env.credentials().unwrap().is_some());
    let profile = ProfileCredentials::new(&path, None);
    let loaded = profile.load().unwrap().unwrap();
    let ecs = EcsRamRoleCredentials::new(None).metadata_base_url(stub.url());
    let from_ecs = ecs.provide().await.unwrap().unwrap();
    let chain = CredentialsChain::new()
        .with(StaticCredentials::new(with_token.clone()))
        .with(EnvCredentials::from_vars(vars(&[(
            "ALICLOUD_SECRET_KEY",
            CANARY_SECRET,
        )])));
    let half = EnvCredentials::from_vars(vars(&[("ALICLOUD_SECRET_KEY", CANARY_SECRET)]));
    let errors = [
        half.credentials().unwrap_err(),
        CredentialsError::NotFound {
            looked: vec![half.describe()],
        },
    ];

    let mut shown = vec![
        format!("{with_token:?}"),
        format!("{:?}", StaticCredentials::new(with_token.clone())),
        format!("{env:?}"),
        env.describe(),
        format!("{profile:?}"),
        format!("{loaded:?}"),
        format!("{ecs:?}"),
        format!("{from_ecs:?}"),
        format!("{chain:?}"),
        chain.describe(),
    ];
    for e in &errors {
        shown.push(format!("{e:?}"));
        shown.push(e.to_string());
    }
    for s in &shown {
        assert!(
            !s.contains(CANARY_SECRET) && !s.contains(CANARY_TOKEN),
            "a secret leaked: {s}"
        );
    }
    assert!(shown[0].contains("LTAI-static") && shown[0].contains("***"));
}

#[tokio::test]
async fn metadata_hardened_mode_and_imds_v1_disabled() {
    // A service in enforced hardened mode: reads without the token fail.
    let stub = Stub::start(|_, req| {
        if req.method == "PUT" && req.path() == TOKEN_PATH {
            return Reply::text(200, METADATA_TOKEN);
        }
        if req.header("x-aliyun-ecs-metadata-token") != Some(METADATA_TOKEN) {
            return Reply::text(403, "forbidden");
        }
        match req.path() {
            ROLE_PATH => Reply::text(200, "rota-role\n"),
            _ => Reply::json(
                200,
                &serde_json::json!({
                    "AccessKeyId": "STS.hardened", "AccessKeySecret": CANARY_SECRET,
                    "SecurityToken": CANARY_TOKEN, "Expiration": rfc3339(NEW_YEAR),
                    "Code": "Success"
                })
                .to_string(),
            ),
        }
    })
    .await;
    let (_, clock) = clock(NEW_YEAR - 3600);
    let ecs = EcsRamRoleCredentials::new(None)
        .metadata_base_url(stub.url())
        .disable_imds_v1(true)
        .clock(clock.clone());
    assert_eq!(
        ecs.provide().await.unwrap().unwrap().access_key_id,
        "STS.hardened"
    );
    // The token never appears in what the provider says about itself.
    assert!(!format!("{ecs:?}").contains(METADATA_TOKEN));

    // A service that issues no token: plain reads are refused when disabled,
    // before any read.
    let old = Stub::start(|_, req| {
        if req.method == "PUT" {
            Reply::text(404, "not found")
        } else {
            Reply::text(200, "rota-role\n")
        }
    })
    .await;
    let ecs = EcsRamRoleCredentials::new(None)
        .metadata_base_url(old.url())
        .disable_imds_v1(true)
        .clock(clock);
    let err = ecs.provide().await.unwrap_err().to_string();
    assert!(
        err.contains("issued no token (HTTP 404)") && err.contains("ALIBABA_CLOUD_IMDSV1_DISABLED"),
        "{err}"
    );
    assert!(gets(&old).is_empty());
}
