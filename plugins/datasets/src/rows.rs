//! The one rule every reader follows for a bad row: fail, or (with `skip_invalid = true`)
//! skip it and list it. Rows are never dropped silently.

use std::path::Path;

use valex_core::ComponentError;
use valex_core::dataset::SkippedRow;

/// Collects skipped rows, or turns the first invalid row into an error.
#[derive(Debug, Default)]
pub(crate) struct RowPolicy {
    skip_invalid: bool,
    skipped: Vec<SkippedRow>,
}

impl RowPolicy {
    /// Fails on invalid rows unless `skip_invalid`.
    pub(crate) fn new(skip_invalid: bool) -> Self {
        RowPolicy {
            skip_invalid,
            skipped: Vec::new(),
        }
    }

    /// Reports an invalid row at `location` (`line 3`, `sheet 富强, row 226`) of `file`.
    ///
    /// # Errors
    /// `dataset FILE: LOCATION: REASON` (an input error) unless rows may be skipped.
    pub(crate) fn invalid(
        &mut self,
        file: &Path,
        location: String,
        reason: String,
    ) -> Result<(), ComponentError> {
        if self.skip_invalid {
            self.skipped.push(SkippedRow {
                file: file.to_path_buf(),
                location,
                reason,
            });
            Ok(())
        } else {
            Err(ComponentError::input(format!(
                "dataset {}: {location}: {reason} (set skip_invalid = true to skip and list such rows)",
                file.display()
            )))
        }
    }

    /// The rows skipped so far.
    pub(crate) fn into_skipped(self) -> Vec<SkippedRow> {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_by_default_and_lists_when_skipping() {
        let e = RowPolicy::new(false)
            .invalid(Path::new("d.jsonl"), "line 3".into(), "bad".into())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "dataset d.jsonl: line 3: bad (set skip_invalid = true to skip and list such rows)"
        );
        let mut p = RowPolicy::new(true);
        p.invalid(Path::new("d.jsonl"), "line 3".into(), "bad".into())
            .unwrap();
        let s = p.into_skipped();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].to_string(), "d.jsonl: line 3: bad");
    }
}
