//! `mailpki kms certificates list`.

use std::fmt::Write;

use anyhow::Result;
use mailpki_kms::api::SearchBody;

use crate::args::ListArgs;
use crate::commands::Ctx;

pub(crate) fn run(ctx: &Ctx, args: &ListArgs) -> Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let filter = SearchBody {
        object_type: Some(mailpki_store::ObjectType::Certificate),
        tags: args.tags.clone(),
        subject_contains: args.subject.clone(),
        expires_before: args
            .expires_within
            .map(|days| now + i64::from(days) * 86_400),
        include_destroyed: args.include_destroyed,
    };
    let certificates = ctx.kms()?.search(&filter)?;
    let mut human = String::new();
    for c in &certificates {
        let _ = writeln!(
            human,
            "{}  {}  {}  {}",
            c.unique_identifier,
            c.certificate_not_after.as_deref().unwrap_or("-"),
            c.state,
            // A subject is whatever the certificate's maker wrote, line breaks included.
            mailpki_store::escape(c.certificate_subject.as_deref().unwrap_or("-")),
        );
    }
    ctx.printer.print(human, &certificates)
}
