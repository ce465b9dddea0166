//! `mailpki config`: the resolved configuration, with secrets masked.

use anyhow::Result;
use mailpki_store::MasterKeySource;
use serde_json::json;

use super::Ctx;

pub(crate) fn show(ctx: &Ctx) -> Result<()> {
    let s = &ctx.settings;
    let master_key = match &s.master_key {
        MasterKeySource::File(path) => format!("file {}", path.display()),
        MasterKeySource::Base64(_) => "from MAILPKI_MASTER_KEY (hidden)".to_owned(),
        MasterKeySource::Passphrase(_) => "from MAILPKI_MASTER_PASSPHRASE (hidden)".to_owned(),
    };
    let config_file = s.config_file.as_ref().map_or_else(
        || "none (embedded defaults)".to_owned(),
        |p| p.display().to_string(),
    );
    let value = json!({
        "config_file": config_file,
        "kms": {
            "database": s.database.display().to_string(),
            "master_key": master_key,
            "user": s.user,
        },
        "google": s.google,
    });
    let human = format!(
        "config file   {config_file}\nstore         {}\nmaster key    {master_key}\nuser          {}",
        s.database.display(),
        s.user
    );
    ctx.printer.print(human, &value)
}
