//! Helpers shared by the fuzz targets: one scratch folder per process for the reader that
//! has no in-memory entry point (the manifest loader, which follows `include` files), and
//! splitting an input at NUL bytes.
//!
//! The scratch folder is on /dev/shm (tmpfs) when there is one: profiling the `manifest`
//! target with the folder under /tmp (ext4) showed about 40% of its time in the kernel,
//! writing the file through to the disk.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// This process's scratch folder (created once, on /dev/shm if present, else the temp dir).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("valex-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir is writable");
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder and returns its path.
pub fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).expect("scratch dir is writable");
    path
}

/// Splits `data` at NUL bytes: the first part and at most `max_rest` further parts.
pub fn split_nul(data: &[u8], max_rest: usize) -> (&[u8], Vec<&[u8]>) {
    let mut parts = data.splitn(max_rest + 2, |&b| b == 0);
    let first = parts.next().unwrap_or_default();
    (first, parts.take(max_rest).collect())
}
