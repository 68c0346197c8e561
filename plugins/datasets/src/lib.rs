//! valex-datasets: built-in dataset readers.
//!
//! - `dataset/jsonl`: valex's own JSON Lines format (one [`valex_core::Item`] per line,
//!   documented with a JSON Schema in docs/datasets.md).
//!
//! Readers do file I/O and turn every malformed row into one error line naming the file and
//! the row; they never return partial datasets.

mod jsonl;

pub use jsonl::{JsonlConfig, JsonlDataset};

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
        Ok(())
    }
}
