//! Saved plans, import output, and the canary: a secret value never appears
//! in plans, their JSON, saved plan files, import output, errors or logs.

use rota_engine::EngineError;
use rota_engine::apply::NoProgress;
use rota_engine::import::{ImportOptions, import};
use rota_engine::plan::{PlanMode, PlanOptions, SavedPlan};

use crate::common::Env;

const CANARY: &str = "canary-9f1c2e";

fn config(data: &str, description: &str) -> String {
    format!(
        r#"
resource "alicloud_kms_secret" "api" {{
  secret_name = "api-token"
  secret_data = "{data}"
  version_id  = "v1"
  description = "{description}"
}}
"#
    )
}

#[tokio::test]
async fn a_saved_plan_applies_exactly_and_refuses_when_anything_changed() {
    let env = Env::new().await;
    env.write(&config(CANARY, "one"));
    let plan = env.plan().await.unwrap();
    let saved = plan.save().to_json();
    assert!(!saved.contains(CANARY));
    // Reload and apply: the fresh plan with the saved salt must match.
    let saved = SavedPlan::from_json(&saved).unwrap();
    let fresh = {
        let cfg = env.load().unwrap();
        let mut opts = PlanOptions::new(PlanMode::Apply, env.ownership.clone());
        opts.salt = Some(saved.salt.clone());
        rota_engine::plan(&env.client, &cfg, &opts).await.unwrap()
    };
    saved.verify(&fresh).unwrap();

    // Another value: refused by hash.
    env.write(&config("other-value", "one"));
    let cfg = env.load().unwrap();
    let mut opts = PlanOptions::new(PlanMode::Apply, env.ownership.clone());
    opts.salt = Some(saved.salt.clone());
    let changed = rota_engine::plan(&env.client, &cfg, &opts).await.unwrap();
    let err = saved.verify(&changed).unwrap_err().to_string();
    assert!(
        err.contains("secret_data of alicloud_kms_secret.api changed"),
        "{err}"
    );

    // The live state changed: refused by fingerprint.
    env.write(&config(CANARY, "one"));
    let cfg = env.load().unwrap();
    rota_engine::apply(&env.client, &cfg, &fresh, &env.ownership, &NoProgress).await;
    let again = rota_engine::plan(&env.client, &cfg, &opts).await.unwrap();
    let err = saved.verify(&again).unwrap_err().to_string();
    assert!(
        err.contains("live state of alicloud_kms_secret.api changed"),
        "{err}"
    );
}

#[tokio::test]
async fn import_prints_the_block_without_the_value() {
    let env = Env::new().await;
    env.write(&config(CANARY, "imported"));
    env.apply().await;
    let hcl = import(
        &env.client,
        "alicloud_kms_secret.api",
        "api-token",
        ImportOptions::default(),
    )
    .await
    .unwrap();
    assert!(!hcl.contains(CANARY));
    insta::assert_snapshot!(hcl);
    // With the value asked for explicitly.
    let with = import(
        &env.client,
        "alicloud_kms_secret.api",
        "api-token",
        ImportOptions {
            include_secret_data: true,
        },
    )
    .await
    .unwrap();
    assert!(with.contains(CANARY));
    let err = import(
        &env.client,
        "aws_secret.x",
        "api-token",
        ImportOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, EngineError::UnknownAddress(_)));
}

#[tokio::test]
async fn the_canary_never_leaves_its_wrapper() {
    let env = Env::new().await;
    env.write(&config(CANARY, "one"));
    let plan = env.plan().await.unwrap();
    let mut seen = vec![
        plan.render(),
        plan.to_json().to_string(),
        plan.save().to_json(),
        format!("{plan:?}"),
    ];
    let cfg = env.load().unwrap();
    seen.push(format!("{cfg:?}"));
    env.apply().await;
    // A second version with the same id and another value: refused, without the value.
    env.write(&config(&format!("{CANARY}-2"), "one"));
    let err = env.plan().await.unwrap_err();
    seen.push(err.to_string());
    seen.push(format!("{err:?}"));
    // A type error in secret_data itself.
    env.write(&config(CANARY, "one").replace(
        &format!("\"{CANARY}\""),
        &format!("jsondecode(\"{CANARY}\")"),
    ));
    let err = env.load().unwrap_err();
    seen.push(err.to_string());
    seen.push(format!("{err:?}"));
    for text in &seen {
        assert!(!text.contains(CANARY), "the canary leaked: {text}");
    }
}
