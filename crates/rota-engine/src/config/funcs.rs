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
    "base64decode",
    "base64encode",
    "can",
    "coalesce",
    "concat",
    "contains",
    "distinct",
    "element",
    "file",
    "flatten",
    "format",
    "formatlist",
    "join",
    "jsondecode",
    "jsonencode",
    "keys",
    "length",
    "lookup",
    "lower",
    "merge",
    "nonsensitive",
    "replace",
    "sensitive",
    "sha256",
    "sort",
    "split",
    "templatefile",
    "tolist",
    "tomap",
    "tonumber",
    "toset",
    "tostring",
    "trimspace",
    "try",
    "upper",
    "values",
    "yamldecode",
    "yamlencode",
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
    let one = |t: ParamType| FuncDef::builder().param(t);
    ctx.declare_func(
        "lower",
        one(ParamType::String).build(|a| str_map(a, str::to_lowercase)),
    );
    ctx.declare_func(
        "upper",
        one(ParamType::String).build(|a| str_map(a, str::to_uppercase)),
    );
    ctx.declare_func(
        "trimspace",
        one(ParamType::String).build(|a| str_map(a, |s| s.trim().to_owned())),
    );
    ctx.declare_func(
        "join",
        one(ParamType::String)
            .variadic_param(ParamType::Any)
            .build(join),
    );
    ctx.declare_func(
        "split",
        one(ParamType::String).param(ParamType::String).build(split),
    );
    ctx.declare_func(
        "replace",
        one(ParamType::String)
            .param(ParamType::String)
            .param(ParamType::String)
            .build(replace),
    );
    ctx.declare_func("length", one(ParamType::Any).build(length));
    ctx.declare_func(
        "keys",
        one(ParamType::object_of(ParamType::Any)).build(keys),
    );
    ctx.declare_func(
        "values",
        one(ParamType::object_of(ParamType::Any)).build(values),
    );
    ctx.declare_func(
        "contains",
        one(ParamType::array_of(ParamType::Any))
            .param(ParamType::Any)
            .build(contains),
    );
    ctx.declare_func("sort", one(ParamType::array_of(ParamType::Any)).build(sort));
    ctx.declare_func(
        "distinct",
        one(ParamType::array_of(ParamType::Any)).build(distinct),
    );
    ctx.declare_func(
        "flatten",
        one(ParamType::array_of(ParamType::Any)).build(flatten),
    );
    ctx.declare_func(
        "element",
        one(ParamType::array_of(ParamType::Any))
            .param(ParamType::Number)
            .build(element),
    );
    ctx.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(ParamType::array_of(ParamType::Any))
            .build(concat),
    );
    ctx.declare_func(
        "coalesce",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(coalesce),
    );
    ctx.declare_func("tostring", one(ParamType::Any).build(tostring));
    ctx.declare_func("tonumber", one(ParamType::Any).build(tonumber));
    ctx.declare_func(
        "tolist",
        one(ParamType::array_of(ParamType::Any)).build(identity),
    );
    ctx.declare_func(
        "toset",
        one(ParamType::array_of(ParamType::Any)).build(toset),
    );
    ctx.declare_func(
        "tomap",
        one(ParamType::object_of(ParamType::Any)).build(identity),
    );
    ctx.declare_func("sensitive", one(ParamType::Any).build(identity));
    ctx.declare_func("nonsensitive", one(ParamType::Any).build(identity));
    ctx.declare_func("base64encode", one(ParamType::String).build(base64encode));
    ctx.declare_func("base64decode", one(ParamType::String).build(base64decode));
    ctx.declare_func("sha256", one(ParamType::String).build(sha256));
    ctx.declare_func(
        "formatlist",
        one(ParamType::String)
            .variadic_param(ParamType::Any)
            .build(formatlist),
    );
    ctx.declare_func("yamlencode", one(ParamType::Any).build(yamlencode));
    ctx.declare_func("yamldecode", one(ParamType::String).build(yamldecode));
    // try/can are resolved before evaluation ([`resolve_try`]) where their
    // arguments can fail; what remains here (inside `for` expressions)
    // has arguments that evaluated without error.
    ctx.declare_func(
        "try",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|args: FuncArgs| {
                args.iter()
                    .next()
                    .cloned()
                    .ok_or_else(|| "try needs at least one argument".to_owned())
            }),
    );
    ctx.declare_func(
        "can",
        one(ParamType::Any).build(|_: FuncArgs| Ok(Value::Bool(true))),
    );
    ctx.declare_func(
        "templatefile",
        one(ParamType::String)
            .param(ParamType::object_of(ParamType::Any))
            .build(templatefile),
    );
}

/// `templatefile(path, vars)`: the file (relative to the configuration,
/// bounded like `file()`) rendered as an HCL template with `vars` as its
/// only variables; the template may call the same functions.
fn templatefile(args: FuncArgs) -> Result<Value, String> {
    use hcl::eval::Evaluate as _;
    let text = read_relative(args[0].as_str().unwrap_or_default())?;
    let template: hcl::template::Template = text
        .parse()
        .map_err(|e: hcl::Error| format!("the template does not parse: {e}"))?;
    let mut ctx = Context::new();
    declare(&mut ctx);
    for (k, v) in args[1].as_object().into_iter().flatten() {
        ctx.declare_var(k.as_str(), v.clone());
    }
    template
        .evaluate(&ctx)
        .map(Value::String)
        .map_err(|e| format!("the template cannot be rendered: {e}"))
}

fn str_map(args: FuncArgs, f: impl Fn(&str) -> String) -> Result<Value, String> {
    Ok(Value::String(f(args[0].as_str().unwrap_or_default())))
}

fn identity(args: FuncArgs) -> Result<Value, String> {
    Ok(args[0].clone())
}

/// `join(sep, list…)`: the lists' elements (strings, numbers, bools) joined.
fn join(args: FuncArgs) -> Result<Value, String> {
    let sep = args[0].as_str().unwrap_or_default();
    let mut parts = Vec::new();
    for list in args.iter().skip(1) {
        let items = list
            .as_array()
            .ok_or("join takes a separator, then lists")?;
        for v in items {
            parts.push(display(v)?);
        }
    }
    Ok(Value::String(parts.join(sep)))
}

fn split(args: FuncArgs) -> Result<Value, String> {
    let (sep, s) = (
        args[0].as_str().unwrap_or_default(),
        args[1].as_str().unwrap_or_default(),
    );
    if s.is_empty() {
        return Ok(Value::Array(Vec::new()));
    }
    Ok(Value::Array(
        s.split(sep).map(|p| Value::String(p.to_owned())).collect(),
    ))
}

/// `replace(string, substring, replacement)`; a substring written
/// `/…/` (a regular expression in Terraform) is refused.
fn replace(args: FuncArgs) -> Result<Value, String> {
    let (s, from, to) = (
        args[0].as_str().unwrap_or_default(),
        args[1].as_str().unwrap_or_default(),
        args[2].as_str().unwrap_or_default(),
    );
    if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
        return Err(
            "regular expressions (/…/) are not supported by replace here: give the plain substring"
                .into(),
        );
    }
    if from.is_empty() {
        return Ok(Value::String(s.to_owned()));
    }
    Ok(Value::String(s.replace(from, to)))
}

fn length(args: FuncArgs) -> Result<Value, String> {
    let n = match &args[0] {
        Value::String(s) => s.chars().count(),
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        _ => return Err("length takes a string, a list or a map".into()),
    };
    Ok(Value::from(n as u64))
}

fn keys(args: FuncArgs) -> Result<Value, String> {
    let o = args[0].as_object().ok_or("keys takes a map")?;
    let mut k: Vec<&String> = o.keys().collect();
    k.sort();
    Ok(Value::Array(
        k.into_iter().map(|k| Value::String(k.clone())).collect(),
    ))
}

fn values(args: FuncArgs) -> Result<Value, String> {
    let o = args[0].as_object().ok_or("values takes a map")?;
    let mut k: Vec<(&String, &Value)> = o.iter().collect();
    k.sort_by(|a, b| a.0.cmp(b.0));
    Ok(Value::Array(
        k.into_iter().map(|(_, v)| v.clone()).collect(),
    ))
}

fn contains(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().ok_or("contains takes a list")?;
    Ok(Value::Bool(list.contains(&args[1])))
}

/// Terraform's `sort`: strings in lexical order (numbers and booleans as
/// their text).
fn sort(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().ok_or("sort takes a list of strings")?;
    let mut out = list
        .iter()
        .map(|v| match v {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err("sort takes a list of strings".to_owned()),
        })
        .collect::<Result<Vec<String>, String>>()?;
    out.sort();
    Ok(Value::Array(out.into_iter().map(Value::String).collect()))
}

/// Terraform's `distinct`: the first of each value, in order.
fn distinct(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().ok_or("distinct takes a list")?;
    let mut out: Vec<Value> = Vec::with_capacity(list.len());
    for v in list {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(Value::Array(out))
}

/// Terraform's `flatten`: nested lists made one.
fn flatten(args: FuncArgs) -> Result<Value, String> {
    fn walk(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    walk(&args[0], &mut out);
    Ok(Value::Array(out))
}

/// Terraform's `element`: the item at an index, wrapping around.
fn element(args: FuncArgs) -> Result<Value, String> {
    let list = args[0].as_array().ok_or("element takes a list")?;
    let i = args[1]
        .as_number()
        .and_then(|n| n.as_u64())
        .ok_or("element takes a whole index of 0 or more")?;
    if list.is_empty() {
        return Err("element of an empty list".into());
    }
    Ok(list[(i % list.len() as u64) as usize].clone())
}

fn concat(args: FuncArgs) -> Result<Value, String> {
    let mut out = Vec::new();
    for a in args.iter() {
        out.extend(a.as_array().ok_or("concat takes lists")?.iter().cloned());
    }
    Ok(Value::Array(out))
}

/// The first argument that is not null nor an empty string.
fn coalesce(args: FuncArgs) -> Result<Value, String> {
    args.iter()
        .find(|v| !matches!(v, Value::Null) && v.as_str() != Some(""))
        .cloned()
        .ok_or_else(|| "no non-null, non-empty argument".into())
}

fn tostring(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            Ok(Value::String(display(&args[0])?))
        }
        _ => Err("tostring takes a string, a number or a bool".into()),
    }
}

fn tonumber(args: FuncArgs) -> Result<Value, String> {
    match &args[0] {
        Value::Null => Ok(Value::Null),
        Value::Number(_) => Ok(args[0].clone()),
        Value::String(s) => {
            if let Ok(i) = s.trim().parse::<i64>() {
                Ok(Value::from(i))
            } else {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(hcl::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("{s:?} is not a number"))
            }
        }
        _ => Err("tonumber takes a number or a string".into()),
    }
}

/// A list without duplicates, in first-seen order.
fn toset(args: FuncArgs) -> Result<Value, String> {
    let mut out: Vec<Value> = Vec::new();
    for v in args[0].as_array().unwrap_or(&Vec::new()) {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ok(Value::Array(out))
}

fn base64encode(args: FuncArgs) -> Result<Value, String> {
    use base64::Engine as _;
    Ok(Value::String(
        base64::engine::general_purpose::STANDARD.encode(args[0].as_str().unwrap_or_default()),
    ))
}

fn base64decode(args: FuncArgs) -> Result<Value, String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(args[0].as_str().unwrap_or_default())
        .map_err(|_| "the argument is not valid Base64".to_owned())?;
    String::from_utf8(bytes)
        .map(Value::String)
        .map_err(|_| "the decoded bytes are not UTF-8".into())
}

fn sha256(args: FuncArgs) -> Result<Value, String> {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(args[0].as_str().unwrap_or_default().as_bytes());
    Ok(Value::String(
        d.iter().map(|b| format!("{b:02x}")).collect(),
    ))
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

/// `yamlencode(value)`: YAML 1.2 (block style, as serde_yaml_ng writes it).
fn yamlencode(args: FuncArgs) -> Result<Value, String> {
    serde_yaml_ng::to_string(&to_json(&args[0]))
        .map(Value::String)
        .map_err(|e| format!("yamlencode: {e}"))
}

/// `yamldecode(string)`: one YAML document into values (maps, lists,
/// strings, numbers, bools, null).
fn yamldecode(args: FuncArgs) -> Result<Value, String> {
    let text = args[0].as_str().unwrap_or_default();
    if text.len() > 1024 * 1024 {
        return Err("yamldecode takes at most 1 MiB".into());
    }
    serde_yaml_ng::from_str::<serde_json::Value>(text)
        .map(from_json)
        .map_err(|e| format!("yamldecode: the text is not YAML this function reads: {e}"))
}

/// Rewrites `try(…)` and `can(…)` calls of `expr` whose arguments can be
/// evaluated in `ctx` into their results, so that an argument's error is
/// what they catch (hcl-rs evaluates function arguments before the call).
/// `for` expressions and template directives (`%{…}`) are left as they
/// are: their variables exist only inside them.
pub(crate) fn resolve_try(
    expr: &hcl::Expression,
    ctx: &Context<'_>,
) -> Result<hcl::Expression, hcl::eval::Error> {
    use hcl::Expression as E;
    use hcl::eval::Evaluate as _;
    let r = |e: &hcl::Expression| resolve_try(e, ctx);
    Ok(match expr {
        E::FuncCall(call)
            if call.name.name.as_str() == "try" || call.name.name.as_str() == "can" =>
        {
            let is_try = call.name.name.as_str() == "try";
            if call.args.is_empty() || (!is_try && call.args.len() != 1) {
                return Err(hcl::eval::ErrorKind::Message(format!(
                    "{} takes {}",
                    call.name.name.as_str(),
                    if is_try {
                        "at least one argument"
                    } else {
                        "exactly one argument"
                    }
                ))
                .into());
            }
            let mut last_err = None;
            for arg in &call.args {
                let attempt = r(arg).and_then(|a| guarded(|| a.evaluate(ctx)));
                match attempt {
                    Ok(v) if is_try => return Ok(E::from(v)),
                    Ok(_) => return Ok(E::Bool(true)),
                    Err(e) => last_err = Some(e),
                }
            }
            if !is_try {
                return Ok(E::Bool(false));
            }
            // Every argument failed: the call fails, as Terraform's does.
            let last = last_err.map(|e| e.to_string()).unwrap_or_default();
            return Err(hcl::eval::ErrorKind::Message(format!(
                "no argument of try could be evaluated; the last one: {last}"
            ))
            .into());
        }
        E::FuncCall(call) => {
            let mut b = hcl::expr::FuncCall::builder(call.name.clone());
            for a in &call.args {
                b = b.arg(r(a)?);
            }
            let mut out = b.build();
            out.expand_final = call.expand_final;
            E::from(out)
        }
        E::Array(items) => E::Array(items.iter().map(r).collect::<Result<_, _>>()?),
        E::Object(o) => E::Object(
            o.iter()
                .map(|(k, v)| Ok((k.clone(), r(v)?)))
                .collect::<Result<_, hcl::eval::Error>>()?,
        ),
        E::Parenthesis(inner) => E::Parenthesis(Box::new(r(inner)?)),
        E::Conditional(c) => E::from(hcl::expr::Conditional::new(
            r(&c.cond_expr)?,
            r(&c.true_expr)?,
            r(&c.false_expr)?,
        )),
        E::Operation(op) => match op.as_ref() {
            hcl::expr::Operation::Unary(u) => E::from(hcl::expr::Operation::Unary(
                hcl::expr::UnaryOp::new(u.operator, r(&u.expr)?),
            )),
            hcl::expr::Operation::Binary(b) => E::from(hcl::expr::Operation::Binary(
                hcl::expr::BinaryOp::new(r(&b.lhs_expr)?, b.operator, r(&b.rhs_expr)?),
            )),
        },
        E::TemplateExpr(t) if template_mentions_try(t) => {
            // The template's own interpolations get try/can resolved, then
            // it is evaluated as hcl-rs would (a lone interpolation is its
            // value, unwrapped).
            let mut template = hcl::template::Template::from_expr(t)?;
            for el in template.elements_mut() {
                if let hcl::template::Element::Interpolation(i) = el {
                    i.expr = r(&i.expr)?;
                }
            }
            let value = match template.elements() {
                [hcl::template::Element::Interpolation(i)] => guarded(|| i.expr.evaluate(ctx))?,
                _ => Value::String(guarded(|| template.evaluate(ctx))?),
            };
            E::from(value)
        }
        other => other.clone(),
    })
}

/// Whether an interpolation of the template `t` calls `try` or `can`.
fn template_mentions_try(t: &hcl::expr::TemplateExpr) -> bool {
    hcl::template::Template::from_expr(t).is_ok_and(|template| {
        template.elements().iter().any(|el| match el {
            hcl::template::Element::Interpolation(i) => mentions_try(&i.expr),
            _ => false,
        })
    })
}

/// Evaluates `expr` in `ctx` with `try`/`can` resolved and panics inside
/// the HCL library turned into errors.
pub(crate) fn evaluate(
    expr: &hcl::Expression,
    ctx: &Context<'_>,
) -> Result<Value, hcl::eval::Error> {
    use hcl::eval::Evaluate as _;
    if !mentions_try(expr) {
        return guarded(|| expr.evaluate(ctx));
    }
    let resolved = resolve_try(expr, ctx)?;
    guarded(|| resolved.evaluate(ctx))
}

/// Whether a `try` or `can` call appears in `expr` outside `for`
/// expressions and template directives.
fn mentions_try(expr: &hcl::Expression) -> bool {
    use hcl::Expression as E;
    match expr {
        E::FuncCall(c) => {
            matches!(c.name.name.as_str(), "try" | "can") || c.args.iter().any(mentions_try)
        }
        E::Array(items) => items.iter().any(mentions_try),
        E::Object(o) => o.values().any(mentions_try),
        E::Parenthesis(inner) => mentions_try(inner),
        E::Conditional(c) => {
            mentions_try(&c.cond_expr) || mentions_try(&c.true_expr) || mentions_try(&c.false_expr)
        }
        E::Operation(op) => match op.as_ref() {
            hcl::expr::Operation::Unary(u) => mentions_try(&u.expr),
            hcl::expr::Operation::Binary(b) => {
                mentions_try(&b.lhs_expr) || mentions_try(&b.rhs_expr)
            }
        },
        E::TemplateExpr(t) => template_mentions_try(t),
        _ => false,
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
    read_relative(args[0].as_str().unwrap_or_default()).map(Value::String)
}

/// A file named relative to the configuration, bounded like `file()`.
fn read_relative(name: &str) -> Result<String, String> {
    let rel = Path::new(name);
    let path = if rel.is_absolute() {
        rel.to_path_buf()
    } else {
        match BASE_DIR.with(|b| b.borrow().clone()) {
            Some(dir) => dir.join(rel),
            None => rel.to_path_buf(),
        }
    };
    crate::files::read_text(&path, crate::files::FILE_LIMIT)
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
    format_values(args[0].as_str().unwrap_or_default(), args.iter().skip(1)).map(Value::String)
}

/// `formatlist(spec, args…)`: `format` over lists element by element (every
/// list argument the same length; a scalar argument is used for each).
fn formatlist(args: FuncArgs) -> Result<Value, String> {
    let spec = args[0].as_str().unwrap_or_default();
    let rest: Vec<&Value> = args.iter().skip(1).collect();
    let mut len: Option<usize> = None;
    for a in &rest {
        if let Value::Array(items) = a {
            match len {
                Some(n) if n != items.len() => {
                    return Err(format!(
                        "formatlist: the list arguments have different lengths ({n} and {})",
                        items.len()
                    ));
                }
                _ => len = Some(items.len()),
            }
        }
    }
    let Some(len) = len else {
        return Err("formatlist needs at least one list argument (use format otherwise)".into());
    };
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let row = rest.iter().map(|a| match a {
            Value::Array(items) => &items[i],
            scalar => *scalar,
        });
        out.push(Value::String(format_values(spec, row)?));
    }
    Ok(Value::Array(out))
}

fn format_values<'a>(
    spec: &str,
    mut rest: impl Iterator<Item = &'a Value>,
) -> Result<String, String> {
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
    Ok(out)
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

    fn eval_lazy(expr: &str) -> Result<Value, String> {
        let mut ctx = Context::new();
        declare(&mut ctx);
        ctx.declare_var("m", hcl::value!({ a = "x" }));
        let e: hcl::Expression = expr.parse().map_err(|e: hcl::Error| e.to_string())?;
        evaluate(&e, &ctx).map_err(|e| e.to_string())
    }

    #[test]
    fn try_can_formatlist_and_yaml() {
        let s = |e: &str| eval_lazy(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        // try: the first argument that evaluates; can: whether it does.
        assert_eq!(s(r#"try(m.b, m.a, "z")"#), s(r#""x""#));
        assert_eq!(s(r#"try(m.b, "z")"#), s(r#""z""#));
        assert_eq!(s(r#"try(tonumber("x"), 0)"#), s("0"));
        assert_eq!(s("can(m.a)"), s("true"));
        assert_eq!(s("can(m.b)"), s("false"));
        assert_eq!(s(r#"upper(try(m.b, "d"))"#), s(r#""D""#));
        assert_eq!(s(r#"[for k in ["a"] : try(k, "d")]"#), s(r#"["a"]"#));
        assert_eq!(s(r#"can(m.b) ? 1 : 2"#), s("2"));
        assert_eq!(s(r#""db/${try(m.b, "main")}""#), s(r#""db/main""#));
        assert_eq!(s(r#""${try(m.b, 7)}""#), s("7"));
        let err = eval_lazy("try(m.b, m.c)").unwrap_err();
        assert!(
            err.contains("no argument of try could be evaluated"),
            "{err}"
        );
        assert!(eval_lazy("can(m.a, m.b)").is_err());
        // formatlist: lists element by element, scalars repeated.
        assert_eq!(
            s(r#"formatlist("%s=%s", ["a", "b"], "v")"#),
            s(r#"["a=v", "b=v"]"#)
        );
        assert_eq!(
            s(r#"formatlist("%s-%d", ["a", "b"], [1, 2])"#),
            s(r#"["a-1", "b-2"]"#)
        );
        assert!(eval_lazy(r#"formatlist("%s%s", ["a"], ["b", "c"])"#).is_err());
        assert!(eval_lazy(r#"formatlist("%s", "a")"#).is_err());
        // YAML both ways.
        assert_eq!(
            s(r#"yamldecode("user: app\nports: [1, 2]\nok: true\n")"#),
            s(r#"{ user = "app", ports = [1, 2], ok = true }"#)
        );
        assert_eq!(s(r#"yamlencode({ a = "b" })"#), s(r#""a: b\n""#));
        assert_eq!(
            s(r#"yamldecode(yamlencode({ a = [1, "x"], b = null }))"#),
            s(r#"{ a = [1, "x"], b = null }"#)
        );
        assert!(eval_lazy(r#"yamldecode("a: [")"#).is_err());
    }

    #[test]
    fn terraform_standard_library_functions() {
        let s = |e: &str| eval(e).unwrap_or_else(|err| panic!("{e}: {err}"));
        let text = |e: &str| s(e).as_str().unwrap_or_default().to_owned();
        assert_eq!(text(r#"join("-", ["a", "b"], ["c"])"#), "a-b-c");
        assert_eq!(s(r#"split(",", "a,b")"#), s(r#"["a", "b"]"#));
        assert_eq!(s(r#"split(",", "")"#), s("[]"));
        assert_eq!(text(r#"lower("AbC")"#), "abc");
        assert_eq!(text(r#"upper("AbC")"#), "ABC");
        assert_eq!(text(r#"trimspace("  x \n")"#), "x");
        assert_eq!(text(r#"replace("a-b-c", "-", "_")"#), "a_b_c");
        assert!(
            eval(r#"replace("abc", "/b/", "x")"#)
                .unwrap_err()
                .contains("regular expressions")
        );
        assert_eq!(s(r#"length("héllo")"#), s("5"));
        assert_eq!(s(r#"length({a = 1, b = 2})"#), s("2"));
        assert_eq!(s(r#"keys({b = 1, a = 2})"#), s(r#"["a", "b"]"#));
        assert_eq!(s(r#"values({b = 1, a = 2})"#), s("[2, 1]"));
        assert_eq!(s(r#"contains(["a", "b"], "b")"#), s("true"));
        assert_eq!(s(r#"concat(["a"], ["b", "c"])"#), s(r#"["a", "b", "c"]"#));
        assert_eq!(text(r#"coalesce("", null, "x", "y")"#), "x");
        assert_eq!(text("tostring(5)"), "5");
        assert_eq!(s(r#"tonumber("42")"#), s("42"));
        assert!(eval(r#"tonumber("x")"#).is_err());
        assert_eq!(s(r#"toset(["a", "b", "a"])"#), s(r#"["a", "b"]"#));
        assert_eq!(text(r#"base64encode("hi")"#), "aGk=");
        assert_eq!(text(r#"base64decode("aGk=")"#), "hi");
        assert_eq!(
            text(r#"sha256("abc")"#),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(text(r#"nonsensitive(sensitive("x"))"#), "x");
    }

    #[test]
    fn templatefile_renders_with_its_own_variables() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("t.tmpl"),
            "user=${user}\n%{ for h in hosts }host=${upper(h)}\n%{ endfor }",
        )
        .unwrap();
        let v = with_base_dir(dir.path(), || {
            eval(r#"templatefile("t.tmpl", { user = "app", hosts = ["a", "b"] })"#)
        })
        .unwrap();
        assert_eq!(v.as_str().unwrap(), "user=app\nhost=A\nhost=B\n");
        let err = with_base_dir(dir.path(), || eval(r#"templatefile("t.tmpl", {})"#)).unwrap_err();
        assert!(err.contains("cannot be rendered"), "{err}");
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
        assert_eq!(
            eval(r#"sort(["b", "a", 10, "c"])"#).unwrap(),
            eval(r#"["10", "a", "b", "c"]"#).unwrap()
        );
        assert_eq!(
            eval(r#"distinct(["a", "b", "a", "c", "b"])"#).unwrap(),
            eval(r#"["a", "b", "c"]"#).unwrap()
        );
        assert_eq!(
            eval(r#"flatten([["a", ["b"]], [], "c"])"#).unwrap(),
            eval(r#"["a", "b", "c"]"#).unwrap()
        );
        assert_eq!(eval(r#"element(["a", "b"], 3)"#).unwrap(), Value::from("b"));
        assert!(eval(r#"element([], 0)"#).is_err());
        assert!(eval(r#"sort([["x"]])"#).is_err());
    }

    #[test]
    fn file_reads_relative_to_the_base_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.json"), "{\"a\":1}").unwrap();
        let v = with_base_dir(dir.path(), || eval(r#"jsondecode(file("p.json")).a"#)).unwrap();
        assert_eq!(v, Value::from(1));
    }
}
