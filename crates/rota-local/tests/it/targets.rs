//! The emulated ECS (Cloud Assistant), RDS and RAM APIs through
//! `rota_kms::OpenApi` over the in-process transport (and RAM keys signing
//! over HTTP), durability of their state, and the redacted world snapshot.

use std::sync::Arc;

use base64::Engine as _;
use rota_kms::credentials::Credentials;
use rota_kms::{KmsClient, OpenApi, SignatureVersion};
use serde_json::Value;

use crate::common::{code, env};

const ECS: &str = "i-test00000000000001";

pub(crate) async fn run(api: &OpenApi, instance: &str, script: &str, user: Option<&str>) -> Value {
    let mut p = vec![
        ("RegionId", "cn-hangzhou"),
        ("Type", "RunShellScript"),
        ("CommandContent", script),
        ("InstanceId.1", instance),
    ];
    if let Some(u) = user {
        p.push(("Username", u));
    }
    let r = api.call("ecs", "", "RunCommand", p).await.unwrap();
    let id = r["InvokeId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("t-") && r["CommandId"].as_str().unwrap().starts_with("c-"));
    let d = api
        .call(
            "ecs",
            "",
            "DescribeInvocationResults",
            [("RegionId", "cn-hangzhou"), ("InvokeId", id.as_str())],
        )
        .await
        .unwrap();
    d["Invocation"]["InvocationResults"]["InvocationResult"][0].clone()
}

pub(crate) fn output(row: &Value) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(row["Output"].as_str().unwrap())
        .unwrap();
    String::from_utf8(b).unwrap()
}

/// Whether `password` logs in as `user` on the instance (a `su` login check).
pub(crate) async fn logs_in(api: &OpenApi, instance: &str, user: &str, password: &str) -> bool {
    let row = run(
        api,
        instance,
        &format!("echo '{password}' | su {user} -c whoami"),
        None,
    )
    .await;
    row["InvocationStatus"] == "Success" && output(&row) == format!("Password: {user}\n")
}

#[tokio::test]
async fn cloud_assistant_runs_the_sandbox_and_reports_like_ecs() {
    let e = env().await;
    let api = e.api();
    let row = run(&api, ECS, "echo hello; whoami; hostname", None).await;
    assert_eq!(row["InvocationStatus"], "Success");
    assert_eq!(row["ExitCode"], 0);
    assert_eq!(output(&row), format!("hello\nroot\n{ECS}\n"));
    let row = run(&api, ECS, "id -un; exit 3", Some("app")).await;
    assert_eq!(
        (row["InvocationStatus"].as_str(), row["ExitCode"].as_i64()),
        (Some("Failed"), Some(3))
    );
    assert_eq!(row["ErrorCode"], "ExitCodeNonzero");
    assert_eq!(output(&row), "app\n");
    // Never on the host: refused before anything runs.
    let row = run(&api, ECS, "echo x; rm -rf /tmp/x", None).await;
    assert_eq!(
        (row["InvocationStatus"].as_str(), row["ErrorCode"].as_str()),
        (Some("Invalid"), Some("CommandNotApplicable"))
    );
    assert_eq!(output(&row), "");
    let row = run(&api, "i-nope", "echo x", None).await;
    assert_eq!(row["ErrorCode"], "InstanceNotExists");
    let row = run(&api, ECS, "echo x", Some("nobody")).await;
    assert_eq!(row["ErrorCode"], "AccountNotExists");
    let row = run(&api, "i-win0000000000001", "echo x", None).await;
    assert_eq!(row["ErrorCode"], "CommandNotApplicable");
    // chpasswd then su login checks.
    assert!(logs_in(&api, ECS, "app", "App-Passw0rd1").await);
    let row = run(&api, ECS, "echo 'app:Brand-New-1' | chpasswd", None).await;
    assert_eq!(row["InvocationStatus"], "Success");
    assert!(logs_in(&api, ECS, "app", "Brand-New-1").await);
    assert!(!logs_in(&api, ECS, "app", "App-Passw0rd1").await);
    // RegionId is required and must be this world's.
    let p = [
        ("Type", "RunShellScript"),
        ("CommandContent", "echo"),
        ("InstanceId.1", ECS),
    ];
    assert_eq!(
        code(api.call("ecs", "", "RunCommand", p).await),
        "MissingParameter"
    );
    let p = [
        ("RegionId", "cn-beijing"),
        ("Type", "RunShellScript"),
        ("CommandContent", "echo"),
        ("InstanceId.1", ECS),
    ];
    assert_eq!(
        code(api.call("ecs", "", "RunCommand", p).await),
        "InvalidRegionId.NotFound"
    );
    // CreateCommand (Base64 content by default) + InvokeCommand with parameters.
    let content = base64::engine::general_purpose::STANDARD
        .encode("echo {{greeting}} from {{ACS::InstanceId}}");
    let c = api
        .call(
            "ecs",
            "",
            "CreateCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("Name", "greet"),
                ("Type", "RunShellScript"),
                ("CommandContent", content.as_str()),
                ("EnableParameter", "true"),
            ],
        )
        .await
        .unwrap();
    let cid = c["CommandId"].as_str().unwrap().to_owned();
    let missing = api
        .call(
            "ecs",
            "",
            "InvokeCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("CommandId", cid.as_str()),
                ("InstanceId.1", ECS),
            ],
        )
        .await;
    assert_eq!(code(missing), "InvalidParameter");
    let inv = api
        .call(
            "ecs",
            "",
            "InvokeCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("CommandId", cid.as_str()),
                ("InstanceId.1", ECS),
                ("Parameters", r#"{"greeting":"hi"}"#),
            ],
        )
        .await
        .unwrap();
    let d = api
        .call(
            "ecs",
            "",
            "DescribeInvocations",
            [
                ("RegionId", "cn-hangzhou"),
                ("InvokeId", inv["InvokeId"].as_str().unwrap()),
                ("IncludeOutput", "true"),
                ("ContentEncoding", "PlainText"),
            ],
        )
        .await
        .unwrap();
    let i = &d["Invocations"]["Invocation"][0];
    assert_eq!(i["InvocationStatus"], "Success");
    assert_eq!(i["CommandName"], "greet");
    assert_eq!(
        i["InvokeInstances"]["InvokeInstance"][0]["Output"],
        format!("hi from {ECS}\n")
    );
    let unknown = api
        .call(
            "ecs",
            "",
            "InvokeCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("CommandId", "c-nope"),
                ("InstanceId.1", ECS),
            ],
        )
        .await;
    assert_eq!(code(unknown), "InvalidCommandId.NotFound");
    // The public rotation command sets a password; its parameters are masked.
    let inv = api
        .call(
            "ecs",
            "",
            "InvokeCommand",
            [
                ("RegionId", "cn-hangzhou"),
                ("CommandId", "cmd-ACS-KMS-RotateECSSecret-For-Linux.sh"),
                ("InstanceId.1", ECS),
                (
                    "Parameters",
                    r#"{"username":"app","password":"Via-Public-Cmd1"}"#,
                ),
            ],
        )
        .await
        .unwrap();
    let d = api
        .call(
            "ecs",
            "",
            "DescribeInvocations",
            [
                ("RegionId", "cn-hangzhou"),
                ("InvokeId", inv["InvokeId"].as_str().unwrap()),
            ],
        )
        .await
        .unwrap();
    let i = &d["Invocations"]["Invocation"][0];
    assert_eq!(i["InvocationStatus"], "Success");
    assert!(
        !i["Parameters"]
            .as_str()
            .unwrap()
            .contains("Via-Public-Cmd1")
    );
    assert!(logs_in(&api, ECS, "app", "Via-Public-Cmd1").await);
    let all = api
        .call(
            "ecs",
            "",
            "DescribeInvocations",
            [("RegionId", "cn-hangzhou"), ("MaxResults", "2")],
        )
        .await
        .unwrap();
    assert_eq!(
        all["Invocations"]["Invocation"].as_array().unwrap().len(),
        2
    );
    assert!(all["NextToken"].as_str().unwrap().starts_with("offset-"));
}

#[tokio::test]
async fn rds_accounts_follow_rds_rules() {
    let e = env().await;
    let api = e.api();
    let rm = "rm-test000000000001";
    let d = api
        .call(
            "rds",
            "",
            "DescribeDBInstanceAttribute",
            [("DBInstanceId", rm)],
        )
        .await
        .unwrap();
    assert_eq!(d["Items"]["DBInstanceAttribute"][0]["Engine"], "MySQL");
    assert_eq!(
        code(
            api.call(
                "rds",
                "",
                "DescribeDBInstanceAttribute",
                [("DBInstanceId", "rm-none")]
            )
            .await
        ),
        "InvalidDBInstanceId.NotFound"
    );
    let create = |name: &'static str, pw: &'static str| {
        api.call(
            "rds",
            "",
            "CreateAccount",
            [
                ("DBInstanceId", rm),
                ("AccountName", name),
                ("AccountPassword", pw),
            ],
        )
    };
    create("reader", "Reader-Passw0rd").await.unwrap();
    assert_eq!(
        code(create("reader", "Reader-Passw0rd").await),
        "InvalidAccountName.Duplicate"
    );
    assert_eq!(
        code(create("Bad-Name", "Reader-Passw0rd").await),
        "InvalidAccountName.Malformed"
    );
    assert_eq!(
        code(create("other", "weakpass").await),
        "InvalidAccountPassword.Malformed"
    );
    let reset = |name: &'static str, pw: &'static str| {
        api.call(
            "rds",
            "",
            "ResetAccountPassword",
            [
                ("DBInstanceId", rm),
                ("AccountName", name),
                ("AccountPassword", pw),
            ],
        )
    };
    reset("reader", "Another-Passw0rd").await.unwrap();
    assert_eq!(
        code(reset("reader", "Sh0rt!").await),
        "InvalidAccountPassword.Malformed"
    );
    assert_eq!(
        code(reset("ghost", "Another-Passw0rd").await),
        "InvalidAccountName.NotFound"
    );
    api.call(
        "rds",
        "",
        "GrantAccountPrivilege",
        [
            ("DBInstanceId", rm),
            ("AccountName", "reader"),
            ("DBName", "app"),
            ("AccountPrivilege", "ReadOnly"),
        ],
    )
    .await
    .unwrap();
    let a = api
        .call(
            "rds",
            "",
            "DescribeAccounts",
            [("DBInstanceId", rm), ("AccountName", "reader")],
        )
        .await
        .unwrap();
    let acc = &a["Accounts"]["DBInstanceAccount"][0];
    assert_eq!(acc["AccountStatus"], "Available");
    assert_eq!(
        acc["DatabasePrivileges"]["DatabasePrivilege"][0]["AccountPrivilege"],
        "ReadOnly"
    );
    assert!(
        !a.to_string().contains("Passw0rd"),
        "DescribeAccounts shows no password"
    );
}

#[tokio::test]
async fn ram_keys_are_capped_and_authenticate_over_http() {
    let e = env().await;
    let api = e.api();
    let server = e.server().await;
    let signer = |id: &str, secret: &str| {
        KmsClient::new(Arc::new(e.http_with(
            &server,
            SignatureVersion::V3,
            Credentials::new(id.to_owned(), secret.to_owned()),
        )))
    };
    // The declared key signs as the RAM user.
    signer("LTAIsvcinitialkey0001", "svc-initial-secret")
        .send(&rota_kms::kms::DescribeRegions)
        .await
        .unwrap();
    let k = api
        .call("ram", "", "CreateAccessKey", [("UserName", "svc")])
        .await
        .unwrap();
    let id = k["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned();
    let secret = k["AccessKey"]["AccessKeySecret"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(k["AccessKey"]["Status"], "Active");
    signer(&id, &secret)
        .send(&rota_kms::kms::DescribeRegions)
        .await
        .unwrap();
    assert_eq!(
        e.cloud.as_access_key(&id).unwrap().caller().principal,
        "acs:ram::1234567890123456:user/svc"
    );
    assert_eq!(
        code(
            api.call("ram", "", "CreateAccessKey", [("UserName", "svc")])
                .await
        ),
        "LimitExceeded.User.AccessKey"
    );
    assert_eq!(
        code(
            api.call("ram", "", "CreateAccessKey", [("UserName", "nobody")])
                .await
        ),
        "EntityNotExist.User"
    );
    let list = api
        .call("ram", "", "ListAccessKeys", [("UserName", "svc")])
        .await
        .unwrap();
    assert_eq!(list["AccessKeys"]["AccessKey"].as_array().unwrap().len(), 2);
    assert!(!list.to_string().contains(&secret));
    api.call(
        "ram",
        "",
        "UpdateAccessKey",
        [
            ("UserName", "svc"),
            ("UserAccessKeyId", id.as_str()),
            ("Status", "Inactive"),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        code(
            signer(&id, &secret)
                .send(&rota_kms::kms::DescribeRegions)
                .await
        ),
        "InvalidAccessKeyId.Inactive"
    );
    api.call(
        "ram",
        "",
        "DeleteAccessKey",
        [("UserName", "svc"), ("UserAccessKeyId", id.as_str())],
    )
    .await
    .unwrap();
    assert_eq!(
        code(
            signer(&id, &secret)
                .send(&rota_kms::kms::DescribeRegions)
                .await
        ),
        "InvalidAccessKeyId.NotFound"
    );
    assert_eq!(
        code(
            api.call(
                "ram",
                "",
                "DeleteAccessKey",
                [("UserName", "svc"), ("UserAccessKeyId", id.as_str())]
            )
            .await
        ),
        "EntityNotExist.User.AccessKey"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn target_state_is_durable_and_the_durable_state_wins() {
    let dir = tempfile::tempdir().unwrap();
    let clock = rota_local::ManualClock::new(crate::common::start_time());
    {
        let cloud = crate::common::open(dir.path(), &clock).await;
        let api = OpenApi::new(Arc::new(cloud.clone()));
        run(&api, ECS, "echo 'app:Changed-Passw0rd' | chpasswd", None).await;
        api.call(
            "ram",
            "",
            "DeleteAccessKey",
            [
                ("UserName", "svc"),
                ("UserAccessKeyId", "LTAIsvcinitialkey0001"),
            ],
        )
        .await
        .unwrap();
    }
    let cloud = crate::common::open(dir.path(), &clock).await;
    let api = OpenApi::new(Arc::new(cloud.clone()));
    assert!(logs_in(&api, ECS, "app", "Changed-Passw0rd").await);
    assert!(
        !logs_in(&api, ECS, "app", "App-Passw0rd1").await,
        "the world file's password came back"
    );
    assert!(
        cloud.authenticate("LTAIsvcinitialkey0001").is_none(),
        "a deleted key came back"
    );
    let list = api
        .call("ram", "", "ListAccessKeys", [("UserName", "svc")])
        .await
        .unwrap();
    assert_eq!(list["AccessKeys"]["AccessKey"].as_array().unwrap().len(), 0);
    // The world snapshot is inspectable and redacted.
    let snap = cloud.world_snapshot().await;
    let text = serde_json::to_string(&snap).unwrap();
    for secret in [
        "Changed-Passw0rd",
        "Root-Passw0rd",
        "App-Passw0rd1",
        "svc-initial-secret",
        "Win-Passw0rd1",
    ] {
        assert!(!text.contains(secret), "{secret} in the snapshot");
    }
    let ecs = snap
        .ecs_instances
        .iter()
        .find(|i| i.instance_id == ECS)
        .unwrap();
    assert_eq!(ecs.os_type, "linux");
    assert_eq!(
        ecs.accounts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        ["app", "deploy", "root"]
    );
    assert!(snap.invocations >= 3);
}
