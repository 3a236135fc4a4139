#![no_main]
//! V3 (ACS3-HMAC-SHA256): the Authorization header parser and the
//! verification over arbitrary headers, query and body.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(4, '\n');
    let authorization = parts.next().unwrap_or_default();
    let headers_text = parts.next().unwrap_or_default();
    let query_text = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let Ok(auth) = rota_kms::sign::parse_v3_authorization(authorization) else { return };
    let headers: Vec<(&str, &str)> = headers_text
        .split('&')
        .filter_map(|h| h.split_once('='))
        .collect();
    let query: Vec<(&str, &str)> = query_text
        .split('&')
        .filter_map(|h| h.split_once('='))
        .collect();
    let hashed = rota_kms::sign::sha256_hex(body.as_bytes());
    let input = rota_kms::sign::V3Input {
        method: "POST",
        path: "/",
        query: &query,
        headers: &headers,
        hashed_payload: &hashed,
    };
    let _ = rota_kms::sign::v3_verify(&input, "fuzz-secret", &auth.signature);
});
