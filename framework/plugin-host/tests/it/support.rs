//! Finding (and, for fault builds, building) the example library; capturing tracing events.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// `target/<profile>`: the folder above this test's `deps/`.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps")
        .to_path_buf()
}

/// The example plugin built by `cargo build --workspace`.
///
/// # Panics
/// When it was not built, with the command that builds it (`cargo test` builds no cdylib).
pub fn example_lib() -> PathBuf {
    let p = profile_dir().join(format!(
        "{}valex_plugin_example{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    assert!(
        p.exists(),
        "{} not found: build it first with `cargo build --workspace` (cargo test does not build cdylibs)",
        p.display()
    );
    p
}

/// A copy of the example at a fresh path: a separate dlopen with fresh plugin statics.
pub fn example_copy(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::copy(example_lib(), &p).expect("copy the example library");
    p
}

/// Builds the example with `feature` into `target/plugin-faults/` and returns a copy of the
/// library for that feature. The first build compiles the example's dependencies there once
/// (about a minute on two cores); later ones only the example. A lock file serialises the
/// tests that build.
pub fn fault_lib(feature: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let faults = profile_dir().join("..").join("plugin-faults");
    std::fs::create_dir_all(&faults).expect("create target/plugin-faults");
    let lock = std::fs::File::create(faults.join(".lock")).expect("create the lock file");
    lock.lock().expect("lock target/plugin-faults");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "build",
            "--offline",
            "-p",
            "valex-plugin-example",
            "--features",
            feature,
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(faults.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("cargo starts");
    assert!(
        out.status.success(),
        "building the example with --features {feature} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = format!(
        "{}valex_plugin_example{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let dst = faults.join(format!("{feature}{}", std::env::consts::DLL_SUFFIX));
    std::fs::copy(faults.join("target/debug").join(name), &dst).expect("copy the fault build");
    dst
}

/// One captured event: its fields as text.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    pub level: String,
    pub fields: Vec<(String, String)>,
}

impl Captured {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A subscriber that keeps every event.
#[derive(Clone, Default)]
pub struct Capture(pub Arc<Mutex<Vec<Captured>>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut c = Captured {
            level: event.metadata().level().to_string(),
            fields: Vec::new(),
        };
        event.record(&mut Fields(&mut c.fields));
        self.0.lock().expect("capture lock").push(c);
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
