//! Faults: fault builds of the example (ABI mismatch, missing symbol), panics, malformed
//! output, plugin errors as JSON. The host survives all of them.

use std::sync::Arc;

use serde_json::json;
use valex_core::{ActivationStats, ErrorClass, RegistryBuilder, Scorer};
use valex_plugin_host::{ExternalScorer, PluginError, PluginHost, PluginLoadError};

use crate::support::{example_lib, fault_lib};

fn lib() -> Arc<valex_plugin_host::LoadedLibrary> {
    PluginHost::new()
        .load(&example_lib())
        .expect("the example loads")
}

fn stats() -> ActivationStats {
    let mut s = ActivationStats::new("t", 1, 3, &["a".to_owned(), "b".to_owned()]);
    for l in &mut s.labels {
        l.tokens = 2.0;
        l.sum = vec![1.0, 2.0, 3.0];
        l.sum_sq = vec![1.0, 4.0, 9.0];
    }
    s
}

// See: #10
#[test]
fn r10_a_hanging_call_times_out_names_the_call_and_poisons_the_instance() {
    let lib = valex_plugin_host::LoadedLibrary::load(&example_lib())
        .expect("the example loads")
        .with_call_timeout(std::time::Duration::from_millis(300));
    let lib = Arc::new(lib);
    let probe = ExternalScorer::create(&lib, "scorer/panic-probe", &json!({"when": "hang"}))
        .expect("creates");
    let labels = ["a".to_owned(), "b".to_owned()];
    let started = std::time::Instant::now();
    let e = probe.score(&stats(), &labels).unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(300)
            && waited < std::time::Duration::from_secs(10),
        "{waited:?}"
    );
    assert_eq!(e.class, ErrorClass::Plugin);
    assert_eq!(
        e.to_string(),
        format!(
            "plugin {}: scorer/panic-probe: score did not return within 0.3 s; the call was abandoned (raise call_timeout_secs of its [[plugins]] entry if it is only slow)",
            example_lib().display()
        )
    );
    // Poisoned: the abandoned thread may still be inside the instance.
    let e = probe.score(&stats(), &labels).unwrap_err();
    assert!(
        e.to_string().ends_with("after an earlier panic or timeout"),
        "{e}"
    );
    drop(probe); // no destroy while the call may still run; must not block
    // Other instances of the library keep working, within the same timeout.
    let smd = ExternalScorer::create(&lib, "scorer/max-smd", &json!({"top_k": 1})).unwrap();
    assert_eq!(smd.score(&stats(), &labels).unwrap().sets.len(), 2);
}

#[test]
fn abi_mismatch_names_both_versions_and_what_to_rebuild() {
    let path = fault_lib("fault-abi-mismatch");
    let e = PluginHost::new().load(&path).unwrap_err();
    assert!(
        matches!(
            e,
            PluginLoadError::AbiMismatch {
                found: 999,
                expected: 1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        format!(
            "plugin {} was built for ABI v999 but this valex speaks v1; rebuild it against valex-plugin-sdk 0.1",
            path.display()
        )
    );
}

#[test]
fn missing_entry_symbol_is_named() {
    let path = fault_lib("fault-missing-entry");
    let e = PluginHost::new().load(&path).unwrap_err();
    assert!(
        matches!(&e, PluginLoadError::MissingSymbol { symbol, .. } if symbol == "valex_plugin_entry"),
        "{e:?}"
    );
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
}

#[test]
fn a_panic_in_score_is_contained_and_poisons_the_instance() {
    let lib = lib();
    let probe = ExternalScorer::create(&lib, "scorer/panic-probe", &json!({"when": "score"}))
        .expect("creates");
    let labels = ["a".to_owned(), "b".to_owned()];
    let e = probe.score(&stats(), &labels).unwrap_err();
    assert_eq!(e.class, ErrorClass::Plugin);
    let text = e.to_string();
    let want = format!(
        "plugin {}: scorer/panic-probe: panicked: panic-probe: panicking in score as asked (at plugins/example-external/src/extras.rs:",
        example_lib().display()
    );
    assert!(text.starts_with(&want), "{text}");
    // Poisoned: never called again.
    let e = probe.score(&stats(), &labels).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("not called again after an earlier panic or timeout"),
        "{e}"
    );
    drop(probe); // no destroy for a poisoned instance; must not crash
    // The library and the host keep working.
    let smd = ExternalScorer::create(&lib, "scorer/max-smd", &json!({"top_k": 1})).unwrap();
    assert_eq!(smd.score(&stats(), &labels).unwrap().sets.len(), 2);
}

#[test]
fn a_panic_in_create_is_a_recorded_fault() {
    let mut host = PluginHost::new();
    host.load(&example_lib()).unwrap();
    let mut b = RegistryBuilder::new();
    host.register(&mut b).unwrap();
    let r = b.build();
    let e = r
        .scorer(
            "scorer/panic-probe",
            &json!({"when": "create"}),
            &Default::default(),
        )
        .err()
        .expect("create panics");
    assert!(
        e.message.starts_with(&format!(
            "plugin {}: panicked: panic-probe: panicking in create as asked (at ",
            example_lib().display()
        )),
        "{}",
        e.message
    );
    let faults = host.faults();
    assert_eq!(faults.len(), 1);
    assert!(matches!(faults[0], PluginError::Panicked { .. }));
}

#[test]
fn malformed_output_is_rejected_with_what_is_wrong() {
    let lib = lib();
    let probe =
        ExternalScorer::create(&lib, "scorer/panic-probe", &json!({"when": "bad-output"})).unwrap();
    let e = probe
        .score_with_scores(&stats(), &["a".to_owned(), "b".to_owned()])
        .unwrap_err();
    assert!(matches!(e, PluginError::Malformed { .. }), "{e:?}");
    assert!(
        e.to_string()
            .ends_with("malformed output: set a: layer 0: neuron 3 is outside 0..3"),
        "{e}"
    );
}

#[test]
fn plugin_errors_round_trip_as_json() {
    let lib = lib();
    let e = ExternalScorer::create(&lib, "scorer/max-smd", &json!({"top_k": 0}))
        .err()
        .expect("top_k = 0 is rejected");
    assert_eq!(
        e,
        PluginError::Failed {
            plugin: example_lib().display().to_string(),
            component: "scorer/max-smd".into(),
            code: "scorer.bad_params".into(),
            message: "top_k: must be at least 1, found 0".into(),
            help: Some(
                "set score.params.top_k to the number of neurons to select per label".into()
            ),
        }
    );
    let e = ExternalScorer::create(&lib, "scorer/max-smd", &json!({"top_kk": 3}))
        .err()
        .unwrap();
    assert!(
        matches!(&e, PluginError::Failed { message, .. } if message.starts_with("unknown field `top_kk`")),
        "{e:?}"
    );
    let smd = ExternalScorer::create(&lib, "scorer/max-smd", &json!({})).unwrap();
    let e = smd
        .score_with_scores(&stats(), &["a".to_owned(), "zz".to_owned()])
        .unwrap_err();
    assert!(
        matches!(&e, PluginError::Failed { code, .. } if code == "scorer.unknown_label"),
        "{e:?}"
    );
    assert!(!e.is_fault());
}
