//! Load generator for `scripts/bench-kacls.sh`, playing Gmail against the key service.
//!
//! `kacls_load prepare DIR` makes an identity provider and a stand-in for Google's
//! authorization issuer (keys and JWKS files in DIR, issuers `https://idp.bench` and
//! `google.bench`). `kacls_load run DIR KACLS_URL CLIENTS SECONDS` has the service wrap a fresh
//! RSA-2048 key (`wrapprivatekey`, as `admin@bench`), then runs CLIENTS concurrent clients of
//! `privatekeysign` and of `privatekeydecrypt`, SECONDS each, and prints one JSON line per
//! operation: requests/s, p50 and p99 latency. Each client sends the same tokens; the service
//! checks the authorization token's signature on every call (Gmail's name a message, so it
//! keeps none) and remembers the identity token, as it does for a user's session. With RATE,
//! the clients send RATE requests/s together instead of as fast as answers come.

#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::pkey::PKey;
use openssl::rsa::{Padding, Rsa};
use serde_json::{Value, json};

#[path = "common/load.rs"]
mod load;

const IDP: &str = "https://idp.bench";
const GOOGLE: &str = "google.bench";

fn prepare(dir: &Path) {
    for name in ["idp", "google"] {
        let rsa = Rsa::generate(2048).unwrap();
        std::fs::write(
            dir.join(format!("{name}.der")),
            rsa.private_key_to_der().unwrap(),
        )
        .unwrap();
        let jwks = json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": name,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        }]});
        std::fs::write(dir.join(format!("{name}.jwks")), jwks.to_string()).unwrap();
    }
}

fn token(dir: &Path, name: &str, claims: &Value) -> String {
    let der = std::fs::read(dir.join(format!("{name}.der"))).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(name.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).unwrap()
}

async fn run(dir: &Path, kacls: &str, clients: usize, seconds: u64, rate: Option<f64>) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |iss: &str, aud: &str, email: &str, extra: Value| {
        let mut c = json!({"iss": iss, "aud": aud, "email": email, "iat": now, "exp": now + 3600});
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let authn = |email: &str| token(dir, "idp", &claims(IDP, "kacls", email, json!({})));
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    // Gmail names the key in every authorization; the service requires it.
    let spki = STANDARD.encode(openssl::sha::sha256(&key.public_key_to_der().unwrap()));
    let authz = |role: &str| {
        token(
            dir,
            "google",
            &claims(
                GOOGLE,
                "cse-authorization",
                "user@bench",
                json!({"role": role, "kacls_url": kacls, "spki_hash": spki}),
            ),
        )
    };
    let http = reqwest::Client::new();
    let wrapped: Value = http
        .post(format!("{kacls}/wrapprivatekey"))
        .json(&json!({
            "authentication": authn("admin@bench"),
            "private_key": STANDARD.encode(key.private_key_to_pkcs8().unwrap()),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let wrapped = wrapped["wrapped_private_key"]
        .as_str()
        .expect("wrapprivatekey answered")
        .to_owned();
    let digest = openssl::sha::sha256(b"bench");
    let sign = json!({
        "authentication": authn("user@bench"), "authorization": authz("signer"),
        "algorithm": "SHA256withRSA", "digest": STANDARD.encode(digest),
        "reason": "bench", "wrapped_private_key": wrapped,
    });
    let rsa = key.rsa().unwrap();
    let mut encrypted = vec![0u8; rsa.size() as usize];
    let n = rsa
        .public_encrypt(&[9u8; 32], &mut encrypted, Padding::PKCS1)
        .unwrap();
    encrypted.truncate(n);
    let decrypt = json!({
        "authentication": authn("user@bench"), "authorization": authz("decrypter"),
        "algorithm": "RSA/ECB/PKCS1Padding", "encrypted_data_encryption_key": STANDARD.encode(&encrypted),
        "reason": "bench", "wrapped_private_key": wrapped,
    });
    for (operation, body) in [("privatekeysign", sign), ("privatekeydecrypt", decrypt)] {
        let (url, body) = (format!("{kacls}/{operation}"), body.to_string());
        let request = move |http: &reqwest::Client, _| {
            http.post(&url)
                .header("content-type", "application/json")
                .body(body.clone())
        };
        let mut summary = match rate {
            Some(rate) => load::run_paced(clients, seconds, rate, request).await,
            None => load::run(clients, seconds, request).await,
        };
        summary["operation"] = json!(operation);
        summary["offered_per_second"] = json!(rate);
        println!("{summary}");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("prepare") if args.len() == 3 => prepare(Path::new(&args[2])),
        Some("run") if (6..=7).contains(&args.len()) => {
            run(
                Path::new(&args[2]),
                args[3].trim_end_matches('/'),
                args[4].parse().expect("CLIENTS is a number"),
                args[5].parse().expect("SECONDS is a number"),
                args.get(6).map(|r| r.parse().expect("RATE is a number")),
            )
            .await;
        }
        _ => panic!(
            "usage: kacls_load prepare DIR | kacls_load run DIR KACLS_URL CLIENTS SECONDS [RATE]"
        ),
    }
}
