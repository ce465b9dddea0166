//! One logged-in token: a pool of sessions, key handles found by `CKA_ID`, and the operations
//! mailpki asks of it (sign a digest, AES-GCM seal and open, import, generate, find).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, PKeyRef, Private, Public};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{HsmError, Result};

const GCM_NONCE: usize = 12;
const GCM_TAG: usize = 16;

/// Where the token is and how to log in to it (`[hsm]` in the configuration).
#[derive(Clone)]
pub struct HsmConfig {
    /// The vendor's PKCS#11 library, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label.
    pub token: String,
    /// Where the user PIN comes from; read when the token is opened.
    pub pin: PinSource,
}

/// Where the user PIN is: read only when a key in the token is first used, so that commands
/// that use none need no PIN.
#[derive(Clone)]
pub enum PinSource {
    Value(SecretString),
    /// A file holding the PIN (surrounding white space ignored).
    File(PathBuf),
    /// An environment variable holding it.
    Env(String),
}

impl PinSource {
    fn read(&self) -> Result<SecretString> {
        match self {
            Self::Value(pin) => Ok(pin.clone()),
            Self::File(path) => {
                let text =
                    Zeroizing::new(std::fs::read_to_string(path).map_err(|e| HsmError::Pin {
                        reason: format!("cannot read {}: {e}", path.display()),
                    })?);
                Ok(SecretString::from(text.trim().to_owned()))
            }
            Self::Env(var) => std::env::var(var)
                .ok()
                .filter(|v| !v.is_empty())
                .map(SecretString::from)
                .ok_or_else(|| HsmError::Pin {
                    reason: format!("set {var} or [hsm] pin_file"),
                }),
        }
    }
}

impl fmt::Debug for HsmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmConfig")
            .field("module", &self.module)
            .field("token", &self.token)
            .field("pin", &"[REDACTED]")
            .finish()
    }
}

/// Where a key lives in a token: what the store keeps instead of the key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// The token's label.
    pub token: String,
    /// `CKA_ID`, in hex.
    pub id: String,
    /// `CKA_LABEL`, for people reading attributes and token listings.
    pub label: String,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "token `{}`, id {}", self.token, self.id)
    }
}

/// What kind of key a token object is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    Ec,
    Aes,
}

/// The PKCS#11 libraries loaded by this process, each initialized once: `C_Initialize` may be
/// called once per process, and unloading a module under open sessions is undefined.
fn context(module: &Path) -> Result<Pkcs11> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut loaded = LOADED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(ctx) = loaded.get(module) {
        return Ok(ctx.clone());
    }
    let failed = |cause| HsmError::Module {
        path: module.to_owned(),
        cause,
    };
    let ctx = Pkcs11::new(module).map_err(failed)?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(failed(e)),
    }
    loaded.insert(module.to_owned(), ctx.clone());
    Ok(ctx)
}

/// A token this process is logged in to.
pub struct Hsm {
    ctx: Pkcs11,
    slot: Slot,
    token: String,
    /// Idle sessions. One is always kept open: closing a token's last session logs out.
    sessions: Mutex<Vec<Session>>,
    /// Object handles by class and `CKA_ID`: found once, not the material.
    handles: Mutex<HashMap<(bool, Vec<u8>), ObjectHandle>>,
}

impl fmt::Debug for Hsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hsm")
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

impl Hsm {
    /// Loads the module, finds the token by label and logs in as its user.
    pub fn open(config: &HsmConfig) -> Result<Arc<Self>> {
        let ctx = context(&config.module)?;
        let slots = ctx
            .get_slots_with_token()
            .map_err(HsmError::token("listing its slots"))?;
        let mut present = Vec::new();
        let mut found = None;
        for slot in slots {
            let Ok(info) = ctx.get_token_info(slot) else {
                continue;
            };
            let label = info.label().trim_end().to_owned();
            if label == config.token {
                found = Some(slot);
                break;
            }
            if !label.is_empty() {
                present.push(label);
            }
        }
        let slot = found.ok_or_else(|| HsmError::TokenNotPresent {
            token: config.token.clone(),
            present,
        })?;
        let session = ctx
            .open_rw_session(slot)
            .map_err(HsmError::token("opening a session"))?;
        let pin = AuthPin::from(config.pin.read()?.expose_secret());
        match session.login(UserType::User, Some(&pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(rv, _)) => {
                let reason = match rv {
                    RvError::PinIncorrect => "the PIN is wrong".to_owned(),
                    RvError::PinLocked => "the PIN is locked".to_owned(),
                    RvError::PinExpired => "the PIN has expired".to_owned(),
                    RvError::UserPinNotInitialized => "its user PIN is not set".to_owned(),
                    other => other.to_string(),
                };
                return Err(HsmError::Login {
                    token: config.token.clone(),
                    reason,
                });
            }
            Err(e) => {
                return Err(HsmError::Login {
                    token: config.token.clone(),
                    reason: e.to_string(),
                });
            }
        }
        Ok(Arc::new(Self {
            ctx,
            slot,
            token: config.token.clone(),
            sessions: Mutex::new(vec![session]),
            handles: Mutex::default(),
        }))
    }

    /// The token's label.
    #[must_use]
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Runs `f` on an idle session (opening another when all are busy, so that concurrent
    /// signers do not wait on each other). A session the token no longer knows is dropped.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> cryptoki::error::Result<T>,
    ) -> cryptoki::error::Result<T> {
        let idle = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let session = match idle {
            Some(s) => s,
            None => self.ctx.open_rw_session(self.slot)?,
        };
        let result = f(&session);
        let dead = matches!(
            result,
            Err(CkError::Pkcs11(
                RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent,
                _
            ))
        );
        if !dead {
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(session);
        }
        result
    }

    fn same_token(&self, key: &KeyRef) -> Result<()> {
        if key.token == self.token {
            Ok(())
        } else {
            Err(HsmError::OtherToken {
                key: key.token.clone(),
                configured: self.token.clone(),
            })
        }
    }

    /// The handle of the private (`secret` false) or secret key with `key`'s ID.
    fn handle(&self, key: &KeyRef, secret: bool) -> Result<ObjectHandle> {
        self.same_token(key)?;
        let id = from_hex(&key.id).ok_or_else(|| HsmError::KeyGone {
            token: self.token.clone(),
            id: key.id.clone(),
        })?;
        let cache_key = (secret, id.clone());
        if let Some(h) = self
            .handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&cache_key)
        {
            return Ok(*h);
        }
        let class = if secret {
            ObjectClass::SECRET_KEY
        } else {
            ObjectClass::PRIVATE_KEY
        };
        let found = self
            .with_session(|s| s.find_objects(&[Attribute::Class(class), Attribute::Id(id)]))
            .map_err(HsmError::token("finding a key"))?;
        let handle = *found.first().ok_or_else(|| HsmError::KeyGone {
            token: self.token.clone(),
            id: key.id.clone(),
        })?;
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(cache_key, handle);
        Ok(handle)
    }

    /// Runs one operation on a key's handle; if the token says the handle went stale (the
    /// token was re-inserted), finds the key again once.
    fn on_key<T>(
        &self,
        key: &KeyRef,
        secret: bool,
        what: &'static str,
        op: impl Fn(&Session, ObjectHandle) -> cryptoki::error::Result<T>,
    ) -> Result<T> {
        let handle = self.handle(key, secret)?;
        match self.with_session(|s| op(s, handle)) {
            Err(CkError::Pkcs11(RvError::ObjectHandleInvalid | RvError::KeyHandleInvalid, _)) => {
                self.handles
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                let handle = self.handle(key, secret)?;
                self.with_session(|s| op(s, handle))
                    .map_err(HsmError::token(what))
            }
            other => other.map_err(HsmError::token(what)),
        }
    }

    /// Puts a private key (RSA or EC) into the token: sensitive, not extractable, for signing
    /// only, under a new random ID.
    pub fn import_private_key(&self, key: &PKeyRef<Private>, label: &str) -> Result<KeyRef> {
        let id = random_id()?;
        let mut template = vec![
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Id(id.clone()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        private_key_attributes(key, &mut template)?;
        let created = self.with_session(|s| s.create_object(&template));
        for attribute in &mut template {
            wipe(attribute);
        }
        created.map_err(HsmError::token("storing the key"))?;
        Ok(KeyRef {
            token: self.token.clone(),
            id: to_hex(&id),
            label: label.to_owned(),
        })
    }

    /// Makes an AES-256 key inside the token, never extractable, for AES-GCM.
    pub fn generate_aes_key(&self, label: &str) -> Result<KeyRef> {
        let id = random_id()?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::ValueLen(32.into()),
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Encrypt(true),
            Attribute::Decrypt(true),
            Attribute::Id(id.clone()),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        self.with_session(|s| s.generate_key(&Mechanism::AesKeyGen, &template))
            .map_err(HsmError::token("generating an AES key"))?;
        Ok(KeyRef {
            token: self.token.clone(),
            id: to_hex(&id),
            label: label.to_owned(),
        })
    }

    /// A key already in the token (made there by its administrators), by label or hex ID,
    /// with its kind. Exactly one private or secret key must match.
    pub fn find_key(&self, label: Option<&str>, id: Option<&str>) -> Result<(KeyRef, KeyKind)> {
        let by = match (label, id) {
            (_, Some(id)) => format!("the ID {id}"),
            (Some(label), None) => format!("the label `{label}`"),
            (None, None) => "no label or ID".to_owned(),
        };
        let not_found = || HsmError::KeyNotFound {
            token: self.token.clone(),
            what: "private or secret key",
            by: by.clone(),
        };
        let mut template = Vec::new();
        if let Some(id) = id {
            template.push(Attribute::Id(from_hex(id).ok_or_else(not_found)?));
        }
        if let Some(label) = label {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if template.is_empty() {
            return Err(not_found());
        }
        let mut matches = Vec::new();
        for class in [ObjectClass::PRIVATE_KEY, ObjectClass::SECRET_KEY] {
            let mut t = template.clone();
            t.push(Attribute::Class(class));
            let found = self
                .with_session(|s| s.find_objects(&t))
                .map_err(HsmError::token("finding a key"))?;
            matches.extend(found);
        }
        let handle = match matches.as_slice() {
            [] => return Err(not_found()),
            [one] => *one,
            many => {
                return Err(HsmError::Ambiguous {
                    token: self.token.clone(),
                    by,
                    count: many.len(),
                });
            }
        };
        let attributes = self
            .with_session(|s| {
                s.get_attributes(
                    handle,
                    &[
                        AttributeType::Id,
                        AttributeType::Label,
                        AttributeType::KeyType,
                    ],
                )
            })
            .map_err(HsmError::token("reading a key's attributes"))?;
        let (mut key_id, mut key_label, mut kind) = (Vec::new(), String::new(), None);
        for attribute in attributes {
            match attribute {
                Attribute::Id(v) => key_id = v,
                Attribute::Label(v) => key_label = String::from_utf8_lossy(&v).into_owned(),
                Attribute::KeyType(t) if t == KeyType::RSA => kind = Some(KeyKind::Rsa),
                Attribute::KeyType(t) if t == KeyType::EC => kind = Some(KeyKind::Ec),
                Attribute::KeyType(t) if t == KeyType::AES => kind = Some(KeyKind::Aes),
                _ => {}
            }
        }
        if key_id.is_empty() {
            return Err(HsmError::Unsupported {
                reason: format!("the key with {by} has no CKA_ID; give it one"),
            });
        }
        let kind = kind.ok_or_else(|| HsmError::Unsupported {
            reason: format!("the key with {by} is not RSA, EC or AES"),
        })?;
        Ok((
            KeyRef {
                token: self.token.clone(),
                id: to_hex(&key_id),
                label: key_label,
            },
            kind,
        ))
    }

    /// Removes a key from the token (an import whose store write failed is undone so).
    pub fn destroy_key(&self, key: &KeyRef, secret: bool) -> Result<()> {
        self.on_key(key, secret, "destroying a key", Session::destroy_object)?;
        self.handles
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// A signer for the private key `key`, whose public half is `public` (as the store
    /// recorded it; [`HsmKey::check_pair`] proves the pairing with one signature).
    pub fn signer(self: &Arc<Self>, key: &KeyRef, public: PKey<Public>) -> Result<HsmKey> {
        self.same_token(key)?;
        Ok(HsmKey {
            hsm: Arc::clone(self),
            key: key.clone(),
            public,
        })
    }

    /// AES-256-GCM under the token's secret key: nonce (12) ‖ ciphertext ‖ tag (16), the
    /// layout of keys wrapped by a stored CSE key.
    pub fn seal(&self, key: &KeyRef, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; GCM_NONCE];
        openssl::rand::rand_bytes(&mut nonce).map_err(HsmError::crypto("drawing a nonce"))?;
        let body = self.on_key(key, true, "encrypting", |s, h| {
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, aad, ((GCM_TAG * 8) as u64).into())?;
            s.encrypt(&Mechanism::AesGcm(params), h, plaintext)
        })?;
        let mut sealed = Vec::with_capacity(GCM_NONCE + body.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&body);
        Ok(sealed)
    }

    /// Opens what [`Hsm::seal`] made; `None` when the key is not the one that sealed it or
    /// the data was altered.
    pub fn unseal(
        &self,
        key: &KeyRef,
        sealed: &[u8],
        aad: &[u8],
    ) -> Result<Option<Zeroizing<Vec<u8>>>> {
        if sealed.len() < GCM_NONCE + GCM_TAG {
            return Ok(None);
        }
        let (nonce, body) = sealed.split_at(GCM_NONCE);
        let result = self.on_key(key, true, "decrypting", |s, h| {
            let mut iv = [0u8; GCM_NONCE];
            iv.copy_from_slice(nonce);
            let params = GcmParams::new(&mut iv, aad, ((GCM_TAG * 8) as u64).into())?;
            s.decrypt(&Mechanism::AesGcm(params), h, body)
        });
        match result {
            Ok(plain) => Ok(Some(Zeroizing::new(plain))),
            Err(HsmError::Token {
                cause:
                    CkError::Pkcs11(RvError::EncryptedDataInvalid | RvError::EncryptedDataLenRange, _),
                ..
            }) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A private key in a token that signs on request, with its public half (kept in the store).
#[derive(Clone)]
pub struct HsmKey {
    hsm: Arc<Hsm>,
    key: KeyRef,
    public: PKey<Public>,
}

impl fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HsmKey")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl HsmKey {
    #[must_use]
    pub fn public_key(&self) -> &PKeyRef<Public> {
        &self.public
    }

    #[must_use]
    pub fn key_ref(&self) -> &KeyRef {
        &self.key
    }

    /// Signs `data` hashed with `digest`, returning the signature as X.509 carries it:
    /// PKCS#1 v1.5 for RSA, a DER `ECDSA-Sig-Value` for EC. The hash is computed here, so the
    /// token sees 32–64 bytes, not the whole certificate.
    pub fn sign(&self, digest: MessageDigest, data: &[u8]) -> Result<Vec<u8>> {
        let hashed = openssl::hash::hash(digest, data).map_err(HsmError::crypto("hashing"))?;
        match self.public.id() {
            Id::RSA => {
                let mut info = digest_info_prefix(digest)?.to_vec();
                info.extend_from_slice(&hashed);
                self.hsm.on_key(&self.key, false, "signing", |s, h| {
                    s.sign(&Mechanism::RsaPkcs, h, &info)
                })
            }
            Id::EC => {
                let raw = self.hsm.on_key(&self.key, false, "signing", |s, h| {
                    s.sign(&Mechanism::Ecdsa, h, &hashed)
                })?;
                let (r, s) = raw.split_at(raw.len() / 2);
                let bn = |b: &[u8]| BigNum::from_slice(b);
                let sig = bn(r)
                    .and_then(|r| bn(s).and_then(|s| EcdsaSig::from_private_components(r, s)))
                    .map_err(HsmError::crypto("encoding the signature"))?;
                sig.to_der()
                    .map_err(HsmError::crypto("encoding the signature"))
            }
            _ => Err(HsmError::Unsupported {
                reason: "only RSA and EC keys sign here".to_owned(),
            }),
        }
    }

    /// Proves the token's key is the private half of `public`: signs a fresh challenge and
    /// checks it.
    pub fn check_pair(&self) -> Result<()> {
        let mut challenge = [0u8; 32];
        openssl::rand::rand_bytes(&mut challenge).map_err(HsmError::crypto("drawing bytes"))?;
        let digest = MessageDigest::sha256();
        let signature = self.sign(digest, &challenge)?;
        let mut verifier = openssl::sign::Verifier::new(digest, &self.public)
            .map_err(HsmError::crypto("checking a signature"))?;
        verifier
            .update(&challenge)
            .map_err(HsmError::crypto("checking a signature"))?;
        if verifier.verify(&signature).unwrap_or(false) {
            Ok(())
        } else {
            Err(HsmError::KeyMismatch)
        }
    }
}

/// The DER `DigestInfo` before the hash, for PKCS#1 v1.5 (RFC 8017 §9.2 note 1).
fn digest_info_prefix(digest: MessageDigest) -> Result<&'static [u8]> {
    const SHA256: &[u8] = &[
        0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01,
        0x05, 0x00, 0x04, 0x20,
    ];
    const SHA384: &[u8] = &[
        0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02,
        0x05, 0x00, 0x04, 0x30,
    ];
    const SHA512: &[u8] = &[
        0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03,
        0x05, 0x00, 0x04, 0x40,
    ];
    match digest.type_() {
        Nid::SHA256 => Ok(SHA256),
        Nid::SHA384 => Ok(SHA384),
        Nid::SHA512 => Ok(SHA512),
        _ => Err(HsmError::Unsupported {
            reason: "signatures use SHA-256, SHA-384 or SHA-512".to_owned(),
        }),
    }
}

/// The type-specific attributes of a private key object; secret values are wiped by the caller.
fn private_key_attributes(key: &PKeyRef<Private>, template: &mut Vec<Attribute>) -> Result<()> {
    let crypto = HsmError::crypto("reading the key");
    match key.id() {
        Id::RSA => {
            let rsa = key.rsa().map_err(crypto)?;
            let missing = || HsmError::Unsupported {
                reason: "the RSA key lacks its CRT parameters".to_owned(),
            };
            template.push(Attribute::KeyType(KeyType::RSA));
            template.push(Attribute::Modulus(rsa.n().to_vec()));
            template.push(Attribute::PublicExponent(rsa.e().to_vec()));
            template.push(Attribute::PrivateExponent(rsa.d().to_vec()));
            template.push(Attribute::Prime1(rsa.p().ok_or_else(missing)?.to_vec()));
            template.push(Attribute::Prime2(rsa.q().ok_or_else(missing)?.to_vec()));
            template.push(Attribute::Exponent1(
                rsa.dmp1().ok_or_else(missing)?.to_vec(),
            ));
            template.push(Attribute::Exponent2(
                rsa.dmq1().ok_or_else(missing)?.to_vec(),
            ));
            template.push(Attribute::Coefficient(
                rsa.iqmp().ok_or_else(missing)?.to_vec(),
            ));
        }
        Id::EC => {
            let ec = key.ec_key().map_err(crypto)?;
            let (oid, bytes): (&[u8], i32) = match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => (
                    &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
                    32,
                ),
                Some(Nid::SECP384R1) => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22], 48),
                Some(Nid::SECP521R1) => (&[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23], 66),
                _ => {
                    return Err(HsmError::Unsupported {
                        reason: "EC keys must be on P-256, P-384 or P-521".to_owned(),
                    });
                }
            };
            template.push(Attribute::KeyType(KeyType::EC));
            template.push(Attribute::EcParams(oid.to_vec()));
            template.push(Attribute::Value(
                ec.private_key()
                    .to_vec_padded(bytes)
                    .map_err(HsmError::crypto("reading the key"))?,
            ));
        }
        _ => {
            return Err(HsmError::Unsupported {
                reason: "only RSA and EC private keys go into the token".to_owned(),
            });
        }
    }
    Ok(())
}

fn wipe(attribute: &mut Attribute) {
    if let Attribute::PrivateExponent(v)
    | Attribute::Prime1(v)
    | Attribute::Prime2(v)
    | Attribute::Exponent1(v)
    | Attribute::Exponent2(v)
    | Attribute::Coefficient(v)
    | Attribute::Value(v) = attribute
    {
        v.zeroize();
    }
}

fn random_id() -> Result<Vec<u8>> {
    let mut id = vec![0u8; 16];
    openssl::rand::rand_bytes(&mut id).map_err(HsmError::crypto("drawing a key ID"))?;
    Ok(id)
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    let hex: String = hex.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(from_hex(&to_hex(&[0, 1, 0xab])), Some(vec![0, 1, 0xab]));
        assert_eq!(from_hex("0A:bc"), Some(vec![0x0a, 0xbc]));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex(""), None);
    }
}
