//! Proxies: external components behind the core traits ([`Scorer`], [`Intervention`],
//! [`Reporter`]), so a manifest uses `scorer/<name>` the same way for built-in and external
//! components. Each proxy owns one plugin instance and an `Arc` of its library.
//!
//! One instance is called from one thread at a time (a mutex). A panic or a timed-out call
//! (see `worker.rs`) poisons the instance: it is never called again, not even `destroy`.

use std::sync::{Arc, Mutex, PoisonError};

use valex_core::{
    ActivationStats, ComponentError, EditContext, Intervention, ModelInfo, NeuronEdit, NeuronSet,
    OutputFile, Reporter, ScoreOutput, Scorer,
};
use valex_plugin_abi::{VX_METHOD_EDIT, VX_METHOD_REPORT, VX_METHOD_SCORE, VxHandle, VxTensorView};

use crate::codec;
use crate::error::PluginError;
use crate::library::LoadedLibrary;

struct State {
    handle: VxHandle,
    poisoned: bool,
}

/// One plugin instance.
struct Instance {
    lib: Arc<LoadedLibrary>,
    id: String,
    state: Mutex<State>,
}

impl Instance {
    fn create(
        lib: &Arc<LoadedLibrary>,
        id: &str,
        params: &serde_json::Value,
    ) -> Result<Instance, PluginError> {
        let handle = lib.create(id, params)?;
        Ok(Instance {
            lib: Arc::clone(lib),
            id: id.to_owned(),
            state: Mutex::new(State {
                handle,
                poisoned: false,
            }),
        })
    }

    fn malformed(&self, message: String) -> PluginError {
        PluginError::Malformed {
            plugin: self.lib.label(),
            component: self.id.clone(),
            message,
        }
    }

    /// Invokes `method`; a panic poisons the instance.
    fn call(
        &self,
        method: u32,
        input: &str,
        tensors: &[VxTensorView],
    ) -> Result<Vec<u8>, PluginError> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if st.poisoned {
            return Err(PluginError::Poisoned {
                plugin: self.lib.label(),
                component: self.id.clone(),
            });
        }
        let out = self.lib.invoke(st.handle, &self.id, method, input, tensors);
        if let Err(e) = &out
            && e.is_fault()
        {
            // A timed-out call still runs on its abandoned thread: the instance is not ours.
            st.poisoned = matches!(
                e,
                PluginError::Panicked { .. } | PluginError::TimedOut { .. }
            );
            tracing::error!(plugin = %self.lib.info().name, component = %self.id, error = %e, "plugin call failed");
        }
        out
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !st.poisoned {
            self.lib.destroy(st.handle);
        }
    }
}

/// A plugin failure as a component error: faults are exit 3, deliberate errors stage errors.
/// The message is the whole error; it is not kept as the source too, which would print it
/// twice in the one-line error chain (issue 10).
fn component_error(e: PluginError) -> ComponentError {
    if e.is_fault() {
        ComponentError::plugin(e.to_string())
    } else {
        ComponentError::stage(e.to_string())
    }
}

/// What an external scorer returned, with the per-neuron scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalScoreOutput {
    /// Sets and details, as the [`Scorer`] trait returns them.
    pub output: ScoreOutput,
    /// Per-neuron scores per label, `[n_layers * n_neurons]` (empty if the plugin sent none).
    pub scores: Vec<(String, Vec<f64>)>,
}

/// An external `scorer/*`.
pub struct ExternalScorer(Instance);

impl ExternalScorer {
    /// Creates an instance of `id` in `lib` with `params`.
    ///
    /// # Errors
    /// The plugin's error (bad params), a panic or malformed output.
    pub fn create(
        lib: &Arc<LoadedLibrary>,
        id: &str,
        params: &serde_json::Value,
    ) -> Result<Self, PluginError> {
        Instance::create(lib, id, params).map(ExternalScorer)
    }

    /// Scores like [`Scorer::score`] and also returns the per-neuron scores.
    ///
    /// # Errors
    /// The plugin's error, a panic (the instance is then poisoned) or malformed output.
    pub fn score_with_scores(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ExternalScoreOutput, PluginError> {
        self.run(stats, labels, true)
    }

    fn run(
        &self,
        stats: &ActivationStats,
        labels: &[String],
        want_scores: bool,
    ) -> Result<ExternalScoreOutput, PluginError> {
        let (input, views) = codec::encode_score(stats, labels, want_scores);
        // `views` borrow `stats`, which outlives the call.
        let bytes = self.0.call(VX_METHOD_SCORE, &input, &views)?;
        let d = codec::decode_score(&bytes, stats, labels).map_err(|m| self.0.malformed(m))?;
        Ok(ExternalScoreOutput {
            output: ScoreOutput {
                sets: d.sets,
                details: d.details,
            },
            scores: d.scores,
        })
    }
}

impl Scorer for ExternalScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        self.run(stats, labels, false)
            .map(|o| o.output)
            .map_err(component_error)
    }
}

/// An external `intervention/*`.
pub struct ExternalIntervention(Instance);

impl ExternalIntervention {
    /// Creates an instance of `id` in `lib` with `params`.
    ///
    /// # Errors
    /// The plugin's error (bad params), a panic or malformed output.
    pub fn create(
        lib: &Arc<LoadedLibrary>,
        id: &str,
        params: &serde_json::Value,
    ) -> Result<Self, PluginError> {
        Instance::create(lib, id, params).map(ExternalIntervention)
    }
}

/// ABI v1 carries no statistics to plugins: the context is not forwarded, and
/// [`Intervention::statistics`] keeps its default (none).
impl Intervention for ExternalIntervention {
    fn edit(
        &self,
        set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        _cx: &EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError> {
        let input = codec::encode_edit(set, tap, info);
        let bytes = self
            .0
            .call(VX_METHOD_EDIT, &input, &[])
            .map_err(component_error)?;
        codec::decode_edit(&bytes, tap, info).map_err(|m| component_error(self.0.malformed(m)))
    }
}

/// An external `reporter/*`.
pub struct ExternalReporter(Instance);

impl ExternalReporter {
    /// Creates an instance of `id` in `lib` with `params`.
    ///
    /// # Errors
    /// The plugin's error (bad params), a panic or malformed output.
    pub fn create(
        lib: &Arc<LoadedLibrary>,
        id: &str,
        params: &serde_json::Value,
    ) -> Result<Self, PluginError> {
        Instance::create(lib, id, params).map(ExternalReporter)
    }
}

impl Reporter for ExternalReporter {
    fn report(&self, results: &serde_json::Value) -> Result<Vec<OutputFile>, ComponentError> {
        let input = codec::encode_report(results);
        let bytes = self
            .0
            .call(VX_METHOD_REPORT, &input, &[])
            .map_err(component_error)?;
        codec::decode_report(&bytes).map_err(|m| component_error(self.0.malformed(m)))
    }
}
