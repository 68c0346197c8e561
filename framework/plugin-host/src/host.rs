//! [`PluginHost`]: the set of libraries loaded for one command, and their registration into
//! the component registry as shared factories (source = the library path).
//!
//! Libraries load only from paths the user named (`[[plugins]] path`, `--plugin`); folders are
//! never scanned. The same file named twice loads once.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use valex_core::{AnySharedFactory, ConfigError, RegistryBuilder, RegistryError};

use crate::error::{PluginError, PluginLoadError};
use crate::library::{ComponentDecl, LoadedLibrary};
use crate::proxy::{ExternalIntervention, ExternalReporter, ExternalScorer};

/// Faults (panics, malformed output) seen while building components, shared with factories.
type Faults = Arc<Mutex<Vec<PluginError>>>;

/// Loaded plugin libraries.
#[derive(Default)]
pub struct PluginHost {
    libraries: Vec<(PathBuf, Arc<LoadedLibrary>)>,
    faults: Faults,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost")
            .field(
                "libraries",
                &self.libraries.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl PluginHost {
    /// No libraries yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the library at `path` (once per file: a second path to the same file returns the
    /// first load).
    ///
    /// # Errors
    /// Every step of the load sequence, naming `path`.
    pub fn load(&mut self, path: &Path) -> Result<Arc<LoadedLibrary>, PluginLoadError> {
        self.load_with_timeout(path, None)
    }

    /// Loads the library at `path` like [`PluginHost::load`], with the per-call timeout of its
    /// `[[plugins]]` entry (`None`: [`crate::DEFAULT_CALL_TIMEOUT`]). A file named twice keeps
    /// the timeout of its first load.
    ///
    /// # Errors
    /// Every step of the load sequence, naming `path`.
    pub fn load_with_timeout(
        &mut self,
        path: &Path,
        call_timeout: Option<std::time::Duration>,
    ) -> Result<Arc<LoadedLibrary>, PluginLoadError> {
        let canonical =
            std::fs::canonicalize(path).map_err(|source| PluginLoadError::Unreadable {
                path: path.to_path_buf(),
                source,
            })?;
        if let Some((_, lib)) = self.libraries.iter().find(|(c, _)| *c == canonical) {
            return Ok(Arc::clone(lib));
        }
        let mut lib = LoadedLibrary::load(path)?;
        if let Some(t) = call_timeout {
            lib = lib.with_call_timeout(t);
        }
        let lib = Arc::new(lib);
        tracing::debug!(plugin = %lib.info().name, path = %path.display(),
            components = lib.components().len(), "plugin loaded");
        self.libraries.push((canonical, Arc::clone(&lib)));
        Ok(lib)
    }

    /// The loaded libraries, in load order.
    pub fn libraries(&self) -> Vec<Arc<LoadedLibrary>> {
        self.libraries.iter().map(|(_, l)| Arc::clone(l)).collect()
    }

    /// Registers every component of every loaded library.
    ///
    /// # Errors
    /// [`PluginLoadError::Duplicate`] when an id is registered already (naming both sources).
    pub fn register(&self, b: &mut RegistryBuilder) -> Result<(), PluginLoadError> {
        for (_, lib) in &self.libraries {
            for decl in lib.components() {
                let factory = self.factory(lib, decl);
                b.register_shared(
                    &decl.id,
                    &decl.version,
                    &decl.summary,
                    &lib.label(),
                    factory,
                )
                .map_err(|e| match e {
                    RegistryError::Duplicate { id, first, .. } => PluginLoadError::Duplicate {
                        path: lib.info().path.clone(),
                        id,
                        first,
                    },
                    other => PluginLoadError::InvalidComponent {
                        path: lib.info().path.clone(),
                        id: decl.id.clone(),
                        reason: other.to_string(),
                    },
                })?;
            }
        }
        Ok(())
    }

    /// Plugin faults (panics, malformed output) seen while building components since the
    /// host was created; a front end exits with the plugin code (3) when there are any.
    pub fn faults(&self) -> Vec<PluginError> {
        self.faults
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn factory(&self, lib: &Arc<LoadedLibrary>, decl: &ComponentDecl) -> AnySharedFactory {
        let (lib, id, faults) = (Arc::clone(lib), decl.id.clone(), Arc::clone(&self.faults));
        let fail = move |e: PluginError| -> ConfigError {
            if e.is_fault() {
                faults
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(e.clone());
            }
            config_error(e)
        };
        match decl.kind.as_str() {
            "scorer" => AnySharedFactory::Scorer(Arc::new(move |p, _| {
                ExternalScorer::create(&lib, &id, p)
                    .map(|s| Box::new(s) as Box<dyn valex_core::Scorer>)
                    .map_err(&fail)
            })),
            "intervention" => AnySharedFactory::Intervention(Arc::new(move |p, _| {
                ExternalIntervention::create(&lib, &id, p)
                    .map(|s| Box::new(s) as Box<dyn valex_core::Intervention>)
                    .map_err(&fail)
            })),
            _ => AnySharedFactory::Reporter(Arc::new(move |p, _| {
                ExternalReporter::create(&lib, &id, p)
                    .map(|s| Box::new(s) as Box<dyn valex_core::Reporter>)
                    .map_err(&fail)
            })),
        }
    }
}

/// A failed `create` as a params error. A plugin's `*.bad_params` message keeps serde's
/// wording first (so the manifest can place it under the right key) and names the plugin
/// at the end; faults name plugin and component first.
fn config_error(e: PluginError) -> ConfigError {
    match &e {
        PluginError::Failed {
            plugin,
            code,
            message,
            help,
            ..
        } if code.ends_with("bad_params") => {
            let key = message.split_once(": ").map(|(k, _)| k).filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            });
            let help = help.as_ref().map(|h| format!("; {h}")).unwrap_or_default();
            ConfigError::new(key, format!("{message}{help} (plugin {plugin})"))
        }
        // The manifest puts the component id in front; name the library and the fault.
        PluginError::Panicked {
            plugin, message, ..
        } => ConfigError::new(None, format!("plugin {plugin}: panicked: {message}")),
        PluginError::Malformed {
            plugin, message, ..
        } => ConfigError::new(
            None,
            format!("plugin {plugin}: malformed output: {message}"),
        ),
        PluginError::Failed {
            plugin,
            message,
            help,
            ..
        } => {
            let help = help
                .as_ref()
                .map(|h| format!(" (help: {h})"))
                .unwrap_or_default();
            ConfigError::new(None, format!("plugin {plugin}: {message}{help}"))
        }
        _ => ConfigError::new(None, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_params_keep_the_key_and_name_the_plugin() {
        let e = config_error(PluginError::Failed {
            plugin: "lib/x.so".into(),
            component: "scorer/x".into(),
            code: "scorer.bad_params".into(),
            message: "top_k: must be at least 1, found 0".into(),
            help: None,
        });
        assert_eq!(e.key.as_deref(), Some("top_k"));
        assert_eq!(
            e.message,
            "top_k: must be at least 1, found 0 (plugin lib/x.so)"
        );
        let e = config_error(PluginError::Panicked {
            plugin: "lib/x.so".into(),
            component: "scorer/x".into(),
            message: "boom".into(),
        });
        assert_eq!(e.key, None);
        assert_eq!(e.message, "plugin lib/x.so: panicked: boom");
    }
}
