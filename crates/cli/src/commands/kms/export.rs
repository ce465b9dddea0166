//! `mailpki kms certificates export`.

use anyhow::{Context, Result, bail};
use mailpki_kms::api::{ExportBody, ExportFormat};
use mailpki_store::replace_private_file;
use secrecy::ExposeSecret;
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
    let format = match args.format {
        ExportFormatArg::Pem if args.chain => ExportFormat::PemChain,
        ExportFormatArg::Pem => ExportFormat::Pem,
        ExportFormatArg::Der => ExportFormat::Der,
        ExportFormatArg::Pkcs7 => ExportFormat::Pkcs7,
        ExportFormatArg::Pkcs12 => {
            if password.is_none() {
                bail!(
                    "a PKCS#12 export needs a password (-p, --password-file or MAILPKI_PKCS12_PASSWORD)"
                );
            }
            ExportFormat::Pkcs12
        }
    };
    let kms = ctx.kms()?;
    let uid = select(&kms, &args.object)?;
    let body = ExportBody {
        format,
        password: password
            .as_ref()
            .map(|p| mailpki_kms::api::secret(p.expose_secret())),
        legacy: args.legacy,
    };
    let bytes = kms
        .export(&uid, &body)
        .with_context(|| format!("cannot export `{uid}`"))?;
    // Without --force an existing file was refused above.
    replace_private_file(&args.file, &bytes)?;
    ctx.printer.print(
        format!("exported `{uid}` to {}", args.file.display()),
        &json!({ "unique_identifier": uid, "file": args.file }),
    )
}
