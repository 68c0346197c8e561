//! The runtime behind `export_plugin!`: the `extern "C"` functions of the plugin table.
//! Not for direct use; public only so the macro can reach it.
//!
//! Every function catches panics (status 2 with the message), checks its pointers, copies
//! borrowed inputs before use, and hands out buffers that only [`vx_free_buf`] frees.
//! Instances live in a map keyed by handle; each instance has its own lock, so one instance
//! runs on one thread at a time while `create` stays thread-safe.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde_json::Value;
use valex_plugin_abi::{
    VX_ERR, VX_MAX_RANK, VX_METHOD_EDIT, VX_METHOD_REPORT, VX_METHOD_SCORE, VX_OK, VX_PANICKED,
    VxBuf, VxHandle, VxHostV1, VxStr, VxTensorView, dtype_size,
};

use crate::codec::{self, TensorRef};
use crate::component::{
    ComponentFactory, InterventionComponent, PluginError, PluginSpec, ReporterComponent,
    ScorerComponent,
};
use crate::forward;

pub use valex_plugin_abi::VxPluginV1;

/// The plugin table as a `static`: its raw pointers point at `'static` C strings.
#[repr(transparent)]
pub struct Table(pub VxPluginV1);

// SAFETY: the table is immutable, and its pointers are `'static` NUL-terminated strings and
// `extern "C"` functions, all safe to share between threads.
unsafe impl Sync for Table {}

const SDK_VERSION_C: &CStr = cstr(concat!(env!("CARGO_PKG_VERSION"), "\0"));
const RUSTC_VERSION_C: &CStr = cstr(concat!(env!("VALEX_SDK_RUSTC_VERSION"), "\0"));

/// A `&'static CStr` from a literal ending in `\0` (for the macro, at compile time).
///
/// # Panics
/// At compile time, when `s` has an interior NUL or none at the end.
pub const fn cstr(s: &'static str) -> &'static CStr {
    match CStr::from_bytes_with_nul(s.as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("plugin names and versions must not contain NUL bytes"),
    }
}

impl Table {
    /// The table of a plugin named `name`, version `version`, speaking `abi_version`.
    pub const fn new(abi_version: u32, name: &'static CStr, version: &'static CStr) -> Table {
        Table(VxPluginV1 {
            abi_version,
            struct_size: size_of::<VxPluginV1>() as u32,
            plugin_name: name.as_ptr(),
            plugin_version: version.as_ptr(),
            sdk_version: SDK_VERSION_C.as_ptr(),
            rustc_version: RUSTC_VERSION_C.as_ptr(),
            init: vx_init,
            describe: vx_describe,
            create: vx_create,
            invoke: vx_invoke,
            destroy: vx_destroy,
            free_buf: vx_free_buf,
        })
    }
}

static SPEC: OnceLock<&'static PluginSpec> = OnceLock::new();

/// What `valex_plugin_entry` returns: remembers the spec, hands out the table.
pub fn entry(spec: &'static PluginSpec, table: &'static Table) -> *const VxPluginV1 {
    let _ = SPEC.set(spec);
    &table.0
}

enum Instance {
    Scorer(Box<dyn ScorerComponent>),
    Intervention(Box<dyn InterventionComponent>),
    Reporter(Box<dyn ReporterComponent>),
}

type Instances = Mutex<BTreeMap<u64, Arc<Mutex<Instance>>>>;

fn instances() -> &'static Instances {
    static I: OnceLock<Instances> = OnceLock::new();
    I.get_or_init(|| Mutex::new(BTreeMap::new()))
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

fn spec() -> Result<&'static PluginSpec, PluginError> {
    SPEC.get().copied().ok_or_else(|| {
        PluginError::new(
            "plugin.not_initialised",
            "valex_plugin_entry was not called before this function",
        )
    })
}

/// Moves `bytes` into a buffer the host frees with `free_buf`.
fn into_buf(bytes: Vec<u8>) -> VxBuf {
    let mut bytes = std::mem::ManuallyDrop::new(bytes);
    VxBuf {
        ptr: bytes.as_mut_ptr(),
        len: bytes.len(),
        cap: bytes.capacity(),
    }
}

/// Writes `bytes` to `*out` when `out` is not null.
fn write_buf(out: *mut VxBuf, bytes: Vec<u8>) {
    if out.is_null() {
        return;
    }
    // SAFETY: the caller passes a valid, writable `VxBuf` pointer or null (checked above).
    unsafe { out.write(into_buf(bytes)) };
}

/// Runs `f`, turning its error into status 1 and a panic into status 2, both with JSON in
/// `err`.
fn guard(err: *mut VxBuf, f: impl FnOnce() -> Result<(), PluginError>) -> u32 {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => VX_OK,
        Ok(Err(e)) => {
            write_buf(err, e.to_json());
            VX_ERR
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned());
            let message = match forward::take_panic_location() {
                Some(at) => format!("{what} (at {at})"),
                None => what,
            };
            write_buf(err, PluginError::new("plugin.panicked", message).to_json());
            VX_PANICKED
        }
    }
}

/// Copies a borrowed string.
///
/// # Safety
/// `s.ptr` must point at `s.len` readable bytes (or `s.len` is 0).
unsafe fn read_str(s: VxStr, what: &str) -> Result<String, PluginError> {
    if s.len == 0 {
        return Ok(String::new());
    }
    if s.ptr.is_null() {
        return Err(PluginError::new(
            "plugin.bad_input",
            format!("{what}: null pointer"),
        ));
    }
    // SAFETY: guaranteed by the caller (the ABI's rule for `VxStr`).
    let bytes = unsafe { std::slice::from_raw_parts(s.ptr, s.len) };
    String::from_utf8(bytes.to_vec())
        .map_err(|_| PluginError::new("plugin.bad_input", format!("{what}: not UTF-8")))
}

fn parse_json(text: &str, what: &str) -> Result<Value, PluginError> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text)
        .map_err(|e| PluginError::new("plugin.bad_input", format!("{what}: invalid JSON: {e}")))
}

/// `init(host, err)`.
unsafe extern "C" fn vx_init(host: *const VxHostV1, err: *mut VxBuf) -> u32 {
    guard(err, || {
        if host.is_null() {
            return Err(PluginError::new("plugin.bad_input", "init: host is null"));
        }
        // SAFETY: non-null (checked); the host passes a valid `VxHostV1` that it keeps alive.
        let h = unsafe { host.read() };
        if (h.struct_size as usize) < size_of::<VxHostV1>() {
            return Err(PluginError::new(
                "plugin.host_too_old",
                format!(
                    "host table is {} bytes, this SDK needs {}",
                    h.struct_size,
                    size_of::<VxHostV1>()
                ),
            ));
        }
        forward::install(h);
        Ok(())
    })
}

/// `describe(out, err)`.
unsafe extern "C" fn vx_describe(out: *mut VxBuf, err: *mut VxBuf) -> u32 {
    guard(err, || {
        let doc = spec()?.describe();
        write_buf(out, serde_json::to_vec(&doc).unwrap_or_default());
        Ok(())
    })
}

/// `create(id, params_json, out_handle, err)`.
unsafe extern "C" fn vx_create(
    id: VxStr,
    params_json: VxStr,
    out_handle: *mut VxHandle,
    err: *mut VxBuf,
) -> u32 {
    guard(err, || {
        // SAFETY: the host passes borrowed strings valid for this call (ABI rule).
        let id = unsafe { read_str(id, "create: id") }?;
        // SAFETY: as above.
        let params = unsafe { read_str(params_json, "create: params") }?;
        let params = parse_json(&params, "create: params")?;
        let c = spec()?.component(&id).ok_or_else(|| {
            PluginError::new(
                "plugin.unknown_component",
                format!("no component {id} in this library"),
            )
        })?;
        let kind = c.factory.kind();
        let with_kind = |mut e: PluginError| {
            if !e.code.contains('.') {
                e.code = format!("{kind}.{}", e.code);
            }
            e
        };
        let instance = match c.factory {
            ComponentFactory::Scorer(f) => Instance::Scorer(f(&params).map_err(with_kind)?),
            ComponentFactory::Intervention(f) => {
                Instance::Intervention(f(&params).map_err(with_kind)?)
            }
            ComponentFactory::Reporter(f) => Instance::Reporter(f(&params).map_err(with_kind)?),
        };
        if out_handle.is_null() {
            return Err(PluginError::new(
                "plugin.bad_input",
                "create: out_handle is null",
            ));
        }
        let h = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        instances()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(h, Arc::new(Mutex::new(instance)));
        // SAFETY: non-null (checked); the host passes a writable handle slot.
        unsafe { out_handle.write(VxHandle(h)) };
        Ok(())
    })
}

/// Checks and borrows the tensor views of one call.
///
/// # Safety
/// `tensors` points at `n` views (or `n` is 0), each with `byte_len` readable bytes at
/// `data`, valid for the call.
unsafe fn tensor_refs<'a>(
    tensors: *const VxTensorView,
    n: usize,
) -> Result<Vec<TensorRef<'a>>, PluginError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if tensors.is_null() {
        return Err(PluginError::new(
            "plugin.bad_input",
            "invoke: tensors is null",
        ));
    }
    // SAFETY: guaranteed by the caller.
    let views = unsafe { std::slice::from_raw_parts(tensors, n) };
    let mut out = Vec::with_capacity(n);
    for (i, v) in views.iter().enumerate() {
        let bad = |m: String| PluginError::new("plugin.bad_input", format!("tensor {i}: {m}"));
        let size = dtype_size(v.dtype).ok_or_else(|| bad(format!("unknown dtype {}", v.dtype)))?;
        let rank = v.rank as usize;
        if rank > VX_MAX_RANK {
            return Err(bad(format!("rank {rank} exceeds {VX_MAX_RANK}")));
        }
        let shape = &v.shape[..rank];
        let elems = shape.iter().try_fold(1u64, |a, &d| a.checked_mul(d));
        if elems.and_then(|e| e.checked_mul(size as u64)) != Some(v.byte_len) {
            return Err(bad(format!(
                "byte_len {} does not match shape {shape:?}",
                v.byte_len
            )));
        }
        let len = usize::try_from(v.byte_len).map_err(|_| bad("too large".to_owned()))?;
        let bytes = if len == 0 {
            &[][..]
        } else if v.data.is_null() {
            return Err(bad("data is null".to_owned()));
        } else {
            // SAFETY: guaranteed by the caller: `byte_len` readable bytes at `data`.
            unsafe { std::slice::from_raw_parts(v.data, len) }
        };
        out.push(TensorRef {
            dtype: v.dtype,
            shape,
            bytes,
        });
    }
    Ok(out)
}

/// `invoke(h, method, input_json, tensors, n, out, err)`.
unsafe extern "C" fn vx_invoke(
    h: VxHandle,
    method: u32,
    input_json: VxStr,
    tensors: *const VxTensorView,
    n_tensors: usize,
    out: *mut VxBuf,
    err: *mut VxBuf,
) -> u32 {
    guard(err, || {
        // SAFETY: the host passes a borrowed string valid for this call (ABI rule).
        let input = unsafe { read_str(input_json, "invoke: input") }?;
        let input = parse_json(&input, "invoke: input")?;
        // SAFETY: the host passes `n_tensors` views valid for this call (ABI rule).
        let tensors = unsafe { tensor_refs(tensors, n_tensors) }?;
        let instance = instances()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&h.0)
            .cloned()
            .ok_or_else(|| PluginError::new("plugin.bad_handle", format!("no instance {}", h.0)))?;
        let mut instance = instance.lock().map_err(|_| {
            PluginError::new(
                "plugin.poisoned",
                "the instance panicked before and cannot be used",
            )
        })?;
        let result = match (method, &mut *instance) {
            (VX_METHOD_SCORE, Instance::Scorer(s)) => {
                let (stats, labels, want_scores) = codec::decode_score_input(&input, &tensors)?;
                let o = s.score(&stats, &labels)?;
                codec::encode_score_output(&o, want_scores)
            }
            (VX_METHOD_EDIT, Instance::Intervention(i)) => {
                let (set, tap, model) = codec::decode_edit_input(&input)?;
                codec::encode_edit_output(&i.edit(&set, &tap, &model)?)?
            }
            (VX_METHOD_REPORT, Instance::Reporter(r)) => {
                let results = codec::decode_report_input(&input)?;
                codec::encode_report_output(&r.report(results)?)?
            }
            (m, _) => {
                return Err(PluginError::new(
                    "plugin.bad_method",
                    format!("method {m} is not supported by this instance"),
                ));
            }
        };
        write_buf(out, serde_json::to_vec(&result).unwrap_or_default());
        Ok(())
    })
}

/// `destroy(h)`.
unsafe extern "C" fn vx_destroy(h: VxHandle) {
    let _ = catch_unwind(|| {
        instances()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&h.0);
    });
}

/// `free_buf(buf)`.
unsafe extern "C" fn vx_free_buf(buf: VxBuf) {
    if buf.ptr.is_null() {
        return;
    }
    let _ = catch_unwind(|| {
        // SAFETY: `buf` came from `into_buf` in this library (ABI rule: each side frees only
        // what it allocated), so it is a leaked `Vec<u8>` with exactly this ptr/len/cap.
        drop(unsafe { Vec::from_raw_parts(buf.ptr, buf.len, buf.cap) });
    });
}
