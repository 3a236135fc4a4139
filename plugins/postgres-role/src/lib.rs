//! `postgres-role`: a Rota native plugin that rotates a PostgreSQL role's
//! password for a Generic secret holding
//! `{"host", "port", "dbname", "username", "password"}`.
//!
//! Two modes (setting `mode`):
//!
//! - `single` (default): the role named by `username` gets the new password.
//!   `set` logs in as the role — with the pending password if that already
//!   works (a re-run after a crash), else with the current one — and changes
//!   its own password. Between `set` and `finish` clients holding the old
//!   value fail to log in: the usual single-user trade-off.
//! - `alternating`: the secret alternates between two roles, `username` and
//!   `username` + `clone_suffix` (default `_clone`). `generate` names the
//!   role that is *not* current; `set` changes that role's password, so the
//!   current role keeps working during the handover. It logs in as the
//!   target role with the pending password, else with ACSPrevious's (which
//!   names the same role), else as the current role (which then needs
//!   `CREATEROLE`) and creates the clone on the first rotation
//!   (`CREATE ROLE … LOGIN IN ROLE <username>`, so it has the same
//!   privileges) or sets its password.
//!
//! `set` always issues the `ALTER ROLE`, even when the pending password
//! already logs in: the statement is idempotent, and on a server that does
//! not check passwords (`trust` in pg_hba.conf) a successful login proves
//! nothing, so skipping the change on that evidence would leave the old
//! password in place. The password is sent as a SCRAM-SHA-256 verifier
//! computed here, never in clear, so it cannot appear in server logs.
//! Identifiers and literals are quoted with the PostgreSQL client's escape
//! functions.
//!
//! `test` logs in as the pending role with the pending password and checks
//! `current_user`. It proves the password only where the server checks
//! passwords (md5/scram-sha-256 in pg_hba.conf).
//!
//! TLS is not built in (loopback and private-network targets); the crate's
//! dependency tree has no OpenSSL.

#![deny(unsafe_code)]

use std::time::Duration;

use postgres::{Client, Config, NoTls};
use postgres_protocol::escape::{escape_identifier, escape_literal};
use rand::Rng as _;
use rota_plugin_abi::{
    Descriptor, Host, Level, NativePlugin, Secret, Setting, StepError, StepInput, Steps,
};
use serde_json::{Value, json};

/// The plugin.
#[derive(Debug, Default)]
pub struct PostgresRole;

/// The secret's value, parsed.
struct Login {
    host: String,
    port: u16,
    dbname: String,
    username: String,
    password: Secret,
    /// The whole object, to keep fields this plugin does not know.
    raw: serde_json::Map<String, Value>,
}

impl Login {
    fn parse(what: &str, value: &Secret) -> Result<Self, StepError> {
        let bad = |why: &str| StepError::Permanent(format!("the {what} value {why}"));
        let raw: serde_json::Map<String, Value> = serde_json::from_str(value.expose())
            .map_err(|_| bad("is not a JSON object with host, port, dbname, username, password"))?;
        let text = |k: &str| {
            raw.get(k)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| bad(&format!("has no string field {k:?}")))
        };
        let port = match raw.get("port") {
            None => 5432,
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| bad("has an invalid port"))?,
            Some(Value::String(s)) => s.parse().map_err(|_| bad("has an invalid port"))?,
            Some(_) => return Err(bad("has an invalid port")),
        };
        Ok(Self {
            host: text("host")?,
            port,
            dbname: raw
                .get("dbname")
                .and_then(Value::as_str)
                .unwrap_or("postgres")
                .to_owned(),
            username: text("username")?,
            password: Secret::new(text("password")?),
            raw,
        })
    }

    /// Logs in as this role.
    fn connect(&self, host: &Host<'_>, timeout: Duration) -> Result<Client, postgres::Error> {
        let timeout = host
            .remaining()
            .min(timeout)
            .max(Duration::from_millis(100));
        Config::new()
            .host(&self.host)
            .port(self.port)
            .dbname(&self.dbname)
            .user(&self.username)
            .password(self.password.expose())
            .connect_timeout(timeout)
            .application_name("rota postgres-role")
            .connect(NoTls)
    }
}

struct Settings {
    alternating: bool,
    clone_suffix: String,
    timeout: Duration,
}

impl Settings {
    fn of(input: &StepInput) -> Self {
        Self {
            alternating: input.setting_str("mode") == Some("alternating"),
            clone_suffix: input
                .setting_str("clone_suffix")
                .unwrap_or("_clone")
                .to_owned(),
            timeout: Duration::from_secs(
                input
                    .settings
                    .get("connect_timeout_secs")
                    .and_then(Value::as_u64)
                    .unwrap_or(10),
            ),
        }
    }

    /// The other role of the pair.
    fn partner(&self, username: &str) -> String {
        match username.strip_suffix(&self.clone_suffix) {
            Some(base) if !base.is_empty() => base.to_owned(),
            _ => format!("{username}{}", self.clone_suffix),
        }
    }
}

/// A database error as a step error (the messages hold no secret: the
/// password is never in a statement's text, only its verifier).
fn db(what: &str, e: &postgres::Error) -> StepError {
    let detail = e
        .as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned());
    StepError::Failed(format!("{what}: {detail}"))
}

/// `ALTER ROLE <role> WITH PASSWORD '<scram verifier>'`.
fn set_password(client: &mut Client, role: &str, password: &Secret) -> Result<(), StepError> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
    let sql = format!(
        "ALTER ROLE {} WITH PASSWORD {}",
        escape_identifier(role),
        escape_literal(&verifier)
    );
    client
        .batch_execute(&sql)
        .map_err(|e| db(&format!("changing the password of role {role:?}"), &e))
}

fn random_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

impl NativePlugin for PostgresRole {
    fn describe() -> Descriptor {
        Descriptor {
            name: "postgres-role".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "rotates a PostgreSQL role's password (single user or alternating users)"
                .into(),
            secret_types: vec!["Generic".into()],
            settings: vec![
                Setting::optional(
                    "mode",
                    "string",
                    json!("single"),
                    "single: one role changes its password; alternating: two roles take turns",
                )
                .one_of(&["single", "alternating"]),
                Setting::optional(
                    "clone_suffix",
                    "string",
                    json!("_clone"),
                    "alternating: the second role's name is username + this suffix",
                ),
                Setting::optional(
                    "connect_timeout_secs",
                    "integer",
                    json!(10),
                    "connection timeout (never past the step's deadline)",
                ),
            ],
            steps: Steps {
                generate: true,
                finish: false,
                rollback: false,
            },
            capabilities: Vec::new(),
        }
    }

    fn generate(&self, input: &StepInput, _host: &Host<'_>) -> Result<Option<Secret>, StepError> {
        let current = input
            .current
            .as_ref()
            .ok_or_else(|| StepError::Permanent("no current value to rotate".into()))?;
        let login = Login::parse("current", current)?;
        let settings = Settings::of(input);
        let mut next = login.raw.clone();
        if settings.alternating {
            next.insert(
                "username".into(),
                Value::String(settings.partner(&login.username)),
            );
        }
        next.insert("password".into(), Value::String(random_password()));
        Ok(Some(Secret::new(Value::Object(next).to_string())))
    }

    fn set(&self, input: &StepInput, host: &Host<'_>) -> Result<(), StepError> {
        let settings = Settings::of(input);
        let pending = Login::parse("pending", input.pending()?)?;
        let current = match &input.current {
            Some(c) => Some(Login::parse("current", c)?),
            None => None,
        };
        let role = pending.username.clone();
        if !settings.alternating && current.as_ref().is_some_and(|c| c.username != role) {
            return Err(StepError::Permanent(
                "single-user mode cannot change the username; use mode = \"alternating\"".into(),
            ));
        }

        // Probe: does the pending password already log in as the role?
        if let Ok(mut client) = pending.connect(host, settings.timeout) {
            host.log(
                Level::Debug,
                &format!("logged in as {role:?} with the pending value"),
            );
            return set_password(&mut client, &role, &pending.password);
        }
        // The role's own old password: ACSCurrent (single) or ACSPrevious
        // (alternating: it names the same role).
        let own_old = if settings.alternating {
            match &input.previous {
                Some(p) => Login::parse("previous", p).ok(),
                None => None,
            }
        } else {
            current
        }
        .filter(|l| l.username == role);
        if let Some(old) = own_old {
            let mut client = old
                .connect(host, settings.timeout)
                .map_err(|e| db(&format!("logging in as {role:?}"), &e))?;
            return set_password(&mut client, &role, &pending.password);
        }
        if !settings.alternating {
            return Err(StepError::Permanent(
                "no current value to log in with".into(),
            ));
        }
        // Alternating, first handover (or the partner's password is lost):
        // the current role creates the partner or resets its password.
        let admin = match &input.current {
            Some(c) => Login::parse("current", c)?,
            None => {
                return Err(StepError::Permanent(
                    "no current value to log in with".into(),
                ));
            }
        };
        let mut client = admin
            .connect(host, settings.timeout)
            .map_err(|e| db(&format!("logging in as {:?}", admin.username), &e))?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .map_err(|e| db("looking the role up", &e))?
            .is_some();
        if exists {
            return set_password(&mut client, &role, &pending.password);
        }
        host.log(
            Level::Info,
            &format!(
                "creating role {role:?} as the partner of {:?}",
                admin.username
            ),
        );
        let verifier =
            postgres_protocol::password::scram_sha_256(pending.password.expose().as_bytes());
        let sql = format!(
            "CREATE ROLE {} WITH LOGIN PASSWORD {} IN ROLE {}",
            escape_identifier(&role),
            escape_literal(&verifier),
            escape_identifier(&admin.username)
        );
        client
            .batch_execute(&sql)
            .map_err(|e| db(&format!("creating role {role:?}"), &e))
    }

    fn test(&self, input: &StepInput, host: &Host<'_>) -> Result<(), StepError> {
        let settings = Settings::of(input);
        let pending = Login::parse("pending", input.pending()?)?;
        let mut client = pending
            .connect(host, settings.timeout)
            .map_err(|e| db(&format!("logging in as {:?}", pending.username), &e))?;
        let row = client
            .query_one("SELECT current_user::text", &[])
            .map_err(|e| db("checking the session", &e))?;
        let who: String = row.get(0);
        if who != pending.username {
            return Err(StepError::Failed(format!(
                "logged in as {who:?}, expected {:?}",
                pending.username
            )));
        }
        Ok(())
    }
}

rota_plugin_abi::export_plugin!(PostgresRole);
