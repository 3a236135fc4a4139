//! Apply, then change each argument: the plan (snapshot), the API calls made,
//! the live state afterwards, and a second plan with no changes.

use rota_engine::EngineError;
use rota_engine::plan::{Action, PlanMode};

use crate::common::{Call, Env};

const GENERIC: &str = r#"
resource "alicloud_kms_secret" "db" {
  secret_name = "db-password"
  secret_data = "s3cret-v1"
  version_id  = "v1"
  description = "first"
  tags = {
    env  = "prod"
    team = "core"
  }
  recovery_window_in_days = 7
}
"#;

const ECS: &str = r#"
resource "alicloud_kms_secret" "ecs" {
  secret_name               = "acs/ecs/web-1"
  secret_type               = "ECS"
  secret_data               = jsonencode({ UserName = "root", Password = "Ecs-pass-1" })
  version_id                = "v1"
  encryption_key_id         = "key-phzz661646aeygbqrfqg5j"
  dkms_instance_id          = "kst-phzz61dbabacquz826y29f"
  enable_automatic_rotation = true
  rotation_interval         = "604800s"
  policy                    = jsonencode({ Version = "1", Statement = [{ Sid = "a", Effect = "Allow", Action = ["kms:*"], Resource = ["*"], Principal = { RAM = ["acs:ram::1234567890123456:*"] } }] })
  extended_config           = jsonencode({ SecretSubType = "Password", InstanceId = "i-1", RegionId = "cn-hangzhou", CustomData = { k = "v" } })
}
"#;

/// Applies `before`, then plans `after` (snapshot name `name`), applies it,
/// and returns the write calls; a third plan must show no changes.
async fn change(env: &Env, before: &str, after: &str, name: &str) -> Vec<Call> {
    env.write(before);
    env.apply().await;
    env.write(after);
    env.take_calls();
    let plan = env.plan().await.unwrap();
    insta::assert_snapshot!(name, plan.render());
    env.take_calls();
    env.apply().await;
    let writes = env.take_writes();
    let again = env.plan().await.unwrap();
    assert!(
        !again.has_changes(),
        "{name}: second plan\n{}",
        again.render()
    );
    writes
}

fn actions(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.action.as_str()).collect()
}

#[tokio::test]
async fn create_plan_and_calls() {
    let env = Env::new().await;
    env.write(GENERIC);
    let plan = env.plan().await.unwrap();
    insta::assert_snapshot!(plan.render());
    insta::assert_snapshot!(
        "create_json",
        serde_json::to_string_pretty(&plan.to_json()).unwrap()
    );
    env.take_calls();
    env.apply().await;
    let writes = env.take_writes();
    assert_eq!(actions(&writes), ["CreateSecret"]);
    let c = &writes[0];
    assert_eq!(c.param("SecretName"), Some("db-password"));
    assert_eq!(c.param("VersionId"), Some("v1"));
    assert_eq!(c.param("SecretDataType"), Some("text"));
    let tags: serde_json::Value = serde_json::from_str(c.param("Tags").unwrap()).unwrap();
    let keys: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["TagKey"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["env", "team", "rota:managed", "rota:config", "rota:address"]
    );
    let v = env.client.get_secret_value("db-password").await.unwrap();
    assert_eq!(v.secret_data.expose_secret(), "s3cret-v1");
    assert_eq!(v.version_id, "v1");
}

#[tokio::test]
async fn description_updates_in_place() {
    let env = Env::new().await;
    let w = change(
        &env,
        GENERIC,
        &GENERIC.replace("\"first\"", "\"second\""),
        "update_description",
    )
    .await;
    assert_eq!(actions(&w), ["UpdateSecret"]);
    assert_eq!(w[0].param("Description"), Some("second"));
    let m = env.client.describe_secret("db-password").await.unwrap();
    assert_eq!(m.description, "second");
}

#[tokio::test]
async fn tags_untag_removed_and_tag_the_rest() {
    let env = Env::new().await;
    let after = GENERIC.replace(
        "env  = \"prod\"\n    team = \"core\"",
        "env   = \"staging\"\n    owner = \"ops\"",
    );
    let w = change(&env, GENERIC, &after, "update_tags").await;
    assert_eq!(actions(&w), ["UntagResources", "TagResources"]);
    assert_eq!(w[0].param("TagKey.1"), Some("team"));
    assert_eq!(w[0].param("TagKey.2"), None);
    assert_eq!(w[1].param("Tag.1.Key"), Some("env"));
    assert_eq!(w[1].param("Tag.1.Value"), Some("staging"));
    assert_eq!(w[1].param("Tag.2.Key"), Some("owner"));
    let m = env.client.describe_secret("db-password").await.unwrap();
    let tags: Vec<(String, String)> = m
        .tags
        .unwrap()
        .tag
        .into_iter()
        .map(|t| (t.tag_key, t.tag_value))
        .filter(|(k, _)| !k.starts_with("rota:"))
        .collect();
    assert_eq!(
        tags,
        [
            ("env".into(), "staging".into()),
            ("owner".into(), "ops".into())
        ]
    );
}

#[tokio::test]
async fn a_new_version_is_put() {
    let env = Env::new().await;
    let after = GENERIC
        .replace("\"s3cret-v1\"", "\"s3cret-v2\"")
        .replace("\"v1\"", "\"v2\"");
    let w = change(&env, GENERIC, &after, "update_version").await;
    assert_eq!(actions(&w), ["PutSecretValue"]);
    assert_eq!(w[0].param("VersionId"), Some("v2"));
    let v = env.client.get_secret_value("db-password").await.unwrap();
    assert_eq!(
        (v.version_id.as_str(), v.secret_data.expose_secret()),
        ("v2", "s3cret-v2")
    );
}

#[tokio::test]
async fn secret_data_without_a_new_version_is_refused() {
    let env = Env::new().await;
    env.write(GENERIC);
    env.apply().await;
    env.write(&GENERIC.replace("\"s3cret-v1\"", "\"s3cret-other\""));
    let err = env.plan().await.unwrap_err();
    let EngineError::Refused(d) = err else {
        panic!("not a refusal: {err}")
    };
    insta::assert_snapshot!(crate::common::redact_path(
        &d.to_string(),
        &env.config_dir()
    ));
}

#[tokio::test]
async fn stages_move_with_update_secret_version_stage() {
    let env = Env::new().await;
    let v2 = GENERIC
        .replace("\"s3cret-v1\"", "\"s3cret-v2\"")
        .replace("\"v1\"", "\"v2\"");
    let moved = v2.replace(
        "recovery_window_in_days = 7",
        "recovery_window_in_days = 7\n  move_to_version = \"v1\"",
    );
    env.write(GENERIC);
    env.apply().await;
    let w = change(&env, &v2, &moved, "update_move_to_version").await;
    assert_eq!(actions(&w), ["UpdateSecretVersionStage"]);
    assert_eq!(w[0].param("VersionStage"), Some("ACSCurrent"));
    assert_eq!(w[0].param("MoveToVersion"), Some("v1"));
    let v = env.client.get_secret_value("db-password").await.unwrap();
    assert_eq!(v.version_id, "v1");
    // A custom stage is removed with remove_from_version.
    let custom = v2.replace(
        "recovery_window_in_days = 7",
        "recovery_window_in_days = 7\n  version_stage = \"Blue\"\n  move_to_version = \"v2\"",
    );
    env.write(&custom);
    env.apply().await;
    let removed = v2.replace(
        "recovery_window_in_days = 7",
        "recovery_window_in_days = 7\n  version_stage = \"Blue\"\n  remove_from_version = \"v2\"",
    );
    env.write(&removed);
    env.take_calls();
    let (_, _) = env.apply().await;
    let w = env.take_writes();
    assert_eq!(actions(&w), ["UpdateSecretVersionStage"]);
    assert_eq!(w[0].param("RemoveFromVersion"), Some("v2"));
}

#[tokio::test]
async fn rotation_policy_updates_in_place() {
    let env = Env::new().await;
    // 7d equals 604800s: no change.
    env.write(ECS);
    env.apply().await;
    env.write(&ECS.replace("\"604800s\"", "\"7d\""));
    assert!(!env.plan().await.unwrap().has_changes());
    let w = change(
        &env,
        ECS,
        &ECS.replace("\"604800s\"", "\"14d\""),
        "update_rotation_interval",
    )
    .await;
    assert_eq!(actions(&w), ["UpdateSecretRotationPolicy"]);
    assert_eq!(w[0].param("RotationInterval"), Some("14d"));
    let m = env.client.describe_secret("acs/ecs/web-1").await.unwrap();
    assert_eq!(m.rotation_interval.as_deref(), Some("1209600s"));
    let off = ECS.replace(
        "enable_automatic_rotation = true",
        "enable_automatic_rotation = false",
    );
    let w = change(&env, ECS, &off, "update_rotation_off").await;
    assert_eq!(actions(&w), ["UpdateSecretRotationPolicy"]);
    assert_eq!(w[0].param("EnableAutomaticRotation"), Some("false"));
    let m = env.client.describe_secret("acs/ecs/web-1").await.unwrap();
    assert_ne!(m.automatic_rotation.as_deref(), Some("Enabled"));
}

#[tokio::test]
async fn policy_updates_with_set_secret_policy() {
    let env = Env::new().await;
    let after = ECS.replace("Sid = \"a\"", "Sid = \"b\"");
    let w = change(&env, ECS, &after, "update_policy").await;
    assert_eq!(actions(&w), ["SetSecretPolicy"]);
    assert!(w[0].param("Policy").unwrap().contains("\"Sid\":\"b\""));
}

#[tokio::test]
async fn custom_data_updates_the_extended_config() {
    let env = Env::new().await;
    let after = ECS.replace(
        "rotation_interval         = \"604800s\"",
        "rotation_interval         = \"604800s\"\n  extended_config_custom_data = { k = \"w\", n = \"2\" }",
    );
    let w = change(&env, ECS, &after, "update_custom_data").await;
    assert_eq!(actions(&w), ["UpdateSecret"]);
    assert_eq!(
        w[0].param("ExtendedConfig.CustomData"),
        Some(r#"{"k":"w","n":"2"}"#)
    );
    // The secret_data of a managed secret is never planned back.
    let data_changed = after.replace("Ecs-pass-1", "Ecs-pass-2");
    env.write(&data_changed);
    assert!(!env.plan().await.unwrap().has_changes());
}

#[tokio::test]
async fn force_new_arguments_replace_and_need_force_delete() {
    let env = Env::new().await;
    env.write(GENERIC);
    env.apply().await;
    let keyed = GENERIC.replace(
        "version_id  = \"v1\"",
        "version_id  = \"v1\"\n  encryption_key_id = \"key-phzz661646aeygbqrfqg5j\"",
    );
    env.write(&keyed);
    let EngineError::Refused(d) = env.plan().await.unwrap_err() else {
        panic!("expected a refusal")
    };
    insta::assert_snapshot!(
        "replace_refused",
        crate::common::redact_path(&d.to_string(), &env.config_dir())
    );
    let forced = keyed.replace(
        "recovery_window_in_days = 7",
        "recovery_window_in_days = 7\n  force_delete_without_recovery = true",
    );
    env.write(&forced);
    let plan = env.plan().await.unwrap();
    assert_eq!(plan.resources[0].action, Action::Replace);
    insta::assert_snapshot!("replace_encryption_key_id", plan.render());
    env.take_calls();
    env.apply().await;
    let w = env.take_writes();
    assert_eq!(actions(&w), ["DeleteSecret", "CreateSecret"]);
    assert_eq!(w[0].param("ForceDeleteWithoutRecovery"), Some("true"));
    let m = env.client.describe_secret("db-password").await.unwrap();
    assert_eq!(m.encryption_key_id, "key-phzz661646aeygbqrfqg5j");
    assert!(!env.plan().await.unwrap().has_changes());
}

#[tokio::test]
async fn other_force_new_arguments_replace() {
    for (name, before, after) in [
        (
            "replace_dkms_instance_id",
            ECS.replace("  dkms_instance_id          = \"kst-phzz61dbabacquz826y29f\"\n", "").replace(
                "  encryption_key_id         = \"key-phzz661646aeygbqrfqg5j\"\n",
                "",
            ).replace("  policy ", "  # policy "),
            ECS.replace("  encryption_key_id         = \"key-phzz661646aeygbqrfqg5j\"\n", "")
                .replace("  policy ", "  # policy "),
        ),
        (
            "replace_extended_config",
            ECS.to_owned(),
            ECS.replace("InstanceId = \"i-1\"", "InstanceId = \"i-2\""),
        ),
        (
            "replace_secret_type",
            GENERIC.replace("s3cret-v1", "{\\\"Accounts\\\":[{\\\"AccountName\\\":\\\"app\\\",\\\"AccountPassword\\\":\\\"Pw-123456\\\"}]}"),
            GENERIC.replace("s3cret-v1", "{\\\"Accounts\\\":[{\\\"AccountName\\\":\\\"app\\\",\\\"AccountPassword\\\":\\\"Pw-123456\\\"}]}").replace(
                "version_id  = \"v1\"",
                "version_id  = \"v1\"\n  secret_type = \"Rds\"\n  extended_config = jsonencode({ SecretSubType = \"SingleUser\", DBInstanceId = \"rm-1\" })",
            ),
        ),
    ] {
        let env = Env::new().await;
        let forced = |s: &str| s.replacen("{\n", "{\n  force_delete_without_recovery = true\n", 1);
        let before = forced(&before);
        let after = forced(&after);
        env.write(&before);
        env.apply().await;
        env.write(&after);
        let plan = env.plan().await.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan.resources[0].action, Action::Replace, "{name}");
        insta::assert_snapshot!(name, plan.render());
        env.take_calls();
        env.apply().await;
        let w = env.take_writes();
        assert_eq!(actions(&w)[..2], ["DeleteSecret", "CreateSecret"], "{name}");
        assert!(!env.plan().await.unwrap().has_changes(), "{name}");
    }
}

#[tokio::test]
async fn a_new_secret_name_replaces_under_the_new_name() {
    let env = Env::new().await;
    let after = GENERIC.replace("db-password", "db-password-2");
    let w = change(&env, GENERIC, &after, "replace_secret_name").await;
    assert_eq!(actions(&w), ["DeleteSecret", "CreateSecret"]);
    assert_eq!(w[0].param("SecretName"), Some("db-password"));
    assert_eq!(w[0].param("RecoveryWindowInDays"), Some("7"));
    let old = env.client.describe_secret("db-password").await.unwrap();
    assert!(old.planned_delete_time.is_some());
}

#[tokio::test]
async fn destroy_deletes_with_the_recovery_window() {
    let env = Env::new().await;
    env.write(GENERIC);
    env.apply().await;
    env.take_calls();
    let plan = env.plan_mode(PlanMode::Destroy).await.unwrap();
    insta::assert_snapshot!(plan.render());
    let (_, _) = env.apply_mode(PlanMode::Destroy).await;
    let w = env.take_writes();
    assert_eq!(actions(&w), ["DeleteSecret"]);
    assert_eq!(w[0].param("RecoveryWindowInDays"), Some("7"));
    assert_eq!(w[0].param("ForceDeleteWithoutRecovery"), Some("false"));
    let m = env.client.describe_secret("db-password").await.unwrap();
    assert!(m.planned_delete_time.is_some());
    // Nothing left to destroy.
    assert!(
        !env.plan_mode(PlanMode::Destroy)
            .await
            .unwrap()
            .has_changes()
    );
    // Applying the configuration again restores it.
    let plan = env.plan().await.unwrap();
    assert_eq!(plan.resources[0].action, Action::Update);
    env.take_calls();
    env.apply().await;
    assert_eq!(actions(&env.take_writes()), ["RestoreSecret"]);
}

#[tokio::test]
async fn removed_blocks_are_destroyed_only_when_rota_created_them() {
    let env = Env::new().await;
    let two = format!(
        "{GENERIC}\n{}",
        GENERIC
            .replace("\"db\"", "\"cache\"")
            .replace("db-password", "cache-password")
    );
    env.write(&two);
    env.apply().await;
    // A secret made elsewhere, then imported into the configuration.
    env.client
        .send(&rota_kms::kms::CreateSecret {
            secret_name: "handmade".into(),
            secret_data: "x".into(),
            version_id: "v1".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let with_handmade = format!(
        "{two}\nresource \"alicloud_kms_secret\" \"handmade\" {{\n  secret_name = \"handmade\"\n  secret_data = \"x\"\n  version_id = \"v1\"\n  secret_data_type = \"text\"\n}}\n"
    );
    env.write(&with_handmade);
    assert!(!env.plan().await.unwrap().has_changes());
    // Both the Rota-made cache secret and the handmade one leave the configuration.
    env.write(GENERIC);
    let plan = env.plan().await.unwrap();
    insta::assert_snapshot!("destroy_removed_block", plan.render());
    let deleted: Vec<&str> = plan
        .resources
        .iter()
        .filter(|r| r.action == Action::Delete)
        .map(|r| r.secret_name.as_str())
        .collect();
    assert_eq!(deleted, ["cache-password"]);
}

#[tokio::test]
async fn references_between_resources_resolve_in_dependency_order() {
    let env = Env::new().await;
    env.write(
        r#"
resource "alicloud_kms_secret" "copy" {
  secret_name = "${alicloud_kms_secret.main.secret_name}-copy"
  secret_data = "c"
  version_id  = "v1"
  description = "copy of ${alicloud_kms_secret.main.arn}"
}
resource "alicloud_kms_secret" "main" {
  secret_name = "main"
  secret_data = "m"
  version_id  = "v1"
}
"#,
    );
    let plan = env.plan().await.unwrap();
    insta::assert_snapshot!(plan.render());
    let (_, report) = env.apply().await;
    let order: Vec<&str> = report.outcomes.iter().map(|o| o.address.as_str()).collect();
    assert_eq!(
        order,
        ["alicloud_kms_secret.main", "alicloud_kms_secret.copy"]
    );
    let m = env.client.describe_secret("main-copy").await.unwrap();
    assert_eq!(
        m.description,
        "copy of acs:kms:cn-hangzhou:1234567890123456:secret/main"
    );
    assert!(!env.plan().await.unwrap().has_changes());
}

const RAM_AUTO: &str = r#"
resource "alicloud_kms_secret" "ram" {
  secret_name     = "$Auto"
  secret_type     = "RAMCredentials"
  secret_data     = jsonencode({ AccessKeys = [{ AccessKeyId = "LTAI5tRamUserKey01", AccessKeySecret = "ram-secret-1" }] })
  version_id      = "v1"
  extended_config = jsonencode({ SecretSubType = "RamUserAccessKey", UserName = "alice" })
}
"#;

#[tokio::test]
async fn auto_named_ram_secrets_are_found_again_by_their_address() {
    let env = Env::new().await;
    env.write(RAM_AUTO);
    env.apply().await;
    let plan = env.plan().await.unwrap();
    assert!(!plan.has_changes(), "second plan:\n{}", plan.render());
    let ram = plan
        .resources
        .iter()
        .find(|r| r.address == "alicloud_kms_secret.ram")
        .unwrap();
    assert_eq!(ram.secret_name, "acs/ram/user/alice");
}
