//! The neuron-set readers: valex's own file (`read_neuron_sets`) and the LAPE mask import
//! (`import_lape_masks`) of the same bytes as a JSON dump and as a safetensors file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let labels = ["a".to_owned(), "b".to_owned()];
    let json = valex_fuzz::write("sets.json", data);
    let _ = valex_stats_io::read_neuron_sets(&json);
    let _ = valex_stats_io::import_lape_masks(&json, None);
    let _ = valex_stats_io::import_lape_masks(&json, Some(&labels));
    let st = valex_fuzz::write("masks.safetensors", data);
    let _ = valex_stats_io::import_lape_masks(&st, None);
    let _ = valex_stats_io::import_lape_masks(&st, Some(&labels));
});
