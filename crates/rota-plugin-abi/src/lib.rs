//! The stable C ABI of Rota's native rotation plugins, and the safe Rust SDK
//! on top of it.
//!
//! This crate is the **one stable surface for plugin authors**. It has no
//! dependency on any other Rota crate, so a plugin built against it does not
//! change when Rota's internals do. A plugin is a shared library (`cdylib`)
//! written in any language that can export C functions; Rust authors
//! implement [`NativePlugin`] and call [`export_plugin!`], and never write
//! `unsafe` themselves.
//!
//! # The entry symbol and the handshake
//!
//! A plugin exports one function, [`ENTRY_SYMBOL`] (`rota_plugin_v1`):
//!
//! ```c
//! const RotaPluginTable *rota_plugin_v1(const RotaHostTable *host);
//! ```
//!
//! The ABI **major** version is in the symbol's name: a host speaking ABI 2
//! looks for `rota_plugin_v2` and never calls a v1 plugin by mistake. The
//! returned [`PluginTable`] and the [`HostTable`] both start with
//! `abi_version` (`major << 16 | minor`, see [`ABI_VERSION`]) and
//! `struct_size` (`sizeof` the table as its writer knows it). Before any
//! other call the host reads those two fields and refuses a table whose major
//! differs from its own or whose size is smaller than the v1.0 table.
//! **Minor** versions only ever add fields at the end: a reader uses a field
//! only if `struct_size` covers it, so an old host runs a newer plugin and
//! vice versa. Fields are never removed, reordered or retyped within a major.
//!
//! # Tables
//!
//! [`HostTable`] (host → plugin; lives as long as the process):
//!
//! | field | meaning |
//! |---|---|
//! | `abi_version`, `struct_size` | as above |
//! | `log(ctx, level, ptr, len)` | a UTF-8 message into the host's log, at [`Level`] `level`, inside the step's span |
//! | `deadline_remaining_ms(ctx)` | milliseconds left before the step's deadline (0 when it has passed) |
//! | `call_api(ctx, req_ptr, req_len, out) -> Status` | a signed OpenAPI call (request JSON below) on the configured backend; allowed only for the `Product:Action` pairs the plugin declared in its descriptor's `capabilities`. On [`status::OK`] `out` holds the response JSON, otherwise an error message. `out` is host-allocated: free it with `free_buffer` |
//! | `free_buffer(buf)` | frees a buffer the host allocated |
//!
//! [`PluginTable`] (plugin → host; lives as long as the library, which the
//! host never unloads):
//!
//! | field | meaning |
//! |---|---|
//! | `abi_version`, `struct_size` | as above |
//! | `describe(out) -> Status` | the descriptor JSON (below) into `out` (required) |
//! | `generate`, `set`, `test`, `finish`, `rollback` | one step each: `(host, ctx, input_ptr, input_len, out, err) -> Status` — the step input JSON in, the step output JSON in `out` on success, a UTF-8 error message in `err` otherwise. `set` and `test` are required; `generate`, `finish` and `rollback` may be NULL (not implemented, as [`status::UNSUPPORTED`] would say) |
//! | `free_buffer(buf)` | frees a buffer the plugin allocated (`out`, `err`); takes the buffer **by value** (required) |
//!
//! A NULL required function makes the host refuse the library at load. In
//! Rust the function fields are `Option`s of function pointers, which have
//! exactly the C layout of a nullable pointer.
//!
//! `ctx` is an opaque host pointer valid for the duration of one call only:
//! pass it back to the host functions, never keep it.
//!
//! # From C and other languages
//!
//! `include/rota_plugin.h` in this crate declares the same tables for C
//! (and anything that reads C headers); a test compiles the C plugin in
//! `plugins/c-echo/echo.c` against it, compares every size and offset with
//! these Rust definitions, and rotates a secret through it. Name the
//! library `lib<name>.so` (`.dylib` on macOS, `<name>.dll` on Windows) and
//! put it in a plugin folder (`plugins/`, `plugins/<name>/`, a folder named
//! by `plugins { paths }` or `--plugin-dir`). A `plugin.toml` beside it may
//! pin the file: `sha256 = "<hex>"`, and `library = "<file>"` when the
//! folder holds several libraries; other keys are refused.
//!
//! # Deadlines
//!
//! Each step runs under the deadline the rotation gives it (the protocol's
//! per-step limit, within the rotation block's `timeout` for the whole
//! attempt); `deadline_remaining_ms` says how much of it is left. The host
//! cannot stop a native call: a step that overruns is reported failed and
//! its answer ignored, so plugins should check the remaining time before
//! anything slow.
//!
//! # Ownership
//!
//! Every [`Buffer`] is freed by the side that allocated it, with that side's
//! `free_buffer`: the host frees the plugin's `out`/`err` with the plugin
//! table's `free_buffer`, and the plugin frees `call_api`'s `out` with the
//! host table's. Input slices (`ptr`, `len`) are borrowed for the call. A
//! buffer with a null `ptr` is empty and needs no freeing. All strings are
//! UTF-8, never NUL-terminated.
//!
//! # Status codes and panics
//!
//! Every function returns a [`Status`] (see [`status`]). A Rust plugin never
//! unwinds across the boundary: [`export_plugin!`] runs every body under
//! `catch_unwind` and turns a panic into [`status::PANICKED`] with the panic
//! message in `err`, so a panicking plugin fails its step instead of
//! aborting Rota.
//!
//! # Payloads (JSON, UTF-8)
//!
//! Descriptor (`describe`):
//!
//! ```json
//! {"name": "postgres-role", "version": "0.1.0", "description": "…",
//!  "secret_types": ["Generic"],
//!  "settings": [{"name": "mode", "kind": "string", "default": "single",
//!                "allowed": ["single", "alternating"], "description": "…"}],
//!  "steps": {"generate": true, "finish": false, "rollback": false},
//!  "capabilities": ["Ecs:DescribeInstances"]}
//! ```
//!
//! `kind` is one of `string`, `integer`, `bool`, `string_list`, `object`; a
//! setting without `default` is required. The host validates a secret's
//! settings against this schema before any step runs.
//!
//! Step input (every step):
//!
//! ```json
//! {"step": "set",
//!  "secret": {"name": "app/db", "type": "Generic", "description": "",
//!             "tags": {"team": "x"}, "extended_config": null},
//!  "token": "rota-20250101T000000Z-1a2b3c4d",
//!  "pending": "…", "current": "…", "previous": null,
//!  "settings": {"mode": "single"}}
//! ```
//!
//! `pending` is null while generating. Secret values cross the ABI only in
//! `pending`, `current` and `previous`: the host never logs a payload, and
//! the SDK decodes them into [`Secret`], whose `Debug` prints `***`.
//!
//! Step output: `generate` answers `{"value": "…"}` (or `{"value": null}` to
//! let Rota's password policy generate); the other steps answer `{}`.
//!
//! `call_api` request: `{"product": "Ecs", "version": "", "action":
//! "DescribeInstances", "params": {"RegionId": "cn-hangzhou"}}` (an empty
//! version means the one Rota knows for the product); the response is the
//! API's JSON object.
//!
//! # Unsafe code
//!
//! All of it is in the `ffi` module, each block with a `// SAFETY:` comment.

#![deny(unsafe_code)]

#[allow(unsafe_code)]
mod ffi;
mod sdk;

pub use ffi::{
    ABI_MAJOR, ABI_MINOR, ABI_VERSION, Buffer, CallApiFn, DescribeFn, ENTRY_SYMBOL, EntryFn,
    FreeFn, Host, HostTable, LogFn, PluginTable, PluginTableV1_0, RemainingFn, Status, StepFn,
    abi_major, abi_minor, status,
};
pub use sdk::{
    Descriptor, Level, NativePlugin, Secret, SecretMeta, Setting, StepError, StepInput, Steps,
};

/// Support for [`export_plugin!`]; not part of the stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::ffi::{Instance, plugin_table};
}

/// Exports a [`NativePlugin`] implementation as a Rota plugin: generates the
/// `rota_plugin_v1` entry symbol and the [`PluginTable`] whose functions
/// decode the JSON payloads, call the plugin under `catch_unwind`, and encode
/// the answer. The plugin type must implement `Default`; one instance is
/// created on first use and lives as long as the process.
///
/// ```text
/// #[derive(Default)]
/// struct Echo;
/// impl rota_plugin_abi::NativePlugin for Echo { /* … */ }
/// rota_plugin_abi::export_plugin!(Echo);
/// ```
///
/// `export_plugin!(@abi_version N, Type)` writes `N` into the table instead
/// of [`ABI_VERSION`]; it exists only so tests can build a plugin with a
/// wrong version.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        $crate::export_plugin!(@abi_version $crate::ABI_VERSION, $plugin);
    };
    (@abi_version $version:expr, $plugin:ty) => {
        impl $crate::__private::Instance for $plugin {
            fn instance() -> &'static Self {
                static INSTANCE: ::std::sync::OnceLock<$plugin> = ::std::sync::OnceLock::new();
                INSTANCE.get_or_init(<$plugin as ::std::default::Default>::default)
            }
        }

        static __ROTA_PLUGIN_TABLE: $crate::PluginTable =
            $crate::__private::plugin_table::<$plugin>($version);

        /// The entry symbol Rota's host looks up (ABI major 1).
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn rota_plugin_v1(
            _host: *const $crate::HostTable,
        ) -> *const $crate::PluginTable {
            &__ROTA_PLUGIN_TABLE
        }
    };
}
