//! The plugin host's handling of a plugin's JSON replies: `describe()` output, error JSON and
//! the `score`, `edit` and `report` outputs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = valex_plugin_host::fuzz_plugin_reply(data);
});
