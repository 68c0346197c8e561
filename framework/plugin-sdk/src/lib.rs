//! valex-plugin-sdk: what authors of run-time loaded valex plugins depend on.
//!
//! A plugin is a `cdylib` that implements one or more components — scorers, interventions,
//! reporters — with the traits of [`component`] and declares them with [`export_plugin!`].
//! The macro generates the two exported symbols of the data-only C ABI
//! (`docs/plugin-abi.md`); the SDK's shims turn the ABI's JSON and tensor views back into
//! valex types ([`ActivationStats`], [`NeuronSet`], ...), catch every panic, and forward the
//! plugin's `tracing` events to the host, which re-emits them with `plugin = <name>`. Authors
//! write no `unsafe` and no `extern` themselves.
//!
//! ```
//! use valex_plugin_sdk::{
//!     ActivationStats, NeuronSet, PluginError, ScorerComponent, ScorerOutput, export_plugin,
//!     parse_params,
//! };
//!
//! #[derive(serde::Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct NothingParams {}
//!
//! /// Selects no neuron.
//! struct Nothing;
//!
//! impl ScorerComponent for Nothing {
//!     fn score(&mut self, stats: &ActivationStats, labels: &[String])
//!         -> Result<ScorerOutput, PluginError> {
//!         Ok(ScorerOutput::new(
//!             labels.iter().map(|l| (l.clone(), NeuronSet::empty(stats.n_layers))).collect(),
//!         ))
//!     }
//! }
//!
//! fn nothing(params: &serde_json::Value) -> Result<Box<dyn ScorerComponent>, PluginError> {
//!     let _: NothingParams = parse_params(params)?;
//!     Ok(Box::new(Nothing))
//! }
//!
//! export_plugin! {
//!     name: "my-plugin",
//!     version: "0.1.0",
//!     components: [
//!         valex_plugin_sdk::Component::scorer("scorer/nothing", "0.1.0", "selects nothing", nothing),
//!     ],
//! }
//! ```
//!
//! This crate depends on valex-plugin-abi and valex-core, never on valex-plugin-host.

#![expect(
    unsafe_code,
    reason = "the SDK implements the C ABI's exported functions (issue 3, HOUSE_STYLE §3.5)"
)]

pub mod codec;
pub mod component;
mod export;
mod forward;
#[doc(hidden)]
pub mod rt;

pub use component::{
    Component, ComponentFactory, InterventionComponent, ModelShape, PluginError, PluginSpec,
    ReporterComponent, ScorerComponent, ScorerOutput, parse_params,
};
pub use valex_core::{ActivationStats, LabelStats, NeuronEdit, NeuronSet, OutputFile};
pub use valex_plugin_abi::ABI_VERSION;
pub use {serde_json, tracing, valex_core};

/// The version of this SDK, written into every plugin's table (`sdk_version`). The host
/// accepts libraries whose SDK version is caret-compatible with its own.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
