//! The tracing subscriber: level from `-q`/`-v` (or `RUST_LOG`), text or
//! JSON lines on standard error (through [`crate::output`], so a progress
//! bar is hidden while a line is written), colour as [`colour`] decides.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// Whether to colour standard error, in the order the conventions give:
/// never with `--no-color` or a non-empty `NO_COLOR`
/// (<https://no-color.org>); always with a `CLICOLOR_FORCE` other than
/// `0`; never with `CLICOLOR=0`; else only on a terminal whose `TERM` is
/// not `dumb`. clap follows the same rules for help and usage errors.
pub(crate) fn colour(
    no_color_flag: bool,
    env: &dyn Fn(&str) -> Option<String>,
    terminal: bool,
) -> bool {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    if no_color_flag || set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") && env("CLICOLOR_FORCE").as_deref() != Some("0") {
        return true;
    }
    if env("CLICOLOR").as_deref() == Some("0") {
        return false;
    }
    terminal && env("TERM").as_deref() != Some("dumb")
}

/// [`colour`] for this process's standard error.
pub(crate) fn color_enabled(global: &GlobalArgs) -> bool {
    use std::io::IsTerminal as _;
    colour(
        global.no_color,
        &|name| std::env::var(name).ok(),
        std::io::stderr().is_terminal(),
    )
}

/// Standard error for tracing: each event is one `write` of a whole line.
struct Stderr;

impl std::io::Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        crate::output::write_stderr(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the subscriber once, at start-up. A `service` (the daemon,
/// `rota local serve`) logs lifecycle transitions at `info`; one-shot
/// commands print their results and log only warnings unless `-v`.
pub(crate) fn init(global: &GlobalArgs, service: bool) {
    // More specific targets win, so the embedded cloud and the client stay
    // at warn while rota's own crates report lifecycle transitions at info.
    let default = match (global.quiet, global.verbose, service) {
        (true, _, _) => "error",
        (false, 0, true) => "warn,rota=info,rota_rotation=info,rota_local=warn,rota_kms=warn",
        (false, 0, false) => "warn",
        (false, 1, _) => "info,rota=debug,rota_rotation=debug,rota_local=info,rota_kms=info",
        (false, _, _) => "debug,rota_kms=trace,rota_local=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_timer(crate::clock::LogTime)
        .with_writer(|| Stderr);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(color_enabled(global))
            .with_target(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::colour;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn colour_follows_the_flag_no_color_clicolor_and_the_terminal() {
        assert!(colour(false, &env(&[]), true));
        assert!(!colour(false, &env(&[]), false));
        assert!(!colour(true, &env(&[]), true), "--no-color");
        assert!(!colour(false, &env(&[("NO_COLOR", "1")]), true));
        assert!(
            colour(false, &env(&[("NO_COLOR", "")]), true),
            "empty NO_COLOR is unset"
        );
        assert!(colour(false, &env(&[("CLICOLOR_FORCE", "1")]), false));
        assert!(!colour(false, &env(&[("CLICOLOR_FORCE", "0")]), false));
        assert!(
            !colour(
                false,
                &env(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]),
                true
            ),
            "NO_COLOR wins over CLICOLOR_FORCE"
        );
        assert!(
            !colour(true, &env(&[("CLICOLOR_FORCE", "1")]), true),
            "the flag wins"
        );
        assert!(!colour(false, &env(&[("CLICOLOR", "0")]), true));
        assert!(!colour(false, &env(&[("TERM", "dumb")]), true));
    }
}
