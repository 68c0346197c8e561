//! ONNX Runtime itself: loading the library once per process ([`environment`]), execution
//! providers ([`DeviceSpec`], with `fallback`), and sessions built from rewritten model
//! bytes ([`SessionOptions::build`]).
//!
//! The library is loaded with `ort::init_from` (never `ort::init()`, which panics when no
//! library is found) from the `ort_dylib` param or `ORT_DYLIB_PATH`; a library older than
//! 1.31 is refused by ort with its version in the message. It knows nothing about graphs.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use valex_core::{ComponentError, ConfigError};

/// How to get the library, for messages.
pub const SETUP_HINT: &str =
    "scripts/setup-ort.sh DIR installs libonnxruntime.so.1.31.1 from the onnxruntime==1.31.1 wheel";

/// The session option that tells ONNX Runtime where external data lives when the model
/// comes from memory.
const EXTERNAL_FOLDER_KEY: &str = "session.model_external_initializers_file_folder_path";

/// The loaded library and its environment (one per process).
static LOADED: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

/// Loads ONNX Runtime from `dylib` (or `ORT_DYLIB_PATH` when `None`) the first time, and
/// returns the process's environment.
///
/// # Errors
/// No path given and `ORT_DYLIB_PATH` unset, a path that does not exist, a library that
/// does not load or is older than 1.31, or a request for a different library than the one
/// already loaded in this process.
pub fn environment(dylib: Option<&Path>) -> Result<Environment, ComponentError> {
    let (path, from) = match dylib {
        Some(p) => (p.to_owned(), "model.params.ort_dylib"),
        None => match std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()) {
            Some(v) => (PathBuf::from(v), "ORT_DYLIB_PATH"),
            None => {
                return Err(ComponentError::input(format!(
                    "onnx runtime library not given: set model.params.ort_dylib or ORT_DYLIB_PATH to libonnxruntime.so.1.31.1 ({SETUP_HINT})"
                )));
            }
        },
    };
    if !path.is_file() {
        return Err(ComponentError::input(format!(
            "onnx runtime library {} (from {from}) does not exist ({SETUP_HINT})",
            path.display()
        )));
    }
    let canonical = path.canonicalize().unwrap_or_else(|_| path.clone());
    let mut loaded = LOADED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((p, env)) = loaded.as_ref() {
        if *p == canonical {
            return Ok(env.clone());
        }
        return Err(ComponentError::input(format!(
            "onnx runtime is already loaded from {} in this process; cannot also load {} (from {from})",
            p.display(),
            canonical.display()
        )));
    }
    let env = ort::init_from(&canonical)
        .map_err(|e| {
            ComponentError::input(format!(
                "onnx runtime library {} (from {from}) could not be loaded",
                canonical.display()
            ))
            .with_source(e)
        })?
        .with_name("valex")
        .build()
        .map_err(|e| {
            ComponentError::input(format!(
                "onnx runtime environment could not be created from {}",
                canonical.display()
            ))
            .with_source(e)
        })?;
    // ONNX Runtime logs arena growth and session setup at info; only its warnings matter.
    env.set_log_level(ort::logging::LogLevel::Warning);
    tracing::debug!(library = %canonical.display(), "onnx runtime loaded");
    *loaded = Some((canonical, env.clone()));
    Ok(env)
}

/// Where sessions run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The CPU execution provider.
    Cpu,
    /// The CUDA execution provider on device N.
    Cuda(i32),
}

impl DeviceSpec {
    /// Parses `cpu`, `cuda` or `cuda:N`. Without the crate's `cuda` feature, CUDA is an
    /// error unless `fallback` is set (then the CPU is used, with a warning at load).
    ///
    /// # Errors
    /// Other names, or CUDA without the `cuda` feature and without `fallback`.
    pub fn parse(s: &str, fallback: bool) -> Result<Self, ConfigError> {
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
        if matches!(spec, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") && !fallback {
            return Err(ConfigError::new(
                Some("device"),
                format!(
                    "device {s:?} needs the CUDA execution provider, but valex-backend-ort was built without its `cuda` feature (set fallback = true to run on the CPU instead)"
                ),
            ));
        }
        Ok(spec)
    }
}

/// Graph optimisation levels of the manifest (`graph_optimization`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OptLevel {
    /// No graph optimisations.
    Disable,
    /// Constant folding and redundant-node removal.
    Basic,
    /// Plus complex fusions.
    Extended,
    /// Everything (default).
    #[default]
    All,
}

impl OptLevel {
    fn level(self) -> GraphOptimizationLevel {
        match self {
            OptLevel::Disable => GraphOptimizationLevel::Disable,
            OptLevel::Basic => GraphOptimizationLevel::Level1,
            OptLevel::Extended => GraphOptimizationLevel::Level2,
            OptLevel::All => GraphOptimizationLevel::All,
        }
    }
}

/// How sessions are built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionOptions {
    /// Library path (`None`: `ORT_DYLIB_PATH`).
    pub dylib: Option<PathBuf>,
    /// Execution provider.
    pub device: DeviceSpec,
    /// Run on the CPU (with a warning) when the requested provider is unavailable.
    pub fallback: bool,
    /// Graph optimisation level.
    pub optimization: OptLevel,
    /// Intra-op threads (`None`: ONNX Runtime's default).
    pub intra_threads: Option<usize>,
    /// ONNX Runtime optimizers not to run (names as ORT logs them, e.g. `FastGeluFusion`).
    pub disabled_optimizers: Vec<String>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            dylib: None,
            device: DeviceSpec::Cpu,
            fallback: false,
            optimization: OptLevel::All,
            intra_threads: None,
            disabled_optimizers: Vec::new(),
        }
    }
}

fn ort_err(what: String) -> impl FnOnce(ort::Error) -> ComponentError {
    move |e| ComponentError::input(what).with_source(e)
}

impl SessionOptions {
    /// Builds a session for `model` (serialized ONNX) whose external data lives in `dir`.
    /// `label` names the model and variant in messages.
    ///
    /// # Errors
    /// The library cannot load, ONNX Runtime rejects the model, or the provider is missing
    /// without `fallback`.
    pub fn build(&self, model: &[u8], dir: &Path, label: &str) -> Result<Session, ComponentError> {
        let env = environment(self.dylib.as_deref())?;
        let what = || format!("onnx runtime rejected {label}");
        let mut b = Session::builder(&env)
            .map_err(ort_err(what()))?
            .with_optimization_level(self.optimization.level())
            .map_err(|e| ort_err(what())(e.into()))?
            .with_config_entry(EXTERNAL_FOLDER_KEY, dir.to_string_lossy())
            .map_err(|e| ort_err(what())(e.into()))?;
        if !self.disabled_optimizers.is_empty() {
            b = b
                .with_disabled_optimizers(self.disabled_optimizers.join(";"))
                .map_err(|e| ort_err(what())(e.into()))?;
        }
        if let Some(n) = self.intra_threads {
            b = b
                .with_intra_threads(n)
                .map_err(|e| ort_err(what())(e.into()))?;
        }
        if let DeviceSpec::Cuda(id) = self.device {
            b = self.with_cuda(b, id)?;
        }
        b.commit_from_memory(model).map_err(ort_err(what()))
    }

    #[cfg(feature = "cuda")]
    fn with_cuda(
        &self,
        b: ort::session::builder::SessionBuilder,
        id: i32,
    ) -> Result<ort::session::builder::SessionBuilder, ComponentError> {
        use ort::ep::ExecutionProvider;
        let available = ort::ep::CUDA::is_available().unwrap_or(false);
        let problem = if available {
            let ep = ort::ep::CUDA::default()
                .with_device_id(id)
                .build()
                .error_on_failure();
            match b.with_execution_providers([ep]) {
                Ok(b) => return Ok(b),
                Err(e) => {
                    let msg = e.to_string();
                    return self.cuda_fallback(e.recover(), id, &msg);
                }
            }
        } else {
            "the loaded onnx runtime has no CUDA execution provider (the CPU wheel onnxruntime; the GPU one is onnxruntime-gpu==1.31.1)".to_owned()
        };
        self.cuda_fallback(b, id, &problem)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fallback(
        &self,
        b: ort::session::builder::SessionBuilder,
        id: i32,
        problem: &str,
    ) -> Result<ort::session::builder::SessionBuilder, ComponentError> {
        if self.fallback {
            tracing::warn!(
                device = id,
                problem,
                "cuda execution provider unavailable; running on the cpu (fallback = true)"
            );
            Ok(b)
        } else {
            Err(ComponentError::input(format!(
                "cuda:{id} cannot be used: {problem} (set fallback = true to run on the CPU)"
            )))
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn with_cuda(
        &self,
        b: ort::session::builder::SessionBuilder,
        id: i32,
    ) -> Result<ort::session::builder::SessionBuilder, ComponentError> {
        // `DeviceSpec::parse` lets CUDA through without the feature only with fallback.
        tracing::warn!(
            device = id,
            "valex-backend-ort was built without its cuda feature; running on the cpu (fallback = true)"
        );
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_and_fallback_are_checked() {
        assert_eq!(DeviceSpec::parse("cpu", false).unwrap(), DeviceSpec::Cpu);
        assert_eq!(
            DeviceSpec::parse("cuda:1", true).unwrap(),
            DeviceSpec::Cuda(1)
        );
        let e = DeviceSpec::parse("tpu", false).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("device"));
        let cuda = DeviceSpec::parse("cuda", false);
        if cfg!(feature = "cuda") {
            assert_eq!(cuda.unwrap(), DeviceSpec::Cuda(0));
        } else {
            let e = cuda.unwrap_err();
            assert!(
                e.message.contains("without its `cuda` feature"),
                "{}",
                e.message
            );
            assert!(e.message.contains("fallback = true"), "{}", e.message);
        }
    }

    #[test]
    fn missing_library_path_is_one_clear_line() {
        let e = environment(Some(Path::new("/nonexistent/libonnxruntime.so.1.31.1"))).unwrap_err();
        assert_eq!(
            e.message,
            format!(
                "onnx runtime library /nonexistent/libonnxruntime.so.1.31.1 (from model.params.ort_dylib) does not exist ({SETUP_HINT})"
            )
        );
    }
}
