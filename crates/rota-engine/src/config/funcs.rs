//! The functions a configuration may call: the ones ops use in
//! `alicloud_kms_secret` files (`jsonencode`, `jsondecode`, `file`, `format`,
//! `lookup`, `merge`), with Terraform's semantics.
//!
//! hcl-rs takes plain `fn` pointers, so `file` finds the configuration
//! directory through a thread-local set for the duration of one evaluation
//! ([`with_base_dir`]); evaluation is synchronous, so the value never leaks
//! into another evaluation. Error messages never quote argument values.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use hcl::Value;
use hcl::eval::{Context, FuncArgs, FuncDef, ParamType};

/// The names of the functions, for "unknown function" messages.
pub const FUNCTIONS: &[&str] = &[
    "file",
    "format",
    "jsondecode",
    "jsonencode",
    "lookup",
    "merge",
];

thread_local! {
    static BASE_DIR: RefCell<Option<PathBuf>> = const { RefCell::new(None) };
}

thread_local! {
    static GUARDED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether this thread is evaluating an expression under [`guarded`]: a
/// panic there (inside the HCL library: `1 % 0`) is turned into an error,
/// and the binary's panic hook stays quiet.
pub fn expecting_panic() -> bool {
    GUARDED.with(std::cell::Cell::get)
}

/// Runs an evaluation, turning a panic inside it into an evaluation error.
pub(crate) fn guarded<T>(
    f: impl FnOnce() -> Result<T, hcl::eval::Error>,
) -> Result<T, hcl::eval::Error> {
    let was = GUARDED.with(|g| g.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "it failed".into());
        Err(
            hcl::eval::ErrorKind::Message(format!("the expression cannot be evaluated: {why}"))
                .into(),
        )
    })
}

/// Runs `f` with `file()` resolving relative paths against `dir`.
pub(crate) fn with_base_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<PathBuf>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let old = self.0.take();
            BASE_DIR.with(|b| *b.borrow_mut() = old);
        }
    }
    let old = BASE_DIR.with(|b| b.borrow_mut().replace(dir.to_path_buf()));
    let _reset = Reset(old);
    f()
}

/// Declares every function in `ctx`.
pub(crate) fn declare(ctx: &mut Context<'_>) {
    ctx.declare_func(
        "jsonencode",
        FuncDef::builder().param(ParamType::Any).build(jsonencode),
    );
    ctx.declare_func(
        "jsondecode",
        FuncDef::builder()
            .param(ParamType::String)
            .build(jsondecode),
    );
    ctx.declare_func(
        "file",
        FuncDef::builder().param(ParamType::String).build(file),
    );
    ctx.declare_func(
        "format",
        FuncDef::builder()
            .param(ParamType::String)
            .variadic_param(ParamType::Any)
            .build(format),
    );
    ctx.declare_func(
        "lookup",
        FuncDef::builder()
            .param(ParamType::object_of(ParamType::Any))
            .param(ParamType::String)
            .variadic_param(ParamType::Any)
            .build(lookup),
    );
    ctx.declare_func(
        "merge",
        FuncDef::builder()
            .variadic_param(ParamType::nullable(ParamType::object_of(ParamType::Any)))
            .build(merge),
    );
}

/// hcl value → JSON value (object keys sorted, as Terraform encodes them).
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                serde_json::Value::from(i)
            } else if let Some(u) = n.as_u64() {
                serde_json::Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number)
                    .unwrap_or(serde_json::Value::Null)
            }
        }
        Value::String(s) => serde_json::Value::String(s.clone()),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(to_json).collect()),
        Value::Object(o) => serde_json::Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), to_json(v)))
                .collect::<serde_json::Map<_, _>>(),
        ),
    }
}

/// JSON value → hcl value.
pub(crate) fn from_json(value: serde_json::Value) -> Value {
    match value {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(0.0))
            }
        }
        serde_json::Value::String(s) => Value::String(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(from_json).collect()),
        serde_json::Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, from_json(v))).collect())
        }
    }
}

fn jsonencode(args: FuncArgs) -> Result<Value, String> {
    serde_json::to_string(&to_json(&args[0]))
        .map(Value::String)
        .map_err(|e| format!("cannot encode the value as JSON: {e}"))
}

fn jsondecode(args: FuncArgs) -> Result<Value, String> {
    let text = args[0].as_str().unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(text)
        .map(from_json)
        .map_err(|e| format!("the argument is not valid JSON ({e})"))
}

fn file(args: FuncArgs) -> Result<Value, String> {
    let rel = Path::new(args[0].as_str().unwrap_or_default());
    let path = if rel.is_absolute() {
        rel.to_path_buf()
    } else {
        match BASE_DIR.with(|b| b.borrow().clone()) {
            Some(dir) => dir.join(rel),
            None => rel.to_path_buf(),
        }
    };
    crate::files::read_text(&path, crate::files::FILE_LIMIT)
        .map(Value::String)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// A value as `%s` / `%v` show it.
fn display(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok("null".into()),
        other => serde_json::to_string(&to_json(other)).map_err(|e| e.to_string()),
    }
}

fn format(args: FuncArgs) -> Result<Value, String> {
    let spec = args[0].as_str().unwrap_or_default().to_owned();
    let mut rest = args.iter().skip(1);
    let mut out = String::with_capacity(spec.len());
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        // Optional precision for %f: "%.2f".
        let mut precision = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = digits.parse::<usize>().ok();
        }
        let verb = chars.next().ok_or("the format string ends with a lone %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = rest
            .next()
            .ok_or_else(|| format!("not enough arguments for the %{verb} verb"))?;
        match verb {
            's' | 'v' => out.push_str(&display(arg)?),
            'q' => out.push_str(&serde_json::to_string(&display(arg)?).map_err(|e| e.to_string())?),
            'd' => match arg {
                Value::Number(n) if n.as_i64().is_some() => {
                    out.push_str(&n.as_i64().unwrap_or_default().to_string());
                }
                Value::String(s) if s.parse::<i64>().is_ok() => out.push_str(s.trim()),
                _ => return Err("%d needs a whole number".into()),
            },
            'f' => {
                let f = match arg {
                    Value::Number(n) => n.as_f64().unwrap_or_default(),
                    Value::String(s) => s
                        .parse::<f64>()
                        .map_err(|_| "%f needs a number".to_owned())?,
                    _ => return Err("%f needs a number".into()),
                };
                let precision = precision.unwrap_or(6);
                if precision > 100 {
                    return Err(format!("%.{precision}f: the precision is at most 100"));
                }
                out.push_str(&format!("{f:.*}", precision));
            }
            't' => match arg {
                Value::Bool(b) => out.push_str(&b.to_string()),
                _ => return Err("%t needs a bool".into()),
            },
            other => {
                return Err(format!(
                    "unsupported verb %{other} (supported: %s %v %q %d %f %t %%)"
                ));
            }
        }
    }
    if rest.next().is_some() {
        return Err("too many arguments for the format string".into());
    }
    Ok(Value::String(out))
}

fn lookup(args: FuncArgs) -> Result<Value, String> {
    let map = args[0]
        .as_object()
        .ok_or("the first argument must be a map")?;
    let key = args[1].as_str().unwrap_or_default();
    match map.get(key) {
        Some(v) => Ok(v.clone()),
        None => match args.get(2) {
            Some(default) => Ok(default.clone()),
            None => Err(format!(
                "the map has no key {key:?} and no default was given"
            )),
        },
    }
}

fn merge(args: FuncArgs) -> Result<Value, String> {
    let mut out = hcl::Map::new();
    for arg in args.iter() {
        if let Some(o) = arg.as_object() {
            for (k, v) in o {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate as _;

    fn eval(expr: &str) -> Result<Value, String> {
        let mut ctx = Context::new();
        declare(&mut ctx);
        let e: hcl::Expression = expr.parse().map_err(|e: hcl::Error| e.to_string())?;
        e.evaluate(&ctx).map_err(|e| e.to_string())
    }

    #[test]
    fn functions() {
        assert_eq!(
            eval(r#"jsonencode({b = 1, a = ["x", true]})"#).unwrap(),
            Value::from(r#"{"a":["x",true],"b":1}"#)
        );
        assert_eq!(
            eval(r#"jsondecode("{\"k\":\"v\"}").k"#).unwrap(),
            Value::from("v")
        );
        assert_eq!(
            eval(r#"format("%s-%d-%q-%%-%.1f", "a", 2, "b", 1.25)"#).unwrap(),
            Value::from("a-2-\"b\"-%-1.2")
        );
        assert_eq!(
            eval(r#"lookup({a = "1"}, "b", "d")"#).unwrap(),
            Value::from("d")
        );
        assert_eq!(
            eval(r#"merge({a = 1, b = 2}, {b = 3})"#).unwrap(),
            eval("{a = 1, b = 3}").unwrap()
        );
        assert!(eval(r#"lookup({a = "1"}, "b")"#).is_err());
        assert!(eval(r#"format("%s %s", "a")"#).is_err());
    }

    #[test]
    fn file_reads_relative_to_the_base_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.json"), "{\"a\":1}").unwrap();
        let v = with_base_dir(dir.path(), || eval(r#"jsondecode(file("p.json")).a"#)).unwrap();
        assert_eq!(v, Value::from(1));
    }
}
