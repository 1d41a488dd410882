//! The test IdP: answers the filter's discovery and JWKS calls.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use wasm_test_harness::{Harness, HttpCall, Request};

use super::tokens::{self, Key};
use super::{CLUSTER, ISSUER, REALM};

pub const DISCOVERY_PATH: &str = "/pool/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/pool/jwks";

pub fn discovery() -> Value {
    json!({
        "issuer": ISSUER,
        "jwks_uri": format!("https://{REALM}{JWKS_PATH}"),
        "authorization_endpoint": format!("https://{REALM}/oauth2/authorize"),
        "token_endpoint": format!("https://{REALM}/oauth2/token"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// The published keys: `test-rsa` and `test-ec`.
pub fn jwks() -> Value {
    jwks_of(&[(Key::Rsa, "test-rsa"), (Key::Ec, "test-ec")])
}

pub fn jwks_of(keys: &[(Key, &str)]) -> Value {
    json!({ "keys": keys.iter().map(|(k, kid)| tokens::jwk(*k, kid)).collect::<Vec<_>>() })
}

/// Checks a call is `GET <issuer><path>` to the IdP cluster.
pub fn assert_get(call: &HttpCall, path: &str) {
    assert_eq!(call.cluster(), CLUSTER, "cluster of {}", call.path());
    assert_eq!(call.method(), "GET", "method of {}", call.path());
    assert_eq!(call.authority(), REALM, ":authority of {}", call.path());
    assert_eq!(call.path(), path);
}

/// Answers the discovery then the JWKS call `req` makes (asserting both).
pub fn serve_keys(req: &Request) {
    let call = req.expect_http_call(CLUSTER);
    assert_get(&call, DISCOVERY_PATH);
    call.respond_json(200, &discovery());
    let call = req.expect_http_call(CLUSTER);
    assert_get(&call, JWKS_PATH);
    call.respond_json(200, &jwks());
}

/// Answers whatever IdP calls are pending (discovery, JWKS), until none are.
pub fn drive(h: &Harness) {
    for _ in 0..10 {
        let Some(call) = h.pending_calls().into_iter().next() else {
            return;
        };
        let body = match call.path().as_str() {
            DISCOVERY_PATH => discovery(),
            JWKS_PATH => jwks(),
            other => panic!("unexpected IdP call to {other}"),
        };
        call.respond_json(200, &body);
    }
    panic!("the filter keeps calling the IdP");
}

/// A harness whose worker 0 has fetched discovery and JWKS already.
pub fn warm(h: &Harness) {
    let req = super::bearer(h, &tokens::rs256(&tokens::claims(h)));
    serve_keys(&req);
    req.expect_continue();
}

/// The hosted-UI host of the Cognito-shaped IdP: token, authorize, revoke
/// and logout live there, not on the issuer's host.
pub const AUTH_HOST: &str = "auth.example.com";
/// The Envoy cluster for `AUTH_HOST` (`idp_clusters`).
pub const TOKEN_CLUSTER: &str = "idp_token";
pub const TOKEN_PATH: &str = "/oauth2/token";
pub const AUTHORIZE_PATH: &str = "/oauth2/authorize";
pub const REVOKE_PATH: &str = "/oauth2/revoke";
pub const END_SESSION_PATH: &str = "/logout";

/// A discovery document whose token endpoint (and login pages) are on
/// `AUTH_HOST`, as Amazon Cognito's are.
pub fn split_discovery() -> Value {
    json!({
        "issuer": ISSUER,
        "jwks_uri": format!("https://{REALM}{JWKS_PATH}"),
        "authorization_endpoint": format!("https://{AUTH_HOST}{AUTHORIZE_PATH}"),
        "token_endpoint": format!("https://{AUTH_HOST}{TOKEN_PATH}"),
        "revocation_endpoint": format!("https://{AUTH_HOST}{REVOKE_PATH}"),
        "end_session_endpoint": format!("https://{AUTH_HOST}{END_SESSION_PATH}"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
}

/// Answers the oldest pending discovery fetch (anyone's) with `doc`.
pub fn serve_discovery(h: &Harness, doc: &Value) {
    let call = h.expect_http_call(CLUSTER);
    assert_get(&call, DISCOVERY_PATH);
    call.respond_json(200, doc);
}

/// Answers the oldest pending JWKS fetch (anyone's).
pub fn serve_jwks(h: &Harness) {
    let call = h.expect_http_call(CLUSTER);
    assert_get(&call, JWKS_PATH);
    call.respond_json(200, &jwks());
}

/// A token endpoint's success answer.
pub fn token_response(access_token: &str, expires_in: u64) -> Value {
    json!({"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in})
}

/// Checks a call is a form POST to `path` on `AUTH_HOST` through
/// `TOKEN_CLUSTER`; returns its form parameters.
pub fn assert_post(call: &HttpCall, path: &str) -> BTreeMap<String, String> {
    assert_eq!(call.cluster(), TOKEN_CLUSTER, "cluster of {}", call.path());
    assert_eq!(call.method(), "POST", "method of {}", call.path());
    assert_eq!(call.authority(), AUTH_HOST, ":authority of {}", call.path());
    assert_eq!(call.path(), path);
    assert_eq!(
        call.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    form(&call.body_str())
}

/// A form-encoded string (body or query) as a map; a repeated name keeps
/// its first value.
pub fn form(text: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(text.as_bytes()) {
        map.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    map
}

/// `Basic base64(id:secret)`, as a client (or the filter) sends it.
pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}
