//! valex-plugin-example: the reference run-time plugin, built as a cdylib and loaded through
//! dlopen by valex-plugin-host's ABI tests and by `experiments/plugins/max-smd.toml`.
//!
//! Components:
//! - `scorer/max-smd`: per label, the neurons with the largest standardised mean difference
//!   against the other labels (see [`smd`]);
//! - `intervention/example-scale`: multiplies the selected neurons by a factor;
//! - `reporter/example-summary`: writes `summary.txt` with the selected set sizes;
//! - `scorer/panic-probe`: a test fixture that panics (or returns malformed output) on
//!   purpose, so the tests can show that the host survives.
//!
//! It depends only on valex-plugin-sdk (and serde), like a plugin written outside this
//! repository.

pub mod extras;
pub mod smd;

use valex_plugin_sdk::Component;

/// The components this library exports.
pub const COMPONENTS: [Component; 4] = [
    Component::scorer(
        "scorer/max-smd",
        "0.1.0",
        "largest standardised mean difference of each label against the others",
        smd::factory,
    ),
    Component::intervention(
        "intervention/example-scale",
        "0.1.0",
        "multiplies the selected neurons by params.factor (example plugin)",
        extras::scale_factory,
    ),
    Component::reporter(
        "reporter/example-summary",
        "0.1.0",
        "writes summary.txt with the selected set sizes (example plugin)",
        extras::summary_factory,
    ),
    Component::scorer(
        "scorer/panic-probe",
        "0.1.0",
        "test fixture: panics in create or score, or returns malformed output (params.when)",
        extras::panic_probe_factory,
    ),
];

#[cfg(not(any(feature = "fault-abi-mismatch", feature = "fault-missing-entry")))]
valex_plugin_sdk::export_plugin! {
    name: "valex-plugin-example",
    version: env!("CARGO_PKG_VERSION"),
    components: [COMPONENTS[0], COMPONENTS[1], COMPONENTS[2], COMPONENTS[3]],
}

// A library built for another ABI version: the host must refuse it before reading more.
#[cfg(all(feature = "fault-abi-mismatch", not(feature = "fault-missing-entry")))]
valex_plugin_sdk::export_plugin! {
    @abi 999,
    name: "valex-plugin-example",
    version: env!("CARGO_PKG_VERSION"),
    components: [COMPONENTS[0]]
}

// A library without `valex_plugin_entry`: the host must report the missing symbol.
#[cfg(feature = "fault-missing-entry")]
valex_plugin_sdk::export_plugin!(@version_symbol valex_plugin_sdk::ABI_VERSION);
