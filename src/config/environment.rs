//! The process environment as zava-mcp reads it: an empty variable counts as unset, and any variable `NAME` may
//! instead be given as `NAME_FILE`, the path of a file holding the value (how container platforms hand over
//! secrets: Docker and Kubernetes mount them as files).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

/// Where a value read from the environment came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EnvSource {
    /// `NAME` itself.
    Variable,
    /// The file `NAME_FILE` named.
    File(PathBuf),
}

/// `NAME`, or the contents of the file `NAME_FILE` names (one trailing line break removed). Both set is an
/// error: which one was meant cannot be guessed.
pub(crate) fn var(name: &str) -> Result<Option<(String, EnvSource)>> {
    let direct = non_empty(name);
    let file_var = format!("{name}_FILE");
    let Some(path) = non_empty(&file_var) else {
        return Ok(direct.map(|v| (v, EnvSource::Variable)));
    };
    if direct.is_some() {
        bail!("both {name} and {file_var} are set: give one of them");
    }
    let path = PathBuf::from(path);
    let bytes = std::fs::read(&path).with_context(|| format!("{file_var}={}: cannot read the file", path.display()))?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{file_var}={}: the file is not UTF-8 text", path.display()))?;
    for ending in ["\r\n", "\n"] {
        if let Some(stripped) = text.strip_suffix(ending) {
            text.truncate(stripped.len());
            break;
        }
    }
    if text.trim().is_empty() {
        bail!("{file_var}={}: the file is empty", path.display());
    }
    Ok(Some((text, EnvSource::File(path))))
}

/// `NAME` or `NAME_FILE`, the value only.
pub(crate) fn value(name: &str) -> Result<Option<String>> {
    Ok(var(name)?.map(|(v, _)| v))
}

fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test uses variables of its own: tests run in parallel threads sharing one environment.
    #[test]
    fn a_file_variable_gives_the_files_text_without_its_line_break() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        // SAFETY: only this test reads or writes these variables.
        unsafe { std::env::set_var("ZAVA_TEST_ENV_A_FILE", &path) };
        assert_eq!(var("ZAVA_TEST_ENV_A").unwrap(), Some(("s3cret".into(), EnvSource::File(path.clone()))));
        unsafe { std::env::set_var("ZAVA_TEST_ENV_A", "direct") };
        let both = var("ZAVA_TEST_ENV_A").unwrap_err().to_string();
        assert!(both.contains("both ZAVA_TEST_ENV_A and ZAVA_TEST_ENV_A_FILE"), "{both}");
    }

    #[test]
    fn a_missing_or_empty_file_is_an_error_naming_the_variable() {
        // SAFETY: only this test reads or writes these variables.
        unsafe { std::env::set_var("ZAVA_TEST_ENV_B_FILE", "/nonexistent/zava/secret") };
        let e = format!("{:#}", var("ZAVA_TEST_ENV_B").unwrap_err());
        assert!(e.contains("ZAVA_TEST_ENV_B_FILE=/nonexistent/zava/secret: cannot read"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        unsafe { std::env::set_var("ZAVA_TEST_ENV_B_FILE", dir.path().join("empty")) };
        assert!(var("ZAVA_TEST_ENV_B").unwrap_err().to_string().contains("is empty"));
        assert_eq!(var("ZAVA_TEST_ENV_UNSET").unwrap(), None);
    }
}
