//! The tracing subscriber: level from `-q`/`-v` (or `RUST_LOG`), text or
//! JSON lines on standard error, colour unless `--no-color` or `NO_COLOR`.

use tracing_subscriber::EnvFilter;

use crate::cli::{GlobalArgs, LogFormat};

/// Whether colour is allowed on standard error: not with `--no-color` or
/// `NO_COLOR`, and only when it is a terminal.
pub(crate) fn color_enabled(global: &GlobalArgs) -> bool {
    use std::io::IsTerminal as _;
    !global.no_color
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::io::stderr().is_terminal()
}

/// Installs the subscriber once, at start-up.
pub(crate) fn init(global: &GlobalArgs) {
    // More specific targets win, so the embedded cloud and the client stay
    // at warn while rota's own crates report lifecycle transitions at info.
    let default = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn,rota=info,rota_local=warn,rota_kms=warn",
        (false, 1) => "info,rota=debug,rota_local=info,rota_kms=info",
        (false, _) => "debug,rota_kms=trace,rota_local=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match global.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder
            .with_ansi(color_enabled(global))
            .with_target(false)
            .try_init(),
    };
}
