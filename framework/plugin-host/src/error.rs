//! Errors of loading a plugin library ([`PluginLoadError`], one variant per load step) and of
//! calling into one ([`PluginError`]). Every message names the library path; call errors also
//! name the component.

use std::path::PathBuf;

use thiserror::Error;

/// A plugin library could not be loaded; every variant carries the library path.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PluginLoadError {
    /// The file cannot be read (missing, permissions).
    ///
    /// Resolution: check the `[[plugins]] path` (relative to the manifest that sets it) or the
    /// `--plugin` path (relative to the current folder).
    #[error("cannot read plugin library {path}")]
    Unreadable {
        /// The library.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The dynamic loader refused the file (not a shared library, wrong architecture, missing
    /// dependency).
    ///
    /// Resolution: build the plugin as a `cdylib` for this machine.
    #[error("cannot load plugin library {path}")]
    Open {
        /// The library.
        path: PathBuf,
        /// The loader's error.
        #[source]
        source: libloading::Error,
    },
    /// A required symbol is not exported.
    ///
    /// Resolution: declare the plugin with `valex_plugin_sdk::export_plugin!`.
    #[error(
        "plugin {path}: missing symbol {symbol} (is it built with valex_plugin_sdk::export_plugin!?)"
    )]
    MissingSymbol {
        /// The library.
        path: PathBuf,
        /// The symbol.
        symbol: String,
    },
    /// The library speaks another ABI version.
    ///
    /// Resolution: rebuild the plugin against the valex-plugin-sdk of this valex.
    #[error(
        "plugin {path} was built for ABI v{found} but this valex speaks v{expected}; rebuild it against valex-plugin-sdk {sdk}"
    )]
    AbiMismatch {
        /// The library.
        path: PathBuf,
        /// The library's ABI version.
        found: u32,
        /// This host's ABI version.
        expected: u32,
        /// The SDK series to rebuild against (`0.1`).
        sdk: String,
    },
    /// `valex_plugin_entry` returned null or a table smaller than this ABI's.
    ///
    /// Resolution: rebuild the plugin against the valex-plugin-sdk of this valex.
    #[error("plugin {path}: plugin table is {found} bytes, this valex needs at least {expected}")]
    TableTooSmall {
        /// The library.
        path: PathBuf,
        /// Size the library reported (0 for a null table).
        found: u32,
        /// Size this host needs.
        expected: u32,
    },
    /// The library was built with an SDK version that is not caret-compatible with this valex.
    ///
    /// Resolution: rebuild the plugin against valex-plugin-sdk of the version shown.
    #[error(
        "plugin {path} was built with valex-plugin-sdk {found}, which is not compatible with this valex ({expected}); rebuild it against valex-plugin-sdk {expected}"
    )]
    SdkIncompatible {
        /// The library.
        path: PathBuf,
        /// The library's SDK version.
        found: String,
        /// This host's version.
        expected: String,
    },
    /// The table holds a null or non-UTF-8 string, or `init`/`describe` failed, panicked or
    /// returned a malformed description.
    ///
    /// Resolution: fix the plugin; the message says which step failed.
    #[error("plugin {path}: {step}: {message}")]
    Malformed {
        /// The library.
        path: PathBuf,
        /// `table`, `init` or `describe`.
        step: String,
        /// What is wrong.
        message: String,
    },
    /// A described component has a malformed id or an unsupported kind.
    ///
    /// Resolution: use `scorer/`, `intervention/` or `reporter/` ids in lowercase kebab-case.
    #[error("plugin {path}: component {id}: {reason}")]
    InvalidComponent {
        /// The library.
        path: PathBuf,
        /// The id as described.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// A component id is already registered (by a built-in plugin, another library, or twice by
    /// this one).
    ///
    /// Resolution: remove one of the libraries, or rename the component.
    #[error("plugin {path}: component {id} is already registered by {first}")]
    Duplicate {
        /// The library.
        path: PathBuf,
        /// The id.
        id: String,
        /// Who registered it first.
        first: String,
    },
}

impl PluginLoadError {
    /// The library the error is about.
    pub fn path(&self) -> &std::path::Path {
        match self {
            PluginLoadError::Unreadable { path, .. }
            | PluginLoadError::Open { path, .. }
            | PluginLoadError::MissingSymbol { path, .. }
            | PluginLoadError::AbiMismatch { path, .. }
            | PluginLoadError::TableTooSmall { path, .. }
            | PluginLoadError::SdkIncompatible { path, .. }
            | PluginLoadError::Malformed { path, .. }
            | PluginLoadError::InvalidComponent { path, .. }
            | PluginLoadError::Duplicate { path, .. } => path,
        }
    }
}

/// A call into a loaded plugin failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The plugin reported an error (status 1) as `{code, message, help}`.
    ///
    /// Resolution: read the message; `help` says how to fix it.
    #[error("plugin {plugin}: {component}: {message}{}", help.as_ref().map(|h| format!(" (help: {h})")).unwrap_or_default())]
    Failed {
        /// The library path.
        plugin: String,
        /// The component id.
        component: String,
        /// The plugin's error code (`scorer.bad_params`).
        code: String,
        /// The plugin's message.
        message: String,
        /// The plugin's hint.
        help: Option<String>,
    },
    /// The plugin panicked (status 2); the instance is poisoned.
    ///
    /// Resolution: a bug in the plugin; report it to its authors with the message.
    #[error("plugin {plugin}: {component}: panicked: {message}")]
    Panicked {
        /// The library path.
        plugin: String,
        /// The component id.
        component: String,
        /// The panic message.
        message: String,
    },
    /// The plugin returned something that breaks the ABI (bad status, invalid JSON, a result
    /// that does not fit the request).
    ///
    /// Resolution: a bug in the plugin; report it to its authors.
    #[error("plugin {plugin}: {component}: malformed output: {message}")]
    Malformed {
        /// The library path.
        plugin: String,
        /// The component id.
        component: String,
        /// What is wrong.
        message: String,
    },
    /// A call did not return within the library's call timeout; it was abandoned on its
    /// worker thread (a thread cannot be killed) and the instance is poisoned.
    ///
    /// Resolution: a plugin that hangs is a bug; report it. If the call is honestly slow,
    /// raise `call_timeout_secs` of its `[[plugins]]` entry.
    #[error(
        "plugin {plugin}: {component}: {method} did not return within {}; the call was abandoned (raise call_timeout_secs of its [[plugins]] entry if it is only slow)",
        fmt_timeout(timeout)
    )]
    TimedOut {
        /// The library path.
        plugin: String,
        /// The component id.
        component: String,
        /// `create`, `score`, `edit` or `report`.
        method: String,
        /// The timeout that passed.
        timeout: std::time::Duration,
    },
    /// The instance panicked or timed out earlier and is not called again.
    ///
    /// Resolution: rerun; fix the plugin.
    #[error("plugin {plugin}: {component}: not called again after an earlier panic or timeout")]
    Poisoned {
        /// The library path.
        plugin: String,
        /// The component id.
        component: String,
    },
}

/// `600 s`, `1.5 s`.
fn fmt_timeout(t: &std::time::Duration) -> String {
    format!("{} s", t.as_secs_f64())
}

impl PluginError {
    /// True for a plugin fault (panic, malformed output, poisoned); false for an error the
    /// plugin reported deliberately.
    pub fn is_fault(&self) -> bool {
        !matches!(self, PluginError::Failed { .. })
    }
}
