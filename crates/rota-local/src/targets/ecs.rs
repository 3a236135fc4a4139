//! ECS and Cloud Assistant (Version 2014-05-26, kms-api.md §5.1):
//! RunCommand, InvokeCommand, CreateCommand, DescribeInvocations,
//! DescribeInvocationResults and DescribeInstances. `RegionId` is required
//! and must be the world's region (`InvalidRegionId.NotFound` otherwise).
//!
//! Invocations run **synchronously**: when RunCommand or InvokeCommand
//! answers, every instance's result is final (`Success` with exit code 0,
//! `Failed` with `ErrorCode=ExitCodeNonzero`, or `Invalid` with
//! `InstanceNotExists`, `AccountNotExists` or `CommandNotApplicable`), so a
//! poll of DescribeInvocationResults right after sees it. Only
//! `RepeatMode=Once` is supported. `Output` is Base64 unless
//! `ContentEncoding=PlainText`. The 1000 most recent invocations are kept.
//!
//! **The public rotation commands.** `cmd-ACS-KMS-RotateECSSecret-For-Linux.sh`
//! and `cmd-ACS-KMS-RotateECSSecret-For-Windows.ps1` exist in every region;
//! they must run as `root` (Linux) or `system` (Windows), the default
//! invoking users, and take `Parameters` (a JSON object):
//!
//! ```json
//! {"username": "ecs-user", "password": "…"}        // set the password
//! {"username": "ecs-user", "publicKey": "ssh-ed25519 AAAA…"}  // Linux: replace the authorized keys
//! ```
//!
//! Exactly one of `password` and `publicKey`. The password is masked
//! (`******`) in the invocation's recorded `Parameters`. Managed rotation of
//! ECS secrets runs this command (the secret's `ExtendedConfig.CommandId`
//! when it names one of them, else the one for the instance's OS).
//!
//! Every other command runs in the sandboxed interpreter of [`super::shell`]
//! and never on the host; what it does not support is `Invalid` with
//! `CommandNotApplicable`. `{{name}}` placeholders are filled from
//! `Parameters` when `EnableParameter=true` (built-ins: `{{ACS::InstanceId}}`,
//! `{{ACS::RegionId}}`, `{{ACS::InvokeId}}`, `{{ACS::CommandId}}`); a
//! placeholder without a value answers `InvalidParameter`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Map, Value, json};

use super::shell::{self, Ctx, Outcome};
use super::{Command, InstanceResult, Invocation, MAX_INVOCATIONS, Row, TargetState, check_region};
use crate::auth::Caller;
use crate::engine::{Engine, wire};
use crate::errors::ServiceError;
use crate::params::Params;
use crate::world::OsType;

/// The public rotation command for Linux.
pub(crate) const ROTATE_LINUX: &str = "cmd-ACS-KMS-RotateECSSecret-For-Linux.sh";
/// The public rotation command for Windows.
pub(crate) const ROTATE_WINDOWS: &str = "cmd-ACS-KMS-RotateECSSecret-For-Windows.ps1";

const MASK: &str = "******";

fn random_id(prefix: &str) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let tail: String = (0..14)
        .map(|_| A[rand::random_range(0..A.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// The public command `id`, if it is one.
pub(crate) fn public_command_for(id: &str) -> Option<Command> {
    let (ty, content) = match id {
        ROTATE_LINUX => (
            "RunShellScript",
            "#!/bin/bash\n# KMS ECS secret rotation: sets the password of {{username}} or replaces its authorized keys.\n",
        ),
        ROTATE_WINDOWS => (
            "RunPowerShellScript",
            "# KMS ECS secret rotation: sets the password of {{username}}.\n",
        ),
        _ => return None,
    };
    Some(Command {
        id: id.to_owned(),
        name: id.to_owned(),
        ty: ty.to_owned(),
        content: content.to_owned(),
        description: "public command of the KMS ECS secret rotation".to_owned(),
        enable_parameter: true,
        timeout: 60,
        created: 0,
    })
}

const TYPES: &[&str] = &["RunShellScript", "RunBatScript", "RunPowerShellScript"];

fn check_type(t: &str) -> Result<(), ServiceError> {
    if TYPES.contains(&t) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "Type",
            format!("must be one of {}", TYPES.join(", ")),
        ))
    }
}

fn decode_content(p: &Params, default_base64: bool) -> Result<String, ServiceError> {
    let raw = p.req("CommandContent")?;
    let base64 = match p.opt("ContentEncoding") {
        None => default_base64,
        Some(e) if e.eq_ignore_ascii_case("Base64") => true,
        Some(e) if e.eq_ignore_ascii_case("PlainText") => false,
        Some(_) => {
            return Err(ServiceError::invalid(
                "ContentEncoding",
                "must be PlainText or Base64",
            ));
        }
    };
    let text = if base64 {
        let bytes = B64
            .decode(raw.trim())
            .map_err(|_| ServiceError::invalid("CommandContent", "is not valid Base64"))?;
        String::from_utf8(bytes)
            .map_err(|_| ServiceError::invalid("CommandContent", "is not UTF-8 text"))?
    } else {
        raw.to_owned()
    };
    if B64.encode(text.as_bytes()).len() > 24 * 1024 {
        return Err(ServiceError::invalid(
            "CommandContent",
            "is larger than 24 KB after Base64 encoding",
        ));
    }
    Ok(text)
}

fn parse_parameters(p: &Params) -> Result<Map<String, Value>, ServiceError> {
    match p.json("Parameters")? {
        None => Ok(Map::new()),
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(ServiceError::invalid("Parameters", "must be a JSON object")),
    }
}

fn check_repeat_mode(p: &Params) -> Result<(), ServiceError> {
    match p.opt("RepeatMode") {
        None | Some("Once") => Ok(()),
        Some(_) => Err(ServiceError::invalid(
            "RepeatMode",
            "only Once is supported by the local world",
        )),
    }
}

fn instance_ids(p: &Params) -> Result<Vec<String>, ServiceError> {
    let ids = p.list("InstanceId");
    if ids.is_empty() {
        return Err(ServiceError::missing("InstanceId.1"));
    }
    if ids.len() > 100 {
        return Err(ServiceError::invalid("InstanceId", "at most 100 instances"));
    }
    Ok(ids)
}

/// Fills `{{name}}` placeholders.
fn substitute(
    content: &str,
    params: &Map<String, Value>,
    builtins: &[(&str, &str)],
) -> Result<String, String> {
    let mut out = String::with_capacity(content.len());
    let mut rest = content;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let value = builtins
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
            .or_else(|| match params.get(name) {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) | None => None,
                Some(v) => Some(v.to_string()),
            })
            .ok_or_else(|| name.to_owned())?;
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// What to run.
pub(crate) struct Exec {
    pub(crate) command: Command,
    pub(crate) public: bool,
    pub(crate) params: Map<String, Value>,
    pub(crate) username: Option<String>,
    pub(crate) timeout: i64,
}

impl Exec {
    fn recorded_parameters(&self) -> String {
        if self.params.is_empty() {
            return String::new();
        }
        let mut p = self.params.clone();
        if self.public
            && let Some(v) = p.get_mut("password")
        {
            *v = Value::String(MASK.to_owned());
        }
        Value::Object(p).to_string()
    }
}

/// The built-in rotation command on one instance.
fn rotate_builtin(
    inst: &mut super::EcsInstance,
    params: &Map<String, Value>,
    invoker: &str,
    now: i64,
) -> (i64, String, bool) {
    let root = match inst.os_type {
        OsType::Linux => "root",
        OsType::Windows => "system",
    };
    if invoker != root {
        return (
            1,
            format!("the rotation command must run as {root}\n"),
            false,
        );
    }
    let s = |k: &str| params.get(k).and_then(Value::as_str);
    let Some(user) = s("username") else {
        return (1, "the parameter username is required\n".into(), false);
    };
    let Some(account) = inst.accounts.get_mut(user) else {
        return (1, format!("user '{user}' does not exist\n"), false);
    };
    match (s("password"), s("publicKey")) {
        (Some(pw), None) if !pw.is_empty() => {
            account.set_password(pw, now);
            (0, format!("the password of {user} was changed\n"), true)
        }
        (None, Some(key)) if !key.is_empty() => {
            if inst.os_type == OsType::Windows {
                return (1, "SSH keys are not supported on Windows\n".into(), false);
            }
            account.public_keys = vec![key.trim().to_owned()];
            account.changed = now;
            (
                0,
                format!("the authorized key of {user} was replaced\n"),
                true,
            )
        }
        _ => (
            1,
            "exactly one of the parameters password and publicKey is required\n".into(),
            false,
        ),
    }
}

/// Runs `exec` on `ids`, records the invocation in `st`, and returns it
/// with the ids of the instances whose accounts changed.
pub(crate) fn execute(
    st: &mut TargetState,
    exec: &Exec,
    ids: &[String],
    region: &str,
    now: i64,
) -> (Invocation, Vec<String>) {
    let invoke_id = random_id("t-");
    let mut results = Vec::with_capacity(ids.len());
    let mut changed = Vec::new();
    for id in ids {
        let mut r = InstanceResult {
            instance_id: id.clone(),
            status: "Invalid".into(),
            exit_code: 0,
            error_code: String::new(),
            error_info: String::new(),
            output: String::new(),
            start: now,
            finish: now,
        };
        let Some(inst) = st.ecs.get_mut(id) else {
            r.error_code = "InstanceNotExists".into();
            r.error_info = "the specified instance does not exist".into();
            results.push(r);
            continue;
        };
        let applicable = match inst.os_type {
            OsType::Linux => exec.command.ty == "RunShellScript",
            OsType::Windows => exec.command.ty != "RunShellScript",
        };
        if !applicable {
            r.error_code = "CommandNotApplicable".into();
            r.error_info = format!(
                "a {} command cannot run on a {} instance",
                exec.command.ty,
                inst.os_type.as_str()
            );
            results.push(r);
            continue;
        }
        let root = match inst.os_type {
            OsType::Linux => "root",
            OsType::Windows => "system",
        };
        let user = exec.username.clone().unwrap_or_else(|| root.to_owned());
        if user != root && !inst.accounts.contains_key(&user) {
            r.error_code = "AccountNotExists".into();
            r.error_info = format!("the account {user} does not exist on the instance");
            results.push(r);
            continue;
        }
        let (exit, output, touched) = if exec.public {
            rotate_builtin(inst, &exec.params, &user, now)
        } else {
            let builtins = [
                ("ACS::InstanceId", id.as_str()),
                ("ACS::RegionId", region),
                ("ACS::InvokeId", invoke_id.as_str()),
                ("ACS::CommandId", exec.command.id.as_str()),
            ];
            let script = if exec.command.enable_parameter {
                substitute(&exec.command.content, &exec.params, &builtins)
                    .unwrap_or_else(|_| exec.command.content.clone())
            } else {
                exec.command.content.clone()
            };
            let mut ctx = Ctx {
                instance: inst,
                user: user.clone(),
                now,
                changed: false,
            };
            match shell::run(&script, &mut ctx) {
                Outcome::Ran { exit, output } => (exit, output, ctx.changed),
                Outcome::NotApplicable(why) => {
                    r.error_code = "CommandNotApplicable".into();
                    r.error_info = why;
                    results.push(r);
                    continue;
                }
            }
        };
        if touched {
            changed.push(id.clone());
        }
        r.exit_code = exit;
        r.output = output;
        if exit == 0 {
            r.status = "Success".into();
        } else {
            r.status = "Failed".into();
            r.error_code = "ExitCodeNonzero".into();
            r.error_info = format!("the command exited with code {exit}");
        }
        results.push(r);
    }
    let seq = st.next_seq;
    st.next_seq += 1;
    let inv = Invocation {
        id: invoke_id,
        seq,
        command_id: exec.command.id.clone(),
        command_name: exec.command.name.clone(),
        command_type: exec.command.ty.clone(),
        command_content: exec.command.content.clone(),
        parameters: exec.recorded_parameters(),
        username: exec.username.clone().unwrap_or_default(),
        timeout: exec.timeout,
        created: now,
        results,
    };
    (inv, changed)
}

impl Engine {
    /// Runs `exec` on `ids` and makes the invocation and every changed
    /// instance durable before installing them. Returns the invocation.
    pub(crate) async fn invoke(
        &self,
        exec: Exec,
        ids: &[String],
        kept: Option<Command>,
    ) -> Result<Invocation, ServiceError> {
        let now = self.now_secs();
        let mut st = self.targets.state.lock().await;
        let mut next = st.clone();
        let (inv, changed) = execute(&mut next, &exec, ids, &self.world.region, now);
        let mut evicted: Vec<String> = Vec::new();
        if next.invocations.len() >= MAX_INVOCATIONS {
            let mut by_seq: Vec<(u64, String)> = next
                .invocations
                .values()
                .map(|i| (i.seq, i.id.clone()))
                .collect();
            by_seq.sort_unstable();
            let excess = next.invocations.len() + 1 - MAX_INVOCATIONS;
            evicted = by_seq.into_iter().take(excess).map(|(_, id)| id).collect();
            for id in &evicted {
                next.invocations.remove(id);
            }
        }
        next.invocations.insert(inv.id.clone(), inv.clone());
        if let Some(c) = &kept {
            next.commands.insert(c.id.clone(), c.clone());
        }
        {
            let mut rows: Vec<Row<'_>> = vec![Row::Invocation(&inv)];
            rows.extend(changed.iter().map(|id| Row::Ecs(&next.ecs[id])));
            rows.extend(kept.iter().map(Row::Command));
            rows.extend(evicted.iter().map(|id| Row::DeleteInvocation(id)));
            self.targets.persist(&rows).await?;
        }
        *st = next;
        tracing::debug!(
            ecs.invoke_id = %inv.id,
            ecs.command_id = %inv.command_id,
            status = inv.overall(),
            "cloud assistant invocation finished"
        );
        Ok(inv)
    }

    fn command_for_invoke(
        &self,
        st: &TargetState,
        id: &str,
    ) -> Result<(Command, bool), ServiceError> {
        if let Some(c) = public_command_for(id) {
            return Ok((c, true));
        }
        st.commands
            .get(id)
            .cloned()
            .map(|c| (c, false))
            .ok_or_else(|| ServiceError::CommandNotFound {
                command_id: id.to_owned(),
            })
    }

    fn check_placeholders(
        &self,
        cmd: &Command,
        params: &Map<String, Value>,
    ) -> Result<(), ServiceError> {
        if !cmd.enable_parameter {
            return Ok(());
        }
        let builtins = [
            ("ACS::InstanceId", ""),
            ("ACS::RegionId", ""),
            ("ACS::InvokeId", ""),
            ("ACS::CommandId", ""),
        ];
        substitute(&cmd.content, params, &builtins)
            .map(drop)
            .map_err(|name| {
                ServiceError::invalid(
                    "Parameters",
                    format!("the command needs a value for the parameter {name:?}"),
                )
            })
    }

    pub(crate) async fn ecs_run_command(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        check_region(&self.world, p)?;
        let ty = p.req("Type")?;
        check_type(ty)?;
        let content = decode_content(p, false)?;
        let ids = instance_ids(p)?;
        check_repeat_mode(p)?;
        let enable_parameter = p.bool("EnableParameter")?.unwrap_or(false);
        let params = parse_parameters(p)?;
        let timeout = p.int_in("Timeout", 10, 86_400, 60)?;
        let command = Command {
            id: random_id("c-"),
            name: p.opt("Name").unwrap_or("rota-local-run-command").to_owned(),
            ty: ty.to_owned(),
            content,
            description: p.opt("Description").unwrap_or_default().to_owned(),
            enable_parameter,
            timeout,
            created: self.now_secs(),
        };
        self.check_placeholders(&command, &params)?;
        let kept = p
            .bool("KeepCommand")?
            .unwrap_or(false)
            .then(|| command.clone());
        let command_id = command.id.clone();
        let inv = self
            .invoke(
                Exec {
                    command,
                    public: false,
                    params,
                    username: p.opt("Username").map(str::to_owned),
                    timeout,
                },
                &ids,
                kept,
            )
            .await?;
        Ok(json!({"CommandId": command_id, "InvokeId": inv.id}))
    }

    pub(crate) async fn ecs_invoke_command(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        check_region(&self.world, p)?;
        let command_id = p.req("CommandId")?;
        let ids = instance_ids(p)?;
        check_repeat_mode(p)?;
        let params = parse_parameters(p)?;
        let (command, public) = {
            let st = self.targets.state.lock().await;
            self.command_for_invoke(&st, command_id)?
        };
        self.check_placeholders(&command, &params)?;
        let timeout = p.int_in("Timeout", 10, 86_400, command.timeout)?;
        let inv = self
            .invoke(
                Exec {
                    command,
                    public,
                    params,
                    username: p.opt("Username").map(str::to_owned),
                    timeout,
                },
                &ids,
                None,
            )
            .await?;
        Ok(json!({"InvokeId": inv.id}))
    }

    pub(crate) async fn ecs_create_command(
        &self,
        _caller: &Caller,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        check_region(&self.world, p)?;
        let name = p.req("Name")?;
        if name.chars().count() > 128 {
            return Err(ServiceError::invalid(
                "Name",
                "is longer than 128 characters",
            ));
        }
        let ty = p.req("Type")?;
        check_type(ty)?;
        let content = decode_content(p, true)?;
        let command = Command {
            id: random_id("c-"),
            name: name.to_owned(),
            ty: ty.to_owned(),
            content,
            description: p.opt("Description").unwrap_or_default().to_owned(),
            enable_parameter: p.bool("EnableParameter")?.unwrap_or(false),
            timeout: p.int_in("Timeout", 10, 86_400, 60)?,
            created: self.now_secs(),
        };
        let mut st = self.targets.state.lock().await;
        self.targets.persist(&[Row::Command(&command)]).await?;
        let id = command.id.clone();
        st.commands.insert(id.clone(), command);
        Ok(json!({"CommandId": id}))
    }

    pub(crate) async fn ecs_describe_instances(&self, p: &Params) -> Result<Value, ServiceError> {
        check_region(&self.world, p)?;
        let wanted: Option<Vec<String>> = match p.json("InstanceIds")? {
            None => None,
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            ),
            Some(_) => {
                return Err(ServiceError::invalid(
                    "InstanceIds",
                    "must be a JSON list of instance ids",
                ));
            }
        };
        let page = p.int_in("PageNumber", 1, i64::from(u32::MAX), 1)?;
        let size = p.int_in("PageSize", 1, 100, 10)?;
        let st = self.targets.state.lock().await;
        let all: Vec<Value> = st
            .ecs
            .values()
            .filter(|i| wanted.as_ref().is_none_or(|w| w.contains(&i.id)))
            .map(|i| {
                json!({
                    "InstanceId": i.id,
                    "InstanceName": i.id,
                    "RegionId": i.region,
                    "OSType": i.os_type.as_str(),
                    "Status": "Running",
                })
            })
            .collect();
        let total = all.len();
        let items: Vec<Value> = all
            .into_iter()
            .skip(((page - 1) * size) as usize)
            .take(size as usize)
            .collect();
        Ok(json!({
            "Instances": {"Instance": items},
            "TotalCount": total,
            "PageNumber": page,
            "PageSize": size,
        }))
    }

    pub(crate) async fn ecs_describe_invocations(&self, p: &Params) -> Result<Value, ServiceError> {
        check_region(&self.world, p)?;
        let include_output = p.bool("IncludeOutput")?.unwrap_or(false);
        let base64 = output_base64(p)?;
        let (offset, size) = paging(p)?;
        let st = self.targets.state.lock().await;
        let mut matching: Vec<&Invocation> = st
            .invocations
            .values()
            .filter(|i| {
                p.opt("InvokeId").is_none_or(|x| x == i.id)
                    && p.opt("CommandId").is_none_or(|x| x == i.command_id)
                    && p.opt("CommandName").is_none_or(|x| x == i.command_name)
                    && p.opt("CommandType").is_none_or(|x| x == i.command_type)
                    && p.opt("InvokeStatus")
                        .is_none_or(|x| x == i.overall() || x == "Finished")
                    && p.opt("InstanceId")
                        .is_none_or(|x| i.results.iter().any(|r| r.instance_id == x))
            })
            .collect();
        matching.sort_by_key(|i| std::cmp::Reverse(i.seq));
        let total = matching.len();
        let items: Vec<Value> = matching
            .iter()
            .skip(offset)
            .take(size)
            .map(|i| {
                let instances: Vec<Value> = i
                    .results
                    .iter()
                    .map(|r| {
                        let mut o = json!({
                            "InstanceId": r.instance_id,
                            "InvocationStatus": r.status,
                            "InstanceInvokeStatus": "Finished",
                            "ExitCode": r.exit_code,
                            "ErrorCode": r.error_code,
                            "ErrorInfo": r.error_info,
                            "Dropped": 0,
                            "Repeats": 1,
                            "CreationTime": wire(i.created),
                            "StartTime": wire(r.start),
                            "FinishTime": wire(r.finish),
                            "UpdateTime": wire(r.finish),
                            "StopTime": "",
                        });
                        if include_output {
                            o["Output"] = Value::String(encode_output(&r.output, base64));
                        }
                        o
                    })
                    .collect();
                json!({
                    "InvokeId": i.id,
                    "CommandId": i.command_id,
                    "CommandName": i.command_name,
                    "CommandType": i.command_type,
                    "CommandContent": B64.encode(i.command_content.as_bytes()),
                    "InvocationStatus": i.overall(),
                    "InvokeStatus": "Finished",
                    "RepeatMode": "Once",
                    "Frequency": "",
                    "Timeout": i.timeout,
                    "CreationTime": wire(i.created),
                    "Parameters": i.parameters,
                    "Username": i.username,
                    "WorkingDir": "",
                    "InvokeInstances": {"InvokeInstance": instances},
                })
            })
            .collect();
        Ok(json!({
            "Invocations": {"Invocation": items},
            "TotalCount": total,
            "PageSize": size,
            "PageNumber": offset / size.max(1) + 1,
            "NextToken": next_token(offset, size, total),
        }))
    }

    pub(crate) async fn ecs_describe_invocation_results(
        &self,
        p: &Params,
    ) -> Result<Value, ServiceError> {
        check_region(&self.world, p)?;
        let base64 = output_base64(p)?;
        let (offset, size) = paging(p)?;
        let record_status = p.opt("InvokeRecordStatus");
        let st = self.targets.state.lock().await;
        let mut invs: Vec<&Invocation> = st
            .invocations
            .values()
            .filter(|i| {
                p.opt("InvokeId").is_none_or(|x| x == i.id)
                    && p.opt("CommandId").is_none_or(|x| x == i.command_id)
            })
            .collect();
        invs.sort_by_key(|i| std::cmp::Reverse(i.seq));
        let rows: Vec<(&Invocation, &InstanceResult)> = invs
            .into_iter()
            .flat_map(|i| i.results.iter().map(move |r| (i, r)))
            .filter(|(_, r)| {
                p.opt("InstanceId").is_none_or(|x| x == r.instance_id)
                    && record_status.is_none_or(|s| s == "Finished" || s == r.status)
            })
            .collect();
        let total = rows.len();
        let items: Vec<Value> = rows
            .iter()
            .skip(offset)
            .take(size)
            .map(|(i, r)| {
                json!({
                    "InvokeId": i.id,
                    "CommandId": i.command_id,
                    "InstanceId": r.instance_id,
                    "InvocationStatus": r.status,
                    "InvokeRecordStatus": "Finished",
                    "ExitCode": r.exit_code,
                    "ErrorCode": r.error_code,
                    "ErrorInfo": r.error_info,
                    "Output": encode_output(&r.output, base64),
                    "Dropped": 0,
                    "Repeats": 1,
                    "StartTime": wire(r.start),
                    "FinishedTime": wire(r.finish),
                    "StopTime": "",
                    "Username": i.username,
                })
            })
            .collect();
        Ok(json!({
            "Invocation": {
                "InvocationResults": {"InvocationResult": items},
                "TotalCount": total,
                "PageSize": size,
                "PageNumber": offset / size.max(1) + 1,
                "NextToken": next_token(offset, size, total),
            }
        }))
    }
}

fn output_base64(p: &Params) -> Result<bool, ServiceError> {
    match p.opt("ContentEncoding") {
        None => Ok(true),
        Some(e) if e.eq_ignore_ascii_case("Base64") => Ok(true),
        Some(e) if e.eq_ignore_ascii_case("PlainText") => Ok(false),
        Some(_) => Err(ServiceError::invalid(
            "ContentEncoding",
            "must be PlainText or Base64",
        )),
    }
}

fn encode_output(output: &str, base64: bool) -> String {
    if base64 {
        B64.encode(output.as_bytes())
    } else {
        output.to_owned()
    }
}

/// `(offset, page size)` from `NextToken`/`MaxResults` (or the deprecated
/// `PageNumber`/`PageSize`).
fn paging(p: &Params) -> Result<(usize, usize), ServiceError> {
    let size = match p.opt("MaxResults") {
        Some(_) => p.int_in("MaxResults", 1, 50, 10)?,
        None => p.int_in("PageSize", 1, 50, 10)?,
    } as usize;
    let offset = match p.opt("NextToken") {
        Some(t) => t
            .strip_prefix("offset-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ServiceError::invalid("NextToken", "is not a token this API returned")
            })?,
        None => (p.int_in("PageNumber", 1, i64::from(u32::MAX), 1)? as usize - 1) * size,
    };
    Ok((offset, size))
}

fn next_token(offset: usize, size: usize, total: usize) -> String {
    if offset + size < total {
        format!("offset-{}", offset + size)
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let mut p = Map::new();
        p.insert("user".into(), Value::String("app".into()));
        p.insert("n".into(), json!(3));
        assert_eq!(
            substitute(
                "echo {{user}} {{ n }} {{ACS::InstanceId}}",
                &p,
                &[("ACS::InstanceId", "i-1")]
            )
            .unwrap(),
            "echo app 3 i-1"
        );
        assert_eq!(
            substitute("echo {{missing}}", &p, &[]).unwrap_err(),
            "missing"
        );
    }
}
