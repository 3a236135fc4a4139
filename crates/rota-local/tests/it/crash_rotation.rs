//! A managed rotation killed with SIGKILL between storing ACSPending and
//! promoting. The child (this test binary re-executed with
//! `ROTA_LOCAL_ROTATION_CHILD=<dir>`) creates an ECS or RAMCredentials
//! secret and rotates it with a rotation hook — passed in through
//! `OpenOptions::rotation_hook` by the child's own code, which is the only
//! reader of the environment — that prints the step and then blocks at the
//! chosen step. The parent kills it there, then:
//! 1. opens the directory **without** recovery and checks the target holds
//!    ACSCurrent or ACSPending (and ACSCurrent still logs in);
//! 2. opens it normally (recovery rolls the rotation forward) and checks
//!    the rotation completed: the target holds the new ACSCurrent, the old
//!    value is ACSPrevious, no ACSPending is left.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rota_kms::SecretString;
use rota_kms::kms::*;
use rota_local::{RotationStep, WorldSnapshot};

use crate::common::{TEST_WORLD, options, say, start_time};

const CHILD_ENV: &str = "ROTA_LOCAL_ROTATION_CHILD";
const STOP_ENV: &str = "ROTA_LOCAL_ROTATION_STOP";
const KIND_ENV: &str = "ROTA_LOCAL_ROTATION_KIND";
const ECS: &str = "i-test00000000000001";

fn secret_name(kind: &str) -> &'static str {
    if kind == "ram" {
        "acs/ram/user/svc"
    } else {
        "acs/ecs/crash"
    }
}

/// In the child process: rotate and block at the step; otherwise nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_rotation_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let stop = std::env::var(STOP_ENV).unwrap_or_default();
    let kind = std::env::var(KIND_ENV).unwrap_or_default();
    let clock = rota_local::ManualClock::new(start_time());
    let hook: rota_local::RotationHook = Arc::new(move |name: &str, step: RotationStep| {
        say(&format!("step {name} {step:?}"));
        if format!("{step:?}") == stop {
            say("stopped");
            loop {
                std::thread::park();
            }
        }
    });
    let cloud = options(std::path::Path::new(&dir), &clock, TEST_WORLD)
        .rotation_hook(hook)
        .open()
        .await
        .unwrap();
    let c = KmsClient::new(Arc::new(cloud));
    let create = if kind == "ram" {
        CreateSecret {
            secret_name: "$Auto".into(),
            secret_data: SecretString::new(
                r#"{"AccessKeys":[{"AccessKeyId":"LTAIsvcinitialkey0001","AccessKeySecret":"svc-initial-secret"}]}"#,
            ),
            version_id: "v1".into(),
            secret_type: Some("RAMCredentials".into()),
            extended_config: Some(
                r#"{"SecretSubType":"RamUserAccessKey","UserName":"svc"}"#.into(),
            ),
            ..CreateSecret::default()
        }
    } else {
        CreateSecret {
            secret_name: "acs/ecs/crash".into(),
            secret_data: SecretString::new(r#"{"UserName":"app","Password":"App-Passw0rd1"}"#),
            version_id: "v1".into(),
            secret_type: Some("ECS".into()),
            extended_config: Some(format!(
                r#"{{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"{ECS}"}}"#
            )),
            ..CreateSecret::default()
        }
    };
    c.send(&create).await.unwrap();
    say("created");
    c.send(&RotateSecret {
        secret_name: secret_name(&kind).into(),
        version_id: "v2".into(),
    })
    .await
    .unwrap();
    say("finished");
}

/// The labels of the secret versions the target's credential matches.
fn held(snap: &WorldSnapshot, kind: &str) -> Vec<String> {
    if kind == "ram" {
        let u = snap.ram_users.iter().find(|u| u.name == "svc").unwrap();
        u.access_keys
            .iter()
            .flat_map(|k| k.held_by.clone())
            .collect()
    } else {
        let i = snap
            .ecs_instances
            .iter()
            .find(|i| i.instance_id == ECS)
            .unwrap();
        i.accounts
            .iter()
            .find(|a| a.name == "app")
            .unwrap()
            .held_by
            .clone()
    }
}

async fn crash_at(kind: &str, stop: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_rotation::crash_rotation_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .env(STOP_ENV, stop)
        .env(KIND_ENV, kind)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = lines.next().expect("the child stopped early").unwrap();
        assert_ne!(
            line, "finished",
            "{kind}/{stop}: the hook did not stop the child: {seen:?}"
        );
        let stopped = line == "stopped";
        seen.push(line);
        if stopped {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    assert!(seen.iter().any(|l| l.ends_with(stop)), "{seen:?}");
    let clock = rota_local::ManualClock::new(start_time());
    let name = secret_name(kind);
    // As the crash left it: the target holds ACSCurrent or ACSPending.
    {
        let cloud = options(dir.path(), &clock, TEST_WORLD)
            .recover(false)
            .open()
            .await
            .unwrap();
        let h = held(&cloud.world_snapshot().await, kind);
        let expected: &[&str] = match (kind, stop) {
            ("ram", "PendingStored") => &["ACSCurrent (v1)"],
            ("ram", _) => &["ACSCurrent (v1)", "ACSPending (v2)"],
            (_, "PendingStored") => &["ACSCurrent (v1)"],
            _ => &["ACSPending (v2)"],
        };
        assert_eq!(h.len(), expected.len(), "{kind}/{stop}: {h:?}");
        for (label, want) in h.iter().zip(expected) {
            assert!(
                label.starts_with(name) && label.ends_with(want),
                "{kind}/{stop}: {h:?}"
            );
        }
        let c = KmsClient::new(Arc::new(cloud.clone()));
        let cur = c.get_secret_value(name).await.unwrap();
        assert_eq!(
            cur.version_id, "v1",
            "{kind}/{stop}: ACSCurrent moved before the promotion"
        );
        if kind == "ecs" && stop == "PendingStored" {
            let api = rota_kms::OpenApi::new(Arc::new(cloud.clone()));
            assert!(
                crate::targets::logs_in(&api, ECS, "app", "App-Passw0rd1").await,
                "locked out"
            );
        }
    }
    // Reopened normally: the rotation is rolled forward.
    let cloud = options(dir.path(), &clock, TEST_WORLD)
        .open()
        .await
        .unwrap();
    let h = held(&cloud.world_snapshot().await, kind);
    assert!(
        h.iter().any(|l| l == &format!("{name} ACSCurrent (v2)")),
        "{kind}/{stop}: {h:?}"
    );
    assert!(
        !h.iter().any(|l| l.contains("ACSPending")),
        "{kind}/{stop}: {h:?}"
    );
    let c = KmsClient::new(Arc::new(cloud.clone()));
    let versions = c.list_all_versions(name).await.unwrap();
    let stages: Vec<String> = versions
        .iter()
        .map(|v| {
            format!(
                "{}={}",
                v.version_id,
                v.version_stages.version_stage.join("+")
            )
        })
        .collect();
    assert_eq!(stages, ["v1=ACSPrevious", "v2=ACSCurrent"], "{kind}/{stop}");
    if kind == "ecs" {
        let cur = c.get_secret_value(name).await.unwrap();
        let pw: serde_json::Value = serde_json::from_str(cur.secret_data.expose_secret()).unwrap();
        let api = rota_kms::OpenApi::new(Arc::new(cloud.clone()));
        assert!(crate::targets::logs_in(&api, ECS, "app", pw["Password"].as_str().unwrap()).await);
        assert!(!crate::targets::logs_in(&api, ECS, "app", "App-Passw0rd1").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_pending_and_promotion_never_locks_anyone_out() {
    for kind in ["ecs", "ram"] {
        for stop in ["PendingStored", "TargetChanged"] {
            crash_at(kind, stop).await;
        }
    }
}
