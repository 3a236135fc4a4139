//! KMS semantics through `KmsClient` over the in-process transport.

use rota_kms::SecretString;
use rota_kms::kms::*;

use crate::common::{code, env, status};

fn create(name: &str, data: &str) -> CreateSecret {
    CreateSecret {
        secret_name: name.into(),
        secret_data: SecretString::new(data),
        version_id: "v1".into(),
        ..CreateSecret::default()
    }
}

fn put(name: &str, vid: &str, data: &str, stages: Option<&[&str]>) -> PutSecretValue {
    PutSecretValue {
        secret_name: name.into(),
        version_id: vid.into(),
        secret_data: SecretString::new(data),
        secret_data_type: None,
        version_stages: stages.map(|s| s.iter().map(|x| x.to_string()).collect()),
    }
}

fn get(name: &str, vid: Option<&str>, stage: Option<&str>) -> GetSecretValue {
    GetSecretValue {
        secret_name: name.into(),
        version_id: vid.map(Into::into),
        version_stage: stage.map(Into::into),
        ..GetSecretValue::default()
    }
}

async fn stages(c: &KmsClient, name: &str) -> Vec<(String, Vec<String>)> {
    c.list_all_versions(name)
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version_id, v.version_stages.version_stage))
        .collect()
}

fn st(v: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    v.iter()
        .map(|(id, s)| (id.to_string(), s.iter().map(|x| x.to_string()).collect()))
        .collect()
}

#[tokio::test]
async fn create_get_describe_round_trip() {
    let e = env().await;
    let c = e.client();
    let r = c.send(&create("db/prod", "hello")).await.unwrap();
    assert_eq!(r.arn, "acs:kms:cn-hangzhou:1234567890123456:secret/db/prod");
    assert_eq!(r.secret_type, "Generic");
    assert!(!r.request_id.is_empty());
    let v = c.get_secret_value("db/prod").await.unwrap();
    assert_eq!(v.secret_data.expose_secret(), "hello");
    assert_eq!(v.secret_data_type, "text");
    assert_eq!(v.version_stages.version_stage, ["ACSCurrent"]);
    assert_eq!(v.create_time, "2024-01-01T00:00:00Z");
    assert_eq!(v.automatic_rotation, None);
    // By ARN too.
    let v = c
        .get_secret_value("acs:kms:cn-hangzhou:1234567890123456:secret/db/prod")
        .await
        .unwrap();
    assert_eq!(v.secret_name, "db/prod");
    let d = c.describe_secret("db/prod").await.unwrap();
    assert_eq!(d.encryption_key_id, "");
    assert_eq!(d.dkms_instance_id, None);
    assert_eq!(d.planned_delete_time, None);
    assert_eq!(d.tags, Some(Tags::default()));
    // Duplicate create.
    let dup = c.send(&create("db/prod", "x")).await;
    assert_eq!(status(c.send(&create("db/prod", "x")).await), 409);
    assert_eq!(code(dup), "Rejected.ResourceExist");
    // Missing secret.
    assert_eq!(
        code(c.get_secret_value("nope").await),
        "Forbidden.ResourceNotFound"
    );
    assert_eq!(status(c.get_secret_value("nope").await), 404);
}

#[tokio::test]
async fn names_sizes_and_types_are_validated() {
    let e = env().await;
    let c = e.client();
    for bad in ["has space", "acs/reserved", "", "x$y"] {
        let mut req = create(bad, "d");
        if bad.is_empty() {
            // The client refuses empty names itself; send through params instead.
            continue;
        }
        req.secret_name = bad.into();
        assert_eq!(code(c.send(&req).await), "InvalidParameter", "{bad}");
    }
    let long = "a".repeat(193);
    assert_eq!(code(c.send(&create(&long, "d")).await), "InvalidParameter");
    // 30,720 bytes is fine, one more is not (checked server-side too: build the request by hand).
    c.send(&create("big", &"x".repeat(30_720))).await.unwrap();
    let mut too_big = rota_kms::ApiRequest::kms("CreateSecret");
    too_big
        .query("SecretName", "big2")
        .query("VersionId", "v1")
        .body("SecretData", "x".repeat(30_721));
    let r = rota_kms::Transport::call(&e.cloud, too_big).await;
    assert_eq!(code(r), "InvalidParameter");
    // Binary is stored and returned verbatim, per version.
    let mut b = create("bin", "not base64 !!");
    b.secret_data_type = Some("binary".into());
    c.send(&b).await.unwrap();
    let v = c.get_secret_value("bin").await.unwrap();
    assert_eq!(v.secret_data_type, "binary");
    assert_eq!(v.secret_data.expose_secret(), "not base64 !!");
    let mut p = put("bin", "v2", "text now", None);
    p.secret_data_type = Some("text".into());
    c.send(&p).await.unwrap();
    assert_eq!(
        c.get_secret_value("bin").await.unwrap().secret_data_type,
        "text"
    );
    let old = c.send(&get("bin", Some("v1"), None)).await.unwrap();
    assert_eq!(old.secret_data_type, "binary");
    // Unknown type.
    let mut t = create("t", "d");
    t.secret_type = Some("Nope".into());
    assert_eq!(code(c.send(&t).await), "InvalidParameter");
}

#[tokio::test]
async fn put_secret_value_shifts_stages_and_is_idempotent() {
    let e = env().await;
    let c = e.client();
    c.send(&create("s", "one")).await.unwrap();
    let r = c.send(&put("s", "v2", "two", None)).await.unwrap();
    assert_eq!(r.version_stages.version_stage, ["ACSCurrent"]);
    c.send(&put("s", "v3", "three", None)).await.unwrap();
    assert_eq!(
        stages(&c, "s").await,
        st(&[
            ("v1", &[]),
            ("v2", &["ACSPrevious"]),
            ("v3", &["ACSCurrent"])
        ])
    );
    // Idempotent replay.
    let again = c.send(&put("s", "v3", "three", None)).await.unwrap();
    assert_eq!(again.version_stages.version_stage, ["ACSCurrent"]);
    // Different data for an existing version.
    let r = c.send(&put("s", "v3", "other", None)).await;
    assert_eq!(status(c.send(&put("s", "v3", "other", None)).await), 409);
    assert_eq!(code(r), "Rejected.ResourceExist");
    // Explicit stages: the new version gets exactly these; ACSCurrent shifts.
    let r = c
        .send(&put("s", "v4", "four", Some(&["ACSCurrent", "ACSNext"])))
        .await
        .unwrap();
    assert_eq!(r.version_stages.version_stage, ["ACSCurrent", "ACSNext"]);
    assert_eq!(
        stages(&c, "s").await,
        st(&[
            ("v1", &[]),
            ("v2", &[]),
            ("v3", &["ACSPrevious"]),
            ("v4", &["ACSCurrent", "ACSNext"])
        ])
    );
    // A pending version does not move ACSCurrent.
    c.send(&put("s", "v5", "five", Some(&["ACSPending"])))
        .await
        .unwrap();
    assert_eq!(c.get_secret_value("s").await.unwrap().version_id, "v4");
    let pending = c.send(&get("s", None, Some("ACSPending"))).await.unwrap();
    assert_eq!(pending.secret_data.expose_secret(), "five");
    // Replay with stages applies them (Terraform create-then-put).
    c.send(&put("s", "v5", "five", Some(&["ACSCurrent"])))
        .await
        .unwrap();
    let cur = c.get_secret_value("s").await.unwrap();
    assert_eq!(cur.version_id, "v5");
    assert_eq!(
        cur.version_stages.version_stage,
        ["ACSPending", "ACSCurrent"]
    );
    let prev = c.send(&get("s", None, Some("ACSPrevious"))).await.unwrap();
    assert_eq!(prev.version_id, "v4");
    // Deprecated versions are hidden unless asked for.
    let visible = c
        .send(&ListSecretVersionIds {
            secret_name: "s".into(),
            ..ListSecretVersionIds::default()
        })
        .await
        .unwrap();
    assert_eq!(visible.total_count, 2);
}

#[tokio::test]
async fn at_most_ten_versions_oldest_stageless_evicted() {
    let e = env().await;
    let c = e.client();
    c.send(&create("many", "0")).await.unwrap();
    for i in 2..=12 {
        c.send(&put("many", &format!("v{i}"), &i.to_string(), None))
            .await
            .unwrap();
    }
    let all = stages(&c, "many").await;
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].0, "v3");
    assert_eq!(
        code(c.send(&get("many", Some("v1"), None)).await),
        "Forbidden.ResourceNotFound"
    );
}

#[tokio::test]
async fn update_secret_version_stage_rules() {
    let e = env().await;
    let c = e.client();
    c.send(&create("u", "1")).await.unwrap();
    c.send(&put("u", "v2", "2", None)).await.unwrap();
    c.send(&put("u", "v3", "3", Some(&["Custom"])))
        .await
        .unwrap();
    let mv = |stage: &str, to: Option<&str>, from: Option<&str>| UpdateSecretVersionStage {
        secret_name: "u".into(),
        version_stage: stage.into(),
        move_to_version: to.map(Into::into),
        remove_from_version: from.map(Into::into),
    };
    // Move ACSCurrent back to v1: v2 becomes ACSPrevious.
    c.send(&mv("ACSCurrent", Some("v1"), Some("v2")))
        .await
        .unwrap();
    assert_eq!(
        stages(&c, "u").await,
        st(&[
            ("v1", &["ACSCurrent"]),
            ("v2", &["ACSPrevious"]),
            ("v3", &["Custom"])
        ])
    );
    // ACSCurrent cannot simply be removed.
    assert_eq!(
        code(c.send(&mv("ACSCurrent", None, Some("v1"))).await),
        "InvalidParameter"
    );
    // RemoveFromVersion must hold the stage.
    assert_eq!(
        code(c.send(&mv("Custom", None, Some("v1"))).await),
        "InvalidParameter"
    );
    // Custom stage detach.
    c.send(&mv("Custom", None, Some("v3"))).await.unwrap();
    // Attach a custom stage; moving implicitly from its holder.
    c.send(&mv("Blue", Some("v3"), None)).await.unwrap();
    c.send(&mv("Blue", Some("v2"), None)).await.unwrap();
    assert_eq!(
        stages(&c, "u").await,
        st(&[
            ("v1", &["ACSCurrent"]),
            ("v2", &["ACSPrevious", "Blue"]),
            ("v3", &[])
        ])
    );
    // Unknown version.
    assert_eq!(
        code(c.send(&mv("Blue", Some("v9"), None)).await),
        "Forbidden.ResourceNotFound"
    );
    // At most 8 distinct stages.
    for i in 0..5 {
        c.send(&mv(&format!("S{i}"), Some("v3"), None))
            .await
            .unwrap();
    }
    assert_eq!(
        code(c.send(&mv("S5", Some("v3"), None)).await),
        "Rejected.LimitExceeded"
    );
}

#[tokio::test]
async fn get_secret_value_version_and_stage_must_agree() {
    let e = env().await;
    let c = e.client();
    c.send(&create("g", "1")).await.unwrap();
    c.send(&put("g", "v2", "2", None)).await.unwrap();
    let v = c
        .send(&get("g", Some("v1"), Some("ACSPrevious")))
        .await
        .unwrap();
    assert_eq!(v.secret_data.expose_secret(), "1");
    assert_eq!(
        code(c.send(&get("g", Some("v1"), Some("ACSCurrent"))).await),
        "InvalidParameter"
    );
    assert_eq!(
        code(c.send(&get("g", None, Some("Nope"))).await),
        "Forbidden.ResourceNotFound"
    );
    let mut dry = get("g", None, None);
    dry.dry_run = Some(true);
    assert_eq!(code(c.send(&dry).await), "DryRunOperationError");
}

#[tokio::test]
async fn managed_types_validate_shapes_and_return_their_own() {
    let e = env().await;
    let c = e.client();
    let rds = CreateSecret {
        secret_type: Some("Rds".into()),
        extended_config: Some(
            r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1","CustomData":{"a":"b"}}"#.into(),
        ),
        ..create(
            "rds/app",
            r#"{"Accounts":[{"AccountName":"app","AccountPassword":"P@ss1234"}]}"#,
        )
    };
    let r = c.send(&rds).await.unwrap();
    assert_eq!(r.automatic_rotation.as_deref(), Some("Disabled"));
    assert!(r.extended_config.is_some());
    let v = c
        .send(&GetSecretValue {
            fetch_extended_config: Some(true),
            ..GetSecretValue::current("rds/app")
        })
        .await
        .unwrap();
    let data: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).unwrap();
    assert_eq!(
        data,
        serde_json::json!({"AccountName":"app","AccountPassword":"P@ss1234"})
    );
    assert!(v.extended_config.is_some());
    assert_eq!(
        v.last_rotation_date.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    // Without FetchExtendedConfig, no ExtendedConfig.
    assert_eq!(
        c.get_secret_value("rds/app").await.unwrap().extended_config,
        None
    );
    // PutSecretValue is Generic-only; rotation policy is managed-only.
    assert_eq!(
        code(c.send(&put("rds/app", "v2", "x", None)).await),
        "InvalidParameter"
    );
    // Bad shapes.
    let bad = CreateSecret {
        secret_type: Some("Rds".into()),
        extended_config: Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#.into()),
        ..create("rds/bad", r#"{"user":"x"}"#)
    };
    assert_eq!(code(c.send(&bad).await), "InvalidParameter");
    let no_ext = CreateSecret {
        secret_type: Some("Rds".into()),
        ..create(
            "rds/bad2",
            r#"{"Accounts":[{"AccountName":"a","AccountPassword":"b"}]}"#,
        )
    };
    assert_eq!(code(c.send(&no_ext).await), "InvalidParameter");
    // ECS must be named acs/ecs/…
    let ecs = |name: &str| {
        CreateSecret {
        secret_type: Some("ECS".into()),
        extended_config: Some(r#"{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"i-1","CommandId":""}"#.into()),
        ..create(name, r#"{"UserName":"root","Password":"P@ss1234"}"#)
    }
    };
    assert_eq!(code(c.send(&ecs("plain")).await), "InvalidParameter");
    c.send(&ecs("acs/ecs/web")).await.unwrap();
    // RAMCredentials: $Auto name, generated from UserName; GenerateTimestamp added.
    let ram = CreateSecret {
        secret_type: Some("RAMCredentials".into()),
        extended_config: Some(
            r#"{"SecretSubType":"RamUserAccessKey","UserName":"deployer"}"#.into(),
        ),
        ..create(
            "$Auto",
            r#"{"AccessKeys":[{"AccessKeyId":"LTAIx","AccessKeySecret":"sek"}]}"#,
        )
    };
    let r = c.send(&ram).await.unwrap();
    assert_eq!(r.secret_name, "acs/ram/user/deployer");
    let v = c.get_secret_value("acs/ram/user/deployer").await.unwrap();
    let data: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).unwrap();
    assert_eq!(data["AccessKeyId"], "LTAIx");
    assert_eq!(data["GenerateTimestamp"], "2024-01-01T00:00:00Z");
    // Redis $Auto gets a generated password.
    let redis = CreateSecret {
        secret_type: Some("Redis".into()),
        extended_config: Some(r#"{"SecretSubType":"DoubleUsers","AccountName":"app","CloneAccountName":"app_clone","AccountPrivilege":"RoleReadWrite","InstanceId":"r-1","RegionId":"cn-hangzhou"}"#.into()),
        ..create("redis/app", "$Auto")
    };
    c.send(&redis).await.unwrap();
    let v = c.get_secret_value("redis/app").await.unwrap();
    let data: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).unwrap();
    assert_eq!(data["AccountName"], "app");
    assert_eq!(data["AccountPassword"].as_str().unwrap().len(), 32);
    // Managed types ignore VersionId and serve only ACSCurrent/ACSPrevious.
    let v = c
        .send(&get("redis/app", Some("whatever"), None))
        .await
        .unwrap();
    assert_eq!(v.version_id, "v1");
    assert_eq!(
        code(c.send(&get("redis/app", None, Some("Custom"))).await),
        "InvalidParameter"
    );
}

#[tokio::test]
async fn rotation_policy_and_rotate_secret() {
    let e = env().await;
    let c = e.client();
    let ecs = CreateSecret {
        secret_type: Some("ECS".into()),
        extended_config: Some(
            r#"{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"i-1"}"#.into(),
        ),
        enable_automatic_rotation: Some(true),
        rotation_interval: Some("7d".into()),
        ..create("acs/ecs/r", r#"{"UserName":"root","Password":"P@ss1234"}"#)
    };
    let r = c.send(&ecs).await.unwrap();
    assert_eq!(r.rotation_interval.as_deref(), Some("604800s"));
    assert_eq!(
        r.next_rotation_date.as_deref(),
        Some("2024-01-08T00:00:00Z")
    );
    let pol = |on: bool, iv: Option<&str>| UpdateSecretRotationPolicy {
        secret_name: "acs/ecs/r".into(),
        enable_automatic_rotation: on,
        rotation_interval: iv.map(Into::into),
    };
    c.send(&pol(true, Some("605800s"))).await.unwrap();
    let d = c.describe_secret("acs/ecs/r").await.unwrap();
    assert_eq!(d.automatic_rotation.as_deref(), Some("Enabled"));
    assert_eq!(d.rotation_interval.as_deref(), Some("605800s"));
    for bad in ["5h", "8761h", "7x"] {
        assert_eq!(
            code(c.send(&pol(true, Some(bad))).await),
            "InvalidParameter",
            "{bad}"
        );
    }
    c.send(&pol(false, None)).await.unwrap();
    let d = c.describe_secret("acs/ecs/r").await.unwrap();
    assert_eq!(d.automatic_rotation.as_deref(), Some("Disabled"));
    assert_eq!(d.rotation_interval, None);
    assert_eq!(d.next_rotation_date, None);
    // Generic cannot enable rotation.
    c.send(&create("gen", "x")).await.unwrap();
    let g = UpdateSecretRotationPolicy {
        secret_name: "gen".into(),
        enable_automatic_rotation: true,
        rotation_interval: Some("7d".into()),
    };
    assert_eq!(code(c.send(&g).await), "InvalidParameter");
    // RotateSecret: the secret's instance is not in this world; nothing is
    // written; an existing VersionId is success without rotating.
    let rot = |vid: &str| RotateSecret {
        secret_name: "acs/ecs/r".into(),
        version_id: vid.into(),
    };
    assert_eq!(code(c.send(&rot("v2")).await), "InstanceNotExists");
    assert_eq!(c.list_all_versions("acs/ecs/r").await.unwrap().len(), 1);
    c.send(&rot("v1")).await.unwrap();
    let rg = RotateSecret {
        secret_name: "gen".into(),
        version_id: "v2".into(),
    };
    assert_eq!(code(c.send(&rg).await), "InvalidParameter");
}

#[tokio::test]
async fn deletion_window_restore_force_and_purge() {
    let e = env().await;
    let c = e.client();
    c.send(&create("d", "x")).await.unwrap();
    let del = |force: Option<bool>, days: Option<u32>| DeleteSecret {
        secret_name: "d".into(),
        force_delete_without_recovery: force,
        recovery_window_in_days: days,
    };
    for bad in [6, 31] {
        assert_eq!(
            code(c.send(&del(None, Some(bad))).await),
            "InvalidParameter"
        );
    }
    let r = c.send(&del(None, Some(7))).await.unwrap();
    assert_eq!(
        r.planned_delete_time.as_deref(),
        Some("2024-01-08T00:00:00Z")
    );
    // Still described and listed, with PlannedDeleteTime.
    let d = c.describe_secret("d").await.unwrap();
    assert_eq!(
        d.planned_delete_time.as_deref(),
        Some("2024-01-08T00:00:00Z")
    );
    let l = c.list_all_secrets(vec![], false).await.unwrap();
    assert_eq!(
        l[0].planned_delete_time.as_deref(),
        Some("2024-01-08T00:00:00Z")
    );
    // Mutations and reads refused; create with the same name refused.
    assert_eq!(
        code(c.send(&put("d", "v2", "y", None)).await),
        "Rejected.ResourceInDeleteWindow"
    );
    assert_eq!(
        code(c.get_secret_value("d").await),
        "Rejected.ResourceInDeleteWindow"
    );
    assert_eq!(
        code(c.send(&create("d", "y")).await),
        "Rejected.ResourceInDeleteWindow"
    );
    assert_eq!(status(c.send(&create("d", "y")).await), 409);
    // Restore.
    c.send(&RestoreSecret {
        secret_name: "d".into(),
    })
    .await
    .unwrap();
    assert_eq!(
        c.get_secret_value("d")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "x"
    );
    // Default window is 30 days; the window ends → gone, name reusable.
    let r = c.send(&del(None, None)).await.unwrap();
    assert_eq!(
        r.planned_delete_time.as_deref(),
        Some("2024-01-31T00:00:00Z")
    );
    e.clock.advance(chrono::Duration::days(29));
    c.describe_secret("d").await.unwrap();
    e.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        code(c.describe_secret("d").await),
        "Forbidden.ResourceNotFound"
    );
    assert_eq!(e.cloud.sweep().await.unwrap(), 1);
    c.send(&create("d", "again")).await.unwrap();
    // Forced delete (with the window Terraform always sends): gone at once.
    c.send(&del(Some(true), Some(30))).await.unwrap();
    assert_eq!(
        code(c.describe_secret("d").await),
        "Forbidden.ResourceNotFound"
    );
    assert_eq!(
        code(
            c.send(&RestoreSecret {
                secret_name: "d".into()
            })
            .await
        ),
        "Forbidden.ResourceNotFound"
    );
}

#[tokio::test]
async fn tags_both_styles_with_limits() {
    let e = env().await;
    let c = e.client();
    c.send(&CreateSecret {
        tags: vec![Tag::new("env", "prod")],
        ..create("t1", "x")
    })
    .await
    .unwrap();
    c.send(&create("t2", "x")).await.unwrap();
    c.send(&TagResource {
        target: TagTarget::SecretName("t1".into()),
        tags: vec![Tag::new("team", "a")],
    })
    .await
    .unwrap();
    c.send(&TagResources {
        resource_type: "secret".into(),
        resource_ids: vec!["t1".into(), "t2".into()],
        tags: vec![Tag::new("Created", "TF")],
    })
    .await
    .unwrap();
    let d = c.describe_secret("t1").await.unwrap();
    assert_eq!(d.tags.unwrap().tag.len(), 3);
    c.send(&UntagResource {
        target: TagTarget::SecretName("t1".into()),
        tag_keys: vec!["team".into()],
    })
    .await
    .unwrap();
    c.send(&UntagResources {
        resource_type: "secret".into(),
        resource_ids: vec!["t2".into()],
        tag_keys: vec![],
        all: Some(true),
    })
    .await
    .unwrap();
    let rows = c
        .send(&ListTagResources {
            resource_type: "secret".into(),
            resource_ids: vec!["t1".into(), "t2".into()],
            ..ListTagResources::default()
        })
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows
        .tag_resources
        .tag_resource
        .iter()
        .map(|r| (r.resource_id.clone(), r.tag_key.clone()))
        .collect();
    assert_eq!(
        got,
        [
            ("t1".to_owned(), "Created".to_owned()),
            ("t1".to_owned(), "env".to_owned())
        ]
    );
    assert_eq!(rows.next_token, "");
    // Reserved prefixes and the 20-tag limit.
    let bad = TagResources {
        resource_type: "secret".into(),
        resource_ids: vec!["t2".into()],
        tags: vec![Tag::new("aliyun:x", "v")],
    };
    assert_eq!(code(c.send(&bad).await), "InvalidParameter");
    let many: Vec<Tag> = (0..21).map(|i| Tag::new(format!("k{i}"), "v")).collect();
    let too_many = TagResource {
        target: TagTarget::SecretName("t2".into()),
        tags: many,
    };
    assert_eq!(code(c.send(&too_many).await), "InvalidParameter");
    // Unknown resource.
    let missing = TagResources {
        resource_type: "secret".into(),
        resource_ids: vec!["nope".into()],
        tags: vec![Tag::new("a", "b")],
    };
    assert_eq!(code(c.send(&missing).await), "Forbidden.ResourceNotFound");
}

#[tokio::test]
async fn list_tag_resources_pages_with_next_token() {
    let e = env().await;
    let c = e.client();
    let tags: Vec<Tag> = (0..20).map(|i| Tag::new(format!("k{i:02}"), "v")).collect();
    for i in 0..15 {
        c.send(&CreateSecret {
            tags: tags.clone(),
            ..create(&format!("p{i:02}"), "x")
        })
        .await
        .unwrap();
    }
    let mut token = None;
    let mut rows = 0;
    let mut pages = 0;
    loop {
        let r = c
            .send(&ListTagResources {
                resource_type: "secret".into(),
                next_token: token.clone(),
                ..ListTagResources::default()
            })
            .await
            .unwrap();
        rows += r.tag_resources.tag_resource.len();
        pages += 1;
        if r.next_token.is_empty() {
            break;
        }
        token = Some(r.next_token);
    }
    assert_eq!((rows, pages), (300, 2));
}

#[tokio::test]
async fn list_secrets_filters_and_pages() {
    let e = env().await;
    let c = e.client();
    for i in 0..25 {
        let mut cr = create(&format!("app/{i:02}"), "x");
        if i % 5 == 0 {
            cr.tags = vec![Tag::new("team", "blue")];
            cr.description = Some("the blue ones".into());
        }
        c.send(&cr).await.unwrap();
    }
    c.send(&CreateSecret {
        secret_type: Some("Rds".into()),
        extended_config: Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#.into()),
        ..create(
            "rds/one",
            r#"{"Accounts":[{"AccountName":"a","AccountPassword":"b"}]}"#,
        )
    })
    .await
    .unwrap();
    let page = |n: u32, size: u32, filters: Vec<Filter>| ListSecrets {
        page_number: Some(n),
        page_size: Some(size),
        fetch_tags: Some(true),
        filters,
    };
    let r = c.send(&page(3, 10, vec![])).await.unwrap();
    assert_eq!((r.total_count, r.secret_list.secret.len()), (26, 6));
    let f = |k: &str, v: &[&str]| Filter {
        key: k.into(),
        values: v.iter().map(|x| x.to_string()).collect(),
    };
    let r = c
        .send(&page(1, 100, vec![f("SecretType", &["RDS"])]))
        .await
        .unwrap();
    assert_eq!(r.total_count, 1);
    let r = c
        .send(&page(1, 100, vec![f("SecretName", &["app/01", "app/02"])]))
        .await
        .unwrap();
    assert_eq!(r.total_count, 2);
    let r = c
        .send(&page(
            1,
            100,
            vec![f("TagKey", &["team"]), f("SecretName", &["app/1"])],
        ))
        .await
        .unwrap();
    assert_eq!(r.total_count, 2);
    assert_eq!(r.secret_list.secret[0].tags.as_ref().unwrap().tag.len(), 1);
    let r = c
        .send(&page(1, 100, vec![f("Description", &["blue"])]))
        .await
        .unwrap();
    assert_eq!(r.total_count, 5);
    assert_eq!(
        code(c.send(&page(1, 101, vec![])).await),
        "InvalidParameter"
    );
    assert_eq!(
        code(c.send(&page(1, 10, vec![f("Color", &["x"])])).await),
        "InvalidParameter"
    );
}

#[tokio::test]
async fn batch_get_random_password_regions() {
    let e = env().await;
    let c = e.client();
    c.send(&create("b1", "one")).await.unwrap();
    let r = c
        .send(&BatchGetSecretValue {
            secrets: vec![
                BatchSecretRef {
                    secret_name: "b1".into(),
                    ..BatchSecretRef::default()
                },
                BatchSecretRef {
                    secret_name: "missing".into(),
                    ..BatchSecretRef::default()
                },
            ],
        })
        .await
        .unwrap();
    assert_eq!(r.secret_values.len(), 1);
    assert_eq!(r.secret_values[0].secret_data.expose_secret(), "one");
    assert_eq!(r.errors[0].code, "Forbidden.ResourceNotFound");
    assert_eq!(r.errors[0].http_status, Some(404));
    let p = c
        .send(&GetRandomPassword {
            password_length: Some(12),
            exclude_punctuation: Some(true),
            exclude_characters: Some("0Oo".into()),
            ..GetRandomPassword::default()
        })
        .await
        .unwrap();
    let pw = p.random_password.expose_secret();
    assert_eq!(pw.len(), 12);
    assert!(
        pw.chars()
            .all(|ch| ch.is_ascii_alphanumeric() && !"0Oo".contains(ch))
    );
    let all_out = GetRandomPassword {
        exclude_lowercase: Some(true),
        exclude_uppercase: Some(true),
        exclude_numbers: Some(true),
        exclude_punctuation: Some(true),
        ..GetRandomPassword::default()
    };
    assert_eq!(code(c.send(&all_out).await), "InvalidParameter");
    let bad_len = GetRandomPassword {
        password_length: Some(7),
        ..GetRandomPassword::default()
    };
    assert_eq!(code(c.send(&bad_len).await), "InvalidParameter");
    let regions = c.send(&DescribeRegions).await.unwrap();
    assert_eq!(regions.regions.region[0].region_id, "cn-hangzhou");
}

#[tokio::test]
async fn secret_policies_are_validated_and_enforced() {
    let e = env().await;
    let root = e.client();
    let alice = e.client_as("LTAIaliceexample0001");
    let bob = e.client_as("LTAIbobexample000001");
    root.send(&create("pol", "x")).await.unwrap();
    // No policy: every registered key may read.
    bob.get_secret_value("pol").await.unwrap();
    assert_eq!(
        code(
            root.send(&GetSecretPolicy {
                secret_name: "pol".into(),
                policy_name: None
            })
            .await
        ),
        "Forbidden.ResourceNotFound"
    );
    let bad = SetSecretPolicy {
        secret_name: "pol".into(),
        policy: r#"{"Version":"1","Statement":[{"Effect":"Perhaps"}]}"#.into(),
        policy_name: None,
    };
    assert_eq!(code(root.send(&bad).await), "InvalidParameter");
    let policy = r#"{"Version":"1","Statement":[{"Sid":"alice","Effect":"Allow","Principal":{"RAM":["acs:ram::1234567890123456:user/alice"]},"Action":["kms:GetSecretValue","kms:DescribeSecret"],"Resource":["*"]}]}"#;
    root.send(&SetSecretPolicy {
        secret_name: "pol".into(),
        policy: policy.into(),
        policy_name: Some("default".into()),
    })
    .await
    .unwrap();
    let got = root
        .send(&GetSecretPolicy {
            secret_name: "pol".into(),
            policy_name: None,
        })
        .await
        .unwrap();
    assert_eq!(got.policy, policy);
    alice.get_secret_value("pol").await.unwrap();
    assert_eq!(
        code(bob.get_secret_value("pol").await),
        "Forbidden.NoPermission"
    );
    assert_eq!(status(bob.get_secret_value("pol").await), 403);
    assert_eq!(
        code(alice.send(&put("pol", "v2", "y", None)).await),
        "Forbidden.NoPermission"
    );
    // Root is not in the policy either, but keeps policy management.
    assert_eq!(
        code(root.get_secret_value("pol").await),
        "Forbidden.NoPermission"
    );
    let deny_bob = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:*"]},{"Effect":"Deny","Principal":{"RAM":["acs:ram::*:user/bob"]},"Action":"kms:Get*"}]}"#;
    root.send(&SetSecretPolicy {
        secret_name: "pol".into(),
        policy: deny_bob.into(),
        policy_name: None,
    })
    .await
    .unwrap();
    root.get_secret_value("pol").await.unwrap();
    bob.describe_secret("pol").await.unwrap();
    assert_eq!(
        code(bob.get_secret_value("pol").await),
        "Forbidden.NoPermission"
    );
}

#[tokio::test]
async fn encryption_keys_and_instances_are_validated() {
    let e = env().await;
    let c = e.client();
    let with = |name: &str, key: Option<&str>, inst: Option<&str>| CreateSecret {
        encryption_key_id: key.map(Into::into),
        dkms_instance_id: inst.map(Into::into),
        ..create(name, "x")
    };
    c.send(&with("k1", Some("key-plain0000000000000001"), None))
        .await
        .unwrap();
    c.send(&with(
        "k2",
        Some("key-test00000000000000001"),
        Some("kst-test00000000000000001"),
    ))
    .await
    .unwrap();
    let d = c.describe_secret("k2").await.unwrap();
    assert_eq!(d.encryption_key_id, "key-test00000000000000001");
    assert_eq!(
        d.dkms_instance_id.as_deref(),
        Some("kst-test00000000000000001")
    );
    assert_eq!(
        c.get_secret_value("k2")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "x"
    );
    assert_eq!(
        code(c.send(&with("k3", Some("key-nope"), None)).await),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(
        code(
            c.send(&with("k3", Some("key-rsa00000000000000001"), None))
                .await
        ),
        "InvalidParameter"
    );
    assert_eq!(
        code(c.send(&with("k3", None, Some("kst-unknown"))).await),
        "InvalidParameter"
    );
    assert_eq!(
        code(
            c.send(&with(
                "k3",
                Some("key-plain0000000000000001"),
                Some("kst-test00000000000000001")
            ))
            .await
        ),
        "InvalidParameter"
    );
}

/// A KMS action with `params` in the query, on the in-process transport.
fn kms_call<'a>(
    cloud: &'a rota_local::LocalCloud,
    action: &'static str,
    params: &[(&str, &str)],
) -> impl Future<Output = Result<serde_json::Value, rota_kms::Error>> + use<'a> {
    let mut r = rota_kms::ApiRequest::kms(action);
    for (k, v) in params {
        r.query(*k, *v);
    }
    rota_kms::Transport::call(cloud, r)
}

#[tokio::test]
async fn key_registry_create_describe_list() {
    let e = env().await;
    let t = &e.cloud;
    let call = |action: &'static str, params: &[(&str, &str)]| kms_call(t, action, params);
    let created = call("CreateKey", &[("Description", "mine")]).await.unwrap();
    let id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("key-"));
    assert_eq!(created["KeyMetadata"]["KeySpec"], "Aliyun_AES_256");
    let d = call("DescribeKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(d["KeyMetadata"]["Description"], "mine");
    let w = call("DescribeKey", &[("KeyId", "key-test00000000000000001")])
        .await
        .unwrap();
    assert_eq!(
        w["KeyMetadata"]["DKMSInstanceId"],
        "kst-test00000000000000001"
    );
    let l = call("ListKeys", &[("PageSize", "100")]).await.unwrap();
    assert_eq!(l["TotalCount"], 4);
    assert_eq!(l["Keys"]["Key"].as_array().unwrap().len(), 4);
    assert_eq!(
        code(call("DescribeKey", &[("KeyId", "key-none")]).await),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(
        code(call("CreateKey", &[("KeySpec", "AES_999")]).await),
        "InvalidParameter"
    );
    // A created key encrypts secrets, and survives a reopen.
    e.client()
        .send(&CreateSecret {
            encryption_key_id: Some(id.clone()),
            ..create("under-new-key", "v")
        })
        .await
        .unwrap();
}

/// DisableKey, EnableKey, ScheduleKeyDeletion and CancelKeyDeletion, and
/// what each state does to the secrets under the key: nothing is read or
/// written while the key is not enabled, and the secret is as it was once
/// the key is back.
#[tokio::test]
async fn key_lifecycle_governs_the_secrets_under_it() {
    let e = env().await;
    let t = &e.cloud;
    let call = |action: &'static str, params: &[(&str, &str)]| kms_call(t, action, params);
    let id = call("CreateKey", &[]).await.unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = e.client();
    c.send(&CreateSecret {
        encryption_key_id: Some(id.clone()),
        ..create("locked", "before")
    })
    .await
    .unwrap();
    c.send(&create("other", "free")).await.unwrap();
    let state = |d: serde_json::Value| d["KeyMetadata"]["KeyState"].as_str().unwrap().to_owned();

    // Disabled: reads, writes and new secrets under the key are refused.
    let off = call("DisableKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(
        off.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["RequestId"]
    );
    assert_eq!(
        state(call("DescribeKey", &[("KeyId", &id)]).await.unwrap()),
        "Disabled"
    );
    // Asking again changes nothing and succeeds.
    call("DisableKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(
        code(c.get_secret_value("locked").await),
        "Rejected.Disabled"
    );
    assert_eq!(
        code(c.send(&put("locked", "v2", "after", None)).await),
        "Rejected.Disabled"
    );
    assert_eq!(
        code(
            c.send(&CreateSecret {
                encryption_key_id: Some(id.clone()),
                ..create("new-under-off", "x")
            })
            .await
        ),
        "Rejected.Disabled"
    );
    assert!(c.describe_secret("new-under-off").await.is_err());
    // Metadata is still served; other secrets are untouched.
    assert_eq!(
        c.describe_secret("locked").await.unwrap().secret_name,
        "locked"
    );
    assert_eq!(
        c.get_secret_value("other")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "free"
    );
    let listed = call(
        "ListKeys",
        &[("Filters", r#"[{"Key":"KeyState","Values":["Disabled"]}]"#)],
    )
    .await
    .unwrap();
    assert_eq!(listed["TotalCount"], 1);

    // Enabled again: the secret is as it was.
    call("EnableKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(
        c.get_secret_value("locked")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "before"
    );
    assert_eq!(stages(&c, "locked").await, st(&[("v1", &["ACSCurrent"])]));

    // Pending deletion: refused with its own code; the window is checked.
    assert_eq!(
        code(call("ScheduleKeyDeletion", &[("KeyId", &id)]).await),
        "MissingParameter"
    );
    for days in ["6", "31", "seven"] {
        assert_eq!(
            code(
                call(
                    "ScheduleKeyDeletion",
                    &[("KeyId", &id), ("PendingWindowInDays", days)]
                )
                .await
            ),
            "InvalidParameter",
            "{days}"
        );
    }
    call(
        "ScheduleKeyDeletion",
        &[("KeyId", &id), ("PendingWindowInDays", "7")],
    )
    .await
    .unwrap();
    let d = call("DescribeKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(state(d.clone()), "PendingDeletion");
    assert_eq!(d["KeyMetadata"]["DeleteDate"], "2024-01-08T00:00:00Z");
    assert_eq!(
        code(c.get_secret_value("locked").await),
        "Rejected.PendingDeletion"
    );
    for action in ["EnableKey", "DisableKey"] {
        assert_eq!(
            code(call(action, &[("KeyId", &id)]).await),
            "Rejected.StateModifiedFailed",
            "{action}"
        );
    }
    call("CancelKeyDeletion", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(
        code(call("CancelKeyDeletion", &[("KeyId", &id)]).await),
        "Rejected.StateModifiedFailed"
    );
    let d = call("DescribeKey", &[("KeyId", &id)]).await.unwrap();
    assert_eq!(state(d.clone()), "Enabled");
    assert_eq!(d["KeyMetadata"]["DeleteDate"], "");
    assert_eq!(
        c.get_secret_value("locked")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "before"
    );

    // Past its date the key is gone, and so is every value under it.
    call("DisableKey", &[("KeyId", &id)]).await.unwrap();
    call(
        "ScheduleKeyDeletion",
        &[("KeyId", &id), ("PendingWindowInDays", "7")],
    )
    .await
    .unwrap();
    e.clock.advance(chrono::TimeDelta::seconds(7 * 86_400 - 1));
    assert_eq!(
        code(c.get_secret_value("locked").await),
        "Rejected.PendingDeletion"
    );
    e.clock.advance(chrono::TimeDelta::seconds(1));
    assert_eq!(
        code(call("DescribeKey", &[("KeyId", &id)]).await),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(
        code(call("CancelKeyDeletion", &[("KeyId", &id)]).await),
        "Forbidden.KeyNotFound"
    );
    assert_eq!(
        code(c.get_secret_value("locked").await),
        "Forbidden.KeyNotFound"
    );
    let all = call("ListKeys", &[("PageSize", "100")]).await.unwrap();
    assert!(!all.to_string().contains(&id));
    assert_eq!(
        c.get_secret_value("other")
            .await
            .unwrap()
            .secret_data
            .expose_secret(),
        "free"
    );
}

/// A key's state is durable: a disabled key is still disabled after a
/// reopen.
#[tokio::test]
async fn key_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = rota_local::ManualClock::new(crate::common::start_time());
    let call = |cloud: &rota_local::LocalCloud, action: &'static str, id: &str| {
        let cloud = cloud.clone();
        let id = id.to_owned();
        async move { kms_call(&cloud, action, &[("KeyId", &id)]).await }
    };
    {
        let cloud = crate::common::open(dir.path(), &clock).await;
        call(&cloud, "DisableKey", "key-test00000000000000001")
            .await
            .unwrap();
    }
    let cloud = crate::common::open(dir.path(), &clock).await;
    let d = call(&cloud, "DescribeKey", "key-test00000000000000001")
        .await
        .unwrap();
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = rota_local::ManualClock::new(crate::common::start_time());
    {
        let cloud = crate::common::open(dir.path(), &clock).await;
        let c = KmsClient::new(std::sync::Arc::new(cloud.clone()));
        c.send(&create("keep", "one")).await.unwrap();
        c.send(&put("keep", "v2", "two", Some(&["ACSCurrent", "Blue"])))
            .await
            .unwrap();
        c.send(&TagResource {
            target: TagTarget::SecretName("keep".into()),
            tags: vec![Tag::new("a", "b")],
        })
        .await
        .unwrap();
        // The data directory is locked while open.
        let second = rota_local::LocalCloud::options(dir.path()).open().await;
        assert!(second.is_err());
    }
    let cloud = crate::common::open(dir.path(), &clock).await;
    let c = KmsClient::new(std::sync::Arc::new(cloud));
    let v = c.get_secret_value("keep").await.unwrap();
    assert_eq!(v.secret_data.expose_secret(), "two");
    assert_eq!(v.version_stages.version_stage, ["ACSCurrent", "Blue"]);
    let old = c
        .send(&get("keep", None, Some("ACSPrevious")))
        .await
        .unwrap();
    assert_eq!(old.secret_data.expose_secret(), "one");
    assert_eq!(
        c.describe_secret("keep")
            .await
            .unwrap()
            .tags
            .unwrap()
            .tag
            .len(),
        1
    );
}

#[tokio::test]
async fn update_secret_description_and_custom_data() {
    let e = env().await;
    let c = e.client();
    c.send(&create("us", "x")).await.unwrap();
    c.send(&UpdateSecret {
        secret_name: "us".into(),
        description: Some("new".into()),
        custom_data: None,
    })
    .await
    .unwrap();
    assert_eq!(c.describe_secret("us").await.unwrap().description, "new");
    let generic_cd = UpdateSecret {
        secret_name: "us".into(),
        description: None,
        custom_data: Some(r#"{"a":"b"}"#.into()),
    };
    assert_eq!(code(c.send(&generic_cd).await), "InvalidParameter");
    c.send(&CreateSecret {
        secret_type: Some("Rds".into()),
        extended_config: Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#.into()),
        ..create(
            "rds/u",
            r#"{"Accounts":[{"AccountName":"a","AccountPassword":"b"}]}"#,
        )
    })
    .await
    .unwrap();
    c.send(&UpdateSecret {
        secret_name: "rds/u".into(),
        description: None,
        custom_data: Some(r#"{"owner":"team-a"}"#.into()),
    })
    .await
    .unwrap();
    let ext = c
        .describe_secret("rds/u")
        .await
        .unwrap()
        .extended_config
        .unwrap();
    let ext: serde_json::Value = serde_json::from_str(&ext).unwrap();
    assert_eq!(ext["CustomData"]["owner"], "team-a");
    assert_eq!(ext["DBInstanceId"], "rm-1");
}

#[tokio::test]
async fn unknown_actions_versions_and_products() {
    let e = env().await;
    let call = |version: &'static str, action: &'static str| {
        let r = rota_kms::ApiRequest::new(rota_kms::Product::Kms, version, action);
        rota_kms::Transport::call(&e.cloud, r)
    };
    assert_eq!(
        code(call("2016-01-20", "FlyToTheMoon").await),
        "InvalidAction.NotFound"
    );
    assert_eq!(
        code(call("2014-05-26", "FlyToTheMoon").await),
        "InvalidAction.NotFound"
    );
    assert_eq!(
        code(call("2014-05-26", "RunCommand").await),
        "MissingParameter"
    );
    assert_eq!(
        code(call("1999-01-01", "CreateSecret").await),
        "InvalidVersion"
    );
    assert_eq!(
        code(call("2016-01-20", "CreateSecret").await),
        "MissingParameter"
    );
}
