//! Registration of the built-in reporters.

use valex_core::registry::AnyFactory;
use valex_core::{Plugin, RegistryBuilder, RegistryError};

/// Registers every built-in reporter.
pub struct ReportersPlugin;

impl Plugin for ReportersPlugin {
    fn name(&self) -> &'static str {
        "valex-reporters"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        let version = env!("CARGO_PKG_VERSION");
        r.register(
            "reporter/json",
            version,
            "results.json: every number of the run, deterministic",
            AnyFactory::Reporter(crate::json::json_factory),
        )?;
        r.register(
            "reporter/csv",
            version,
            "tidy long-format CSV tables (evaluation, neurons per layer, cross-value, side effects) with provenance columns",
            AnyFactory::Reporter(crate::csv::csv_factory),
        )?;
        r.register(
            "reporter/markdown",
            version,
            "report.md: provenance, selection, per-layer counts, evaluation vs random, cross-value tables",
            AnyFactory::Reporter(crate::markdown::markdown_factory),
        )?;
        r.register(
            "reporter/html",
            version,
            "report.html: self-contained page with tables and inline SVG figures",
            AnyFactory::Reporter(crate::html::html_factory),
        )?;
        Ok(())
    }
}
