//! The neuron-set readers: valex's own file (`read_neuron_sets`) and the LAPE mask import
//! (`import_lape_masks`) of the same bytes as a JSON dump and as a safetensors file, through
//! their `*_from_bytes` twins (the same parsing, without reading a file).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let labels = ["a".to_owned(), "b".to_owned()];
    let json = Path::new("sets.json");
    let _ = valex_stats_io::read_neuron_sets_from_bytes(json, data);
    let _ = valex_stats_io::import_lape_masks_from_bytes(json, data, None);
    let _ = valex_stats_io::import_lape_masks_from_bytes(json, data, Some(&labels));
    let st = Path::new("masks.safetensors");
    let _ = valex_stats_io::import_lape_masks_from_bytes(st, data, None);
    let _ = valex_stats_io::import_lape_masks_from_bytes(st, data, Some(&labels));
});
