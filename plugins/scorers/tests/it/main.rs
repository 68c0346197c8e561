//! Integration tests of valex-scorers: scorer outputs against independent Python references
//! (tests/fixtures/stats, made by tests/fixtures/make_stats_reference.py), the scorers
//! through the registry, and an ignored benchmark.

mod bench;
mod reference;
mod scorers;
