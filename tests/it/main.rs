//! End-to-end tests: the built `valex` binary on real manifests (one test binary).
#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions are test code too: unwrap is the assertion"
)]

mod analysis;
mod bad_input;
mod bench;
mod check;
mod data;
mod demo;
mod generate;
mod inspect;
mod perplexity;
mod plugins;
mod progress;
mod reports;
mod resume;
mod score;
mod scorers;
mod shard;
mod support_conflict;
mod templates;
mod verify;
