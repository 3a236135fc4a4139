//! A native plugin written in C against `rota_plugin.h` (plugins/c-echo):
//! compiled by the test with the machine's C compiler, its header layout
//! checked field by field against the Rust tables, loaded, and run through
//! a full rotation; a table with a NULL required function is refused.

use std::mem::{offset_of, size_of};
use std::path::{Path, PathBuf};
use std::process::Command;

use rota_plugin_abi::{Buffer, HostTable, PluginTable};
use rota_plugin_host::LoadError;
use rota_rotation::RotationPlugin as _;
use serde_json::json;

use crate::common::{env, request, steps, token, workspace_root};

/// Compiles plugins/c-echo/echo.c with `defines` into `dir`.
fn compile(dir: &Path, defines: &[&str]) -> PathBuf {
    let root = workspace_root();
    let lib = dir.join(format!(
        "{}c_echo{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .args([
            "-shared", "-fPIC", "-O1", "-std=c99", "-Wall", "-Werror", "-I",
        ])
        .arg(root.join("crates/rota-plugin-abi/include"))
        .args(defines.iter().map(|d| format!("-D{d}")))
        .arg(root.join("plugins/c-echo/echo.c"))
        .arg("-o")
        .arg(&lib)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc:?}: {e}"));
    assert!(
        out.status.success(),
        "compiling c-echo failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lib
}

/// What `rota_c_echo_layout` reports: the header's sizes and offsets as
/// the C compiler lays them out.
#[allow(unsafe_code)]
fn c_layout(lib: &Path) -> [usize; 16] {
    let mut out = [0usize; 16];
    // SAFETY: the library is c-echo, built just above from plugins/c-echo,
    // which exports `void rota_c_echo_layout(size_t out[16])`; `out` has
    // room for 16 `size_t`s. The library stays loaded for the call.
    unsafe {
        let lib = libloading::Library::new(lib).expect("the C plugin loads");
        let f: libloading::Symbol<'_, unsafe extern "C" fn(*mut usize)> =
            lib.get(b"rota_c_echo_layout").expect("the layout symbol");
        f(out.as_mut_ptr());
    }
    out
}

#[test]
fn the_c_header_matches_the_rust_tables() {
    let dir = tempfile::tempdir().unwrap();
    let lib = compile(dir.path(), &[]);
    let rust = [
        size_of::<Buffer>(),
        offset_of!(Buffer, len),
        offset_of!(Buffer, cap),
        size_of::<HostTable>(),
        offset_of!(HostTable, log),
        offset_of!(HostTable, deadline_remaining_ms),
        offset_of!(HostTable, call_api),
        offset_of!(HostTable, free_buffer),
        size_of::<PluginTable>(),
        offset_of!(PluginTable, describe),
        offset_of!(PluginTable, generate),
        offset_of!(PluginTable, set),
        offset_of!(PluginTable, test),
        offset_of!(PluginTable, finish),
        offset_of!(PluginTable, rollback),
        offset_of!(PluginTable, free_buffer),
    ];
    assert_eq!(c_layout(&lib), rust, "rota_plugin.h disagrees with ffi.rs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_plugin_rotates_a_secret_with_its_optional_steps_null() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = rota_plugin_host::load(&compile(dir.path(), &[])).expect("c-echo loads");
    let d = plugin.descriptor().clone();
    assert_eq!(d.name, "c-echo");
    assert_eq!(
        (d.steps.generate, d.steps.finish, d.steps.rollback),
        (false, false, false)
    );
    let e = env().await;
    e.create("app/c", "initial-c-value").await;
    let (rotator, history) = e.rotator(plugin);
    let t = token(7);
    let out = rotator
        .rotate(&request("app/c", "c-echo", json!({}), &t))
        .await
        .unwrap();
    assert_eq!(out, rota_test_support::rotation::rotated(&t));
    assert_eq!(e.stage("app/c", "ACSCurrent").await.unwrap().0, t);
    // NULL finish: Rota's promotion still happens, the step is a no-op.
    assert_eq!(
        steps(&history),
        ["inspect", "create", "set", "test", "finish"]
            .iter()
            .map(|s| (*s, "ok".to_owned()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn a_table_whose_required_set_is_null_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lib = compile(dir.path(), &["ROTA_TEST_NULL_SET"]);
    match rota_plugin_host::load(&lib) {
        Err(e @ LoadError::MissingFunction { field: "set", .. }) => {
            assert!(e.to_string().contains("`set` is NULL"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}
