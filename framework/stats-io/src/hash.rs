//! [`sha256_file`]: content hashes for provenance records.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{FileKind, StatsIoError, StatsIoErrorKind};

/// The SHA-256 of the file at `path`, as lowercase hex. Reads in 1 MiB chunks.
///
/// # Errors
/// The file cannot be opened or read.
pub fn sha256_file(path: &Path) -> Result<String, StatsIoError> {
    let err = |e: std::io::Error| {
        StatsIoError::new(FileKind::Hashed, path, StatsIoErrorKind::Read).with_source(e)
    };
    let mut f = File::open(path).map_err(err)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0_u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_known_content() {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = dir.path().join("abc.txt");
        std::fs::write(&p, b"abc").expect("write");
        assert_eq!(
            sha256_file(&p).expect("hashes"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let err = sha256_file(&dir.path().join("none")).expect_err("absent");
        assert!(err.to_string().starts_with("file "), "{err}");
        assert!(err.to_string().ends_with("none: failed to read"), "{err}");
    }
}
