#![no_main]
//! Form and query decoding, and every typed parameter accessor.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = rota_kms::encode::parse_form(text) else { return };
    // Encoding what was decoded and decoding it again gives it back.
    let encoded = rota_kms::encode::encode_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    assert_eq!(rota_kms::encode::parse_form(&encoded).expect("re-decode"), pairs);
    let params = rota_local::Params::new(pairs.clone());
    // The server's one-buffer parser reads the same pairs.
    let direct = rota_local::Params::from_forms(&[text]).expect("parses as parse_form does");
    assert!(direct.pairs().eq(params.pairs()));
    for (name, _) in &pairs {
        let _ = params.bool(name);
        let _ = params.int(name);
        let _ = params.int_in(name, 1, 100, 10);
        let _ = params.json(name);
        let _ = params.list(name);
        let _ = params.object_list(name, &["Key", "Value"]);
    }
});
