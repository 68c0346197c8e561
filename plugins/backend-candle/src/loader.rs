//! `backend/candle` params, the [`CandleLoader`] they build, and the [`CandlePlugin`] that
//! registers it.
//!
//! Owns parsing of `path` (directory or `builtin:*`), `dtype`, `device`, `batch_size`,
//! `max_batch_tokens`, `chat_template`, `system_prompt`, `memory_check` and `memory_limit_mib`,
//! and the choice of candle device.
//! Parsing never touches the model files; loading does.

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde::Deserialize;
use valex_core::{
    AnyFactory, BackendLoader, ComponentError, ConfigError, FactoryContext, ModelBackend, Plugin,
    RegistryBuilder, RegistryError,
};

use crate::backend::CandleBackend;
use crate::batching::BatchPolicy;
use crate::chat::{ChatTemplate, TEMPLATE_FILES};
use crate::files::{self, MemoryModel, ModelSource};
use crate::memory::MemoryCheck;
use crate::models::{Model, weight_spec};

/// The component id.
pub const BACKEND_ID: &str = "backend/candle";

/// Prefix of built-in model paths.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// Built-in models.
pub const BUILTIN_MODELS: [&str; 1] = ["planted-demo"];

/// Rows per forward when `batch_size` is not given.
pub const DEFAULT_BATCH_SIZE: usize = 8;

/// Compute dtype names accepted in params.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DTypeName {
    /// 32-bit float (default).
    #[default]
    F32,
    /// bfloat16.
    Bf16,
    /// IEEE half.
    F16,
}

impl DTypeName {
    /// The candle dtype.
    pub fn dtype(self) -> DType {
        match self {
            DTypeName::F32 => DType::F32,
            DTypeName::Bf16 => DType::BF16,
            DTypeName::F16 => DType::F16,
        }
    }
}

/// Params of `backend/candle`, as written in a manifest's `[model.params]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CandleConfig {
    /// HF model directory (relative to the manifest) or `builtin:planted-demo`.
    pub path: String,
    /// `f32` (default), `bf16` or `f16`.
    pub dtype: Option<DTypeName>,
    /// `cpu` (default), `cuda` or `cuda:N` (needs the `cuda` feature).
    pub device: Option<String>,
    /// Most rows per forward (default 8).
    pub batch_size: Option<usize>,
    /// Most padded tokens (rows × longest row) per forward (default: no budget).
    pub max_batch_tokens: Option<usize>,
    /// Wrap every prompt in the model's chat template (default false).
    pub chat_template: Option<bool>,
    /// System message put before the user turn when `chat_template = true`.
    pub system_prompt: Option<String>,
    /// Estimate the memory a run needs before loading, and refuse when it does not fit
    /// (default true; [`crate::memory`]).
    pub memory_check: Option<bool>,
    /// MiB to compare the estimate against instead of the memory available.
    pub memory_limit_mib: Option<u64>,
}

/// Which device to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU.
    Cpu,
    /// CUDA device N.
    Cuda(usize),
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda` or `cuda:N`.
    ///
    /// # Errors
    /// Other names, or CUDA without the crate's `cuda` feature.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let spec = match s {
            "cpu" => DeviceSpec::Cpu,
            "cuda" => DeviceSpec::Cuda(0),
            _ => match s.strip_prefix("cuda:").and_then(|n| n.parse().ok()) {
                Some(n) => DeviceSpec::Cuda(n),
                None => {
                    return Err(ConfigError::new(
                        Some("device"),
                        format!("device {s:?} is not one of cpu, cuda, cuda:N"),
                    ));
                }
            },
        };
        if matches!(spec, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(ConfigError::new(
                Some("device"),
                format!(
                    "device {s:?} needs CUDA, but valex-backend-candle was built without its `cuda` feature"
                ),
            ));
        }
        Ok(spec)
    }

    /// Opens the device.
    ///
    /// # Errors
    /// The CUDA device cannot be opened.
    pub fn open(self) -> Result<Device, ComponentError> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => Device::new_cuda(n).map_err(|e| {
                ComponentError::input(format!("cuda device {n} could not be opened")).with_source(e)
            }),
        }
    }
}

/// Parsed `backend/candle` params: cheap to build, loads the model on demand.
#[derive(Debug, Clone)]
pub struct CandleLoader {
    source: SourceSpec,
    dtype: DType,
    device: DeviceSpec,
    policy: BatchPolicy,
    chat: Option<Option<String>>,
    memory: MemoryCheck,
}

#[derive(Debug, Clone)]
enum SourceSpec {
    Dir(PathBuf),
    Builtin(String),
}

impl CandleLoader {
    /// Builds a loader from params, resolving relative paths with `cx`.
    ///
    /// # Errors
    /// Unknown built-in model, bad device, `batch_size` 0.
    pub fn from_config(cfg: CandleConfig, cx: &FactoryContext) -> Result<Self, ConfigError> {
        let source = match cfg.path.strip_prefix(BUILTIN_PREFIX) {
            Some(name) if BUILTIN_MODELS.contains(&name) => SourceSpec::Builtin(name.to_owned()),
            Some(name) => {
                return Err(ConfigError::new(
                    Some("path"),
                    format!(
                        "unknown built-in model {name:?}; available: {}",
                        BUILTIN_MODELS
                            .map(|m| format!("{BUILTIN_PREFIX}{m}"))
                            .join(", ")
                    ),
                ));
            }
            None => SourceSpec::Dir(cx.resolve(&cfg.path)),
        };
        let device = DeviceSpec::parse(cfg.device.as_deref().unwrap_or("cpu"))?;
        let batch_size = cfg.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if batch_size == 0 {
            return Err(ConfigError::new(
                Some("batch_size"),
                "batch_size must be at least 1",
            ));
        }
        if cfg.max_batch_tokens == Some(0) {
            return Err(ConfigError::new(
                Some("max_batch_tokens"),
                "max_batch_tokens must be at least 1",
            ));
        }
        let chat_template = cfg.chat_template.unwrap_or(false);
        if !chat_template && cfg.system_prompt.is_some() {
            return Err(ConfigError::new(
                Some("system_prompt"),
                "system_prompt needs chat_template = true",
            ));
        }
        if chat_template && matches!(source, SourceSpec::Builtin(_)) {
            return Err(ConfigError::new(
                Some("chat_template"),
                "built-in models have no chat template; set chat_template = false",
            ));
        }
        Ok(CandleLoader {
            source,
            dtype: cfg.dtype.unwrap_or_default().dtype(),
            device,
            policy: BatchPolicy {
                max_rows: batch_size,
                max_tokens: cfg.max_batch_tokens,
            },
            chat: chat_template.then_some(cfg.system_prompt),
            memory: MemoryCheck {
                enabled: cfg.memory_check.unwrap_or(true),
                limit: cfg.memory_limit_mib.map(|m| m.saturating_mul(1 << 20)),
            },
        })
    }

    /// A loader for a model directory on the CPU in f32.
    pub fn for_dir(dir: impl Into<PathBuf>) -> Self {
        CandleLoader {
            source: SourceSpec::Dir(dir.into()),
            dtype: DType::F32,
            device: DeviceSpec::Cpu,
            policy: BatchPolicy::rows(DEFAULT_BATCH_SIZE),
            chat: None,
            memory: MemoryCheck::default(),
        }
    }

    /// Sets the device.
    #[must_use]
    pub fn with_device(mut self, device: DeviceSpec) -> Self {
        self.device = device;
        self
    }

    /// Sets how rows are grouped into forwards.
    #[must_use]
    pub fn with_policy(mut self, policy: BatchPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Wraps prompts in the model directory's chat template, after `system` if given.
    #[must_use]
    pub fn with_chat_template(mut self, system: Option<String>) -> Self {
        self.chat = Some(system);
        self
    }

    /// Sets the compute dtype.
    #[must_use]
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Sets the most rows per forward (at least 1).
    #[must_use]
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.policy.max_rows = batch_size.max(1);
        self
    }

    /// Loads the model as the concrete backend.
    ///
    /// # Errors
    /// See [`BackendLoader::load`].
    pub fn load_backend(&self) -> Result<CandleBackend, ComponentError> {
        let source = match &self.source {
            SourceSpec::Dir(d) => ModelSource::Dir(d.clone()),
            SourceSpec::Builtin(name) => ModelSource::Memory(builtin_model(name)?),
        };
        let device = self.device.open()?;
        let chat = match (&self.chat, &self.source) {
            (Some(system), SourceSpec::Dir(d)) => Some(ChatTemplate::from_dir(d, system.clone())?),
            (Some(_), SourceSpec::Builtin(name)) => {
                return Err(ComponentError::config(format!(
                    "built-in model {name:?} has no chat template"
                )));
            }
            (None, _) => None,
        };
        let on_cuda = matches!(self.device, DeviceSpec::Cuda(_));
        self.memory
            .run(&source, self.dtype, &self.policy, on_cuda)?;
        let loaded = files::load(&source, self.dtype, &device, weight_spec)?;
        let model = Model::from_tensors(&loaded.config, loaded.tensors, self.dtype, &device)
            .map_err(|e| ComponentError::input("model could not be assembled").with_source(e))?;
        tracing::debug!(
            architecture = %loaded.config.model_type,
            layers = loaded.config.n_layers,
            dtype = ?self.dtype,
            device = ?self.device,
            "model loaded"
        );
        let backend =
            CandleBackend::new(model, loaded.tokenizer, loaded.content_sha256, self.policy);
        Ok(match chat {
            Some(c) => backend.with_chat_template(c),
            None => backend,
        })
    }
}

/// The in-memory files of a built-in model.
fn builtin_model(name: &str) -> Result<MemoryModel, ComponentError> {
    match name {
        "planted-demo" => {
            let f = valex_demo_model::build();
            Ok(MemoryModel {
                name: format!("{BUILTIN_PREFIX}{name}"),
                config_json: f.config_json,
                tokenizer_json: f.tokenizer_json,
                safetensors: f.safetensors,
            })
        }
        other => Err(ComponentError::config(format!(
            "unknown built-in model {other:?}; available: {}",
            BUILTIN_MODELS
                .map(|m| format!("{BUILTIN_PREFIX}{m}"))
                .join(", ")
        ))),
    }
}

impl BackendLoader for CandleLoader {
    fn input_files(&self) -> Vec<PathBuf> {
        match &self.source {
            SourceSpec::Dir(d) => {
                let mut files = files::input_files(d);
                if self.chat.is_some() {
                    files.extend(
                        TEMPLATE_FILES
                            .iter()
                            .map(|f| d.join(f))
                            .filter(|p| p.is_file()),
                    );
                }
                files
            }
            SourceSpec::Builtin(_) => Vec::new(),
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
    let cfg: CandleConfig = ConfigError::parse_params(params)?;
    Ok(Box::new(CandleLoader::from_config(cfg, cx)?))
}

/// Registers `backend/candle`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CandlePlugin;

impl Plugin for CandlePlugin {
    fn name(&self) -> &'static str {
        "valex-backend-candle"
    }

    fn register(&self, r: &mut RegistryBuilder) -> Result<(), RegistryError> {
        r.register(
            BACKEND_ID,
            env!("CARGO_PKG_VERSION"),
            "llama, qwen2, mistral and gpt2 models from HF safetensors, run with candle",
            AnyFactory::Backend(factory),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use valex_core::Kind;

    fn parse(v: serde_json::Value) -> Result<CandleLoader, ConfigError> {
        let cfg: CandleConfig = ConfigError::parse_params(&v)?;
        CandleLoader::from_config(
            cfg,
            &FactoryContext {
                base_dir: "/base".into(),
            },
        )
    }

    #[test]
    fn resolves_relative_path_and_defaults() {
        let l = parse(serde_json::json!({"path": "models/tiny"})).unwrap();
        assert!(
            matches!(&l.source, SourceSpec::Dir(p) if p == &PathBuf::from("/base/models/tiny"))
        );
        assert_eq!(
            (l.dtype, l.device, l.policy),
            (DType::F32, DeviceSpec::Cpu, BatchPolicy::rows(8))
        );
        assert!(l.chat.is_none());
        assert_eq!(
            l.input_files(),
            ["config.json", "model.safetensors", "tokenizer.json"]
                .map(|f| PathBuf::from("/base/models/tiny").join(f))
        );
    }

    #[test]
    fn rejects_unknown_params_dtype_and_builtin() {
        let e = parse(serde_json::json!({"path": "x", "dtyp": "f32"})).unwrap_err();
        assert!(e.message.contains("unknown field `dtyp`"), "{}", e.message);
        let e = parse(serde_json::json!({"path": "x", "dtype": "f64"})).unwrap_err();
        assert!(e.message.contains("unknown variant `f64`"), "{}", e.message);
        let e = parse(serde_json::json!({"path": "builtin:nope"})).unwrap_err();
        assert_eq!(
            e.message,
            "unknown built-in model \"nope\"; available: builtin:planted-demo"
        );
        let l =
            parse(serde_json::json!({"path": "builtin:planted-demo", "dtype": "bf16"})).unwrap();
        assert!(l.input_files().is_empty());
        assert_eq!(l.dtype, DType::BF16);
    }

    #[test]
    fn batching_and_chat_params_are_checked() {
        let l = parse(
            serde_json::json!({"path": "m", "batch_size": 4, "max_batch_tokens": 512,
            "chat_template": true, "system_prompt": "Be brief."}),
        )
        .unwrap();
        assert_eq!(
            l.policy,
            BatchPolicy {
                max_rows: 4,
                max_tokens: Some(512)
            }
        );
        assert_eq!(l.chat, Some(Some("Be brief.".to_owned())));
        let e = parse(serde_json::json!({"path": "m", "max_batch_tokens": 0})).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("max_batch_tokens"));
        let e = parse(serde_json::json!({"path": "m", "system_prompt": "x"})).unwrap_err();
        assert_eq!(e.message, "system_prompt needs chat_template = true");
        let e = parse(serde_json::json!({"path": "builtin:planted-demo", "chat_template": true}))
            .unwrap_err();
        assert_eq!(e.key.as_deref(), Some("chat_template"));
    }

    #[test]
    fn memory_params_set_the_check() {
        let l = parse(serde_json::json!({"path": "m"})).unwrap();
        assert_eq!(l.memory, MemoryCheck::default());
        assert!(l.memory.enabled);
        let l =
            parse(serde_json::json!({"path": "m", "memory_check": false, "memory_limit_mib": 3}))
                .unwrap();
        assert_eq!(
            l.memory,
            MemoryCheck {
                enabled: false,
                limit: Some(3 << 20)
            }
        );
        let e = parse(serde_json::json!({"path": "m", "memory_limit_mib": -1})).unwrap_err();
        assert!(e.message.contains("expected u64"), "{}", e.message);
    }

    #[test]
    fn device_names_are_checked() {
        assert_eq!(DeviceSpec::parse("cpu").unwrap(), DeviceSpec::Cpu);
        let e = DeviceSpec::parse("tpu").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("device"));
        let cuda = DeviceSpec::parse("cuda:1");
        if cfg!(feature = "cuda") {
            assert_eq!(cuda.unwrap(), DeviceSpec::Cuda(1));
        } else {
            assert!(
                cuda.unwrap_err()
                    .message
                    .contains("without its `cuda` feature")
            );
        }
    }

    #[test]
    fn plugin_registers_backend_candle() {
        let mut b = RegistryBuilder::new();
        b.add_plugin(&CandlePlugin).unwrap();
        let r = b.build();
        let (info, _) = r.lookup(Kind::Backend, "candle").unwrap();
        assert_eq!(info.source, "valex-backend-candle");
        assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
        let loader = r
            .backend(
                "backend/candle",
                &serde_json::json!({"path": "m"}),
                &FactoryContext::default(),
            )
            .unwrap();
        assert_eq!(loader.input_files()[0], PathBuf::from("m/config.json"));
    }
}
