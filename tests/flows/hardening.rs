//! Issue 14's hardening, each gap reproduced through the fake host:
//! introspection answers for something other than an access token, a
//! kid-less token tried against every key of a large JWKS, and
//! double-encoded path segments under a bypass prefix.

use envoy_oidc::action::{IdpReply, IdpRequest};
use envoy_oidc::error::TokenError;
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::tokens::{self, ISSUER, Key};
use serde_json::{Value, json};

use crate::{
    NOW, assert_invalid, at, config, healthy, is_continue, request, response, token_calls, world,
    world_with,
};

// --- Introspection: `active: true` for a token that is not an access token.

/// The `token_type`s the scripted IdP reports, for the opaque token
/// `opaque-<index>` (`None`: the member is absent), and whether each is an
/// access token's.
fn token_types() -> Vec<(Option<Value>, bool)> {
    let accepted = [
        None,
        Some(Value::Null),
        Some(json!("Bearer")),
        Some(json!("bearer")),
        Some(json!("BEARER")),
        Some(json!("access_token")),
        Some(json!("urn:ietf:params:oauth:token-type:access_token")),
    ];
    let refused = [
        json!("refresh_token"),
        json!("urn:ietf:params:oauth:token-type:refresh_token"),
        json!("id_token"),
        json!("N_A"),
        json!(""),
        json!("Access_Token"),
        json!(["access_token"]),
        json!(1),
    ];
    accepted
        .into_iter()
        .map(|t| (t, true))
        .chain(refused.into_iter().map(|t| (Some(t), false)))
        .collect()
}

fn introspect_by_type(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
    let i: usize = body
        .strip_prefix("token=opaque-")
        .and_then(|rest| rest.split('&').next())
        .and_then(|n| n.parse().ok())
        .expect("an opaque-<i> token");
    let mut answer = json!({"active": true, "scope": "read", "client_id": "c1",
                            "exp": NOW + 100, "iss": ISSUER});
    if let Some(t) = token_types().swap_remove(i).0 {
        answer["token_type"] = t;
    }
    IdpReply {
        status: Some(200),
        body: answer.to_string().into_bytes(),
        retry_after: None,
    }
}

fn introspection_world() -> World {
    world_with(
        json!({"client_id": "rs", "client_secret": "rs-secret",
               "introspection_endpoint": "https://idp.example.com/introspect",
               "scopes_required": ["read"]}),
        healthy,
        introspect_by_type,
    )
}

#[test]
fn introspection_accepts_only_access_token_types() {
    for (i, (token_type, accepted)) in token_types().into_iter().enumerate() {
        let mut w = introspection_world();
        let req = request(&[&format!("Bearer opaque-{i}")]);
        let d = at(&mut w, NOW, req.clone());
        if accepted {
            assert!(is_continue(&d), "token_type {token_type:?}: {d:?}");
        } else {
            assert!(!is_continue(&d), "token_type {token_type:?} passed");
            assert_invalid(&d, TokenError::NotAccessToken);
            // Remembered like an inactive token: no second call.
            assert_invalid(&at(&mut w, NOW + 1, req), TokenError::NotAccessToken);
        }
        assert_eq!(token_calls(&w).len(), 1, "token_type {token_type:?}");
    }
}

// --- A token without `kid`: at most 3 keys of a fitting type are tried.

/// A world whose IdP publishes `keys` as its JWKS.
fn world_with_keys(keys: Vec<Value>) -> World {
    let jwks = serde_json::to_vec(&json!({ "keys": keys })).unwrap();
    World::new(
        &config(json!({})),
        1,
        NOW,
        move |r, _now| match crate::document(r) {
            Some(Document::Jwks) => IdpReply {
                status: Some(200),
                body: jwks.clone(),
                retry_after: None,
            },
            Some(d) => healthy(d),
            None => panic!("no other IdP call expected: {r:?}"),
        },
    )
}

/// An RS256 token with no `kid`, signed by `key`.
fn kidless(key: Key) -> String {
    tokens::sign_with(
        key,
        &json!({"alg": "RS256", "typ": "JWT"}),
        &tokens::access_claims(NOW),
    )
}

fn kidless_request(w: &mut World, key: Key) -> envoy_oidc::action::Decision {
    at(w, NOW, request(&[&format!("Bearer {}", kidless(key))]))
}

#[test]
fn a_kidless_token_is_tried_against_at_most_three_fitting_keys() {
    // Four RSA keys that do not sign (the same public key under four kids)
    // before the one that does, the 5th.
    let decoys = |n: usize| -> Vec<Value> {
        (1..=n)
            .map(|i| tokens::jwk(Key::OtherRsa, &format!("decoy-{i}")))
            .collect()
    };
    let mut keys = decoys(4);
    keys.push(tokens::jwk(Key::Rsa, "signer"));
    let mut w = world_with_keys(keys);
    assert_invalid(&kidless_request(&mut w, Key::Rsa), TokenError::BadSignature);
    // The same key named by its kid is found whatever its position.
    let named = tokens::sign_with(
        Key::Rsa,
        &json!({"alg": "RS256", "kid": "signer"}),
        &tokens::access_claims(NOW),
    );
    assert!(is_continue(&at(
        &mut w,
        NOW,
        request(&[&format!("Bearer {named}")])
    )));
    // Signed by the 1st key: found.
    let mut keys = decoys(4);
    keys.push(tokens::jwk(Key::Rsa, "signer"));
    let mut w = world_with_keys(keys);
    let d = kidless_request(&mut w, Key::OtherRsa);
    assert!(is_continue(&d), "{d:?}");

    // The 4th fitting key is already one too many ...
    let mut keys = decoys(3);
    keys.push(tokens::jwk(Key::Rsa, "signer"));
    let mut w = world_with_keys(keys);
    assert_invalid(&kidless_request(&mut w, Key::Rsa), TokenError::BadSignature);
    // ... the 3rd is tried, and keys of another type do not count: here the
    // signer is the 5th key of the set but the 3rd RSA key.
    let mut keys = vec![tokens::jwk(Key::Ec, "ec"), tokens::jwk(Key::Ed, "ed")];
    keys.extend(decoys(2));
    keys.push(tokens::jwk(Key::Rsa, "signer"));
    let mut w = world_with_keys(keys);
    let d = kidless_request(&mut w, Key::Rsa);
    assert!(is_continue(&d), "{d:?}");
}

// --- Bypass paths: a double-encoded `.`, `/` or `\` never bypasses.

fn get(path: &str) -> RequestView {
    RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), path.as_bytes().to_vec()),
    ])
}

#[test]
fn double_encoded_dots_and_slashes_never_bypass() {
    let cfg = json!({"bypass_paths": ["/public", "/status$"]});
    for path in [
        "/public/%252e%252e/admin",
        "/public/%252E%252E/admin",
        "/public%252fadmin",
        "/public/%252Fadmin",
        "/public/%255cadmin",
        "/public/%255Cadmin",
        "/public/x%252e",
        // Encoded more than twice.
        "/public/%25252e%25252e/admin",
        "/public/%2525252F..",
        // Twice, the second time with the hex digits encoded too.
        "/public/%25%32%65%25%32%65/admin",
        "/public/%25%35%43admin",
    ] {
        let mut w = world(cfg.clone());
        let d = at(&mut w, NOW, get(path));
        assert!(!is_continue(&d), "{path} bypassed");
        assert_eq!(response(&d).status, 401, "{path}: {d:?}");
        assert!(w.calls.is_empty(), "{path}");
    }
    // A literal percent, a double-encoded space: nothing ambiguous.
    for path in [
        "/public/logo.png",
        "/public/100%25",
        "/public/file%2520name",
        "/public/a%20b",
        "/status",
    ] {
        let mut w = world(cfg.clone());
        let d = at(&mut w, NOW, get(path));
        assert!(is_continue(&d), "{path}: {d:?}");
        assert!(w.calls.is_empty(), "{path}");
    }
}

// --- The schema's word on each policy refusal is the filter's status.

#[test]
fn schema_descriptions_give_the_status_of_each_policy_refusal() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.schema.json"))
            .unwrap(),
    )
    .unwrap();
    let token = tokens::rs256(&tokens::access_claims(NOW));
    for (key, value) in [
        ("scopes_required", json!(["admin"])),
        ("audience_required", json!(["somebody-else"])),
        ("groups_required", json!(["admins"])),
        ("roles_required", json!(["admin"])),
        ("claims_forbidden", json!(["sub"])),
    ] {
        let (d, _) = crate::bearer(json!({ key: value }), &token);
        let status = response(&d).status;
        let description = schema["properties"][key]["description"].as_str().unwrap();
        for other in [401, 403] {
            assert_eq!(
                description.contains(&other.to_string()),
                other == status,
                "{key}: the filter answers {status}; the schema says {description:?}"
            );
        }
    }
}
