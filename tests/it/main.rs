//! End-to-end tests: the built `valex` binary on real manifests (one test binary).

mod bad_input;
mod demo;
mod score;
