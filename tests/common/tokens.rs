//! JWTs signed at test time with the fixture keys: the token kit of
//! `envoy_oidc_testkit::tokens`, with the harness's own claims (its
//! issuer, its clock).

use serde_json::{Value, json};
use wasm_test_harness::Harness;

pub use envoy_oidc_testkit::tokens::{Key, es256, jwk, rs256, with};

use super::ISSUER;

/// Signs `header.claims` with `key`, whatever alg the header names (RS256
/// for RSA keys, ES256 for the EC key).
pub fn sign(key: Key, header: &Value, claims: &Value) -> String {
    envoy_oidc_testkit::tokens::sign_with(key, header, claims)
}

/// Valid Cognito-shaped access-token claims at the harness clock.
pub fn claims(h: &Harness) -> Value {
    let now = h.unix_now();
    json!({
        "sub": "client-1",
        "iss": ISSUER,
        "client_id": "client-1",
        "token_use": "access",
        "scope": "kongresource/scope1",
        "iat": now,
        "exp": now + 300,
        "jti": "b9b2b7f0",
        "version": 2,
    })
}
