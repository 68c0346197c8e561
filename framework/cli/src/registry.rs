//! Wires the built-in plugins into one registry.

use valex_core::{Registry, RegistryBuilder};

/// The registry of every built-in component.
///
/// # Panics
/// If two built-in plugins register the same id (a bug caught by the tests).
pub fn builtin_registry() -> Registry {
    let mut b = RegistryBuilder::new();
    let plugins: [&dyn valex_core::Plugin; 6] = [
        &valex_backend_candle::CandlePlugin,
        &valex_datasets::DatasetsPlugin,
        &valex_scorers::ScorersPlugin,
        &valex_interventions::InterventionsPlugin,
        &valex_evaluators::EvaluatorsPlugin,
        &valex_reporters::ReportersPlugin,
    ];
    for p in plugins {
        b.add_plugin(p)
            .expect("built-in plugins have distinct, well-formed ids");
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_the_issue_components() {
        let ids: Vec<String> = builtin_registry()
            .components()
            .into_iter()
            .map(|c| c.id)
            .collect();
        for id in [
            "backend/candle",
            "dataset/jsonl",
            "scorer/lape",
            "intervention/zero",
            "evaluator/forced-choice",
            "reporter/json",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
        }
    }
}
