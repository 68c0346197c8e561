//! ABI tests: they dlopen the example plugin (`valex-plugin-example`, built as a cdylib by
//! `cargo build --workspace`) and fault builds of it, and check every load step and call path.

mod faults;
mod loading;
mod scoring;
mod support;
