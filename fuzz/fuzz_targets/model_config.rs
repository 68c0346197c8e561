//! config.json parsing of backend/candle, for every supported `model_type` (llama, qwen2,
//! mistral, gpt2): the seeds hold one config of each, and the parser dispatches on the key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use valex_backend_candle::ModelConfig;

fuzz_target!(|data: &[u8]| {
    let _ = ModelConfig::from_json("config config.json", data);
});
