//! `rota agent`: keeps an application's files on the current value of its
//! secrets, reloads the application after a change, and reports which
//! version it uses (adoption).
//!
//! Each `template` block renders one file from one or more secrets (the
//! raw value, one JSON field, a dotenv file, or a minijinja template with
//! undefined names as errors), written atomically (a temporary file in
//! the same directory, fsync, mode and owner, rename, fsync of the
//! directory) and only when its content changed; then the reload action
//! runs (a command, a signal to the process in a pid file, or a POST),
//! retried with backoff. The agent learns of rotations from the daemon's
//! event stream (`agent { events_url }`, reconnecting with
//! `Last-Event-ID`) and polls every `poll` (±10 %) in any case, through
//! the caching client (`rota_kms::cache`), so it works against the real
//! cloud with no daemon at all. With `events_url`, it reports each
//! secret's rendered version and whether the reload worked to the daemon
//! (`POST /adoption`), at each change and every `report_every`.
//!
//! A template that fails (a missing secret or field) leaves the previous
//! file in place and says which template, file and line. A destination
//! that cannot be written is an error at start. No value is ever logged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result};
use rota_engine::config::agent::{AgentConfig, Reload, TemplateConfig};
use rota_kms::cache::{CacheOptions, SecretCache};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

use crate::cli::{AgentArgs, GlobalArgs};
use crate::output::{Hint, errln};

/// Event types that mean a secret's ACSCurrent may have changed.
const CHANGES: &[&str] = &[
    "rotation.rotated",
    "rotation.resumed",
    "secret.created",
    "secret.updated",
    "secret.replaced",
];

/// Why the agent looks again.
#[derive(Debug)]
enum Trigger {
    /// Every template (start, poll).
    All,
    /// The templates using this secret (an event named it).
    Secret(String),
}

/// What a template last produced.
#[derive(Debug, Default)]
struct Rendered {
    hash: Option<[u8; 32]>,
    versions: BTreeMap<String, String>,
    reloaded: bool,
}

/// One template, compiled.
struct Entry {
    cfg: TemplateConfig,
    state: Rendered,
}

pub(crate) async fn run(global: &GlobalArgs, args: AgentArgs) -> Result<ExitCode> {
    let Some(config) = crate::commands::load_config(global, &args.vars)? else {
        return Ok(ExitCode::FAILURE);
    };
    if config.templates.is_empty() {
        return Err(Hint::error(
            "the configuration has no template block: the agent has nothing to render",
            "add one, e.g. template \"db\" { secret = \"app/db\", destination = \"/run/app/db.password\" }",
        ));
    }
    let agent = config.agent.clone().unwrap_or_default();
    let env = compile(&config.templates)?;
    for t in &config.templates {
        check_destination(t)?;
    }
    let backend = crate::backend::resolve(global, &config).await?;
    let cache = SecretCache::with_clock(
        backend.client.clone(),
        CacheOptions {
            ttl: agent.poll,
            jitter: 0.1,
            stale_for: Duration::from_secs(3600),
            min_refresh: Duration::from_secs(5),
        },
        crate::clock::shared(),
    );
    let consumer = agent
        .consumer
        .clone()
        .or_else(crate::commands::host_name)
        .unwrap_or_else(|| "agent".into());
    let mut entries: Vec<Entry> = config
        .templates
        .iter()
        .map(|t| Entry {
            state: Rendered {
                hash: std::fs::read(&t.destination)
                    .ok()
                    .map(|b| Sha256::digest(&b).into()),
                ..Default::default()
            },
            cfg: t.clone(),
        })
        .collect();
    let reporter = Reporter::new(&agent, consumer.clone())?;
    if args.once {
        let mut failed = false;
        for e in &mut entries {
            failed |= !render(&env, &cache, e, &reporter).await;
        }
        return Ok(if failed {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    }
    if !global.quiet {
        errln!(
            "rota agent: {} template{} as consumer {consumer}{}; Ctrl-C or SIGTERM stops",
            entries.len(),
            if entries.len() == 1 { "" } else { "s" },
            agent
                .events_url
                .as_deref()
                .map(|u| format!(", following {u}/events"))
                .unwrap_or_else(|| ", polling (no events_url)".into())
        );
    }
    let (tx, mut rx) = mpsc::channel::<Trigger>(256);
    let _ = tx.send(Trigger::All).await;
    let secrets: Vec<String> = entries
        .iter()
        .flat_map(|e| e.cfg.secrets.values().cloned())
        .collect();
    if let Some(url) = agent.events_url.clone() {
        tokio::spawn(follow(url, secrets, tx.clone()));
    }
    tokio::spawn(poll(agent.poll, tx.clone()));
    let mut stop = crate::signals::StopSignal::new();
    let mut report_tick = tokio::time::interval(agent.report_every);
    report_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.recv() => break,
            _ = report_tick.tick() => {
                for e in &entries {
                    reporter.report(e).await;
                }
            }
            Some(t) = rx.recv() => {
                let wanted = |e: &Entry| match &t {
                    Trigger::All => true,
                    Trigger::Secret(s) => e.cfg.secrets.values().any(|x| x == s),
                };
                match &t {
                    Trigger::All => for name in cache.names() { cache.invalidate(&name).await },
                    Trigger::Secret(s) => cache.invalidate(s).await,
                }
                for e in entries.iter_mut().filter(|e| wanted(e)) {
                    render(&env, &cache, e, &reporter).await;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The templates of `format = "template"`, compiled; a syntax error names
/// the template, where it comes from and its line.
fn compile(templates: &[TemplateConfig]) -> Result<minijinja::Environment<'static>> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    // Nothing is escaped: the output is a file, not HTML.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    for t in templates.iter().filter(|t| t.format == "template") {
        let text = t.template.clone().unwrap_or_default();
        env.add_template_owned(t.name.clone(), text).map_err(|e| {
            Hint::error(
                format!(
                    "template {:?} ({}): {}{}",
                    t.name,
                    t.template_origin,
                    e.kind(),
                    e.line()
                        .map(|l| format!(" at line {l} of the template"))
                        .unwrap_or_default()
                ),
                e.detail().map_or_else(
                    || "see the minijinja syntax: {{ name.field }}".to_owned(),
                    str::to_owned,
                ),
            )
        })?;
    }
    Ok(env)
}

/// The destination's directory must exist and take a new file.
fn check_destination(t: &TemplateConfig) -> Result<()> {
    let dir = t
        .destination
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let probe = dir.join(format!(".rota-agent-probe-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| {
        Hint::error(
            format!(
                "template {:?}: cannot write in {} ({e})",
                t.name,
                dir.display()
            ),
            "create the directory and give the agent's user write access to it",
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Renders `e`; when its content changed, writes it, reloads and reports.
/// Returns whether the file is current and the reload (if any) worked.
async fn render(
    env: &minijinja::Environment<'static>,
    cache: &SecretCache,
    e: &mut Entry,
    reporter: &Reporter,
) -> bool {
    let name = e.cfg.name.clone();
    let mut values: BTreeMap<String, (String, rota_kms::SecretString)> = BTreeMap::new();
    for (key, secret) in &e.cfg.secrets {
        match cache.get(secret).await {
            Ok(c) => {
                values.insert(
                    key.clone(),
                    (c.value.version_id.clone(), c.value.secret_data.clone()),
                );
            }
            Err(err) => {
                let at = e
                    .cfg
                    .location
                    .as_ref()
                    .map(|l| l.place())
                    .unwrap_or_default();
                tracing::error!(template = %name, at = %at, secret.name = %secret, error = %format!("{:#}", anyhow::Error::new(err)), "cannot read the secret; the file is left as it is");
                return false;
            }
        }
    }
    let output = match format(env, &e.cfg, &values) {
        Ok(o) => o,
        Err(why) => {
            let at = e
                .cfg
                .location
                .as_ref()
                .map(|l| l.place())
                .unwrap_or_default();
            tracing::error!(template = %name, at = %at, error = %why, "cannot render; the file is left as it is");
            return false;
        }
    };
    let versions: BTreeMap<String, String> = e
        .cfg
        .secrets
        .iter()
        .filter_map(|(k, s)| values.get(k).map(|(v, _)| (s.clone(), v.clone())))
        .collect();
    let hash: [u8; 32] = Sha256::digest(output.expose_secret().as_bytes()).into();
    if e.state.hash == Some(hash) {
        if e.state.versions != versions {
            // Same content under another version id: nothing to reload.
            e.state.versions = versions;
            e.state.reloaded = true;
            reporter.report(e).await;
        }
        return true;
    }
    if let Err(err) = write_atomically(&e.cfg, output.expose_secret().as_bytes()) {
        tracing::error!(template = %name, file = %e.cfg.destination.display(), error = %err, "cannot write the file");
        return false;
    }
    e.state.hash = Some(hash);
    e.state.versions = versions;
    tracing::info!(template = %name, file = %e.cfg.destination.display(), versions = ?e.state.versions, "rendered");
    e.state.reloaded = reload_with_retries(&e.cfg).await;
    reporter.report(e).await;
    e.state.reloaded
}

/// The file's content (a secret: never logged).
fn format(
    env: &minijinja::Environment<'static>,
    t: &TemplateConfig,
    values: &BTreeMap<String, (String, rota_kms::SecretString)>,
) -> Result<rota_kms::SecretString, String> {
    let one = || {
        values
            .values()
            .next()
            .map(|(_, v)| v.expose_secret().to_owned())
            .unwrap_or_default()
    };
    let secret_of = |key: &str| t.secrets.get(key).cloned().unwrap_or_default();
    let text = match t.format.as_str() {
        "raw" => one(),
        "json_field" => {
            let field = t.field.clone().unwrap_or_default();
            let parsed: Value = serde_json::from_str(&one()).map_err(|_| {
                format!(
                    "secret {} is not a JSON object: json_field needs one",
                    secret_of(values.keys().next().map_or("", String::as_str))
                )
            })?;
            match parsed.get(&field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => {
                    let fields: Vec<String> = parsed
                        .as_object()
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default();
                    return Err(format!(
                        "field {field:?} is not in secret {} (fields: {})",
                        t.secrets.values().next().cloned().unwrap_or_default(),
                        fields.join(", ")
                    ));
                }
                Some(other) => other.to_string(),
            }
        }
        "dotenv" => {
            let mut out = String::new();
            for (key, (_, v)) in values {
                let prefix = env_name(key);
                match serde_json::from_str::<Value>(v.expose_secret()) {
                    Ok(Value::Object(m)) => {
                        for (f, x) in m {
                            let x = match x {
                                Value::String(s) => s,
                                other => other.to_string(),
                            };
                            out.push_str(&format!("{}_{}={}\n", prefix, env_name(&f), quote(&x)));
                        }
                    }
                    _ => out.push_str(&format!("{prefix}={}\n", quote(v.expose_secret()))),
                }
            }
            out
        }
        _ => {
            let mut ctx = BTreeMap::new();
            for (key, (_, v)) in values {
                let value = match serde_json::from_str::<Value>(v.expose_secret()) {
                    Ok(j @ Value::Object(_)) => minijinja::Value::from_serialize(&j),
                    _ => minijinja::Value::from(v.expose_secret()),
                };
                ctx.insert(key.clone(), value);
            }
            let tmpl = env.get_template(&t.name).map_err(|e| e.to_string())?;
            tmpl.render(&ctx).map_err(|e| {
                format!(
                    "{}: {}{} ({}; names: {})",
                    t.template_origin,
                    e.kind(),
                    e.line()
                        .map(|l| format!(" at line {l} of the template"))
                        .unwrap_or_default(),
                    e.detail()
                        .unwrap_or("a secret or field the template uses is missing"),
                    values.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?
        }
    };
    Ok(rota_kms::SecretString::new(text))
}

/// `db-main` → `DB_MAIN`.
fn env_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A dotenv value in double quotes (`\`, `"`, `$` and newlines escaped).
fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '$' => s.push_str("\\$"),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// Writes `bytes` to the template's destination: a temporary file beside
/// it (mode set before the content is written), fsync, owner, rename,
/// fsync of the directory. A reader sees the old file or the new one.
fn write_atomically(t: &TemplateConfig, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let dir = t
        .destination
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = t
        .destination
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rendered".into());
    let tmp: PathBuf = dir.join(format!(".{file_name}.rota-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(t.mode)
            .open(&tmp)?;
        std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(t.mode))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(owner) = &t.owner {
            chown(&tmp, owner)?;
        }
        std::fs::rename(&tmp, &t.destination)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Gives `path` to `owner` (a user name or uid), through chown(1).
fn chown(path: &Path, owner: &str) -> std::io::Result<()> {
    let status = std::process::Command::new("chown")
        .arg(owner)
        .arg(path)
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "chown {owner} failed ({status})"
        )))
    }
}

/// Runs the reload action, retrying 1 s, 2 s, 4 s, 8 s after failures.
async fn reload_with_retries(t: &TemplateConfig) -> bool {
    if t.reload == Reload::None {
        return true;
    }
    let mut wait = Duration::from_secs(1);
    for attempt in 1..=5 {
        match reload(t).await {
            Ok(()) => {
                tracing::info!(template = %t.name, attempt, "reloaded");
                return true;
            }
            Err(why) => {
                tracing::warn!(template = %t.name, attempt, error = %why, "reload failed");
                if attempt < 5 {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }
    tracing::error!(template = %t.name, "reload failed 5 times; reported as not reloaded, tried again at the next change or poll");
    false
}

async fn reload(t: &TemplateConfig) -> Result<(), String> {
    match &t.reload {
        Reload::None => Ok(()),
        Reload::Command(argv) => {
            let (program, rest) = argv.split_first().ok_or("empty command")?;
            let out = tokio::time::timeout(
                Duration::from_secs(60),
                tokio::process::Command::new(program)
                    .args(rest)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .status(),
            )
            .await
            .map_err(|_| format!("{program:?} did not finish within 60 s"))?
            .map_err(|e| format!("cannot run {program:?}: {e}"))?;
            if out.success() {
                Ok(())
            } else {
                Err(format!("{program:?} exited with {out}"))
            }
        }
        Reload::Signal { signal, pid_file } => {
            let pid = std::fs::read_to_string(pid_file)
                .map_err(|e| format!("cannot read {}: {e}", pid_file.display()))?;
            let pid = pid.trim();
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{} holds no pid", pid_file.display()));
            }
            let status = tokio::process::Command::new("kill")
                .args(["-s", signal, pid])
                .status()
                .await
                .map_err(|e| format!("cannot run kill: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("kill -s {signal} {pid} failed ({status})"))
            }
        }
        Reload::Http(url) => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?;
            let origin = rota_rotation::notify::redact_url(url);
            match client.post(url).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("{origin} answered HTTP {}", r.status().as_u16())),
                Err(_) => Err(format!("cannot reach {origin}")),
            }
        }
    }
}

/// Posts adoption reports to the daemon, when `events_url` is set.
struct Reporter {
    url: Option<String>,
    consumer: String,
    client: reqwest::Client,
}

impl Reporter {
    fn new(agent: &AgentConfig, consumer: String) -> Result<Self> {
        Ok(Self {
            url: agent.events_url.as_ref().map(|u| format!("{u}/adoption")),
            consumer,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .no_proxy()
                .build()
                .context("cannot build the HTTP client")?,
        })
    }

    async fn report(&self, e: &Entry) {
        let Some(url) = &self.url else { return };
        for (secret, version) in &e.state.versions {
            let body = serde_json::json!({
                "consumer": self.consumer,
                "secret": secret,
                "version_id": version,
                "reloaded": e.state.reloaded,
            });
            let request = self
                .client
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string());
            match request.send().await {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(
                    status = r.status().as_u16(),
                    "the daemon refused the adoption report"
                ),
                Err(_) => {
                    tracing::warn!(daemon = %rota_rotation::notify::redact_url(url), "cannot report adoption to the daemon")
                }
            }
        }
    }
}

/// Follows the daemon's event stream; sends a trigger for each change to
/// one of `secrets`. Reconnects (1 s doubling to 30 s) where it left off.
async fn follow(base: String, secrets: Vec<String>, tx: mpsc::Sender<Trigger>) {
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(_) => return,
    };
    let mut last_id: Option<String> = None;
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut req = client.get(format!(
            "{base}/events?types={}{}",
            CHANGES.join(","),
            if last_id.is_none() {
                "&after=latest"
            } else {
                ""
            }
        ));
        if let Some(id) = &last_id {
            req = req.header("Last-Event-ID", id);
        }
        match req.send().await {
            Ok(mut resp) if resp.status().is_success() => {
                backoff = Duration::from_secs(1);
                tracing::info!(events = %rota_rotation::notify::redact_url(&base), "following the daemon's events");
                // A reconnection may have missed events: look again.
                if last_id.is_some() && tx.send(Trigger::All).await.is_err() {
                    return;
                }
                let mut buf = String::new();
                let mut id: Option<String> = None;
                let mut subject: Option<String> = None;
                while let Ok(Some(chunk)) = resp.chunk().await {
                    buf.push_str(&String::from_utf8_lossy(&chunk));
                    while let Some(i) = buf.find('\n') {
                        let line: String = buf.drain(..=i).collect();
                        let line = line.trim_end_matches(['\n', '\r']);
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            subject = serde_json::from_str::<Value>(v)
                                .ok()
                                .and_then(|j| j["subject"].as_str().map(str::to_owned));
                        } else if line.is_empty() {
                            if id.is_some() {
                                last_id = id.take();
                            }
                            if let Some(s) = subject.take()
                                && secrets.contains(&s)
                                && tx.send(Trigger::Secret(s)).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                tracing::warn!("the daemon's event stream ended; reconnecting");
            }
            Ok(resp) => {
                tracing::warn!(
                    status = resp.status().as_u16(),
                    "the daemon refused the event stream"
                );
            }
            Err(_) => {
                tracing::warn!(events = %rota_rotation::notify::redact_url(&base), "cannot reach the daemon's events; polling meanwhile");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

/// Sends `Trigger::All` every `every` less up to 10 %.
async fn poll(every: Duration, tx: mpsc::Sender<Trigger>) {
    loop {
        let wait = every.mul_f64(1.0 - 0.1 * rand::random::<f64>());
        tokio::time::sleep(wait).await;
        if tx.send(Trigger::All).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(format: &str) -> TemplateConfig {
        TemplateConfig {
            name: "t".into(),
            secrets: [("db".to_owned(), "app/db".to_owned())].into(),
            format: format.into(),
            field: Some("password".into()),
            template: Some("u={{ db.username }} p={{ db.password }}".into()),
            template_origin: "main.tf:3:14".into(),
            destination: PathBuf::from("/tmp/x"),
            mode: 0o600,
            owner: None,
            reload: Reload::None,
            location: None,
        }
    }

    fn values(v: &str) -> BTreeMap<String, (String, rota_kms::SecretString)> {
        [(
            "db".to_owned(),
            ("v1".to_owned(), rota_kms::SecretString::new(v)),
        )]
        .into()
    }

    #[test]
    fn formats_render_and_missing_fields_name_the_template() {
        let ts = vec![template("template")];
        let env = compile(&ts).unwrap();
        let json = r#"{"username":"app","password":"p\"w$1"}"#;
        let f = |fmt: &str, v: &str| {
            format(&env, &template(fmt), &values(v)).map(|s| s.expose_secret().to_owned())
        };
        assert_eq!(f("raw", "plain").unwrap(), "plain");
        assert_eq!(f("json_field", json).unwrap(), "p\"w$1");
        assert_eq!(
            f("dotenv", json).unwrap(),
            "DB_PASSWORD=\"p\\\"w\\$1\"\nDB_USERNAME=\"app\"\n"
        );
        assert_eq!(f("template", json).unwrap(), "u=app p=p\"w$1");
        let err = f("template", r#"{"username":"app"}"#).unwrap_err();
        assert!(
            err.contains("main.tf:3:14") && err.contains("line 1"),
            "{err}"
        );
        assert!(!err.contains("app\""), "{err}");
        let err = f("json_field", r#"{"user":"x"}"#).unwrap_err();
        assert!(
            err.contains("field \"password\" is not in secret app/db (fields: user)"),
            "{err}"
        );
        let mut bad = template("template");
        bad.template = Some("{{ db.password ".into());
        let err = compile(&[bad]).err().unwrap().to_string();
        assert!(
            err.contains("main.tf:3:14") && err.contains("line 1"),
            "{err}"
        );
    }
}
