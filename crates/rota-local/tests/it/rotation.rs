//! Managed rotation per type against the emulated targets: the target's
//! credential equals ACSCurrent afterwards, ACSPrevious holds the old
//! value; RAM keys sign over HTTP; bad input; automatic rotation; the seed's
//! example.

use std::sync::Arc;

use chrono::Duration;
use rota_kms::credentials::Credentials;
use rota_kms::kms::*;
use rota_kms::{KmsClient, SecretString, SignatureVersion};
use serde_json::Value;

use crate::common::{code, env, env_world};
use crate::targets::{logs_in, run};

const ECS: &str = "i-test00000000000001";

fn value(v: &SecretValue) -> Value {
    serde_json::from_str(v.secret_data.expose_secret()).unwrap()
}

fn rotate(name: &str, vid: &str) -> RotateSecret {
    RotateSecret {
        secret_name: name.into(),
        version_id: vid.into(),
    }
}

async fn stage(c: &KmsClient, name: &str, stage: &str) -> SecretValue {
    c.send(&GetSecretValue {
        secret_name: name.into(),
        version_stage: Some(stage.into()),
        ..GetSecretValue::default()
    })
    .await
    .unwrap()
}

/// An ECS password secret of user `app` on `instance`, with automatic
/// rotation every `interval`.
fn rotating_ecs_secret(name: &str, instance: &str, interval: &str) -> CreateSecret {
    let mut r = ecs_secret(
        name,
        instance,
        "Password",
        r#"{"UserName":"app","Password":"App-Passw0rd1"}"#,
    );
    r.enable_automatic_rotation = Some(true);
    r.rotation_interval = Some(interval.into());
    r
}

fn ecs_secret(name: &str, instance: &str, sub: &str, data: &str) -> CreateSecret {
    CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new(data),
        version_id: "v1".into(),
        secret_type: Some("ECS".into()),
        extended_config: Some(format!(
            r#"{{"SecretSubType":"{sub}","RegionId":"cn-hangzhou","InstanceId":"{instance}"}}"#
        )),
        ..CreateSecret::default()
    }
}

#[tokio::test]
async fn ecs_password_rotation_changes_the_account() {
    let e = env().await;
    let c = e.client();
    let api = e.api();
    let r = rotating_ecs_secret("acs/ecs/app", ECS, "7d");
    c.send(&r).await.unwrap();
    e.clock.advance(Duration::hours(1));
    let resp = c.send(&rotate("acs/ecs/app", "v2")).await.unwrap();
    assert_eq!(resp.version_id, "v2");
    let cur = c.get_secret_value("acs/ecs/app").await.unwrap();
    let prev = stage(&c, "acs/ecs/app", "ACSPrevious").await;
    assert_eq!(
        (cur.version_id.as_str(), prev.version_id.as_str()),
        ("v2", "v1")
    );
    let new_pw = value(&cur)["Password"].as_str().unwrap().to_owned();
    assert_eq!(new_pw.len(), 32);
    assert_eq!(value(&prev)["Password"], "App-Passw0rd1");
    assert!(
        logs_in(&api, ECS, "app", &new_pw).await,
        "the account holds ACSCurrent"
    );
    assert!(
        !logs_in(&api, ECS, "app", "App-Passw0rd1").await,
        "the old password still logs in"
    );
    let d = c.describe_secret("acs/ecs/app").await.unwrap();
    assert_eq!(
        d.last_rotation_date.as_deref(),
        Some("2024-01-01T01:00:00Z")
    );
    assert_eq!(
        d.next_rotation_date.as_deref(),
        Some("2024-01-08T01:00:00Z")
    );
    // Idempotent on VersionId.
    c.send(&rotate("acs/ecs/app", "v2")).await.unwrap();
    assert_eq!(
        c.get_secret_value("acs/ecs/app").await.unwrap().secret_data,
        cur.secret_data
    );
    // The snapshot says which version the account holds.
    let snap = e.cloud.world_snapshot().await;
    let app = snap
        .ecs_instances
        .iter()
        .find(|i| i.instance_id == ECS)
        .unwrap()
        .accounts
        .iter()
        .find(|a| a.name == "app")
        .unwrap();
    assert_eq!(app.held_by, ["acs/ecs/app ACSCurrent (v2)"]);
    // The rotation ran as a Cloud Assistant invocation of the public command.
    let inv = api
        .call(
            "ecs",
            "",
            "DescribeInvocations",
            [
                ("RegionId", "cn-hangzhou"),
                ("CommandId", "cmd-ACS-KMS-RotateECSSecret-For-Linux.sh"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        inv["Invocations"]["Invocation"][0]["InvocationStatus"],
        "Success"
    );
    assert!(!inv.to_string().contains(&new_pw));
}

#[tokio::test]
async fn ecs_ssh_key_rotation_installs_a_working_key_pair() {
    let e = env().await;
    let c = e.client();
    let api = e.api();
    let old =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKeyOldKeyOldKeyOldKeyOldKeyOldKeyOldK deploy@old";
    let data =
        serde_json::json!({"UserName": "deploy", "PublicKey": old, "PrivateKey": "old-private"})
            .to_string();
    c.send(&ecs_secret("acs/ecs/deploy", ECS, "SSHKey", &data))
        .await
        .unwrap();
    c.send(&rotate("acs/ecs/deploy", "v2")).await.unwrap();
    let cur = value(&c.get_secret_value("acs/ecs/deploy").await.unwrap());
    let public = cur["PublicKey"].as_str().unwrap();
    let row = run(&api, ECS, "cat ~deploy/.ssh/authorized_keys", None).await;
    assert_eq!(crate::targets::output(&row), format!("{public}\n"));
    assert_eq!(
        value(&stage(&c, "acs/ecs/deploy", "ACSPrevious").await)["PublicKey"],
        old
    );
    // The private key is a real OpenSSH key whose public half is the one installed.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id");
    std::fs::write(&path, cur["PrivateKey"].as_str().unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let derived = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        derived.status.success(),
        "{}",
        String::from_utf8_lossy(&derived.stderr)
    );
    let derived = String::from_utf8(derived.stdout).unwrap();
    let key_of = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(key_of(&derived), key_of(public));
}

#[tokio::test]
async fn windows_rotates_passwords_but_not_ssh_keys() {
    let e = env().await;
    let c = e.client();
    let win = "i-win0000000000001";
    c.send(&ecs_secret(
        "acs/ecs/win",
        win,
        "Password",
        r#"{"UserName":"Administrator","Password":"Win-Passw0rd1"}"#,
    ))
    .await
    .unwrap();
    c.send(&rotate("acs/ecs/win", "v2")).await.unwrap();
    let snap = e.cloud.world_snapshot().await;
    let admin = &snap
        .ecs_instances
        .iter()
        .find(|i| i.instance_id == win)
        .unwrap()
        .accounts[0];
    assert_eq!(admin.held_by, ["acs/ecs/win ACSCurrent (v2)"]);
    let data = r#"{"UserName":"Administrator","PublicKey":"ssh-ed25519 AAAA x","PrivateKey":"p"}"#;
    c.send(&ecs_secret("acs/ecs/win-ssh", win, "SSHKey", data))
        .await
        .unwrap();
    assert_eq!(
        code(c.send(&rotate("acs/ecs/win-ssh", "v2")).await),
        "CommandNotApplicable"
    );
}

fn rds_secret(name: &str, sub: &str, accounts: &str) -> CreateSecret {
    CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new(format!(r#"{{"Accounts":{accounts}}}"#)),
        version_id: "v1".into(),
        secret_type: Some("Rds".into()),
        extended_config: Some(format!(
            r#"{{"SecretSubType":"{sub}","DBInstanceId":"rm-test000000000001"}}"#
        )),
        ..CreateSecret::default()
    }
}

#[tokio::test]
async fn rds_single_and_double_users() {
    let e = env().await;
    let c = e.client();
    c.send(&rds_secret(
        "db/single",
        "SingleUser",
        r#"[{"AccountName":"app","AccountPassword":"App-Passw0rd1"}]"#,
    ))
    .await
    .unwrap();
    c.send(&rotate("db/single", "v2")).await.unwrap();
    let snap = e.cloud.world_snapshot().await;
    let rm = &snap.rds_instances[snap
        .rds_instances
        .iter()
        .position(|i| i.instance_id == "rm-test000000000001")
        .unwrap()];
    assert_eq!(
        rm.accounts
            .iter()
            .find(|a| a.name == "app")
            .unwrap()
            .held_by,
        ["db/single ACSCurrent (v2)"]
    );
    assert_eq!(
        value(&stage(&c, "db/single", "ACSPrevious").await)["AccountPassword"],
        "App-Passw0rd1"
    );
    // DoubleUsers: alternates between app and app_clone (created on first use).
    let e = env().await;
    let c = e.client();
    c.send(&rds_secret(
        "db/double",
        "DoubleUsers",
        r#"[{"AccountName":"app","AccountPassword":"App-Passw0rd1"}]"#,
    ))
    .await
    .unwrap();
    for (vid, current, previous) in [("v2", "app_clone", "app"), ("v3", "app", "app_clone")] {
        c.send(&rotate("db/double", vid)).await.unwrap();
        let cur = value(&c.get_secret_value("db/double").await.unwrap());
        let prev = value(&stage(&c, "db/double", "ACSPrevious").await);
        assert_eq!(
            (cur["AccountName"].as_str(), prev["AccountName"].as_str()),
            (Some(current), Some(previous))
        );
        // Both accounts work during the handover: each holds its version.
        let snap = e.cloud.world_snapshot().await;
        let rm = snap
            .rds_instances
            .iter()
            .find(|i| i.instance_id == "rm-test000000000001")
            .unwrap();
        let held = |n: &str| {
            rm.accounts
                .iter()
                .find(|a| a.name == n)
                .unwrap()
                .held_by
                .clone()
        };
        assert_eq!(held(current), [format!("db/double ACSCurrent ({vid})")]);
        assert_eq!(held(previous).len(), 1);
        assert!(held(previous)[0].contains("ACSPrevious"));
    }
}

#[tokio::test]
async fn ram_rotation_new_key_signs_and_the_deleted_key_is_refused() {
    let e = env().await;
    let c = e.client();
    let server = e.server().await;
    let signer = |id: &str, secret: &str| {
        KmsClient::new(Arc::new(e.http_with(
            &server,
            SignatureVersion::V1,
            Credentials::new(id.to_owned(), secret.to_owned()),
        )))
    };
    let created = c
        .send(&CreateSecret {
            secret_name: "$Auto".into(),
            secret_data: SecretString::new(r#"{"AccessKeys":[{"AccessKeyId":"LTAIsvcinitialkey0001","AccessKeySecret":"svc-initial-secret"}]}"#),
            version_id: "v1".into(),
            secret_type: Some("RAMCredentials".into()),
            extended_config: Some(r#"{"SecretSubType":"RamUserAccessKey","UserName":"svc"}"#.into()),
            ..CreateSecret::default()
        })
        .await
        .unwrap();
    let name = created.secret_name;
    assert_eq!(name, "acs/ram/user/svc");
    let mut keys = vec![(
        "LTAIsvcinitialkey0001".to_owned(),
        "svc-initial-secret".to_owned(),
    )];
    for vid in ["v2", "v3"] {
        c.send(&rotate(&name, vid)).await.unwrap();
        let cur = value(&c.get_secret_value(&name).await.unwrap());
        assert!(cur["GenerateTimestamp"].as_str().unwrap().ends_with('Z'));
        let pair = (
            cur["AccessKeyId"].as_str().unwrap().to_owned(),
            cur["AccessKeySecret"].as_str().unwrap().to_owned(),
        );
        // The new key signs a KMS request over HTTP.
        signer(&pair.0, &pair.1)
            .get_secret_value(&name)
            .await
            .unwrap();
        keys.push(pair);
    }
    // After the second rotation the oldest key was retired; ACSPrevious still works.
    let prev = value(&stage(&c, &name, "ACSPrevious").await);
    assert_eq!(prev["AccessKeyId"].as_str(), Some(keys[1].0.as_str()));
    signer(&keys[1].0, &keys[1].1)
        .get_secret_value(&name)
        .await
        .unwrap();
    assert_eq!(
        code(signer(&keys[0].0, &keys[0].1).get_secret_value(&name).await),
        "InvalidAccessKeyId.NotFound"
    );
    server.shutdown().await;
}

/// A secret policy letting the RAM user `svc` read the value, nothing else.
const SVC_MAY_READ: &str = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["acs:ram::1234567890123456:user/svc"]},"Action":["kms:GetSecretValue"],"Resource":["*"]}]}"#;

/// Creates secret `name` (value `x`, version `v1`) with `policy`.
async fn create(c: &KmsClient, name: &str, policy: Option<&str>) {
    c.send(&CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new("x"),
        version_id: "v1".into(),
        policy: policy.map(str::to_owned),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn secret_policies_name_ram_principals() {
    let e = env().await;
    create(&e.client(), "for-svc", Some(SVC_MAY_READ)).await;
    e.client_as("LTAIsvcinitialkey0001")
        .get_secret_value("for-svc")
        .await
        .unwrap();
    assert_eq!(
        code(
            e.client_as("LTAIaliceexample0001")
                .get_secret_value("for-svc")
                .await
        ),
        "Forbidden.NoPermission"
    );
}

/// A caller the secret's policy does not allow is refused before any of
/// its other parameters is parsed: malformed values (a policy that is not
/// JSON, an out-of-range page, an unknown stage) answer Forbidden, not a
/// parsing error that tells it what the server reads.
#[tokio::test]
async fn a_denied_caller_is_refused_before_its_parameters_are_parsed() {
    let e = env().await;
    create(&e.client(), "guarded", Some(SVC_MAY_READ)).await;
    create(&e.client(), "open", None).await;
    let svc = rota_kms::OpenApi::new(Arc::new(
        e.cloud.as_access_key("LTAIsvcinitialkey0001").unwrap(),
    ));
    let root = e.api();
    // (action, parameters, the code root gets on an open secret)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case<'_>] = &[
        ("SetSecretPolicy", &[("Policy", "{not json")], ""),
        (
            "PutSecretValue",
            &[
                ("VersionId", "v2"),
                ("SecretData", "y"),
                ("VersionStages", "[\"Bad Stage\"]"),
            ],
            "InvalidParameter",
        ),
        (
            "UpdateSecretVersionStage",
            &[("VersionStage", "Bad Stage"), ("MoveToVersion", "v1")],
            "InvalidParameter",
        ),
        (
            "UpdateSecret",
            &[("ExtendedConfig.CustomData", "{not json")],
            "InvalidParameter",
        ),
        (
            "ListSecretVersionIds",
            &[("PageSize", "1000")],
            "InvalidParameter",
        ),
        (
            "DeleteSecret",
            &[("RecoveryWindowInDays", "1")],
            "InvalidParameter",
        ),
        (
            "DescribeSecret",
            &[("FetchTags", "maybe")],
            "InvalidParameter",
        ),
        (
            "UpdateSecretRotationPolicy",
            &[
                ("EnableAutomaticRotation", "true"),
                ("RotationInterval", "7\u{221e}"),
            ],
            "InvalidParameter",
        ),
    ];
    for (action, params, root_code) in cases {
        let mut all = vec![("SecretName".to_owned(), "guarded".to_owned())];
        all.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let denied = svc.call("kms", "", action, all.clone()).await;
        assert_eq!(
            code(denied),
            "Forbidden.NoPermission",
            "{action} as the denied user"
        );
        // The account root, on a secret without a policy, gets the parsing error.
        all[0].1 = "open".to_owned();
        let allowed = root.call("kms", "", action, all).await;
        let got = code(allowed);
        assert!(
            got.starts_with(root_code) && got != "Forbidden.NoPermission",
            "{action} as root: {got}"
        );
    }
}

#[tokio::test]
async fn bad_input_answers_alibaba_codes_and_writes_nothing() {
    let e = env().await;
    let c = e.client();
    c.send(&CreateSecret {
        secret_name: "gen".into(),
        secret_data: SecretString::new("x"),
        version_id: "v1".into(),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    assert_eq!(code(c.send(&rotate("gen", "v2")).await), "InvalidParameter");
    c.send(&ecs_secret(
        "acs/ecs/gone",
        "i-gone000000000001",
        "Password",
        r#"{"UserName":"app","Password":"x"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        code(c.send(&rotate("acs/ecs/gone", "v2")).await),
        "InstanceNotExists"
    );
    c.send(&ecs_secret(
        "acs/ecs/ghost",
        ECS,
        "Password",
        r#"{"UserName":"ghost","Password":"x"}"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        code(c.send(&rotate("acs/ecs/ghost", "v2")).await),
        "AccountNotExists"
    );
    let mut r = rds_secret(
        "db/gone",
        "SingleUser",
        r#"[{"AccountName":"app","AccountPassword":"x"}]"#,
    );
    r.extended_config = Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-gone"}"#.into());
    c.send(&r).await.unwrap();
    assert_eq!(
        code(c.send(&rotate("db/gone", "v2")).await),
        "InvalidDBInstanceId.NotFound"
    );
    c.send(&rds_secret(
        "db/ghost",
        "SingleUser",
        r#"[{"AccountName":"ghost","AccountPassword":"x"}]"#,
    ))
    .await
    .unwrap();
    assert_eq!(
        code(c.send(&rotate("db/ghost", "v2")).await),
        "InvalidAccountName.NotFound"
    );
    c.send(&CreateSecret {
        secret_name: "$Auto".into(),
        secret_data: SecretString::new(
            r#"{"AccessKeys":[{"AccessKeyId":"LTAIx","AccessKeySecret":"y"}]}"#,
        ),
        version_id: "v1".into(),
        secret_type: Some("RAMCredentials".into()),
        extended_config: Some(r#"{"SecretSubType":"RamUserAccessKey","UserName":"nobody"}"#.into()),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    assert_eq!(
        code(c.send(&rotate("acs/ram/user/nobody", "v2")).await),
        "EntityNotExist.User"
    );
    for name in [
        "acs/ecs/gone",
        "acs/ecs/ghost",
        "db/gone",
        "db/ghost",
        "acs/ram/user/nobody",
    ] {
        assert_eq!(
            c.list_all_versions(name).await.unwrap().len(),
            1,
            "{name} kept a version"
        );
    }
    let api = e.api();
    let bad = api
        .call(
            "rds",
            "",
            "ResetAccountPassword",
            [
                ("DBInstanceId", "rm-test000000000001"),
                ("AccountName", "app"),
                ("AccountPassword", "password"),
            ],
        )
        .await;
    assert_eq!(code(bad), "InvalidAccountPassword.Malformed");
}

#[tokio::test]
async fn automatic_rotation_runs_when_next_rotation_date_passes() {
    let e = env().await;
    let c = e.client();
    let r = rotating_ecs_secret("acs/ecs/auto", ECS, "604800s");
    c.send(&r).await.unwrap();
    assert!(e.cloud.rotate_due().await.is_empty());
    e.clock.advance(Duration::seconds(604_800));
    assert_eq!(e.cloud.rotate_due().await, ["acs/ecs/auto"]);
    let cur = c.get_secret_value("acs/ecs/auto").await.unwrap();
    assert_eq!(cur.version_id, "auto-1704672000");
    assert!(
        logs_in(
            &e.api(),
            ECS,
            "app",
            value(&cur)["Password"].as_str().unwrap()
        )
        .await
    );
    let d = c.describe_secret("acs/ecs/auto").await.unwrap();
    assert_eq!(
        d.next_rotation_date.as_deref(),
        Some("2024-01-15T00:00:00Z")
    );
    assert!(e.cloud.rotate_due().await.is_empty(), "not due again");
}

/// An automatic rotation that fails (the instance is gone) is not tried on
/// every check: it waits a minute, then two, doubling up to an hour.
#[tokio::test]
async fn a_failing_automatic_rotation_backs_off() {
    let e = env().await;
    let c = e.client();
    let r = rotating_ecs_secret("acs/ecs/gone", "i-gone000000000001", "604800s");
    c.send(&r).await.unwrap();
    e.clock.advance(Duration::seconds(604_800));
    let failures = || {
        e.cloud
            .failing_automatic_rotations()
            .get("acs/ecs/gone")
            .map(|f| f.0)
    };
    assert!(e.cloud.rotate_due().await.is_empty(), "the first try fails");
    assert_eq!(failures(), Some(1));
    // Within the minute: not tried.
    e.clock.advance(Duration::seconds(30));
    assert!(e.cloud.rotate_due().await.is_empty());
    assert_eq!(failures(), Some(1));
    // After it: tried again; then it waits two minutes.
    e.clock.advance(Duration::seconds(31));
    assert!(e.cloud.rotate_due().await.is_empty());
    assert_eq!(failures(), Some(2));
    e.clock.advance(Duration::seconds(90));
    assert!(e.cloud.rotate_due().await.is_empty());
    assert_eq!(failures(), Some(2));
    e.clock.advance(Duration::seconds(31));
    assert!(e.cloud.rotate_due().await.is_empty());
    assert_eq!(failures(), Some(3));
}

/// The seed's example (`examples/seed/main.tf`, its name corrected to
/// `acs/ecs/…`) against the world of `examples/seed-corrected/world.hcl`,
/// which declares the account, KMS instance, key and ECS instance it names.
#[tokio::test]
async fn seed_example_secret_is_created_and_rotates_the_ecs_account() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/seed-corrected/world.hcl");
    let world = std::fs::read_to_string(&path).unwrap();
    let e = env_world(&world).await;
    let c = e.client();
    let created = c
        .send(&CreateSecret {
            secret_name: "acs/ecs/terraform-example".into(),
            version_id: "v1".into(),
            description: Some("test".into()),
            secret_type: Some("ECS".into()),
            enable_automatic_rotation: Some(true),
            secret_data_type: Some("text".into()),
            secret_data: SecretString::new(r#"{"UserName":"ecs-user1423","Password":"ecs-user1423"}"#),
            policy: Some(r#"{"Version":"1","Statement":[{"Action":["kms:*"],"Resource":["*"],"Effect":"Allow","Principal":{"RAM":["acs:ram::1117600963847258:*"]},"Sid":"kms default secret policy"}]}"#.into()),
            encryption_key_id: Some("key-phzz661646aeygbqrfqg5j".into()),
            dkms_instance_id: Some("kst-phzz61dbabacquz826y29f".into()),
            rotation_interval: Some("604800s".into()),
            extended_config: Some(r#"{"SecretSubType":"Password","InstanceId":"i-bp1fr0a100hd0yf6ksq3","CustomData":{"Key1":"v1","fds":"fdsf"},"CommandId":"cmd-ACS-KMS-RotateECSSecret-For-Linux.sh","RegionId":"cn-hangzhou"}"#.into()),
            ..CreateSecret::default()
        })
        .await
        .unwrap();
    assert_eq!(
        created.arn,
        "acs:kms:cn-hangzhou:1117600963847258:secret/acs/ecs/terraform-example"
    );
    assert_eq!(created.rotation_interval.as_deref(), Some("604800s"));
    let api = e.api();
    assert!(
        logs_in(
            &api,
            "i-bp1fr0a100hd0yf6ksq3",
            "ecs-user1423",
            "ecs-user1423"
        )
        .await
    );
    c.send(&rotate("acs/ecs/terraform-example", "v2"))
        .await
        .unwrap();
    let pw = value(
        &c.get_secret_value("acs/ecs/terraform-example")
            .await
            .unwrap(),
    )["Password"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        logs_in(&api, "i-bp1fr0a100hd0yf6ksq3", "ecs-user1423", &pw).await,
        "the emulated account holds ACSCurrent"
    );
    assert!(
        !logs_in(
            &api,
            "i-bp1fr0a100hd0yf6ksq3",
            "ecs-user1423",
            "ecs-user1423"
        )
        .await
    );
    let snap = e.cloud.world_snapshot().await;
    assert_eq!(
        snap.ecs_instances[0].accounts[0].held_by,
        ["acs/ecs/terraform-example ACSCurrent (v2)"]
    );
}
