//! The typed manifest schema: serde structs that mirror the TOML one to one.
//!
//! Every struct is `#[serde(deny_unknown_fields)]`, so a typo can never be ignored, and every
//! struct is `Serialize` too, so the resolved manifest can be written back as TOML (the run
//! directory keeps it). Default values live in `defaults.toml`, the lowest layer, not here:
//! after layering every non-optional field is present. Checks that go beyond types (name
//! pattern, template placeholders, cross-section rules) live in `validate.rs`.
//! This module must not depend on figment.

use serde::{Deserialize, Serialize};
use valex_core::{EditPositions, Language};

/// The schema version this valex reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole experiment manifest after all layers were applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version of the manifest; must be [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// Name, seed and description of the experiment.
    pub experiment: ExperimentConfig,
    /// The model backend and its params.
    pub model: ModelConfig,
    /// The dataset reader and its params.
    pub dataset: DatasetConfig,
    /// The statistics pass; `None` when the manifest has no `[record]` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<RecordConfig>,
    /// The neuron scorer; `None` when the manifest has no `[score]` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<ScoreConfig>,
    /// The intervention applied to selected neurons (default `intervention/zero`).
    pub intervention: InterventionConfig,
    /// The behaviour evaluation; `None` when the manifest has no `[evaluate]` section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluate: Option<EvaluateConfig>,
    /// Reporters that turn results into files (default: one `reporter/json`).
    pub reporters: Vec<ComponentConfig>,
    /// Run-time plugin libraries to load before components are resolved (`[[plugins]]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginConfig>,
}

/// `[[plugins]]`: one run-time plugin library (docs/plugin-abi.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Path of the library. Written relative to the manifest file that sets it; after
    /// layering it is joined to that file's folder (or to the current folder when it came
    /// from `--set` or a `VALEX_*` variable).
    pub path: String,
    /// Seconds one call into the library (`create`, `score`, `edit`, `report`) may take
    /// before the run fails with a timeout (exit 3); at least 1. Default: the host's
    /// (600 s). Issue 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_timeout_secs: Option<std::num::NonZeroU64>,
}

/// `[experiment]`: identity of the experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Name used in run directory names; `[A-Za-z0-9_.-]+`.
    pub name: String,
    /// Seed for every random choice of the run (item sampling, random control sets).
    pub seed: u64,
    /// Free text describing the experiment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `[model]`: which backend loads the model, and its params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Backend component id, e.g. `backend/candle`.
    pub backend: String,
    /// Opaque params for the backend factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    /// `[model.reference]`: a second backend the self-checks compare this one with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceModelConfig>,
}

/// `[model.reference]`: a second way to run the same model (another backend, dtype or
/// device). The self-checks (`valex check`, `[record] self_check = true`) compare its
/// statistics and log-probabilities with the main backend's on the sample; nothing else
/// uses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceModelConfig {
    /// Backend component id, e.g. `backend/ort`.
    pub backend: String,
    /// Opaque params for the backend factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
}

/// `[dataset]`: which reader loads the items, and its params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    /// Dataset component id, e.g. `dataset/jsonl`.
    #[serde(rename = "use")]
    pub id: String,
    /// Opaque params for the dataset factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
}

/// A component chosen by id with opaque params: `[score]`, `[intervention]`, `[[reporters]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    /// Component id, e.g. `scorer/lape`.
    #[serde(rename = "use")]
    pub id: String,
    /// Opaque params for the component factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
}

/// `[score]`: the neuron scorer, and whether it runs once over all labels or once per group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreConfig {
    /// Scorer component id, e.g. `scorer/lape`.
    #[serde(rename = "use")]
    pub id: String,
    /// Opaque params for the scorer factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    /// Run the scorer once per group of labels instead of once over all of them; absent =
    /// one run over every label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<GroupBy>,
}

/// How `[score] group_by` groups the statistics labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupBy {
    /// Labels that share the part before the first `/` (`富强/support`, `富强/conflict`).
    #[serde(rename = "value")]
    Value,
}

impl GroupBy {
    /// Every accepted spelling, in documentation order.
    pub const NAMES: [&'static str; 1] = ["value"];

    /// The group of `label`: for `value`, the part before the first `/` (the whole label when
    /// it has none).
    pub fn group_of(self, label: &str) -> &str {
        match self {
            GroupBy::Value => label.split_once('/').map_or(label, |(v, _)| v),
        }
    }
}

/// `[intervention]`: the intervention of the `targeted` condition and of the controls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterventionConfig {
    /// Intervention component id, e.g. `intervention/zero`.
    #[serde(rename = "use")]
    pub id: String,
    /// Opaque params for the intervention factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    /// Where in each evaluated row the edit applies: `all` (default), `prompt` or
    /// `generated` (issue 7).
    #[serde(default, skip_serializing_if = "EditPositions::is_all")]
    pub positions: EditPositions,
}

/// Every spelling of an edit's `positions`, in documentation order.
pub const EDIT_POSITIONS: [&str; 3] = ["all", "prompt", "generated"];

/// Which token positions of an activation item enter the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Positions {
    /// Every position of the rendered prompt.
    #[serde(rename = "all")]
    All,
    /// Only the tokens of the story.
    #[serde(rename = "story")]
    Story,
    /// Only the tokens of the rationale.
    #[serde(rename = "rationale")]
    Rationale,
    /// The tokens of the story and of the rationale.
    #[serde(rename = "story+rationale")]
    StoryRationale,
    /// The tokens the model generates in reply to the rendered prompt (greedy decoding, at
    /// most `record.max_new_tokens`), as the C-voice follow-up code counts decode steps.
    #[serde(rename = "generated")]
    Generated,
}

impl Positions {
    /// Every accepted spelling, in documentation order.
    pub const NAMES: [&'static str; 5] =
        ["all", "story", "rationale", "story+rationale", "generated"];
}

/// How recorded items are grouped into labels for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LabelBy {
    /// One label per value (`诚信`), both languages pooled.
    #[serde(rename = "value")]
    Value,
    /// One label per value and language (`诚信/zh`).
    #[serde(rename = "value-language")]
    ValueLanguage,
    /// One label per language (`zh`, `en`), every value pooled: LAPE's language neurons.
    #[serde(rename = "language")]
    Language,
    /// One label per value and record condition (`诚信/support`, `诚信/conflict`): every item
    /// is recorded once per `[[record.conditions]]` entry, with that condition's template.
    #[serde(rename = "value-condition")]
    ValueCondition,
}

impl LabelBy {
    /// Every accepted spelling, in documentation order.
    pub const NAMES: [&'static str; 4] = ["value", "value-language", "language", "value-condition"];
}

/// `[[record.conditions]]`: one recording condition (the C-voice follow-up's `support` and
/// `conflict` prompts): every activation item is recorded once per condition, with the
/// condition's own template, under the label `<value>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConditionConfig {
    /// The condition's name, the part after `/` in its labels (`[A-Za-z0-9_.-]+`, unique).
    pub name: String,
    /// The condition's prompt template per language (after layering, `template_file`'s text).
    pub template: TemplateConfig,
}

/// Prompt templates of the statistics pass, one per language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Template for Chinese items.
    pub zh: String,
    /// Template for English items.
    pub en: String,
}

impl TemplateConfig {
    /// The template for `language`.
    pub fn for_language(&self, language: Language) -> &str {
        match language {
            Language::Zh => &self.zh,
            Language::En => &self.en,
        }
    }
}

/// `[record]`: the statistics pass over activation items.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordConfig {
    /// The backend tap recorded, e.g. `mlp.gate_act`.
    pub tap: String,
    /// Which token positions count.
    pub positions: Positions,
    /// How items are grouped into labels.
    pub label_by: LabelBy,
    /// Languages of the items recorded.
    pub languages: Vec<Language>,
    /// Rows per forward batch (at least 1).
    pub batch_size: usize,
    /// At most this many items per label (0 = all).
    pub max_items_per_label: usize,
    /// Prompt templates (not used with `label_by = "value-condition"`, whose conditions have
    /// their own).
    pub template: TemplateConfig,
    /// Recording conditions, in order (`label_by = "value-condition"` only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RecordConditionConfig>,
    /// With `positions = "generated"`: at most this many new tokens per reply (default
    /// [`DEFAULT_RECORD_MAX_NEW_TOKENS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_new_tokens: Option<usize>,
    /// Poisson bootstrap replicates recorded for selection stability (0 = none; memory and
    /// file size grow `bootstrap + 1` times).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub bootstrap: usize,
    /// Keep every item's mean activation vector (`f32`), for exact rank AUROC.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_item_means: bool,
    /// Run the backend self-checks (taps, padding, batch) on a sample before recording; a
    /// failed check stops the run.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub self_check: bool,
    /// Largest relative error the self-checks accept (default 1e-3; bf16/f16 need ~5e-2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub self_check_tolerance: Option<f64>,
    /// Write a checkpoint of the statistics every this many batches, so an interrupted run
    /// resumes with `valex run --resume` (default [`DEFAULT_CHECKPOINT_EVERY`]; 0 = only when
    /// interrupted). It does not change any result, so it is not part of the statistics'
    /// provenance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<usize>,
}

/// Batches between two record checkpoints when `record.checkpoint_every` is not set.
pub const DEFAULT_CHECKPOINT_EVERY: usize = 50;

/// New tokens per reply with `positions = "generated"` when `record.max_new_tokens` is not set
/// (the C-voice follow-up's `max_tokens = 500`).
pub const DEFAULT_RECORD_MAX_NEW_TOKENS: usize = 500;

impl RecordConfig {
    /// `max_new_tokens` with its default applied.
    pub fn max_new_tokens(&self) -> usize {
        self.max_new_tokens.unwrap_or(DEFAULT_RECORD_MAX_NEW_TOKENS)
    }

    /// `checkpoint_every` with its default applied.
    pub fn checkpoint_every(&self) -> usize {
        self.checkpoint_every.unwrap_or(DEFAULT_CHECKPOINT_EVERY)
    }
}

/// `[evaluate]`: behaviour evaluation with and without the intervention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluateConfig {
    /// Evaluator component id, e.g. `evaluator/forced-choice`.
    #[serde(rename = "use")]
    pub id: String,
    /// Opaque params for the evaluator factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    /// Languages of the items evaluated.
    pub languages: Vec<Language>,
    /// At most this many evaluation items per value and language (0 = all).
    pub max_items_per_value: usize,
    /// Matched random neuron sets evaluated per value (0 disables the control).
    pub random_controls: usize,
    /// Also evaluate each value with every other label's set (the cross-value matrix).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cross_value: bool,
    /// Bootstrap resamples of the items for each condition's 95 % CI of Δ (0 = no CI).
    #[serde(default = "default_resamples")]
    pub bootstrap: usize,
    /// Sign-flip permutations for each condition's paired permutation p-value (0 = no p).
    #[serde(default = "default_resamples")]
    pub permutations: usize,
    /// Extra own-set conditions (`[[evaluate.conditions]]`), evaluated after `targeted`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionConfig>,
    /// Neutral text files per language (paths relative to the top-level manifest's folder):
    /// the perplexity side-effect check (`evaluation.side_effects`); absent = no check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neutral_text: Option<NeutralTextConfig>,
}

/// `[evaluate] neutral_text = { zh = "...", en = "..." }`: neutral text files per language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeutralTextConfig {
    /// The Chinese text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zh: Option<String>,
    /// The English text file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub en: Option<String>,
}

impl NeutralTextConfig {
    /// The file for `language`, if one is given.
    pub fn for_language(&self, language: Language) -> Option<&str> {
        match language {
            Language::Zh => self.zh.as_deref(),
            Language::En => self.en.as_deref(),
        }
    }
}

/// `[[evaluate.conditions]]`: one more intervention on each value's own neuron set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionConfig {
    /// The condition's name in results (`[A-Za-z0-9_.-]+`, unique, not a reserved name).
    pub name: String,
    /// Intervention component id, e.g. `intervention/scale`.
    #[serde(rename = "use")]
    pub id: String,
    /// Opaque params for the intervention factory (a JSON object).
    #[serde(default = "empty_object")]
    pub params: serde_json::Value,
    /// Where in each evaluated row the edit applies: `all` (default), `prompt` or
    /// `generated`.
    #[serde(default, skip_serializing_if = "EditPositions::is_all")]
    pub positions: EditPositions,
}

/// Names that `[[evaluate.conditions]]` may not take: those of the built-in conditions.
pub const RESERVED_CONDITION_NAMES: [&str; 2] = ["targeted", "baseline"];

/// True when `name` is reserved for a built-in condition (`targeted`, `baseline`,
/// `random-<n>`).
pub fn is_reserved_condition_name(name: &str) -> bool {
    RESERVED_CONDITION_NAMES.contains(&name)
        || name
            .strip_prefix("random-")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

fn default_resamples() -> usize {
    1000
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_label_by_use_documented_spellings() {
        for (name, p) in Positions::NAMES.iter().zip([
            Positions::All,
            Positions::Story,
            Positions::Rationale,
            Positions::StoryRationale,
        ]) {
            let parsed: Positions =
                serde_json::from_value(serde_json::Value::String((*name).into())).unwrap();
            assert_eq!(parsed, p);
        }
        let parsed: LabelBy = serde_json::from_str("\"value-language\"").unwrap();
        assert_eq!(parsed, LabelBy::ValueLanguage);
    }

    #[test]
    fn component_config_rejects_unknown_fields() {
        let err = serde_json::from_str::<ComponentConfig>(r#"{"use":"scorer/lape","parms":{}}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `parms`"), "{err}");
    }
}
