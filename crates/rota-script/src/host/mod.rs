//! The host modules scripts call, registered by [`register`] — the one
//! function production and tests share:
//!
//! | module | functions |
//! |---|---|
//! | `kms::` | `describe`, `get` (current, by stage), `get_version`, `versions`, `list`, `put`, `move_stage` — on the configured backend |
//! | `cloud::` | `call(product, action, params)`, `call(product, version, action, params)` — signed OpenAPI, same credentials |
//! | `ecs::` | `run_command(instance, script[, opts])`, `invoke_command(instance, command_id, params[, opts])`, `wait(invoke_id[, timeout_s])` — Cloud Assistant |
//! | `rds::` | `reset_password`, `describe_accounts` |
//! | `ram::` | `create_access_key`, `delete_access_key`, `list_access_keys`, `update_access_key` |
//! | `password::` | `generate([policy])`, `check(value[, policy])`, `crypt(value)`, `verify(value, hash)` |
//! | `ssh::` | `keypair("ed25519" \| "rsa")` |
//! | `json::`, `base64::` | `encode`, `decode` (secrets in, secrets out) |
//! | `time::` | `now`, `now_rfc3339`, `parse`, `format`, `sleep_ms` |
//! | `log::` | `debug`, `info`, `warn`, `error` |
//! | `http::` | `get`, `post`, `post_json` — only with a grant, only to granted hosts |
//!
//! Host functions run inside the call's environment ([`crate::env`]):
//! asynchronous work runs on the captured tokio handle, bounded by the
//! step's deadline. Their errors are scrubbed of the call's secret values.

mod cloud;
mod http;
mod kms;
mod util;

use std::future::Future;

use rhai::{Dynamic, Engine, EvalAltResult, Map, Module, Position};
use rota_kms::{KmsClient, OpenApi};

use crate::env;

pub(crate) use http::client as http_client;

/// What host functions return.
pub(crate) type HostResult<T> = Result<T, Box<EvalAltResult>>;

/// Registers every host module into `engine`.
pub(crate) fn register(engine: &mut Engine) {
    for (name, module) in [
        ("kms", kms::module()),
        ("cloud", cloud::cloud_module()),
        ("ecs", cloud::ecs_module()),
        ("rds", cloud::rds_module()),
        ("ram", cloud::ram_module()),
        ("password", util::password_module()),
        ("ssh", util::ssh_module()),
        ("json", util::json_module()),
        ("base64", util::base64_module()),
        ("time", util::time_module()),
        ("log", util::log_module()),
        ("http", http::module()),
    ] {
        engine.register_static_module(name, module.into());
    }
}

/// A host failure, as the script sees it (`what: why`), scrubbed.
pub(crate) fn fail(what: &str, why: impl std::fmt::Display) -> Box<EvalAltResult> {
    EvalAltResult::ErrorRuntime(
        Dynamic::from(env::redact(&format!("{what}: {why}"))),
        Position::NONE,
    )
    .into()
}

/// The backend clients of the current call.
pub(crate) fn backend(what: &str) -> HostResult<(KmsClient, OpenApi)> {
    env::with(|e| e.kms.clone().zip(e.api.clone()))
        .flatten()
        .ok_or_else(|| fail(what, "no cloud backend is configured for this script"))
}

/// Runs `fut` on the call's runtime, bounded by its deadline and stopped
/// when the call is cancelled (the step's future was dropped: a scheduler
/// timeout, a shutdown). A hook that waits (`time::sleep_ms`, `ecs::wait`,
/// `http::`, KMS calls) therefore ends at its step's deadline like one that
/// computes.
pub(crate) fn block_on<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> HostResult<T> {
    env::needs_thread()?;
    let (handle, deadline, cancel) =
        env::with(|e| e.handle.clone().map(|h| (h, e.deadline, e.cancel.clone())))
            .flatten()
            .ok_or_else(|| fail(what, "no async runtime for this script"))?;
    let deadline = tokio::time::Instant::from_std(deadline);
    let outcome = handle.block_on(async {
        tokio::select! {
            r = tokio::time::timeout_at(deadline, fut) => Some(r),
            () = cancelled(&cancel) => None,
        }
    });
    match outcome {
        Some(Ok(Ok(v))) => Ok(v),
        Some(Ok(Err(e))) => Err(fail(what, e)),
        Some(Err(_)) => Err(fail(what, "the step's deadline passed while waiting")),
        None => Err(fail(what, "the step was cancelled while waiting")),
    }
}

/// Resolves once `flag` is set (checked every 20 ms: the flag is set from
/// another thread, which has nothing to wake a waiter with).
async fn cancelled(flag: &env::CancelFlag) {
    while !flag.is_cancelled() {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A map built from `(key, value)` pairs.
pub(crate) fn map<const N: usize>(entries: [(&str, Dynamic); N]) -> Dynamic {
    Dynamic::from_map(
        entries
            .into_iter()
            .map(|(k, v)| (k.into(), v))
            .collect::<Map>(),
    )
}

/// A string or `()` as a script value.
pub(crate) fn opt_str(v: Option<String>) -> Dynamic {
    v.map_or(Dynamic::UNIT, Dynamic::from)
}

/// An optional string argument: `()` and `""` are none.
pub(crate) fn arg_opt(d: &Dynamic) -> Option<String> {
    if d.is_unit() {
        None
    } else {
        Some(crate::convert::to_param(d)).filter(|s| !s.is_empty())
    }
}

/// Reads `key` from an options map as a string.
pub(crate) fn opt_get(opts: &Map, key: &str) -> Option<String> {
    opts.get(key).and_then(arg_opt)
}

fn new_module() -> Module {
    Module::new()
}
