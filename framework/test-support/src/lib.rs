//! valex-test-support: helpers for valex's end-to-end tests.
//!
//! [`Case`] runs the built `valex` binary in its own temporary folder, like ripgrep's
//! `TestCommand`: write files, pass arguments, assert the exit code, read outputs. The binary
//! must be built first (`cargo build --workspace`, which .ci/run does); a missing binary is a
//! clear panic, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// `../shared` beside the repository, if present (test data that is never committed).
pub fn shared_dir() -> Option<PathBuf> {
    let p = repo_root().join("../shared");
    p.is_dir().then_some(p)
}

/// The built `valex` binary next to the running test executable's profile folder.
///
/// # Panics
/// When it has not been built, with the command that builds it.
pub fn valex_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test> -> target/<profile>/valex
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executables live in target/<profile>/deps");
    let bin = profile_dir.join("valex");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build --workspace` (the README's test command does)",
        bin.display()
    );
    bin
}

/// The outcome of one command.
#[derive(Debug)]
pub struct Output {
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// The lines of stderr that start with `error: ` (what a user sees as the failure).
    pub fn error_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("error: "))
            .collect()
    }
}

/// One end-to-end case in its own temporary folder.
pub struct Case {
    dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Case {
    /// A new case with an empty temporary folder.
    pub fn new() -> Self {
        Case {
            dir: tempfile::Builder::new()
                .prefix("valex-e2e-")
                .tempdir()
                .expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The case's folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders).
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let p = self.dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create folders");
        }
        std::fs::write(&p, contents).expect("write test file");
        self
    }

    /// Sets the arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// Sets an environment variable for the command.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }

    /// Runs `valex` with the arguments in the case folder.
    pub fn run(&self) -> Output {
        let mut cmd = Command::new(valex_bin());
        cmd.args(&self.args).current_dir(self.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("VALEX_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("valex starts");
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and asserts the exit code, showing both streams on failure.
    ///
    /// # Panics
    /// When the exit code differs.
    pub fn assert_exit(&self, code: i32) -> Output {
        let out = self.run();
        assert_eq!(
            out.code, code,
            "valex {:?} exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args, out.code, out.stdout, out.stderr
        );
        out
    }

    /// Asserts that a failed or interrupted run left no run directory behind: nothing named
    /// `out...` or `runs/<name>` (hidden names excepted), and every staging folder it kept
    /// (`.NAME.partial`, anywhere) is marked `failed` or `interrupted` in its status.json and
    /// holds no run.json or results.json. Returns the staging folders found.
    ///
    /// # Panics
    /// When something looks like a run directory, or a staging folder looks complete.
    pub fn assert_no_run_dir(&self) -> Vec<PathBuf> {
        let tree = self.tree();
        let finished: Vec<&String> = tree
            .iter()
            .filter(|p| {
                let mut parts = Path::new(p.as_str())
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned());
                match parts.next().as_deref() {
                    Some(first) if first.starts_with("out") => true,
                    Some("runs") => parts.next().is_some_and(|n| !n.starts_with('.')),
                    _ => false,
                }
            })
            .collect();
        assert!(
            finished.is_empty(),
            "run directory left behind: {finished:?}"
        );
        let staging: Vec<PathBuf> = tree
            .iter()
            .filter(|p| p.ends_with(".partial"))
            .map(|p| self.path().join(p))
            .collect();
        for dir in &staging {
            let status = std::fs::read_to_string(dir.join("status.json")).unwrap_or_default();
            assert!(
                status.contains("\"status\": \"failed\"")
                    || status.contains("\"status\": \"interrupted\""),
                "{} is not marked incomplete: {status:?}",
                dir.display()
            );
            for f in ["run.json", "results.json"] {
                assert!(
                    !dir.join(f).exists(),
                    "{} holds {f}, as if it were complete",
                    dir.display()
                );
            }
        }
        staging
    }

    /// Every entry (recursively) in the case folder, relative, sorted.
    pub fn tree(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        out.sort();
        out
    }
}

impl Default for Case {
    fn default() -> Self {
        Self::new()
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
        if p.is_dir() {
            walk(root, &p, out);
        }
    }
}
