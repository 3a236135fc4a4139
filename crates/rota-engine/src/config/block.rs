//! Decoding one configuration block (`rotation`, `workflow`, `plugins`):
//! the checks and diagnostics those blocks share.
//!
//! A [`BlockDecoder`] checks a block's labels, reports unknown attributes
//! and blocks (with a "did you mean"), evaluates attributes (reporting what
//! cannot be evaluated), and type-checks the values: strings, bools,
//! durations, lists of strings, maps, time zones and schedules. Every
//! problem becomes a [`Diagnostic`] at the offending span, with the block's
//! address when it has one.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use hcl::Value;
use hcl::edit::Span as _;
use hcl::edit::structure::{Attribute, Block};
use hcl::eval::Context;
use rota_scheduler::Schedule;

use super::diag::{Diagnostic, Location, SourceFile};
use super::{eval_message, expr_span, funcs, suggest};
use crate::resource::parse_duration;

/// How a block words a value of the wrong type in [`BlockDecoder::string`],
/// [`BlockDecoder::bool`] and [`BlockDecoder::strings`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TypeWording {
    /// "`key` must be a string", the help as given (rotation, plugins).
    MustBe,
    /// "`key` has the wrong type", the help saying what is expected
    /// (workflow).
    HasTheWrongType,
}

/// An evaluated attribute: its name, value and where the value is written.
pub(super) struct Attr {
    /// The attribute's name.
    pub(super) key: String,
    /// The evaluated value.
    pub(super) value: Value,
    /// The span of the value's expression.
    pub(super) span: Range<usize>,
}

/// Decodes one block of a configuration file, pushing every problem to the
/// loader's diagnostics.
pub(super) struct BlockDecoder<'a> {
    file: &'a SourceFile,
    block: &'a Block,
    ctx: &'a Context<'a>,
    root: &'a Path,
    /// The span of the block's type name (`rotation`), where block-level
    /// problems are shown.
    head: Range<usize>,
    /// The block as messages name it: `rotation "db"`, `the plugins block`.
    what: String,
    /// The address diagnostics carry (`rotation.db`), if the block has one.
    address: Option<String>,
    wording: TypeWording,
    diags: &'a mut Vec<Diagnostic>,
    /// How many diagnostics there were when decoding began.
    start: usize,
}

impl<'a> BlockDecoder<'a> {
    /// A decoder for a `kind` block in `file`. Expressions are evaluated in
    /// `ctx`; file functions resolve paths against `root`.
    pub(super) fn new(
        file: &'a SourceFile,
        block: &'a Block,
        kind: &str,
        ctx: &'a Context<'a>,
        root: &'a Path,
        wording: TypeWording,
        diags: &'a mut Vec<Diagnostic>,
    ) -> Self {
        let start = diags.len();
        Self {
            file,
            block,
            ctx,
            root,
            head: block.ident.span().unwrap_or(0..0),
            what: format!("the {kind} block"),
            address: None,
            wording,
            diags,
            start,
        }
    }

    /// The block's one label, its name; then messages name the block
    /// `kind "name"` and carry the address `kind.name`. Without exactly one
    /// label, reports it (with `example` as help) and returns `None`.
    pub(super) fn name_label(&mut self, kind: &str, example: &str) -> Option<String> {
        let name = match self.block.labels.as_slice() {
            [label] => label.as_str().to_owned(),
            _ => {
                let d = Diagnostic::new(format!("a {kind} block takes one label, its name"))
                    .at(self.head_location())
                    .help(example);
                self.diags.push(d);
                return None;
            }
        };
        self.what = format!("{kind} {name:?}");
        self.address = Some(format!("{kind}.{name}"));
        Some(name)
    }

    /// Whether the block has no label; otherwise reports it (with `example`
    /// as help).
    pub(super) fn no_label(&mut self, kind: &str, example: &str) -> bool {
        if self.block.labels.is_empty() {
            return true;
        }
        let d = Diagnostic::new(format!("a {kind} block takes no label"))
            .at(self.head_location())
            .help(example);
        self.diags.push(d);
        false
    }

    /// Records `name` in `seen` with where it is; if it was there, reports
    /// the block as declared twice, naming both places, and returns false.
    pub(super) fn first_declaration(
        &mut self,
        seen: &mut BTreeMap<String, Location>,
        name: &str,
    ) -> bool {
        let here = self.head_location();
        if let Some(first) = seen.get(name) {
            let d = self.with_address(Diagnostic::declared_twice(&self.what, first, here));
            self.diags.push(d);
            return false;
        }
        seen.insert(name.to_owned(), here);
        true
    }

    /// Reports every block nested in this one as unknown (`help` says what
    /// the block takes instead).
    pub(super) fn no_blocks(&mut self, help: &str) {
        for sub in self.block.body.blocks() {
            let span = sub.ident.span().unwrap_or(0..0);
            let message = format!("unknown block `{}` in {}", sub.ident.as_str(), self.what);
            self.error(&span, message, help);
        }
    }

    /// Evaluates `a` if its name is in `allowed`; an unknown name is
    /// reported with a "did you mean", the allowed names and `more_help`.
    /// `None` when the attribute is unknown or cannot be evaluated.
    pub(super) fn known_attribute(
        &mut self,
        a: &Attribute,
        allowed: &[&str],
        more_help: &str,
    ) -> Option<Attr> {
        let key = a.key.as_str();
        if !allowed.contains(&key) {
            let span = a.key.span().unwrap_or(0..0);
            let message = format!("unknown attribute `{key}` in {}", self.what);
            let help = format!(
                "{}allowed: {}{more_help}",
                suggest(key, allowed),
                allowed.join(", ")
            );
            self.error(&span, message, &help);
            return None;
        }
        self.eval(a)
    }

    /// Evaluates an attribute; what cannot be evaluated is reported as
    /// `key: problem` at the expression, and gives `None`.
    pub(super) fn eval(&mut self, a: &Attribute) -> Option<Attr> {
        let expr: hcl::Expression = a.value.clone().into();
        let span = expr_span(&a.value);
        match funcs::with_base_dir(self.root, || funcs::evaluate(&expr, self.ctx)) {
            Ok(value) => Some(Attr {
                key: a.key.as_str().to_owned(),
                value,
                span,
            }),
            Err(e) => {
                let (msg, help) = eval_message(&e, self.file.slice(&span), false);
                let mut d = self.with_address(
                    Diagnostic::new(format!("{}: {msg}", a.key.as_str())).at(self.location(&span)),
                );
                d.help = help;
                self.diags.push(d);
                None
            }
        }
    }

    /// Reports `message` at `span` with `help`.
    pub(super) fn error(&mut self, span: &Range<usize>, message: String, help: &str) {
        let d = self.with_address(
            Diagnostic::new(message)
                .at(self.location(span))
                .help(help.to_owned()),
        );
        self.diags.push(d);
    }

    /// [`Self::error`] without the source line (it holds a secret).
    pub(super) fn error_hiding_source(&mut self, span: &Range<usize>, message: String, help: &str) {
        let d = self.with_address(
            Diagnostic::new(message)
                .at(Location::of(self.file, span, false))
                .help(help.to_owned()),
        );
        self.diags.push(d);
    }

    /// Reports `message` at the block's type name with `help`.
    pub(super) fn error_at_head(&mut self, message: String, help: &str) {
        let head = self.head.clone();
        self.error(&head, message, help);
    }

    /// Reports `key must be <what>` at the attribute's value.
    pub(super) fn must_be(&mut self, a: &Attr, what: &str, help: &str) {
        self.error(&a.span, format!("{} must be {what}", a.key), help);
    }

    /// Reports a value of the wrong type, worded as the block words it
    /// ([`TypeWording`]); `what` is the type expected.
    fn wrong_type(&mut self, a: &Attr, what: &str, help: &str) {
        match self.wording {
            TypeWording::MustBe => self.must_be(a, what, help),
            TypeWording::HasTheWrongType => {
                self.error(&a.span, format!("{} has the wrong type", a.key), help)
            }
        }
    }

    /// The value as a string; otherwise reports the wrong type.
    pub(super) fn string(&mut self, a: &Attr, help: &str) -> Option<String> {
        let s = a.value.as_str().map(str::to_owned);
        if s.is_none() {
            self.wrong_type(a, "a string", help);
        }
        s
    }

    /// The value as a bool; otherwise reports the wrong type.
    pub(super) fn bool(&mut self, a: &Attr, help: &str) -> Option<bool> {
        let b = a.value.as_bool();
        if b.is_none() {
            self.wrong_type(a, "true or false", help);
        }
        b
    }

    /// The value as a list of strings, all or nothing: anything else is
    /// reported once as the wrong type.
    pub(super) fn strings(&mut self, a: &Attr, help: &str) -> Option<Vec<String>> {
        let list = match &a.value {
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>(),
            _ => None,
        };
        if list.is_none() {
            self.wrong_type(a, "a list of strings", help);
        }
        list
    }

    /// The strings among `items` (the elements of `a`'s list value); each
    /// other element is reported as `key must be a list of strings`.
    pub(super) fn each_string(&mut self, a: &Attr, items: &[Value], help: &str) -> Vec<String> {
        let mut out = Vec::new();
        for item in items {
            match item {
                Value::String(s) => out.push(s.clone()),
                _ => self.must_be(a, "a list of strings", help),
            }
        }
        out
    }

    /// The value as a duration (`"30s"`, `"1h30m"`, …); otherwise reports
    /// `key must be a duration`.
    pub(super) fn duration(&mut self, a: &Attr) -> Option<Duration> {
        let d = a.value.as_str().and_then(parse_duration);
        if d.is_none() {
            self.must_be(
                a,
                "a duration",
                "write e.g. \"30s\", \"15m\", \"2h\", \"1h30m\" or \"1d\"",
            );
        }
        d
    }

    /// The value as a JSON object (a map); otherwise reports
    /// `key must be a map` with `help`.
    pub(super) fn json_object(&mut self, a: &Attr, help: &str) -> Option<serde_json::Value> {
        match serde_json::to_value(&a.value) {
            Ok(j @ serde_json::Value::Object(_)) => Some(j),
            _ => {
                self.must_be(a, "a map", help);
                None
            }
        }
    }

    /// The value as an IANA time zone name. A value that is not a string is
    /// reported as the wrong type (with `help`); an unknown zone as
    /// `timezone: …`.
    pub(super) fn timezone(&mut self, a: &Attr, help: &str) -> Option<String> {
        let zone = self.string(a, help)?;
        match rota_scheduler::parse_tz(&zone) {
            Ok(_) => Some(zone),
            Err(e) => {
                self.error(
                    &a.span,
                    format!("timezone: {e}"),
                    "an IANA zone name such as \"Europe/Berlin\" or \"UTC\"",
                );
                None
            }
        }
    }

    /// Checks that `schedule` parses in `timezone`; otherwise reports
    /// `schedule: …` at `span`.
    pub(super) fn check_schedule(&mut self, schedule: &str, timezone: &str, span: &Range<usize>) {
        if let Err(e) = Schedule::parse_in(schedule, timezone) {
            self.error(
                span,
                format!("schedule: {e}"),
                "cron (\"0 3 * * 0\"), a macro (\"@daily\"), an interval (\"7d\") or a one-shot time",
            );
        }
    }

    /// Whether anything was reported since decoding began.
    pub(super) fn problem_count(&self) -> usize {
        self.diags.len()
    }

    pub(super) fn found_problems(&self) -> bool {
        self.diags.len() > self.start
    }

    /// The block being decoded.
    pub(super) fn block(&self) -> &'a Block {
        self.block
    }

    /// The span of the block's type name.
    pub(super) fn head(&self) -> Range<usize> {
        self.head.clone()
    }

    /// The location of a span of the block's file.
    pub(super) fn location(&self, span: &Range<usize>) -> Location {
        Location::of(self.file, span, true)
    }

    /// The location of the block's type name.
    pub(super) fn head_location(&self) -> Location {
        self.location(&self.head)
    }

    /// Where relative paths in the block are resolved.
    pub(super) fn root(&self) -> &'a Path {
        self.root
    }

    /// `d` with the block's address, if it has one.
    fn with_address(&self, d: Diagnostic) -> Diagnostic {
        match &self.address {
            Some(address) => d.address(address),
            None => d,
        }
    }
}
