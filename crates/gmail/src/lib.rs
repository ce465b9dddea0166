//! `mailpki-gmail` is a typed client for the parts of the Gmail API mailpki uses: CSE key pairs
//! and identities (`users.settings.cse`), send-as aliases and hosted S/MIME
//! (`users.settings.sendAs.smimeInfo`). It authenticates as a service account with domain-wide
//! delegation ([`TokenSource`]), caches tokens per user, retries throttling and server faults,
//! and reports Google's errors as [`GmailError`]. The API base URL is a parameter, so the same
//! client talks to Google or to the emulator. It knows nothing about the key store.

mod auth;
mod client;
mod error;
pub mod types;

pub use auth::{ServiceAccountKey, TokenSource};
pub use client::{
    ChainValidation, DEFAULT_API_URL, GmailClient, KeyPairAction, RetryPolicy,
    SCOPE_SETTINGS_BASIC, SCOPE_SETTINGS_SHARING,
};
pub use error::{GmailError, Result};
