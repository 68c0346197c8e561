//! valex-evaluators: built-in behaviour evaluators.
//!
//! - `evaluator/forced-choice`: for each dilemma, scores both options by the model's
//!   log-likelihood of the option text after a prompt that shows the story and both options,
//!   in both presentation orders (the released data always put the aligned option first, so
//!   position bias would otherwise be confounded with value preference).
//! - `evaluator/support-percent`: the authors' readout: generates an answer to the C-voice
//!   evaluation prompt (system + user message) and parses the support percentage it gives
//!   the value-aligned option, both orders; unparseable answers are counted and shown.

pub mod answer;
mod forced_choice;
mod support_percent;
mod texts;

pub use forced_choice::{ForcedChoice, ForcedChoiceConfig, Normalize, Orders, Templates};
pub use support_percent::{SupportPercent, SupportPercentConfig};
pub use texts::LangStrings;

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
        r.register(
            "evaluator/support-percent",
            env!("CARGO_PKG_VERSION"),
            "mean support % the model's generated answer gives the value-aligned option, both orders",
            AnyFactory::Evaluator(support_percent::factory),
        )?;
        Ok(())
    }
}
