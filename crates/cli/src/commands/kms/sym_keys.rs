//! `mailpki kms sym keys create`.

use anyhow::Result;
use mailpki_store::Algorithm;
use serde_json::json;

use crate::args::{SymAlgorithm, SymCreateArgs};
use crate::commands::Ctx;

pub(crate) fn create(ctx: &Ctx, args: &SymCreateArgs) -> Result<()> {
    let (store, actor) = ctx.open_store()?;
    let algorithm = match args.algorithm {
        SymAlgorithm::Aes => Algorithm::Aes,
    };
    let uid =
        store.create_symmetric_key(&actor, args.id.clone(), algorithm, args.length, &args.tags)?;
    ctx.printer.print(
        &uid,
        &json!({ "unique_identifier": uid, "cryptographic_algorithm": algorithm, "cryptographic_length": args.length }),
    )
}
