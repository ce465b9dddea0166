//! `mailpki config`: the resolved configuration, with secrets masked.

use std::fmt::Write as _;

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
    // Shown without a PostgreSQL URL's password.
    let database = s.database.to_string();
    let value = json!({
        "config_file": config_file,
        "kms": {
            "database": database,
            "master_key": master_key,
            "user": s.user,
            "url": s.kms_url,
        },
        "google": s.google,
    });
    let mut human = format!(
        "config file   {config_file}\nstore         {database}\nmaster key    {master_key}\nuser          {}",
        s.user
    );
    if let Some(url) = &s.kms_url {
        let _ = write!(human, "\nkms server    {url} (kms commands go there)");
    }
    ctx.printer.print(human, &value)
}
