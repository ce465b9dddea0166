//! `mailpki report expiry`: [`mailpki_workflows::expiry`] as a table, CSV or JSON.

use anyhow::Result;
use mailpki_workflows::rows::{csv_safe, read_rows};

use super::{Ctx, block_on};
use crate::args::{ExpiryArgs, ReportFormat};

pub(crate) fn expiry(ctx: &Ctx, args: &ExpiryArgs) -> Result<()> {
    let kms = ctx.kms()?;
    let gmail = if args.gmail {
        Some(super::gmail_client(ctx, &args.google)?)
    } else {
        None
    };
    let mut users = Vec::new();
    if let Some(path) = &args.users {
        for row in read_rows(path)? {
            match row {
                Ok(row) => users.push(row.user),
                Err(bad) => ctx.printer.warn(&format!(
                    "line {} of {}: {}",
                    bad.line,
                    path.display(),
                    bad.detail["reason"].as_str().unwrap_or_default()
                )),
            }
        }
    }
    let rows = block_on(mailpki_workflows::expiry::report(
        &kms,
        gmail.as_ref(),
        &users,
        args.within,
    ))??;
    if ctx.printer.json {
        return ctx.printer.json(&rows);
    }
    let header = [
        "issuer",
        "user",
        "status",
        "not_after",
        "gmail",
        "certificate_id",
        "serial_number",
    ];
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.issuer.clone(),
                r.user.clone(),
                r.status.to_owned(),
                r.not_after.clone(),
                r.gmail.clone(),
                r.certificate_id.clone().unwrap_or_else(|| "-".into()),
                r.serial_number.clone(),
            ]
        })
        .collect();
    match args.format {
        ReportFormat::Table => {
            let mut table = vec![header.iter().map(|h| (*h).to_owned()).collect()];
            table.extend(cells.iter().cloned());
            let text = if cells.is_empty() {
                "no user certificates".to_owned()
            } else {
                crate::output::table(&table, "")
            };
            ctx.printer.print(text, &rows)
        }
        ReportFormat::Csv => {
            let mut out = csv::Writer::from_writer(Vec::new());
            out.write_record(header)?;
            for row in &cells {
                out.write_record(row.iter().map(|c| csv_safe(c).into_owned()))?;
            }
            let data = out.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
            ctx.printer.print(String::from_utf8_lossy(&data), &rows)
        }
    }
}
