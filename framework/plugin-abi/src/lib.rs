//! valex-plugin-abi: the `#[repr(C)]` types, symbol names and constants of the data-only C ABI
//! between the valex host and run-time loaded plugin libraries (cdylibs).
//!
//! This crate is the ABI and nothing else: std only, no dependencies, no functions with
//! behaviour beyond trivial constructors. It is normative together with `docs/plugin-abi.md`;
//! any change to a type, symbol, constant or rule here bumps [`ABI_VERSION`] in the same
//! change. Plugin authors never use it directly (the SDK's `export_plugin!` generates the
//! exports); the host (`valex-plugin-host`) reads it.
//!
//! Only data crosses the boundary: numbers, `u32` codes checked against the constants below
//! (never a Rust `enum`), borrowed UTF-8 strings ([`VxStr`]), buffers freed by the side that
//! allocated them ([`VxBuf`]), borrowed tensor views ([`VxTensorView`]), opaque handles
//! ([`VxHandle`]) and `extern "C"` function pointers. Params, descriptions, results and errors
//! are JSON.

use std::ffi::{c_char, c_void};

/// The ABI version this crate describes. A library whose `valex_plugin_abi_version()` returns
/// another number is rejected before anything else of it is read.
pub const ABI_VERSION: u32 = 1;

/// Symbol of `extern "C" fn() -> u32` returning the library's ABI version. Its signature is
/// frozen forever; the host calls it first.
pub const SYMBOL_ABI_VERSION: &[u8] = b"valex_plugin_abi_version\0";

/// Symbol of `extern "C" fn() -> *const VxPluginV1` returning the library's table.
pub const SYMBOL_ENTRY: &[u8] = b"valex_plugin_entry\0";

/// Status: the call succeeded; outputs are set.
pub const VX_OK: u32 = 0;
/// Status: the call failed; `err` holds an error JSON object.
pub const VX_ERR: u32 = 1;
/// Status: the plugin panicked; `err` holds an error JSON object with the panic message. The
/// host poisons the instance (no further calls, not even `destroy`).
pub const VX_PANICKED: u32 = 2;

/// `invoke` method of a scorer: statistics in, per-neuron scores and neuron sets out.
pub const VX_METHOD_SCORE: u32 = 1;
/// `invoke` method of an intervention: a neuron set in, a neuron edit out.
pub const VX_METHOD_EDIT: u32 = 2;
/// `invoke` method of a reporter: the results document in, files out.
pub const VX_METHOD_REPORT: u32 = 3;

/// Tensor element type: little-endian IEEE 754 `f64`.
pub const VX_DTYPE_F64: u32 = 1;
/// Tensor element type: little-endian IEEE 754 `f32`.
pub const VX_DTYPE_F32: u32 = 2;
/// Tensor element type: `u32`.
pub const VX_DTYPE_U32: u32 = 3;
/// Tensor element type: `i64`.
pub const VX_DTYPE_I64: u32 = 4;

/// Most dimensions a [`VxTensorView`] can have.
pub const VX_MAX_RANK: usize = 8;

/// Log level `error` (for [`VxHostV1::log`] and [`VxHostV1::max_level`]).
pub const VX_LOG_ERROR: u32 = 1;
/// Log level `warn`.
pub const VX_LOG_WARN: u32 = 2;
/// Log level `info`.
pub const VX_LOG_INFO: u32 = 3;
/// Log level `debug`.
pub const VX_LOG_DEBUG: u32 = 4;
/// Log level `trace`.
pub const VX_LOG_TRACE: u32 = 5;

/// A borrowed UTF-8 string: valid for the duration of one call, owned by the caller, not
/// NUL-terminated. `ptr` may be dangling when `len` is 0.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VxStr {
    /// First byte.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl VxStr {
    /// Borrows `s` for one call. The caller keeps `s` alive until the call returns.
    pub fn new(s: &str) -> Self {
        VxStr {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }
}

/// A buffer allocated by one side and freed only by that side: a plugin's `out`/`err`
/// buffers are freed with its [`VxPluginV1::free_buf`]. The empty buffer has a null `ptr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VxBuf {
    /// First byte (null when empty).
    pub ptr: *mut u8,
    /// Bytes in use.
    pub len: usize,
    /// Bytes allocated (the allocator needs it to free the buffer).
    pub cap: usize,
}

impl VxBuf {
    /// The empty buffer (null pointer); freeing it does nothing.
    pub const EMPTY: VxBuf = VxBuf {
        ptr: std::ptr::null_mut(),
        len: 0,
        cap: 0,
    };
}

/// A borrowed, contiguous, row-major tensor: valid for the duration of one call.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VxTensorView {
    /// Element type, one of the `VX_DTYPE_*` constants.
    pub dtype: u32,
    /// Number of dimensions in use (at most [`VX_MAX_RANK`]).
    pub rank: u32,
    /// Sizes of the first `rank` dimensions; the rest are 0.
    pub shape: [u64; VX_MAX_RANK],
    /// First element, aligned for `dtype`.
    pub data: *const u8,
    /// Bytes at `data`: the product of the shape times the element size.
    pub byte_len: u64,
}

/// An opaque instance handle returned by `create`; 0 is never a valid handle.
#[repr(transparent)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VxHandle(pub u64);

/// The host's log callback: `(ctx, level, target, message)`; `ctx` is [`VxHostV1::log_ctx`].
pub type VxLogFn =
    unsafe extern "C" fn(ctx: *mut c_void, level: u32, target: VxStr, message: VxStr);

/// What the host hands to `init`: its callbacks. Valid for the life of the process.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VxHostV1 {
    /// [`ABI_VERSION`] of the host (first field, never moves).
    pub abi_version: u32,
    /// `size_of::<VxHostV1>()` of the host (fields are only ever appended).
    pub struct_size: u32,
    /// Most verbose level the host wants (`VX_LOG_*`); more verbose events may be dropped.
    pub max_level: u32,
    /// Opaque pointer the plugin passes back to `log` unchanged.
    pub log_ctx: *mut c_void,
    /// Forwards one log event; thread-safe; never unwinds.
    pub log: VxLogFn,
}

/// `init(host, err) -> status`: called once, after the version and table checks and before
/// `describe`.
pub type VxInitFn = unsafe extern "C" fn(host: *const VxHostV1, err: *mut VxBuf) -> u32;
/// `describe(out, err) -> status`: `out` receives the description JSON.
pub type VxDescribeFn = unsafe extern "C" fn(out: *mut VxBuf, err: *mut VxBuf) -> u32;
/// `create(id, params_json, out_handle, err) -> status`: builds an instance of component `id`.
/// Must be thread-safe.
pub type VxCreateFn = unsafe extern "C" fn(
    id: VxStr,
    params_json: VxStr,
    out_handle: *mut VxHandle,
    err: *mut VxBuf,
) -> u32;
/// `invoke(h, method, input_json, tensors, n_tensors, out, err) -> status`: calls `method`
/// (`VX_METHOD_*`) on instance `h`. The host calls one instance from one thread at a time.
pub type VxInvokeFn = unsafe extern "C" fn(
    h: VxHandle,
    method: u32,
    input_json: VxStr,
    tensors: *const VxTensorView,
    n_tensors: usize,
    out: *mut VxBuf,
    err: *mut VxBuf,
) -> u32;
/// `destroy(h)`: drops instance `h`. Never called on a poisoned instance.
pub type VxDestroyFn = unsafe extern "C" fn(h: VxHandle);
/// `free_buf(buf)`: frees a buffer the plugin allocated.
pub type VxFreeBufFn = unsafe extern "C" fn(buf: VxBuf);

/// The table `valex_plugin_entry()` returns: `'static` for the life of the process.
/// Fields are only ever appended; `abi_version` and `struct_size` never move.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VxPluginV1 {
    /// [`ABI_VERSION`] the library was built for (first field, never moves).
    pub abi_version: u32,
    /// `size_of::<VxPluginV1>()` in the library.
    pub struct_size: u32,
    /// NUL-terminated library name, e.g. `valex-plugin-example`.
    pub plugin_name: *const c_char,
    /// NUL-terminated library version (semver).
    pub plugin_version: *const c_char,
    /// NUL-terminated version of `valex-plugin-sdk` the library was built with.
    pub sdk_version: *const c_char,
    /// NUL-terminated `rustc --version` of the build (logged only).
    pub rustc_version: *const c_char,
    /// See [`VxInitFn`].
    pub init: VxInitFn,
    /// See [`VxDescribeFn`].
    pub describe: VxDescribeFn,
    /// See [`VxCreateFn`].
    pub create: VxCreateFn,
    /// See [`VxInvokeFn`].
    pub invoke: VxInvokeFn,
    /// See [`VxDestroyFn`].
    pub destroy: VxDestroyFn,
    /// See [`VxFreeBufFn`].
    pub free_buf: VxFreeBufFn,
}

/// Byte size of one element of `dtype`, or `None` for an unknown code.
pub fn dtype_size(dtype: u32) -> Option<usize> {
    match dtype {
        VX_DTYPE_F64 | VX_DTYPE_I64 => Some(8),
        VX_DTYPE_F32 | VX_DTYPE_U32 => Some(4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_the_documented_ones_on_64_bit() {
        // docs/plugin-abi.md lists these sizes; a change here is an ABI change.
        if size_of::<usize>() == 8 {
            assert_eq!(size_of::<VxStr>(), 16);
            assert_eq!(size_of::<VxBuf>(), 24);
            assert_eq!(size_of::<VxTensorView>(), 88);
            assert_eq!(size_of::<VxHandle>(), 8);
            assert_eq!(size_of::<VxHostV1>(), 32);
            assert_eq!(size_of::<VxPluginV1>(), 88);
            assert_eq!(std::mem::offset_of!(VxPluginV1, abi_version), 0);
            assert_eq!(std::mem::offset_of!(VxPluginV1, struct_size), 4);
        }
    }

    #[test]
    fn dtype_sizes_cover_every_code() {
        assert_eq!(dtype_size(VX_DTYPE_F64), Some(8));
        assert_eq!(dtype_size(VX_DTYPE_F32), Some(4));
        assert_eq!(dtype_size(VX_DTYPE_U32), Some(4));
        assert_eq!(dtype_size(VX_DTYPE_I64), Some(8));
        assert_eq!(dtype_size(0), None);
    }

    #[test]
    fn symbols_are_nul_terminated() {
        assert_eq!(SYMBOL_ABI_VERSION.last(), Some(&0));
        assert_eq!(SYMBOL_ENTRY.last(), Some(&0));
    }
}
