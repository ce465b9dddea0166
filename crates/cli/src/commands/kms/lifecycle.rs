//! `destroy` and `revoke` for certificates, keys and symmetric keys.

use anyhow::{Context, Result};
use mailpki_kms::api::{DestroyBody, RevokeBody};
use serde_json::json;

use crate::args::{DestroyArgs, RevokeArgs};
use crate::commands::{Ctx, select};

pub(crate) fn destroy(ctx: &Ctx, args: &DestroyArgs) -> Result<()> {
    let kms = ctx.kms()?;
    let uid = select(&kms, &args.object)?;
    kms.destroy(
        &uid,
        &DestroyBody {
            force: args.force,
            remove: args.remove,
        },
    )
    .with_context(|| format!("cannot destroy `{uid}`"))?;
    let verb = if args.remove { "removed" } else { "destroyed" };
    ctx.printer.print(
        format!("{verb} `{uid}`"),
        &json!({ "unique_identifier": uid, "outcome": verb }),
    )
}

pub(crate) fn revoke(ctx: &Ctx, args: &RevokeArgs) -> Result<()> {
    let kms = ctx.kms()?;
    let uid = select(&kms, &args.object)?;
    kms.revoke(
        &uid,
        &RevokeBody {
            reason: args.reason.clone(),
            compromised: args.compromised,
        },
    )
    .with_context(|| format!("cannot revoke `{uid}`"))?;
    ctx.printer.print(
        format!("revoked `{uid}`"),
        &json!({ "unique_identifier": uid, "outcome": "revoked" }),
    )
}
