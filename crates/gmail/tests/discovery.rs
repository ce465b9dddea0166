//! Every request the client can make, checked against the Gmail discovery document that
//! Google's own Python client ships and builds its requests from: the verb and path template,
//! each query parameter (and its enum values), and each field of the body, recursively, by
//! name and JSON type. The client talks to a local recorder that answers everything; nothing
//! here depends on the emulator's reading of Google.

// Fixture code: a broken recorder or document should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, Uri};
use mailpki_gmail::types::{
    CseIdentity, CseKeyPair, CsePrivateKeyMetadata, HardwareKeyMetadata, KaclsKeyMetadata,
    SignAndEncryptKeyPairs, SmimeInfo,
};
use mailpki_gmail::{
    ChainValidation, GmailClient, KeyPairAction, RetryPolicy, ServiceAccountKey, TokenSource,
};
use serde_json::{Value, json};

const JANE: &str = "jane@example.com";
const ALIAS: &str = "jane.doe@example.com";

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    body: Bytes,
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// Answers the token endpoint with a token and every API call with `{}`, which each reply type
/// reads (all their fields are optional), and records what came.
async fn record(State(log): State<Log>, method: Method, uri: Uri, body: Bytes) -> String {
    let query = uri
        .query()
        .map(|q| {
            q.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect()
        })
        .unwrap_or_default();
    let path = uri.path().to_owned();
    let token = path == "/token";
    log.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path,
        query,
        body,
    });
    if token {
        json!({"access_token": "recorded", "expires_in": 3600, "token_type": "Bearer"}).to_string()
    } else {
        "{}".to_owned()
    }
}

/// A client of `base` with a fresh service-account key whose token endpoint is `base/token`.
fn client(base: &str) -> GmailClient {
    let signing = openssl::rsa::Rsa::generate(2048).unwrap();
    let pem = String::from_utf8(signing.private_key_to_pem().unwrap()).unwrap();
    let key: ServiceAccountKey = serde_json::from_value(json!({
        "type": "service_account",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "robot@project.iam.gserviceaccount.com",
        "token_uri": format!("{base}/token"),
    }))
    .unwrap();
    let http = GmailClient::http_client().unwrap();
    let tokens = Arc::new(TokenSource::new(key, http.clone()).unwrap());
    GmailClient::new(base, tokens, http).with_retry(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    })
}

/// Runs every public request method of [`GmailClient`] once (some more, with their options)
/// against the recorder at `base`; returns the names of the methods run.
async fn exercise_client(base: &str) -> BTreeSet<&'static str> {
    let gmail = client(base);
    let key_pair = CseKeyPair {
        pkcs7: Some("-----BEGIN PKCS7-----\n-----END PKCS7-----\n".into()),
        private_key_metadata: vec![CsePrivateKeyMetadata {
            kacls_key_metadata: Some(KaclsKeyMetadata {
                kacls_uri: "https://kacls.example.com/google_cse".into(),
                kacls_data: "d3JhcHBlZA".into(),
            }),
            hardware_key_metadata: Some(HardwareKeyMetadata {
                description: "token".into(),
            }),
            ..CsePrivateKeyMetadata::default()
        }],
        ..CseKeyPair::default()
    };
    let identity = CseIdentity {
        email_address: Some(JANE.into()),
        primary_key_pair_id: Some("kp1".into()),
        sign_and_encrypt_key_pairs: None,
    };
    let split_identity = CseIdentity {
        email_address: Some(JANE.into()),
        primary_key_pair_id: None,
        sign_and_encrypt_key_pairs: Some(SignAndEncryptKeyPairs {
            signing_key_pair_id: "kp1".into(),
            encryption_key_pair_id: "kp2".into(),
        }),
    };
    let smime = SmimeInfo {
        pkcs12: Some("cDEy".into()),
        encrypted_key_password: Some("secret".into()),
        is_default: Some(true),
        ..SmimeInfo::default()
    };
    let mut ran = BTreeSet::new();
    macro_rules! run {
        ($name:literal, $call:expr) => {{
            $call.await.unwrap_or_else(|e| panic!("{}: {e}", $name));
            ran.insert($name);
        }};
    }
    run!("preflight", gmail.preflight(JANE));
    run!(
        "create_key_pair",
        gmail.create_key_pair(JANE, &key_pair, ChainValidation::All)
    );
    run!(
        "create_key_pair",
        gmail.create_key_pair("me", &key_pair, ChainValidation::None)
    );
    run!("get_key_pair", gmail.get_key_pair(JANE, "kp1"));
    run!(
        "list_key_pairs_page",
        gmail.list_key_pairs_page(JANE, Some(1), Some("next"))
    );
    run!("list_key_pairs", gmail.list_key_pairs(JANE, Some(20)));
    for action in [
        KeyPairAction::Disable,
        KeyPairAction::Enable,
        KeyPairAction::Obliterate,
    ] {
        run!(
            "key_pair_action",
            gmail.key_pair_action(JANE, "kp1", action)
        );
    }
    run!("create_identity", gmail.create_identity(JANE, &identity));
    run!("get_identity", gmail.get_identity(JANE, JANE));
    run!(
        "patch_identity",
        gmail.patch_identity(JANE, JANE, &split_identity)
    );
    run!("delete_identity", gmail.delete_identity(JANE, JANE));
    run!(
        "list_identities_page",
        gmail.list_identities_page(JANE, Some(1), Some("next"))
    );
    run!("list_identities", gmail.list_identities(JANE, None));
    run!("list_send_as", gmail.list_send_as(JANE));
    run!("get_send_as", gmail.get_send_as(JANE, ALIAS));
    for send_as in [JANE, ALIAS] {
        run!("insert_smime", gmail.insert_smime(JANE, send_as, &smime));
        run!("list_smime", gmail.list_smime(JANE, send_as));
        run!("get_smime", gmail.get_smime(JANE, send_as, "s1"));
        run!(
            "set_default_smime",
            gmail.set_default_smime(JANE, send_as, "s1")
        );
        run!("delete_smime", gmail.delete_smime(JANE, send_as, "s1"));
    }
    ran
}

/// The discovery document's methods: (verb, path template, method).
fn methods(doc: &Value) -> Vec<(String, String, Value)> {
    fn walk(resource: &Value, out: &mut Vec<(String, String, Value)>) {
        if let Some(methods) = resource["methods"].as_object() {
            for method in methods.values() {
                out.push((
                    method["httpMethod"].as_str().unwrap().to_owned(),
                    method["path"].as_str().unwrap().to_owned(),
                    method.clone(),
                ));
            }
        }
        if let Some(resources) = resource["resources"].as_object() {
            for child in resources.values() {
                walk(child, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut out);
    out
}

/// Whether `path` (percent-encoded, from `/`) fits `template` (`gmail/v1/users/{userId}/...`,
/// a variable filling a segment or its part before a literal such as `:disable`).
fn fits(template: &str, path: &str) -> bool {
    let wanted: Vec<&str> = template.split('/').collect();
    let got: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    wanted.len() == got.len()
        && wanted.iter().zip(&got).all(|(w, g)| {
            if let Some(rest) = w.strip_prefix('{') {
                let (_, literal) = rest.split_once('}').unwrap();
                g.len() > literal.len() && g.ends_with(literal)
            } else {
                w == g
            }
        })
}

/// Problems with `value` as an instance of `schema` (resolving `$ref`s), at `at`.
fn check_value(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let schema = match schema["$ref"].as_str() {
        Some(name) => &doc["schemas"][name],
        None => schema,
    };
    let kind = schema["type"].as_str().unwrap_or("object");
    let fits_type = match kind {
        // int64 and bytes travel as strings; a string field must never be a JSON number.
        "string" => value.is_string(),
        "integer" | "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        _ => value.is_object(),
    };
    if !fits_type {
        problems.push(format!("{at}: {value} is not of type {kind}"));
        return;
    }
    if let (Some(allowed), Some(v)) = (schema["enum"].as_array(), value.as_str())
        && !allowed.iter().any(|a| a == v)
    {
        problems.push(format!("{at}: `{v}` is not one of {allowed:?}"));
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_value(doc, &schema["items"], item, &format!("{at}[{i}]"), problems);
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                let property = &schema["properties"][name];
                if property.is_null() {
                    problems.push(format!(
                        "{at}.{name}: no such field in {}",
                        schema["id"].as_str().unwrap_or("the schema")
                    ));
                } else {
                    check_value(doc, property, field, &format!("{at}.{name}"), problems);
                }
            }
        }
        _ => {}
    }
}

/// Problems with one recorded API request, or the discovery method's ID it matched.
fn check_request(doc: &Value, request: &Recorded) -> Result<String, Vec<String>> {
    let all = methods(doc);
    let Some((_, _, method)) = all
        .iter()
        .find(|(verb, template, _)| *verb == request.method && fits(template, &request.path))
    else {
        return Err(vec![format!(
            "{} {}: no method in the discovery document has this verb and path",
            request.method, request.path
        )]);
    };
    let id = method["id"].as_str().unwrap().to_owned();
    let mut problems = Vec::new();
    for (name, value) in &request.query {
        let parameter = match &method["parameters"][name] {
            Value::Null => &doc["parameters"][name],
            p => p,
        };
        if parameter.is_null() || parameter["location"] == "path" {
            problems.push(format!(
                "{id}: query parameter `{name}` is not in the document"
            ));
        } else {
            // A query string carries text; an integer parameter must read as one.
            let value = match parameter["type"].as_str() {
                Some("integer") => value.parse::<i64>().map_or_else(
                    |_| Value::String(value.clone()),
                    |n| Value::Number(n.into()),
                ),
                _ => Value::String(value.clone()),
            };
            check_value(
                doc,
                parameter,
                &value,
                &format!("{id}?{name}"),
                &mut problems,
            );
        }
    }
    match (&method["request"], request.body.is_empty()) {
        (Value::Null, true) => {}
        (Value::Null, false) => problems.push(format!("{id}: sends a body, the method takes none")),
        (_, true) => problems.push(format!("{id}: sends no body, the method takes one")),
        (schema, false) => match serde_json::from_slice::<Value>(&request.body) {
            Ok(body) => check_value(doc, schema, &body, &id, &mut problems),
            Err(e) => problems.push(format!("{id}: the body is not JSON ({e})")),
        },
    }
    if problems.is_empty() {
        Ok(id)
    } else {
        Err(problems)
    }
}

/// Public request methods of the client, read from its source: a new one must be exercised.
fn client_methods() -> BTreeSet<String> {
    let source = include_str!("../src/client.rs");
    let api = &source[source.find("impl GmailClient").unwrap()..];
    let api = &api[..api.find("\n}\n").unwrap()];
    api.lines()
        .filter_map(|line| line.trim().strip_prefix("pub async fn "))
        .map(|rest| rest.split(['(', '<']).next().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_the_client_makes_is_in_googles_discovery_document() {
    let Some(doc) = mailpki_test_support::gmail_discovery_document() else {
        return;
    };
    let log: Log = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(record).with_state(log.clone());
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let ran = exercise_client(&base).await;
    server.abort();

    let missed: Vec<_> = client_methods()
        .into_iter()
        .filter(|m| !ran.contains(m.as_str()))
        .collect();
    assert!(missed.is_empty(), "not exercised here: {missed:?}");

    let recorded = log.lock().unwrap().clone();
    let mut matched = BTreeSet::new();
    let mut problems = Vec::new();
    for request in recorded.iter().filter(|r| r.path != "/token") {
        match check_request(&doc, request) {
            Ok(id) => {
                matched.insert(id);
            }
            Err(p) => problems.extend(p),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The methods mailpki relies on, each reached at least once.
    for id in [
        "gmail.users.settings.cse.keypairs.create",
        "gmail.users.settings.cse.keypairs.get",
        "gmail.users.settings.cse.keypairs.list",
        "gmail.users.settings.cse.keypairs.disable",
        "gmail.users.settings.cse.keypairs.enable",
        "gmail.users.settings.cse.keypairs.obliterate",
        "gmail.users.settings.cse.identities.create",
        "gmail.users.settings.cse.identities.get",
        "gmail.users.settings.cse.identities.list",
        "gmail.users.settings.cse.identities.patch",
        "gmail.users.settings.cse.identities.delete",
        "gmail.users.settings.sendAs.list",
        "gmail.users.settings.sendAs.get",
        "gmail.users.settings.sendAs.smimeInfo.insert",
        "gmail.users.settings.sendAs.smimeInfo.list",
        "gmail.users.settings.sendAs.smimeInfo.get",
        "gmail.users.settings.sendAs.smimeInfo.setDefault",
        "gmail.users.settings.sendAs.smimeInfo.delete",
    ] {
        assert!(
            matched.contains(id),
            "{id} never requested; got {matched:?}"
        );
    }
    // Body-less POSTs say so: Google's front end answers 411 otherwise.
    let set_default = recorded
        .iter()
        .find(|r| r.path.ends_with("/setDefault"))
        .unwrap();
    assert!(set_default.body.is_empty());
}

/// The checker itself finds what it is there to find.
#[tokio::test]
async fn the_checker_catches_a_wrong_verb_a_wrong_field_and_a_wrong_enum() {
    let Some(doc) = mailpki_test_support::gmail_discovery_document() else {
        return;
    };
    let request = |method: &str, path: &str, query: &[(&str, &str)], body: &str| Recorded {
        method: method.into(),
        path: path.into(),
        query: query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        body: Bytes::from(body.to_owned()),
    };
    let base = "/gmail/v1/users/me/settings";
    let good = request(
        "POST",
        &format!("{base}/cse/keypairs"),
        &[("chainValidation", "none")],
        r#"{"pkcs7":"x","privateKeyMetadata":[{"kaclsKeyMetadata":{"kaclsUri":"u","kaclsData":"d"}}]}"#,
    );
    assert_eq!(
        check_request(&doc, &good).unwrap(),
        "gmail.users.settings.cse.keypairs.create"
    );
    let cases = [
        (
            request("PUT", &format!("{base}/cse/keypairs"), &[], "{}"),
            "no method",
        ),
        (
            request(
                "POST",
                &format!("{base}/cse/keypairs"),
                &[],
                r#"{"privateKeyMetadata":[{"kaclsKeyMetadata":{"kaclsUrl":"u"}}]}"#,
            ),
            "kaclsUrl: no such field",
        ),
        (
            request(
                "POST",
                &format!("{base}/cse/keypairs"),
                &[("chainValidation", "some")],
                "{}",
            ),
            "is not one of",
        ),
        (
            request(
                "POST",
                &format!("{base}/sendAs/{JANE}/smimeInfo"),
                &[],
                r#"{"expiration":1798761600000}"#,
            ),
            "is not of type string",
        ),
        (
            request(
                "POST",
                &format!("{base}/sendAs/{JANE}/smimeInfo/s1/setDefault"),
                &[],
                "{}",
            ),
            "takes none",
        ),
        (
            request(
                "GET",
                &format!("{base}/cse/identities"),
                &[("limit", "5")],
                "",
            ),
            "`limit` is not in the document",
        ),
        (
            request(
                "GET",
                &format!("{base}/cse/identities"),
                &[("pageSize", "all")],
                "",
            ),
            "is not of type integer",
        ),
    ];
    for (bad, expected) in cases {
        let problems = check_request(&doc, &bad).expect_err(expected);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected}: {problems:?}"
        );
    }
}

/// The golden replies the wire types are tested against (our reading of Google's reference)
/// are themselves instances of the discovery document's schemas.
#[test]
fn the_golden_replies_fit_the_discovery_schemas() {
    let Some(doc) = mailpki_test_support::gmail_discovery_document() else {
        return;
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/golden");
    let mut problems = Vec::new();
    for (file, schema) in [
        ("cse_identities_list.json", "ListCseIdentitiesResponse"),
        ("cse_identity.json", "CseIdentity"),
        ("cse_key_pair.json", "CseKeyPair"),
        ("cse_key_pair_create.json", "CseKeyPair"),
        ("cse_key_pairs_list.json", "ListCseKeyPairsResponse"),
        ("send_as_list.json", "ListSendAsResponse"),
        ("smime_info.json", "SmimeInfo"),
    ] {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        check_value(
            &doc,
            &json!({ "$ref": schema }),
            &value,
            file,
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
