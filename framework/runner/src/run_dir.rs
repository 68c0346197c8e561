//! The run directory: built in a hidden staging folder beside its final place and renamed
//! into place only when the run succeeded, so a failed or interrupted run never leaves a
//! half-written run directory behind. Every file inside is written atomically too
//! (temporary file + rename) in case a reader watches the staging folder.

use std::path::{Path, PathBuf};

use crate::error::RunError;

/// A run directory under construction.
#[derive(Debug)]
pub struct RunDir {
    final_path: PathBuf,
    staging: PathBuf,
    force: bool,
    committed: bool,
}

impl RunDir {
    /// Prepares to write `final_path`. Fails at once if it exists and `force` is false.
    ///
    /// # Errors
    /// [`RunError::Exists`], or I/O errors creating the staging folder.
    pub fn create(final_path: &Path, force: bool) -> Result<Self, RunError> {
        if final_path.exists() && !force {
            return Err(RunError::Exists(final_path.to_path_buf()));
        }
        let parent = final_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| RunError::io(parent, e))?;
        let name = final_path
            .file_name()
            .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned());
        let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(|e| RunError::io(&staging, e))?;
        }
        std::fs::create_dir(&staging).map_err(|e| RunError::io(&staging, e))?;
        Ok(RunDir {
            final_path: final_path.to_path_buf(),
            staging,
            force,
            committed: false,
        })
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

    /// Moves the finished run into place (replacing an old one only with `force`).
    ///
    /// # Errors
    /// I/O errors, naming the folder.
    pub fn commit(mut self) -> Result<PathBuf, RunError> {
        if self.final_path.exists() {
            if !self.force {
                return Err(RunError::Exists(self.final_path.clone()));
            }
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
        if !self.committed {
            // Best effort: a failed run leaves nothing behind.
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Writes a file atomically: a temporary file in the same folder, fsync, then rename.
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<PathBuf, RunError> {
    use std::io::Write;
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

    #[test]
    fn commit_moves_staging_into_place_and_refuses_to_overwrite() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("runs/r1");
        let rd = RunDir::create(&target, false).unwrap();
        rd.write("a.txt", b"hi").unwrap();
        assert!(!target.exists());
        rd.commit().unwrap();
        assert_eq!(std::fs::read(target.join("a.txt")).unwrap(), b"hi");
        assert!(matches!(
            RunDir::create(&target, false),
            Err(RunError::Exists(_))
        ));
        let rd = RunDir::create(&target, true).unwrap();
        rd.write("b.txt", b"new").unwrap();
        rd.commit().unwrap();
        assert!(!target.join("a.txt").exists());
        assert!(target.join("b.txt").exists());
        let leftovers: Vec<_> = std::fs::read_dir(root.path().join("runs"))
            .unwrap()
            .collect();
        assert_eq!(leftovers.len(), 1, "only the run directory remains");
    }

    #[test]
    fn dropped_run_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("r");
        {
            let rd = RunDir::create(&target, false).unwrap();
            rd.write("x", b"1").unwrap();
        }
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
