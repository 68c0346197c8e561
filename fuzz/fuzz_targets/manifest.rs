//! Manifest loading and validation: TOML text, then up to four `--set key=value` strings,
//! separated by NUL bytes. Loads through figment and resolves against the built-in registry,
//! as `valex validate` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use valex_core::Registry;
use valex_manifest::{LoadOptions, load_and_resolve};

fuzz_target!(|data: &[u8]| {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    let registry = REGISTRY.get_or_init(valex_cli::builtin_registry);
    let (toml, sets) = valex_fuzz::split_nul(data, 4);
    let path = valex_fuzz::write("m.toml", toml);
    let opts = LoadOptions {
        env: Vec::new(),
        sets: sets
            .iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    };
    let _ = valex_manifest::load(&path, &opts);
    let _ = load_and_resolve(&path, &opts, registry);
});
