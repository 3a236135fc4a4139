#![no_main]
//! A form body as the parameters of an authenticated root call: every
//! action's parameter parsing and the engine behind it.
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(pairs) = rota_kms::encode::parse_form(text) else { return };
    let params = rota_local::Params::new(pairs);
    let (Some(action), Some(version)) = (params.opt("Action"), params.opt("Version")) else {
        return;
    };
    let l = common::local();
    let caller = rota_local::Caller::new(
        l.cloud.root_key().access_key_id.clone(),
        "acs:ram::1117600963847258:root",
        true,
    );
    let (action, version) = (action.to_owned(), version.to_owned());
    let _ = l
        .rt
        .block_on(l.cloud.dispatcher().dispatch(&caller, &version, &action, &params));
});
