//! The example's smaller components: an intervention, a reporter and the panic probe that
//! the ABI tests use to show that a panicking plugin cannot take the host down.

use serde::Deserialize;
use serde_json::json;
use valex_plugin_sdk::{
    ActivationStats, InterventionComponent, ModelShape, NeuronEdit, NeuronSet, OutputFile,
    PluginError, ReporterComponent, ScorerComponent, ScorerOutput, parse_params,
};

/// Params of `intervention/example-scale`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScaleConfig {
    /// Factor applied to every selected neuron (0 zeroes them).
    #[serde(default)]
    factor: f32,
}

struct Scale(f32);

/// Builds `intervention/example-scale`.
///
/// # Errors
/// Unknown params or a non-finite factor.
pub fn scale_factory(
    params: &serde_json::Value,
) -> Result<Box<dyn InterventionComponent>, PluginError> {
    let c: ScaleConfig = parse_params(params)?;
    if !c.factor.is_finite() {
        return Err(PluginError::bad_params("factor: must be finite"));
    }
    Ok(Box::new(Scale(c.factor)))
}

impl InterventionComponent for Scale {
    fn edit(
        &mut self,
        set: &NeuronSet,
        tap: &str,
        model: &ModelShape,
    ) -> Result<NeuronEdit, PluginError> {
        if set.n_layers() > model.n_layers {
            return Err(PluginError::new(
                "intervention.bad_set",
                format!(
                    "set has {} layers, the model {}",
                    set.n_layers(),
                    model.n_layers
                ),
            ));
        }
        let mut layers = vec![Vec::new(); model.n_layers];
        for (l, neurons) in set.layers().iter().enumerate() {
            for &n in neurons {
                if n as usize >= model.n_neurons {
                    return Err(PluginError::new(
                        "intervention.bad_set",
                        format!("layer {l}: neuron {n} >= {}", model.n_neurons),
                    ));
                }
                layers[l].push((n, self.0));
            }
        }
        Ok(NeuronEdit::multiply(tap, layers))
    }
}

struct Summary;

/// Builds `reporter/example-summary` (no params).
///
/// # Errors
/// Any params.
pub fn summary_factory(
    params: &serde_json::Value,
) -> Result<Box<dyn ReporterComponent>, PluginError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct NoParams {}
    let _: NoParams = parse_params(params)?;
    Ok(Box::new(Summary))
}

impl ReporterComponent for Summary {
    fn report(&mut self, results: &serde_json::Value) -> Result<Vec<OutputFile>, PluginError> {
        let mut text = format!(
            "experiment: {}\n",
            results["experiment"]["name"].as_str().unwrap_or("?")
        );
        for s in results["selection"]["sets"]
            .as_array()
            .into_iter()
            .flatten()
        {
            text.push_str(&format!(
                "{}: {} neurons\n",
                s["label"].as_str().unwrap_or("?"),
                s["n_neurons"]
            ));
        }
        Ok(vec![OutputFile {
            name: "summary.txt".to_owned(),
            bytes: text.into_bytes(),
        }])
    }
}

/// Params of `scorer/panic-probe`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    /// `create` (panic in the factory), `score` (panic while scoring), `bad-output` (return a
    /// neuron index outside the model), `hang` (never return from `score`, for the host's
    /// per-call timeout) or `none`.
    when: String,
}

struct Probe(String);

/// Builds `scorer/panic-probe`.
///
/// # Errors
/// Unknown params.
///
/// # Panics
/// With `when = "create"`, on purpose.
pub fn panic_probe_factory(
    params: &serde_json::Value,
) -> Result<Box<dyn ScorerComponent>, PluginError> {
    let c: ProbeConfig = parse_params(params)?;
    if c.when == "create" {
        panic!("panic-probe: panicking in create as asked");
    }
    Ok(Box::new(Probe(c.when)))
}

impl ScorerComponent for Probe {
    fn score(
        &mut self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScorerOutput, PluginError> {
        match self.0.as_str() {
            "score" => panic!("panic-probe: panicking in score as asked"),
            // A plugin stuck for good (a deadlock, an endless loop): the host's call timeout
            // must end the run; this thread is abandoned and ends with the process.
            "hang" => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            "bad-output" => {
                let mut set = NeuronSet::empty(stats.n_layers);
                let beyond = u32::try_from(stats.n_neurons).unwrap_or(u32::MAX);
                set.insert(0, beyond);
                Ok(ScorerOutput {
                    sets: labels.iter().map(|l| (l.clone(), set.clone())).collect(),
                    scores: Vec::new(),
                    details: json!(null),
                })
            }
            _ => Ok(ScorerOutput::new(
                labels
                    .iter()
                    .map(|l| (l.clone(), NeuronSet::empty(stats.n_layers)))
                    .collect(),
            )),
        }
    }
}
