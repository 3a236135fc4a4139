#![no_main]
//! The local world file (`world.hcl`).
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = rota_local::World::parse(text);
});
