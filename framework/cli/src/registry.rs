//! Wires the built-in plugins into one registry.

use valex_core::{Registry, RegistryBuilder};

/// The registry of every built-in component.
///
/// # Panics
/// If two built-in plugins register the same id (a bug caught by the tests).
pub fn builtin_registry() -> Registry {
    builtin_registry_builder().build()
}

/// A registry builder holding every built-in component (external ones are added to it).
///
/// # Panics
/// If two built-in plugins register the same id (a bug caught by the tests).
pub fn builtin_registry_builder() -> RegistryBuilder {
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
    #[cfg(feature = "ort")]
    b.add_plugin(&valex_backend_ort::OrtPlugin)
        .expect("backend/ort has a distinct, well-formed id");
    b
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
            "intervention/scale",
            "intervention/mean",
            "intervention/clamp",
            "evaluator/forced-choice",
            "reporter/json",
        ] {
            assert!(ids.iter().any(|i| i == id), "{id} missing from {ids:?}");
        }
    }

    #[cfg(feature = "ort")]
    #[test]
    fn registers_backend_ort_with_the_ort_feature() {
        let ids: Vec<String> = builtin_registry()
            .components()
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert!(ids.iter().any(|i| i == "backend/ort"), "{ids:?}");
    }
}
