//! The C-voice reader (`dataset/c-voice`, calamine) on the bytes of an .xlsx, read both as
//! an activation file (`富强-final.xlsx`) and as the evaluation workbook, through
//! `CVoiceDataset::load_workbooks`, the parsing `load` runs on the files of the folder.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use valex_datasets::{CVoiceDataset, Part, open_bytes};

fuzz_target!(|data: &[u8]| {
    let values = ["富强".to_owned()];
    for part in [Part::Activation, Part::Evaluation] {
        for skip in [false, true] {
            let d = CVoiceDataset::new("c-voice".into())
                .parts(vec![part])
                .skip_invalid(skip)
                .values(&values)
                .expect("富强 is a core value");
            let _ = d.load_workbooks(|file: &Path| open_bytes(file, data));
        }
    }
});
