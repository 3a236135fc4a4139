//! `cloud::`, `ecs::`, `rds::` and `ram::` — product APIs through the same
//! signed `OpenApi::call` as KMS, so a hook written against the embedded
//! local cloud runs unchanged against Alibaba Cloud.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rhai::{Array, Dynamic, Map, Module};
use rota_kms::SecretString;
use serde_json::Value;

use super::{HostResult, backend, block_on, fail, map, new_module, opt_get};
use crate::convert::{to_dynamic, to_param};
use crate::env;
use crate::secret::Secret;

use rota_kms::transport::version::{ECS, RAM, RDS};

fn call(
    what: &str,
    product: &str,
    version: &str,
    action: &str,
    params: Vec<(String, String)>,
) -> HostResult<Value> {
    let (_, api) = backend(what)?;
    block_on(what, async {
        api.call(product, version, action, params).await
    })
}

fn params_of(m: &Map) -> Vec<(String, String)> {
    m.iter()
        .map(|(k, v)| (k.to_string(), to_param(v)))
        .collect()
}

pub(super) fn cloud_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("call", |product: &str, action: &str, params: Map| {
        call("cloud::call", product, "", action, params_of(&params)).map(|v| to_dynamic(&v))
    });
    m.set_native_fn(
        "call",
        |product: &str, version: &str, action: &str, params: Map| {
            call("cloud::call", product, version, action, params_of(&params))
                .map(|v| to_dynamic(&v))
        },
    );
    m
}

// ------------------------------------------------------------------ ECS

fn region(opts: &Map) -> HostResult<String> {
    opt_get(opts, "region")
        .or_else(|| env::with(|e| e.region.clone()).filter(|r| !r.is_empty()))
        .ok_or_else(|| fail("ecs", "no region: pass #{region: …} or configure one"))
}

fn terminal(status: &str) -> bool {
    !matches!(
        status,
        "Pending" | "Running" | "Stopping" | "Scheduled" | ""
    )
}

fn invocation_result(what: &str, region: &str, invoke_id: &str) -> HostResult<Option<Map>> {
    let v = call(
        what,
        "ecs",
        ECS,
        "DescribeInvocationResults",
        vec![
            ("RegionId".into(), region.to_owned()),
            ("InvokeId".into(), invoke_id.to_owned()),
        ],
    )?;
    let Some(r) = v
        .pointer("/Invocation/InvocationResults/InvocationResult")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    else {
        return Ok(None);
    };
    let s = |k: &str| {
        r.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let status = s("InvocationStatus");
    if !terminal(&status) {
        return Ok(None);
    }
    let raw = s("Output");
    let output = B64
        .decode(raw.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or(raw);
    let mut out = Map::new();
    out.insert("invoke_id".into(), Dynamic::from(invoke_id.to_owned()));
    out.insert("instance_id".into(), Dynamic::from(s("InstanceId")));
    out.insert("status".into(), Dynamic::from(status));
    out.insert(
        "exit_code".into(),
        Dynamic::from_int(r.get("ExitCode").and_then(Value::as_i64).unwrap_or(-1)),
    );
    out.insert("output".into(), Dynamic::from(output));
    out.insert("error_code".into(), Dynamic::from(s("ErrorCode")));
    out.insert("error_info".into(), Dynamic::from(s("ErrorInfo")));
    Ok(Some(out))
}

fn wait(region: &str, invoke_id: &str, timeout: Duration) -> HostResult<Map> {
    let give_up = std::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(200);
    loop {
        if let Some(r) = invocation_result("ecs::wait", region, invoke_id)? {
            return Ok(r);
        }
        if std::time::Instant::now() + pause > give_up {
            return Err(fail(
                "ecs::wait",
                format!(
                    "invocation {invoke_id} did not finish within {}s",
                    timeout.as_secs()
                ),
            ));
        }
        block_on("ecs::wait", async {
            tokio::time::sleep(pause).await;
            Ok::<_, String>(())
        })?;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

fn timeout_of(opts: &Map) -> u64 {
    opts.get("timeout")
        .and_then(|d| d.as_int().ok())
        .map_or(60, |t| t.clamp(1, 86_400) as u64)
}

fn run(
    instance: &str,
    params: Vec<(String, String)>,
    action: &str,
    opts: &Map,
) -> HostResult<Dynamic> {
    let what = "ecs::run_command";
    let region = region(opts)?;
    let mut p = vec![
        ("RegionId".to_owned(), region.clone()),
        ("InstanceId.1".to_owned(), instance.to_owned()),
        ("Timeout".to_owned(), timeout_of(opts).to_string()),
    ];
    p.extend(params);
    if let Some(u) = opt_get(opts, "username") {
        p.push(("Username".into(), u));
    }
    if let Some(params) = opts
        .get("parameters")
        .and_then(|d| d.read_lock::<Map>().map(|m| m.clone()))
    {
        let mut any = false;
        let json = crate::convert::to_json(&Dynamic::from_map(params), true, &mut any);
        if action == "RunCommand" {
            p.push(("EnableParameter".into(), "true".into()));
        }
        p.push(("Parameters".into(), json.to_string()));
    }
    let v = call(what, "ecs", ECS, action, p)?;
    let invoke_id = v
        .get("InvokeId")
        .and_then(Value::as_str)
        .ok_or_else(|| fail(what, "the response has no InvokeId"))?
        .to_owned();
    let wait_for = opts
        .get("wait")
        .and_then(|d| d.as_bool().ok())
        .unwrap_or(true);
    if !wait_for {
        return Ok(map([("invoke_id", Dynamic::from(invoke_id))]));
    }
    let r = wait(
        &region,
        &invoke_id,
        Duration::from_secs(timeout_of(opts) + 5),
    )?;
    Ok(Dynamic::from_map(r))
}

pub(super) fn ecs_module() -> Module {
    let mut m = new_module();
    let run_command = |instance: &str, script: Dynamic, opts: Map| {
        let script = to_param(&script);
        let kind = opt_get(&opts, "type").unwrap_or_else(|| "RunShellScript".into());
        run(
            instance,
            vec![
                ("Type".into(), kind),
                ("CommandContent".into(), B64.encode(script.as_bytes())),
                ("ContentEncoding".into(), "Base64".into()),
            ],
            "RunCommand",
            &opts,
        )
    };
    m.set_native_fn(
        "run_command",
        move |instance: &str, script: Dynamic, opts: Map| run_command(instance, script, opts),
    );
    m.set_native_fn("run_command", move |instance: &str, script: Dynamic| {
        run_command(instance, script, Map::new())
    });
    m.set_native_fn(
        "invoke_command",
        |instance: &str, command_id: &str, params: Map, opts: Map| {
            let mut opts = opts;
            opts.insert("parameters".into(), Dynamic::from_map(params));
            run(
                instance,
                vec![("CommandId".into(), command_id.to_owned())],
                "InvokeCommand",
                &opts,
            )
        },
    );
    m.set_native_fn("wait", |invoke_id: &str| {
        Ok(Dynamic::from_map(wait(
            &region(&Map::new())?,
            invoke_id,
            Duration::from_secs(60),
        )?))
    });
    m.set_native_fn("wait", |invoke_id: &str, timeout: i64| {
        Ok(Dynamic::from_map(wait(
            &region(&Map::new())?,
            invoke_id,
            Duration::from_secs(timeout.clamp(1, 86_400) as u64),
        )?))
    });
    m
}

// ------------------------------------------------------------------ RDS

pub(super) fn rds_module() -> Module {
    let mut m = new_module();
    m.set_native_fn(
        "reset_password",
        |instance: &str, account: &str, password: Dynamic| {
            let pw: SecretString = super::kms::secret_value("rds::reset_password", &password)?;
            env::with(|e| e.remember(&pw));
            call(
                "rds::reset_password",
                "rds",
                RDS,
                "ResetAccountPassword",
                vec![
                    ("DBInstanceId".into(), instance.to_owned()),
                    ("AccountName".into(), account.to_owned()),
                    ("AccountPassword".into(), pw.expose_secret().to_owned()),
                ],
            )?;
            Ok(())
        },
    );
    let describe = |instance: &str, account: Option<&str>| -> HostResult<Array> {
        let mut p = vec![("DBInstanceId".to_owned(), instance.to_owned())];
        if let Some(a) = account {
            p.push(("AccountName".into(), a.to_owned()));
        }
        let v = call("rds::describe_accounts", "rds", RDS, "DescribeAccounts", p)?;
        Ok(v.pointer("/Accounts/DBInstanceAccount")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(to_dynamic).collect())
            .unwrap_or_default())
    };
    m.set_native_fn("describe_accounts", move |instance: &str| {
        describe(instance, None)
    });
    m.set_native_fn("describe_accounts", move |instance: &str, account: &str| {
        describe(instance, Some(account))
    });
    m
}

// ------------------------------------------------------------------ RAM

fn key_row(k: &Value) -> Dynamic {
    let s = |f: &str| {
        Dynamic::from(
            k.get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        )
    };
    map([
        ("id", s("AccessKeyId")),
        ("status", s("Status")),
        ("create_date", s("CreateDate")),
    ])
}

pub(super) fn ram_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("create_access_key", |user: &str| {
        let v = call(
            "ram::create_access_key",
            "ram",
            RAM,
            "CreateAccessKey",
            vec![("UserName".into(), user.to_owned())],
        )?;
        let k = v
            .get("AccessKey")
            .ok_or_else(|| fail("ram::create_access_key", "the response has no AccessKey"))?;
        let secret = k
            .get("AccessKeySecret")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                fail(
                    "ram::create_access_key",
                    "the response has no AccessKeySecret",
                )
            })?;
        let mut row = key_row(k).cast::<Map>();
        row.insert("secret".into(), Secret::dynamic(SecretString::new(secret)));
        Ok(Dynamic::from_map(row))
    });
    m.set_native_fn("delete_access_key", |user: &str, id: &str| {
        call(
            "ram::delete_access_key",
            "ram",
            RAM,
            "DeleteAccessKey",
            vec![
                ("UserName".into(), user.to_owned()),
                ("UserAccessKeyId".into(), id.to_owned()),
            ],
        )?;
        Ok(())
    });
    m.set_native_fn("update_access_key", |user: &str, id: &str, status: &str| {
        call(
            "ram::update_access_key",
            "ram",
            RAM,
            "UpdateAccessKey",
            vec![
                ("UserName".into(), user.to_owned()),
                ("UserAccessKeyId".into(), id.to_owned()),
                ("Status".into(), status.to_owned()),
            ],
        )?;
        Ok(())
    });
    m.set_native_fn("list_access_keys", |user: &str| -> HostResult<Array> {
        let v = call(
            "ram::list_access_keys",
            "ram",
            RAM,
            "ListAccessKeys",
            vec![("UserName".into(), user.to_owned())],
        )?;
        Ok(v.pointer("/AccessKeys/AccessKey")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(key_row).collect())
            .unwrap_or_default())
    });
    m
}
