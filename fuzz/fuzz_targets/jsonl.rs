//! The JSON Lines dataset reader (`dataset/jsonl`), failing and skipping invalid rows, through
//! `JsonlDataset::load_bytes`, the parsing `load` runs on each file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valex_datasets::JsonlDataset;

fuzz_target!(|data: &[u8]| {
    let _ = JsonlDataset::new("d.jsonl".into()).load_bytes(data);
    let _ = JsonlDataset::new("d.jsonl".into())
        .skip_invalid(true)
        .load_bytes(data);
});
