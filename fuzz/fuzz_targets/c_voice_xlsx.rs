//! The C-voice reader (`dataset/c-voice`, calamine) on the bytes of an .xlsx, read both as
//! an activation file (`富强-final.xlsx`) and as the evaluation workbook.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valex_core::Dataset;
use valex_datasets::{ACTIVATION_SUFFIX, CVoiceDataset, EVALUATION_FILE, Part};

fuzz_target!(|data: &[u8]| {
    let dir = valex_fuzz::scratch().join("c-voice");
    std::fs::create_dir_all(&dir).expect("temp dir is writable");
    std::fs::write(dir.join(format!("富强{ACTIVATION_SUFFIX}")), data).expect("writable");
    std::fs::write(dir.join(EVALUATION_FILE), data).expect("writable");
    let values = ["富强".to_owned()];
    for part in [Part::Activation, Part::Evaluation] {
        for skip in [false, true] {
            let d = CVoiceDataset::new(dir.clone())
                .parts(vec![part])
                .skip_invalid(skip)
                .values(&values)
                .expect("富强 is a core value");
            let _ = d.load();
        }
    }
});
