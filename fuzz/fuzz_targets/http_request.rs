#![no_main]
//! Raw bytes as one HTTP connection to the local cloud: the request
//! parser, the error envelope, form and query decoding, V1/V3 checks.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let l = common::local();
    let out = l.rt.block_on(rota_local::server::exchange(&l.cloud, data));
    // Whatever came in, every answer is HTTP (1.1, or 1.0 to a 1.0
    // request), and every refusal carries a request id.
    if !out.is_empty() {
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 ") || text.starts_with("HTTP/1.0 "), "{text}");
        let status = &text[9..12.min(text.len())];
        if status != "200" && status != "100" {
            assert!(text.contains("\"RequestId\"") || text.contains("<RequestId>"), "{text}");
        }
    }
});
