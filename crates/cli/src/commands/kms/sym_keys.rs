//! `mailpki kms sym keys create` and `mailpki kms keys import-hsm`: keys made in the store or
//! the HSM, and keys the HSM already holds.

use anyhow::Result;
use mailpki_kms::api::{HsmKeyBody, SymmetricKeyBody};
use mailpki_store::Algorithm;
use serde_json::json;

use crate::args::{ImportHsmArgs, SymAlgorithm, SymCreateArgs};
use crate::commands::Ctx;

pub(crate) fn create(ctx: &Ctx, args: &SymCreateArgs) -> Result<()> {
    let algorithm = match args.algorithm {
        SymAlgorithm::Aes => Algorithm::Aes,
    };
    let uid = ctx.kms()?.create_symmetric_key(&SymmetricKeyBody {
        id: args.id.clone(),
        algorithm,
        length: args.length,
        tags: args.tags.clone(),
        hsm: args.hsm,
    })?;
    ctx.printer.print(
        &uid,
        &json!({ "unique_identifier": uid, "cryptographic_algorithm": algorithm, "cryptographic_length": args.length }),
    )
}

pub(crate) fn import_hsm(ctx: &Ctx, args: &ImportHsmArgs) -> Result<()> {
    use base64::Engine as _;
    let certificate = match &args.certificate {
        Some(path) => Some(
            base64::engine::general_purpose::STANDARD.encode(crate::files::read(path)?.as_slice()),
        ),
        None => None,
    };
    let report = ctx.kms()?.register_hsm_key(&HsmKeyBody {
        id: args.id.clone(),
        label: args.label.clone(),
        key_id: args.key_id.clone(),
        certificate,
        tags: args.tags.clone(),
    })?;
    ctx.printer
        .print(super::import::report_text(&report), &report)
}
