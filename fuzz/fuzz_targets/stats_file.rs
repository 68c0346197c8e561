//! The statistics-file reader (`read_stats`): the JSON sidecar, a NUL byte, then the
//! safetensors file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (sidecar, rest) = valex_fuzz::split_nul(data, 1);
    let tensors = if rest.is_empty() {
        &[][..]
    } else {
        // Everything after the first NUL, NULs included (safetensors is binary).
        &data[sidecar.len() + 1..]
    };
    valex_fuzz::write("s.json", sidecar);
    let path = valex_fuzz::write("s.safetensors", tensors);
    let _ = valex_stats_io::read_stats(&path);
});
