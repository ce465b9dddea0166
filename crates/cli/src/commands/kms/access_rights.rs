//! `mailpki kms access-rights ...`.

use std::fmt::Write;

use anyhow::Result;
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
    let (store, actor) = ctx.open_store()?;
    let (verb, preposition) = if granted {
        store.grant(&actor, &args.id, &args.grantee, &args.operations)?;
        ("granted", "to")
    } else {
        store.revoke_access(&actor, &args.id, &args.grantee, &args.operations)?;
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
    let (store, actor) = ctx.open_store()?;
    let entries = store.access_list(&actor, id)?;
    let mut human = String::new();
    for e in &entries {
        let _ = writeln!(human, "{}: {}", e.user, ops_text(&e.operations));
    }
    ctx.printer.print(human, &entries)
}

pub(crate) fn owned(ctx: &Ctx) -> Result<()> {
    let (store, actor) = ctx.open_store()?;
    let objects = store.owned(&actor)?;
    let mut human = String::new();
    for o in &objects {
        let _ = writeln!(
            human,
            "{}  {}  {}",
            o.unique_identifier, o.object_type, o.state
        );
    }
    ctx.printer.print(human, &objects)
}

pub(crate) fn obtained(ctx: &Ctx) -> Result<()> {
    let (store, actor) = ctx.open_store()?;
    let objects = store.obtained(&actor)?;
    let mut human = String::new();
    for o in &objects {
        let _ = writeln!(
            human,
            "{}  {}  owner {}  {}",
            o.unique_identifier,
            o.object_type,
            o.owner,
            ops_text(&o.operations)
        );
    }
    ctx.printer.print(human, &objects)
}
