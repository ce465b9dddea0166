//! CSVs of users as the bulk commands read them (`certify-batch`, `google onboard`,
//! `smime import-csv`, `smime rotate`): any bytes give rows or failed rows, never a panic, and
//! every row's line number is a physical line of the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailpki_workflows::rows;

fuzz_target!(|data: &[u8]| {
    let lines = data.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
    let Ok(rows) = rows::rows_of(data) else {
        panic!("reading from memory cannot fail");
    };
    for row in rows {
        let line = match &row {
            Ok(r) => r.line,
            Err(r) => r.line,
        };
        assert!(line >= 1 && line <= lines, "line {line} of {lines}");
    }
});
