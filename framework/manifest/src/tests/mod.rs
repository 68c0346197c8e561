//! Crate tests that load real files (inside `figment::Jail`, which gives each test its own
//! temporary working directory, so paths in messages are short and stable) and resolve them
//! against a tiny registry of dummy components built here.

mod errors;
mod layering;
mod plan;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use valex_core::{
    ActivationStats, AnyFactory, BackendLoader, ComponentError, ConfigError, Dataset, DatasetLoad,
    EvalOutcome, EvalRequest, Evaluator, FactoryContext, Intervention, ModelBackend, ModelInfo,
    NeuronEdit, NeuronSet, OutputFile, Plugin, Registry, RegistryBuilder, RegistryError, Reporter,
    ScoreOutput, Scorer,
};

use crate::{LoadOptions, LoadedManifest, load};

/// A valid minimal manifest body (after `schema_version`).
pub(crate) const MINIMAL: &str = r#"
[experiment]
name = "demo"

[model]
backend = "backend/dummy"
params = { path = "m" }

[dataset]
use = "dataset/jsonl"
params = { path = "data/demo.jsonl" }
"#;

/// Runs `f` in a fresh jail (own temp cwd), creating `files` first.
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail fixes the closure's error type"
)]
pub(crate) fn with_files(files: &[(&str, &str)], f: impl FnOnce()) {
    figment::Jail::expect_with(|jail| {
        for (path, text) in files {
            if let Some(dir) = Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                jail.create_dir(dir)?;
            }
            jail.create_file(path, text)?;
        }
        f();
        Ok(())
    });
}

pub(crate) fn opts(env: &[(&str, &str)], sets: &[&str]) -> LoadOptions {
    LoadOptions {
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        sets: sets.iter().map(|s| (*s).to_owned()).collect(),
    }
}

pub(crate) fn load_ok(path: &str, o: &LoadOptions) -> LoadedManifest {
    match load(Path::new(path), o) {
        Ok(l) => l,
        Err(e) => panic!("expected {path} to load, got:\n{e}"),
    }
}

pub(crate) fn load_err(path: &str, o: &LoadOptions) -> String {
    match load(Path::new(path), o) {
        Ok(l) => panic!("expected errors, got:\n{}", l.resolved_toml),
        Err(e) => e.to_string(),
    }
}

// ---- a tiny registry of dummy components -------------------------------------------------

struct DummyLoader;
impl BackendLoader for DummyLoader {
    fn input_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }
    fn load(&self) -> Result<Box<dyn ModelBackend>, ComponentError> {
        Err(ComponentError::input("the dummy backend has no model"))
    }
}

/// Returns its resolved path as the only "file read", so tests can see path resolution.
struct DummyDataset(PathBuf);
impl Dataset for DummyDataset {
    fn load(&self) -> Result<DatasetLoad, ComponentError> {
        Ok(DatasetLoad {
            items: Vec::new(),
            files: vec![self.0.clone()],
            skipped: Vec::new(),
        })
    }
}

struct DummyScorer;
impl Scorer for DummyScorer {
    fn score(
        &self,
        stats: &ActivationStats,
        labels: &[String],
    ) -> Result<ScoreOutput, ComponentError> {
        Ok(ScoreOutput {
            sets: labels
                .iter()
                .map(|l| (l.clone(), NeuronSet::empty(stats.n_layers)))
                .collect(),
            details: serde_json::Value::Null,
        })
    }
}

struct DummyIntervention;
impl Intervention for DummyIntervention {
    fn edit(
        &self,
        _set: &NeuronSet,
        tap: &str,
        info: &ModelInfo,
        _cx: &valex_core::EditContext<'_>,
    ) -> Result<NeuronEdit, ComponentError> {
        Ok(NeuronEdit::multiply(tap, vec![Vec::new(); info.n_layers]))
    }
}

struct DummyEvaluator;
impl Evaluator for DummyEvaluator {
    fn evaluate(
        &self,
        _backend: &mut dyn ModelBackend,
        request: EvalRequest<'_>,
    ) -> Result<EvalOutcome, ComponentError> {
        Ok(EvalOutcome {
            metric: "none".into(),
            value: 0.0,
            per_item: vec![0.0; request.items.len()],
            unscored: None,
        })
    }
}

struct DummyReporter;
impl Reporter for DummyReporter {
    fn report(&self, _results: &serde_json::Value) -> Result<Vec<OutputFile>, ComponentError> {
        Ok(Vec::new())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PathParams {
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParams {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LapeParams {
    #[serde(default = "default_top_rate")]
    top_rate: f64,
}

fn default_top_rate() -> f64 {
    0.01
}

fn backend(
    p: &serde_json::Value,
    _: &FactoryContext,
) -> Result<Box<dyn BackendLoader>, ConfigError> {
    ConfigError::parse_params::<PathParams>(p)?;
    Ok(Box::new(DummyLoader))
}

fn dataset(p: &serde_json::Value, cx: &FactoryContext) -> Result<Box<dyn Dataset>, ConfigError> {
    let params: PathParams = ConfigError::parse_params(p)?;
    Ok(Box::new(DummyDataset(cx.resolve(&params.path))))
}

fn lape(p: &serde_json::Value, _: &FactoryContext) -> Result<Box<dyn Scorer>, ConfigError> {
    let params: LapeParams = ConfigError::parse_params(p)?;
    if !(params.top_rate > 0.0 && params.top_rate <= 1.0) {
        return Err(ConfigError::new(
            Some("top_rate"),
            format!("must be in (0, 1], found {}", params.top_rate),
        ));
    }
    Ok(Box::new(DummyScorer))
}

fn zero(p: &serde_json::Value, _: &FactoryContext) -> Result<Box<dyn Intervention>, ConfigError> {
    ConfigError::parse_params::<NoParams>(p)?;
    Ok(Box::new(DummyIntervention))
}

fn forced_choice(
    p: &serde_json::Value,
    _: &FactoryContext,
) -> Result<Box<dyn Evaluator>, ConfigError> {
    ConfigError::parse_params::<NoParams>(p)?;
    Ok(Box::new(DummyEvaluator))
}

fn json_reporter(
    p: &serde_json::Value,
    _: &FactoryContext,
) -> Result<Box<dyn Reporter>, ConfigError> {
    ConfigError::parse_params::<NoParams>(p)?;
    Ok(Box::new(DummyReporter))
}

struct TestPlugin;
impl Plugin for TestPlugin {
    fn name(&self) -> &'static str {
        "manifest-tests"
    }
    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            "backend/dummy",
            "0.1.0",
            "no model",
            AnyFactory::Backend(backend),
        )?
        .register(
            "dataset/jsonl",
            "0.1.0",
            "path only",
            AnyFactory::Dataset(dataset),
        )?
        .register(
            "scorer/lape",
            "0.1.0",
            "checks top_rate",
            AnyFactory::Scorer(lape),
        )?
        .register(
            "intervention/zero",
            "0.1.0",
            "",
            AnyFactory::Intervention(zero),
        )?
        .register(
            "evaluator/forced-choice",
            "0.1.0",
            "",
            AnyFactory::Evaluator(forced_choice),
        )?
        .register(
            "reporter/json",
            "0.1.0",
            "",
            AnyFactory::Reporter(json_reporter),
        )?;
        Ok(())
    }
}

pub(crate) fn registry() -> Registry {
    let mut b = RegistryBuilder::new();
    b.add_plugin(&TestPlugin).expect("test ids are valid");
    b.build()
}
