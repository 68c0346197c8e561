//! Where a forward's time goes, section by section (`valex bench --profile`).
//!
//! Owns a process-wide switch and table. While the switch is off (always, outside
//! `valex bench --profile`), [`section`] only runs its closure: one relaxed atomic load. While it
//! is on, [`section`] waits for the device before and after the closure and adds the wall time
//! to the section's row, so that asynchronous devices (CUDA) are timed by what they execute,
//! not by what the host queues. The waits serialise host and device, so a profiled pass is
//! slower than an unprofiled one: `valex bench --profile` prints both, and the shares are what
//! to read. Sections do not nest: each is timed on its own, and their sum, set against the
//! profiled pass's wall time, shows what no section covers.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use candle_core::{Device, Result};

static ENABLED: AtomicBool = AtomicBool::new(false);
static TABLE: Mutex<BTreeMap<&'static str, (Duration, u64)>> = Mutex::new(BTreeMap::new());

/// Turns the timing of sections on or off (off by default).
pub fn enable(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether sections are being timed.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Runs `f`, timing it as section `name` on `device` while profiling is on.
///
/// # Errors
/// `f`'s error, or a device error while waiting for the device.
pub fn section<T>(name: &'static str, device: &Device, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if !enabled() {
        return f();
    }
    device.synchronize()?;
    let t = Instant::now();
    let out = f()?;
    device.synchronize()?;
    let dt = t.elapsed();
    let mut table = TABLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let row = table.entry(name).or_default();
    row.0 += dt;
    row.1 += 1;
    Ok(out)
}

/// One section's total.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SectionTime {
    /// Section name (`attn.core`, `mlp.down`, ...).
    pub name: &'static str,
    /// Wall seconds over all its runs.
    pub seconds: f64,
    /// How many times it ran.
    pub calls: u64,
}

/// The sections timed since the last call, by decreasing time, and clears the table.
pub fn take() -> Vec<SectionTime> {
    let mut table = TABLE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut rows: Vec<SectionTime> = std::mem::take(&mut *table)
        .into_iter()
        .map(|(name, (d, calls))| SectionTime {
            name,
            seconds: d.as_secs_f64(),
            calls,
        })
        .collect();
    rows.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_count_only_while_enabled_and_take_clears() {
        // Other tests in the same process may time sections while this one has profiling
        // on (under `cargo test`, not nextest): only this test's section names are checked.
        let mine = |rows: Vec<SectionTime>| -> Vec<SectionTime> {
            rows.into_iter()
                .filter(|r| ["off", "a", "b", "err"].contains(&r.name))
                .collect()
        };
        let dev = Device::Cpu;
        let run = |name| {
            section(name, &dev, || {
                std::thread::sleep(Duration::from_millis(2));
                Ok(())
            })
        };
        run("off").unwrap();
        assert!(mine(take()).is_empty(), "nothing is timed while off");
        enable(true);
        run("a").unwrap();
        run("a").unwrap();
        run("b").unwrap();
        let e = section("err", &dev, || -> Result<()> { candle_core::bail!("boom") });
        enable(false);
        assert!(e.is_err());
        let rows = mine(take());
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert!(rows[0].seconds >= rows[1].seconds, "by decreasing time");
        let row = |n| rows.iter().find(|r| r.name == n).expect("timed");
        assert_eq!(row("a").calls, 2);
        assert!(row("a").seconds >= 0.004, "two sleeps of 2 ms");
        assert_eq!(row("b").calls, 1);
        assert!(row("b").seconds >= 0.002);
        assert!(mine(take()).is_empty(), "take clears the table");
    }
}
