//! Alibaba-style wildcard patterns, as secret policies use them for
//! principals and as Rota's `rotation` blocks use them for secret names and
//! tag values: `*` matches any run of characters, `?` any one character.

/// Whether `text` matches `pattern`.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn stars_and_question_marks() {
        assert!(wildcard_match("acs:ram::*:*", "acs:ram::123:user/alice"));
        assert!(wildcard_match("app/*", "app/"));
        assert!(!wildcard_match("app/*", "ap/db"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*", ""));
    }
}
