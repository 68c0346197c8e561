//! The JSON Lines dataset reader (`dataset/jsonl`), failing and skipping invalid rows.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valex_core::Dataset;
use valex_datasets::JsonlDataset;

fuzz_target!(|data: &[u8]| {
    let path = valex_fuzz::write("d.jsonl", data);
    let _ = JsonlDataset::new(path.clone()).load();
    let _ = JsonlDataset::new(path).skip_invalid(true).load();
});
