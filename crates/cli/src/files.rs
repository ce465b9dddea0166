//! Files the user names, read and written defensively: inputs are read up to a size cap (a
//! device such as `/dev/zero`, or a wrong path to a huge file, ends in an error instead of
//! filling memory), and secrets read from files readable by others draw a warning.

use std::path::Path;

use anyhow::{Result, bail};
use zeroize::Zeroizing;

/// Reads `path` whole, refusing more than [`mailpki_workflows::input::MAX_INPUT`] bytes.
pub(crate) fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    Ok(mailpki_workflows::input::read(path)?)
}

/// Reads a UTF-8 text file whole, with the same cap.
pub(crate) fn read_text(path: &Path) -> Result<Zeroizing<String>> {
    let data = read(path)?;
    match std::str::from_utf8(&data) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => bail!("{} is not UTF-8 text", path.display()),
    }
}

/// Warns when a file holding a secret can be read by other users.
pub(crate) fn warn_if_readable_by_others(path: &Path, what: &str) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(
                path = %path.display(),
                "the {what} file is readable by other users; run `chmod 600` on it"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_larger_than_the_cap_are_refused() {
        let err = read(Path::new("/dev/zero")).unwrap_err();
        assert!(err.to_string().contains("larger than"), "{err}");
    }
}
