//! The binary's one clock: every command, the embedded cloud, the client's
//! request timestamps, the scheduler, Rhai's `time::now` and the log lines
//! read it.
//!
//! It is the system clock, unless `ROTA_TEST_NOW` holds an RFC 3339 instant:
//! then it starts at that instant and runs on from it at the real pace. The
//! variable exists for tests (a suite that must pass at 23:59:30 on 31
//! December sets it); `rota` logs a warning whenever it is set, because a
//! daemon on a moved clock rotates at the wrong times and, against the
//! real cloud, signs requests the gateway refuses.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, SecondsFormat, Utc};
use rota_scheduler::{Clock, SystemClock};

/// The variable that starts the clock at a fixed instant.
pub(crate) const TEST_NOW_VAR: &str = "ROTA_TEST_NOW";

static CLOCK: OnceLock<SystemClock> = OnceLock::new();

/// Reads `ROTA_TEST_NOW` (once, at start-up) and fixes the process's clock.
/// `Err` with the message for a value that is not an RFC 3339 instant.
pub(crate) fn init() -> Result<(), String> {
    let clock = match std::env::var(TEST_NOW_VAR) {
        Ok(v) if !v.trim().is_empty() => {
            let start = DateTime::parse_from_rfc3339(v.trim()).map_err(|e| {
                format!(
                    "{TEST_NOW_VAR}={v:?} is not an RFC 3339 instant ({e}); \
                     e.g. {TEST_NOW_VAR}=2026-12-31T23:59:30Z, or unset it"
                )
            })?;
            SystemClock::starting_at(start.with_timezone(&Utc))
        }
        _ => SystemClock::new(),
    };
    let _ = CLOCK.set(clock);
    Ok(())
}

/// Logs the warning `ROTA_TEST_NOW` deserves (after logging is set up).
pub(crate) fn warn_if_moved() {
    if let Some(start) = system().fixed_start() {
        tracing::warn!(
            start = %start.to_rfc3339_opts(SecondsFormat::Secs, true),
            "{TEST_NOW_VAR} is set: the clock starts at this instant instead of the real time (for tests only)"
        );
    }
}

fn system() -> SystemClock {
    CLOCK.get().copied().unwrap_or_default()
}

/// The process's clock.
pub(crate) fn shared() -> Arc<dyn Clock> {
    Arc::new(system())
}

/// Now, on the process's clock.
pub(crate) fn now() -> DateTime<Utc> {
    system().now()
}

/// The signing clock for [`rota_kms::HttpTransport`].
pub(crate) fn signing() -> rota_kms::http::SigningClock {
    Arc::new(now)
}

/// The expiry clock for credential providers.
pub(crate) fn credentials() -> rota_kms::credentials::CredentialsClock {
    Arc::new(|| system().system_time())
}

/// Log line timestamps on the process's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogTime;

impl tracing_subscriber::fmt::time::FormatTime for LogTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{}", now().to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}
