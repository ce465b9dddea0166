//! `mailpki server ...`: run the KMS server, and the admin's tools for it (API tokens, the
//! audit log). With `[kms] url` set the tools go through the server's admin API; on the
//! server's own host, without it, they work straight on the database (how the first admin
//! bootstraps the first token).

use std::fmt::Write as _;

use anyhow::{Context, Result};
use mailpki_kms::api::TokenBody;
use mailpki_server::{Server, StoreSettings};
use mailpki_store::{ApiToken, AuditFilter, escape, rfc3339};
use serde_json::json;

use super::Ctx;
use super::block_on;
use crate::args::{AuditArgs, ServerCommand, ServerServeArgs, TokenCommand};

pub(crate) fn run(ctx: &Ctx, command: ServerCommand) -> Result<()> {
    match command {
        ServerCommand::Serve(args) => serve(ctx, &args),
        ServerCommand::Token(TokenCommand::Create {
            user,
            expires_in_days,
        }) => token_create(ctx, &user, expires_in_days),
        ServerCommand::Token(TokenCommand::List) => token_list(ctx),
        ServerCommand::Token(TokenCommand::Revoke { id }) => token_revoke(ctx, &id),
        ServerCommand::Audit(args) => audit(ctx, &args),
    }
}

fn serve(ctx: &Ctx, args: &ServerServeArgs) -> Result<()> {
    let mut config = ctx.settings.server.clone();
    if let Some(listen) = &args.listen {
        config.listen.clone_from(listen);
    }
    let store = StoreSettings {
        location: ctx.settings.database.clone(),
        master_key: ctx.settings.master_key.clone(),
        hsm: ctx.settings.hsm.clone(),
    };
    let defaults = ctx.settings.issuance.clone();
    block_on(async {
        let server = Server::bind(&config, store, defaults)
            .await
            .context("cannot start the KMS server")?;
        // The first line is the URL, for scripts that start the server and read it.
        ctx.printer.print(
            server.url(),
            &json!({"url": server.url(), "openapi": format!("{}/v1/openapi.json", server.url())}),
        )?;
        ctx.printer.info(&format!(
            "mailpki server listening on {} (store {}); Ctrl-C stops it",
            server.url(),
            ctx.settings.database
        ));
        if let Some(url) = server.publish_url() {
            ctx.printer.info(&format!(
                "publishing CA certificates, CRLs and OCSP on {url} (/ca/<id>.crt, /crl/<id>.crl, /ocsp)"
            ));
        }
        server
            .serve(async {
                shutdown_signal().await;
            })
            .await?;
        Ok(())
    })?
}

/// Ctrl-C or SIGTERM (what service managers send).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn describe(t: &ApiToken) -> String {
    format!(
        "{}  {}  created {} by {}{}{}",
        t.id,
        t.user,
        rfc3339(t.created),
        t.created_by,
        t.expires
            .map(|e| format!("  expires {}", rfc3339(e)))
            .unwrap_or_default(),
        t.revoked
            .map(|r| format!("  REVOKED {}", rfc3339(r)))
            .unwrap_or_default(),
    )
}

fn token_create(ctx: &Ctx, user: &str, expires_in_days: Option<u32>) -> Result<()> {
    let reply = ctx.kms()?.create_api_token(&TokenBody {
        user: user.to_owned(),
        expires_in_days,
    })?;
    ctx.printer.warn(&format!(
        "token {} for {user}: the secret below is shown once; keep it in a secret store",
        reply.token.id
    ));
    ctx.printer.print(reply.secret.as_str(), &reply)
}

fn token_list(ctx: &Ctx) -> Result<()> {
    let tokens = ctx.kms()?.api_tokens()?;
    let human: Vec<String> = tokens.iter().map(describe).collect();
    ctx.printer.print(human.join("\n"), &tokens)
}

fn token_revoke(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.kms()?.revoke_api_token(id)?;
    ctx.printer.print(
        format!("revoked {id}"),
        &json!({"id": id, "outcome": "revoked"}),
    )
}

fn audit(ctx: &Ctx, args: &AuditArgs) -> Result<()> {
    let entries = ctx.kms()?.audit_log(&AuditFilter {
        actor: args.actor.clone(),
        object: args.object.clone(),
        limit: args.limit,
        ..AuditFilter::default()
    })?;
    // Everything in a line came from some client: escaped, so that no line can forge another
    // or send escape sequences to this terminal.
    let mut human = String::new();
    for e in &entries {
        let _ = writeln!(
            human,
            "{}  {:<8} {:<24} {:<20} {}{}{}",
            rfc3339(e.at),
            escape(&e.outcome),
            escape(&e.actor),
            escape(&e.operation),
            escape(e.object.as_deref().unwrap_or("-")),
            e.via
                .as_deref()
                .map(|v| format!("  [via {}]", escape(v)))
                .unwrap_or_default(),
            e.detail
                .as_deref()
                .map(|d| format!("  ({})", escape(d)))
                .unwrap_or_default()
        );
    }
    ctx.printer.print(human, &entries)
}
