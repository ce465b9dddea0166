//! The key access control list service (KACLS) of Google Workspace CSE, on the server under
//! `[server.kacls] prefix` (default `/google_cse`): the endpoints Gmail calls when a user signs
//! or decrypts with a key pair whose private key we wrapped (`privatekeysign`,
//! `privatekeydecrypt`), the privileged decrypt for exports, `wrapprivatekey` and `status`.
//!
//! Every call carries two JWTs: `authentication`, from one of the organization's identity
//! providers, and `authorization`, from Google. Both are checked against their issuer's JWKS;
//! the authorization token must carry the role the operation needs, this service's URL and
//! (when configured) an allowed perimeter, and both must name the same user. Only then is the
//! wrapped key opened with the store's CSE key (acting as `[server.kacls] actor`, who needs
//! `decrypt` on it). Opened keys are cached for `key_cache_seconds`; OpenSSL clears an RSA
//! key's private numbers when the last reference is dropped. Errors follow Google's structured
//! reply, `{"code", "message", "details"}`; decryption failures all read alike.

pub(crate) mod activity;
mod authz;
mod cache;
mod config;
mod crypto;
mod error;
mod handlers;
pub mod wire;

pub(crate) use authz::Kacls;
pub use config::KaclsConfig;
pub(crate) use handlers::{decode_for_fuzzing, router};

#[cfg(test)]
mod tests {
    use super::authz::*;
    use super::cache::*;
    use super::config::*;

    use std::time::Duration;

    #[test]
    fn allowed_origins_are_origins_and_never_a_wildcard() {
        for good in [GMAIL_ORIGIN, "http://localhost:8080"] {
            assert!(check_origin(good).is_ok(), "{good}");
        }
        for bad in [
            "*",
            "https://*.google.com",
            "https://x.example.com/path",
            "x.example.com",
            "https://",
        ] {
            assert!(check_origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gmails_authorization_issuer_is_the_default() {
        let config: KaclsConfig = toml::from_str(
            "cse_keys = [\"cse_key\"]\n[[identity_providers]]\nissuer = \"https://idp\"\n\
             audience = \"kacls\"\njwks_file = \"idp.jwks\"\n",
        )
        .unwrap();
        let gmail = &config.authorization_issuers[0];
        assert_eq!(gmail.issuer, GMAIL_AUTHORIZATION_ISSUER);
        assert_eq!(gmail.audience, "cse-authorization");
        assert!(
            gmail
                .jwks_url
                .as_deref()
                .unwrap()
                .ends_with(GMAIL_AUTHORIZATION_ISSUER)
        );
        assert!(config.require_spki_hash);
        assert!(Kacls::new(config, "https://kms.example.com").is_ok());
    }

    #[test]
    fn cached_values_leave_when_their_time_is_up_or_room_is_needed() {
        let cache = TimedCache::new(Duration::from_secs(60), 2);
        cache.insert([1; 32], "a".to_owned(), Duration::from_secs(60));
        cache.insert([2; 32], "b".to_owned(), Duration::ZERO);
        assert_eq!(cache.get(&[1; 32]).as_deref(), Some("a"));
        assert_eq!(cache.get(&[2; 32]), None, "a zero lifetime is not cached");
        cache.insert([3; 32], "c".to_owned(), Duration::from_nanos(1));
        cache.insert([4; 32], "d".to_owned(), Duration::from_secs(60));
        assert_eq!(cache.get(&[1; 32]), None, "the oldest made room");
        cache.sweep();
        let inner = cache.inner.lock().unwrap();
        assert_eq!(
            inner.0.len(),
            1,
            "the expired one is gone without being asked for"
        );
        assert_eq!(inner.1.len(), 1);
    }
}
