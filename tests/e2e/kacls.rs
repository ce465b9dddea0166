//! The key access control list service, end to end: a user is onboarded to Gmail CSE (the
//! emulator) with the key wrapped by the server; a client playing Gmail then has the service
//! sign and decrypt with the uploaded `kaclsData`, with tokens from a local identity provider
//! and a local stand-in for Google's authorization issuer. The signature goes into an S/MIME
//! message that `openssl smime -verify` accepts; a message `openssl cms -encrypt` made for the
//! user's certificate is decrypted with the key the service unwraps. Then every refusal.

// yasna's readers carry lifetimes a method path cannot name: the closures stay.
#![allow(clippy::redundant_closure_for_method_calls)]

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mailpki_test_support::{EmulatorProcess, ServerProcess, SoftHsm, TestEnv, TestPki, openssl, s};
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde_json::{Value, json};
use yasna::Tag;
use yasna::models::ObjectIdentifier;

use crate::{Idp, env_with_pki, issuer_key, now};

const JANE: &str = "jane@example.com";
const GOOGLE: &str = "gsuitecse-tokenissuer-gmail@system.gserviceaccount.com";

pub(crate) struct Service {
    pub(crate) env: TestEnv,
    pki: TestPki,
    pub(crate) server: ServerProcess,
    emulator: EmulatorProcess,
    pub(crate) idp: Idp,
    pub(crate) google: Idp,
    /// Jane's certificate and the `kaclsData` Gmail holds for her.
    leaf: X509,
    pub(crate) wrapped: String,
}

/// A server with the key service, the issuing CA and a CSE key it may use; Jane onboarded
/// through `google key-pairs create --verify-kacls`.
pub(crate) fn service(extra: &str) -> Service {
    service_with(&["cse_key"], extra, false)
}

/// The same, the CSE key made inside a SoftHSM token (by `kms sym keys create --hsm`);
/// `None` where SoftHSM is not installed.
pub(crate) fn service_in_hsm() -> Option<Service> {
    SoftHsm::available().then(|| service_with(&["cse_key"], "", true))
}

/// The same, the key service holding `cse_keys` (each made in the store and granted to it);
/// Jane's key is wrapped under `cse_key`.
fn service_with(cse_keys: &[&str], extra: &str, in_hsm: bool) -> Service {
    let (env, pki) = env_with_pki();
    let hsm = in_hsm.then(|| SoftHsm::create(&env.path("hsm"), "mailpki-cse").unwrap());
    let (extra, create) = match &hsm {
        Some(hsm) => {
            env.set_env("SOFTHSM2_CONF", &hsm.conf);
            (
                format!("{extra}\n{}", hsm.config()),
                "kms sym keys create --hsm",
            )
        }
        None => (extra.to_owned(), "kms sym keys create"),
    };
    let idp = Idp::with_issuer("idp-1", "https://idp.example.com", "kacls");
    let google = Idp::with_issuer("g-1", GOOGLE, "cse-authorization");
    let config = format!(
        "[server.kacls]\ncse_keys = {cse_keys:?}\nprivileged_users = [\"admin@example.com\"]\n{extra}\n\
         [[server.kacls.identity_providers]]\n{}\n[[server.kacls.authorization_issuers]]\n{}",
        idp.trusted_at(&env.path("idp-jwks.json")),
        google.trusted_at(&env.path("google-jwks.json")),
    );
    // Every log on: the secrets test below reads what the server wrote.
    let server = env.start_server_logging(
        &s(&env.path("server-data/kms.sqlite")),
        &config,
        Some(&env.path("server.log")),
    );
    env.use_server(&server, &["alice"]);
    let key = issuer_key(&env, &pki);
    for cse_key in cse_keys {
        env.run(create).arg(cse_key).ok();
        env.run("kms access-rights grant kacls -i")
            .arg(cse_key)
            .then("decrypt encrypt")
            .ok();
    }
    let emulator = env.start_emulator(&[JANE], &pki.path("root.pem"));
    let created = emulator
        .run(
            &env,
            "--json google key-pairs create --verify-kacls --cse-key-id cse_key --kacls-url",
        )
        .arg(format!("{}/google_cse", server.url))
        .then("-i")
        .arg(&key)
        .arg(JANE)
        .ok()
        .json();
    let leaf = X509::from_pem(created["pem"].as_str().unwrap().as_bytes()).unwrap();
    let wrapped = created["privateKeyMetadata"][0]["kaclsKeyMetadata"]["kaclsData"]
        .as_str()
        .unwrap()
        .to_owned();
    Service {
        env,
        pki,
        server,
        emulator,
        idp,
        google,
        leaf,
        wrapped,
    }
}

/// A key as authorization tokens name it: SHA-256 of its SubjectPublicKeyInfo, base64.
pub(crate) fn spki_of<T: openssl::pkey::HasPublic>(key: &openssl::pkey::PKeyRef<T>) -> String {
    STANDARD.encode(openssl::sha::sha256(&key.public_key_to_der().unwrap()))
}

impl Service {
    pub(crate) fn url(&self) -> String {
        format!("{}/google_cse", self.server.url)
    }

    /// Jane's key as authorization tokens name it (`spki_hash`).
    pub(crate) fn spki(&self) -> String {
        spki_of(&self.leaf.public_key().unwrap())
    }

    pub(crate) fn authentication(&self, email: &str) -> String {
        self.idp.token(&self.idp.claims_with(email, &json!({})))
    }

    pub(crate) fn authorization(&self, email: &str, role: &str) -> String {
        self.authorization_for_key(email, role, &self.spki())
    }

    /// An authorization naming the key whose `spki_hash` is `spki`.
    pub(crate) fn authorization_for_key(&self, email: &str, role: &str, spki: &str) -> String {
        self.google.token(&self.google.claims_with(
            email,
            &json!({"role": role, "kacls_url": self.url(), "resource_name": "msg-1",
                    "spki_hash": spki}),
        ))
    }

    pub(crate) fn call(&self, operation: &str, body: &Value) -> (u16, Value) {
        self.server.http(
            "POST",
            &format!("/google_cse/{operation}"),
            None,
            "application/json",
            body.to_string().as_bytes(),
        )
    }

    pub(crate) fn sign(&self, digest: &[u8], algorithm: &str) -> (u16, Value) {
        self.sign_key(&self.wrapped, &self.spki(), digest, algorithm)
    }

    /// Jane has the service sign with `wrapped`, whose key `spki` names.
    pub(crate) fn sign_key(
        &self,
        wrapped: &str,
        spki: &str,
        digest: &[u8],
        algorithm: &str,
    ) -> (u16, Value) {
        self.call(
            "privatekeysign",
            &json!({
                "authentication": self.authentication(JANE),
                "authorization": self.authorization_for_key(JANE, "signer", spki),
                "algorithm": algorithm,
                "digest": STANDARD.encode(digest),
                "reason": "sign",
                "wrapped_private_key": wrapped,
            }),
        )
    }

    /// Jane's public key, as Gmail's senders encrypt to it.
    pub(crate) fn public_key(&self) -> PKey<openssl::pkey::Public> {
        self.leaf.public_key().unwrap()
    }

    pub(crate) fn decrypt(
        &self,
        encrypted: &[u8],
        algorithm: &str,
        label: Option<&[u8]>,
    ) -> (u16, Value) {
        let mut body = json!({
            "authentication": self.authentication(JANE),
            "authorization": self.authorization(JANE, "decrypter"),
            "algorithm": algorithm,
            "encrypted_data_encryption_key": STANDARD.encode(encrypted),
            "reason": "decrypt",
            "wrapped_private_key": self.wrapped,
        });
        if let Some(label) = label {
            body["rsa_oaep_label"] = json!(STANDARD.encode(label));
        }
        self.call("privatekeydecrypt", &body)
    }
}

fn oid(arcs: &[u64]) -> ObjectIdentifier {
    ObjectIdentifier::from_slice(arcs)
}

/// A CMS SignedData over `content` whose signature the key service made: signed attributes
/// (content type, message digest), their SHA-256 sent as the digest, as Gmail does.
fn signed_message(svc: &Service, content: &[u8]) -> Vec<u8> {
    let data = oid(&[1, 2, 840, 113_549, 1, 7, 1]);
    let sha256 = oid(&[2, 16, 840, 1, 101, 3, 4, 2, 1]);
    let content_digest = openssl::sha::sha256(content);
    let attributes = yasna::construct_der(|w| {
        w.write_set(|w| {
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[1, 2, 840, 113_549, 1, 9, 3]));
                w.next().write_set(|w| w.next().write_oid(&data));
            });
            w.next().write_sequence(|w| {
                w.next().write_oid(&oid(&[1, 2, 840, 113_549, 1, 9, 4]));
                w.next()
                    .write_set(|w| w.next().write_bytes(&content_digest));
            });
        });
    });
    let (status, reply) = svc.sign(&openssl::sha::sha256(&attributes), "SHA256withRSA");
    assert_eq!(status, 200, "{reply}");
    let signature = STANDARD
        .decode(reply["signature"].as_str().unwrap())
        .unwrap();
    // In the SignerInfo the same attributes carry the tag [0] IMPLICIT instead of SET.
    let mut implicit = attributes.clone();
    implicit[0] = 0xA0;
    let leaf_der = svc.leaf.to_der().unwrap();
    let issuer = svc.leaf.issuer_name().to_der().unwrap();
    let serial = svc.leaf.serial_number().to_bn().unwrap().to_vec();
    yasna::construct_der(|w| {
        w.write_sequence(|w| {
            w.next().write_oid(&oid(&[1, 2, 840, 113_549, 1, 7, 2]));
            w.next().write_tagged(Tag::context(0), |w| {
                w.write_sequence(|w| {
                    w.next().write_u32(1);
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_oid(&sha256);
                            w.next().write_null();
                        });
                    });
                    w.next().write_sequence(|w| {
                        w.next().write_oid(&data);
                        w.next()
                            .write_tagged(Tag::context(0), |w| w.write_bytes(content));
                    });
                    w.next().write_tagged_implicit(Tag::context(0), |w| {
                        w.write_set(|w| w.next().write_der(&leaf_der));
                    });
                    w.next().write_set(|w| {
                        w.next().write_sequence(|w| {
                            w.next().write_u32(1);
                            w.next().write_sequence(|w| {
                                w.next().write_der(&issuer);
                                w.next().write_bigint_bytes(&serial, true);
                            });
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&sha256);
                                w.next().write_null();
                            });
                            w.next().write_der(&implicit);
                            w.next().write_sequence(|w| {
                                w.next().write_oid(&oid(&[1, 2, 840, 113_549, 1, 1, 1]));
                                w.next().write_null();
                            });
                            w.next().write_bytes(&signature);
                        });
                    });
                });
            });
        });
    })
}

/// The encrypted content-encryption key, IV and ciphertext of a CMS EnvelopedData with one
/// key-transport recipient (what `openssl cms -encrypt` makes).
fn envelope_parts(der: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    yasna::parse_ber(der, |r| {
        r.read_sequence(|r| {
            r.next().read_oid()?;
            r.next().read_tagged(Tag::context(0), |r| {
                r.read_sequence(|r| {
                    r.next().read_u32()?;
                    let mut key = Vec::new();
                    r.next().read_set_of(|r| {
                        key = r.read_sequence(|r| {
                            r.next().read_u32()?;
                            r.next().read_der()?;
                            r.next().read_der()?;
                            r.next().read_bytes()
                        })?;
                        Ok(())
                    })?;
                    let (iv, content) = r.next().read_sequence(|r| {
                        r.next().read_oid()?;
                        let iv = r.next().read_sequence(|r| {
                            r.next().read_oid()?;
                            r.next().read_bytes()
                        })?;
                        let content = r
                            .next()
                            .read_tagged_implicit(Tag::context(0), |r| r.read_bytes())?;
                        Ok((iv, content))
                    })?;
                    Ok((key, iv, content))
                })
            })
        })
    })
    .unwrap()
}

#[test]
fn gmail_signs_and_decrypts_through_the_key_service() {
    let svc = service("");
    let (status, reply) =
        svc.server
            .http("GET", "/google_cse/status", None, "application/json", b"");
    assert_eq!(status, 200);
    assert_eq!(reply["server_type"], "KACLS");
    assert_eq!(reply["kacls_url"], svc.url());
    assert!(
        reply["operations_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("privatekeysign"))
    );

    // Sign: an S/MIME message that openssl verifies against the organization's root.
    let content = b"Content-Type: text/plain\r\n\r\nSigned through the key service.\r\n";
    let signed = signed_message(&svc, content);
    std::fs::write(svc.env.path("signed.der"), &signed).unwrap();
    let verified = openssl(
        svc.env.root(),
        [
            "smime",
            "-verify",
            "-inform",
            "DER",
            "-in",
            "signed.der",
            // The organization's root and issuing CA, as a relying party has them.
            "-CAfile",
            &s(&svc.pki.path("chain.pem")),
        ],
    );
    assert_eq!(verified, content);

    // Decrypt: a message encrypted to Jane's certificate, its key unwrapped by the service.
    std::fs::write(svc.env.path("jane.pem"), svc.leaf.to_pem().unwrap()).unwrap();
    let message = b"Encrypted to Jane, decrypted through the key service.";
    std::fs::write(svc.env.path("message.txt"), message).unwrap();
    openssl(
        svc.env.root(),
        "cms -encrypt -binary -aes256 -outform DER -in message.txt -out enc.der jane.pem"
            .split_whitespace(),
    );
    let (encrypted_key, iv, ciphertext) =
        envelope_parts(&std::fs::read(svc.env.path("enc.der")).unwrap());
    let (status, reply) = svc.decrypt(&encrypted_key, "RSA/ECB/PKCS1Padding", None);
    assert_eq!(status, 200, "{reply}");
    let cek = STANDARD
        .decode(reply["data_encryption_key"].as_str().unwrap())
        .unwrap();
    let plain = openssl::symm::decrypt(
        openssl::symm::Cipher::aes_256_cbc(),
        &cek,
        Some(&iv),
        &ciphertext,
    )
    .unwrap();
    assert_eq!(plain, message);

    // OAEP with a label, and RSASSA-PSS.
    let public = svc.leaf.public_key().unwrap();
    let dek = [7u8; 32];
    let mut ctx = openssl::pkey_ctx::PkeyCtx::new(&public).unwrap();
    ctx.encrypt_init().unwrap();
    ctx.set_rsa_padding(openssl::rsa::Padding::PKCS1_OAEP)
        .unwrap();
    ctx.set_rsa_oaep_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_mgf1_md(openssl::md::Md::sha256()).unwrap();
    ctx.set_rsa_oaep_label(b"gmail").unwrap();
    let mut wrapped_dek = Vec::new();
    ctx.encrypt_to_vec(&dek, &mut wrapped_dek).unwrap();
    let (status, reply) = svc.decrypt(
        &wrapped_dek,
        "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
        Some(b"gmail"),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data_encryption_key"], STANDARD.encode(dek));
    let (status, _) = svc.decrypt(
        &wrapped_dek,
        "RSA/ECB/OAEPWithSHA-256AndMGF1Padding",
        Some(b"other label"),
    );
    assert_eq!(status, 400, "a wrong label fails");

    let digest = openssl::sha::sha256(b"pss");
    let (status, reply) = svc.sign(&digest, "RSASSA-PSS");
    assert_eq!(status, 200, "{reply}");
    let signature = STANDARD
        .decode(reply["signature"].as_str().unwrap())
        .unwrap();
    let mut verifier =
        openssl::sign::Verifier::new(openssl::hash::MessageDigest::sha256(), &public).unwrap();
    verifier
        .set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
        .unwrap();
    verifier.update(b"pss").unwrap();
    assert!(verifier.verify(&signature).unwrap());

    // The admin's view: status, and the self test with the same tokens Gmail would send.
    let status = svc
        .env
        .run("--json kacls status --kacls-url")
        .arg(svc.url())
        .ok()
        .json();
    assert_eq!(status["server_type"], "KACLS");
    let files = [
        ("jane.pem", svc.leaf.to_pem().unwrap()),
        ("wrapped.key", svc.wrapped.clone().into_bytes()),
        ("authn.jwt", svc.authentication(JANE).into_bytes()),
        ("signer.jwt", svc.authorization(JANE, "signer").into_bytes()),
        (
            "decrypter.jwt",
            svc.authorization(JANE, "decrypter").into_bytes(),
        ),
    ];
    for (name, data) in &files {
        std::fs::write(svc.env.path(name), data).unwrap();
    }
    let selftest = svc
        .env
        .run("--json kacls selftest --certificate jane.pem --wrapped-key wrapped.key --authentication authn.jwt --signer-authorization signer.jwt --decrypter-authorization decrypter.jwt --kacls-url")
        .arg(svc.url())
        .ok()
        .json();
    assert_eq!(
        (selftest["sign"].as_bool(), selftest["decrypt"].as_bool()),
        (Some(true), Some(true))
    );
    // Swapped roles: the service refuses, the self test says which step.
    svc.env
        .run("kacls selftest --certificate jane.pem --wrapped-key wrapped.key --authentication authn.jwt --signer-authorization decrypter.jwt --decrypter-authorization signer.jwt --kacls-url")
        .arg(svc.url())
        .fails(1)
        .stderr_has("privatekeysign failed")
        .stderr_has("403");

    // The audit log has Jane's operations.
    let audit = svc
        .server
        .on_host(&svc.env, "--json server audit --actor jane@example.com")
        .ok()
        .json();
    let ops: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["operation"].as_str().unwrap())
        .collect();
    assert!(
        ops.contains(&"kacls.privatekeysign") && ops.contains(&"kacls.privatekeydecrypt"),
        "{ops:?}"
    );
}

#[test]
fn the_key_service_refuses_what_it_must() {
    let svc = service("perimeters = [\"eu\"]");
    let digest = openssl::sha::sha256(b"x");
    let sign_with = |authentication: String,
                     authorization: String,
                     wrapped: &str,
                     algorithm: &str,
                     digest: &[u8]| {
        svc.call(
            "privatekeysign",
            &json!({
                "authentication": authentication,
                "authorization": authorization,
                "algorithm": algorithm,
                "digest": STANDARD.encode(digest),
                "reason": "test",
                "wrapped_private_key": wrapped,
            }),
        )
    };
    let authn = svc.authentication(JANE);
    let signer = svc.authorization(JANE, "signer");
    let google_with = |extra: Value| {
        let mut claims = svc.google.claims_with(
            JANE,
            &json!({"role": "signer", "kacls_url": svc.url(), "spki_hash": svc.spki()}),
        );
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        svc.google.token(&claims)
    };
    let stranger = Idp::with_issuer("s-1", "https://evil.example.com", "kacls");
    let mut expired = svc.idp.claims_with(JANE, &json!({}));
    expired["exp"] = json!(now() - 3600);
    let mut tampered = svc.wrapped.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    // A key wrapped under a CSE key the service does not use.
    svc.env.run("kms sym keys create other_cse_key").ok();
    let jane_key = svc
        .env
        .run("--json kms certificates list")
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            c["certificate_subject"]
                .as_str()
                .is_some_and(|s| s.contains(JANE))
        })
        .unwrap()["PrivateKeyLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, other) = svc.server.http(
        "POST",
        "/v1/cse/wrap",
        Some(&svc.env.token_of("alice")),
        "application/json",
        json!({"private_key_id": jane_key, "cse_key_id": "other_cse_key"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200, "{other}");
    let other_wrapped = other["kacls_data"].as_str().unwrap().to_owned();

    let cases: Vec<(&str, (u16, Value), u16)> = vec![
        (
            "no authentication",
            sign_with(
                String::new(),
                signer.clone(),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            401,
        ),
        (
            "expired authentication",
            sign_with(
                svc.idp.token(&expired),
                signer.clone(),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            401,
        ),
        (
            "unknown identity provider",
            sign_with(
                stranger.token(&stranger.claims_with(JANE, &json!({}))),
                signer.clone(),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            401,
        ),
        (
            "authorization from the IdP, not Google",
            sign_with(
                authn.clone(),
                authn.clone(),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            401,
        ),
        (
            "role mismatch",
            sign_with(
                authn.clone(),
                svc.authorization(JANE, "decrypter"),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            403,
        ),
        (
            "email mismatch",
            sign_with(
                svc.authentication("mallory@example.com"),
                signer.clone(),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            403,
        ),
        (
            "another key service",
            sign_with(
                authn.clone(),
                google_with(json!({"kacls_url": "https://other.example.com/google_cse"})),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            403,
        ),
        (
            "perimeter not allowed",
            sign_with(
                authn.clone(),
                google_with(json!({"perimeter_id": "us"})),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            403,
        ),
        (
            "spki_hash of another key",
            sign_with(
                authn.clone(),
                google_with(json!({"spki_hash": STANDARD.encode([0u8; 32])})),
                &svc.wrapped,
                "SHA256withRSA",
                &digest,
            ),
            403,
        ),
        (
            "tampered wrapped key",
            sign_with(
                authn.clone(),
                signer.clone(),
                &tampered,
                "SHA256withRSA",
                &digest,
            ),
            400,
        ),
        (
            "wrapped under another CSE key",
            sign_with(
                authn.clone(),
                signer.clone(),
                &other_wrapped,
                "SHA256withRSA",
                &digest,
            ),
            400,
        ),
        (
            "unknown algorithm",
            sign_with(
                authn.clone(),
                signer.clone(),
                &svc.wrapped,
                "MD5withRSA",
                &digest,
            ),
            400,
        ),
        (
            "digest of the wrong size",
            sign_with(
                authn.clone(),
                signer.clone(),
                &svc.wrapped,
                "SHA256withRSA",
                &digest[..20],
            ),
            400,
        ),
        (
            "oversized wrapped key",
            sign_with(
                authn.clone(),
                signer.clone(),
                &"A".repeat(9000),
                "SHA256withRSA",
                &digest,
            ),
            400,
        ),
        (
            "garbage ciphertext",
            svc.decrypt(&[1u8; 256], "RSA/ECB/PKCS1Padding", None),
            400,
        ),
        (
            "unknown decryption algorithm",
            svc.decrypt(&[1u8; 256], "RSA/ECB/NoPadding", None),
            400,
        ),
        (
            "privileged decrypt by an ordinary user",
            svc.call(
                "privilegedprivatekeydecrypt",
                &json!({
                    "authentication": authn.clone(), "algorithm": "RSA/ECB/PKCS1Padding",
                    "encrypted_data_encryption_key": STANDARD.encode([1u8; 256]),
                    "wrapped_private_key": svc.wrapped, "reason": "takeout",
                }),
            ),
            403,
        ),
        (
            "wrapprivatekey by an ordinary user",
            svc.call(
                "wrapprivatekey",
                &json!({"authentication": authn.clone(), "private_key": "AAAA"}),
            ),
            403,
        ),
        (
            "malformed body",
            svc.call("privatekeysign", &json!({"digest": 1})),
            422,
        ),
    ];
    for (case, (status, body), want) in cases {
        assert_eq!(status, want, "{case}: {body}");
        assert_eq!(body["code"], json!(want), "{case}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{case}");
        assert!(
            !message.contains(&svc.wrapped[..40]),
            "{case}: no key material in messages"
        );
    }

    // Still fine with the right tokens; the privileged paths work for the privileged user.
    let (status, _) = sign_with(authn, signer, &svc.wrapped, "SHA256withRSA", &digest);
    assert_eq!(status, 200);
    let public = svc.leaf.public_key().unwrap();
    let spki = spki_of(&public);
    let rsa = public.rsa().unwrap();
    let mut encrypted = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(b"dek", &mut encrypted, openssl::rsa::Padding::PKCS1)
        .unwrap();
    encrypted.truncate(n);
    let admin = svc.authentication("admin@example.com");
    let (status, reply) = svc.call(
        "privilegedprivatekeydecrypt",
        &json!({
            "authentication": admin, "algorithm": "RSA/ECB/PKCS1Padding",
            "encrypted_data_encryption_key": STANDARD.encode(&encrypted),
            "wrapped_private_key": svc.wrapped, "reason": "takeout",
            "spki_hash": spki, "spki_hash_algorithm": "SHA-256",
        }),
    );
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["data_encryption_key"], STANDARD.encode(b"dek"));
    let fresh = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let (status, reply) = svc.call(
        "wrapprivatekey",
        &json!({
            "authentication": svc.authentication("admin@example.com"),
            "perimeter_id": "eu",
            "private_key": STANDARD.encode(fresh.private_key_to_pkcs8().unwrap()),
        }),
    );
    assert_eq!(status, 200, "{reply}");
    let rewrapped = reply["wrapped_private_key"].as_str().unwrap();
    let fresh_spki = spki_of(&fresh);
    let (status, reply) = sign_with(
        svc.authentication(JANE),
        svc.authorization_for_key(JANE, "signer", &fresh_spki),
        rewrapped,
        "SHA256withRSA",
        &digest,
    );
    assert_eq!(status, 200, "{reply}");

    // --verify-kacls stops an upload the key service could not serve.
    svc.env
        .run("kms access-rights revoke kacls -i cse_key decrypt")
        .ok();
    let issuer_key = crate::attributes(&svc.env, "ca")["PrivateKeyLink"]
        .as_str()
        .unwrap()
        .to_owned();
    svc.emulator
        .run(
            &svc.env,
            "google key-pairs create --verify-kacls --cse-key-id cse_key --kacls-url",
        )
        .arg(svc.url())
        .then("-i")
        .arg(&issuer_key)
        .arg(JANE)
        .fails(1)
        .stderr_has("nothing was uploaded");
    let listed = svc
        .emulator
        .run(&svc.env, "--json google key-pairs list --user-id")
        .arg(JANE)
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "no second key pair");
}

/// With every log on, the server's log holds none of the secrets that passed through it: the
/// PKCS#12 password of the import, API tokens, the JWTs Gmail sends, wrapped and unwrapped keys,
/// the data key it decrypted, the CA's private key.
#[test]
fn the_server_log_holds_no_secret_even_at_trace() {
    let svc = service("");
    let public = svc.leaf.public_key().unwrap();
    let rsa = public.rsa().unwrap();
    let dek = [0x5Au8; 32];
    let mut encrypted = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&dek, &mut encrypted, openssl::rsa::Padding::PKCS1)
        .unwrap();
    encrypted.truncate(n);
    let authentication = svc.authentication(JANE);
    let authorization = svc.authorization(JANE, "decrypter");
    let (status, _) = svc.decrypt(&encrypted, "RSA/ECB/PKCS1Padding", None);
    assert_eq!(status, 200);
    let (status, _) = svc.sign(&openssl::sha::sha256(b"log"), "SHA256withRSA");
    assert_eq!(status, 200);
    // A refused call too: its reasons are logged.
    let (status, _) = svc.call(
        "privatekeydecrypt",
        &json!({"authentication": authentication, "authorization": "x.y.z",
                "algorithm": "RSA/ECB/PKCS1Padding",
                "encrypted_data_encryption_key": STANDARD.encode(&encrypted),
                "wrapped_private_key": svc.wrapped}),
    );
    assert_eq!(status, 401);
    let prime = svc.pki.issuing_key_prime();
    let prime_hex = mailpki_test_support::hex(&prime);
    let log = std::fs::read_to_string(svc.env.path("server.log")).unwrap();
    assert!(log.len() > 1000, "trace logging produced output");
    let token = svc.env.token_of("alice");
    let signature_of = |jwt: &str| jwt.rsplit('.').next().unwrap().to_owned();
    for (what, secret) in [
        ("the PKCS#12 password", TestPki::PASSWORD.to_owned()),
        ("alice's API token", token),
        ("the authentication JWT", signature_of(&authentication)),
        ("the authorization JWT", signature_of(&authorization)),
        ("the wrapped key", svc.wrapped[..48].to_owned()),
        ("the data key", STANDARD.encode(dek)),
        ("the CA key (hex)", prime_hex[..32].to_owned()),
    ] {
        assert!(!log.contains(&secret), "{what} appears in the server log");
    }
}

/// Rotating the CSE key: the service lists the new key first and keeps the old one; each user
/// gets a new key pair wrapped under the new key, the identity moves to it, the old key pair is
/// disabled, and both still open while the old messages need it.
#[test]
fn the_cse_key_rotates_with_a_new_key_pair_per_user() {
    let svc = service_with(&["cse_key_2026", "cse_key"], "", false);
    let issuer_key = crate::attributes(&svc.env, "ca")["PrivateKeyLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let old = svc
        .emulator
        .run(&svc.env, "--json google key-pairs list --user-id")
        .arg(JANE)
        .ok()
        .json()[0]["keyPairId"]
        .as_str()
        .unwrap()
        .to_owned();
    svc.emulator
        .run(&svc.env, "google identities insert --user-id")
        .arg(JANE)
        .arg(&old)
        .ok();
    let rotated = svc
        .emulator
        .run(
            &svc.env,
            "--json google key-pairs rotate --verify-kacls --cse-key-id cse_key_2026 --kacls-url",
        )
        .arg(svc.url())
        .then("-i")
        .arg(&issuer_key)
        .arg(JANE)
        .ok()
        .json();
    let new = rotated["keyPairId"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(rotated["disabled"], json!([old]));
    assert_eq!(rotated["identity"]["primaryKeyPairId"], json!(new));
    let listed = svc
        .emulator
        .run(&svc.env, "--json google key-pairs list --user-id")
        .arg(JANE)
        .ok()
        .json();
    let state = |id: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["keyPairId"] == id)
            .unwrap()["enablementState"]
            .clone()
    };
    assert_eq!(
        (state(&old), state(&new)),
        (json!("disabled"), json!("enabled"))
    );
    // Messages of both keys can still be signed and decrypted.
    let new_pair = svc
        .emulator
        .run(&svc.env, "--json google key-pairs get --user-id")
        .arg(JANE)
        .arg(&new)
        .ok()
        .json();
    let new_wrapped = new_pair["privateKeyMetadata"][0]["kaclsKeyMetadata"]["kaclsData"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(new_wrapped, svc.wrapped);
    let new_leaf = X509::from_pem(new_pair["pem"].as_str().unwrap().as_bytes()).unwrap();
    let new_spki = spki_of(&new_leaf.public_key().unwrap());
    for (wrapped, spki) in [(svc.wrapped.as_str(), svc.spki()), (&new_wrapped, new_spki)] {
        let (status, reply) = svc.sign_key(
            wrapped,
            &spki,
            &openssl::sha::sha256(b"rotated"),
            "SHA256withRSA",
        );
        assert_eq!(status, 200, "{reply}");
    }
}
