#![no_main]
//! V1 (HMAC-SHA1) string to sign and verification over arbitrary
//! parameters and signatures: never a panic, and a signature made for the
//! parameters verifies.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = rota_kms::encode::parse_form(text) else { return };
    let it = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let claimed = pairs
        .iter()
        .find(|(k, _)| k == "Signature")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let _ = rota_kms::sign::v1_verify("POST", it(), "fuzz-secret", claimed);
    let sts = rota_kms::sign::v1_string_to_sign("POST", it());
    let good = rota_kms::sign::v1_sign("fuzz-secret", &sts);
    assert!(rota_kms::sign::v1_verify("POST", it(), "fuzz-secret", &good).is_ok());
});
