//! Params shared by the built-in reporters: output file names.

use valex_core::ConfigError;

/// Checks that `name` (the value of param `key`) is a plain file name inside the run directory.
///
/// # Errors
/// A [`ConfigError`] naming `key` when `name` is empty, `.`/`..` or holds a path separator.
pub fn check_file_name(key: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
    if ok {
        Ok(())
    } else {
        Err(ConfigError::new(
            Some(key),
            format!("{key} \"{name}\" must be a plain file name inside the run directory"),
        ))
    }
}

/// Checks that every `(key, name)` is a plain file name and that no two are the same.
///
/// # Errors
/// The first bad or repeated name, naming its key.
pub fn check_file_names(names: &[(&str, &str)]) -> Result<(), ConfigError> {
    for (i, (key, name)) in names.iter().enumerate() {
        check_file_name(key, name)?;
        if let Some((other, _)) = names[..i].iter().find(|(_, n)| n == name) {
            return Err(ConfigError::new(
                Some(key),
                format!("{key} \"{name}\" is the same file as {other}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_paths_and_repeats_naming_the_key() {
        assert!(check_file_name("file", "a.csv").is_ok());
        for bad in ["", ".", "..", "a/b", "..\\x"] {
            assert_eq!(
                check_file_name("file", bad).unwrap_err().key.as_deref(),
                Some("file")
            );
        }
        let e = check_file_names(&[("a", "x.csv"), ("b", "x.csv")]).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("b"));
        assert_eq!(e.message, "b \"x.csv\" is the same file as a");
    }
}
