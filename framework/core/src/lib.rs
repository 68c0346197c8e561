//! valex-core: the vocabulary every other valex crate speaks.
//!
//! It owns component ids, the object-safe extension traits (model backend, dataset, scorer,
//! intervention, evaluator, reporter), the [`Registry`] that maps ids to factories, and the
//! plain data types that flow between stages (items, statistics, neuron sets, results).
//! It performs no I/O and depends on no other workspace crate.

pub mod batching;
pub mod dataset;
pub mod error;
pub mod evaluator;
pub mod id;
pub mod intervention;
pub mod model;
pub mod neurons;
pub mod registry;
pub mod reporter;
pub mod rng;
pub mod scorer;
pub mod stats;

pub use batching::BatchPolicy;
pub use dataset::{Dataset, DatasetLoad, Item, ItemKind, Language};
pub use error::{ComponentError, ConfigError, ErrorClass};
pub use evaluator::{EvalOutcome, EvalRequest, Evaluator, Unscored, UnscoredExample};
pub use id::{ComponentId, Kind};
pub use intervention::{
    EditContext, EditPositions, Intervention, NeuronEdit, NeuronOp, StatisticsSource,
};
pub use model::{
    BackendLoader, Capabilities, Encoding, GenerateRequest, Generated, Inspection, ModelBackend,
    ModelInfo, RecordBatch, ScoreRequest, StopReason, TapValues,
};
pub use neurons::NeuronSet;
pub use registry::{
    AnyFactory, AnySharedFactory, ComponentInfo, FactoryContext, Plugin, Registry, RegistryBuilder,
    RegistryError, SharedFactory,
};
pub use reporter::{OutputFile, Reporter};
pub use rng::SplitMix64;
pub use scorer::{ScoreOutput, Scorer};
pub use stats::{
    ActivationStats, Bootstrap, ItemMeans, LabelStats, MergeError, Moments, poisson_weights,
};

/// The version of valex, shared by every workspace crate.
pub const VALEX_VERSION: &str = env!("CARGO_PKG_VERSION");
