//! Progress bars for long stages (record, evaluate, perplexity), drawn on stderr only when it
//! is a terminal and the front end enabled them; otherwise every call is a no-op, so logs,
//! pipes, CI output and tests stay free of escape sequences.
//!
//! The CLI calls [`enable`] once (`valex run` without `-q` on a terminal). Stages create one
//! [`Progress`] per pass; it is cleared from the terminal when finished or dropped, so the
//! summary printed afterwards stands alone.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Every bar is drawn through this, so log lines can be written between redraws.
fn bars() -> &'static MultiProgress {
    static BARS: OnceLock<MultiProgress> = OnceLock::new();
    BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
}

/// stderr for log lines: each write hides the bars, writes, and redraws them, so log lines
/// and bars never overwrite each other (the CLI's tracing writer).
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if enabled() {
            bars().suspend(|| std::io::stderr().write_all(buf))?;
        } else {
            std::io::stderr().write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Turns progress bars on when `wanted` and stderr is a terminal; returns whether they are on.
pub fn enable(wanted: bool) -> bool {
    let on = wanted && std::io::stderr().is_terminal();
    ENABLED.store(on, Ordering::Relaxed);
    on
}

/// Whether stages draw progress bars.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// One stage's progress: `done / total` units, with rate and time left.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for `stage` counting `total` `unit`s (e.g. `items`); inert when bars are off.
    pub fn new(stage: &str, total: u64, unit: &str) -> Self {
        if !enabled() || total == 0 {
            return Progress(None);
        }
        let bar = bars().add(ProgressBar::new(total));
        let template = format!(
            "{{prefix:>10}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{elapsed}} elapsed, {{eta}} left) {{msg}}"
        );
        if let Ok(style) = ProgressStyle::with_template(&template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(stage.to_owned());
        Progress(Some(bar))
    }

    /// Advances by `n` units.
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.0 {
            b.inc(n);
        }
    }

    /// Sets the position (e.g. after resuming from a checkpoint).
    pub fn set_position(&self, pos: u64) {
        if let Some(b) = &self.0 {
            b.set_position(pos);
        }
    }

    /// A short note after the counts (the current cell, condition, ...).
    pub fn set_message(&self, msg: impl Into<String>) {
        if let Some(b) = &self.0 {
            b.set_message(msg.into());
        }
    }

    /// True when this bar draws.
    pub fn is_drawn(&self) -> bool {
        self.0.is_some()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
            bars().remove(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_inert_when_disabled() {
        assert!(!enable(false));
        assert!(!enabled());
        let p = Progress::new("record", 10, "items");
        assert!(!p.is_drawn());
        p.inc(3);
        p.set_position(5);
        p.set_message("x");
        // Asking is not enough: stderr must be a terminal too.
        assert_eq!(enable(true), std::io::stderr().is_terminal());
        enable(false);
    }
}
