//! Configuration: the TOML file, environment and flags merged into [`Settings`]. Precedence is
//! flag or environment variable, then the file, then embedded defaults (a SQLite store and a
//! master key file under `~/.local/share/mailpki/`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use mailpki_store::{Actor, MasterKeySource, StoreLocation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::args::GlobalArgs;

/// Environment variable holding the base64 master key.
pub(crate) const ENV_MASTER_KEY: &str = "MAILPKI_MASTER_KEY";
/// Environment variable holding a master passphrase.
pub(crate) const ENV_MASTER_PASSPHRASE: &str = "MAILPKI_MASTER_PASSPHRASE";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    #[serde(default)]
    pub(crate) kms: KmsConfig,
    #[serde(default)]
    pub(crate) google: GoogleConfig,
    #[serde(default)]
    pub(crate) issuance: IssuanceConfig,
    #[serde(default)]
    pub(crate) server: Option<mailpki_server::ServerConfig>,
    #[serde(default)]
    pub(crate) hsm: Option<HsmFileConfig>,
}

/// Environment variable holding the HSM user PIN (when `[hsm] pin_file` is not set).
pub(crate) const ENV_HSM_PIN: &str = "MAILPKI_HSM_PIN";

/// `[hsm]`: the PKCS#11 token keys may live in. The PIN comes from a file or the environment,
/// never from this file.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HsmFileConfig {
    /// The vendor's PKCS#11 library (e.g. /usr/lib/softhsm/libsofthsm2.so).
    pub(crate) module: String,
    /// The token's label.
    pub(crate) token: String,
    /// A file holding the user PIN (mode 0600).
    pub(crate) pin_file: Option<String>,
    /// The environment variable holding the PIN [default: MAILPKI_HSM_PIN].
    pub(crate) pin_env: Option<String>,
}

impl HsmFileConfig {
    fn resolve(&self) -> Result<mailpki_store::HsmConfig> {
        // Read when the token is first used: commands that use no HSM key need no PIN.
        let pin = if let Some(path) = &self.pin_file {
            let path = expand(path)?;
            crate::files::warn_if_readable_by_others(&path, "HSM PIN");
            mailpki_store::PinSource::File(path)
        } else {
            mailpki_store::PinSource::Env(self.pin_env.as_deref().unwrap_or(ENV_HSM_PIN).to_owned())
        };
        Ok(mailpki_store::HsmConfig {
            module: expand(&self.module)?,
            token: self.token.clone(),
            pin,
        })
    }
}

/// Defaults for minting; flags override them.
pub(crate) type IssuanceConfig = mailpki_kms::IssuanceDefaults;

/// Environment variable holding the KMS server token.
pub(crate) const ENV_KMS_TOKEN: &str = "MAILPKI_KMS_TOKEN";

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KmsConfig {
    pub(crate) database: Option<String>,
    pub(crate) master_key_file: Option<String>,
    pub(crate) user: Option<String>,
    /// A `mailpki server` to use instead of the embedded store.
    pub(crate) url: Option<String>,
    /// File holding the server token (an API token, or an OIDC ID token).
    pub(crate) token_file: Option<String>,
    /// Command printing a fresh OIDC ID token on stdout (e.g. `gcloud auth
    /// print-identity-token --audiences=mailpki`), run for each invocation.
    pub(crate) token_command: Option<String>,
    /// PEM root certificate for a server whose certificate comes from a private CA.
    pub(crate) server_ca: Option<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GoogleConfig {
    pub(crate) service_account_key: Option<String>,
    pub(crate) api_url: Option<String>,
    pub(crate) kacls_url: Option<String>,
}

/// Everything a command needs to know, resolved.
#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) config_file: Option<PathBuf>,
    pub(crate) database: StoreLocation,
    pub(crate) master_key: MasterKeySource,
    pub(crate) user: String,
    pub(crate) google: GoogleConfig,
    pub(crate) issuance: IssuanceConfig,
    pub(crate) kms_url: Option<String>,
    kms_token_file: Option<PathBuf>,
    kms_token_command: Option<String>,
    pub(crate) kms_server_ca: Option<PathBuf>,
    pub(crate) server: mailpki_server::ServerConfig,
    /// The HSM, when `[hsm]` is configured.
    pub(crate) hsm: Option<mailpki_store::HsmConfig>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn xdg_dir(var: &str, fallback: &str) -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(var).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    home()
        .map(|h| h.join(fallback))
        .context("neither HOME nor the XDG variables are set: cannot find the default paths")
}

/// Expands a leading `~/` the way shells do, so config files can be shared between users.
pub(crate) fn expand(path: &str) -> Result<PathBuf> {
    match path.strip_prefix("~/") {
        Some(rest) => Ok(home()
            .context("a path in the configuration starts with ~ but HOME is not set")?
            .join(rest)),
        None => Ok(PathBuf::from(path)),
    }
}

fn env_secret(name: &str) -> Option<SecretString> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(SecretString::from)
}

impl Settings {
    pub(crate) fn resolve(global: &GlobalArgs) -> Result<Self> {
        let (config_file, file) = load_config(global.config.as_deref())?;
        let data_dir =
            || -> Result<PathBuf> { Ok(xdg_dir("XDG_DATA_HOME", ".local/share")?.join("mailpki")) };
        let database = match (&global.database, &file.kms.database) {
            (Some(path), _) => StoreLocation::parse(&path.to_string_lossy()),
            (None, Some(text)) => match StoreLocation::parse(text) {
                StoreLocation::Sqlite(_) => StoreLocation::Sqlite(expand(text)?),
                postgres @ StoreLocation::Postgres(_) => postgres,
            },
            (None, None) => StoreLocation::Sqlite(data_dir()?.join("kms.sqlite")),
        };
        let master_key = if let Some(key) = env_secret(ENV_MASTER_KEY) {
            MasterKeySource::Base64(key)
        } else if let Some(pass) = env_secret(ENV_MASTER_PASSPHRASE) {
            MasterKeySource::Passphrase(pass)
        } else {
            let path = match (&global.master_key_file, &file.kms.master_key_file) {
                (Some(path), _) => path.clone(),
                (None, Some(path)) => expand(path)?,
                // Beside a SQLite store; in the data folder for a database elsewhere.
                (None, None) => match &database {
                    StoreLocation::Sqlite(path) => path
                        .parent()
                        .unwrap_or_else(|| Path::new("."))
                        .join("master.key"),
                    StoreLocation::Postgres(_) => data_dir()?.join("master.key"),
                },
            };
            MasterKeySource::File(path)
        };
        let user = global
            .user
            .clone()
            .or_else(|| file.kms.user.clone())
            .or_else(os_user)
            .context("cannot tell who you are: set --user, MAILPKI_USER or [kms] user")?;
        let kms_url = global.kms_url.clone().or(file.kms.url.clone());
        let mut issuance = file.issuance;
        if issuance.base_url.is_none() {
            issuance.base_url = file
                .server
                .as_ref()
                .and_then(|s| s.publish.as_ref())
                .and_then(|p| p.base_url.clone());
        }
        Ok(Self {
            config_file,
            database,
            master_key,
            user,
            google: file.google,
            issuance,
            kms_url,
            kms_token_file: file.kms.token_file.as_deref().map(expand).transpose()?,
            kms_token_command: file.kms.token_command,
            kms_server_ca: file.kms.server_ca.as_deref().map(expand).transpose()?,
            server: file.server.unwrap_or_default(),
            hsm: file.hsm.as_ref().map(HsmFileConfig::resolve).transpose()?,
        })
    }

    /// The bearer token for the KMS server: `$MAILPKI_KMS_TOKEN`, else `[kms] token_file`,
    /// else the output of `[kms] token_command`.
    pub(crate) fn kms_token(&self) -> Result<SecretString> {
        if let Some(token) = env_secret(ENV_KMS_TOKEN) {
            return Ok(token);
        }
        if let Some(path) = &self.kms_token_file {
            let text = crate::files::read_text(path)
                .with_context(|| format!("cannot read the token file {}", path.display()))?;
            crate::files::warn_if_readable_by_others(path, "token");
            return Ok(SecretString::from(text.trim().to_owned()));
        }
        if let Some(command) = &self.kms_token_command {
            let output = std::process::Command::new("sh")
                .args(["-c", command])
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("cannot run the token command `{command}`"))?;
            if !output.status.success() {
                bail!("the token command `{command}` failed ({})", output.status);
            }
            let text =
                zeroize::Zeroizing::new(String::from_utf8_lossy(&output.stdout).into_owned());
            return Ok(SecretString::from(text.trim().to_owned()));
        }
        bail!(
            "no token for the KMS server: set MAILPKI_KMS_TOKEN, [kms] token_file or [kms] token_command"
        )
    }

    pub(crate) fn actor(&self) -> Result<Actor> {
        Ok(Actor::new(self.user.clone())?)
    }
}

/// The OS user: `$USER` and friends, else the name of this process's uid in `/etc/passwd`
/// (services and containers often run without `$USER`).
fn os_user() -> Option<String> {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .or_else(uid_name)
}

#[cfg(unix)]
fn uid_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    });
    Some(name.unwrap_or_else(|| format!("uid-{uid}")))
}

#[cfg(not(unix))]
fn uid_name() -> Option<String> {
    None
}

fn load_config(explicit: Option<&Path>) -> Result<(Option<PathBuf>, ConfigFile)> {
    let path = if let Some(path) = explicit {
        path.to_owned()
    } else {
        let default = xdg_dir("XDG_CONFIG_HOME", ".config")?
            .join("mailpki")
            .join("config.toml");
        if !default.exists() {
            return Ok((None, ConfigFile::default()));
        }
        default
    };
    let text = crate::files::read_text(&path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    let file: ConfigFile = toml::from_str(&text)
        .with_context(|| format!("invalid configuration file {}", path.display()))?;
    if let Some(url) = &file.google.api_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        bail!(
            "invalid configuration file {}: google.api_url must be an http(s) URL",
            path.display()
        );
    }
    Ok((Some(path), file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses() -> Result<()> {
        let text = include_str!("../../../config/config.toml");
        let file: ConfigFile = toml::from_str(text)?;
        assert!(file.kms.database.is_some());
        Ok(())
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<ConfigFile>("[kms]\ndatabse = 'x'\n").is_err());
    }
}
