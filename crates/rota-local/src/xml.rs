//! `Format=XML` answers (kms-api.md §2.1): the JSON object rendered as XML
//! under a root element (`<{Action}Response>` for success, `<Error>` for
//! errors; the Java SDK's reader ignores the root name). A JSON array under
//! key `K` becomes repeated `<K>` elements, so the wrapped lists come out as
//! `<VersionStages><VersionStage>ACSCurrent</VersionStage></VersionStages>`.

use serde_json::Value;

/// Renders `v` (an object) as an XML document with root element `root`.
/// Any other value is written inside the root as `<Value>` elements, so
/// the document always has exactly one root (an empty list included), and
/// a key that is not an XML name is written with `_` for each character
/// that cannot be in one.
pub fn to_xml(root: &str, v: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0' encoding='UTF-8'?>");
    if v.is_object() {
        write_value(&mut out, root, v);
    } else {
        let root = xml_name(root);
        open(&mut out, &root);
        write_value(&mut out, "Value", v);
        close(&mut out, &root);
    }
    out
}

/// `name` as an XML element name: letters, digits, `_`, `-`, `.`, not
/// starting with a digit, `-` or `.` (nor empty).
fn xml_name(name: &str) -> std::borrow::Cow<'_, str> {
    let ok_first = |c: char| c.is_alphabetic() || c == '_';
    let ok = |c: char| c.is_alphanumeric() || c == '_' || c == '-' || c == '.';
    let mut chars = name.chars();
    if chars.next().is_some_and(ok_first) && chars.all(ok) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    for (i, c) in name.chars().enumerate() {
        if i == 0 && !ok_first(c) {
            out.push('_');
            if ok(c) {
                out.push(c);
            }
        } else {
            out.push(if ok(c) { c } else { '_' });
        }
    }
    if out.is_empty() {
        out.push('_');
    }
    std::borrow::Cow::Owned(out)
}

fn write_value(out: &mut String, name: &str, v: &Value) {
    let name = &*xml_name(name);
    match v {
        Value::Array(items) => {
            for item in items {
                write_value(out, name, item);
            }
        }
        Value::Object(m) => {
            open(out, name);
            for (k, x) in m {
                write_value(out, k, x);
            }
            close(out, name);
        }
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        Value::String(s) => {
            open(out, name);
            escape_into(out, s);
            close(out, name);
        }
        Value::Bool(b) => {
            open(out, name);
            out.push_str(if *b { "true" } else { "false" });
            close(out, name);
        }
        Value::Number(n) => {
            open(out, name);
            out.push_str(&n.to_string());
            close(out, name);
        }
    }
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_repeat_inside_their_wrapper() {
        let v = serde_json::json!({
            "RequestId": "r",
            "SecretData": "a<b&c",
            "VersionStages": {"VersionStage": ["ACSCurrent", "x"]}
        });
        assert_eq!(
            to_xml("GetSecretValueResponse", &v),
            "<?xml version='1.0' encoding='UTF-8'?><GetSecretValueResponse><RequestId>r</RequestId><SecretData>a&lt;b&amp;c</SecretData><VersionStages><VersionStage>ACSCurrent</VersionStage><VersionStage>x</VersionStage></VersionStages></GetSecretValueResponse>"
        );
    }

    /// Found by fuzzing (`cargo xtask fuzz answers`): a root that is not
    /// an object had no root element (`[]` gave the declaration alone), and
    /// keys that are not XML names broke the document.
    #[test]
    fn any_value_gives_one_well_formed_root() {
        let decl = "<?xml version='1.0' encoding='UTF-8'?>";
        assert_eq!(
            to_xml("R", &serde_json::json!([])),
            format!("{decl}<R></R>")
        );
        assert_eq!(
            to_xml("R", &serde_json::json!([1, "a"])),
            format!("{decl}<R><Value>1</Value><Value>a</Value></R>")
        );
        assert_eq!(
            to_xml("R", &serde_json::json!(null)),
            format!("{decl}<R><Value/></R>")
        );
        assert_eq!(
            to_xml(
                "R",
                &serde_json::json!({"a b": 1, "": 2, "1x": 3, "<": 4, "ok-1.x": 5})
            ),
            format!("{decl}<R><_>2</_><_1x>3</_1x><_>4</_><a_b>1</a_b><ok-1.x>5</ok-1.x></R>")
        );
    }
}
