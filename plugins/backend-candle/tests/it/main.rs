//! Integration tests of valex-backend-candle: tiny seeded models written as HF directories
//! and loaded through the real loader.
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures and helpers panic on setup failures"
)]

mod batching;
mod bench_host;
mod edits;
mod errors;
mod fixture;
mod forward;
mod generate;
mod parity;
mod record;
mod reference;
mod score;

use valex_backend_candle::{CandleBackend, CandleLoader};

/// Loads a tiny model (kept alive by the returned temp dir).
pub fn load(m: &fixture::Tiny, batch_size: usize) -> (tempfile::TempDir, CandleBackend) {
    let dir = m.temp_dir();
    let b = CandleLoader::for_dir(dir.path())
        .with_batch_size(batch_size)
        .load_backend()
        .unwrap();
    (dir, b)
}

/// Largest absolute difference between two equally shaped nested vectors.
pub fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "row counts differ");
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.len(), y.len(), "row lengths differ");
            x.iter().zip(y).map(|(p, q)| (p - q).abs())
        })
        .fold(0.0, f32::max)
}
