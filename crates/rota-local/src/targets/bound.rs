//! RDS instances bound to a real database server: account changes run as
//! real statements there, so a rotated password can be proved by logging in.
//!
//! - **PostgreSQL** (`tokio-postgres`, no TLS: bind to a loopback or
//!   otherwise trusted server): `CREATE ROLE … WITH LOGIN PASSWORD …`,
//!   `ALTER ROLE … WITH LOGIN PASSWORD …`, `GRANT … ON DATABASE …`. The
//!   password is sent as a SCRAM-SHA-256 verifier computed here, never in
//!   the clear, so it cannot reach the server's statement log.
//! - **MySQL / MariaDB** (`mysql_async`, no TLS): `CREATE USER IF NOT EXISTS
//!   'name'@'%' …`, `ALTER USER 'name'@'%' IDENTIFIED BY PASSWORD '*…'`,
//!   `GRANT … ON db.* …`. The password is sent as its `mysql_native_password`
//!   hash (`*` + hex SHA1(SHA1(password))), never in the clear. This is the
//!   MariaDB (and MySQL 5.7) syntax.
//!
//! Names are quoted as identifiers or literals with their quote characters
//! doubled (and backslashes escaped for MySQL literals); account names are
//! also restricted by RDS's naming rules before they get here. Every
//! operation opens its own connection and gives up after 15 seconds.
//! Errors carry the server's error code and message, never a statement.

use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use rota_kms::SecretString;
use sha1::{Digest as _, Sha1};

use crate::world::RdsEngine;

/// One change on a bound server.
pub(crate) enum BoundOp<'a> {
    /// Create the account if it does not exist; set its password either way.
    Ensure {
        account: &'a str,
        password: &'a SecretString,
        privileged: bool,
    },
    /// Set the password of an existing account.
    SetPassword {
        account: &'a str,
        password: &'a SecretString,
    },
    /// Grant a privilege on a database.
    Grant {
        account: &'a str,
        db: &'a str,
        privilege: &'a str,
    },
}

/// Runs `op` on the server at `url`.
pub(crate) async fn apply(
    engine: RdsEngine,
    url: &SecretString,
    op: BoundOp<'_>,
) -> Result<(), String> {
    let fut = async {
        if engine.is_mysql() {
            mysql(url, op).await
        } else {
            postgres(url, op).await
        }
    };
    tokio::time::timeout(Duration::from_secs(15), fut)
        .await
        .map_err(|_| "the server did not answer within 15 seconds".to_owned())?
}

/// A PostgreSQL identifier, quoted.
pub(crate) fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A PostgreSQL string literal, quoted (standard_conforming_strings on:
/// backslashes are literal; an `E''` literal is never produced).
pub(crate) fn pg_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A MySQL string literal, quoted.
pub(crate) fn my_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// A MySQL identifier, quoted.
pub(crate) fn my_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// The `mysql_native_password` hash: `*` + upper-case hex SHA1(SHA1(pw)).
pub(crate) fn mysql_native_hash(password: &str) -> String {
    let once = Sha1::digest(password.as_bytes());
    let twice = Sha1::digest(once);
    format!(
        "*{}",
        rota_kms::encode::hex_lower(&twice).to_ascii_uppercase()
    )
}

fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => {
            // Connection-level errors; their text holds no statement.
            e.to_string()
        }
    }
}

async fn postgres(url: &SecretString, op: BoundOp<'_>) -> Result<(), String> {
    let (client, conn) = tokio_postgres::connect(url.expose_secret(), tokio_postgres::NoTls)
        .await
        .map_err(pg_error)?;
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "bound postgres connection ended");
        }
    });
    let result = async {
        match op {
            BoundOp::Ensure {
                account,
                password,
                privileged,
            } => {
                let exists = client
                    .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&account])
                    .await
                    .map_err(pg_error)?
                    .is_some();
                let verifier =
                    postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
                let extra = if privileged {
                    " CREATEDB CREATEROLE"
                } else {
                    ""
                };
                let verb = if exists { "ALTER" } else { "CREATE" };
                client
                    .batch_execute(&format!(
                        "{verb} ROLE {} WITH LOGIN{extra} PASSWORD {}",
                        pg_ident(account),
                        pg_literal(&verifier)
                    ))
                    .await
                    .map_err(pg_error)
            }
            BoundOp::SetPassword { account, password } => {
                let verifier =
                    postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
                client
                    .batch_execute(&format!(
                        "ALTER ROLE {} WITH LOGIN PASSWORD {}",
                        pg_ident(account),
                        pg_literal(&verifier)
                    ))
                    .await
                    .map_err(pg_error)
            }
            BoundOp::Grant {
                account,
                db,
                privilege,
            } => {
                let what = if privilege == "ReadOnly" {
                    "CONNECT"
                } else {
                    "ALL PRIVILEGES"
                };
                client
                    .batch_execute(&format!(
                        "GRANT {what} ON DATABASE {} TO {}",
                        pg_ident(db),
                        pg_ident(account)
                    ))
                    .await
                    .map_err(pg_error)
            }
        }
    }
    .await;
    drop(client);
    let _ = task.await;
    result
}

fn my_error(e: mysql_async::Error) -> String {
    match e {
        mysql_async::Error::Server(s) => format!("{} ({} {})", s.message, s.code, s.state),
        other => other.to_string(),
    }
}

async fn mysql(url: &SecretString, op: BoundOp<'_>) -> Result<(), String> {
    let raw = url.expose_secret();
    let url = match raw.strip_prefix("mariadb://") {
        Some(rest) => format!("mysql://{rest}"),
        None => raw.to_owned(),
    };
    let opts =
        mysql_async::Opts::from_url(&url).map_err(|_| "the bind URL is not valid".to_owned())?;
    let mut conn = mysql_async::Conn::new(opts).await.map_err(my_error)?;
    let user = |a: &str| format!("{}@'%'", my_literal(a));
    let result = async {
        match op {
            BoundOp::Ensure {
                account,
                password,
                privileged,
            } => {
                let hash = my_literal(&mysql_native_hash(password.expose_secret()));
                conn.query_drop(format!(
                    "CREATE USER IF NOT EXISTS {} IDENTIFIED BY PASSWORD {hash}",
                    user(account)
                ))
                .await
                .map_err(my_error)?;
                conn.query_drop(format!(
                    "ALTER USER {} IDENTIFIED BY PASSWORD {hash}",
                    user(account)
                ))
                .await
                .map_err(my_error)?;
                if privileged {
                    conn.query_drop(format!(
                        "GRANT ALL PRIVILEGES ON *.* TO {} WITH GRANT OPTION",
                        user(account)
                    ))
                    .await
                    .map_err(my_error)?;
                }
                Ok(())
            }
            BoundOp::SetPassword { account, password } => {
                let hash = my_literal(&mysql_native_hash(password.expose_secret()));
                conn.query_drop(format!(
                    "ALTER USER {} IDENTIFIED BY PASSWORD {hash}",
                    user(account)
                ))
                .await
                .map_err(my_error)
            }
            BoundOp::Grant {
                account,
                db,
                privilege,
            } => {
                let what = match privilege {
                    "ReadOnly" => "SELECT",
                    "DMLOnly" => "SELECT, INSERT, UPDATE, DELETE",
                    "DDLOnly" => "CREATE, DROP, ALTER, INDEX",
                    _ => "ALL PRIVILEGES",
                };
                conn.query_drop(format!(
                    "GRANT {what} ON {}.* TO {}",
                    my_ident(db),
                    user(account)
                ))
                .await
                .map_err(my_error)
            }
        }
    }
    .await;
    let _ = conn.disconnect().await;
    result
}

/// Whether `password` matches a PostgreSQL SCRAM-SHA-256 verifier
/// (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, as
/// `pg_authid.rolpassword` holds it): the check a `scram-sha-256` pg_hba line
/// makes at login (RFC 5802), done client-side. Tests use it to prove which
/// password a role holds on servers that trust loopback logins.
pub fn scram_sha_256_matches(verifier: &str, password: &str) -> bool {
    use base64::Engine as _;
    use hmac::{Hmac, Mac as _};
    use sha2::{Digest as _, Sha256};

    fn mac(key: &[u8], msg: &[u8]) -> Vec<u8> {
        let mut m = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
            .expect("HMAC accepts keys of any length");
        m.update(msg);
        m.finalize().into_bytes().to_vec()
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    /// Iterations, salt, StoredKey, ServerKey.
    type Parts = (u32, Vec<u8>, Vec<u8>, Vec<u8>);
    let parse = || -> Option<Parts> {
        let rest = verifier.strip_prefix("SCRAM-SHA-256$")?;
        let (params, keys) = rest.split_once('$')?;
        let (iter, salt) = params.split_once(':')?;
        let (stored, server) = keys.split_once(':')?;
        Some((
            iter.parse().ok()?,
            b64.decode(salt).ok()?,
            b64.decode(stored).ok()?,
            b64.decode(server).ok()?,
        ))
    };
    let Some((iterations, salt, stored, server)) = parse() else {
        return false;
    };
    // PBKDF2-HMAC-SHA-256 with one output block.
    let mut block = salt;
    block.extend_from_slice(&1u32.to_be_bytes());
    let mut u = mac(password.as_bytes(), &block);
    let mut salted = u.clone();
    for _ in 1..iterations {
        u = mac(password.as_bytes(), &u);
        for (s, x) in salted.iter_mut().zip(&u) {
            *s ^= x;
        }
    }
    Sha256::digest(mac(&salted, b"Client Key")).as_slice() == stored.as_slice()
        && mac(&salted, b"Server Key") == server
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(pg_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(pg_literal("it's"), "'it''s'");
        assert_eq!(my_literal("a\\'b"), "'a\\\\''b'");
        assert_eq!(my_ident("a`b"), "`a``b`");
        // MySQL's documented example: PASSWORD('mypass').
        assert_eq!(
            mysql_native_hash("mypass"),
            "*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4"
        );
    }
}
