//! A SoftHSM2 token per test (Debian's `softhsm2`): its own token folder and configuration,
//! initialised by `softhsm2-util`, named to the `mailpki` processes through `SOFTHSM2_CONF`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestEnv;
use crate::oracles::skipped;

/// Where Debian puts SoftHSM's PKCS#11 module.
const MODULES: &[&str] = &[
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
];

pub struct SoftHsm {
    pub module: PathBuf,
    pub conf: PathBuf,
    pub tokens: PathBuf,
    pub token: String,
    pub pin: String,
    pub pin_file: PathBuf,
}

fn module() -> Option<PathBuf> {
    MODULES.iter().map(PathBuf::from).find(|p| p.is_file())
}

impl SoftHsm {
    /// Whether SoftHSM is installed (a failure in CI when not; a note elsewhere).
    pub fn available() -> bool {
        if module().is_some() {
            return true;
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "SoftHSM2 is required in CI: install Debian's softhsm2"
        );
        skipped("the HSM checks", "install Debian's softhsm2");
        false
    }

    /// A fresh token labelled `token` under `dir`; `None` (with a note) where SoftHSM is not
    /// installed, a failure in CI.
    pub fn create(dir: &Path, token: &str) -> Option<Self> {
        if !Self::available() {
            return None;
        }
        let module = module()?;
        let tokens = dir.join("softhsm-tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        let pin = "4711".to_owned();
        let hsm = Self {
            module,
            conf,
            tokens,
            token: token.to_owned(),
            pin_file: dir.join("hsm.pin"),
            pin,
        };
        std::fs::write(&hsm.pin_file, format!("{}\n", hsm.pin)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&hsm.pin_file, std::fs::Permissions::from_mode(0o600))
                .unwrap();
        }
        hsm.util(&[
            "--init-token",
            "--free",
            "--label",
            token,
            "--so-pin",
            "123456",
            "--pin",
            &hsm.pin,
        ]);
        Some(hsm)
    }

    /// Runs `softhsm2-util ARGS` on this token folder, asserting success.
    pub fn util(&self, args: &[&str]) -> String {
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", &self.conf)
            .args(args)
            .output()
            .expect("softhsm2-util runs");
        assert!(
            output.status.success(),
            "softhsm2-util {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The `[hsm]` section naming this token, the PIN in a file.
    pub fn config(&self) -> String {
        format!(
            "[hsm]\nmodule = \"{}\"\ntoken = \"{}\"\npin_file = \"{}\"\n",
            self.module.display(),
            self.token,
            self.pin_file.display()
        )
    }

    /// Makes `env`'s `mailpki` (CLI and servers) see this token: `SOFTHSM2_CONF` for every
    /// process, and `[hsm]` in the user's configuration file.
    pub fn attach(&self, env: &TestEnv) {
        env.set_env("SOFTHSM2_CONF", &self.conf);
        let dir = env.home().join(".config/mailpki");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.toml");
        let mut text = std::fs::read_to_string(&path).unwrap_or_default();
        text.push_str(&self.config());
        std::fs::write(path, text).unwrap();
    }

    /// Takes the token's files away (as if the token were pulled out) until the guard drops.
    pub fn pull_out(&self) -> Pulled<'_> {
        let away = self.tokens.with_extension("away");
        std::fs::rename(&self.tokens, &away).unwrap();
        std::fs::create_dir_all(&self.tokens).unwrap();
        Pulled { hsm: self, away }
    }
}

/// A token taken out by [`SoftHsm::pull_out`]; put back on drop.
pub struct Pulled<'a> {
    hsm: &'a SoftHsm,
    away: PathBuf,
}

impl Drop for Pulled<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.hsm.tokens);
        let _ = std::fs::rename(&self.away, &self.hsm.tokens);
    }
}
