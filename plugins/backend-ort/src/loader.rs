//! `backend/ort` params, the [`OrtLoader`] they build, and the [`OrtPlugin`] that registers
//! it.
//!
//! Owns parsing of `path`, `tokenizer`, `ort_dylib`, `device`, `fallback`,
//! `graph_optimization`, `disabled_optimizers`, `intra_threads`, `batch_size`,
//! `max_batch_tokens` and `tap_tensors`, and the load sequence: read and check the `.onnx` file, find the FFN sites
//! (or take the named tensors), reconcile them with `config.json`, read the tokenizer, hash
//! the files, build the first session. Parsing never touches the model files; loading does.

use std::path::PathBuf;

use serde::Deserialize;
use valex_core::{
    AnyFactory, BackendLoader, ComponentError, ConfigError, FactoryContext, ModelBackend,
    ModelInfo, Plugin, RegistryBuilder, RegistryError,
};

use crate::backend::{OrtBackend, Parts};
use crate::batching::BatchPolicy;
use crate::files::{ConfigFacts, ModelPaths, content_sha256};
use crate::graph::GraphIndex;
use crate::model_file::OnnxModel;
use crate::pattern::{self, FfnSite};
use crate::session::{DeviceSpec, OptLevel, SessionOptions};

/// The component id.
pub const BACKEND_ID: &str = "backend/ort";

/// Rows per forward when `batch_size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 8;

/// Params of `backend/ort`, as written in a manifest's `[model.params]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrtConfig {
    /// Model folder (with `model.onnx` or one `*.onnx`, `tokenizer.json`, optional
    /// `config.json`) or an `.onnx` file; relative to the manifest.
    pub path: String,
    /// Tokenizer file (default: `tokenizer.json` beside the model).
    pub tokenizer: Option<String>,
    /// The ONNX Runtime library (default: `ORT_DYLIB_PATH`).
    pub ort_dylib: Option<String>,
    /// `cpu` (default), `cuda` or `cuda:N`.
    pub device: Option<String>,
    /// Run on the CPU with a warning when the requested provider is unavailable.
    pub fallback: Option<bool>,
    /// `disable`, `basic`, `extended` or `all` (default).
    pub graph_optimization: Option<OptLevel>,
    /// Intra-op threads (default: ONNX Runtime's choice).
    pub intra_threads: Option<usize>,
    /// Most rows per forward (default 8).
    pub batch_size: Option<usize>,
    /// Most padded tokens (rows × longest row) per forward (default: no budget).
    pub max_batch_tokens: Option<usize>,
    /// The FFN activation tensor of every layer, or one template with `{layer}`.
    pub tap_tensors: Option<Vec<String>>,
    /// ONNX Runtime optimizers not to run, by name (e.g. `FastGeluFusion`; default none).
    pub disabled_optimizers: Option<Vec<String>>,
}

/// Parsed `backend/ort` params: cheap to build, loads the model on demand.
#[derive(Debug, Clone)]
pub struct OrtLoader {
    paths: ModelPaths,
    options: SessionOptions,
    policy: BatchPolicy,
    tap_tensors: Option<Vec<String>>,
}

impl OrtLoader {
    /// Builds a loader from params, resolving relative paths with `cx`.
    ///
    /// # Errors
    /// Bad device, `batch_size`, `max_batch_tokens` or `intra_threads` of 0, or an empty
    /// `tap_tensors`.
    pub fn from_config(cfg: OrtConfig, cx: &FactoryContext) -> Result<Self, ConfigError> {
        let fallback = cfg.fallback.unwrap_or(false);
        let device = DeviceSpec::parse(cfg.device.as_deref().unwrap_or("cpu"), fallback)?;
        for (key, v) in [
            ("batch_size", cfg.batch_size),
            ("max_batch_tokens", cfg.max_batch_tokens),
            ("intra_threads", cfg.intra_threads),
        ] {
            if v == Some(0) {
                return Err(ConfigError::new(
                    Some(key),
                    format!("{key} must be at least 1"),
                ));
            }
        }
        if cfg.tap_tensors.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new(
                Some("tap_tensors"),
                "tap_tensors is empty; name one tensor per layer or one template with {layer}",
            ));
        }
        Ok(OrtLoader {
            paths: ModelPaths::resolve(
                &cx.resolve(&cfg.path),
                cfg.tokenizer.map(|t| cx.resolve(&t)),
            ),
            options: SessionOptions {
                dylib: cfg.ort_dylib.map(|p| cx.resolve(&p)),
                device,
                fallback,
                optimization: cfg.graph_optimization.unwrap_or_default(),
                intra_threads: cfg.intra_threads,
                disabled_optimizers: cfg.disabled_optimizers.unwrap_or_default(),
            },
            policy: BatchPolicy {
                max_rows: cfg.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
                max_tokens: cfg.max_batch_tokens,
            },
            tap_tensors: cfg.tap_tensors,
        })
    }

    /// A loader for a model folder or `.onnx` file on the CPU, with the library from
    /// `ORT_DYLIB_PATH`.
    pub fn for_path(path: impl Into<PathBuf>) -> Self {
        OrtLoader {
            paths: ModelPaths::resolve(&path.into(), None),
            options: SessionOptions::default(),
            policy: BatchPolicy::rows(DEFAULT_BATCH_SIZE),
            tap_tensors: None,
        }
    }

    /// Sets the session options.
    #[must_use]
    pub fn with_options(mut self, options: SessionOptions) -> Self {
        self.options = options;
        self
    }

    /// Sets how rows are grouped into forwards.
    #[must_use]
    pub fn with_policy(mut self, policy: BatchPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Names the FFN activation tensors (see [`pattern::sites_from_names`]).
    #[must_use]
    pub fn with_tap_tensors(mut self, names: Vec<String>) -> Self {
        self.tap_tensors = Some(names);
        self
    }

    /// Loads the model as the concrete backend.
    ///
    /// # Errors
    /// See [`BackendLoader::load`].
    pub fn load_backend(&self) -> Result<OrtBackend, ComponentError> {
        let model = OnnxModel::read(&self.paths.onnx).map_err(|e| {
            if self.paths.onnx.exists() {
                e
            } else {
                ComponentError::input(format!(
                    "model {} does not exist (path names a folder with model.onnx or an .onnx file)",
                    self.paths.onnx.display()
                ))
            }
        })?;
        let facts = match &self.paths.config {
            Some(p) => ConfigFacts::read(p)?,
            None => ConfigFacts::default(),
        };
        let label = model.path.display().to_string();
        let ix = GraphIndex::new(model.graph());
        let sites = match &self.tap_tensors {
            Some(names) => pattern::sites_from_names(&ix, names, facts.n_layers, &label)?,
            None => pattern::find_sites(&ix),
        };
        if sites.is_empty() {
            return Err(ComponentError::input(format!(
                "model {label}: no FFN activation found; {}; {}",
                pattern::SEARCHED,
                pattern::NAMING_HELP
            )));
        }
        let info = model_info(&model, &sites, &facts, &label, self.files_of(&model))?;
        let tokenizer = tokenizers::Tokenizer::from_file(&self.paths.tokenizer).map_err(|e| {
            let mut err = ComponentError::input(format!(
                "tokenizer {} could not be read",
                self.paths.tokenizer.display()
            ));
            err.source = Some(e);
            err
        })?;
        tracing::debug!(model = %label, layers = info.n_layers, neurons = info.n_neurons, device = ?self.options.device, "onnx model checked");
        OrtBackend::new(Parts {
            model,
            sites,
            tokenizer,
            info,
            policy: self.policy,
            options: self.options.clone(),
        })
    }

    /// Every file the model reads, in hashing order: the `.onnx`, its external data files
    /// (sorted), `config.json`, the tokenizer.
    fn files_of(&self, model: &OnnxModel) -> Vec<PathBuf> {
        let mut files = vec![self.paths.onnx.clone()];
        files.extend(model.external_files.iter().cloned());
        files.extend(self.paths.config.clone());
        files.push(self.paths.tokenizer.clone());
        files
    }
}

/// Shape and identity from the graph, reconciled with `config.json`.
fn model_info(
    model: &OnnxModel,
    sites: &[FfnSite],
    facts: &ConfigFacts,
    label: &str,
    files: Vec<PathBuf>,
) -> Result<ModelInfo, ComponentError> {
    if let Some(n) = facts.n_layers
        && n != sites.len()
    {
        return Err(ComponentError::input(format!(
            "model {label}: {} FFN activations found but config.json says {n} layers; {}",
            sites.len(),
            pattern::NAMING_HELP
        )));
    }
    let widths: Vec<usize> = sites.iter().filter_map(|s| s.width).collect();
    let n_neurons = match (facts.n_neurons, widths.first()) {
        (Some(c), Some(&w)) if c != w => {
            return Err(ComponentError::input(format!(
                "model {label}: the FFN is {w} wide in the graph but config.json says intermediate_size {c}"
            )));
        }
        (Some(c), _) => c,
        (None, Some(&w)) => w,
        (None, None) => {
            return Err(ComponentError::input(format!(
                "model {label}: the FFN width cannot be read from the graph; put config.json (with intermediate_size) beside it"
            )));
        }
    };
    let vocab = facts
        .vocab_size
        .or_else(|| {
            let out = model.graph().output.iter().find(|o| o.name() == model.logits)?;
            let (_, dims) = crate::proto::tensor_type(out)?;
            dims?.last().copied().flatten().and_then(|v| usize::try_from(v).ok())
        })
        .ok_or_else(|| {
            ComponentError::input(format!(
                "model {label}: the vocabulary size cannot be read from the logits output; put config.json (with vocab_size) beside it"
            ))
        })?;
    Ok(ModelInfo {
        architecture: facts
            .model_type
            .clone()
            .unwrap_or_else(|| "onnx".to_owned()),
        n_layers: sites.len(),
        n_neurons,
        hidden_size: facts.hidden_size.unwrap_or(0),
        vocab_size: vocab,
        content_sha256: content_sha256(&files)?,
    })
}

impl BackendLoader for OrtLoader {
    fn input_files(&self) -> Vec<PathBuf> {
        // A model that cannot be read lists its known files; loading reports the problem.
        match OnnxModel::read(&self.paths.onnx) {
            Ok(model) => self.files_of(&model),
            Err(_) => {
                let mut f = vec![self.paths.onnx.clone()];
                f.extend(self.paths.config.clone());
                f.push(self.paths.tokenizer.clone());
                f
            }
        }
    }

    fn load(&self) -> Result<Box<dyn ModelBackend>, ComponentError> {
        Ok(Box::new(self.load_backend()?))
    }
}

fn factory(
    params: &serde_json::Value,
    cx: &FactoryContext,
) -> Result<Box<dyn BackendLoader>, ConfigError> {
    let cfg: OrtConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(OrtLoader::from_config(cfg, cx)?))
}

/// Registers `backend/ort`.
#[derive(Debug, Clone, Copy, Default)]
pub struct OrtPlugin;

impl Plugin for OrtPlugin {
    fn name(&self) -> &'static str {
        "valex-backend-ort"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            BACKEND_ID,
            env!("CARGO_PKG_VERSION"),
            "exported ONNX models (torch.onnx, optimum) run with ONNX Runtime, taps found in the graph",
            AnyFactory::Backend(factory),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::Kind;

    fn parse(v: serde_json::Value) -> Result<OrtLoader, ConfigError> {
        let cfg: OrtConfig = ConfigError::parse_params(&v)?;
        OrtLoader::from_config(
            cfg,
            &FactoryContext {
                base_dir: "/base".into(),
            },
        )
    }

    #[test]
    fn resolves_paths_and_defaults() {
        let l = parse(
            serde_json::json!({"path": "m/model.onnx", "ort_dylib": "lib/libonnxruntime.so"}),
        )
        .unwrap();
        assert_eq!(l.paths.onnx, PathBuf::from("/base/m/model.onnx"));
        assert_eq!(l.paths.tokenizer, PathBuf::from("/base/m/tokenizer.json"));
        assert_eq!(
            l.options.dylib,
            Some(PathBuf::from("/base/lib/libonnxruntime.so"))
        );
        assert_eq!(l.options.device, DeviceSpec::Cpu);
        assert_eq!(l.options.optimization, OptLevel::All);
        assert!(l.options.disabled_optimizers.is_empty());
        assert_eq!(l.policy, BatchPolicy::rows(8));
        assert_eq!(
            l.input_files(),
            [
                PathBuf::from("/base/m/model.onnx"),
                PathBuf::from("/base/m/tokenizer.json")
            ]
        );
    }

    #[test]
    fn rejects_unknown_and_zero_params() {
        let e = parse(serde_json::json!({"path": "m", "dtype": "f32"})).unwrap_err();
        assert!(e.message.contains("unknown field `dtype`"), "{}", e.message);
        let e = parse(serde_json::json!({"path": "m", "batch_size": 0})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("batch_size"));
        let e = parse(serde_json::json!({"path": "m", "tap_tensors": []})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("tap_tensors"));
        let e = parse(serde_json::json!({"path": "m", "graph_optimization": "max"})).unwrap_err();
        assert!(e.message.contains("unknown variant `max`"), "{}", e.message);
        let l =
            parse(serde_json::json!({"path": "m", "device": "cuda:1", "fallback": true})).unwrap();
        assert_eq!(l.options.device, DeviceSpec::Cuda(1));
    }

    #[test]
    fn plugin_registers_backend_ort() {
        let mut b = RegistryBuilder::new();
        b.add_plugin(&OrtPlugin).unwrap();
        let r = b.build();
        let (info, _) = r.lookup(Kind::Backend, "ort").unwrap();
        assert_eq!(info.source, "valex-backend-ort");
        assert!(
            r.backend(
                "backend/ort",
                &serde_json::json!({"path": "m"}),
                &FactoryContext::default()
            )
            .is_ok()
        );
    }
}
