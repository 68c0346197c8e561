//! Run-time plugins in the CLI: loading the libraries a manifest's `[[plugins]]` and the
//! `--plugin` flags name, registering their components next to the built-in ones, and the
//! records `valex plugins` and run.json show. Load errors exit with code 3.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use valex_core::Registry;
use valex_manifest::PluginRef;
use valex_plugin_host::{PluginHost, PluginLoadError};

use crate::exit::{CliError, ExitCode};
use crate::registry::builtin_registry_builder;

/// The registry of one command: built-in components plus those of the loaded libraries.
pub(crate) struct Components {
    /// Every component.
    pub registry: Registry,
    /// The loaded libraries (kept alive: never unloaded).
    pub host: PluginHost,
}

/// A load error with its cause chain, after `context` (the manifest key or flag) if any.
fn load_error(context: &str, e: PluginLoadError) -> CliError {
    let e = anyhow::Error::new(e);
    let e = if context.is_empty() {
        e
    } else {
        e.context(context.to_owned())
    };
    CliError::new(ExitCode::PluginLoad, e)
}

/// Loads the libraries of `manifest_plugins` (from `manifest`) and then of `flags`, and
/// builds the registry.
///
/// # Errors
/// The first library that fails to load or registers a duplicate id (exit code 3), as one
/// line naming the manifest key or flag and the library path.
pub(crate) fn load_components(
    manifest: Option<(&Path, &[PluginRef])>,
    flags: &[PathBuf],
) -> Result<Components, CliError> {
    let mut host = PluginHost::new();
    if let Some((file, refs)) = manifest {
        for r in refs {
            let from = r
                .origin
                .as_ref()
                .map(|o| format!(" (from {o})"))
                .unwrap_or_default();
            let timeout = r.call_timeout_secs.map(std::time::Duration::from_secs);
            host.load_with_timeout(&r.path, timeout)
                .map_err(|e| load_error(&format!("{}: {}{from}", file.display(), r.key), e))?;
        }
    }
    for p in flags {
        host.load(p).map_err(|e| load_error("--plugin", e))?;
    }
    let mut b = builtin_registry_builder();
    host.register(&mut b).map_err(|e| load_error("", e))?;
    Ok(Components {
        registry: b.build(),
        host,
    })
}

/// The exit code for a manifest that failed to resolve: 3 when a plugin faulted (panicked,
/// malformed output) while its components were built, else 2.
pub(crate) fn resolve_failure_code(host: &PluginHost) -> ExitCode {
    if host.faults().is_empty() {
        ExitCode::Usage
    } else {
        ExitCode::PluginLoad
    }
}

/// One record per loaded library, for run.json and `valex plugins --json`.
pub(crate) fn library_records(host: &PluginHost) -> Vec<Value> {
    host.libraries()
        .iter()
        .map(|lib| {
            let i = lib.info();
            json!({
                "path": i.path.display().to_string(),
                "name": i.name,
                "version": i.version,
                "abi_version": i.abi_version,
                "sdk_version": i.sdk_version,
                "rustc_version": i.rustc_version,
                "sha256": i.sha256,
                "components": lib.components().iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
            })
        })
        .collect()
}
