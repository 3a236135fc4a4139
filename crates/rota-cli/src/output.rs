//! The one path everything `rota` prints takes: data on standard output
//! (`outln!`, `out!`, [`emit`]: human text by default, stable JSON with
//! `-o json`) and messages on standard error (`errln!`).
//!
//! Printing never panics (`println!` does when standard output is a closed
//! pipe, as in `rota secret list | head -1`):
//!
//! - **A closed pipe is not an error.** Like ripgrep, Rota then stops
//!   writing to standard output and exits quietly with the status the
//!   command would have had (0 for `rota secret list | head -1`), not with
//!   git's 141 from SIGPIPE. The command is not cut short: a reader that
//!   goes away must not abandon `rota apply` between two KMS calls.
//!   Read-only loops that would only print may stop early ([`stdout_closed`]).
//! - **Any other write error** (a full disk behind `> file`) is kept, the
//!   rest of the output dropped, and [`finish`] reports it once at the end:
//!   `error: cannot write to standard output: …`, exit 1.
//! - **Standard error** is best effort: a message that cannot be written is
//!   dropped.
//!
//! A progress bar on the terminal is hidden while a line is written
//! ([`crate::progress::suspend`]), so lines and bar never overwrite each other.

use std::io::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;

use crate::cli::OutputFormat;

/// Standard output was closed by its reader.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);
/// The first write error on standard output other than a closed pipe.
static STDOUT_ERROR: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Prints to standard output, without a newline; never panics.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format!($($arg)*).as_bytes())
    };
}

/// Prints a line to standard output; never panics.
macro_rules! outln {
    () => {
        $crate::output::write_stdout(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout((format!($($arg)*) + "\n").as_bytes())
    };
}

/// Prints a line to standard error; never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::write_stderr((format!($($arg)*) + "\n").as_bytes())
    };
}

pub(crate) use {errln, out, outln};

/// Whether standard output was closed by its reader: nothing printed from
/// now on is read, so a loop that only prints may stop.
pub(crate) fn stdout_closed() -> bool {
    STDOUT_CLOSED.load(Ordering::Relaxed)
}

/// Writes `bytes` to standard output and flushes; see the module docs for
/// what happens on errors.
pub(crate) fn write_stdout(bytes: &[u8]) {
    if stdout_closed() {
        return;
    }
    let result = crate::progress::suspend(|| {
        let mut out = std::io::stdout().lock();
        out.write_all(bytes).and_then(|()| out.flush())
    });
    if let Err(e) = result {
        note_stdout_error(e);
    }
}

/// Records a failed write: a closed pipe quietly, anything else to be
/// reported by [`finish`]. Either way nothing more is written.
fn note_stdout_error(e: std::io::Error) {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
    if e.kind() != std::io::ErrorKind::BrokenPipe
        && let Ok(mut slot) = STDOUT_ERROR.lock()
        && slot.is_none()
    {
        *slot = Some(e);
    }
}

/// Writes `bytes` to standard error, best effort.
pub(crate) fn write_stderr(bytes: &[u8]) {
    crate::progress::suspend(|| {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes).and_then(|()| err.flush());
    });
}

/// The end of the command: the write error standard output had, if any
/// (a closed pipe is none).
pub(crate) fn finish() -> anyhow::Result<()> {
    match STDOUT_ERROR.lock().ok().and_then(|mut e| e.take()) {
        Some(e) => Err(anyhow::Error::new(e).context("cannot write to standard output")),
        None => Ok(()),
    }
}

/// Prints `value` as pretty JSON, or the human form `text` renders.
pub(crate) fn emit<T: Serialize>(
    format: OutputFormat,
    value: &T,
    text: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    let rendered = match format {
        OutputFormat::Json => json(value)?,
        OutputFormat::Text => {
            let s = text(value);
            if s.is_empty() || s.ends_with('\n') {
                s
            } else {
                s + "\n"
            }
        }
    };
    write_stdout(rendered.as_bytes());
    Ok(())
}

/// Prints `value` as pretty JSON and a newline.
pub(crate) fn emit_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    write_stdout(json(value)?.as_bytes());
    Ok(())
}

fn json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(value)? + "\n")
}

/// An error's message with what to do about it: the message is part of
/// the cause chain (`error: MESSAGE: CAUSE`), the hint a line of its own
/// after it (`hint: HINT`). Attach it with `anyhow::Context::context`.
#[derive(Debug)]
pub(crate) struct Hint {
    message: String,
    hint: String,
}

impl Hint {
    pub(crate) fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

impl std::error::Error for Hint {}

impl Hint {
    /// An error that is only this message and hint.
    pub(crate) fn error(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self::new(message, hint))
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Prints an error the one way `rota` does: `error: ` and the cause chain
/// on one line (anyhow's `{:#}`), then the first hint found in the chain.
pub(crate) fn report(e: &anyhow::Error) {
    errln!("error: {e:#}");
    // anyhow finds a context type through every layer of context.
    if let Some(h) = e.downcast_ref::<Hint>() {
        errln!("hint: {}", h.hint);
    }
}

/// A plain table: a header row and space-aligned columns.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == last {
                    (*c).to_owned()
                } else {
                    format!("{c:<w$}  ", w = widths[i])
                }
            })
            .collect::<String>()
            .trim_end()
            .to_owned()
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_pipe_is_quiet_and_other_errors_are_kept_once() {
        // One test: the state is process-wide.
        note_stdout_error(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(stdout_closed());
        assert!(finish().is_ok(), "a closed pipe is not an error");
        note_stdout_error(std::io::Error::other("disk full"));
        note_stdout_error(std::io::Error::other("second"));
        let e = finish().expect_err("a write error is reported");
        assert_eq!(
            format!("{e:#}"),
            "cannot write to standard output: disk full"
        );
        assert!(finish().is_ok(), "reported once");
        STDOUT_CLOSED.store(false, Ordering::Relaxed);
    }

    #[test]
    fn a_hint_is_found_anywhere_in_the_chain() {
        let e = anyhow::Error::new(std::io::Error::other("HTTP 404"))
            .context(Hint::new(
                "no secret named \"x\"",
                "rota secret list shows them",
            ))
            .context("describe");
        assert_eq!(
            format!("{e:#}"),
            "describe: no secret named \"x\": HTTP 404"
        );
        let h = e.downcast_ref::<Hint>().unwrap();
        assert_eq!(h.hint, "rota secret list shows them");
    }
}
