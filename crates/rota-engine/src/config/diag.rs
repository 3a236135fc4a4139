//! Diagnostics: what is wrong with a configuration, where (file, line,
//! column, resource address), and how to fix it.
//!
//! A [`Diagnostic`] renders like a compiler message, with the offending
//! source line and a caret under the expression:
//!
//! ```text
//! error: secret_name "terraform-example" must start with "acs/ecs/" when secret_type is "ECS"
//!   --> examples/seed/main.tf:16:31
//!    | in alicloud_kms_secret.default
//!    |
//! 16 |   secret_name               = var.name
//!    |                               ^^^^^^^^
//!    = help: …
//! ```
//!
//! Messages never quote a secret value: the source line is omitted when the
//! diagnostic concerns `secret_data`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One configuration file, kept for line/column lookups and source excerpts.
///
/// `Debug` shows the path and size only: the text may hold secret values.
#[derive(Clone)]
pub struct SourceFile {
    /// The path as shown in messages (the configuration path joined with the
    /// file name).
    pub path: PathBuf,
    text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("path", &self.path)
            .field("bytes", &self.text.len())
            .finish()
    }
}

impl SourceFile {
    /// A file and its text.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self {
            path: path.into(),
            text,
            line_starts: starts.into(),
        }
    }

    /// The file's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// One-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count() + 1;
        (line + 1, col)
    }

    /// The text of a one-based line, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map(|e| e.saturating_sub(1))
            .unwrap_or(self.text.len());
        self.text[start..end.max(start)].trim_end_matches('\r')
    }

    /// The source text of a span.
    pub fn slice(&self, span: &Range<usize>) -> &str {
        self.text
            .get(span.start..span.end.min(self.text.len()))
            .unwrap_or("")
    }
}

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as shown in messages.
    pub file: PathBuf,
    /// One-based line.
    pub line: usize,
    /// One-based column.
    pub column: usize,
    /// Characters to underline (on the first line of the span).
    pub width: usize,
    /// The source line, unless withheld (secret values).
    pub source_line: Option<String>,
}

impl Location {
    /// The location of a byte span in `file`.
    pub fn of(file: &SourceFile, span: &Range<usize>, show_source: bool) -> Self {
        let (line, column) = file.line_col(span.start);
        let line_text = file.line_text(line);
        let on_line = file
            .slice(span)
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .count();
        let rest = line_text.chars().count().saturating_sub(column - 1);
        Self {
            file: file.path.clone(),
            line,
            column,
            width: on_line.clamp(1, rest.max(1)),
            source_line: show_source.then(|| line_text.to_owned()),
        }
    }

    /// `file:line:column`, as messages name a place.
    pub fn place(&self) -> String {
        format!("{}:{}:{}", self.file.display(), self.line, self.column)
    }

    /// A location with only a file (and line 1, column 1).
    pub fn file_only(path: &Path) -> Self {
        Self {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            width: 1,
            source_line: None,
        }
    }
}

/// One problem in a configuration, or a plan refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What is wrong (lower-case, no trailing period).
    pub message: String,
    /// Where, when it is known.
    pub location: Option<Location>,
    /// The resource address (`alicloud_kms_secret.default`), when it concerns one.
    pub address: Option<String>,
    /// How to fix it, including the allowed values.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message only.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            location: None,
            address: None,
            help: None,
        }
    }

    /// `WHAT is declared twice (first at FILE:LINE:COL)`, at `here`.
    pub fn declared_twice(what: &str, first: &Location, here: Location) -> Self {
        Self::new(format!(
            "{what} is declared twice (first at {})",
            first.place()
        ))
        .at(here)
    }

    /// Sets the location.
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Sets the location if there is one.
    pub fn at_opt(mut self, location: Option<Location>) -> Self {
        if location.is_some() {
            self.location = location;
        }
        self
    }

    /// Sets the resource address.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the help text.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        let gutter = self
            .location
            .as_ref()
            .map(|l| l.line.to_string().len())
            .unwrap_or(1);
        let pad = " ".repeat(gutter);
        if let Some(loc) = &self.location {
            write!(
                f,
                "\n{pad}--> {}:{}:{}",
                loc.file.display(),
                loc.line,
                loc.column
            )?;
        }
        if let Some(address) = &self.address {
            write!(f, "\n{pad} | in {address}")?;
        }
        if let Some(loc) = &self.location
            && let Some(line) = &loc.source_line
        {
            write!(f, "\n{pad} |\n{} | {line}", loc.line)?;
            write!(
                f,
                "\n{pad} | {}{}",
                " ".repeat(loc.column - 1),
                "^".repeat(loc.width)
            )?;
        }
        if let Some(help) = &self.help {
            let mut lines = help.lines();
            if let Some(first) = lines.next() {
                write!(f, "\n{pad} = help: {first}")?;
            }
            for line in lines {
                write!(f, "\n{pad}         {line}")?;
            }
        }
        Ok(())
    }
}

/// Several diagnostics (at least one), reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// The diagnostics.
    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Self(vec![d])
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column() {
        let f = SourceFile::new("m.tf", "a = 1\n  bé = \"x\"\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(8), (2, 3));
        assert_eq!(f.line_text(2), "  bé = \"x\"");
        let span = 14..17;
        let loc = Location::of(&f, &span, true);
        assert_eq!((loc.line, loc.column, loc.width), (2, 8, 3));
    }
}
