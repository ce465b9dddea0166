//! Files a user names (a certificate, a key, a PKCS#12 file in a CSV row), read whole up to a
//! size cap: a device such as `/dev/zero`, or a wrong path to a huge file, ends in an error
//! instead of filling memory.

use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Result, WorkflowError};

/// The largest input file read whole: certificates, keys, PKCS#12 files, extension files,
/// passwords, tokens and configuration are all far smaller. CSVs are streamed, not read whole.
pub const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// Reads `path` whole, refusing more than [`MAX_INPUT`] bytes.
pub fn read(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let failed = |source| WorkflowError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let mut data = Zeroizing::new(Vec::new());
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut data)
        .map_err(failed)?;
    if data.len() as u64 > MAX_INPUT {
        return Err(WorkflowError::Input(format!(
            "{} is larger than {} MiB: not a file mailpki reads",
            path.display(),
            MAX_INPUT >> 20
        )));
    }
    Ok(data)
}
