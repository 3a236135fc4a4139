//! The C side of the ABI: the `#[repr(C)]` tables, buffers and status codes,
//! the plugin-side wrappers [`crate::export_plugin!`] installs, and the safe
//! [`Host`] handle over the host table. Every `unsafe` block of this crate is
//! here, each with a `// SAFETY:` comment.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use serde_json::{Value, json};

use crate::sdk::{Level, NativePlugin, Secret, StepError, StepInput};

/// ABI major version: changes only with an incompatible layout, and is part
/// of the entry symbol's name.
pub const ABI_MAJOR: u16 = 1;
/// ABI minor version: grows when fields are added at the end of a table.
pub const ABI_MINOR: u16 = 1;
/// `major << 16 | minor`, the value of every table's `abi_version`.
pub const ABI_VERSION: u32 = ((ABI_MAJOR as u32) << 16) | ABI_MINOR as u32;
/// The entry symbol a plugin exports for ABI major 1.
pub const ENTRY_SYMBOL: &str = "rota_plugin_v1";

/// The major part of an `abi_version`.
pub const fn abi_major(version: u32) -> u16 {
    (version >> 16) as u16
}

/// The minor part of an `abi_version`.
pub const fn abi_minor(version: u32) -> u16 {
    (version & 0xffff) as u16
}

/// A status code; see [`status`].
pub type Status = u32;

/// The status codes every ABI function returns.
pub mod status {
    use super::Status;
    /// Success.
    pub const OK: Status = 0;
    /// The call failed; retrying may help. The error buffer says why.
    pub const FAILED: Status = 1;
    /// The call failed; retrying will not help.
    pub const PERMANENT: Status = 2;
    /// The plugin does not implement this optional step.
    pub const UNSUPPORTED: Status = 3;
    /// The plugin panicked; the error buffer holds the panic message.
    pub const PANICKED: Status = 4;
    /// The input payload could not be decoded.
    pub const BAD_INPUT: Status = 5;
    /// `call_api`: the plugin did not declare the capability.
    pub const DENIED: Status = 6;
    /// The step's deadline has passed.
    pub const DEADLINE: Status = 7;
}

/// An owned byte buffer crossing the ABI. Freed only by the side that
/// allocated it, through that side's `free_buffer`. A null `ptr` is empty.
#[repr(C)]
#[derive(Debug)]
pub struct Buffer {
    /// Start of the bytes (null when empty).
    pub ptr: *mut u8,
    /// Number of bytes.
    pub len: usize,
    /// Allocation capacity, meaningful only to the allocating side.
    pub cap: usize,
}

impl Buffer {
    /// An empty buffer.
    pub const fn empty() -> Self {
        Self {
            ptr: std::ptr::null_mut(),
            len: 0,
            cap: 0,
        }
    }

    /// Hands `bytes` over; the receiver must give it back to this side's
    /// `free_buffer` (which calls [`Buffer::free`]).
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        let mut v = ManuallyDrop::new(bytes);
        Self {
            ptr: v.as_mut_ptr(),
            len: v.len(),
            cap: v.capacity(),
        }
    }

    /// Frees a buffer made by [`Buffer::from_vec`] in this same library.
    ///
    /// # Safety
    ///
    /// The buffer must be empty or come from [`Buffer::from_vec`] of this
    /// library, and not have been freed. Other buffers go to their
    /// allocator's `free_buffer`.
    pub unsafe fn free(self) {
        if self.ptr.is_null() {
            return;
        }
        // SAFETY: the ABI's ownership rule: a buffer is freed only by the
        // side that allocated it, and every non-null buffer this side
        // allocates comes from `from_vec`, which leaked a `Vec<u8>` with
        // exactly this pointer, length and capacity.
        drop(unsafe { Vec::from_raw_parts(self.ptr, self.len, self.cap) });
    }

    /// Copies the bytes out without taking ownership.
    ///
    /// # Safety
    ///
    /// The buffer must be empty or point at `len` initialised bytes (every
    /// buffer an ABI function hands over does, until it is freed).
    pub unsafe fn to_vec(&self) -> Vec<u8> {
        if self.ptr.is_null() || self.len == 0 {
            return Vec::new();
        }
        // SAFETY: a non-null buffer handed over by an ABI function points at
        // `len` initialised bytes until it is freed, and it is not freed
        // while borrowed here.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }.to_vec()
    }
}

/// `log(ctx, level, msg_ptr, msg_len)`.
pub type LogFn = unsafe extern "C" fn(*const c_void, u32, *const u8, usize);
/// `deadline_remaining_ms(ctx)`.
pub type RemainingFn = unsafe extern "C" fn(*const c_void) -> u64;
/// `call_api(ctx, req_ptr, req_len, out) -> Status`.
pub type CallApiFn = unsafe extern "C" fn(*const c_void, *const u8, usize, *mut Buffer) -> Status;
/// `free_buffer(buf)`.
pub type FreeFn = unsafe extern "C" fn(Buffer);
/// `describe(out) -> Status`.
pub type DescribeFn = unsafe extern "C" fn(*mut Buffer) -> Status;
/// A step: `(host, ctx, input_ptr, input_len, out, err) -> Status`.
pub type StepFn = unsafe extern "C" fn(
    *const HostTable,
    *const c_void,
    *const u8,
    usize,
    *mut Buffer,
    *mut Buffer,
) -> Status;
/// The entry symbol's type: `rota_plugin_v1(host) -> table`.
pub type EntryFn = unsafe extern "C" fn(*const HostTable) -> *const PluginTable;

/// What the host offers a plugin. Grows only at the end.
#[repr(C)]
#[derive(Debug)]
pub struct HostTable {
    /// [`ABI_VERSION`] of the host.
    pub abi_version: u32,
    /// `size_of::<HostTable>()` as the host knows it.
    pub struct_size: u32,
    /// Logs a UTF-8 message in the step's span.
    pub log: LogFn,
    /// Milliseconds left before the step's deadline.
    pub deadline_remaining_ms: RemainingFn,
    /// A capability-checked OpenAPI call.
    pub call_api: CallApiFn,
    /// Frees a buffer the host allocated.
    pub free_buffer: FreeFn,
}

/// What a plugin offers the host. Grows only at the end.
///
/// Every function is a nullable pointer (`Option` of a function pointer has
/// the C pointer's layout): `describe`, `set`, `test` and `free_buffer` are
/// required — the host refuses a table where one is NULL — and an optional
/// step (`generate`, `finish`, `rollback`) may be NULL, meaning the plugin
/// does not implement it (as answering [`status::UNSUPPORTED`] does).
#[repr(C)]
#[derive(Debug)]
pub struct PluginTable {
    /// [`ABI_VERSION`] the plugin was built for.
    pub abi_version: u32,
    /// `size_of::<PluginTable>()` as the plugin knows it.
    pub struct_size: u32,
    /// The descriptor JSON (required).
    pub describe: Option<DescribeFn>,
    /// Step `generate` (optional).
    pub generate: Option<StepFn>,
    /// Step `set` (required).
    pub set: Option<StepFn>,
    /// Step `test` (required).
    pub test: Option<StepFn>,
    /// Step `finish` (optional).
    pub finish: Option<StepFn>,
    /// Step `rollback` (optional).
    pub rollback: Option<StepFn>,
    /// Frees a buffer the plugin allocated (required).
    pub free_buffer: Option<FreeFn>,
    /// Step `verify` (optional; ABI 1.1): while a verified rotation soaks,
    /// proves the consumers still work with `current`. A 1.0 table ends
    /// before this field; the host reads it only from tables that hold it.
    pub verify: Option<StepFn>,
}

/// The leading fields every ABI 1.x plugin table has (the 1.0 table): what
/// a host may read from any table of this major before checking
/// `struct_size` for the later ones.
#[repr(C)]
#[derive(Debug)]
pub struct PluginTableV1_0 {
    /// As [`PluginTable::abi_version`].
    pub abi_version: u32,
    /// As [`PluginTable::struct_size`].
    pub struct_size: u32,
    /// As [`PluginTable::describe`].
    pub describe: Option<DescribeFn>,
    /// As [`PluginTable::generate`].
    pub generate: Option<StepFn>,
    /// As [`PluginTable::set`].
    pub set: Option<StepFn>,
    /// As [`PluginTable::test`].
    pub test: Option<StepFn>,
    /// As [`PluginTable::finish`].
    pub finish: Option<StepFn>,
    /// As [`PluginTable::rollback`].
    pub rollback: Option<StepFn>,
    /// As [`PluginTable::free_buffer`].
    pub free_buffer: Option<FreeFn>,
}

// ------------------------------------------------------------ host handle

/// The host as a step sees it: logging, the deadline, and OpenAPI calls.
/// Valid only during the step it was given to.
#[derive(Debug)]
pub struct Host<'a> {
    table: Option<&'a HostTable>,
    ctx: *const c_void,
}

impl Host<'_> {
    fn has(&self, field_end: usize) -> Option<&HostTable> {
        self.table.filter(|t| {
            t.struct_size as usize >= field_end && abi_major(t.abi_version) == ABI_MAJOR
        })
    }

    /// Writes `message` to Rota's log at `level`, in the step's span. Never
    /// log secret values.
    pub fn log(&self, level: Level, message: &str) {
        if let Some(t) = self.has(std::mem::offset_of!(HostTable, log) + size_of::<LogFn>()) {
            // SAFETY: the host table comes from the host for this call and
            // covers `log` (checked above); `ctx` is the host's pointer for
            // this call; the message is a valid UTF-8 slice for the call.
            unsafe { (t.log)(self.ctx, level as u32, message.as_ptr(), message.len()) }
        }
    }

    /// Time left before the step's deadline.
    pub fn remaining(&self) -> Duration {
        match self
            .has(std::mem::offset_of!(HostTable, deadline_remaining_ms) + size_of::<RemainingFn>())
        {
            // SAFETY: as in `log`: the field is covered and `ctx` is this call's.
            Some(t) => Duration::from_millis(unsafe { (t.deadline_remaining_ms)(self.ctx) }),
            None => Duration::ZERO,
        }
    }

    /// Calls `action` of `product` (`version` empty: the one Rota knows)
    /// with `params`, through Rota's signed client on the configured
    /// backend. Allowed only for `Product:Action` pairs declared in the
    /// descriptor's `capabilities`.
    pub fn call_api(
        &self,
        product: &str,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Value, StepError> {
        let Some(t) = self.has(std::mem::offset_of!(HostTable, free_buffer) + size_of::<FreeFn>())
        else {
            return Err(StepError::Permanent("the host offers no call_api".into()));
        };
        let params: serde_json::Map<String, Value> = params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let req =
            json!({"product": product, "version": version, "action": action, "params": params})
                .to_string();
        let mut out = Buffer::empty();
        // SAFETY: the table covers `call_api` and `free_buffer` (checked
        // above); the request slice and `out` live across the call; `ctx` is
        // this call's pointer.
        let code = unsafe { (t.call_api)(self.ctx, req.as_ptr(), req.len(), &mut out) };
        // SAFETY: `out` is empty or the host's answer, valid until freed below.
        let bytes = unsafe { out.to_vec() };
        // SAFETY: `out` was allocated by the host, so it goes back to the
        // host's `free_buffer`, once.
        unsafe { (t.free_buffer)(out) };
        let text = String::from_utf8_lossy(&bytes);
        match code {
            status::OK => serde_json::from_slice(&bytes)
                .map_err(|e| StepError::Failed(format!("{product}:{action}: bad response: {e}"))),
            status::DENIED | status::PERMANENT | status::BAD_INPUT => {
                Err(StepError::Permanent(text.into_owned()))
            }
            _ => Err(StepError::Failed(text.into_owned())),
        }
    }
}

// ------------------------------------------------- plugin-side wrappers

/// The one instance of an exported plugin (implemented by
/// [`crate::export_plugin!`]).
pub trait Instance: NativePlugin {
    /// The instance, created on first use.
    fn instance() -> &'static Self;
}

/// The table [`crate::export_plugin!`] exports for `P`.
pub const fn plugin_table<P: Instance>(abi_version: u32) -> PluginTable {
    PluginTable {
        abi_version,
        struct_size: size_of::<PluginTable>() as u32,
        describe: Some(describe::<P>),
        generate: Some(step::<P, 0>),
        set: Some(step::<P, 1>),
        test: Some(step::<P, 2>),
        finish: Some(step::<P, 3>),
        rollback: Some(step::<P, 4>),
        free_buffer: Some(free_buffer),
        verify: if P::VERIFY { Some(step::<P, 5>) } else { None },
    }
}

unsafe extern "C" fn free_buffer(buf: Buffer) {
    // SAFETY: the ABI sends this function only buffers this plugin
    // allocated (with `Buffer::from_vec`), each once.
    unsafe { buf.free() }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Runs `f` under `catch_unwind` and writes its answer or error.
///
/// # Safety
///
/// `out` and `err` must each be null or valid for a write of a [`Buffer`].
unsafe fn guarded(
    out: *mut Buffer,
    err: *mut Buffer,
    f: impl FnOnce() -> Result<Vec<u8>, (Status, String)>,
) -> Status {
    let result = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err((
            status::PANICKED,
            format!("the plugin panicked: {}", panic_message(&*payload)),
        )),
    };
    let (code, out_bytes, err_bytes) = match result {
        Ok(bytes) => (status::OK, Some(bytes), None),
        Err((code, message)) => (code, None, Some(message.into_bytes())),
    };
    if let (false, Some(b)) = (out.is_null(), out_bytes) {
        // SAFETY: the caller guarantees a non-null `out` is writable.
        unsafe { out.write(Buffer::from_vec(b)) };
    }
    if let (false, Some(b)) = (err.is_null(), err_bytes) {
        // SAFETY: the caller guarantees a non-null `err` is writable.
        unsafe { err.write(Buffer::from_vec(b)) };
    }
    code
}

unsafe extern "C" fn describe<P: Instance>(out: *mut Buffer) -> Status {
    // SAFETY: the ABI requires `out` to be writable; there is no error buffer.
    unsafe {
        guarded(out, std::ptr::null_mut(), || {
            serde_json::to_vec(&P::describe()).map_err(|e| (status::PERMANENT, e.to_string()))
        })
    }
}

unsafe extern "C" fn step<P: Instance, const STEP: u8>(
    host: *const HostTable,
    ctx: *const c_void,
    input: *const u8,
    input_len: usize,
    out: *mut Buffer,
    err: *mut Buffer,
) -> Status {
    let bytes: &[u8] = if input.is_null() || input_len == 0 {
        &[]
    } else {
        // SAFETY: the ABI requires `input` to point at `input_len` bytes
        // that stay valid for the call.
        unsafe { std::slice::from_raw_parts(input, input_len) }
    };
    // SAFETY: the ABI requires `host` to be null or a host table valid for
    // the call (the host's lives as long as the process).
    let table = unsafe { host.as_ref() };
    let host = Host { table, ctx };
    // SAFETY: the ABI requires `out` and `err` to be writable.
    unsafe {
        guarded(out, err, || {
            let input: StepInput = serde_json::from_slice(bytes).map_err(|e| {
                (
                    status::BAD_INPUT,
                    format!("cannot decode the step input: {e}"),
                )
            })?;
            let plugin = P::instance();
            let done = |r: Result<(), StepError>| r.map(|()| b"{}".to_vec());
            let answer = match STEP {
                0 => plugin.generate(&input, &host).map(|v| {
                    json!({"value": v.as_ref().map(Secret::expose)})
                        .to_string()
                        .into_bytes()
                }),
                1 => done(plugin.set(&input, &host)),
                2 => done(plugin.test(&input, &host)),
                3 => done(plugin.finish(&input, &host)),
                4 => done(plugin.rollback(&input, &host)),
                _ => done(plugin.verify(&input, &host)),
            };
            answer.map_err(|e| match e {
                StepError::Failed(m) => (status::FAILED, m),
                StepError::Permanent(m) => (status::PERMANENT, m),
                StepError::Unsupported => (status::UNSUPPORTED, String::new()),
            })
        })
    }
}
