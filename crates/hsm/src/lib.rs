//! Keys that live in a PKCS#11 token (an HSM): loading the module and logging in to one token,
//! putting a private key into it or finding one already there, signing and AES-GCM sealing
//! through it. Key material in the token never comes out and is never kept here: what this
//! crate keeps is object handles and sessions.

mod error;
mod token;

pub use error::{HsmError, Result};
pub use token::{Hsm, HsmConfig, HsmKey, KeyKind, KeyRef, PinSource};
