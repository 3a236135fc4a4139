#![no_main]
//! The answer writers: any JSON value as XML (every `<` and `&` of a
//! value escaped) and back out as JSON.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let xml = rota_local::xml::to_xml("FuzzResponse", &value);
    assert!(xml.starts_with("<?xml"));
    assert!(xml.ends_with("</FuzzResponse>") || xml.ends_with("<FuzzResponse/>"), "{xml}");
    well_formed(&xml);
    // JSON out parses back (numbers past u64 may move by an ulp: serde_json
    // parses floats fast, not exactly, without its float_roundtrip feature).
    let json = serde_json::to_vec(&value).expect("json");
    serde_json::from_slice::<serde_json::Value>(&json).expect("json parses back");
});

/// Tags balance, names are XML names, and text holds no raw `<` or `&`
/// outside an entity.
fn well_formed(xml: &str) {
    let body = xml.split_once("?>").map(|(_, b)| b).unwrap_or(xml);
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = body;
    let mut roots = 0;
    while let Some(i) = rest.find('<') {
        let text = &rest[..i];
        for (j, _) in text.match_indices('&') {
            let ent = &text[j..];
            assert!(
                ["&lt;", "&gt;", "&amp;", "&quot;", "&apos;"].iter().any(|e| ent.starts_with(e)),
                "raw & in {xml}"
            );
        }
        let end = rest[i..].find('>').expect("unclosed tag") + i;
        let tag = &rest[i + 1..end];
        let (closing, name, empty) = match tag.strip_prefix('/') {
            Some(n) => (true, n, false),
            None => match tag.strip_suffix('/') {
                Some(n) => (false, n, true),
                None => (false, tag, false),
            },
        };
        let mut chars = name.chars();
        assert!(
            chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && chars.all(|c| c.is_alphanumeric() || "_-.".contains(c)),
            "bad name {name:?} in {xml}"
        );
        if stack.is_empty() && !closing {
            roots += 1;
        }
        if closing {
            assert_eq!(stack.pop(), Some(name), "{xml}");
        } else if !empty {
            stack.push(name);
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty() && roots == 1, "{xml}");
}
