//! Integration tests of valex-datasets: the released C-voice files (read from ../shared at
//! test time), spreadsheets with bad input (written by the tests), and the checks of
//! valex's own benchmark (experiments/value-study/data/benchmark).
#![allow(
    clippy::unwrap_used,
    reason = "test fixtures and helpers panic on setup failures"
)]

mod benchmark;
mod c_voice;
mod xlsx;
