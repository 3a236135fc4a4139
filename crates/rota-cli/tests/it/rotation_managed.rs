//! Crash injection for managed rotation: an ECS password secret on the
//! embedded default, rotated by the `managed` plugin (`RotateSecret`), with
//! `rota rotate` aborting at every crash point. After each crash the state
//! is inspected exactly as the crash left it (a `LocalCloud` opened with
//! `recover(false)`), then as rota-local's roll-forward leaves it, then the
//! next `rota rotate` must converge: the emulated ECS account logs in with
//! ACSCurrent's password (a Cloud Assistant `su` login check), ACSPrevious
//! holds the value the account had before, and no version is lost.
//!
//! Where the points are reached: `before-target-change`,
//! `after-target-change`, `after-set` and `after-test` in Rota's managed
//! path (around `RotateSecret`); `after-create` (the cloud stored the new
//! value as ACSPending) and `in-finish` (the target accepted it, right
//! before the cloud's finishing commit) inside the embedded cloud's
//! `RotateSecret`, through its rotation hook.

use std::path::Path;
use std::sync::Arc;

use rota_kms::{KmsClient, OpenApi, Transport};
use rota_local::{LocalCloud, World};
use serde_json::Value;

use crate::common::stderr;
use crate::rotation::{Stages, cmd, ok, run_in, stages};

const INSTANCE: &str = "i-bp1fr0a100hd0yf6ksq3";
const USER: &str = "ecs-user1423";
const SECRET: &str = "acs/ecs/web";
const INITIAL: &str = "Initial-Ecs-Pw1";

fn write_ecs_config(dir: &Path) {
    std::fs::write(
        dir.join("world.hcl"),
        format!(
            "account_id = \"1234567890123456\"\nregion = \"cn-hangzhou\"\n\necs_instance \"{INSTANCE}\" {{\n  os_type = \"linux\"\n  account \"{USER}\" {{\n    password = \"{INITIAL}\"\n  }}\n}}\n"
        ),
    )
    .unwrap();
    let data = format!("{{\"UserName\":\"{USER}\",\"Password\":\"{INITIAL}\"}}");
    let ext = format!(
        "{{\"SecretSubType\":\"Password\",\"InstanceId\":\"{INSTANCE}\",\"RegionId\":\"cn-hangzhou\"}}"
    );
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "resource \"alicloud_kms_secret\" \"web\" {{\n  secret_name      = \"{SECRET}\"\n  secret_type      = \"ECS\"\n  secret_data      = {data:?}\n  extended_config  = {ext:?}\n  version_id       = \"v1\"\n}}\n\nrotation \"ecs\" {{\n  secrets  = [\"{SECRET}\"]\n  schedule = \"@daily\"\n  plugin   = \"managed\"\n  settings = {{ poll_interval_ms = 10 }}\n}}\n"
        ),
    )
    .unwrap();
}

/// What the cloud shows: the secret's stages and what the account accepts.
#[derive(Debug)]
struct Observed {
    stages: Stages,
    /// Which staged versions hold the account's credential (world snapshot).
    held_by: Vec<String>,
    /// Whether ACSCurrent's password logs in (Cloud Assistant `su` check).
    current_logs_in: bool,
    /// Whether the account holds ACSPending's value, when there is one
    /// (a managed secret's ACSPending is not readable through the API; the
    /// world snapshot compares it inside the cloud).
    pending_held: Option<bool>,
}

fn password(value: &str) -> String {
    let v: Value = serde_json::from_str(value).expect("an ECS secret value is JSON");
    assert_eq!(v["UserName"], USER);
    v["Password"].as_str().unwrap().to_owned()
}

/// Whether `pw` logs in as the ECS account: `echo 'PW' | su USER -c whoami`
/// through Cloud Assistant on the emulated instance.
async fn logs_in(api: &OpenApi, pw: &str) -> bool {
    assert!(!pw.contains('\''), "the password cannot be quoted");
    let script = format!("echo '{pw}' | su {USER} -c whoami");
    let r = api
        .call(
            "ecs",
            "",
            "RunCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("Type", "RunShellScript"),
                ("CommandContent", script.as_str()),
                ("ContentEncoding", "PlainText"),
                ("InstanceId.1", INSTANCE),
            ],
        )
        .await
        .unwrap();
    let id = r["InvokeId"].as_str().unwrap().to_owned();
    let d = api
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
    let row = &d["Invocation"]["InvocationResults"]["InvocationResult"][0];
    row["InvocationStatus"] == "Success"
        && row["Output"]
            .as_str()
            .unwrap_or_default()
            .trim_end()
            .ends_with(USER)
}

/// Opens the embedded cloud of `dir` (after every `rota` exited: the data
/// directory is locked while a process has it open). `recover = false`
/// shows the state exactly as a crash left it.
fn observe(dir: &Path, recover: bool) -> Observed {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let world = World::load(&dir.join("world.hcl")).unwrap();
        let cloud = LocalCloud::options(dir.join(".rota"))
            .clock(Arc::new(rota_test_support::system_clock()))
            .world(world)
            .automatic_rotation(false)
            .recover(recover)
            .open()
            .await
            .unwrap();
        let transport: Arc<dyn Transport> = Arc::new(cloud.clone());
        let kms = KmsClient::new(transport.clone());
        let api = OpenApi::new(transport);
        let mut stages = stages(&kms, SECRET).await;
        // A managed secret serves only ACSCurrent and ACSPrevious (as KMS
        // does): ACSPending is found in the version list, and whether the
        // account holds it in the world snapshot.
        for v in kms.list_all_versions(SECRET).await.unwrap() {
            if v.version_stages.contains("ACSPending") && !v.version_stages.contains("ACSCurrent") {
                stages.pending = Some((v.version_id, String::new()));
            }
        }
        let snapshot = cloud.world_snapshot().await;
        let held_by = snapshot
            .ecs_instances
            .iter()
            .find(|i| i.instance_id == INSTANCE)
            .and_then(|i| i.accounts.iter().find(|a| a.name == USER))
            .map(|a| a.held_by.clone())
            .unwrap_or_default();
        let current_logs_in = logs_in(&api, &password(&stages.current.1)).await;
        let pending_held = stages.pending.as_ref().map(|(id, _)| {
            held_by
                .iter()
                .any(|h| h.contains("ACSPending") && h.contains(id.as_str()))
        });
        drop(cloud);
        Observed {
            stages,
            held_by,
            current_logs_in,
            pending_held,
        }
    })
}

/// The invariant at every observed moment: the account's credential is
/// ACSCurrent's or ACSPending's, never another value.
fn target_is_current_or_pending(point: &str, when: &str, o: &Observed) {
    assert!(
        o.current_logs_in || o.pending_held == Some(true),
        "{point} ({when}): the account holds neither ACSCurrent nor ACSPending: {o:?}"
    );
    assert!(
        o.held_by
            .iter()
            .any(|h| h.contains("ACSCurrent") || h.contains("ACSPending")),
        "{point} ({when}): {o:?}"
    );
}

#[test]
fn a_crash_at_every_point_of_a_managed_ecs_rotation_converges() {
    for point in rota_rotation::CrashPoint::PROTOCOL.map(|p| p.to_string()) {
        let point = point.as_str();
        let dir = tempfile::tempdir().unwrap();
        write_ecs_config(dir.path());
        ok(&run_in(dir.path(), &["apply", "--auto-approve"]));
        let before = observe(dir.path(), true);
        assert_eq!(before.stages.current.0, "v1");
        assert!(
            before.current_logs_in,
            "the seeded account takes the initial password"
        );

        // The crash: `rota rotate` aborts at the point, as kill -9 would.
        let o = cmd(dir.path())
            .env("ROTA_TEST_CRASH_AT", point)
            .args(["rotate", SECRET])
            .output()
            .unwrap();
        assert!(
            !o.status.success() && o.status.code().is_none(),
            "{point}: the process did not die abnormally: {:?}\n{}",
            o.status,
            stderr(&o)
        );
        assert!(
            stderr(&o).contains(&format!("aborting at {point}")),
            "{point}: {}",
            stderr(&o)
        );

        // Exactly as the crash left it.
        let crashed = observe(dir.path(), false);
        target_is_current_or_pending(point, "as crashed", &crashed);
        assert!(
            crashed.stages.versions.is_superset(&before.stages.versions),
            "{point}: a version was lost"
        );
        match point {
            "before-target-change" => {
                assert_eq!(crashed.stages.current.0, "v1", "{point}");
                assert_eq!(crashed.stages.pending, None, "{point}");
                assert!(crashed.current_logs_in, "{point}");
            }
            "after-create" => {
                // The cloud stored the candidate; the account is untouched.
                assert_eq!(crashed.stages.current.0, "v1", "{point}");
                assert!(crashed.stages.pending.is_some(), "{point}: {crashed:?}");
                assert!(crashed.current_logs_in, "{point}");
                assert_eq!(crashed.pending_held, Some(false), "{point}: {crashed:?}");
            }
            "in-finish" => {
                // The account took the candidate; ACSCurrent has not moved.
                assert_eq!(crashed.stages.current.0, "v1", "{point}");
                assert!(crashed.stages.pending.is_some(), "{point}: {crashed:?}");
                assert_eq!(crashed.pending_held, Some(true), "{point}: {crashed:?}");
                assert!(!crashed.current_logs_in, "{point}");
            }
            _ => {
                // RotateSecret returned: the cloud finished the rotation.
                assert!(
                    crashed.stages.current.0.starts_with("rota-manual-"),
                    "{point}: {crashed:?}"
                );
                assert_eq!(crashed.stages.pending, None, "{point}");
                assert_eq!(crashed.stages.previous.as_deref(), Some("v1"), "{point}");
                assert!(crashed.current_logs_in, "{point}");
            }
        }

        // rota-local's roll-forward at open completes an interrupted RotateSecret.
        let recovered = observe(dir.path(), true);
        target_is_current_or_pending(point, "recovered", &recovered);
        assert!(recovered.current_logs_in, "{point}: {recovered:?}");
        assert_eq!(recovered.stages.pending, None, "{point}");
        assert!(
            recovered
                .stages
                .versions
                .is_superset(&crashed.stages.versions),
            "{point}: a version was lost in recovery"
        );
        if let Some((token, _)) = &crashed.stages.pending {
            assert_eq!(&recovered.stages.current.0, token, "{point}");
            assert_eq!(recovered.stages.previous.as_deref(), Some("v1"));
        }

        // The next run converges.
        let o = run_in(dir.path(), &["rotate", SECRET]);
        ok(&o);
        let after = observe(dir.path(), true);
        target_is_current_or_pending(point, "after the next run", &after);
        assert!(after.current_logs_in, "{point}: {after:?}");
        assert!(
            after.stages.current.0.starts_with("rota-manual-")
                && after.stages.current.0 != recovered.stages.current.0,
            "{point}: {after:?}"
        );
        assert_eq!(after.stages.pending, None, "{point}");
        assert_eq!(
            after.stages.previous.as_ref(),
            Some(&recovered.stages.current.0),
            "{point}: ACSPrevious is not the value the account held before"
        );
        assert!(
            after
                .stages
                .versions
                .is_superset(&recovered.stages.versions),
            "{point}: a version was lost"
        );
        assert_ne!(password(&after.stages.current.1), INITIAL);
    }
}
