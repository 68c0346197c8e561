//! Helpers shared by the fuzz targets: one scratch folder per process for the readers that
//! take a path (they have no in-memory API), reused by every execution.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch folder (created once, under the system temp dir).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("valex-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("temp dir is writable");
    path
}

/// Splits `data` at NUL bytes: the first part and at most `max_rest` further parts.
pub fn split_nul(data: &[u8], max_rest: usize) -> (&[u8], Vec<&[u8]>) {
    let mut parts = data.splitn(max_rest + 2, |&b| b == 0);
    let first = parts.next().unwrap_or_default();
    (first, parts.take(max_rest).collect())
}
