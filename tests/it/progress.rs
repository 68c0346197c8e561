//! Progress bars: drawn on a terminal (a pseudo-terminal from util-linux's `script`), absent
//! when stderr is a pipe or with `-q`.

use std::process::Command;

use valex_test_support::{Case, valex_bin};

// The demo model and data, recorded item by item (the sharding tests' manifest).
use crate::shard::case;

/// Runs `valex ARGS` under a pseudo-terminal; the terminal's transcript, or `None` without
/// `script`.
fn on_a_terminal(case: &Case, args: &str) -> Option<String> {
    let cmd = format!("{} {args}", valex_bin().display());
    let out = Command::new("script")
        .args(["-qec", &cmd, "transcript.log"])
        .current_dir(case.path())
        .output()
        .ok()?;
    assert!(out.status.success(), "valex {args} under script: {out:?}");
    Some(std::fs::read_to_string(case.path().join("transcript.log")).unwrap())
}

#[test]
fn record_draws_a_bar_on_a_terminal_and_nothing_in_a_pipe() {
    let case = case();
    let Some(tty) = on_a_terminal(&case, "record m.toml --out on-tty") else {
        eprintln!("SKIPPED: util-linux `script` is not installed, so no pseudo-terminal");
        return;
    };
    // 144 activation items in the demo data.
    assert!(tty.contains("record ["), "no bar on the terminal:\n{tty}");
    // Redraws are rate-limited, so which positions show varies; the total does not.
    assert!(
        tty.contains("/144 items"),
        "the bar counts the items:\n{tty}"
    );

    let quiet = on_a_terminal(&case, "-q record m.toml --out quiet").expect("script ran above");
    assert!(!quiet.contains("record ["), "-q draws no bar:\n{quiet}");

    let case = case.args(["record", "m.toml", "--out", "piped"]);
    let piped = case.assert_exit(0);
    assert!(!piped.stderr.contains("record ["), "{}", piped.stderr);
    assert!(!piped.stderr.contains('\u{1b}'), "escape codes in a pipe");
}
