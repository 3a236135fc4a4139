//! Secret data never reaches the data directory (database, WAL, shared
//! memory, keys) or the logs, whichever transport wrote it.

use std::sync::Arc;

use rota_kms::kms::*;
use rota_kms::{KmsClient, SecretString, SignatureVersion};

use crate::common::{env, logs};

const CANARY: &str = "CANARY-7f3a9c1e-never-on-disk";

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_absent(dir: &std::path::Path, stage: &str) {
    let mut all = Vec::new();
    files(dir, &mut all);
    assert!(all.iter().any(|p| p.ends_with("kms.db")), "{all:?}");
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        assert!(
            !bytes.windows(CANARY.len()).any(|w| w == CANARY.as_bytes()),
            "{stage}: the canary is in {}",
            f.display()
        );
        // Not even its tail (a value split across pages would still match this).
        assert!(
            !bytes
                .windows(12)
                .any(|w| w == &CANARY.as_bytes()[CANARY.len() - 12..]),
            "{stage}: {}",
            f.display()
        );
    }
}

#[tokio::test]
async fn canary_is_absent_from_disk_and_logs() {
    let e = env().await;
    let local = e.client();
    let server = e.server().await;
    let http = KmsClient::new(Arc::new(e.http(&server, SignatureVersion::V1)));
    local
        .send(&CreateSecret {
            secret_name: "canary/a".into(),
            secret_data: SecretString::new(CANARY),
            version_id: "v1".into(),
            ..CreateSecret::default()
        })
        .await
        .unwrap();
    http.send(&PutSecretValue {
        secret_name: "canary/a".into(),
        version_id: "v2".into(),
        secret_data: SecretString::new(format!("{CANARY}-2")),
        secret_data_type: None,
        version_stages: None,
    })
    .await
    .unwrap();
    http.send(&CreateSecret {
        secret_name: "canary/rds".into(),
        secret_data: SecretString::new(format!(
            r#"{{"Accounts":[{{"AccountName":"app","AccountPassword":"{CANARY}"}}]}}"#
        )),
        version_id: "v1".into(),
        secret_type: Some("Rds".into()),
        extended_config: Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#.into()),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    // Reads, a conflicting put (its error), and a bad signature quoting the data.
    assert!(
        http.get_secret_value("canary/a")
            .await
            .unwrap()
            .secret_data
            .expose_secret()
            .starts_with(CANARY)
    );
    let conflict = http
        .send(&PutSecretValue {
            secret_name: "canary/a".into(),
            version_id: "v2".into(),
            secret_data: SecretString::new(format!("{CANARY}-other")),
            secret_data_type: None,
            version_stages: None,
        })
        .await
        .unwrap_err();
    assert!(!format!("{conflict} {conflict:?}").contains(CANARY));
    let wrong = KmsClient::new(Arc::new(e.http_with(
        &server,
        SignatureVersion::V1,
        rota_kms::credentials::Credentials::new("LTAIroottestkey00001", "wrong"),
    )));
    let err = wrong
        .send(&PutSecretValue {
            secret_name: "canary/a".into(),
            version_id: "v3".into(),
            secret_data: SecretString::new(CANARY),
            secret_data_type: None,
            version_stages: None,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    assert!(!format!("{err} {err:?}").contains(CANARY));
    assert_absent(e.dir.path(), "after writes");
    e.cloud.checkpoint().await.unwrap();
    assert_absent(e.dir.path(), "after a checkpoint");
    server.shutdown().await;
    let log = logs();
    assert!(log.contains("secret created"), "the log capture works");
    assert!(!log.contains(CANARY), "the canary is in the logs");
}

/// The same for the targets: declared and rotated ECS passwords, RDS
/// passwords (the API and the world), RAM access key secrets, Cloud
/// Assistant scripts and parameters that carry them, and the snapshot.
#[tokio::test]
async fn canary_is_absent_for_ecs_rds_and_ram_targets() {
    let world = format!(
        r#"{}
ecs_instance "i-canary0000000001" {{
  account "app" {{
    password = "{CANARY}"
  }}
}}
rds_instance "rm-canary000000001" {{
  engine = "MySQL"
  account "app" {{
    password = "{CANARY}"
  }}
}}
ram_user "canary" {{
  access_key "LTAIcanarykey0000001" {{
    secret = "{CANARY}-ram"
  }}
}}
"#,
        crate::common::TEST_WORLD
    );
    let e = crate::common::env_world(&world).await;
    let server = e.server().await;
    let http = KmsClient::new(Arc::new(e.http(&server, SignatureVersion::V3)));
    let api = rota_kms::OpenApi::new(Arc::new(e.http(&server, SignatureVersion::V1)));
    let rotate = |name: &str| RotateSecret {
        secret_name: name.into(),
        version_id: "v2".into(),
    };
    http.send(&CreateSecret {
        secret_name: "acs/ecs/canary".into(),
        secret_data: SecretString::new(format!(r#"{{"UserName":"app","Password":"{CANARY}"}}"#)),
        version_id: "v1".into(),
        secret_type: Some("ECS".into()),
        extended_config: Some(r#"{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"i-canary0000000001"}"#.into()),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    http.send(&rotate("acs/ecs/canary")).await.unwrap();
    http.send(&CreateSecret {
        secret_name: "db/canary".into(),
        secret_data: SecretString::new(format!(
            r#"{{"Accounts":[{{"AccountName":"app","AccountPassword":"{CANARY}"}}]}}"#
        )),
        version_id: "v1".into(),
        secret_type: Some("Rds".into()),
        extended_config: Some(
            r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-canary000000001"}"#.into(),
        ),
        ..CreateSecret::default()
    })
    .await
    .unwrap();
    http.send(&rotate("db/canary")).await.unwrap();
    let ram = http
        .send(&CreateSecret {
            secret_name: "$Auto".into(),
            secret_data: SecretString::new(format!(
                r#"{{"AccessKeys":[{{"AccessKeyId":"LTAIcanarykey0000001","AccessKeySecret":"{CANARY}-ram"}}]}}"#
            )),
            version_id: "v1".into(),
            secret_type: Some("RAMCredentials".into()),
            extended_config: Some(r#"{"SecretSubType":"RamUserAccessKey","UserName":"canary"}"#.into()),
            ..CreateSecret::default()
        })
        .await
        .unwrap();
    http.send(&rotate(&ram.secret_name)).await.unwrap();
    // The canary through the target APIs: a script, a public command's
    // parameters, RDS passwords (accepted and refused).
    let script = format!("echo 'app:{CANARY}' | chpasswd");
    api.call(
        "ecs",
        "",
        "RunCommand",
        [
            ("RegionId", "cn-hangzhou"),
            ("Type", "RunShellScript"),
            ("CommandContent", script.as_str()),
            ("InstanceId.1", "i-canary0000000001"),
        ],
    )
    .await
    .unwrap();
    let params = format!(r#"{{"username":"app","password":"{CANARY}"}}"#);
    api.call(
        "ecs",
        "",
        "InvokeCommand",
        [
            ("RegionId", "cn-hangzhou"),
            ("CommandId", "cmd-ACS-KMS-RotateECSSecret-For-Linux.sh"),
            ("InstanceId.1", "i-canary0000000001"),
            ("Parameters", params.as_str()),
        ],
    )
    .await
    .unwrap();
    api.call(
        "rds",
        "",
        "ResetAccountPassword",
        [
            ("DBInstanceId", "rm-canary000000001"),
            ("AccountName", "app"),
            ("AccountPassword", CANARY),
        ],
    )
    .await
    .unwrap();
    let bad = format!("{CANARY}'");
    let err = api
        .call(
            "rds",
            "",
            "ResetAccountPassword",
            [
                ("DBInstanceId", "rm-canary000000001"),
                ("AccountName", "app"),
                ("AccountPassword", bad.as_str()),
            ],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("InvalidAccountPassword.Malformed"));
    assert!(!format!("{err} {err:?}").contains(CANARY));
    let snap = serde_json::to_string(&e.cloud.world_snapshot().await).unwrap();
    assert!(
        !snap.contains(CANARY),
        "the canary is in the world snapshot"
    );
    assert_absent(e.dir.path(), "targets, after writes");
    e.cloud.checkpoint().await.unwrap();
    assert_absent(e.dir.path(), "targets, after a checkpoint");
    server.shutdown().await;
    assert!(!logs().contains(CANARY), "the canary is in the logs");
}
