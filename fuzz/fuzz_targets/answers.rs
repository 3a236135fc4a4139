#![no_main]
//! The answer writers: any JSON value as XML (every `<` and `&` of a
//! value escaped) and back out as JSON.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let xml = rota_local::xml::to_xml("FuzzResponse", &value);
    assert!(xml.starts_with("<?xml"));
    assert!(xml.ends_with("</FuzzResponse>") || xml.ends_with("<FuzzResponse/>"), "{xml}");
    let json = serde_json::to_vec(&value).expect("json");
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&json).expect("json"), value);
});
