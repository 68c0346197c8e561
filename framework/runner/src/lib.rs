//! valex-runner: executes an experiment and owns the run directory.
//!
//! Stages, in order, each optional after the first: load data and model → record per-label
//! neuron statistics (written as a statistics file) → score and select neuron sets (written
//! as neurons.json) → evaluate behaviour under the baseline, the selected sets and matched
//! random controls → reporters (results.json, ...). run.json records versions, hashes of every
//! input file and timings. A run is staged in a hidden folder beside its run directory; an
//! interrupted or failed run stays there, checkpointed, for `valex run --resume`. Depends on
//! valex-core, valex-manifest's outputs (through [`RunSpec`]) and valex-stats-io; it knows no
//! concrete backend or scorer.

pub mod analysis;
pub mod check;
mod controls;
mod error;
mod evaluate;
pub mod grouped;
mod perplexity;
mod pipeline;
pub mod progress;
mod provenance;
mod record;
mod resume;
mod run_dir;
mod spec;
pub mod stability;
mod verify;

pub use controls::{matched_random, other_label_sets};
pub use error::RunError;
pub use pipeline::{RunOptions, RunSummary, record_statistics, run};
pub use provenance::{GIT_DESCRIBE, utc_timestamp};
pub use record::{Shard, merge_statistics};
pub use resume::{InputRecord, PartialRun, Progress, RecordProgress};
pub use run_dir::{RunDir, write_atomic};
pub use spec::{
    ComponentRecord, Components, RunSpec, condition_label, label_of, overlaps, position_spans,
    render_item, spec_from_plan,
};
pub use verify::{
    InputProblem, OutputDiff, check_inputs, compare_outputs, item_changes, item_digests,
};
