//! The host's `log` callback: a plugin's forwarded `(level, target, message)` becomes a
//! `tracing` event with `plugin = <name>` (HOUSE_STYLE §5). It never unwinds into the plugin.

use std::ffi::c_void;

use valex_plugin_abi::{VX_LOG_DEBUG, VX_LOG_ERROR, VX_LOG_INFO, VX_LOG_WARN, VxStr};

/// What the `log_ctx` pointer of one library points at (leaked: lives forever).
#[derive(Debug)]
pub(crate) struct LogContext {
    /// The plugin's name (`plugin_name` of its table).
    pub(crate) plugin: String,
}

/// Copies a borrowed string, replacing invalid UTF-8.
///
/// # Safety
/// `s.ptr` points at `s.len` readable bytes or `s.len` is 0.
unsafe fn lossy(s: VxStr) -> String {
    if s.len == 0 || s.ptr.is_null() {
        return String::new();
    }
    // SAFETY: guaranteed by the caller.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(s.ptr, s.len) }).into_owned()
}

/// The `log` callback handed to every library in `VxHostV1`.
pub(crate) unsafe extern "C" fn host_log(
    ctx: *mut c_void,
    level: u32,
    target: VxStr,
    message: VxStr,
) {
    let _ = std::panic::catch_unwind(|| {
        if ctx.is_null() {
            return;
        }
        // SAFETY: `ctx` is the leaked `LogContext` the host gave this library in `init`.
        let plugin = unsafe { &*ctx.cast::<LogContext>() }.plugin.as_str();
        // SAFETY: the plugin passes strings valid for this call (ABI rule).
        let (target, message) = unsafe { (lossy(target), lossy(message)) };
        match level {
            VX_LOG_ERROR => tracing::error!(plugin, plugin_target = %target, "{message}"),
            VX_LOG_WARN => tracing::warn!(plugin, plugin_target = %target, "{message}"),
            VX_LOG_INFO => tracing::info!(plugin, plugin_target = %target, "{message}"),
            VX_LOG_DEBUG => tracing::debug!(plugin, plugin_target = %target, "{message}"),
            _ => tracing::trace!(plugin, plugin_target = %target, "{message}"),
        }
    });
}
