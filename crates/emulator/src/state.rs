//! The emulator's tenant: users, aliases, CSE enablement, key pairs, identities, service
//! accounts and trusted roots; saved to `--state FILE` after each change when asked.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Tenant {
    /// By lower-case primary address.
    pub(crate) users: BTreeMap<String, User>,
    /// By client email.
    pub(crate) service_accounts: BTreeMap<String, ServiceAccount>,
    /// PEM roots trusted for S/MIME, besides public CAs (none here).
    pub(crate) trusted_roots: Vec<String>,
    /// Added to the real clock, to test time-based rules (obliterate after 30 days).
    pub(crate) clock_offset_secs: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct User {
    pub(crate) primary: String,
    pub(crate) aliases: Vec<String>,
    pub(crate) cse_enabled: bool,
    pub(crate) key_pairs: Vec<KeyPair>,
    /// By lower-case address.
    pub(crate) identities: BTreeMap<String, Identity>,
    /// Hosted S/MIME certificates by lower-case send-as address.
    #[serde(default)]
    pub(crate) smime: BTreeMap<String, Vec<SmimeEntry>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SmimeEntry {
    pub(crate) id: String,
    pub(crate) issuer_cn: String,
    /// Milliseconds since the epoch.
    pub(crate) expiration_ms: i64,
    pub(crate) pem: String,
    pub(crate) is_default: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyPair {
    pub(crate) id: String,
    pub(crate) pem: String,
    pub(crate) fingerprint: String,
    pub(crate) subject_emails: Vec<String>,
    pub(crate) not_after: i64,
    pub(crate) enabled: bool,
    pub(crate) disable_time: Option<i64>,
    pub(crate) metadata_id: String,
    pub(crate) kacls_uri: String,
    pub(crate) kacls_data: String,
    /// False for a chain kept with `chainValidation=none` that did not verify.
    #[serde(default = "chain_valid_by_default")]
    pub(crate) chain_valid: bool,
}

fn chain_valid_by_default() -> bool {
    true
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Identity {
    pub(crate) email: String,
    pub(crate) primary_key_pair_id: Option<String>,
    pub(crate) signing_key_pair_id: Option<String>,
    pub(crate) encryption_key_pair_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ServiceAccount {
    pub(crate) client_email: String,
    pub(crate) client_id: String,
    pub(crate) public_key_pem: String,
    /// Scopes the domain administrator authorized for delegation.
    pub(crate) scopes: Vec<String>,
}

/// An issued access token.
#[derive(Clone, Debug)]
pub(crate) struct Grant {
    /// The impersonated user; `None` when the JWT had no `sub`.
    pub(crate) user: Option<String>,
    pub(crate) scopes: Vec<String>,
    pub(crate) expires: i64,
}

/// Faults to inject into Gmail API calls.
#[derive(Clone, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) latency_ms: u64,
    /// Statuses the next calls fail with, in order.
    pub(crate) fail_next: VecDeque<u16>,
    /// Share of calls (0..1) failing with 503 at random.
    pub(crate) error_rate: f64,
    /// Statuses the next token requests fail with, in order.
    pub(crate) token_fail_next: VecDeque<u16>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct LoggedRequest {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) status: u16,
}

/// A per-user token bucket.
#[derive(Debug)]
pub(crate) struct Bucket {
    pub(crate) tokens: f64,
    pub(crate) last: Instant,
}

/// Everything behind the emulator's lock.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) tenant: Tenant,
    pub(crate) tokens: HashMap<String, Grant>,
    pub(crate) faults: Faults,
    pub(crate) log: Vec<LoggedRequest>,
    pub(crate) buckets: HashMap<String, Bucket>,
    /// Calls per second and user before 429; 0 means unlimited.
    pub(crate) user_rate: f64,
    pub(crate) state_file: Option<PathBuf>,
    pub(crate) counter: u64,
}

impl Shared {
    /// Wall-clock time, for OAuth token lifetimes: Google's own clock does not move.
    pub(crate) fn real_now() -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp()
    }

    /// The tenant's clock (moved by `/admin/clock`), for certificate validity and key pair rules.
    pub(crate) fn now(&self) -> i64 {
        time::OffsetDateTime::now_utc().unix_timestamp() + self.tenant.clock_offset_secs
    }

    /// A fresh opaque ID.
    pub(crate) fn new_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        let mut random = [0u8; 8];
        let _ = openssl::rand::rand_bytes(&mut random);
        format!("{prefix}{}{:04}", hex(&random), self.counter)
    }

    pub(crate) fn user(&self, email: &str) -> Option<&User> {
        self.tenant.users.get(&email.to_ascii_lowercase())
    }

    pub(crate) fn user_mut(&mut self, email: &str) -> Option<&mut User> {
        self.tenant.users.get_mut(&email.to_ascii_lowercase())
    }

    /// Writes the tenant to the state file, if one was given.
    pub(crate) fn save(&self) {
        let Some(path) = &self.state_file else { return };
        match serde_json::to_vec_pretty(&self.tenant) {
            Ok(bytes) => {
                let tmp = path.with_extension("tmp");
                if std::fs::write(&tmp, bytes)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .is_err()
                {
                    tracing::warn!(path = %path.display(), "cannot save the emulator state");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot serialize the emulator state"),
        }
    }

    /// Takes one call from `user`'s bucket; false when it is empty.
    pub(crate) fn take_quota(&mut self, user: &str) -> bool {
        if self.user_rate <= 0.0 {
            return true;
        }
        let rate = self.user_rate;
        let now = Instant::now();
        let bucket = self.buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: rate,
            last: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(rate);
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}
