//! `mailpki kms certificates list`.

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
        after: args.after.clone(),
        email: args.email.clone(),
        limit: args.limit.map(|n| n as usize),
    };
    let certificates = ctx.kms()?.search(&filter)?;
    if let (Some(limit), Some(last)) = (args.limit, certificates.last())
        && certificates.len() == limit as usize
    {
        ctx.printer.info(&format!(
            "more may follow: --after {}",
            last.unique_identifier
        ));
    }
    let rows: Vec<Vec<String>> = certificates
        .iter()
        .map(|c| {
            vec![
                c.unique_identifier.clone(),
                c.certificate_not_after
                    .clone()
                    .unwrap_or_else(|| "-".into()),
                c.state.to_string(),
                // A subject is whatever the certificate's maker wrote, line breaks included.
                mailpki_store::escape(c.certificate_subject.as_deref().unwrap_or("-")).into_owned(),
            ]
        })
        .collect();
    ctx.printer
        .table(&rows, "no certificates match", &certificates)
}
