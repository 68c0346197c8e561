//! Log forwarding and panic capture inside a plugin library.
//!
//! A cdylib carries its own copy of `tracing` and of std, so it has its own global
//! subscriber and its own panic hook. `init` installs [`Forward`] as the library's global
//! subscriber: every event becomes `(level, target, message)` through the host's `log`
//! callback, which re-emits it with `plugin = <name>`. The panic hook records the panic's
//! location for the shim that catches it instead of printing to stderr: a plugin never
//! writes to stderr directly.

use std::cell::RefCell;
use std::fmt::Write as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use valex_plugin_abi::{
    VX_LOG_DEBUG, VX_LOG_ERROR, VX_LOG_INFO, VX_LOG_TRACE, VX_LOG_WARN, VxHostV1, VxStr,
};

/// The host's callbacks, kept for the life of the process.
struct Host(VxHostV1);

// SAFETY: the host guarantees (docs/plugin-abi.md, "init") that `log` is thread-safe and
// that `log_ctx` stays valid for the life of the process; the plugin never dereferences it.
unsafe impl Send for Host {}
// SAFETY: as above; the struct is never mutated after `init`.
unsafe impl Sync for Host {}

static HOST: OnceLock<Host> = OnceLock::new();

thread_local! {
    /// `file:line:col` of the last panic on this thread, set by the hook.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `VX_LOG_*` code of a tracing level.
fn level_code(level: &Level) -> u32 {
    match *level {
        Level::ERROR => VX_LOG_ERROR,
        Level::WARN => VX_LOG_WARN,
        Level::INFO => VX_LOG_INFO,
        Level::DEBUG => VX_LOG_DEBUG,
        _ => VX_LOG_TRACE,
    }
}

/// Sends one event to the host; does nothing before `init`.
pub(crate) fn send(level: u32, target: &str, message: &str) {
    if let Some(h) = HOST.get() {
        if level > h.0.max_level {
            return;
        }
        // SAFETY: `log` is the host's thread-safe callback (see `Host`); both strings outlive
        // the call, which only borrows them.
        unsafe { (h.0.log)(h.0.log_ctx, level, VxStr::new(target), VxStr::new(message)) };
    }
}

/// Keeps the host's callbacks, installs the forwarding subscriber and the panic hook.
/// Called by `init`; later calls change nothing.
pub(crate) fn install(host: VxHostV1) {
    if HOST.set(Host(host)).is_err() {
        return;
    }
    // Fails only if the library set a subscriber itself; then its choice stands.
    let _ = tracing::subscriber::set_global_default(Forward);
    std::panic::set_hook(Box::new(|info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        PANIC_LOCATION.with(|p| *p.borrow_mut() = location);
    }));
}

/// The location of the last panic on this thread, taken (for the error message).
pub(crate) fn take_panic_location() -> Option<String> {
    PANIC_LOCATION.with(|p| p.borrow_mut().take())
}

/// A `tracing` subscriber that forwards events to the host and ignores spans.
struct Forward;

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        HOST.get()
            .is_some_and(|h| level_code(metadata.level()) <= h.0.max_level)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut v = Message::default();
        event.record(&mut v);
        let meta = event.metadata();
        send(level_code(meta.level()), meta.target(), &v.text);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

/// Renders an event as `message key=value ...`.
#[derive(Default)]
struct Message {
    text: String,
}

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.push_message(value);
        } else {
            let _ = write!(self.text, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.push_message(&format!("{value:?}"));
        } else {
            let _ = write!(self.text, " {}={value:?}", field.name());
        }
    }
}

impl Message {
    /// The message goes first, fields after it.
    fn push_message(&mut self, m: &str) {
        self.text.insert_str(0, m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_levels_to_abi_codes() {
        assert_eq!(level_code(&Level::ERROR), VX_LOG_ERROR);
        assert_eq!(level_code(&Level::INFO), VX_LOG_INFO);
        assert_eq!(level_code(&Level::TRACE), VX_LOG_TRACE);
    }

    #[test]
    fn messages_come_before_fields() {
        let mut m = Message::default();
        m.text.push_str(" k=1");
        m.push_message("scored");
        assert_eq!(m.text, "scored k=1");
    }
}
