//! valex-backend-ort: the `backend/ort` model backend: exported ONNX language models
//! (torch.onnx, optimum) run with ONNX Runtime (CPU, or CUDA with the `cuda` feature), with
//! neuron taps, interventions and statistics inserted into the graph at load.
//!
//! It owns reading and checking `.onnx` files ([`model_file`], protobuf types in [`proto`]),
//! finding each layer's FFN ([`graph`], [`pattern`]), instrumenting the graph ([`rewrite`]),
//! ONNX Runtime sessions and providers ([`session`]), feeding batches ([`feed`],
//! [`batching`]), the backend ([`backend`]) and registration ([`loader`]). It depends only on
//! valex-core among workspace crates; `ort` lives here and nowhere else.
//!
//! # The library
//! `ort` is built with `load-dynamic`: nothing is linked or downloaded at build time, and
//! `libonnxruntime.so.1.31.x` is loaded at the first model load from the `ort_dylib` param
//! or `ORT_DYLIB_PATH` (`scripts/setup-ort.sh DIR` installs it from the onnxruntime wheel).
//!
//! # Taps
//! Named as in the candle backend. Gated MLPs (`down(act(gate(x)) * up(x))`) offer
//! `mlp.gate_pre`, `mlp.gate_act` (what LAPE counts), `mlp.up`, `mlp.act_x_up`; plain MLPs
//! (GPT-2) `mlp.pre` and `mlp.act`. Every offered tap accepts a
//! [`valex_core::NeuronEdit`]; the tap shows the edited value and everything downstream
//! sees it.
//!
//! # Padding and batching
//! Rows are right-padded with id 0 and `attention_mask` marks real tokens, so padding never
//! reaches a real token (causal attention). Rows are grouped as the candle backend groups
//! them ([`BatchPolicy`]); `record` cuts each row after its last counted position.

pub mod backend;
pub use valex_core::batching;
pub mod feed;
pub mod files;
pub mod graph;
pub mod loader;
pub mod model_file;
pub mod pattern;
pub mod proto;
pub mod rewrite;
pub mod session;

pub use backend::OrtBackend;
pub use batching::BatchPolicy;
pub use loader::{OrtConfig, OrtLoader, OrtPlugin};
pub use model_file::OnnxModel;
pub use pattern::{FfnSite, Tap};
pub use session::{DeviceSpec, OptLevel, SessionOptions};
