//! Every `unsafe` operation of the host, each with a `// SAFETY:` comment:
//! opening a library (and never unloading it), looking up the entry
//! symbol, the version handshake on the returned table, calls through the
//! table, and the host table's callbacks.

use std::ffi::c_void;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use rota_plugin_abi::{
    ABI_MAJOR, ABI_VERSION, Buffer, ENTRY_SYMBOL, EntryFn, HostTable, PluginTable, PluginTableV1_0,
    Status, StepFn, abi_major, abi_minor, status,
};
use serde_json::Value;

use crate::LoadError;

/// An OpenAPI call on the step's backend: `(product, version, action,
/// params)` → the response object or an error message.
pub(crate) type ApiFn =
    Arc<dyn Fn(&str, &str, &str, Vec<(String, String)>) -> Result<Value, String> + Send + Sync>;

/// What the host callbacks of one step call see through `ctx`.
pub(crate) struct CallCtx {
    pub(crate) deadline: Instant,
    pub(crate) api: Option<ApiFn>,
    /// Declared `Product:Action` pairs, lower-cased.
    pub(crate) capabilities: Arc<Vec<String>>,
    pub(crate) plugin: Arc<str>,
    pub(crate) span: tracing::Span,
}

/// The host table every plugin receives; it lives as long as the process.
pub(crate) static HOST_TABLE: HostTable = HostTable {
    abi_version: ABI_VERSION,
    struct_size: size_of::<HostTable>() as u32,
    log: host_log,
    deadline_remaining_ms: host_remaining,
    call_api: host_call_api,
    free_buffer: host_free,
};

/// A validated plugin table of a library that is never unloaded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Table(&'static PluginTableV1_0, TableTail);

/// The size of an ABI 1.0 plugin table.
const V1_0_SIZE: usize = size_of::<PluginTableV1_0>();

/// The fields a plugin table may add after ABI 1.0, read only when the
/// plugin's table is large enough to hold them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableTail {
    verify: Option<StepFn>,
}

/// Opens `path`, finds the entry symbol and checks the table's version and
/// size. The library is leaked: never unloaded, so the table and every
/// function pointer in it stay valid for the life of the process.
pub(crate) fn open(path: &Path) -> Result<Table, LoadError> {
    // SAFETY: loading a library runs its initialisers. Rota loads only
    // libraries an operator put in a plugin directory (and, with a
    // plugin.toml, whose SHA-256 was checked before this call); that trust
    // decision is the documented contract of native plugins.
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::NotLoadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let lib: &'static libloading::Library = Box::leak(Box::new(lib));
    // SAFETY: `EntryFn` is the documented type of `rota_plugin_v1`; a
    // library exporting that name with another type breaks the ABI contract
    // this host cannot check further. The symbol's lifetime is 'static
    // because the library is leaked above.
    let entry: EntryFn = match unsafe { lib.get::<EntryFn>(ENTRY_SYMBOL.as_bytes()) } {
        Ok(sym) => *sym,
        Err(_) => {
            return Err(LoadError::NotAPlugin {
                path: path.to_owned(),
                symbol: ENTRY_SYMBOL,
            });
        }
    };
    // SAFETY: the entry function takes a host table valid for the process
    // (a static) and returns a pointer to the plugin's table or null.
    let ptr = unsafe { entry(&HOST_TABLE) };
    if ptr.is_null() {
        return Err(LoadError::Refused {
            path: path.to_owned(),
        });
    }
    // Handshake: read only the two leading u32 fields, which every version
    // of every table has, before trusting anything else.
    // SAFETY: a non-null table pointer points at a table starting with
    // `abi_version: u32, struct_size: u32` in every ABI version; the library
    // stays loaded, so the memory outlives this read.
    let (version, size) = unsafe {
        let head = ptr.cast::<u32>();
        (head.read(), head.add(1).read())
    };
    if abi_major(version) != ABI_MAJOR {
        return Err(LoadError::AbiMismatch {
            path: path.to_owned(),
            found: format!("{}.{}", abi_major(version), abi_minor(version)),
            expected: format!("{ABI_MAJOR}.{}", abi_minor(ABI_VERSION)),
        });
    }
    if (size as usize) < V1_0_SIZE {
        return Err(LoadError::TableTooSmall {
            path: path.to_owned(),
            size,
            expected: V1_0_SIZE as u32,
        });
    }
    // The fields after ABI 1.0: read only those the plugin's table holds.
    let verify_end = std::mem::offset_of!(PluginTable, verify) + size_of::<Option<StepFn>>();
    let tail = TableTail {
        verify: if size as usize >= verify_end {
            // SAFETY: the table holds `size` bytes (its own declaration) and
            // `verify` lies within them; the library is never unloaded.
            unsafe { std::ptr::addr_of!((*ptr).verify).read() }
        } else {
            None
        },
    };
    // SAFETY: the major matches and the table holds at least the v1.0
    // fields, which this reference covers exactly (the later ones are read
    // into `tail` above); it lives in the never-unloaded library.
    let table: &'static PluginTableV1_0 = unsafe { &*ptr.cast::<PluginTableV1_0>() };
    let required = [
        ("describe", table.describe.is_some()),
        ("set", table.set.is_some()),
        ("test", table.test.is_some()),
        ("free_buffer", table.free_buffer.is_some()),
    ];
    if let Some((field, _)) = required.into_iter().find(|(_, present)| !present) {
        return Err(LoadError::MissingFunction {
            path: path.to_owned(),
            field,
        });
    }
    Ok(Table(table, tail))
}

/// The answer of one call: status, `out` bytes, `err` bytes (copied out of
/// the plugin's buffers, which are freed).
pub(crate) struct Answer {
    pub(crate) status: Status,
    pub(crate) out: Vec<u8>,
    pub(crate) err: Vec<u8>,
}

/// Which step function of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `generate`.
    Generate,
    /// `set`.
    Set,
    /// `test`.
    Test,
    /// `finish`.
    Finish,
    /// `rollback`.
    Rollback,
    /// `verify` (ABI 1.1).
    Verify,
}

impl StepKind {
    /// Lower-case name, as in the step input's `step`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Generate => "generate",
            Self::Set => "set",
            Self::Test => "test",
            Self::Finish => "finish",
            Self::Rollback => "rollback",
            Self::Verify => "verify",
        }
    }
}

impl Table {
    fn take(&self, buf: Buffer) -> Vec<u8> {
        let Some(free) = self.0.free_buffer else {
            // Checked at load: never NULL.
            return Vec::new();
        };
        // SAFETY: `buf` is empty or was just handed over by the plugin and
        // not yet freed; it goes back to the plugin's own `free_buffer` once.
        unsafe {
            let bytes = buf.to_vec();
            free(buf);
            bytes
        }
    }

    /// Whether the table has the optional step `step` (a NULL one is
    /// unsupported).
    pub(crate) fn has(&self, step: StepKind) -> bool {
        self.function(step).is_some()
    }

    fn function(&self, step: StepKind) -> Option<StepFn> {
        match step {
            StepKind::Generate => self.0.generate,
            StepKind::Set => self.0.set,
            StepKind::Test => self.0.test,
            StepKind::Finish => self.0.finish,
            StepKind::Rollback => self.0.rollback,
            StepKind::Verify => self.1.verify,
        }
    }

    /// Calls `describe`.
    pub(crate) fn describe(&self) -> Answer {
        let mut out = Buffer::empty();
        let Some(describe) = self.0.describe else {
            // Checked at load: never NULL.
            return Answer {
                status: status::PERMANENT,
                out: Vec::new(),
                err: b"describe is NULL".to_vec(),
            };
        };
        // SAFETY: the table was validated at load; `out` is writable.
        let status = unsafe { describe(&mut out) };
        Answer {
            status,
            out: self.take(out),
            err: Vec::new(),
        }
    }

    /// Calls one step with `input`; `ctx` (if any) must outlive the call.
    pub(crate) fn step(&self, step: StepKind, ctx: Option<&CallCtx>, input: &[u8]) -> Answer {
        let Some(f) = self.function(step) else {
            return Answer {
                status: status::UNSUPPORTED,
                out: Vec::new(),
                err: Vec::new(),
            };
        };
        let ctx_ptr = ctx.map_or(std::ptr::null(), |c| std::ptr::from_ref(c).cast::<c_void>());
        let mut out = Buffer::empty();
        let mut err = Buffer::empty();
        // SAFETY: the table was validated at load; the host table is a
        // static; `ctx` is borrowed for the whole call; `input` is a live
        // slice; `out` and `err` are writable.
        let status = unsafe {
            f(
                &HOST_TABLE,
                ctx_ptr,
                input.as_ptr(),
                input.len(),
                &mut out,
                &mut err,
            )
        };
        Answer {
            status,
            out: self.take(out),
            err: self.take(err),
        }
    }
}

// ------------------------------------------------------ host callbacks

/// # Safety
///
/// `ctx` must be null or the `CallCtx` pointer of a call in progress.
unsafe fn ctx<'a>(ctx: *const c_void) -> Option<&'a CallCtx> {
    // SAFETY: per the ABI, plugins pass back the `ctx` of the current call,
    // which the host keeps alive until the call returns.
    unsafe { ctx.cast::<CallCtx>().as_ref() }
}

/// # Safety
///
/// `ptr` must be null or point at `len` readable bytes for the call.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        return &[];
    }
    // SAFETY: guaranteed by the caller (the ABI's borrowed-slice rule).
    unsafe { std::slice::from_raw_parts(ptr, len) }
}

unsafe extern "C" fn host_log(ctx_ptr: *const c_void, level: u32, ptr: *const u8, len: usize) {
    // SAFETY: the ABI passes this call's ctx and a borrowed UTF-8 slice.
    let (ctx, msg) = unsafe { (ctx(ctx_ptr), bytes(ptr, len)) };
    let msg = String::from_utf8_lossy(msg);
    let log = || match level {
        1 => tracing::error!(plugin.message = %msg, "plugin log"),
        2 => tracing::warn!(plugin.message = %msg, "plugin log"),
        3 => tracing::info!(plugin.message = %msg, "plugin log"),
        4 => tracing::debug!(plugin.message = %msg, "plugin log"),
        _ => tracing::trace!(plugin.message = %msg, "plugin log"),
    };
    match ctx {
        Some(c) => c.span.in_scope(log),
        None => log(),
    }
}

unsafe extern "C" fn host_remaining(ctx_ptr: *const c_void) -> u64 {
    // SAFETY: the ABI passes this call's ctx.
    match unsafe { ctx(ctx_ptr) } {
        Some(c) => c
            .deadline
            .saturating_duration_since(Instant::now())
            .as_millis()
            .try_into()
            .unwrap_or(u64::MAX),
        None => 0,
    }
}

unsafe extern "C" fn host_free(buf: Buffer) {
    // SAFETY: plugins give back only buffers this host allocated (with
    // `Buffer::from_vec` in `host_call_api`), each once.
    unsafe { buf.free() }
}

unsafe extern "C" fn host_call_api(
    ctx_ptr: *const c_void,
    ptr: *const u8,
    len: usize,
    out: *mut Buffer,
) -> Status {
    // SAFETY: the ABI passes this call's ctx and a borrowed request slice.
    let (ctx, req) = unsafe { (ctx(ctx_ptr), bytes(ptr, len)) };
    // No unwinding into the plugin: the body runs under catch_unwind.
    let (code, answer) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        crate::plugin::call_api(ctx, req)
    }))
    .unwrap_or_else(|_| (status::FAILED, b"the host panicked in call_api".to_vec()));
    if !out.is_null() {
        // SAFETY: the ABI requires a non-null `out` to be writable.
        unsafe { out.write(Buffer::from_vec(answer)) };
    }
    code
}
