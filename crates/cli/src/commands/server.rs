//! `mailpki server ...`: run the KMS server, and the admin's tools for it (API tokens, the
//! audit log). With `[kms] url` set the tools go through the server's admin API; on the
//! server's own host, without it, they work straight on the database (how the first admin
//! bootstraps the first token).

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use mailpki_kms::Kms;
use mailpki_kms::api::{TokenBody, TokenReply};
use mailpki_server::{Server, StoreLocation};
use mailpki_store::{Actor, ApiToken, AuditEntry, AuditFilter, escape, rfc3339};
use secrecy::ExposeSecret;
use serde_json::json;

use super::Ctx;
use super::google::block_on;
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
    let location = StoreLocation {
        database: ctx.settings.database.display().to_string(),
        master_key: ctx.settings.master_key.clone(),
    };
    let defaults = ctx.settings.issuance.clone();
    block_on(async {
        let server = Server::bind(&config, location, defaults)
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
            mailpki_store::redact_url(&ctx.settings.database.display().to_string())
        ));
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
    let user_actor = Actor::new(user.to_owned())?;
    let reply: TokenReply = match ctx.kms()? {
        Kms::Remote(remote) => remote.post(
            "/v1/admin/tokens",
            &TokenBody {
                user: user.to_owned(),
                expires_in_days,
            },
        )?,
        Kms::Embedded(e) => {
            let expires = expires_in_days.map(|days| {
                time::OffsetDateTime::now_utc().unix_timestamp() + i64::from(days) * 86_400
            });
            let (token, secret) = e.store.create_api_token(&user_actor, &e.actor, expires)?;
            TokenReply {
                token,
                secret: mailpki_kms::api::secret(secret.expose_secret()),
            }
        }
    };
    ctx.printer.warn(&format!(
        "token {} for {user}: the secret below is shown once; keep it in a secret store",
        reply.token.id
    ));
    ctx.printer.print(reply.secret.as_str(), &reply)
}

fn token_list(ctx: &Ctx) -> Result<()> {
    let tokens: Vec<ApiToken> = match ctx.kms()? {
        Kms::Remote(remote) => remote.get("/v1/admin/tokens")?,
        Kms::Embedded(e) => e.store.api_tokens()?,
    };
    let human: Vec<String> = tokens.iter().map(describe).collect();
    ctx.printer.print(human.join("\n"), &tokens)
}

fn token_revoke(ctx: &Ctx, id: &str) -> Result<()> {
    match ctx.kms()? {
        Kms::Remote(remote) => {
            remote.call::<(), serde_json::Value>(
                "DELETE",
                &format!("/v1/admin/tokens/{}", mailpki_kms::segment(id)),
                None,
            )?;
        }
        Kms::Embedded(e) => {
            if !e.store.revoke_api_token(id)? {
                bail!("no live API token with ID `{id}`");
            }
        }
    }
    ctx.printer.print(
        format!("revoked {id}"),
        &json!({"id": id, "outcome": "revoked"}),
    )
}

fn audit(ctx: &Ctx, args: &AuditArgs) -> Result<()> {
    let entries: Vec<AuditEntry> = match ctx.kms()? {
        Kms::Remote(remote) => {
            let mut query = format!("/v1/admin/audit?limit={}", args.limit);
            for (key, value) in [("actor", &args.actor), ("object", &args.object)] {
                if let Some(value) = value {
                    let _ = write!(query, "&{key}={}", mailpki_kms::segment(value));
                }
            }
            remote.get(&query)?
        }
        Kms::Embedded(e) => e.store.audit_log(&AuditFilter {
            actor: args.actor.clone(),
            object: args.object.clone(),
            limit: args.limit,
        })?,
    };
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
