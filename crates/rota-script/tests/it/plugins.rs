//! The shipped plugins end to end on the embedded local cloud (ECS Cloud
//! Assistant, RDS, RAM emulated by rota-local; the webhook against a
//! loopback stub), each with a crash between `set` and `finish` that the
//! next run completes.

use rota_kms::OpenApi;
use rota_rotation::{CrashHook, CrashPoint, RotationOutcome};
use serde_json::{Value, json};

use crate::common::{CANARY, Env, env_world, request, stub};

const INSTANCE: &str = "i-bp1rotatest0000001";

const WORLD: &str = r#"
account_id = "1234567890123456"
region     = "cn-hangzhou"

ecs_instance "i-bp1rotatest0000001" {
  account "app" {
    password = "Initial-Passw0rd"
  }
  account "deploy" {
    public_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKeyOldKeyOldKeyOldKeyOldKeyOldKey0 old@laptop"]
  }
}

rds_instance "rm-bp1rotatest" {
  engine = "MySQL"
  account "app_a" {
    password = "Initial-Passw0rd-A"
  }
  account "app_b" {
    password = "Initial-Passw0rd-B"
  }
}

ram_user "alice" {
  access_key "LTAI5tAliceKey000001" {
    secret = "alice-key-secret-canary-5f3e9a7c"
    status = "Active"
  }
}
"#;

/// Runs `script` on the instance as `user` (root when None): exit code and output.
async fn shell(api: &OpenApi, user: Option<&str>, script: &str) -> (i64, String) {
    let mut p = vec![
        ("RegionId".to_owned(), "cn-hangzhou".to_owned()),
        ("InstanceId.1".to_owned(), INSTANCE.to_owned()),
        ("Type".to_owned(), "RunShellScript".to_owned()),
        ("CommandContent".to_owned(), script.to_owned()),
    ];
    if let Some(u) = user {
        p.push(("Username".into(), u.into()));
    }
    let r = api.call("ecs", "", "RunCommand", p).await.unwrap();
    let id = r["InvokeId"].as_str().unwrap().to_owned();
    let r = api
        .call(
            "ecs",
            "",
            "DescribeInvocationResults",
            [
                ("RegionId", "cn-hangzhou"),
                ("InvokeId", id.as_str()),
                ("ContentEncoding", "PlainText"),
            ],
        )
        .await
        .unwrap();
    let res = &r["Invocation"]["InvocationResults"]["InvocationResult"][0];
    (
        res["ExitCode"].as_i64().unwrap_or(-1),
        res["Output"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Everything Cloud Assistant recorded, as anyone allowed
/// DescribeInvocations reads it: command texts (decoded), parameters and
/// outputs.
async fn recorded_invocations(api: &OpenApi) -> String {
    use base64::Engine as _;
    let r = api
        .call(
            "ecs",
            "",
            "DescribeInvocations",
            [
                ("RegionId", "cn-hangzhou"),
                ("IncludeOutput", "true"),
                ("ContentEncoding", "PlainText"),
                ("PageSize", "50"),
            ],
        )
        .await
        .unwrap();
    let mut all = String::new();
    for i in r["Invocations"]["Invocation"].as_array().unwrap() {
        let content = base64::engine::general_purpose::STANDARD
            .decode(i["CommandContent"].as_str().unwrap())
            .unwrap();
        all.push_str(&String::from_utf8_lossy(&content));
        all.push('\n');
        all.push_str(&i.to_string());
        all.push('\n');
    }
    all
}

async fn logs_in(api: &OpenApi, user: &str, password: &str) -> bool {
    shell(
        api,
        None,
        &format!("echo '{password}' | su {user} -c whoami"),
    )
    .await
    .0 == 0
}

fn crash_at(point: CrashPoint) -> CrashHook {
    CrashHook::new(move |p| {
        if p == point {
            panic!("simulated crash at {p}");
        }
    })
}

/// Rotates with a crash at `after-set`, then again without: the second run
/// completes the rotation the first one left pending.
pub(crate) async fn rotate_with_crash_then_resume(
    e: &Env,
    plugin: &str,
    secret: &str,
    settings: Value,
    token: &str,
) -> RotationOutcome {
    let (crashing, _) = e.rotator_with(vec![e.shipped(plugin)], crash_at(CrashPoint::AfterSet));
    let req = request(secret, plugin, settings.clone(), token, 1);
    let crashed = tokio::spawn(async move { crashing.rotate(&req).await }).await;
    assert!(crashed.unwrap_err().is_panic(), "the first run crashed");
    assert!(
        e.stage(secret, "ACSPending").await.is_some(),
        "the candidate is pending"
    );
    let (rotator, _) = e.rotator(vec![e.shipped(plugin)]);
    rotator
        .rotate(&request(secret, plugin, settings, token, 2))
        .await
        .unwrap()
}

pub(crate) fn rotated(token: &str) -> RotationOutcome {
    RotationOutcome::Rotated {
        version_id: token.into(),
        resumed: false,
    }
}

pub(crate) fn value(s: &str) -> Value {
    serde_json::from_str(s).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_password_rotates_an_os_login_and_survives_a_crash_after_set() {
    let e = env_world(Some(WORLD)).await;
    e.create(
        "ecs/app",
        r#"{"username":"app","password":"Initial-Passw0rd"}"#,
    )
    .await;
    let settings = json!({"instance_id": INSTANCE});

    let (rotator, history) = e.rotator(vec![e.shipped("ecs-password")]);
    let out = rotator
        .rotate(&request(
            "ecs/app",
            "ecs-password",
            settings.clone(),
            "rota-t-1",
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out, rotated("rota-t-1"));
    let cur = value(&e.stage("ecs/app", "ACSCurrent").await.unwrap().1);
    assert_eq!(cur["username"], "app");
    let pw = cur["password"].as_str().unwrap();
    assert_eq!(pw.len(), 24);
    // Neither password is in what Cloud Assistant recorded of the
    // rotation (read before this test's own su checks, which put them in
    // command texts), though the rotation ran commands.
    let recorded = recorded_invocations(&e.api).await;
    assert!(recorded.contains("chpasswd -e"), "{recorded}");
    assert!(recorded.contains("getent shadow app"), "{recorded}");
    assert!(
        !recorded.contains(pw),
        "the new password was recorded: {recorded}"
    );
    assert!(
        !recorded.contains("Initial-Passw0rd"),
        "the old password was recorded: {recorded}"
    );
    assert!(logs_in(&e.api, "app", pw).await, "the new password logs in");
    assert!(
        !logs_in(&e.api, "app", "Initial-Passw0rd").await,
        "the old one does not"
    );
    assert_eq!(history.events().len(), 5);

    let out =
        rotate_with_crash_then_resume(&e, "ecs-password", "ecs/app", settings, "rota-t-2").await;
    assert_eq!(out, rotated("rota-t-2"));
    let cur = value(&e.stage("ecs/app", "ACSCurrent").await.unwrap().1);
    assert_ne!(cur["password"].as_str().unwrap(), pw);
    assert!(logs_in(&e.api, "app", cur["password"].as_str().unwrap()).await);
    assert_eq!(
        e.stage("ecs/app", "ACSPrevious").await.unwrap().0,
        "rota-t-1"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecs_sshkey_installs_a_new_key_pair_and_survives_a_crash_after_set() {
    let e = env_world(Some(WORLD)).await;
    e.create("ecs/deploy", r#"{"username":"deploy","private_key":"old","public_key":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKeyOldKeyOldKeyOldKeyOldKeyOldKey0 old@laptop"}"#).await;
    let settings = json!({"instance_id": INSTANCE});
    let (rotator, _) = e.rotator(vec![e.shipped("ecs-sshkey")]);
    let out = rotator
        .rotate(&request(
            "ecs/deploy",
            "ecs-sshkey",
            settings.clone(),
            "rota-t-1",
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out, rotated("rota-t-1"));
    let cur = value(&e.stage("ecs/deploy", "ACSCurrent").await.unwrap().1);
    let public = cur["public_key"].as_str().unwrap();
    assert!(public.starts_with("ssh-ed25519 "), "{public}");
    assert!(
        cur["private_key"]
            .as_str()
            .unwrap()
            .contains("OPENSSH PRIVATE KEY")
    );
    let (code, keys) = shell(&e.api, Some("deploy"), "cat ~deploy/.ssh/authorized_keys").await;
    assert_eq!(code, 0);
    assert_eq!(keys.trim(), public);

    let out =
        rotate_with_crash_then_resume(&e, "ecs-sshkey", "ecs/deploy", settings, "rota-t-2").await;
    assert_eq!(out, rotated("rota-t-2"));
    let cur = value(&e.stage("ecs/deploy", "ACSCurrent").await.unwrap().1);
    let (_, keys) = shell(&e.api, Some("deploy"), "cat ~deploy/.ssh/authorized_keys").await;
    assert_eq!(keys.trim(), cur["public_key"].as_str().unwrap());
    assert_ne!(cur["public_key"].as_str().unwrap(), public);
}

async fn rds_account(api: &OpenApi, account: &str) -> Value {
    let r = api
        .call(
            "rds",
            "",
            "DescribeAccounts",
            [("DBInstanceId", "rm-bp1rotatest"), ("AccountName", account)],
        )
        .await
        .unwrap();
    r["Accounts"]["DBInstanceAccount"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rds_account_single_and_dual_modes_on_the_emulated_instance() {
    let e = env_world(Some(WORLD)).await;
    // single
    e.create(
        "rds/single",
        r#"{"username":"app_a","password":"Initial-Passw0rd-A","host":"db"}"#,
    )
    .await;
    let single = json!({"instance_id": "rm-bp1rotatest"});
    let (rotator, _) = e.rotator(vec![e.shipped("rds-account")]);
    let out = rotator
        .rotate(&request(
            "rds/single",
            "rds-account",
            single.clone(),
            "rota-t-1",
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out, rotated("rota-t-1"));
    let cur = value(&e.stage("rds/single", "ACSCurrent").await.unwrap().1);
    assert_eq!(cur["username"], "app_a");
    assert_eq!(cur["host"], "db", "other fields are kept");
    assert_ne!(cur["password"], "Initial-Passw0rd-A");
    assert_eq!(rds_account(&e.api, "app_a").await["AccountName"], "app_a");

    let out =
        rotate_with_crash_then_resume(&e, "rds-account", "rds/single", single, "rota-t-2").await;
    assert_eq!(out, rotated("rota-t-2"));

    // dual: alternate app_a / app_b; the previous account is left alone.
    e.create(
        "rds/dual",
        r#"{"username":"app_a","password":"Initial-Passw0rd-A"}"#,
    )
    .await;
    let dual =
        json!({"instance_id": "rm-bp1rotatest", "mode": "dual", "accounts": ["app_a", "app_b"]});
    let mut users = Vec::new();
    for (i, token) in ["rota-d-1", "rota-d-2", "rota-d-3"].iter().enumerate() {
        let out = rotator
            .rotate(&request("rds/dual", "rds-account", dual.clone(), token, 1))
            .await
            .unwrap();
        assert_eq!(out, rotated(token), "rotation {i}");
        let cur = value(&e.stage("rds/dual", "ACSCurrent").await.unwrap().1);
        let prev = value(&e.stage("rds/dual", "ACSPrevious").await.unwrap().1);
        assert_ne!(
            cur["username"], prev["username"],
            "current and previous are different accounts"
        );
        users.push(cur["username"].as_str().unwrap().to_owned());
    }
    assert_eq!(users, ["app_b", "app_a", "app_b"]);

    let bad =
        json!({"instance_id": "rm-bp1rotatest", "mode": "dual", "accounts": ["app_a", "ghost"]});
    e.create(
        "rds/ghost",
        r#"{"username":"app_a","password":"Initial-Passw0rd-A"}"#,
    )
    .await;
    let err = rotator
        .rotate(&request("rds/ghost", "rds-account", bad, "rota-g-1", 1))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("account ghost does not exist on rm-bp1rotatest"),
        "{err}"
    );
}

async fn ram_keys(api: &OpenApi) -> Vec<String> {
    let r = api
        .call("ram", "", "ListAccessKeys", [("UserName", "alice")])
        .await
        .unwrap();
    let mut ids: Vec<String> = r["AccessKeys"]["AccessKey"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["AccessKeyId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ram_accesskey_overlaps_two_keys_and_deletes_the_old_one_after_the_grace_period() {
    let e = env_world(Some(WORLD)).await;
    e.create(
        "ram/alice",
        &json!({"AccessKeyId": "LTAI5tAliceKey000001", "AccessKeySecret": format!("alice-key-secret-{CANARY}")}).to_string(),
    )
    .await;
    let grace = json!({"user": "alice", "grace_period_hours": 24});
    let (rotator, history) = e.rotator(vec![e.shipped("ram-accesskey")]);
    rotator
        .rotate(&request(
            "ram/alice",
            "ram-accesskey",
            grace.clone(),
            "rota-t-1",
            1,
        ))
        .await
        .unwrap();
    let cur = value(&e.stage("ram/alice", "ACSCurrent").await.unwrap().1);
    let new_id = cur["AccessKeyId"].as_str().unwrap().to_owned();
    let mut both = vec!["LTAI5tAliceKey000001".to_owned(), new_id.clone()];
    both.sort();
    assert_eq!(ram_keys(&e.api).await, both, "old and new key overlap");

    // Within the grace period a third key cannot be made: refused, nothing written.
    let err = rotator
        .rotate(&request("ram/alice", "ram-accesskey", grace, "rota-t-2", 1))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("within its 24h grace period"),
        "{err}"
    );
    assert!(e.stage("ram/alice", "ACSPending").await.is_none());
    assert_eq!(ram_keys(&e.api).await, both);

    // Grace period 0: the next rotation deletes the previous key to make
    // room and, when it finishes, the key it replaced.
    let now = json!({"user": "alice", "grace_period_hours": 0});
    let out =
        rotate_with_crash_then_resume(&e, "ram-accesskey", "ram/alice", now, "rota-t-3").await;
    assert_eq!(out, rotated("rota-t-3"));
    let cur = value(&e.stage("ram/alice", "ACSCurrent").await.unwrap().1);
    assert_eq!(
        ram_keys(&e.api).await,
        vec![cur["AccessKeyId"].as_str().unwrap().to_owned()]
    );
    let events = format!("{:?}", history.events());
    assert!(!events.contains(CANARY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_posts_a_notification_without_the_value() {
    let e = env_world(None).await;
    let s = stub().await;
    e.create("app/hooked", CANARY).await;
    let settings = json!({"url": format!("http://{}/notify", s.addr), "length": 20});
    let (rotator, _) = e.rotator(vec![e.shipped("webhook")]);
    let out = rotator
        .rotate(&request(
            "app/hooked",
            "webhook",
            settings.clone(),
            "rota-t-1",
            1,
        ))
        .await
        .unwrap();
    assert_eq!(out, rotated("rota-t-1"));
    let (_, cur) = e.stage("app/hooked", "ACSCurrent").await.unwrap();
    assert_eq!(cur.len(), 20);
    let bodies = s.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    assert_eq!(
        value(&bodies[0]),
        json!({"event": "rotated", "secret": "app/hooked", "version": "rota-t-1", "plugin": "webhook"})
    );
    assert!(!bodies[0].contains(&cur) && !bodies[0].contains(CANARY));

    let out =
        rotate_with_crash_then_resume(&e, "webhook", "app/hooked", settings, "rota-t-2").await;
    assert_eq!(out, rotated("rota-t-2"));
    assert_eq!(s.bodies.lock().unwrap().len(), 2);
}
