//! `mailpki kms certificates export`.

use anyhow::{Context, Result, bail};
use mailpki_store::{ExportFormat, Pkcs12Profile, replace_private_file};
use serde_json::json;

use crate::args::{ExportArgs, ExportFormatArg};
use crate::commands::{Ctx, read_password, select};

pub(crate) fn run(ctx: &Ctx, args: &ExportArgs) -> Result<()> {
    if args.file.exists() && !args.force {
        bail!(
            "{} already exists (pass --force to overwrite it)",
            args.file.display()
        );
    }
    let password = read_password(&args.password)?;
    let (store, actor) = ctx.open_store()?;
    let uid = select(&store, &actor, &args.object)?;
    let format = match args.format {
        ExportFormatArg::Pem => ExportFormat::Pem { chain: args.chain },
        ExportFormatArg::Der => ExportFormat::Der,
        ExportFormatArg::Pkcs7 => ExportFormat::Pkcs7,
        ExportFormatArg::Pkcs12 => ExportFormat::Pkcs12 {
            password: password
                .as_ref()
                .context("a PKCS#12 export needs a password (-p, --password-file or MAILPKI_PKCS12_PASSWORD)")?,
            profile: if args.legacy {
                Pkcs12Profile::Legacy
            } else {
                Pkcs12Profile::Modern
            },
        },
    };
    let bytes = store
        .export_certificate(&actor, &uid, &format)
        .with_context(|| format!("cannot export `{uid}`"))?;
    // Without --force an existing file was refused above.
    replace_private_file(&args.file, &bytes)?;
    ctx.printer.print(
        format!("exported `{uid}` to {}", args.file.display()),
        &json!({ "unique_identifier": uid, "file": args.file }),
    )
}
