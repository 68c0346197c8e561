//! valex-evaluators: built-in behaviour evaluators.
//!
//! - `evaluator/forced-choice`: for each dilemma, scores both options by the model's
//!   log-likelihood of the option text after a prompt that shows the story and both options,
//!   in both presentation orders (the released data always put the aligned option first, so
//!   position bias would otherwise be confounded with value preference).

mod forced_choice;

pub use forced_choice::{
    ForcedChoice, ForcedChoiceConfig, Normalize, Orders, TemplateFiles, Templates,
};

use valex_core::registry::AnyFactory;
use valex_core::{Plugin, RegistryBuilder, RegistryError};

/// Registers every built-in evaluator.
pub struct EvaluatorsPlugin;

impl Plugin for EvaluatorsPlugin {
    fn name(&self) -> &'static str {
        "valex-evaluators"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            "evaluator/forced-choice",
            env!("CARGO_PKG_VERSION"),
            "rate of choosing the value-aligned option by option log-likelihood, both orders",
            AnyFactory::Evaluator(forced_choice::factory),
        )?;
        Ok(())
    }
}
