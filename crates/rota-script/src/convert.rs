//! Conversions between script values and JSON. A [`Secret`] becomes its
//! value only where the caller asks for exposure (a request to a backend);
//! everywhere else (reports, logs) it becomes `"***"`.

use rhai::{Array, Dynamic, Map};
use serde_json::Value;

use crate::secret::Secret;

/// JSON → script value.
pub(crate) fn to_dynamic(v: &Value) -> Dynamic {
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from_int(i),
            None => Dynamic::from_float(n.as_f64().unwrap_or(0.0)),
        },
        Value::String(s) => Dynamic::from(s.clone()),
        Value::Array(a) => Dynamic::from_array(a.iter().map(to_dynamic).collect::<Array>()),
        Value::Object(o) => Dynamic::from_map(
            o.iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic(v)))
                .collect::<Map>(),
        ),
    }
}

/// JSON → script value whose strings are all secrets (decoding a secret).
pub(crate) fn to_dynamic_secret(v: &Value) -> Dynamic {
    match v {
        Value::String(s) => Secret::dynamic(rota_kms::SecretString::new(s.clone())),
        Value::Array(a) => Dynamic::from_array(a.iter().map(to_dynamic_secret).collect::<Array>()),
        Value::Object(o) => Dynamic::from_map(
            o.iter()
                .map(|(k, v)| (k.as_str().into(), to_dynamic_secret(v)))
                .collect::<Map>(),
        ),
        other => to_dynamic(other),
    }
}

/// Script value → JSON. `expose` decides whether secrets become their value
/// (requests to backends) or `"***"` (reports). Returns whether a secret
/// was met.
pub(crate) fn to_json(d: &Dynamic, expose: bool, met_secret: &mut bool) -> Value {
    if d.is_unit() {
        Value::Null
    } else if let Some(b) = d.clone().try_cast::<bool>() {
        Value::Bool(b)
    } else if let Some(i) = d.clone().try_cast::<i64>() {
        Value::from(i)
    } else if let Some(f) = d.clone().try_cast::<f64>() {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    } else if d.is_string() {
        Value::String(d.clone().into_string().unwrap_or_default())
    } else if let Some(c) = d.clone().try_cast::<char>() {
        Value::String(c.to_string())
    } else if let Some(s) = d.clone().try_cast::<Secret>() {
        *met_secret = true;
        Value::String(if expose {
            s.expose().expose_secret().to_owned()
        } else {
            "***".to_owned()
        })
    } else if d.is_array() {
        let a = d
            .read_lock::<Array>()
            .map(|a| a.clone())
            .unwrap_or_default();
        Value::Array(a.iter().map(|v| to_json(v, expose, met_secret)).collect())
    } else if d.is_map() {
        let m = d.read_lock::<Map>().map(|m| m.clone()).unwrap_or_default();
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_string(), to_json(v, expose, met_secret)))
                .collect(),
        )
    } else {
        Value::String(d.type_name().to_owned())
    }
}

/// Script value → JSON for reports: secrets shown as `***`.
pub(crate) fn to_json_redacted(d: &Dynamic) -> Value {
    to_json(d, false, &mut false)
}

/// A script value as a request parameter string (secrets exposed: this is
/// the wire to a backend).
pub(crate) fn to_param(d: &Dynamic) -> String {
    if d.is_string() {
        return d.clone().into_string().unwrap_or_default();
    }
    if let Some(s) = d.clone().try_cast::<Secret>() {
        return s.expose().expose_secret().to_owned();
    }
    match to_json(d, true, &mut false) {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `v` with every string passed through `f` (redaction).
pub(crate) fn scrub(v: Value, f: &dyn Fn(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(|v| scrub(v, f)).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (k, scrub(v, f))).collect()),
        other => other,
    }
}
