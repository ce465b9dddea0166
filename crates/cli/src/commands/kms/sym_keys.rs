//! `mailpki kms sym keys create`.

use anyhow::Result;
use mailpki_kms::api::SymmetricKeyBody;
use mailpki_store::Algorithm;
use serde_json::json;

use crate::args::{SymAlgorithm, SymCreateArgs};
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
    })?;
    ctx.printer.print(
        &uid,
        &json!({ "unique_identifier": uid, "cryptographic_algorithm": algorithm, "cryptographic_length": args.length }),
    )
}
