//! Printing data: human text by default, stable JSON with `-o json`.

use std::io::Write as _;

use serde::Serialize;

use crate::cli::OutputFormat;

/// Prints `value` as pretty JSON, or the human form `text` renders. A closed
/// standard output (`rota … | head`) is not an error.
pub(crate) fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let rendered = match format {
        OutputFormat::Json => serde_json::to_string_pretty(value)? + "\n",
        OutputFormat::Text => {
            let s = text(value);
            if s.is_empty() || s.ends_with('\n') {
                s
            } else {
                s + "\n"
            }
        }
    };
    let mut out = std::io::stdout().lock();
    match out
        .write_all(rendered.as_bytes())
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
