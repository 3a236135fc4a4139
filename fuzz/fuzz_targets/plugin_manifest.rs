#![no_main]
//! Rhai plugin manifests (`plugin.toml`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = rota_script::manifest::Manifest::parse(std::path::Path::new("plugin.toml"), text);
});
