//! valex-datasets: built-in dataset readers and the data checks behind `valex data stats`.
//!
//! - `dataset/jsonl`: valex's own JSON Lines format (one [`valex_core::Item`] per line,
//!   documented with a JSON Schema in docs/datasets.md); a file or a folder of files.
//! - `dataset/c-voice`: the released C-voice xlsx files, read as published.
//! - [`stats`]: counts, length distributions, exact and near duplicates, parallel coverage.
//!
//! Readers do file I/O and turn every malformed row into one error naming the file and the
//! row (and sheet and column for spreadsheets); they never return partial datasets, except
//! that `skip_invalid = true` skips bad rows and lists each one in
//! [`valex_core::DatasetLoad::skipped`].

mod c_voice;
mod jsonl;
mod rows;
pub mod similarity;
pub mod stats;
mod values;

pub use c_voice::{
    ACTIVATION_COLUMNS, ACTIVATION_SUFFIX, CVoiceConfig, CVoiceDataset, EVALUATION_COLUMNS,
    EVALUATION_FILE, Part, open_bytes, parse_label,
};
pub use jsonl::{JsonlConfig, JsonlDataset};
pub use values::{CORE_VALUES, CoreValue, core_value};

use valex_core::registry::AnyFactory;
use valex_core::{Plugin, RegistryBuilder, RegistryError};

/// Registers every built-in dataset reader.
pub struct DatasetsPlugin;

impl Plugin for DatasetsPlugin {
    fn name(&self) -> &'static str {
        "valex-datasets"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            "dataset/jsonl",
            env!("CARGO_PKG_VERSION"),
            "valex's JSON Lines value-dilemma format (docs/datasets.md)",
            AnyFactory::Dataset(jsonl::factory),
        )?;
        r.register(
            "dataset/c-voice",
            env!("CARGO_PKG_VERSION"),
            "the released C-voice xlsx files (<value>-final.xlsx, test-zh-200.xlsx)",
            AnyFactory::Dataset(c_voice::factory),
        )?;
        Ok(())
    }
}
