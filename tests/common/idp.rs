//! The test IdP: answers the filter's discovery and JWKS calls.

use serde_json::{Value, json};
use wasm_test_harness::{Harness, HttpCall, Request};

use super::tokens::{self, Key};
use super::{CLUSTER, ISSUER, REALM};

pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const JWKS_PATH: &str = "/jwks";

pub fn discovery() -> Value {
    json!({
        "issuer": ISSUER,
        "jwks_uri": format!("{ISSUER}{JWKS_PATH}"),
        "authorization_endpoint": format!("{ISSUER}/oauth2/authorize"),
        "token_endpoint": format!("{ISSUER}/oauth2/token"),
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
