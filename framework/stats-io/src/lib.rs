//! valex-stats-io: the files between valex stages.
//!
//! It owns the statistics file (`<stem>.safetensors` + `<stem>.json`, [`write_stats`] /
//! [`read_stats`]; token level, item level, kept item means, bootstrap replicates), the reader
//! of released activation counts ([`read_released_counts`]), neuron-set files
//! ([`write_neuron_sets`] / [`read_neuron_sets`]) with their [`SetProvenance`], LAPE's mask
//! layout ([`export_lape_masks`] / [`import_lape_masks`]) and [`sha256_file`].
//! It depends on `valex-core` for the data types and never on a scorer or a backend.

pub mod error;
pub mod hash;
pub mod lape_layout;
pub mod neuron_sets;
pub mod provenance;
pub mod released;
pub mod stats_file;

mod atomic;
mod st_reader;

pub use error::{FileKind, StatsIoError, StatsIoErrorKind};
pub use hash::sha256_file;
pub use lape_layout::{
    LAPE_MASK_FORMAT, export_lape_masks, import_lape_masks, import_lape_masks_from_bytes,
};
pub use neuron_sets::{read_neuron_sets, read_neuron_sets_from_bytes, write_neuron_sets};
pub use provenance::SetProvenance;
pub use released::{RELEASED_COUNTS, RELEASED_TAP, RELEASED_TENSORS, read_released_counts};
pub use stats_file::{
    EncodedStats, STATS_FORMAT, STATS_VERSION, StatsPaths, encode_stats, read_stats,
    read_stats_from_bytes, stats_paths, write_stats,
};
