//! Per-call timeout (issue 10): every call into a plugin (`create`, `invoke`) runs on a
//! worker thread, and the host waits at most the library's call timeout
//! (`[[plugins]] call_timeout_secs`, default [`DEFAULT_CALL_TIMEOUT`]).
//!
//! A thread cannot be killed. When a call times out the host *abandons* the worker: it keeps
//! running (or hanging) until the process exits, the instance is poisoned (never called
//! again, not even `destroy`), and the run fails with [`PluginError::TimedOut`]. So that an
//! abandoned call never reads memory the host frees afterwards, the worker owns copies of
//! everything it passes to the plugin: the input JSON and the tensor data.
//!
//! [`PluginError::TimedOut`]: crate::PluginError::TimedOut

use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use valex_plugin_abi::VxTensorView;

/// The call timeout of a library whose `[[plugins]]` entry sets none (and of `--plugin`
/// libraries): ten minutes, far above any honest scorer call on the statistics of a 7B model.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// Tensor views over data the views' owner holds: the host's borrowed views, copied.
pub(crate) struct OwnedTensors {
    /// One buffer per view; `u64` storage keeps every element aligned (f64 is the widest).
    _bufs: Vec<Vec<u64>>,
    views: Vec<VxTensorView>,
}

// SAFETY: the views point only into `_bufs`, heap buffers owned by the same struct that never
// move or change while it lives; nothing else refers to them.
unsafe impl Send for OwnedTensors {}

impl OwnedTensors {
    /// Copies the data of `views` (each valid for reads of `byte_len` bytes during this call).
    pub(crate) fn copy(views: &[VxTensorView]) -> Self {
        let mut bufs = Vec::with_capacity(views.len());
        let mut owned = Vec::with_capacity(views.len());
        for v in views {
            let len = usize::try_from(v.byte_len).expect("a view describes memory of this process");
            let mut buf = vec![0u64; len.div_ceil(8)];
            if len > 0 {
                // SAFETY: the caller's view is readable for `byte_len` bytes for the duration
                // of this call; `buf` holds at least `len` bytes and does not overlap it.
                unsafe {
                    std::ptr::copy_nonoverlapping(v.data, buf.as_mut_ptr().cast::<u8>(), len);
                }
            }
            owned.push(VxTensorView {
                data: buf.as_ptr().cast::<u8>(),
                ..*v
            });
            bufs.push(buf);
        }
        OwnedTensors {
            _bufs: bufs,
            views: owned,
        }
    }

    /// The views, valid while `self` lives.
    pub(crate) fn views(&self) -> &[VxTensorView] {
        &self.views
    }
}

/// Runs `f` on a new thread, with the caller's tracing subscriber and span, and waits at most
/// `timeout`.
/// `None` when it did not return in time (the thread is abandoned, see the module docs).
/// A panic of host code on the worker is resumed on the caller's thread.
///
/// # Panics
/// When the OS refuses a new thread (out of threads or memory: the process cannot go on).
pub(crate) fn run_with_timeout<T: Send + 'static>(
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = sync_channel(1);
    // The caller's subscriber (a thread-local default in tests) and span, so that plugin logs
    // forwarded from the worker arrive where they would without it.
    let dispatch = tracing::dispatcher::get_default(Clone::clone);
    let span = tracing::Span::current();
    let worker = std::thread::Builder::new()
        .name("valex-plugin-call".to_owned())
        .spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                let _entered = span.entered();
                // The receiver is gone only after a timeout: nobody waits for the result then.
                let _ = tx.send(f());
            });
        })
        .expect("the host can start a thread for a plugin call");
    match rx.recv_timeout(timeout) {
        Ok(v) => Some(v),
        Err(RecvTimeoutError::Timeout) => None,
        Err(RecvTimeoutError::Disconnected) => match worker.join() {
            Err(payload) => std::panic::resume_unwind(payload),
            Ok(()) => unreachable!("the worker sends its result before it ends"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn returns_the_result_of_a_quick_call() {
        assert_eq!(run_with_timeout(Duration::from_secs(5), || 7), Some(7));
    }

    #[test]
    fn abandons_a_call_that_outlives_the_timeout() {
        let t = Instant::now();
        let out = run_with_timeout(Duration::from_millis(100), || {
            std::thread::sleep(Duration::from_secs(30));
            1
        });
        assert_eq!(out, None);
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn copied_views_hold_the_same_bytes_aligned() {
        let data = [1.5f64, -2.0, 3.25];
        let view = VxTensorView {
            dtype: valex_plugin_abi::VX_DTYPE_F64,
            rank: 1,
            shape: [3, 0, 0, 0, 0, 0, 0, 0],
            data: data.as_ptr().cast(),
            byte_len: 24,
        };
        let owned = OwnedTensors::copy(&[view]);
        let v = owned.views()[0];
        assert_ne!(v.data, view.data);
        assert_eq!(v.data.align_offset(align_of::<f64>()), 0);
        // SAFETY: `owned` holds 24 readable bytes at `v.data`, aligned for f64 (checked).
        let copy = unsafe { std::slice::from_raw_parts(v.data.cast::<f64>(), 3) };
        assert_eq!(copy, &data);
        assert_eq!((v.shape, v.byte_len, v.rank), (view.shape, 24, 1));
    }
}
