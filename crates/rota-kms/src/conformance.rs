//! The conformance suite (feature `conformance`): KMS secret semantics of
//! kms-api.md §3 as data-driven cases over any [`KmsClient`], so the same
//! cases run against every backend (the in-process local cloud, `rota local
//! serve` over HTTP, …) and must give the same answers.
//!
//! Each case gets a client and a unique name prefix, asserts what the API
//! must do, and returns a transcript of what it observed (codes, stages,
//! flags; never request ids or times) so runners can also check that two
//! backends answered identically. Cases need no clock control: expiry of
//! deletion windows is tested by the backends themselves.
//!
//! The managed-rotation cases (`rotate_*`) act on real targets, so the
//! backend's world must declare, in region `cn-hangzhou`: the Linux ECS
//! instance `i-conformance000001` with the OS account `app`, the RDS
//! instance `rm-conformance00001` with the account `app`, and the RAM user
//! `conformance` with one access key. They check the targets through the
//! same transport with [`crate::OpenApi`] (Cloud Assistant login checks,
//! DescribeAccounts, ListAccessKeys).

use std::future::Future;

use crate::KmsClient;
use crate::kms::*;
use crate::secret::SecretString;
use crate::transport::BoxFuture;

/// What a case observed, or why it failed.
pub type Outcome = Result<Vec<String>, String>;

/// One conformance case.
#[derive(Clone, Copy)]
pub struct Case {
    /// Stable name.
    pub name: &'static str,
    /// The case: client and a unique secret-name prefix.
    pub run: for<'a> fn(&'a KmsClient, &'a str) -> BoxFuture<'a, Outcome>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

/// Runs every case (prefix `<prefix>/<case name>`) and returns each outcome.
pub async fn run_all(client: &KmsClient, prefix: &str) -> Vec<(&'static str, Outcome)> {
    let mut out = Vec::new();
    for case in cases() {
        let p = format!("{prefix}/{}", case.name);
        out.push((case.name, (case.run)(client, &p).await));
    }
    out
}

fn fail(msg: impl Into<String>) -> String {
    msg.into()
}

async fn ok<T, F: Future<Output = crate::Result<T>>>(what: &str, f: F) -> Result<T, String> {
    f.await
        .map_err(|e| fail(format!("{what}: unexpected error {e}")))
}

async fn err<T: std::fmt::Debug, F: Future<Output = crate::Result<T>>>(
    what: &str,
    code: &str,
    f: F,
) -> Result<String, String> {
    match f.await {
        Ok(v) => Err(fail(format!("{what}: expected {code}, got success {v:?}"))),
        Err(e) => {
            let api = e
                .api()
                .ok_or_else(|| fail(format!("{what}: not an API error: {e}")))?;
            if api.code != code {
                return Err(fail(format!(
                    "{what}: expected {code}, got {} ({})",
                    api.code, api.message
                )));
            }
            Ok(format!("{what}: {} {}", api.code, api.status))
        }
    }
}

fn ensure(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(fail(msg)) }
}

fn create(name: &str, data: &str) -> CreateSecret {
    CreateSecret {
        secret_name: name.to_owned(),
        secret_data: SecretString::new(data),
        version_id: "v1".into(),
        ..CreateSecret::default()
    }
}

fn put(name: &str, vid: &str, data: &str, stages: Option<&[&str]>) -> PutSecretValue {
    PutSecretValue {
        secret_name: name.to_owned(),
        version_id: vid.into(),
        secret_data: SecretString::new(data),
        secret_data_type: None,
        version_stages: stages.map(|s| s.iter().map(|x| (*x).to_owned()).collect()),
    }
}

fn get(name: &str, vid: Option<&str>, stage: Option<&str>) -> GetSecretValue {
    GetSecretValue {
        secret_name: name.to_owned(),
        version_id: vid.map(Into::into),
        version_stage: stage.map(Into::into),
        ..GetSecretValue::default()
    }
}

fn mv(name: &str, stage: &str, to: Option<&str>, from: Option<&str>) -> UpdateSecretVersionStage {
    UpdateSecretVersionStage {
        secret_name: name.to_owned(),
        version_stage: stage.into(),
        move_to_version: to.map(Into::into),
        remove_from_version: from.map(Into::into),
    }
}

fn rds(name: &str) -> CreateSecret {
    CreateSecret {
        secret_type: Some("Rds".into()),
        extended_config: Some(r#"{"SecretSubType":"SingleUser","DBInstanceId":"rm-1"}"#.into()),
        ..create(
            name,
            r#"{"Accounts":[{"AccountName":"app","AccountPassword":"P@ss1234"}]}"#,
        )
    }
}

fn ecs(name: &str) -> CreateSecret {
    CreateSecret {
        secret_type: Some("ECS".into()),
        extended_config: Some(r#"{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"i-1","CommandId":""}"#.into()),
        ..create(name, r#"{"UserName":"root","Password":"P@ss1234"}"#)
    }
}

const CONF_ECS: &str = "i-conformance000001";
const CONF_RDS: &str = "rm-conformance00001";

fn ecs_conf(name: &str) -> CreateSecret {
    CreateSecret {
        secret_type: Some("ECS".into()),
        extended_config: Some(format!(
            r#"{{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"{CONF_ECS}","CommandId":"cmd-ACS-KMS-RotateECSSecret-For-Linux.sh"}}"#
        )),
        ..create(name, r#"{"UserName":"app","Password":"Conf-Passw0rd1"}"#)
    }
}

fn rotate(name: &str, vid: &str) -> RotateSecret {
    RotateSecret {
        secret_name: name.to_owned(),
        version_id: vid.into(),
    }
}

fn json_field(data: &SecretString, field: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(data.expose_secret()).map_err(|_| fail("the value is not JSON"))?;
    v.get(field)
        .and_then(|x| x.as_str())
        .map(str::to_owned)
        .ok_or_else(|| fail(format!("the value has no {field}")))
}

/// Runs `script` on the conformance instance via Cloud Assistant; returns
/// (status, exit code, plain output).
async fn run_on_instance(c: &KmsClient, script: &str) -> Result<(String, i64, String), String> {
    let api = crate::OpenApi::new(c.transport().clone());
    let r = ok(
        "RunCommand",
        api.call(
            "ecs",
            "",
            "RunCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("Type", "RunShellScript"),
                ("CommandContent", script),
                ("InstanceId.1", CONF_ECS),
            ],
        ),
    )
    .await?;
    let invoke = r["InvokeId"].as_str().unwrap_or_default().to_owned();
    let d = ok(
        "DescribeInvocationResults",
        api.call(
            "ecs",
            "",
            "DescribeInvocationResults",
            [
                ("RegionId", "cn-hangzhou"),
                ("InvokeId", invoke.as_str()),
                ("ContentEncoding", "PlainText"),
            ],
        ),
    )
    .await?;
    let row = &d["Invocation"]["InvocationResults"]["InvocationResult"][0];
    Ok((
        row["InvocationStatus"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        row["ExitCode"].as_i64().unwrap_or(-1),
        row["Output"].as_str().unwrap_or_default().to_owned(),
    ))
}

async fn stages(c: &KmsClient, name: &str) -> Result<Vec<String>, String> {
    let v = ok("list versions", c.list_all_versions(name)).await?;
    Ok(v.into_iter()
        .map(|v| {
            format!(
                "{}={}",
                v.version_id,
                v.version_stages.version_stage.join("+")
            )
        })
        .collect())
}

macro_rules! cases {
    ($( $name:ident => |$c:ident, $p:ident| $body:block )*) => {
        $(
            fn $name<'a>($c: &'a KmsClient, $p: &'a str) -> BoxFuture<'a, Outcome> {
                Box::pin(async move {
                    #[allow(unused_mut)]
                    let mut t: Vec<String> = Vec::new();
                    let r: Result<(), String> = async { $body }.await.map(|x: Vec<String>| t.extend(x));
                    r.map(|()| t)
                })
            }
        )*
        /// Every case, in a stable order.
        pub fn cases() -> Vec<Case> {
            vec![$( Case { name: stringify!($name), run: $name } ),*]
        }
    };
}

cases! {
    create_returns_arn_and_type => |c, p| {
        let r = ok("create", c.send(&create(p, "x"))).await?;
        ensure(r.arn.ends_with(&format!(":secret/{p}")) && r.arn.starts_with("acs:kms:"), format!("arn {}", r.arn))?;
        ensure(r.secret_type == "Generic" && r.version_id == "v1", "type/version")?;
        ensure(!r.request_id.is_empty(), "RequestId")?;
        Ok(vec![r.secret_type])
    }
    get_returns_current_value => |c, p| {
        ok("create", c.send(&create(p, "hello"))).await?;
        let v = ok("get", c.get_secret_value(p)).await?;
        ensure(v.secret_data.expose_secret() == "hello", "data")?;
        ensure(v.version_stages.version_stage == ["ACSCurrent"], "stages")?;
        ensure(v.secret_data_type == "text" && v.automatic_rotation.is_none(), "type")?;
        Ok(vec![v.version_id])
    }
    get_by_arn => |c, p| {
        let r = ok("create", c.send(&create(p, "x"))).await?;
        let v = ok("get", c.get_secret_value(&r.arn)).await?;
        ensure(v.secret_name == p, "name")?;
        Ok(vec![])
    }
    duplicate_create_conflicts => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        Ok(vec![err("dup", "Rejected.ResourceExist", c.send(&create(p, "y"))).await?])
    }
    missing_secret_not_found => |c, p| {
        Ok(vec![
            err("get", "Forbidden.ResourceNotFound", c.get_secret_value(p)).await?,
            err("describe", "Forbidden.ResourceNotFound", c.describe_secret(p)).await?,
        ])
    }
    name_with_space_invalid => |c, p| {
        Ok(vec![err("create", "InvalidParameter", c.send(&create(&format!("{p} x"), "x"))).await?])
    }
    name_acs_prefix_reserved => |c, p| {
        Ok(vec![err("create", "InvalidParameter", c.send(&create(&format!("acs/{p}"), "x"))).await?])
    }
    name_too_long_invalid => |c, p| {
        let long = format!("{p}/{}", "a".repeat(200));
        Ok(vec![err("create", "InvalidParameter", c.send(&create(&long, "x"))).await?])
    }
    value_of_30720_bytes_accepted => |c, p| {
        ok("create", c.send(&create(p, &"x".repeat(30_720)))).await?;
        let v = ok("get", c.get_secret_value(p)).await?;
        ensure(v.secret_data.len() == 30_720, "length")?;
        Ok(vec![])
    }
    binary_returned_verbatim => |c, p| {
        let mut r = create(p, "not base64 !!");
        r.secret_data_type = Some("binary".into());
        ok("create", c.send(&r)).await?;
        let v = ok("get", c.get_secret_value(p)).await?;
        ensure(v.secret_data_type == "binary" && v.secret_data.expose_secret() == "not base64 !!", "binary")?;
        Ok(vec![v.secret_data_type])
    }
    data_type_is_per_version => |c, p| {
        ok("create", c.send(&create(p, "t"))).await?;
        let mut b = put(p, "v2", "b", None);
        b.secret_data_type = Some("binary".into());
        ok("put", c.send(&b)).await?;
        let old = ok("get v1", c.send(&get(p, Some("v1"), None))).await?;
        let new = ok("get", c.get_secret_value(p)).await?;
        ensure(old.secret_data_type == "text" && new.secret_data_type == "binary", "types")?;
        Ok(vec![])
    }
    unknown_secret_type_invalid => |c, p| {
        let mut r = create(p, "x");
        r.secret_type = Some("Nope".into());
        Ok(vec![err("create", "InvalidParameter", c.send(&r)).await?])
    }
    bad_data_type_invalid => |c, p| {
        let mut r = create(p, "x");
        r.secret_data_type = Some("hex".into());
        Ok(vec![err("create", "InvalidParameter", c.send(&r)).await?])
    }
    put_shifts_previous => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put2", c.send(&put(p, "v2", "2", None))).await?;
        ok("put3", c.send(&put(p, "v3", "3", None))).await?;
        let s = stages(c, p).await?;
        ensure(s == ["v1=", "v2=ACSPrevious", "v3=ACSCurrent"], format!("{s:?}"))?;
        Ok(s)
    }
    put_idempotent_same_data => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", None))).await?;
        let r = ok("replay", c.send(&put(p, "v2", "2", None))).await?;
        ensure(r.version_stages.version_stage == ["ACSCurrent"], "stages")?;
        stages(c, p).await
    }
    put_different_data_conflicts => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        Ok(vec![err("put", "Rejected.ResourceExist", c.send(&put(p, "v1", "other", None))).await?])
    }
    put_with_stages_moves_and_shifts => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", Some(&["ACSCurrent", "ACSNext"])))).await?;
        let s = stages(c, p).await?;
        ensure(s == ["v1=ACSPrevious", "v2=ACSCurrent+ACSNext"], format!("{s:?}"))?;
        Ok(s)
    }
    put_pending_keeps_current => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", Some(&["ACSPending"])))).await?;
        let cur = ok("get", c.get_secret_value(p)).await?;
        let pend = ok("get pending", c.send(&get(p, None, Some("ACSPending")))).await?;
        ensure(cur.version_id == "v1" && pend.secret_data.expose_secret() == "2", "pending")?;
        Ok(vec![])
    }
    put_replay_applies_stages => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("replay", c.send(&put(p, "v1", "1", Some(&["ACSCurrent", "Blue"])))).await?;
        stages(c, p).await
    }
    put_empty_stage_list_invalid => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        Ok(vec![err("put", "InvalidParameter", c.send(&put(p, "v2", "2", Some(&[])))).await?])
    }
    put_on_missing_secret_not_found => |c, p| {
        Ok(vec![err("put", "Forbidden.ResourceNotFound", c.send(&put(p, "v2", "2", None))).await?])
    }
    ten_versions_oldest_evicted => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        for i in 2..=11 {
            ok("put", c.send(&put(p, &format!("v{i}"), &i.to_string(), None))).await?;
        }
        let s = stages(c, p).await?;
        ensure(s.len() == 10 && s[0] == "v2=", format!("{s:?}"))?;
        Ok(vec![err("get v1", "Forbidden.ResourceNotFound", c.send(&get(p, Some("v1"), None))).await?])
    }
    version_ids_hide_deprecated => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", None))).await?;
        ok("put", c.send(&put(p, "v3", "3", None))).await?;
        let r = ok("list", c.send(&ListSecretVersionIds { secret_name: p.to_owned(), ..ListSecretVersionIds::default() })).await?;
        let all = ok("list all", c.send(&ListSecretVersionIds { secret_name: p.to_owned(), include_deprecated: Some(true), ..ListSecretVersionIds::default() })).await?;
        ensure(r.total_count == 2 && all.total_count == 3, format!("{} {}", r.total_count, all.total_count))?;
        Ok(vec![r.total_count.to_string(), all.total_count.to_string()])
    }
    stage_move_current_makes_previous => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", None))).await?;
        ok("move", c.send(&mv(p, "ACSCurrent", Some("v1"), Some("v2")))).await?;
        let s = stages(c, p).await?;
        ensure(s == ["v1=ACSCurrent", "v2=ACSPrevious"], format!("{s:?}"))?;
        Ok(s)
    }
    stage_current_cannot_be_removed => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        Ok(vec![err("remove", "InvalidParameter", c.send(&mv(p, "ACSCurrent", None, Some("v1")))).await?])
    }
    stage_remove_needs_the_holder => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", Some(&["Blue"])))).await?;
        Ok(vec![err("remove", "InvalidParameter", c.send(&mv(p, "Blue", None, Some("v1")))).await?])
    }
    stage_custom_attach_and_detach => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", Some(&["Blue"])))).await?;
        ok("attach", c.send(&mv(p, "Green", Some("v1"), None))).await?;
        ok("detach", c.send(&mv(p, "Blue", None, Some("v2")))).await?;
        ok("move", c.send(&mv(p, "Green", Some("v2"), None))).await?;
        stages(c, p).await
    }
    stage_limit_is_eight => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        for i in 0..7 {
            ok("attach", c.send(&mv(p, &format!("S{i}"), Some("v1"), None))).await?;
        }
        Ok(vec![err("ninth", "Rejected.LimitExceeded", c.send(&mv(p, "S7", Some("v1"), None))).await?])
    }
    stage_unknown_version_not_found => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        Ok(vec![err("move", "Forbidden.ResourceNotFound", c.send(&mv(p, "Blue", Some("v9"), None))).await?])
    }
    get_version_and_stage_must_agree => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        ok("put", c.send(&put(p, "v2", "2", None))).await?;
        let v = ok("both", c.send(&get(p, Some("v1"), Some("ACSPrevious")))).await?;
        ensure(v.secret_data.expose_secret() == "1", "v1")?;
        Ok(vec![err("mismatch", "InvalidParameter", c.send(&get(p, Some("v1"), Some("ACSCurrent")))).await?])
    }
    get_unknown_stage_not_found => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        Ok(vec![
            err("stage", "Forbidden.ResourceNotFound", c.send(&get(p, None, Some("ACSPrevious")))).await?,
            err("version", "Forbidden.ResourceNotFound", c.send(&get(p, Some("v7"), None))).await?,
        ])
    }
    dry_run_never_succeeds => |c, p| {
        ok("create", c.send(&create(p, "1"))).await?;
        let mut g = GetSecretValue::current(p);
        g.dry_run = Some(true);
        Ok(vec![err("dry", "DryRunOperationError", c.send(&g)).await?])
    }
    rds_returns_single_account => |c, p| {
        let r = ok("create", c.send(&rds(p))).await?;
        ensure(r.automatic_rotation.as_deref() == Some("Disabled"), "AutomaticRotation")?;
        let v = ok("get", c.get_secret_value(p)).await?;
        let d: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).map_err(|_| fail("json"))?;
        ensure(d == serde_json::json!({"AccountName":"app","AccountPassword":"P@ss1234"}), "shape")?;
        ensure(v.extended_config.is_none(), "no ExtendedConfig without FetchExtendedConfig")?;
        let f = ok("fetch", c.send(&GetSecretValue { fetch_extended_config: Some(true), ..GetSecretValue::current(p) })).await?;
        ensure(f.extended_config.is_some(), "ExtendedConfig")?;
        Ok(vec![v.secret_type])
    }
    rds_bad_shape_invalid => |c, p| {
        let mut r = rds(p);
        r.secret_data = SecretString::new(r#"{"user":"x"}"#);
        Ok(vec![err("create", "InvalidParameter", c.send(&r)).await?])
    }
    managed_types_need_extended_config => |c, p| {
        let mut r = rds(p);
        r.extended_config = None;
        Ok(vec![err("create", "InvalidParameter", c.send(&r)).await?])
    }
    managed_types_need_text => |c, p| {
        let mut r = rds(p);
        r.secret_data_type = Some("binary".into());
        Ok(vec![err("create", "InvalidParameter", c.send(&r)).await?])
    }
    ecs_names_start_with_acs_ecs => |c, p| {
        let e1 = err("plain", "InvalidParameter", c.send(&ecs(p))).await?;
        ok("acs/ecs", c.send(&ecs(&format!("acs/ecs/{p}")))).await?;
        Ok(vec![e1])
    }
    ram_credentials_auto_name => |c, p| {
        let user = p.replace('/', "-");
        let r = CreateSecret {
            secret_type: Some("RAMCredentials".into()),
            extended_config: Some(format!(r#"{{"SecretSubType":"RamUserAccessKey","UserName":"{user}"}}"#)),
            ..create("$Auto", r#"{"AccessKeys":[{"AccessKeyId":"LTAIx","AccessKeySecret":"s"}]}"#)
        };
        let created = ok("create", c.send(&r)).await?;
        ensure(created.secret_name == format!("acs/ram/user/{user}"), created.secret_name.clone())?;
        let v = ok("get", c.get_secret_value(&created.secret_name)).await?;
        let d: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).map_err(|_| fail("json"))?;
        ensure(d["AccessKeyId"] == "LTAIx" && d["GenerateTimestamp"].is_string(), "shape")?;
        Ok(vec![])
    }
    redis_auto_gets_a_password => |c, p| {
        let r = CreateSecret {
            secret_type: Some("Redis".into()),
            extended_config: Some(r#"{"SecretSubType":"DoubleUsers","AccountName":"app","CloneAccountName":"app_clone","InstanceId":"r-1","RegionId":"cn-hangzhou"}"#.into()),
            ..create(p, "$Auto")
        };
        ok("create", c.send(&r)).await?;
        let v = ok("get", c.get_secret_value(p)).await?;
        let d: serde_json::Value = serde_json::from_str(v.secret_data.expose_secret()).map_err(|_| fail("json"))?;
        ensure(d["AccountName"] == "app" && d["AccountPassword"].as_str().is_some_and(|s| !s.is_empty()), "shape")?;
        Ok(vec![])
    }
    managed_ignores_version_id => |c, p| {
        ok("create", c.send(&rds(p))).await?;
        let v = ok("get", c.send(&get(p, Some("other"), None))).await?;
        ensure(v.version_id == "v1", "v1")?;
        Ok(vec![err("custom stage", "InvalidParameter", c.send(&get(p, None, Some("Blue")))).await?])
    }
    managed_put_invalid => |c, p| {
        ok("create", c.send(&rds(p))).await?;
        Ok(vec![err("put", "InvalidParameter", c.send(&put(p, "v2", "x", None))).await?])
    }
    generic_cannot_rotate => |c, p| {
        let mut r = create(p, "x");
        r.enable_automatic_rotation = Some(true);
        r.rotation_interval = Some("7d".into());
        Ok(vec![err("create", "InvalidParameter", c.send(&r)).await?])
    }
    rotation_interval_in_seconds => |c, p| {
        let mut r = ecs(&format!("acs/ecs/{p}"));
        r.enable_automatic_rotation = Some(true);
        r.rotation_interval = Some("7d".into());
        let created = ok("create", c.send(&r)).await?;
        ensure(created.rotation_interval.as_deref() == Some("604800s") && created.next_rotation_date.is_some(), "create")?;
        ok("policy", c.send(&UpdateSecretRotationPolicy { secret_name: r.secret_name.clone(), enable_automatic_rotation: true, rotation_interval: Some("605800s".into()) })).await?;
        let d = ok("describe", c.describe_secret(&r.secret_name)).await?;
        ensure(d.rotation_interval.as_deref() == Some("605800s") && d.automatic_rotation.as_deref() == Some("Enabled"), "describe")?;
        Ok(vec![d.rotation_interval.unwrap_or_default()])
    }
    rotation_interval_range => |c, p| {
        let name = format!("acs/ecs/{p}");
        ok("create", c.send(&ecs(&name))).await?;
        let mut t = Vec::new();
        for bad in ["5h", "8761h", "7w"] {
            t.push(err(bad, "InvalidParameter", c.send(&UpdateSecretRotationPolicy { secret_name: name.clone(), enable_automatic_rotation: true, rotation_interval: Some(bad.into()) })).await?);
        }
        Ok(t)
    }
    rotation_disable_hides_interval => |c, p| {
        let mut r = ecs(&format!("acs/ecs/{p}"));
        r.enable_automatic_rotation = Some(true);
        r.rotation_interval = Some("1d".into());
        ok("create", c.send(&r)).await?;
        ok("off", c.send(&UpdateSecretRotationPolicy { secret_name: r.secret_name.clone(), enable_automatic_rotation: false, rotation_interval: None })).await?;
        let d = ok("describe", c.describe_secret(&r.secret_name)).await?;
        ensure(d.automatic_rotation.as_deref() == Some("Disabled") && d.rotation_interval.is_none() && d.next_rotation_date.is_none(), "off")?;
        Ok(vec![])
    }
    rotate_secret_is_idempotent_on_version_id => |c, p| {
        let name = format!("acs/ecs/{p}");
        ok("create", c.send(&ecs_conf(&name))).await?;
        let r = ok("rotate", c.send(&rotate(&name, "v2"))).await?;
        ensure(r.version_id == "v2" && r.arn.ends_with(&format!(":secret/{name}")), "response")?;
        let first = ok("get", c.get_secret_value(&name)).await?;
        ok("rotate again", c.send(&rotate(&name, "v2"))).await?;
        ok("existing version", c.send(&rotate(&name, "v1"))).await?;
        let again = ok("get", c.get_secret_value(&name)).await?;
        ensure(first.secret_data == again.secret_data, "a replayed VersionId rotated again")?;
        stages(c, &name).await
    }
    rotate_ecs_password_changes_the_account => |c, p| {
        let name = format!("acs/ecs/{p}");
        ok("create", c.send(&ecs_conf(&name))).await?;
        ok("rotate", c.send(&rotate(&name, "v2"))).await?;
        let cur = ok("get", c.get_secret_value(&name)).await?;
        let prev = ok("previous", c.send(&get(&name, None, Some("ACSPrevious")))).await?;
        let new_pw = json_field(&cur.secret_data, "Password")?;
        ensure(new_pw.len() == 32 && json_field(&cur.secret_data, "UserName")? == "app", "new value")?;
        ensure(json_field(&prev.secret_data, "Password")? == "Conf-Passw0rd1", "ACSPrevious holds the old value")?;
        ensure(cur.last_rotation_date.is_some(), "LastRotationDate")?;
        let new_login = run_on_instance(c, &format!("echo '{new_pw}' | su app -c whoami")).await?;
        ensure(new_login == ("Success".into(), 0, "Password: app\n".into()), format!("new password: {new_login:?}"))?;
        let old_login = run_on_instance(c, "echo 'Conf-Passw0rd1' | su app -c whoami").await?;
        ensure(old_login.0 == "Failed" && old_login.1 == 1, format!("old password: {old_login:?}"))?;
        Ok(vec![new_login.0, old_login.0])
    }
    rotate_rds_double_users_alternates => |c, p| {
        let mut r = create(p, r#"{"Accounts":[{"AccountName":"app","AccountPassword":"Conf-Passw0rd1"}]}"#);
        r.secret_type = Some("Rds".into());
        r.extended_config = Some(format!(r#"{{"SecretSubType":"DoubleUsers","DBInstanceId":"{CONF_RDS}"}}"#));
        ok("create", c.send(&r)).await?;
        let mut t = Vec::new();
        for v in ["v2", "v3"] {
            ok("rotate", c.send(&rotate(p, v))).await?;
            let cur = ok("get", c.get_secret_value(p)).await?;
            let prev = ok("previous", c.send(&get(p, None, Some("ACSPrevious")))).await?;
            t.push(format!("{v}: current {} previous {}", json_field(&cur.secret_data, "AccountName")?, json_field(&prev.secret_data, "AccountName")?));
        }
        let api = crate::OpenApi::new(c.transport().clone());
        let accounts = ok("DescribeAccounts", api.call("rds", "", "DescribeAccounts", [("DBInstanceId", CONF_RDS)])).await?;
        let names: Vec<String> = accounts["Accounts"]["DBInstanceAccount"].as_array().map(|a| a.iter().filter_map(|x| x["AccountName"].as_str().map(str::to_owned)).collect()).unwrap_or_default();
        ensure(names.contains(&"app_clone".to_owned()), format!("accounts {names:?}"))?;
        Ok(t)
    }
    rotate_ram_keeps_at_most_two_keys => |c, _p| {
        let mut r = create("$Auto", r#"{"AccessKeys":[{"AccessKeyId":"LTAIconformancekey001","AccessKeySecret":"conformance-secret"}]}"#);
        r.secret_type = Some("RAMCredentials".into());
        r.extended_config = Some(r#"{"SecretSubType":"RamUserAccessKey","UserName":"conformance"}"#.into());
        let created = ok("create", c.send(&r)).await?;
        let name = created.secret_name;
        let api = crate::OpenApi::new(c.transport().clone());
        let mut t = Vec::new();
        for v in ["v2", "v3"] {
            ok("rotate", c.send(&rotate(&name, v))).await?;
            let cur = ok("get", c.get_secret_value(&name)).await?;
            let id = json_field(&cur.secret_data, "AccessKeyId")?;
            json_field(&cur.secret_data, "GenerateTimestamp")?;
            let keys = ok("ListAccessKeys", api.call("ram", "", "ListAccessKeys", [("UserName", "conformance")])).await?;
            let ids: Vec<String> = keys["AccessKeys"]["AccessKey"].as_array().map(|a| a.iter().filter_map(|x| x["AccessKeyId"].as_str().map(str::to_owned)).collect()).unwrap_or_default();
            ensure(ids.len() == 2 && ids.contains(&id), format!("{v}: keys {ids:?}"))?;
            t.push(format!("{v}: {} keys, initial kept: {}", ids.len(), ids.iter().any(|k| k == "LTAIconformancekey001")));
        }
        Ok(t)
    }
    rotate_missing_target_leaves_no_version => |c, p| {
        let name = format!("acs/ecs/{p}");
        let mut r = ecs_conf(&name);
        r.extended_config = Some(r#"{"SecretSubType":"Password","RegionId":"cn-hangzhou","InstanceId":"i-doesnotexist0001"}"#.into());
        ok("create", c.send(&r)).await?;
        let e = err("rotate", "InstanceNotExists", c.send(&rotate(&name, "v2"))).await?;
        let s = stages(c, &name).await?;
        ensure(s == ["v1=ACSCurrent"], format!("versions {s:?}"))?;
        Ok(vec![e])
    }
    rds_password_rules => |c, _p| {
        let api = crate::OpenApi::new(c.transport().clone());
        let mut t = Vec::new();
        for bad in ["Sh0rt!", "alllowercase", "NoSpecial-But'quote1"] {
            t.push(err(bad, "InvalidAccountPassword.Malformed", api.call("rds", "", "ResetAccountPassword", [("DBInstanceId", CONF_RDS), ("AccountName", "app"), ("AccountPassword", bad)])).await?);
        }
        t.push(err("missing instance", "InvalidDBInstanceId.NotFound", api.call("rds", "", "DescribeAccounts", [("DBInstanceId", "rm-missing")])).await?);
        Ok(t)
    }
    rotate_generic_invalid => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        Ok(vec![err("rotate", "InvalidParameter", c.send(&RotateSecret { secret_name: p.to_owned(), version_id: "v2".into() })).await?])
    }
    delete_window_range_checked => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        let mut t = Vec::new();
        for days in [6, 31] {
            t.push(err("window", "InvalidParameter", c.send(&DeleteSecret { secret_name: p.to_owned(), force_delete_without_recovery: None, recovery_window_in_days: Some(days) })).await?);
        }
        Ok(t)
    }
    delete_schedules_and_still_describes => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        let r = ok("delete", c.send(&DeleteSecret { secret_name: p.to_owned(), ..DeleteSecret::default() })).await?;
        let d = ok("describe", c.describe_secret(p)).await?;
        ensure(r.planned_delete_time.is_some() && d.planned_delete_time == r.planned_delete_time, "planned")?;
        Ok(vec![])
    }
    pending_deletion_refuses_mutations => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        ok("delete", c.send(&DeleteSecret { secret_name: p.to_owned(), ..DeleteSecret::default() })).await?;
        Ok(vec![
            err("put", "Rejected.ResourceInDeleteWindow", c.send(&put(p, "v2", "y", None))).await?,
            err("get", "Rejected.ResourceInDeleteWindow", c.get_secret_value(p)).await?,
            err("create", "Rejected.ResourceInDeleteWindow", c.send(&create(p, "y"))).await?,
        ])
    }
    restore_secret => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        ok("delete", c.send(&DeleteSecret { secret_name: p.to_owned(), ..DeleteSecret::default() })).await?;
        ok("restore", c.send(&RestoreSecret { secret_name: p.to_owned() })).await?;
        let v = ok("get", c.get_secret_value(p)).await?;
        ensure(v.secret_data.expose_secret() == "x", "data")?;
        let d = ok("describe", c.describe_secret(p)).await?;
        ensure(d.planned_delete_time.is_none(), "planned")?;
        Ok(vec![])
    }
    force_delete_is_immediate => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        ok("force", c.send(&DeleteSecret { secret_name: p.to_owned(), force_delete_without_recovery: Some(true), recovery_window_in_days: Some(30) })).await?;
        Ok(vec![
            err("describe", "Forbidden.ResourceNotFound", c.describe_secret(p)).await?,
            err("restore", "Forbidden.ResourceNotFound", c.send(&RestoreSecret { secret_name: p.to_owned() })).await?,
        ])
    }
    recreate_after_force_delete => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        ok("force", c.send(&DeleteSecret { secret_name: p.to_owned(), force_delete_without_recovery: Some(true), recovery_window_in_days: None })).await?;
        ok("again", c.send(&create(p, "y"))).await?;
        let v = ok("get", c.get_secret_value(p)).await?;
        ensure(v.secret_data.expose_secret() == "y", "data")?;
        Ok(vec![])
    }
    tags_at_create_and_describe => |c, p| {
        ok("create", c.send(&CreateSecret { tags: vec![Tag::new("env", "prod")], ..create(p, "x") })).await?;
        let d = ok("describe", c.describe_secret(p)).await?;
        ensure(d.tags == Some(Tags { tag: vec![Tag::new("env", "prod")] }), "tags")?;
        Ok(vec![])
    }
    tag_and_untag_resource => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        ok("tag", c.send(&TagResource { target: TagTarget::SecretName(p.to_owned()), tags: vec![Tag::new("a", "1"), Tag::new("b", "2")] })).await?;
        ok("untag", c.send(&UntagResource { target: TagTarget::SecretName(p.to_owned()), tag_keys: vec!["a".into()] })).await?;
        let d = ok("describe", c.describe_secret(p)).await?;
        ensure(d.tags == Some(Tags { tag: vec![Tag::new("b", "2")] }), "tags")?;
        Ok(vec![])
    }
    batch_tag_and_untag_all => |c, p| {
        let (a, b) = (format!("{p}/a"), format!("{p}/b"));
        ok("create a", c.send(&create(&a, "x"))).await?;
        ok("create b", c.send(&create(&b, "x"))).await?;
        ok("tag", c.send(&TagResources { resource_type: "secret".into(), resource_ids: vec![a.clone(), b.clone()], tags: vec![Tag::new("Created", "TF")] })).await?;
        ok("untag", c.send(&UntagResources { resource_type: "secret".into(), resource_ids: vec![b.clone()], tag_keys: vec![], all: Some(true) })).await?;
        let rows = ok("list", c.send(&ListTagResources { resource_type: "secret".into(), resource_ids: vec![a.clone(), b.clone()], ..ListTagResources::default() })).await?;
        let got: Vec<String> = rows.tag_resources.tag_resource.iter().map(|r| format!("{}:{}={}", r.resource_id.ends_with("/a"), r.tag_key, r.tag_value)).collect();
        ensure(got == ["true:Created=TF"], format!("{got:?}"))?;
        Ok(got)
    }
    tag_reserved_prefix_invalid => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        Ok(vec![
            err("aliyun", "InvalidParameter", c.send(&TagResource { target: TagTarget::SecretName(p.to_owned()), tags: vec![Tag::new("aliyun-x", "v")] })).await?,
            err("acs:", "InvalidParameter", c.send(&TagResources { resource_type: "secret".into(), resource_ids: vec![p.to_owned()], tags: vec![Tag::new("acs:x", "v")] })).await?,
        ])
    }
    tag_limit_is_twenty => |c, p| {
        let tags: Vec<Tag> = (0..20).map(|i| Tag::new(format!("k{i}"), "v")).collect();
        ok("create", c.send(&CreateSecret { tags, ..create(p, "x") })).await?;
        Ok(vec![err("21st", "InvalidParameter", c.send(&TagResource { target: TagTarget::SecretName(p.to_owned()), tags: vec![Tag::new("extra", "v")] })).await?])
    }
    tag_missing_resource_not_found => |c, p| {
        Ok(vec![err("tag", "Forbidden.ResourceNotFound", c.send(&TagResources { resource_type: "secret".into(), resource_ids: vec![p.to_owned()], tags: vec![Tag::new("a", "b")] })).await?])
    }
    list_tag_resources_pages => |c, p| {
        let tags: Vec<Tag> = (0..20).map(|i| Tag::new(format!("k{i:02}"), "v")).collect();
        let mut ids = Vec::new();
        for i in 0..11 {
            let n = format!("{p}/{i:02}");
            ok("create", c.send(&CreateSecret { tags: tags.clone(), ..create(&n, "x") })).await?;
            ids.push(n);
        }
        let (mut token, mut rows, mut pages) = (None, 0, 0);
        loop {
            let r = ok("list", c.send(&ListTagResources { resource_type: "secret".into(), resource_ids: ids.clone(), next_token: token.clone(), ..ListTagResources::default() })).await?;
            rows += r.tag_resources.tag_resource.len();
            pages += 1;
            if r.next_token.is_empty() { break; }
            token = Some(r.next_token);
        }
        ensure(rows == 220 && pages == 2, format!("{rows} rows in {pages} pages"))?;
        Ok(vec![format!("{rows}/{pages}")])
    }
    list_secrets_filter_by_type => |c, p| {
        ok("rds", c.send(&rds(&format!("{p}/rds")))).await?;
        ok("generic", c.send(&create(&format!("{p}/gen"), "x"))).await?;
        let r = ok("list", c.send(&ListSecrets { page_size: Some(100), filters: vec![Filter { key: "SecretType".into(), values: vec!["RDS".into()] }, Filter { key: "SecretName".into(), values: vec![p.to_owned()] }], ..ListSecrets::default() })).await?;
        ensure(r.total_count == 1 && r.secret_list.secret[0].secret_type == "Rds", format!("{}", r.total_count))?;
        Ok(vec![])
    }
    list_secrets_values_ored_keys_anded => |c, p| {
        for (n, team) in [("a", "blue"), ("b", "red"), ("c", "blue")] {
            ok("create", c.send(&CreateSecret { tags: vec![Tag::new("team", team)], ..create(&format!("{p}/{n}"), "x") })).await?;
        }
        let f = |k: &str, v: &[&str]| Filter { key: k.into(), values: v.iter().map(|x| (*x).to_owned()).collect() };
        let or = ok("or", c.send(&ListSecrets { page_size: Some(100), filters: vec![f("SecretName", &[&format!("{p}/a"), &format!("{p}/b")])], ..ListSecrets::default() })).await?;
        let and = ok("and", c.send(&ListSecrets { page_size: Some(100), fetch_tags: Some(true), filters: vec![f("SecretName", &[p]), f("TagValue", &["blue"])], ..ListSecrets::default() })).await?;
        ensure(or.total_count == 2 && and.total_count == 2, format!("{} {}", or.total_count, and.total_count))?;
        ensure(and.secret_list.secret.iter().all(|s| s.tags.is_some()), "tags")?;
        Ok(vec![])
    }
    list_secrets_pagination => |c, p| {
        for i in 0..7 {
            ok("create", c.send(&create(&format!("{p}/{i}"), "x"))).await?;
        }
        let page = |n| ListSecrets { page_number: Some(n), page_size: Some(3), filters: vec![Filter { key: "SecretName".into(), values: vec![p.to_owned()] }], ..ListSecrets::default() };
        let last = ok("page 3", c.send(&page(3))).await?;
        ensure(last.total_count == 7 && last.secret_list.secret.len() == 1 && last.page_number == 3 && last.page_size == 3, "paging")?;
        Ok(vec![])
    }
    list_secrets_bad_arguments => |c, _p| {
        Ok(vec![
            err("size", "InvalidParameter", c.send(&ListSecrets { page_size: Some(101), ..ListSecrets::default() })).await?,
            err("filter", "InvalidParameter", c.send(&ListSecrets { filters: vec![Filter { key: "Color".into(), values: vec!["x".into()] }], ..ListSecrets::default() })).await?,
        ])
    }
    batch_get_values_and_errors => |c, p| {
        ok("create", c.send(&create(p, "one"))).await?;
        let r = ok("batch", c.send(&BatchGetSecretValue { secrets: vec![
            BatchSecretRef { secret_name: p.to_owned(), ..BatchSecretRef::default() },
            BatchSecretRef { secret_name: format!("{p}/missing"), ..BatchSecretRef::default() },
        ] })).await?;
        ensure(r.secret_values.len() == 1 && r.secret_values[0].secret_data.expose_secret() == "one", "values")?;
        ensure(r.errors.len() == 1 && r.errors[0].code == "Forbidden.ResourceNotFound", "errors")?;
        Ok(vec![r.errors[0].code.clone()])
    }
    random_password_options => |c, _p| {
        let r = ok("password", c.send(&GetRandomPassword { password_length: Some(16), exclude_punctuation: Some(true), exclude_characters: Some("abc".into()), ..GetRandomPassword::default() })).await?;
        let pw = r.random_password.expose_secret();
        ensure(pw.len() == 16 && pw.chars().all(|ch| ch.is_ascii_alphanumeric() && !"abc".contains(ch)), "password")?;
        Ok(vec![])
    }
    random_password_bad_options => |c, _p| {
        Ok(vec![
            err("length", "InvalidParameter", c.send(&GetRandomPassword { password_length: Some(129), ..GetRandomPassword::default() })).await?,
            err("all excluded", "InvalidParameter", c.send(&GetRandomPassword { exclude_lowercase: Some(true), exclude_uppercase: Some(true), exclude_numbers: Some(true), exclude_punctuation: Some(true), ..GetRandomPassword::default() })).await?,
        ])
    }
    describe_regions => |c, _p| {
        let r = ok("regions", c.send(&DescribeRegions)).await?;
        ensure(!r.regions.region.is_empty(), "regions")?;
        Ok(vec![])
    }
    policy_set_and_get => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        let e1 = err("absent", "Forbidden.ResourceNotFound", c.send(&GetSecretPolicy { secret_name: p.to_owned(), policy_name: None })).await?;
        let policy = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:*"],"Resource":["*"]}]}"#;
        ok("set", c.send(&SetSecretPolicy { secret_name: p.to_owned(), policy: policy.into(), policy_name: Some("default".into()) })).await?;
        let got = ok("get", c.send(&GetSecretPolicy { secret_name: p.to_owned(), policy_name: None })).await?;
        ensure(got.policy == policy, "policy")?;
        Ok(vec![e1])
    }
    policy_is_validated => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        Ok(vec![
            err("effect", "InvalidParameter", c.send(&SetSecretPolicy { secret_name: p.to_owned(), policy: r#"{"Version":"1","Statement":[{"Effect":"Maybe","Principal":{"RAM":["*"]},"Action":["kms:*"]}]}"#.into(), policy_name: None })).await?,
            err("json", "InvalidParameter", c.send(&SetSecretPolicy { secret_name: p.to_owned(), policy: "{".into(), policy_name: None })).await?,
            err("name", "InvalidParameter", c.send(&SetSecretPolicy { secret_name: p.to_owned(), policy: r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:*"]}]}"#.into(), policy_name: Some("other".into()) })).await?,
        ])
    }
    policy_deny_is_enforced => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        let deny = r#"{"Version":"1","Statement":[{"Effect":"Allow","Principal":{"RAM":["*"]},"Action":["kms:*"]},{"Effect":"Deny","Principal":{"RAM":["*"]},"Action":["kms:GetSecretValue"]}]}"#;
        ok("set", c.send(&SetSecretPolicy { secret_name: p.to_owned(), policy: deny.into(), policy_name: None })).await?;
        ok("describe", c.describe_secret(p)).await?;
        Ok(vec![err("get", "Forbidden.NoPermission", c.get_secret_value(p)).await?])
    }
    update_description => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        ok("update", c.send(&UpdateSecret { secret_name: p.to_owned(), description: Some("new".into()), custom_data: None })).await?;
        let d = ok("describe", c.describe_secret(p)).await?;
        ensure(d.description == "new", "description")?;
        Ok(vec![])
    }
    update_custom_data_managed_only => |c, p| {
        ok("create", c.send(&create(p, "x"))).await?;
        let e1 = err("generic", "InvalidParameter", c.send(&UpdateSecret { secret_name: p.to_owned(), description: None, custom_data: Some(r#"{"a":"b"}"#.into()) })).await?;
        let r = format!("{p}/rds");
        ok("rds", c.send(&rds(&r))).await?;
        ok("update", c.send(&UpdateSecret { secret_name: r.clone(), description: None, custom_data: Some(r#"{"owner":"a"}"#.into()) })).await?;
        let d = ok("describe", c.describe_secret(&r)).await?;
        ensure(d.extended_config.is_some_and(|e| e.contains("\"owner\"")), "custom data")?;
        Ok(vec![e1])
    }
    describe_secret_fields => |c, p| {
        ok("create", c.send(&CreateSecret { description: Some("d".into()), ..create(p, "x") })).await?;
        let d = ok("describe", c.send(&DescribeSecret { secret_name: p.to_owned(), fetch_tags: Some(false) })).await?;
        ensure(d.arn.ends_with(p) && d.description == "d" && !d.create_time.is_empty() && !d.update_time.is_empty(), "fields")?;
        ensure(d.tags.is_none() && d.dkms_instance_id.is_none() && d.planned_delete_time.is_none(), "absent fields")?;
        Ok(vec![d.secret_type])
    }
}
