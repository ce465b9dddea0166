//! `mailpki kms access-rights ...`.

use anyhow::Result;
use mailpki_kms::api::AccessBody;
use serde_json::json;

use crate::args::GrantArgs;
use crate::commands::Ctx;

fn ops_text(ops: &[mailpki_store::Operation]) -> String {
    ops.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `grant` (`granted`) or `revoke` operations for a user.
pub(crate) fn change(ctx: &Ctx, args: &GrantArgs, granted: bool) -> Result<()> {
    let kms = ctx.kms()?;
    let body = AccessBody {
        user: args.grantee.clone(),
        operations: args.operations.clone(),
    };
    let (verb, preposition) = if granted {
        kms.grant(&args.id, &body)?;
        ("granted", "to")
    } else {
        kms.revoke_access(&args.id, &body)?;
        ("revoked", "from")
    };
    ctx.printer.print(
        format!(
            "{verb} {} on `{}` {preposition} {}",
            ops_text(&args.operations),
            args.id,
            args.grantee
        ),
        &json!({ "unique_identifier": args.id, "user": args.grantee, "operations": args.operations, "outcome": verb }),
    )
}

pub(crate) fn list(ctx: &Ctx, id: &str) -> Result<()> {
    let entries = ctx.kms()?.access_list(id)?;
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| vec![format!("{}:", e.user), ops_text(&e.operations)])
        .collect();
    ctx.printer.table(
        &rows,
        &format!("nobody else has rights on `{id}`"),
        &entries,
    )
}

pub(crate) fn owned(ctx: &Ctx) -> Result<()> {
    let objects = ctx.kms()?.owned()?;
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            vec![
                o.unique_identifier.clone(),
                o.object_type.to_string(),
                o.state.to_string(),
            ]
        })
        .collect();
    ctx.printer.table(&rows, "you own no objects", &objects)
}

pub(crate) fn obtained(ctx: &Ctx) -> Result<()> {
    let kms = ctx.kms()?;
    let objects = kms.obtained()?;
    // Someone who can act as you is worth knowing about, whatever they were granted.
    match kms.tokens_for_me() {
        Ok(tokens) => {
            for t in &tokens {
                ctx.printer.warn(&format!(
                    "API token {} acts as you; it was made by {} on {}{}",
                    t.id,
                    t.created_by,
                    mailpki_store::rfc3339(t.created),
                    t.expires
                        .map(|e| format!(", expires {}", mailpki_store::rfc3339(e)))
                        .unwrap_or_default()
                ));
            }
        }
        Err(e) => tracing::debug!(error = %e, "cannot list the API tokens made for this user"),
    }
    let rows: Vec<Vec<String>> = objects
        .iter()
        .map(|o| {
            vec![
                o.unique_identifier.clone(),
                o.object_type.to_string(),
                format!("owner {}", o.owner),
                ops_text(&o.operations),
            ]
        })
        .collect();
    ctx.printer
        .table(&rows, "nobody has shared an object with you", &objects)
}
