//! Integration tests of valex-backend-ort. They need ONNX Runtime: set ORT_DYLIB_PATH to
//! libonnxruntime.so.1.31.1 (`scripts/setup-ort.sh DIR`); without it they say so and skip.
#![expect(
    clippy::print_stderr,
    reason = "tests report skips and measured differences on stderr"
)]

mod bad_input;
mod common;
mod e2e;
mod equivalence;
mod gpt2;
mod providers;
