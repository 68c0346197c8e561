//! The statistics-file reader (`read_stats`): the JSON sidecar, a NUL byte, then the
//! safetensors file, through `read_stats_from_bytes` (the same parsing, without reading files).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sidecar, rest) = valex_fuzz::split_nul(data, 1);
    let tensors = if rest.is_empty() {
        &[][..]
    } else {
        // Everything after the first NUL, NULs included (safetensors is binary).
        &data[sidecar.len() + 1..]
    };
    let _ = valex_stats_io::read_stats_from_bytes(Path::new("s.safetensors"), sidecar, tensors);
});
