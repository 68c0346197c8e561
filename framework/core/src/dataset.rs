//! Datasets: value dilemmas for recording (activation) and for behaviour evaluation.

use serde::{Deserialize, Serialize};

use crate::error::ComponentError;

/// Language of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Chinese.
    Zh,
    /// English.
    En,
}

impl Language {
    /// `zh` or `en`.
    pub fn as_str(self) -> &'static str {
        match self {
            Language::Zh => "zh",
            Language::En => "en",
        }
    }
}

/// What an item is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    /// Read by the model while its neurons are recorded (has a rationale).
    Activation,
    /// Used to measure the model's choices (no rationale).
    Evaluation,
}

/// One value dilemma.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Unique id within the dataset.
    pub id: String,
    /// The value the dilemma tests, by its Chinese name (e.g. `诚信`).
    pub value: String,
    /// Language of the texts.
    pub language: Language,
    /// Activation or evaluation item.
    pub kind: ItemKind,
    /// The situation.
    pub story: String,
    /// Why the aligned option is right (activation items).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// The value-aligned option.
    pub aligned: String,
    /// The value-violating option.
    pub violating: String,
    /// The competing motive ("X" in "V vs X").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_motive: Option<String>,
    /// Links an item to its translation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_id: Option<String>,
}

/// Items plus the files they were read from (for provenance hashes).
#[derive(Debug, Clone, Default)]
pub struct DatasetLoad {
    /// The items, in file order.
    pub items: Vec<Item>,
    /// Every file read.
    pub files: Vec<std::path::PathBuf>,
}

/// A dataset reader (`dataset/jsonl`, `dataset/c-voice`).
pub trait Dataset: Send + Sync {
    /// Reads the items.
    ///
    /// # Errors
    /// Missing files, malformed rows (the error names file and row).
    fn load(&self) -> Result<DatasetLoad, ComponentError>;
}
