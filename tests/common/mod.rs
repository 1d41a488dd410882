//! Shared helpers for the harness tests: where the module is, the test IdP
//! (discovery document, JWKS), and tokens minted at test time with the
//! fixture keys.
#![allow(dead_code)] // each test binary uses its own subset

pub mod cookies;
pub mod idp;
pub mod tokens;

use std::path::PathBuf;

use serde_json::{Value, json};
use wasm_test_harness::{Harness, Request};

/// The one test issuer of the workspace (testkit's).
pub use envoy_oidc_testkit::ISSUER;
pub const REALM: &str = "idp.example.com";
pub const CLUSTER: &str = "idp";

/// The filter module: `$OIDC_WASM`, else what `./build.sh` produces.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("OIDC_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/wasm/envoy_oidc.wasm")
        });
    assert!(
        path.is_file(),
        "{} does not exist: run ./build.sh first (or point OIDC_WASM at a built filter)",
        path.display()
    );
    path
}

/// The configuration of the contract's examples (Cognito-shaped tokens).
pub fn config() -> Value {
    json!({
        "issuer": ISSUER,
        "idp_cluster": CLUSTER,
        "scopes_required": ["kongresource/scope1"],
        "audience_claim": ["client_id"],
    })
}

/// A harness running the filter with `config`, the IdP cluster declared.
pub fn harness_with(config: &Value) -> Harness {
    Harness::load(wasm_path())
        .and_then(|b| b.cluster(CLUSTER).configure(config.to_string()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A harness running `config` on `workers` workers, `clusters` declared.
pub fn harness_on(config: &Value, clusters: &[&str], workers: usize) -> Harness {
    Harness::load(wasm_path())
        .and_then(|b| {
            clusters
                .iter()
                .fold(b.workers(workers), |b, c| b.cluster(c))
                .configure(config.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn harness() -> Harness {
    harness_with(&config())
}

/// A GET through the gateway carrying `authorization` (if any).
pub fn get(h: &Harness, authorization: Option<&str>) -> Request {
    get_on(h, 0, authorization)
}

pub fn get_on(h: &Harness, worker: usize, authorization: Option<&str>) -> Request {
    let mut headers = vec![
        (":method", "GET"),
        (":path", "/oidcroute/get"),
        (":authority", "gw.example.com"),
        (":scheme", "https"),
    ];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    h.request_on(worker, &headers)
}

pub fn bearer(h: &Harness, token: &str) -> Request {
    get(h, Some(&format!("Bearer {token}")))
}

/// Asserts a 401 for a request that carried a token.
pub fn assert_invalid_token(req: &Request) {
    let reply = req.expect_local_response(401);
    let www = reply.header("www-authenticate").unwrap_or_default();
    let prefix = format!("Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"");
    assert!(
        www.starts_with(&prefix) && www.ends_with('"'),
        "WWW-Authenticate {www:?} should start with {prefix:?} and end with a description"
    );
    reply.assert_body_json(&json!({"message": "Unauthorized"}));
}

/// Asserts a 403 for a valid token that lacks a required scope or audience.
pub fn assert_forbidden(req: &Request) {
    let reply = req.expect_local_response(403);
    let www = reply.header("www-authenticate").unwrap_or_default();
    let prefix = format!("Bearer realm=\"{REALM}\", error=\"insufficient_scope\"");
    assert!(
        www.starts_with(&prefix),
        "WWW-Authenticate {www:?} should start with {prefix:?}"
    );
    reply.assert_body_json(&json!({"message": "Forbidden"}));
}

/// Asserts the IdP-failure reply (`503` or `502`) and its JSON body.
pub fn assert_idp_failure(req: &Request, status: u32) {
    let message = if status == 503 {
        "Service Unavailable"
    } else {
        "Bad Gateway"
    };
    req.expect_local_response(status)
        .assert_body_json(&json!({ "message": message }));
}
