//! `mailpki kms certificates list`.

use std::fmt::Write;

use anyhow::Result;
use mailpki_store::{ObjectFilter, ObjectType};

use crate::args::ListArgs;
use crate::commands::Ctx;

pub(crate) fn run(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    let (store, actor) = ctx.open_store()?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let filter = ObjectFilter {
        object_type: Some(ObjectType::Certificate),
        tags: args.tags.clone(),
        subject_contains: args.subject.clone(),
        expires_before: args
            .expires_within
            .map(|days| now + i64::from(days) * 86_400),
        include_destroyed: args.include_destroyed,
    };
    let certificates = store.list(&actor, &filter)?;
    let mut human = String::new();
    for c in &certificates {
        let _ = writeln!(
            human,
            "{}  {}  {}  {}",
            c.unique_identifier,
            c.certificate_not_after.as_deref().unwrap_or("-"),
            c.state,
            c.certificate_subject.as_deref().unwrap_or("-"),
        );
    }
    ctx.printer.print(human, &certificates)
}
