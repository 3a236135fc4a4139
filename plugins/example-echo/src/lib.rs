//! `example-echo`: the smallest possible Rota native plugin, and the
//! template for plugin authors (README: "Writing a native plugin").
//!
//! It "rotates" a Generic secret whose target is the secret itself: `set`
//! and `test` only check that there is a pending value, and `generate`
//! leaves the value to Rota's password policy. Copy this crate, rename it,
//! and replace the step bodies with calls to your target.
//!
//! The cargo features `wrong-abi`, `panic-in-set` and `no-entry` build the
//! broken variants the host's ABI tests load; never enable them otherwise.

// The one `unsafe` attribute of a plugin, `#[unsafe(no_mangle)]` on the entry
// symbol, comes from `export_plugin!` with its own `allow`; the plugin's
// code itself may not use `unsafe`.
#![deny(unsafe_code)]

// Everything a plugin needs comes from the ABI crate: the trait to
// implement, the descriptor types, the step input and the host handle.
use rota_plugin_abi::{
    Descriptor, Host, Level, NativePlugin, Setting, StepError, StepInput, Steps,
};

/// The plugin. It holds no state; a plugin that wants some (a connection
/// pool) keeps it here: one instance lives as long as the process, and
/// steps may run concurrently, so it must be `Sync`.
#[derive(Debug, Default)]
pub struct Echo;

impl NativePlugin for Echo {
    /// What `rota plugins list` shows and what Rota validates settings
    /// against; read once, when the library is loaded.
    fn describe() -> Descriptor {
        Descriptor {
            // The name configurations use: `rotation { plugin = "example-echo" }`.
            name: "example-echo".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "echoes the pending value back; a template for native plugins".into(),
            // The secret types it rotates; empty would mean any.
            secret_types: vec!["Generic".into()],
            // Its settings, with defaults; unknown settings are refused by Rota.
            settings: vec![
                Setting::optional(
                    "greeting",
                    "string",
                    "hello".into(),
                    "a word logged by every step",
                ),
                // Lets the host's tests make `set` overrun its deadline.
                Setting::optional("delay_ms", "integer", 0.into(), "time `set` takes"),
            ],
            // `set` and `test` are mandatory; say which optional steps exist.
            steps: Steps {
                generate: false,
                finish: false,
                rollback: false,
            },
            // `Product:Action` pairs the plugin may call through `host.call_api`.
            capabilities: Vec::new(),
        }
    }

    /// Make the target accept `input.pending`. A real plugin first probes
    /// (does the pending value already work?) and only then changes the
    /// target, so the step can be re-run after a crash.
    fn set(&self, input: &StepInput, host: &Host<'_>) -> Result<(), StepError> {
        // The pending value is a `Secret`: its `Debug` prints `***`; read it
        // with `expose()` only where the target needs it.
        let pending = input.pending()?;
        // Test build: a panic the ABI boundary must catch (a runtime branch,
        // so the rest of `set` still compiles without warnings).
        if cfg!(feature = "panic-in-set") {
            panic!("example-echo was built to panic in set");
        }
        // Log through the host (never a secret value): it lands in Rota's log
        // inside the step's span.
        let greeting = input.setting_str("greeting").unwrap_or("hello");
        if let Some(ms) = input.settings.get("delay_ms").and_then(|v| v.as_u64()) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        host.log(
            Level::Debug,
            &format!(
                "{greeting}: set {} ({} bytes)",
                input.token,
                pending.expose().len()
            ),
        );
        Ok(())
    }

    /// Prove `input.pending` works. Read-only.
    fn test(&self, input: &StepInput, _host: &Host<'_>) -> Result<(), StepError> {
        if input.pending()?.expose().is_empty() {
            // `Failed` is retried; `Permanent` marks the secret for attention.
            return Err(StepError::Failed("the pending value is empty".into()));
        }
        Ok(())
    }
}

// Export the C ABI: the `rota_plugin_v1` symbol and its table, with every
// call wrapped in `catch_unwind`.
#[cfg(not(any(feature = "wrong-abi", feature = "no-entry")))]
rota_plugin_abi::export_plugin!(Echo);

// Test build: a table claiming ABI major 99, which the host must refuse.
#[cfg(all(feature = "wrong-abi", not(feature = "no-entry")))]
rota_plugin_abi::export_plugin!(@abi_version 99 << 16, Echo);
