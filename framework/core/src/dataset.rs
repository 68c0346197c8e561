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

/// One of the 12 core social values the value study tests (../shared/METHOD.md §1.1).
///
/// Items name their value by [`CoreValue::zh`]; templates can show the name in the item's
/// language (`{value_name}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreValue {
    /// Chinese name, simplified characters: the id items use (`诚信`).
    pub zh: &'static str,
    /// English name (`Integrity`).
    pub en: &'static str,
    /// File-name slug of valex's own benchmark (`integrity`).
    pub slug: &'static str,
    /// The name in traditional characters (`誠信`), as some released labels write it.
    pub traditional: &'static str,
}

const fn core(
    zh: &'static str,
    en: &'static str,
    slug: &'static str,
    traditional: &'static str,
) -> CoreValue {
    CoreValue {
        zh,
        en,
        slug,
        traditional,
    }
}

/// The 12 values in the order of the released code (national, societal, individual level).
pub const CORE_VALUES: [CoreValue; 12] = [
    core("富强", "Prosperity", "prosperity", "富強"),
    core("民主", "Democracy", "democracy", "民主"),
    core("文明", "Civility", "civility", "文明"),
    core("和谐", "Harmony", "harmony", "和諧"),
    core("自由", "Freedom", "freedom", "自由"),
    core("平等", "Equality", "equality", "平等"),
    core("公正", "Justice", "justice", "公正"),
    core("法治", "Rule of Law", "rule-of-law", "法治"),
    core("爱国", "Patriotism", "patriotism", "愛國"),
    core("敬业", "Dedication", "dedication", "敬業"),
    core("诚信", "Integrity", "integrity", "誠信"),
    core("友善", "Friendliness", "friendliness", "友善"),
];

/// The core value whose simplified or traditional name is `name`.
pub fn core_value(name: &str) -> Option<&'static CoreValue> {
    CORE_VALUES
        .iter()
        .find(|v| v.zh == name || v.traditional == name)
}

/// The name of value id `value` in `language`: the English name of a core value for
/// English, else the id itself.
pub fn value_name(value: &str, language: Language) -> &str {
    match (language, CORE_VALUES.iter().find(|v| v.zh == value)) {
        (Language::En, Some(v)) => v.en,
        _ => value,
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
    /// Rows the reader skipped because its params allowed it (`skip_invalid = true`); a
    /// reader never drops a row without listing it here. The runner reports them.
    pub skipped: Vec<SkippedRow>,
}

/// One row a reader skipped instead of failing (`skip_invalid = true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedRow {
    /// The file the row is in.
    pub file: std::path::PathBuf,
    /// Where in the file, as a reader names it: `line 3`, `sheet 富强, row 226`.
    pub location: String,
    /// Why it was skipped: the error it would otherwise have raised, without file and
    /// location (`column Action1: empty cell`).
    pub reason: String,
}

impl std::fmt::Display for SkippedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.file.display(),
            self.location,
            self.reason
        )
    }
}

/// A dataset reader (`dataset/jsonl`, `dataset/c-voice`).
pub trait Dataset: Send + Sync {
    /// Reads the items.
    ///
    /// # Errors
    /// Missing files, malformed rows (the error names file and row).
    fn load(&self) -> Result<DatasetLoad, ComponentError>;
}
