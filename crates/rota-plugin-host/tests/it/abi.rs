//! The ABI contract: load and describe, and every refusal — wrong ABI
//! version, missing entry symbol, a file that is not a library, a checksum
//! mismatch — with a clear error; a panicking plugin is contained and the
//! host keeps working.

use rota_plugin_host::{LoadError, StepKind};
use rota_rotation::{PluginError, RotationPlugin, SettingKind};
use serde_json::json;

use crate::common::{build_plugin, copy_into, load};

#[test]
fn echo_loads_and_describes_itself() {
    let p = load("example-echo", "");
    let d = p.descriptor();
    assert_eq!(d.name, "example-echo");
    assert_eq!(d.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(d.secret_types, vec!["Generic".to_owned()]);
    assert!(d.origin.starts_with("native: "), "{}", d.origin);
    let names: Vec<_> = d
        .settings
        .fields
        .iter()
        .map(|f| (f.name.as_str(), f.kind))
        .collect();
    assert_eq!(
        names,
        vec![
            ("greeting", SettingKind::String),
            ("delay_ms", SettingKind::Integer)
        ]
    );
    assert!(!d.steps.generate && !d.steps.finish && !d.steps.rollback);
    assert_eq!(p.sha256().len(), 64);
    // Settings are validated against the described schema.
    assert_eq!(
        d.settings
            .validate(&json!({"greting": "x"}))
            .unwrap_err()
            .to_string(),
        "unknown setting \"greting\"; allowed settings: delay_ms, greeting"
    );
}

#[test]
fn a_wrong_abi_version_is_refused_naming_both_versions() {
    let lib = build_plugin("example-echo", "wrong-abi");
    let err = rota_plugin_host::load(&lib).unwrap_err();
    assert!(matches!(err, LoadError::AbiMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("plugin ABI version 99.0 is not supported: this Rota speaks ABI 1.1"),
        "{msg}"
    );
}

#[test]
fn a_library_without_the_entry_symbol_is_not_a_plugin() {
    let lib = build_plugin("example-echo", "no-entry");
    let err = rota_plugin_host::load(&lib).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("not a Rota plugin: no symbol rota_plugin_v1"),
        "{err}"
    );
}

#[test]
fn a_file_that_is_not_a_library_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir
        .path()
        .join(format!("libfake.{}", std::env::consts::DLL_EXTENSION));
    std::fs::write(&fake, "not an ELF file").unwrap();
    let err = rota_plugin_host::load(&fake).unwrap_err();
    assert!(matches!(err, LoadError::NotLoadable { .. }), "{err:?}");
    assert!(err.to_string().contains("not a loadable library"), "{err}");
}

#[test]
fn a_checksum_pin_in_plugin_toml_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let lib = copy_into(&build_plugin("example-echo", ""), dir.path());
    let manifest = dir.path().join("plugin.toml");
    let wrong = "0".repeat(64);
    std::fs::write(&manifest, format!("sha256 = \"{wrong}\"\n")).unwrap();
    let err = rota_plugin_host::load(&lib).unwrap_err();
    assert!(matches!(err, LoadError::ChecksumMismatch { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!(
            "checksum mismatch: plugin.toml pins sha256 {wrong}"
        )),
        "{err}"
    );
    let right = rota_plugin_host::sha256_file(&lib).unwrap();
    std::fs::write(&manifest, format!("sha256 = \"{right}\"\n")).unwrap();
    let p = rota_plugin_host::load(&lib).unwrap();
    assert_eq!(p.sha256(), right);
    std::fs::write(&manifest, "sha256 = 12\n").unwrap();
    assert!(matches!(
        rota_plugin_host::load(&lib).unwrap_err(),
        LoadError::Manifest { .. }
    ));
}

#[test]
fn a_panicking_plugin_fails_its_step_and_the_host_keeps_going() {
    let p = load("example-echo", "panic-in-set");
    let input = json!({
        "step": "set", "secret": {"name": "s", "type": "Generic"}, "token": "t",
        "pending": "p", "current": "c", "previous": null, "settings": {}
    })
    .to_string();
    for _ in 0..2 {
        let err = p.invoke(StepKind::Set, input.as_bytes()).unwrap_err();
        assert_eq!(
            err,
            PluginError::Permanent(
                "the plugin panicked: example-echo was built to panic in set".into()
            )
        );
    }
    // The library still answers its other steps.
    p.invoke(StepKind::Test, input.as_bytes()).unwrap();
}

#[test]
fn malformed_input_and_missing_values_are_errors_not_crashes() {
    let p = load("example-echo", "");
    assert!(matches!(
        p.invoke(StepKind::Set, b"{not json").unwrap_err(),
        PluginError::Permanent(m) if m.starts_with("cannot decode the step input")
    ));
    let no_pending =
        json!({"step": "set", "secret": {"name": "s"}, "token": "t", "settings": {}}).to_string();
    assert_eq!(
        p.invoke(StepKind::Set, no_pending.as_bytes()).unwrap_err(),
        PluginError::Permanent("no pending value in set".into())
    );
    assert_eq!(
        p.invoke(StepKind::Rollback, no_pending.as_bytes())
            .unwrap_err(),
        PluginError::Unsupported("rollback")
    );
}

#[test]
fn discovery_reports_plugins_and_refusals_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    copy_into(&build_plugin("example-echo", ""), &dir.path().join("echo"));
    let fake = dir.path().join(format!(
        "libnot_a_plugin.{}",
        std::env::consts::DLL_EXTENSION
    ));
    std::fs::write(&fake, "text").unwrap();
    let found = rota_plugin_host::discover(&[dir.path().to_owned(), dir.path().join("missing")]);
    assert_eq!(found.len(), 2, "{found:?}");
    let ok: Vec<_> = found
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .map(|p| p.descriptor().name.clone())
        .collect();
    assert_eq!(ok, vec!["example-echo".to_owned()]);
    assert!(found.iter().any(|(p, r)| p == &fake && r.is_err()));
}
