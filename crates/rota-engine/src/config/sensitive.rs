//! Which values are sensitive, as Terraform marks them: a variable
//! declared `sensitive = true`, anything passed through `sensitive(…)`, a
//! secret's `secret_data` (a resource's or a data source's), a module
//! output declared sensitive, and every expression that uses one of these
//! (a local, a module argument, a resource argument, an output) unless it
//! is wrapped in `nonsensitive(…)`.
//!
//! hcl-rs evaluates values without marks, so the marks follow the
//! expressions' text: each scope (the root, each module call) keeps the
//! names that are sensitive in it (`var.x`, `local.y`, `module.m.out`). A
//! resource argument that is sensitive is shown as `(sensitive)` in plans;
//! an output that is must say `sensitive = true`.

use std::collections::BTreeSet;

/// The sensitive names of one scope: `var.NAME`, `local.NAME`,
/// `module.NAME.OUTPUT`.
pub(crate) type Names = BTreeSet<String>;

/// Whether an expression's text yields a sensitive value in a scope whose
/// sensitive names are `names`.
pub(crate) fn is_sensitive(text: &str, names: &Names) -> bool {
    if calls(text, "nonsensitive") {
        return false;
    }
    calls(text, "sensitive")
        || reads_attribute(text, "secret_data")
        || names.iter().any(|n| refers_to(text, n))
}

/// Whether `text` calls the function `name` (`name(`, not as the tail of a
/// longer name).
fn calls(text: &str, name: &str) -> bool {
    let pat = format!("{name}(");
    occurrences(text, &pat).any(|(before, _)| {
        before
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Whether `text` reads an attribute `.attr` of something.
fn reads_attribute(text: &str, attr: &str) -> bool {
    let pat = format!(".{attr}");
    occurrences(text, &pat).any(|(_, after)| {
        after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Whether `text` refers to `name` (`var.x`, not `var.xy` nor `a.var.x`).
pub(crate) fn refers_to(text: &str, name: &str) -> bool {
    occurrences(text, name).any(|(before, after)| {
        let before_ok = before
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
        let after_ok = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        before_ok && after_ok
    })
}

/// Each place `pat` occurs in `text`, as the text before and after it.
fn occurrences<'a>(text: &'a str, pat: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    text.match_indices(pat)
        .map(move |(i, _)| (&text[..i], &text[i + pat.len()..]))
}

/// Adds to `names` the locals that are sensitive, `local.KEY` for each
/// `(KEY, text)` whose text uses a sensitive name (a local may use another:
/// repeated until nothing changes).
pub(crate) fn add_locals<'a>(names: &mut Names, locals: impl Iterator<Item = (&'a str, &'a str)>) {
    let locals: Vec<(&str, &str)> = locals.collect();
    loop {
        let mut changed = false;
        for (key, text) in &locals {
            let name = format!("local.{key}");
            if !names.contains(&name) && is_sensitive(text, names) {
                names.insert(name);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_follow_the_expressions() {
        let names: Names = ["var.pw".to_owned(), "module.db.password".to_owned()].into();
        assert!(is_sensitive("\"x-${var.pw}\"", &names));
        assert!(!is_sensitive("var.pwd", &names));
        assert!(!is_sensitive("local.var.pw", &names));
        assert!(is_sensitive("sensitive(\"a\")", &names));
        assert!(!is_sensitive("nonsensitive(var.pw)", &names));
        assert!(is_sensitive("alicloud_kms_secret.a.secret_data", &names));
        assert!(!is_sensitive(
            "alicloud_kms_secret.a.secret_data_type",
            &names
        ));
        assert!(is_sensitive("module.db.password", &names));
        assert!(!is_sensitive("module.db.password_length", &names));
        let mut n = names.clone();
        add_locals(
            &mut n,
            [("b", "local.a"), ("a", "upper(var.pw)"), ("c", "\"plain\"")].into_iter(),
        );
        assert!(n.contains("local.a") && n.contains("local.b") && !n.contains("local.c"));
    }
}
