//! One loaded plugin library: the load sequence (docs/plugin-abi.md, "Load sequence") and
//! the raw calls into its table, which copy every returned buffer and free it at once.
//!
//! Libraries are never unloaded: the `Library` is leaked, so the table's function pointers
//! stay valid for the life of the process (and no proxy can outlive its code).

use std::ffi::{CStr, c_char, c_void};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use valex_core::ComponentId;
use valex_plugin_abi::{
    ABI_VERSION, SYMBOL_ABI_VERSION, SYMBOL_ENTRY, VX_ERR, VX_LOG_DEBUG, VX_LOG_ERROR, VX_LOG_INFO,
    VX_LOG_TRACE, VX_LOG_WARN, VX_OK, VX_PANICKED, VxBuf, VxHandle, VxHostV1, VxPluginV1, VxStr,
    VxTensorView,
};

use crate::error::{PluginError, PluginLoadError};
use crate::log::{LogContext, host_log};
use crate::worker::{DEFAULT_CALL_TIMEOUT, OwnedTensors, run_with_timeout};

/// What `valex plugins` and run.json record about a loaded library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LibraryInfo {
    /// The path as given (manifest-relative paths already joined to the manifest's folder).
    pub path: PathBuf,
    /// `plugin_name` of the table.
    pub name: String,
    /// `plugin_version` of the table.
    pub version: String,
    /// The library's ABI version (equal to this host's once loaded).
    pub abi_version: u32,
    /// The valex-plugin-sdk version it was built with.
    pub sdk_version: String,
    /// `rustc --version` of its build.
    pub rustc_version: String,
    /// sha256 (hex) of the library file.
    pub sha256: String,
}

/// One component as `describe()` declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentDecl {
    /// `kind/name`.
    pub id: String,
    /// `scorer`, `intervention` or `reporter`.
    pub kind: String,
    /// Component version.
    pub version: String,
    /// One line.
    #[serde(default)]
    pub summary: String,
}

#[derive(Deserialize)]
struct Description {
    components: Vec<ComponentDecl>,
}

/// A loaded, initialised library.
#[derive(Debug)]
pub struct LoadedLibrary {
    info: LibraryInfo,
    components: Vec<ComponentDecl>,
    table: VxPluginV1,
    /// How long one `create` or `invoke` may take (see `worker.rs`).
    call_timeout: Duration,
}

// SAFETY: the table holds `'static` strings and `extern "C"` functions of a library that is
// never unloaded; `create` is thread-safe by the ABI, and each instance is called from one
// thread at a time (the proxies hold a mutex).
unsafe impl Send for LoadedLibrary {}
// SAFETY: as above; the struct is immutable after loading.
unsafe impl Sync for LoadedLibrary {}

/// Kinds a plugin component may have.
const PLUGIN_KINDS: [&str; 3] = ["scorer", "intervention", "reporter"];

/// The SDK series this host accepts: `0.1` for 0.1.x, `1` for 1.x.
pub(crate) fn sdk_series(version: &str) -> String {
    let mut parts = version.split(['.', '-', '+']);
    let major = parts.next().unwrap_or("0");
    if major == "0" {
        format!("0.{}", parts.next().unwrap_or("0"))
    } else {
        major.to_owned()
    }
}

/// Copies a NUL-terminated table string.
///
/// # Safety
/// `p` is null or points at a NUL-terminated string that lives for the call.
unsafe fn table_str(p: *const c_char, field: &str) -> Result<String, String> {
    if p.is_null() {
        return Err(format!("{field} is null"));
    }
    // SAFETY: non-null (checked); NUL-terminated by the caller's guarantee.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str()
        .map(str::to_owned)
        .map_err(|_| format!("{field} is not UTF-8"))
}

fn sha256_file(path: &Path) -> Result<String, std::io::Error> {
    use sha2::Digest;
    let bytes = std::fs::read(path)?;
    Ok(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// The host's most verbose wanted level, as a `VX_LOG_*` code (0 = none).
fn max_log_level() -> u32 {
    use tracing::level_filters::LevelFilter;
    match LevelFilter::current() {
        LevelFilter::OFF => 0,
        LevelFilter::ERROR => VX_LOG_ERROR,
        LevelFilter::WARN => VX_LOG_WARN,
        LevelFilter::INFO => VX_LOG_INFO,
        LevelFilter::DEBUG => VX_LOG_DEBUG,
        _ => VX_LOG_TRACE,
    }
}

impl LoadedLibrary {
    /// Runs the load sequence on `path`: read (sha256), dlopen, ABI version probe, table size
    /// and SDK checks, `init`, `describe` and the component checks.
    ///
    /// # Errors
    /// One [`PluginLoadError`] variant per failed step, each naming `path`.
    pub fn load(path: &Path) -> Result<LoadedLibrary, PluginLoadError> {
        let p = path.to_path_buf();
        let sha256 = sha256_file(path).map_err(|source| PluginLoadError::Unreadable {
            path: p.clone(),
            source,
        })?;
        // A bare file name would make dlopen search the system folders: always pass a path.
        let fs_path =
            std::fs::canonicalize(path).map_err(|source| PluginLoadError::Unreadable {
                path: p.clone(),
                source,
            })?;
        // SAFETY: loading runs the library's initialisers. The manifest author chose this
        // library (the trust boundary, docs/plugin-abi.md); it is never unloaded (leaked below).
        let lib = unsafe { libloading::Library::new(&fs_path) }.map_err(|source| {
            PluginLoadError::Open {
                path: p.clone(),
                source,
            }
        })?;
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        let missing = |symbol: &[u8]| PluginLoadError::MissingSymbol {
            path: p.clone(),
            symbol: String::from_utf8_lossy(&symbol[..symbol.len() - 1]).into_owned(),
        };
        // SAFETY: the ABI freezes this symbol's signature forever: `extern "C" fn() -> u32`.
        let version_fn = unsafe { lib.get::<unsafe extern "C" fn() -> u32>(SYMBOL_ABI_VERSION) }
            .map_err(|_| missing(SYMBOL_ABI_VERSION))?;
        // SAFETY: as above; the function takes nothing and returns a number.
        let found = unsafe { version_fn() };
        let mismatch = |found| PluginLoadError::AbiMismatch {
            path: p.clone(),
            found,
            expected: ABI_VERSION,
            sdk: sdk_series(valex_core::VALEX_VERSION),
        };
        if found != ABI_VERSION {
            return Err(mismatch(found));
        }
        // SAFETY: ABI v1 (checked above) defines this symbol as `fn() -> *const VxPluginV1`.
        let entry = unsafe { lib.get::<unsafe extern "C" fn() -> *const VxPluginV1>(SYMBOL_ENTRY) }
            .map_err(|_| missing(SYMBOL_ENTRY))?;
        // SAFETY: as above.
        let table_ptr = unsafe { entry() };
        let too_small = |found| PluginLoadError::TableTooSmall {
            path: p.clone(),
            found,
            expected: size_of::<VxPluginV1>() as u32,
        };
        if table_ptr.is_null() {
            return Err(too_small(0));
        }
        // SAFETY: non-null; every table starts with `abi_version: u32, struct_size: u32`
        // (fields that never move), so reading those two is valid whatever its size.
        let (abi, size) = unsafe {
            let head = table_ptr.cast::<u32>();
            (head.read(), head.add(1).read())
        };
        if abi != ABI_VERSION {
            return Err(mismatch(abi));
        }
        if (size as usize) < size_of::<VxPluginV1>() {
            return Err(too_small(size));
        }
        // SAFETY: the library declares (struct_size, checked) a table at least this large.
        let table = unsafe { table_ptr.read() };
        let malformed = |step: &str, message: String| PluginLoadError::Malformed {
            path: p.clone(),
            step: step.to_owned(),
            message,
        };
        let strings = (|| -> Result<[String; 4], String> {
            // SAFETY: the ABI requires NUL-terminated `'static` strings (null is checked).
            unsafe {
                Ok([
                    table_str(table.plugin_name, "plugin_name")?,
                    table_str(table.plugin_version, "plugin_version")?,
                    table_str(table.sdk_version, "sdk_version")?,
                    table_str(table.rustc_version, "rustc_version")?,
                ])
            }
        })()
        .map_err(|m| malformed("table", m))?;
        let [name, version, sdk_version, rustc_version] = strings;
        let host_series = sdk_series(valex_core::VALEX_VERSION);
        if sdk_series(&sdk_version) != host_series {
            return Err(PluginLoadError::SdkIncompatible {
                path: p.clone(),
                found: sdk_version,
                expected: valex_core::VALEX_VERSION.to_owned(),
            });
        }
        tracing::debug!(plugin = %name, path = %path.display(), version = %version,
            sdk = %sdk_version, rustc = %rustc_version, "plugin library opened");

        let lib_info = LibraryInfo {
            path: p.clone(),
            name: name.clone(),
            version,
            abi_version: found,
            sdk_version,
            rustc_version,
            sha256,
        };
        let mut loaded = LoadedLibrary {
            info: lib_info,
            components: Vec::new(),
            table,
            call_timeout: DEFAULT_CALL_TIMEOUT,
        };
        // Leaked: the plugin keeps these pointers for the life of the process.
        let ctx: &'static LogContext = Box::leak(Box::new(LogContext { plugin: name }));
        let host: &'static VxHostV1 = Box::leak(Box::new(VxHostV1 {
            abi_version: ABI_VERSION,
            struct_size: size_of::<VxHostV1>() as u32,
            max_level: max_log_level(),
            log_ctx: std::ptr::from_ref(ctx).cast_mut().cast::<c_void>(),
            log: host_log,
        }));
        let mut err = VxBuf::EMPTY;
        // SAFETY: `init` has the ABI's signature; `host` and `err` are valid for the call.
        let status = unsafe { (table.init)(host, &mut err) };
        loaded
            .expect_ok(status, VxBuf::EMPTY, err, "(library)")
            .map_err(|e| malformed("init", e.to_string()))?;
        let (mut out, mut err) = (VxBuf::EMPTY, VxBuf::EMPTY);
        // SAFETY: `describe` has the ABI's signature; both buffers are valid for the call.
        let status = unsafe { (table.describe)(&mut out, &mut err) };
        let doc = loaded
            .expect_ok(status, out, err, "(library)")
            .map_err(|e| malformed("describe", e.to_string()))?;
        loaded.components = check_description(&p, &doc)?;
        Ok(loaded)
    }

    /// Facts about the library.
    pub fn info(&self) -> &LibraryInfo {
        &self.info
    }

    /// The components it declares.
    pub fn components(&self) -> &[ComponentDecl] {
        &self.components
    }

    /// Sets how long one call into the library (`create`, `score`, `edit`, `report`) may
    /// take before the host gives up on it ([`PluginError::TimedOut`]).
    #[must_use]
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long one call may take (default [`DEFAULT_CALL_TIMEOUT`]).
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    fn timed_out(&self, component: &str, method: &str) -> PluginError {
        PluginError::TimedOut {
            plugin: self.label(),
            component: component.to_owned(),
            method: method.to_owned(),
            timeout: self.call_timeout,
        }
    }

    /// The library path as text, for messages.
    pub(crate) fn label(&self) -> String {
        self.info.path.display().to_string()
    }

    /// Copies a buffer the plugin allocated and frees it with the plugin's `free_buf`.
    fn take(&self, buf: VxBuf) -> Vec<u8> {
        if buf.ptr.is_null() {
            return Vec::new();
        }
        // SAFETY: the plugin allocated `buf` for this call and hands it over; `len` bytes are
        // readable until we call its `free_buf`, right below.
        let bytes = unsafe { std::slice::from_raw_parts(buf.ptr, buf.len) }.to_vec();
        // SAFETY: returning the plugin's own buffer to the plugin's deallocator, once.
        unsafe { (self.table.free_buf)(buf) };
        bytes
    }

    /// Turns a call's status and buffers into the output bytes or a [`PluginError`].
    fn expect_ok(
        &self,
        status: u32,
        out: VxBuf,
        err: VxBuf,
        component: &str,
    ) -> Result<Vec<u8>, PluginError> {
        let out = self.take(out);
        let err = self.take(err);
        let (plugin, component) = (self.label(), component.to_owned());
        match status {
            VX_OK => Ok(out),
            VX_ERR | VX_PANICKED => {
                let e: ErrorJson = parse_error_json(&err).unwrap_or_else(|| ErrorJson {
                    code: "plugin.malformed_error".to_owned(),
                    message: format!(
                        "error JSON is invalid: {}",
                        String::from_utf8_lossy(&err)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ),
                    help: None,
                });
                Err(if status == VX_PANICKED {
                    PluginError::Panicked {
                        plugin,
                        component,
                        message: e.message,
                    }
                } else {
                    PluginError::Failed {
                        plugin,
                        component,
                        code: e.code,
                        message: e.message,
                        help: e.help,
                    }
                })
            }
            other => Err(PluginError::Malformed {
                plugin,
                component,
                message: format!("unknown status {other}"),
            }),
        }
    }

    /// `create(id, params)` on a worker thread, waiting at most the call timeout.
    pub(crate) fn create(
        self: &Arc<Self>,
        id: &str,
        params: &serde_json::Value,
    ) -> Result<VxHandle, PluginError> {
        let _span = tracing::debug_span!("plugin_call", plugin = %self.info.name, component = id, method = "create").entered();
        let (lib, id_owned, params) = (Arc::clone(self), id.to_owned(), params.to_string());
        run_with_timeout(self.call_timeout, move || {
            lib.create_now(&id_owned, &params)
        })
        .unwrap_or_else(|| Err(self.timed_out(id, "create")))
    }

    fn create_now(&self, id: &str, params: &str) -> Result<VxHandle, PluginError> {
        let mut handle = VxHandle(0);
        let mut err = VxBuf::EMPTY;
        // SAFETY: `create` has the ABI's signature; the strings, handle slot and error buffer
        // are valid for the call.
        let status = unsafe {
            (self.table.create)(VxStr::new(id), VxStr::new(params), &mut handle, &mut err)
        };
        self.expect_ok(status, VxBuf::EMPTY, err, id)?;
        if handle.0 == 0 {
            return Err(PluginError::Malformed {
                plugin: self.label(),
                component: id.to_owned(),
                message: "create returned handle 0".to_owned(),
            });
        }
        Ok(handle)
    }

    /// `invoke(h, method, input, tensors)` on a worker thread, waiting at most the call
    /// timeout: the output JSON bytes. The worker gets copies of `input` and the tensor data,
    /// so an abandoned call never reads the caller's memory.
    pub(crate) fn invoke(
        self: &Arc<Self>,
        handle: VxHandle,
        component: &str,
        method: u32,
        input: &str,
        tensors: &[VxTensorView],
    ) -> Result<Vec<u8>, PluginError> {
        let _span =
            tracing::debug_span!("plugin_call", plugin = %self.info.name, component, method)
                .entered();
        let (lib, component_owned, input) =
            (Arc::clone(self), component.to_owned(), input.to_owned());
        let tensors = OwnedTensors::copy(tensors);
        run_with_timeout(self.call_timeout, move || {
            lib.invoke_now(handle, &component_owned, method, &input, tensors.views())
        })
        .unwrap_or_else(|| Err(self.timed_out(component, method_name(method))))
    }

    fn invoke_now(
        &self,
        handle: VxHandle,
        component: &str,
        method: u32,
        input: &str,
        tensors: &[VxTensorView],
    ) -> Result<Vec<u8>, PluginError> {
        let (mut out, mut err) = (VxBuf::EMPTY, VxBuf::EMPTY);
        // SAFETY: `invoke` has the ABI's signature; the input string and tensor views borrow
        // memory that outlives the call; the buffers are valid for writing.
        let status = unsafe {
            (self.table.invoke)(
                handle,
                method,
                VxStr::new(input),
                tensors.as_ptr(),
                tensors.len(),
                &mut out,
                &mut err,
            )
        };
        self.expect_ok(status, out, err, component)
    }

    /// `destroy(h)`; never called for a poisoned instance.
    pub(crate) fn destroy(&self, handle: VxHandle) {
        // SAFETY: `destroy` has the ABI's signature; the handle came from `create` and is
        // destroyed once (the proxy owns it).
        unsafe { (self.table.destroy)(handle) };
    }
}

/// The name of an `invoke` method, for messages.
fn method_name(method: u32) -> &'static str {
    match method {
        valex_plugin_abi::VX_METHOD_SCORE => "score",
        valex_plugin_abi::VX_METHOD_EDIT => "edit",
        valex_plugin_abi::VX_METHOD_REPORT => "report",
        _ => "invoke",
    }
}

#[derive(Deserialize)]
pub(crate) struct ErrorJson {
    code: String,
    message: String,
    #[serde(default)]
    help: Option<String>,
}

/// Parses a plugin's error JSON (`None` if it is not one).
pub(crate) fn parse_error_json(bytes: &[u8]) -> Option<ErrorJson> {
    serde_json::from_slice(bytes).ok()
}

/// Parses `describe()` output and checks its components.
pub(crate) fn check_description(
    path: &Path,
    doc: &[u8],
) -> Result<Vec<ComponentDecl>, PluginLoadError> {
    let malformed = |message: String| PluginLoadError::Malformed {
        path: path.to_path_buf(),
        step: "describe".to_owned(),
        message,
    };
    let desc: Description = serde_json::from_slice(doc)
        .map_err(|e| malformed(format!("invalid description JSON: {e}")))?;
    check_components(path, desc.components)
}

/// Checks ids (well-formed, kind matching, supported kind) and uniqueness within the library.
fn check_components(
    path: &Path,
    decls: Vec<ComponentDecl>,
) -> Result<Vec<ComponentDecl>, PluginLoadError> {
    let invalid = |id: &str, reason: String| PluginLoadError::InvalidComponent {
        path: path.to_path_buf(),
        id: id.to_owned(),
        reason,
    };
    for (i, d) in decls.iter().enumerate() {
        let parsed = ComponentId::parse(&d.id).map_err(|r| invalid(&d.id, r))?;
        if parsed.kind().as_str() != d.kind {
            return Err(invalid(
                &d.id,
                format!("declared kind {} does not match the id", d.kind),
            ));
        }
        if !PLUGIN_KINDS.contains(&d.kind.as_str()) {
            return Err(invalid(
                &d.id,
                format!(
                    "plugins may provide {} components only",
                    PLUGIN_KINDS.join(", ")
                ),
            ));
        }
        if decls[..i].iter().any(|e| e.id == d.id) {
            return Err(PluginLoadError::Duplicate {
                path: path.to_path_buf(),
                id: d.id.clone(),
                first: "the same library".to_owned(),
            });
        }
    }
    Ok(decls)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(id: &str, kind: &str) -> ComponentDecl {
        ComponentDecl {
            id: id.into(),
            kind: kind.into(),
            version: "1".into(),
            summary: String::new(),
        }
    }

    #[test]
    fn sdk_series_follows_caret_rules() {
        assert_eq!(sdk_series("0.1.0"), "0.1");
        assert_eq!(sdk_series("0.1.7-rc.1"), "0.1");
        assert_eq!(sdk_series("1.4.2"), "1");
        assert_ne!(sdk_series("0.2.0"), sdk_series("0.1.9"));
    }

    #[test]
    fn component_checks_reject_bad_kinds_and_repeats() {
        let p = Path::new("lib/x.so");
        assert!(check_components(p, vec![decl("scorer/a", "scorer")]).is_ok());
        let e = check_components(p, vec![decl("backend/a", "backend")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugin lib/x.so: component backend/a: plugins may provide scorer, intervention, reporter components only"
        );
        let e = check_components(p, vec![decl("scorer/a", "reporter")]).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        let e = check_components(
            p,
            vec![decl("scorer/a", "scorer"), decl("scorer/a", "scorer")],
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "plugin lib/x.so: component scorer/a is already registered by the same library"
        );
        let e = check_components(p, vec![decl("scorer/A", "scorer")]).unwrap_err();
        assert!(e.to_string().contains("kebab-case"), "{e}");
    }
}
