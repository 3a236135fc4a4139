//! Progress on long work — `rota apply` / `rota destroy` (resources),
//! `rota rotate` (rotations), `rota secret list` (pages of ListSecrets) —
//! on standard error, never on standard output, and never with a secret
//! value (only counts and the address or name being worked on).
//!
//! [`choose`] picks how, from what it is told ([`Context`]):
//!
//! - `-q`: nothing.
//! - standard error is a terminal (and `TERM` is not `dumb`): an indicatif
//!   bar with the item in hand, drawn once the work has taken 0.4 s (quick
//!   work would only flicker) and cleared when it ends.
//! - otherwise (CI logs, `2> file`): plain lines, one per tenth of the work
//!   (`apply: 4/20 resources (20%)`), and only for long work (at least
//!   [`LINES_FROM`] resources or rotations, 1,000 secrets listed) — quick
//!   work prints none; nothing either with
//!   `--log-format json`, whose standard error is JSON lines.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{GlobalArgs, LogFormat};

/// Work of fewer units than this is quick: no progress lines off a
/// terminal. Units are resources or rotations, each one or more API calls;
/// a listing counts secrets and passes its own threshold.
pub(crate) const LINES_FROM: u64 = 10;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// A bar redrawn in place on the terminal.
    Bar,
    /// A plain line per tenth of the work.
    Lines,
    /// Nothing.
    Hidden,
}

/// What the mode depends on, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Context {
    /// `-q`.
    pub(crate) quiet: bool,
    /// `--log-format json`.
    pub(crate) json_logs: bool,
    /// Standard error is a terminal that can redraw a line.
    pub(crate) terminal: bool,
}

impl Context {
    /// The context of this process.
    pub(crate) fn detect(global: &GlobalArgs) -> Self {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self {
            quiet: global.quiet,
            json_logs: global.log_format == LogFormat::Json,
            terminal: std::io::stderr().is_terminal() && !dumb,
        }
    }
}

/// How to show work of `total` units (`None`: not known yet), where work
/// of fewer than `lines_from` units is too quick for lines.
pub(crate) fn choose(ctx: Context, total: Option<u64>, lines_from: u64) -> Mode {
    if ctx.quiet {
        return Mode::Hidden;
    }
    if ctx.terminal {
        return match total {
            Some(n) if n < 2 => Mode::Hidden,
            _ => Mode::Bar,
        };
    }
    match total {
        Some(n) if n >= lines_from && !ctx.json_logs => Mode::Lines,
        _ => Mode::Hidden,
    }
}

/// The bar on screen, so lines printed meanwhile can hide it ([`suspend`]).
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Runs `f` (which prints) with the bar, if one is drawn, hidden.
pub(crate) fn suspend<R>(f: impl FnOnce() -> R) -> R {
    let bar = ACTIVE.lock().ok().and_then(|a| a.clone());
    match bar {
        Some(bar) => bar.suspend(f),
        None => f(),
    }
}

/// The line for `done` of `total` units, when it crosses into a new tenth
/// of the work after `last` tenths were reported; `None` otherwise.
fn line(verb: &str, unit: &str, done: u64, total: u64, last: u64) -> Option<(String, u64)> {
    if total == 0 {
        return None;
    }
    let tenth = done.min(total) * 10 / total;
    (tenth > last).then(|| {
        let pct = done.min(total) * 100 / total;
        (format!("{verb}: {done}/{total} {unit} ({pct}%)"), tenth)
    })
}

/// One piece of long work being shown.
pub(crate) struct Task {
    ctx: Context,
    verb: &'static str,
    unit: &'static str,
    lines_from: u64,
    state: Mutex<State>,
}

struct State {
    mode: Mode,
    bar: Option<ProgressBar>,
    total: Option<u64>,
    done: u64,
    tenths: u64,
}

impl Task {
    /// Starts showing `verb` (`apply`) over `total` `unit`s (`resources`);
    /// off a terminal, lines only from `lines_from` units on.
    pub(crate) fn start(
        ctx: Context,
        verb: &'static str,
        unit: &'static str,
        total: Option<u64>,
        lines_from: u64,
    ) -> Self {
        let task = Self {
            ctx,
            verb,
            unit,
            lines_from,
            state: Mutex::new(State {
                mode: Mode::Hidden,
                bar: None,
                total,
                done: 0,
                tenths: 0,
            }),
        };
        task.apply_mode();
        task
    }

    /// The total became known (the first page of a listing).
    pub(crate) fn set_total(&self, total: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.total = Some(total);
            if let Some(bar) = &s.bar {
                bar.set_length(total);
                bar.set_style(bar_style(self.unit, true));
            }
        }
        self.apply_mode();
    }

    /// Names the item in hand (an address or a secret name, never a value).
    pub(crate) fn set_item(&self, item: &str) {
        if let Ok(s) = self.state.lock()
            && let Some(bar) = &s.bar
        {
            bar.set_message(item.to_owned());
        }
    }

    /// `n` more units are done.
    pub(crate) fn inc(&self, n: u64) {
        let Ok(mut s) = self.state.lock() else { return };
        s.done += n;
        match s.mode {
            Mode::Bar => {
                if let Some(bar) = &s.bar {
                    bar.set_position(s.done);
                }
            }
            Mode::Lines => {
                if let Some(total) = s.total
                    && let Some((text, tenths)) =
                        line(self.verb, self.unit, s.done, total, s.tenths)
                {
                    s.tenths = tenths;
                    drop(s);
                    crate::output::write_stderr((text + "\n").as_bytes());
                }
            }
            Mode::Hidden => {}
        }
    }

    /// Moves to the mode the current total calls for (a bar, once chosen,
    /// stays).
    fn apply_mode(&self) {
        let Ok(mut s) = self.state.lock() else { return };
        let mode = choose(self.ctx, s.total, self.lines_from);
        if s.mode == Mode::Bar || mode == s.mode {
            return;
        }
        s.mode = mode;
        if mode == Mode::Bar {
            let bar = new_bar(self.verb, self.unit, s.total);
            bar.set_position(s.done);
            if let Ok(mut active) = ACTIVE.lock() {
                *active = Some(bar.clone());
            }
            s.bar = Some(bar);
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Ok(mut s) = self.state.lock()
            && let Some(bar) = s.bar.take()
        {
            if let Ok(mut active) = ACTIVE.lock() {
                *active = None;
            }
            bar.finish_and_clear();
        }
    }
}

/// `apply: [=====>    ] 12/40 resources (3s) alicloud_kms_secret.db`, or
/// a spinner and a count while the total is not known.
fn bar_style(unit: &str, total_known: bool) -> ProgressStyle {
    let template = if total_known {
        format!("{{prefix}}: [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}}) {{wide_msg}}")
    } else {
        format!("{{prefix}}: {{spinner}} {{pos}} {unit} ({{elapsed}}) {{wide_msg}}")
    };
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// Work that ends before this shows no bar: it would only flicker.
const BAR_DELAY: Duration = Duration::from_millis(400);

/// A bar on standard error (indicatif draws nothing there when it is not
/// a terminal), shown after [`BAR_DELAY`]; a spinner while the total is
/// unknown. No colours, so `--no-color` and `NO_COLOR` have nothing to
/// turn off.
fn new_bar(verb: &str, unit: &str, total: Option<u64>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden())
        .with_style(bar_style(unit, total.is_some()))
        .with_prefix(verb.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    let weak = bar.downgrade();
    std::thread::spawn(move || {
        std::thread::sleep(BAR_DELAY);
        if let Some(bar) = weak.upgrade()
            && !bar.is_finished()
        {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    });
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Context = Context {
        quiet: false,
        json_logs: false,
        terminal: false,
    };

    #[test]
    fn quiet_shows_nothing_anywhere() {
        for terminal in [true, false] {
            for total in [None, Some(1), Some(10), Some(100_000)] {
                let ctx = Context {
                    quiet: true,
                    terminal,
                    ..PLAIN
                };
                assert_eq!(
                    choose(ctx, total, LINES_FROM),
                    Mode::Hidden,
                    "{terminal} {total:?}"
                );
            }
        }
    }

    #[test]
    fn a_terminal_gets_a_bar_unless_there_is_one_item() {
        let tty = Context {
            terminal: true,
            ..PLAIN
        };
        assert_eq!(choose(tty, None, LINES_FROM), Mode::Bar);
        assert_eq!(choose(tty, Some(2), LINES_FROM), Mode::Bar);
        assert_eq!(choose(tty, Some(5_000), LINES_FROM), Mode::Bar);
        assert_eq!(choose(tty, Some(1), LINES_FROM), Mode::Hidden);
        assert_eq!(choose(tty, Some(0), LINES_FROM), Mode::Hidden);
        // JSON logs go to files; a terminal still gets the bar.
        let json = Context {
            json_logs: true,
            ..tty
        };
        assert_eq!(choose(json, Some(50), LINES_FROM), Mode::Bar);
    }

    #[test]
    fn off_a_terminal_only_long_work_prints_lines() {
        assert_eq!(choose(PLAIN, None, LINES_FROM), Mode::Hidden);
        assert_eq!(
            choose(PLAIN, Some(LINES_FROM - 1), LINES_FROM),
            Mode::Hidden
        );
        assert_eq!(choose(PLAIN, Some(LINES_FROM), LINES_FROM), Mode::Lines);
        assert_eq!(choose(PLAIN, Some(100_000), LINES_FROM), Mode::Lines);
        let json = Context {
            json_logs: true,
            ..PLAIN
        };
        assert_eq!(choose(json, Some(100_000), LINES_FROM), Mode::Hidden);
    }

    #[test]
    fn lines_are_printed_once_per_tenth() {
        let mut last = 0;
        let mut printed = Vec::new();
        for done in 1..=25 {
            if let Some((text, tenths)) = line("apply", "resources", done, 25, last) {
                last = tenths;
                printed.push(text);
            }
        }
        assert_eq!(printed.len(), 10, "{printed:#?}");
        assert_eq!(printed[0], "apply: 3/25 resources (12%)");
        assert_eq!(printed[9], "apply: 25/25 resources (100%)");
        assert_eq!(line("list", "pages", 0, 0, 0), None);
    }

    #[test]
    fn hidden_tasks_print_nothing_and_a_late_total_can_turn_lines_on() {
        let t = Task::start(PLAIN, "list", "secrets", None, 1000);
        assert_eq!(t.state.lock().unwrap().mode, Mode::Hidden);
        t.set_total(999);
        assert_eq!(t.state.lock().unwrap().mode, Mode::Hidden);
        t.set_total(1000);
        assert_eq!(t.state.lock().unwrap().mode, Mode::Lines);
    }
}
