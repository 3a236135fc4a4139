#![no_main]
//! The HCL configuration loader: parsing, expressions, functions,
//! validation. Errors are fine; a panic is not.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = std::env::temp_dir().join(format!("rota-fuzz-config-{}", std::process::id()));
    let options = rota_engine::config::LoadOptions {
        path: dir,
        vars: Vec::new(),
        var_files: Vec::new(),
        env_vars: Vec::new(),
        now: None,
    };
    let _ = rota_engine::config::Config::from_text("main.tf", text, &options);
});
