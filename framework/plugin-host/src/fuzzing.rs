//! Fuzz entry point (issue 10): runs the host's parsers of a plugin's JSON replies
//! (`describe`, error JSON, `score`, `edit` and `report` outputs) on arbitrary bytes, the way
//! [`crate::LoadedLibrary`] and the proxies do after copying a plugin's buffer.
//!
//! Not part of the API: `fuzz/fuzz_targets/plugin_reply.rs` and the regression tests call it.
//! Safe code only; it must never panic, whatever the bytes.

use std::path::Path;

use valex_core::{ActivationStats, ModelInfo};

use crate::codec::{decode_edit, decode_report, decode_score};
use crate::library::{check_description, parse_error_json};

/// Feeds `bytes` to every reply parser of the host; the results are discarded. It returns
/// how many parsers accepted the bytes (for tests).
#[doc(hidden)]
pub fn fuzz_plugin_reply(bytes: &[u8]) -> usize {
    let labels = ["a".to_owned(), "b".to_owned()];
    let stats = ActivationStats::new("mlp.act", 2, 4, &labels);
    let info = ModelInfo {
        architecture: "llama".into(),
        n_layers: 2,
        n_neurons: 4,
        hidden_size: 8,
        vocab_size: 16,
        content_sha256: String::new(),
    };
    let path = Path::new("fuzz.so");
    let mut accepted = 0;
    accepted += usize::from(check_description(path, bytes).is_ok());
    accepted += usize::from(parse_error_json(bytes).is_some());
    accepted += usize::from(decode_score(bytes, &stats, &labels).is_ok());
    accepted += usize::from(decode_score(bytes, &stats, &labels[..1]).is_ok());
    accepted += usize::from(decode_edit(bytes, "mlp.act", &info).is_ok());
    accepted += usize::from(decode_report(bytes).is_ok());
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_replies_and_rejects_garbage() {
        assert_eq!(fuzz_plugin_reply(b"\xff\x00not json"), 0);
        let describe = br#"{"components":[{"id":"scorer/x","kind":"scorer","version":"1"}]}"#;
        assert_eq!(fuzz_plugin_reply(describe), 1);
        assert_eq!(fuzz_plugin_reply(br#"{"code":"c","message":"m"}"#), 1);
        assert_eq!(
            fuzz_plugin_reply(br#"{"tap":"mlp.act","layers":[[[0,0.5]],[]]}"#),
            1
        );
        assert_eq!(
            fuzz_plugin_reply(br#"{"files":[{"name":"a.txt","text":"x"}]}"#),
            1
        );
    }
}
