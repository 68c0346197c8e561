//! valex-plugin-host: loads run-time plugin libraries and turns their components into
//! registry entries. It is the only crate that calls dlopen (libloading).
//!
//! Load sequence (docs/plugin-abi.md): ABI version probe, table checks (size, SDK
//! compatibility), `init` with the host callbacks (log forwarding), `describe`, component
//! checks; then [`PluginHost::register`] adds proxies ([`ExternalScorer`], ...) that implement
//! the core traits. Libraries are never unloaded. A panic inside a plugin is caught by the
//! SDK's shims and reported as [`PluginError::Panicked`]; the host keeps running.
//!
//! Depends on valex-plugin-abi and valex-core, never on valex-plugin-sdk.
//!
//! ```no_run
//! use valex_plugin_host::PluginHost;
//! let mut host = PluginHost::new();
//! host.load(std::path::Path::new("target/debug/libvalex_plugin_example.so"))?;
//! let mut builder = valex_core::RegistryBuilder::new();
//! host.register(&mut builder)?;
//! let registry = builder.build(); // now knows scorer/max-smd
//! # Ok::<(), valex_plugin_host::PluginLoadError>(())
//! ```

#![expect(
    unsafe_code,
    reason = "the host calls the C ABI of loaded libraries (issue 3, HOUSE_STYLE §3.5)"
)]

mod codec;
mod error;
mod fuzzing;
mod host;
mod library;
mod log;
mod proxy;
mod worker;

pub use error::{PluginError, PluginLoadError};
#[doc(hidden)]
pub use fuzzing::fuzz_plugin_reply;
pub use host::PluginHost;
pub use library::{ComponentDecl, LibraryInfo, LoadedLibrary};
pub use proxy::{ExternalIntervention, ExternalReporter, ExternalScoreOutput, ExternalScorer};
pub use valex_plugin_abi::ABI_VERSION;
pub use worker::DEFAULT_CALL_TIMEOUT;
