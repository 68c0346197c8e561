//! The run directory: built in a hidden staging folder beside its final place,
//! `.NAME.partial/`, and renamed into place only when the run succeeded, so a run directory
//! that exists is always complete. Every file inside is written atomically (temporary file +
//! rename) in case a reader watches the staging folder.
//!
//! The staging folder's name does not depend on the process, so a run that was interrupted,
//! killed or failed stays there, clearly incomplete, and `valex run --resume` finds it again
//! (`resume.rs`). Besides the run's own files it holds bookkeeping that never reaches the run
//! directory: `lock` (the PID of the process writing it; a second writer is refused),
//! `status.json` (`running`, `interrupted` or `failed`, with the stage and the error),
//! `progress.json` and record checkpoints. [`RunDir::commit`] removes them just before the
//! rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::RunError;

/// The lock file in a staging folder: the PID of the process writing it.
pub const LOCK_FILE: &str = "lock";
/// The status file in a staging folder.
pub const STATUS_FILE: &str = "status.json";
/// The progress file in a staging folder (see `resume.rs`).
pub const PROGRESS_FILE: &str = "progress.json";
/// Name prefix of record checkpoints in a staging folder.
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";

const PARTIAL_SUFFIX: &str = ".partial";

/// A run directory under construction.
#[derive(Debug)]
pub struct RunDir {
    final_path: PathBuf,
    staging: PathBuf,
    force: bool,
    committed: bool,
    /// A final status (interrupted, failed) was written: `Drop` leaves it alone.
    ended: std::cell::Cell<bool>,
    /// Files written with [`RunDir::write_output`] (run.json, reporter outputs).
    outputs: std::cell::RefCell<Vec<String>>,
}

impl RunDir {
    /// The staging folder of `final_path`: `.NAME.partial` beside it.
    pub fn partial_path(final_path: &Path) -> PathBuf {
        let name = final_path
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
        let parent = final_path.parent().unwrap_or(Path::new(""));
        parent.join(format!(".{name}{PARTIAL_SUFFIX}"))
    }

    /// The final path a staging folder stands for, when `path` is named like one
    /// (`.NAME.partial`).
    pub fn final_path_of(path: &Path) -> Option<PathBuf> {
        let name = path.file_name()?.to_str()?;
        let inner = name.strip_prefix('.')?.strip_suffix(PARTIAL_SUFFIX)?;
        let parent = path.parent().unwrap_or(Path::new(""));
        (!inner.is_empty()).then(|| parent.join(inner))
    }

    /// Prepares to write `final_path`. Fails at once if it exists and `force` is false, or if
    /// an incomplete run of it is kept (resume it, or discard it with `force`).
    ///
    /// # Errors
    /// [`RunError::Exists`], [`RunError::Incomplete`], [`RunError::Locked`] (another process
    /// writes it), or I/O errors creating the staging folder.
    pub fn create(final_path: &Path, force: bool) -> Result<Self, RunError> {
        if final_path.exists() && !force {
            return Err(RunError::Exists(final_path.to_path_buf()));
        }
        let parent = parent_of(final_path);
        std::fs::create_dir_all(&parent).map_err(|e| RunError::io(&parent, e))?;
        let staging = Self::partial_path(final_path);
        if staging.exists() {
            check_lock(&staging)?;
            if !force {
                return Err(RunError::Incomplete {
                    final_path: final_path.to_path_buf(),
                    staging,
                });
            }
            std::fs::remove_dir_all(&staging).map_err(|e| RunError::io(&staging, e))?;
        }
        std::fs::create_dir(&staging).map_err(|e| RunError::io(&staging, e))?;
        Self::open(final_path, staging, force)
    }

    /// Opens the kept staging folder of an incomplete run to continue it.
    ///
    /// # Errors
    /// [`RunError::Locked`] when a live process writes it; I/O errors.
    pub fn reopen(staging: &Path, final_path: &Path, force: bool) -> Result<Self, RunError> {
        check_lock(staging)?;
        // The lock is stale (its process is gone): take it over.
        let _ = std::fs::remove_file(staging.join(LOCK_FILE));
        Self::open(final_path, staging.to_path_buf(), force)
    }

    fn open(final_path: &Path, staging: PathBuf, force: bool) -> Result<Self, RunError> {
        let lock = staging.join(LOCK_FILE);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => RunError::Locked {
                    path: staging.clone(),
                    pid: read_pid(&lock).unwrap_or(0),
                },
                _ => RunError::io(&lock, e),
            })?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(|e| RunError::io(&lock, e))?;
        let dir = RunDir {
            final_path: final_path.to_path_buf(),
            staging,
            force,
            committed: false,
            ended: std::cell::Cell::new(false),
            outputs: std::cell::RefCell::new(Vec::new()),
        };
        dir.write_status("running", None, None)?;
        Ok(dir)
    }

    /// Where files are being written now.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// Where the run will be once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// Writes `bytes` to `name` inside the run directory atomically.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, RunError> {
        write_atomic(&self.staging.join(name), bytes)
    }

    /// Writes a final output (run.json, a reporter's file): like [`RunDir::write`], but
    /// [`RunDir::discard_outputs`] removes it again if the run does not commit, so a kept
    /// staging folder never holds a file that looks like a finished run's.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn write_output(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, RunError> {
        self.outputs.borrow_mut().push(name.to_owned());
        self.write(name, bytes)
    }

    /// Removes every file written with [`RunDir::write_output`] (best effort).
    pub fn discard_outputs(&self) {
        for name in self.outputs.borrow_mut().drain(..) {
            let _ = std::fs::remove_file(self.staging.join(name));
        }
    }

    /// Writes `status.json`: `status` (`running`, `interrupted` or `failed`), the stage it
    /// happened in, and the error's text. A status other than `running` is final: the folder
    /// is kept as it is when this `RunDir` is dropped.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn write_status(
        &self,
        status: &str,
        stage: Option<&str>,
        error: Option<&str>,
    ) -> Result<(), RunError> {
        let doc = json!({
            "status": status,
            "stage": stage,
            "error": error,
            "pid": std::process::id(),
            "updated_utc": crate::provenance::utc_rfc3339(),
            "resume": format!("valex run --resume {}", self.final_path.display()),
        });
        let mut bytes = serde_json::to_vec_pretty(&doc).expect("json values serialise");
        bytes.push(b'\n');
        self.write(STATUS_FILE, &bytes)?;
        self.ended.set(status != "running");
        Ok(())
    }

    /// Moves the finished run into place (replacing an old one only with `force`), after
    /// removing the staging folder's bookkeeping (lock, status, progress, checkpoints and
    /// temporary files left by an earlier, killed process).
    ///
    /// # Errors
    /// I/O errors, naming the folder.
    pub fn commit(&mut self) -> Result<PathBuf, RunError> {
        if self.final_path.exists() && !self.force {
            return Err(RunError::Exists(self.final_path.clone()));
        }
        let entries =
            std::fs::read_dir(&self.staging).map_err(|e| RunError::io(&self.staging, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bookkeeping = [STATUS_FILE, PROGRESS_FILE].contains(&name.as_str())
                || name.starts_with(CHECKPOINT_PREFIX)
                || (name.starts_with('.') && name.contains(".tmp-"));
            if bookkeeping {
                let p = entry.path();
                std::fs::remove_file(&p).map_err(|e| RunError::io(&p, e))?;
            }
        }
        // The lock goes last: until here no other process may take the folder over.
        let lock = self.staging.join(LOCK_FILE);
        std::fs::remove_file(&lock).map_err(|e| RunError::io(&lock, e))?;
        if self.final_path.exists() {
            let old = self.staging.with_extension("old");
            std::fs::rename(&self.final_path, &old)
                .map_err(|e| RunError::io(&self.final_path, e))?;
            std::fs::rename(&self.staging, &self.final_path)
                .map_err(|e| RunError::io(&self.final_path, e))?;
            std::fs::remove_dir_all(&old).map_err(|e| RunError::io(&old, e))?;
        } else {
            std::fs::rename(&self.staging, &self.final_path)
                .map_err(|e| RunError::io(&self.final_path, e))?;
        }
        self.committed = true;
        Ok(self.final_path.clone())
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // Best effort: the folder stays (it is resumable); a run that ended without a final
        // status (a panic, an early return) is marked failed, and the lock is released.
        if !self.ended.get() {
            self.discard_outputs();
            let error = if std::thread::panicking() {
                "valex panicked (a bug; please report it)"
            } else {
                "the run ended without recording why"
            };
            let _ = self.write_status("failed", None, Some(error));
        }
        let _ = std::fs::remove_file(self.staging.join(LOCK_FILE));
    }
}

fn parent_of(path: &Path) -> PathBuf {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf()
}

fn read_pid(lock: &Path) -> Option<u32> {
    std::fs::read_to_string(lock).ok()?.trim().parse().ok()
}

/// Fails with [`RunError::Locked`] when the staging folder's lock names a live process.
fn check_lock(staging: &Path) -> Result<(), RunError> {
    let lock = staging.join(LOCK_FILE);
    if !lock.exists() {
        return Ok(());
    }
    match read_pid(&lock) {
        Some(pid) if pid != std::process::id() && is_alive(pid) => Err(RunError::Locked {
            path: staging.to_path_buf(),
            pid,
        }),
        _ => Ok(()),
    }
}

/// Whether process `pid` runs (Linux `/proc`; a zombie counts as gone). Without `/proc`
/// the answer is "no", so a stale lock never blocks a resume.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S ...`: the state follows the last ')'.
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
        Err(_) => false,
    }
}

/// Reads the `status.json` of a staging folder (`Value::Null` when absent or unreadable).
pub(crate) fn read_status(staging: &Path) -> Value {
    std::fs::read(staging.join(STATUS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null)
}

/// Writes a file atomically: a temporary file in the same folder, fsync, then rename.
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<PathBuf, RunError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(RunError::io(path, e));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn commit_moves_staging_into_place_and_refuses_to_overwrite() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("runs/r1");
        let mut rd = RunDir::create(&target, false).unwrap();
        rd.write("a.txt", b"hi").unwrap();
        rd.write("checkpoint-00000001.json", b"{}").unwrap();
        assert!(!target.exists());
        rd.commit().unwrap();
        assert_eq!(names(&target), vec!["a.txt"], "bookkeeping is removed");
        assert!(matches!(
            RunDir::create(&target, false),
            Err(RunError::Exists(_))
        ));
        let mut rd = RunDir::create(&target, true).unwrap();
        rd.write("b.txt", b"new").unwrap();
        rd.commit().unwrap();
        assert_eq!(names(&target), vec!["b.txt"]);
        assert_eq!(names(&root.path().join("runs")), vec!["r1"]);
    }

    #[test]
    fn dropped_run_is_kept_marked_failed_and_unlocked() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("r");
        {
            let rd = RunDir::create(&target, false).unwrap();
            rd.write("x", b"1").unwrap();
        }
        assert_eq!(names(root.path()), vec![".r.partial"]);
        let staging = root.path().join(".r.partial");
        assert_eq!(names(&staging), vec!["status.json", "x"]);
        assert_eq!(read_status(&staging)["status"], "failed");
        // A new run refuses to discard it without force, then replaces it with force.
        assert!(matches!(
            RunDir::create(&target, false),
            Err(RunError::Incomplete { .. })
        ));
        let rd = RunDir::create(&target, true).unwrap();
        assert_eq!(names(rd.staging()), vec!["lock", "status.json"]);
    }

    #[test]
    fn a_live_lock_refuses_a_second_writer_and_a_stale_one_is_taken_over() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("r");
        let rd = RunDir::create(&target, false).unwrap();
        let staging = rd.staging().to_path_buf();
        rd.write_status("interrupted", Some("record"), None)
            .unwrap();
        // PID 1 is always alive: another writer.
        std::fs::write(staging.join(LOCK_FILE), "1\n").unwrap();
        assert!(matches!(
            RunDir::reopen(&staging, &target, false),
            Err(RunError::Locked { pid: 1, .. })
        ));
        // A PID beyond pid_max never runs: a stale lock (left by a killed process).
        drop(rd);
        std::fs::write(staging.join(LOCK_FILE), "4294967295\n").unwrap();
        let again = RunDir::reopen(&staging, &target, false).unwrap();
        assert_eq!(read_status(again.staging())["status"], "running");
        assert_eq!(read_pid(&staging.join(LOCK_FILE)), Some(std::process::id()));
    }

    #[test]
    fn partial_and_final_paths_map_to_each_other() {
        let p = RunDir::partial_path(Path::new("runs/demo-1"));
        assert_eq!(p, Path::new("runs/.demo-1.partial"));
        assert_eq!(RunDir::final_path_of(&p).unwrap(), Path::new("runs/demo-1"));
        assert_eq!(
            RunDir::partial_path(Path::new("out")),
            Path::new(".out.partial")
        );
        assert_eq!(
            RunDir::final_path_of(Path::new(".out.partial")).unwrap(),
            Path::new("out")
        );
        assert!(RunDir::final_path_of(Path::new("runs/demo-1")).is_none());
    }
}
