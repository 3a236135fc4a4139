//! `password::`, `ssh::`, `json::`, `base64::`, `time::` and `log::`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use rhai::{Dynamic, Map, Module};
use rota_kms::SecretString;
use rota_kms::password::PasswordPolicy;

use super::{HostResult, block_on, fail, map, new_module};
use crate::convert::{to_dynamic, to_dynamic_secret, to_json, to_json_redacted};
use crate::engine::capture;
use crate::env;
use crate::secret::Secret;

fn policy(what: &str, m: Map) -> HostResult<PasswordPolicy> {
    let json = to_json(&Dynamic::from_map(m), false, &mut false);
    let p: PasswordPolicy =
        serde_json::from_value(json).map_err(|e| fail(what, format!("bad policy: {e}")))?;
    p.validate().map_err(|e| fail(what, e))?;
    Ok(p)
}

pub(super) fn password_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("generate", || {
        let v = PasswordPolicy::default()
            .generate()
            .map_err(|e| fail("password::generate", e))?;
        Ok(Secret::new(v))
    });
    m.set_native_fn("generate", |p: Map| {
        let v = policy("password::generate", p)?
            .generate()
            .map_err(|e| fail("password::generate", e))?;
        Ok(Secret::new(v))
    });
    m.set_native_fn("check", |value: Dynamic, p: Map| {
        let v = super::kms::secret_value("password::check", &value)?;
        Ok(policy("password::check", p)?.check(&v).is_ok())
    });
    // A crypt hash is not the value: it may go into a command's text.
    m.set_native_fn("crypt", |value: Dynamic| {
        let v = super::kms::secret_value("password::crypt", &value)?;
        Ok(rota_kms::password::crypt_sha512(v.expose_secret()))
    });
    m.set_native_fn("verify", |value: Dynamic, hash: &str| {
        let v = super::kms::secret_value("password::verify", &value)?;
        Ok(rota_kms::password::crypt_verify(v.expose_secret(), hash))
    });
    m
}

fn keypair(kind: &str, comment: &str) -> HostResult<Dynamic> {
    use ssh_key::rand_core::OsRng;
    use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};
    let what = "ssh::keypair";
    // Key generation (RSA above all) takes long: not on an async worker.
    env::needs_thread()?;
    let mut key = match kind {
        "ed25519" => {
            PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(|e| fail(what, e))?
        }
        "rsa" => {
            let pair = ssh_key::private::RsaKeypair::random(&mut OsRng, 3072)
                .map_err(|e| fail(what, e))?;
            PrivateKey::new(pair.into(), comment).map_err(|e| fail(what, e))?
        }
        other => {
            return Err(fail(
                what,
                format!("unknown key type {other:?}; use \"ed25519\" or \"rsa\""),
            ));
        }
    };
    key.set_comment(comment);
    let private = key.to_openssh(LineEnding::LF).map_err(|e| fail(what, e))?;
    let public = key.public_key().to_openssh().map_err(|e| fail(what, e))?;
    let fingerprint = key.public_key().fingerprint(HashAlg::Sha256).to_string();
    Ok(map([
        ("type", Dynamic::from(kind.to_owned())),
        (
            "private_key",
            Secret::dynamic(SecretString::new(private.as_str())),
        ),
        ("public_key", Dynamic::from(public)),
        ("fingerprint", Dynamic::from(fingerprint)),
    ]))
}

pub(super) fn ssh_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("keypair", |kind: &str| keypair(kind, "rota"));
    m.set_native_fn("keypair", |kind: &str, comment: &str| {
        keypair(kind, comment)
    });
    m
}

pub(super) fn json_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("encode", |v: Dynamic| -> HostResult<Dynamic> {
        let mut secret = false;
        let text = to_json(&v, true, &mut secret).to_string();
        Ok(if secret {
            Secret::dynamic(SecretString::new(text))
        } else {
            Dynamic::from(text)
        })
    });
    m.set_native_fn("decode", |v: Dynamic| -> HostResult<Dynamic> {
        env::needs_thread_for(text_len(&v))?;
        if let Some(s) = v.clone().try_cast::<Secret>() {
            let parsed: serde_json::Value = serde_json::from_str(s.expose().expose_secret())
                .map_err(|_| fail("json::decode", "the secret is not valid JSON"))?;
            return Ok(to_dynamic_secret(&parsed));
        }
        let text = v
            .into_string()
            .map_err(|t| fail("json::decode", format!("expected a string, not {t}")))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| fail("json::decode", e))?;
        Ok(to_dynamic(&parsed))
    });
    m
}

pub(super) fn base64_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("encode", |v: Dynamic| -> HostResult<Dynamic> {
        env::needs_thread_for(text_len(&v))?;
        if let Some(s) = v.clone().try_cast::<Secret>() {
            return Ok(Secret::dynamic(SecretString::new(
                B64.encode(s.expose().expose_secret()),
            )));
        }
        let text = v
            .into_string()
            .map_err(|t| fail("base64::encode", format!("expected a string, not {t}")))?;
        Ok(Dynamic::from(B64.encode(text)))
    });
    m.set_native_fn("decode", |v: Dynamic| -> HostResult<Dynamic> {
        env::needs_thread_for(text_len(&v))?;
        let (text, secret) = match v.clone().try_cast::<Secret>() {
            Some(s) => (s.expose().expose_secret().to_owned(), true),
            None => (
                v.into_string()
                    .map_err(|t| fail("base64::decode", format!("expected a string, not {t}")))?,
                false,
            ),
        };
        let bytes = B64
            .decode(text.trim())
            .map_err(|_| fail("base64::decode", "not valid Base64"))?;
        let s = String::from_utf8(bytes).map_err(|_| fail("base64::decode", "not UTF-8 text"))?;
        Ok(if secret {
            Secret::dynamic(SecretString::new(s))
        } else {
            Dynamic::from(s)
        })
    });
    m
}

/// Parses RFC 3339 and the `YYYY-MM-DD HH:MM:SS` (UTC) form into Unix seconds.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s.trim()) {
        return Some(t.timestamp());
    }
    ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .map(|n| Utc.from_utc_datetime(&n).timestamp())
}

/// The call's clock reading (the runtime's clock; the system clock outside
/// a call).
fn now() -> DateTime<Utc> {
    env::with(|e| e.clock.now())
        .unwrap_or_else(|| rota_clock::Clock::now(&rota_clock::SystemClock::new()))
}

pub(super) fn time_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("now", || Ok(now().timestamp()));
    m.set_native_fn("now_rfc3339", || {
        Ok(now().format("%Y-%m-%dT%H:%M:%SZ").to_string())
    });
    m.set_native_fn("parse", |s: &str| {
        parse_time(s).ok_or_else(|| fail("time::parse", format!("not a time: {s:?}")))
    });
    m.set_native_fn("format", |secs: i64| {
        Utc.timestamp_opt(secs, 0)
            .single()
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .ok_or_else(|| fail("time::format", "out of range"))
    });
    m.set_native_fn("sleep_ms", |ms: i64| {
        let d = std::time::Duration::from_millis(ms.clamp(0, 600_000) as u64);
        block_on("time::sleep_ms", async {
            tokio::time::sleep(d).await;
            Ok::<_, String>(())
        })
    });
    m
}

/// The length of a string or secret argument (0 for other values).
fn text_len(v: &Dynamic) -> usize {
    if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
        return s.len();
    }
    v.read_lock::<Secret>().map_or(0, |s| s.expose().len())
}

fn text_of(v: &Dynamic) -> String {
    if v.is_string() {
        v.clone().into_string().unwrap_or_default()
    } else {
        to_json_redacted(v).to_string()
    }
}

fn log(level: &'static str, v: &Dynamic) {
    let text = env::redact(&text_of(v));
    let (script, hook) = env::with(|e| (e.script.to_string(), e.hook.clone())).unwrap_or_default();
    capture(level, &text);
    env::emit(move || match level {
        "debug" => tracing::debug!(script.path = %script, script.hook = %hook, "{text}"),
        "warn" => tracing::warn!(script.path = %script, script.hook = %hook, "{text}"),
        "error" => tracing::error!(script.path = %script, script.hook = %hook, "{text}"),
        _ => tracing::info!(script.path = %script, script.hook = %hook, "{text}"),
    });
}

pub(super) fn log_module() -> Module {
    let mut m = new_module();
    m.set_native_fn("debug", |v: Dynamic| {
        log("debug", &v);
        Ok(())
    });
    m.set_native_fn("info", |v: Dynamic| {
        log("info", &v);
        Ok(())
    });
    m.set_native_fn("warn", |v: Dynamic| {
        log("warn", &v);
        Ok(())
    });
    m.set_native_fn("error", |v: Dynamic| {
        log("error", &v);
        Ok(())
    });
    m
}
