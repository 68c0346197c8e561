//! valex-scorers: the built-in neuron scorers (statistics in, neuron sets out).
//!
//! It owns `scorer/lape` ([`lape`]) and the torch-compatible numeric primitives that let it
//! reproduce published selections bit for bit ([`torch_compat`]). Scorers depend on
//! `valex-core` only; they never see a model or a file.

pub mod lape;
pub mod plugin;
pub mod torch_compat;

pub use lape::{
    LapeConfig, LapeScorer, LapeSelection, NormalizeBy, activation_probs, entropies, lape_factory,
    lape_select,
};
pub use plugin::ScorersPlugin;
