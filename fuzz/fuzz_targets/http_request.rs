#![no_main]
//! Raw bytes as one HTTP connection to the local cloud: the request
//! parser, the error envelope, form and query decoding, V1/V3 checks.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let l = common::local();
    let out = l.rt.block_on(rota_local::server::exchange(&l.cloud, data));
    // Whatever came in, every answer is HTTP with a request id or nothing.
    if !out.is_empty() {
        assert!(out.starts_with(b"HTTP/1.1 "), "{}", String::from_utf8_lossy(&out));
        let text = String::from_utf8_lossy(&out);
        if !text.starts_with("HTTP/1.1 200") && !text.starts_with("HTTP/1.1 100") {
            assert!(text.contains("\"RequestId\"") || text.contains("<RequestId>"), "{text}");
        }
    }
});
