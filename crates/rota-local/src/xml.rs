//! `Format=XML` answers (kms-api.md §2.1): the JSON object rendered as XML
//! under a root element (`<{Action}Response>` for success, `<Error>` for
//! errors; the Java SDK's reader ignores the root name). A JSON array under
//! key `K` becomes repeated `<K>` elements, so the wrapped lists come out as
//! `<VersionStages><VersionStage>ACSCurrent</VersionStage></VersionStages>`.

use serde_json::Value;

/// Renders `v` (an object) as an XML document with root element `root`.
pub fn to_xml(root: &str, v: &Value) -> String {
    let mut out = String::with_capacity(256);
    out.push_str("<?xml version='1.0' encoding='UTF-8'?>");
    write_value(&mut out, root, v);
    out
}

fn write_value(out: &mut String, name: &str, v: &Value) {
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
}
