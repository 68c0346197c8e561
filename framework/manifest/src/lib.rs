//! valex-manifest: experiment manifests, from TOML files to a runnable [`ExperimentPlan`].
//!
//! It owns the manifest schema (`raw.rs`), layering with figment (`load.rs`: embedded
//! defaults → includes → the manifest → `VALEX_*` variables → `--set` flags), the schema
//! check that reports every problem at once (`validate.rs`), record prompt templates
//! (`template.rs`) and resolution of component ids through the registry (`plan.rs`).
//! It depends on valex-core only; it never loads models or runs stages.
//! The format is documented key by key in `docs/manifest.md`.
//!
//! ```no_run
//! use std::path::Path;
//! use valex_manifest::{LoadOptions, load_and_resolve};
//! # fn registry() -> valex_core::Registry { valex_core::RegistryBuilder::new().build() }
//! let opts = LoadOptions {
//!     env: std::env::vars().collect(),
//!     sets: vec!["experiment.seed=7".into()],
//! };
//! match load_and_resolve(Path::new("experiments/value-study/demo.toml"), &opts, &registry()) {
//!     Ok((loaded, plan)) => { /* write loaded.resolved_toml to the run dir, run the plan */ }
//!     Err(errors) => eprintln!("{errors}"), // one line per problem
//! }
//! ```

mod convert;
mod error;
mod files;
mod load;
mod neutral_text;
mod overrides;
mod plan;
mod plugins;
mod raw;
mod template;
mod template_files;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ManifestError, ManifestErrorKind, ManifestErrors};
pub use load::{DEFAULTS_ORIGIN, DEFAULTS_TOML, LoadOptions, LoadedManifest, load};
pub use overrides::{ENV_SECTIONS, parse_set_value};
pub use plan::{ComponentIds, ExperimentPlan, load_and_resolve, resolve};
pub use plugins::{PluginRef, plugin_refs};
pub use raw::{
    ComponentConfig, ConditionConfig, DEFAULT_CHECKPOINT_EVERY, DEFAULT_RECORD_MAX_NEW_TOKENS,
    DatasetConfig, EDIT_POSITIONS, EvaluateConfig, ExperimentConfig, GroupBy, InterventionConfig,
    LabelBy, Manifest, ModelConfig, NeutralTextConfig, PluginConfig, Positions,
    RESERVED_CONDITION_NAMES, RecordConditionConfig, RecordConfig, ReferenceModelConfig,
    SCHEMA_VERSION, ScoreConfig, TemplateConfig, is_reserved_condition_name,
};
pub use template::{
    PLACEHOLDERS, Rendered, Segment, TemplateError, parse_template, render_template,
};
