//! `mailpki emulator serve`: the Gmail API emulator as a process, for tests and CI pipelines.

use anyhow::Result;
use mailpki_emulator::{Config, Emulator, default_scopes};
use mailpki_store::replace_private_file;

use super::Ctx;
use super::block_on;
use crate::args::EmulatorServeArgs;

pub(crate) fn serve(ctx: &Ctx, args: &EmulatorServeArgs) -> Result<()> {
    block_on(async {
        let emulator = Emulator::bind(
            &args.addr,
            Config {
                state_file: args.state.clone(),
                trusted_roots: args.trusted_cas.clone(),
                users: args.users.clone(),
                user_rate: args.user_rate,
            },
        )
        .await?;
        if let Some(path) = &args.write_service_account {
            let key_file = emulator
                .state()
                .create_service_account(default_scopes())
                .await?;
            replace_private_file(path, serde_json::to_string_pretty(&key_file)?.as_bytes())?;
        }
        // The first line is the URL, for scripts that start the emulator and read it.
        ctx.printer.print(
            emulator.url(),
            &serde_json::json!({"url": emulator.url(), "token_uri": format!("{}/token", emulator.url())}),
        )?;
        ctx.printer.info(&format!(
            "mailpki emulator listening on {} (MAILPKI_GMAIL_API_URL={}); Ctrl-C stops it",
            emulator.url(),
            emulator.url()
        ));
        emulator
            .serve(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        Ok(())
    })?
}
