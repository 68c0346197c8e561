//! valex-interventions: built-in interventions.
//!
//! Every intervention turns a neuron set into a [`valex_core::NeuronEdit`] whose ops map each
//! selected neuron's activation `x` to `clamp(a·x + b, min, max)`; backends apply it at every
//! position.
//!
//! - `intervention/zero` ([`zero`]): `a = 0` (LAPE's deactivation).
//! - `intervention/scale` ([`scale`]): `a = factor` (the C-voice authors' code uses 5).
//! - `intervention/mean` ([`mean`]): `a = 0, b = μ`, the neuron's token-level mean activation.
//! - `intervention/clamp` ([`clamp`]): `a = 1` with bounds `min` and/or `max`.
//!
//! This crate depends on valex-core only; statistics files named by `intervention/mean` are
//! read by the host ([`valex_core::Intervention::statistics`]).

pub mod clamp;
mod edit;
pub mod mean;
pub mod scale;
pub mod zero;

pub use clamp::{Clamp, ClampConfig};
pub use edit::{constant_edit, edit_each};
pub use mean::{MeanAblation, MeanConfig, pooled_token_means};
pub use scale::{Scale, ScaleConfig};
pub use zero::{ZeroAblation, ZeroConfig};

use valex_core::registry::AnyFactory;
use valex_core::{Plugin, RegistryBuilder, RegistryError};

/// Registers every built-in intervention.
pub struct InterventionsPlugin;

impl Plugin for InterventionsPlugin {
    fn name(&self) -> &'static str {
        "valex-interventions"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        let v = env!("CARGO_PKG_VERSION");
        r.register(
            "intervention/zero",
            v,
            "set the selected neurons' activations to 0 at every position",
            AnyFactory::Intervention(zero::factory),
        )?;
        r.register(
            "intervention/scale",
            v,
            "multiply the selected neurons' activations by `factor` at every position",
            AnyFactory::Intervention(scale::factory),
        )?;
        r.register(
            "intervention/mean",
            v,
            "replace the selected neurons' activations by their token-level mean activation",
            AnyFactory::Intervention(mean::factory),
        )?;
        r.register(
            "intervention/clamp",
            v,
            "clamp the selected neurons' activations to [`min`, `max`] at every position",
            AnyFactory::Intervention(clamp::factory),
        )?;
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use valex_core::ModelInfo;

    pub fn info() -> ModelInfo {
        ModelInfo {
            architecture: "llama".into(),
            n_layers: 2,
            n_neurons: 4,
            hidden_size: 8,
            vocab_size: 10,
            content_sha256: String::new(),
        }
    }
}
