//! The one duration grammar of Rota: every option (`--grace 1d`,
//! `--all-due-within 90m`) and attribute (`window = "2h"`,
//! `timeout = "15m"`, `retry_backoff = "30s"`) and interval schedule
//! (`schedule = "7d"`) reads durations with [`parse_duration`].
//!
//! The grammar is humantime's: a sequence of `<number><unit>` with units
//! `ns us ms s m h d w` (and their long spellings: `sec`, `min`, `hours`,
//! `days`, `weeks`, …), optionally separated by spaces: `30s`, `1h30m`,
//! `7d`, `2 weeks`. A bare number is refused (seconds or minutes?).

use std::time::Duration;

/// A duration that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a duration ({reason}); write e.g. 30s, 15m, 1h30m or 7d")]
pub struct DurationError {
    /// What was given.
    pub text: String,
    /// Why it does not parse.
    pub reason: String,
}

/// Parses `text` (see the module docs).
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    let err = |reason: String| DurationError {
        text: text.to_owned(),
        reason,
    };
    if trimmed.is_empty() {
        return Err(err("it is empty".into()));
    }
    if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("a number needs a unit".into()));
    }
    humantime::parse_duration(trimmed).map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_rota_documents() {
        let s = Duration::from_secs;
        for (text, want) in [
            ("30s", s(30)),
            ("15m", s(900)),
            ("1h30m", s(5400)),
            ("1h 30m", s(5400)),
            ("7d", s(604_800)),
            ("1d", s(86_400)),
            ("604800s", s(604_800)),
            ("2 weeks", s(1_209_600)),
            (" 90min ", s(5400)),
            ("500ms", Duration::from_millis(500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn bad_durations_say_why() {
        for text in ["", "10", "1y2", "soon", "-5m", "1x"] {
            let e = parse_duration(text).unwrap_err();
            assert!(e.to_string().contains("is not a duration"), "{text}: {e}");
        }
        assert!(
            parse_duration("10")
                .unwrap_err()
                .to_string()
                .contains("needs a unit")
        );
    }
}
