//! Opaque bearer tokens: introspected at the IdP, cached until their `exp`.

use envoy_oidc::action::{Action, IdpReply, IdpRequest};
use envoy_oidc::error::TokenError;
use envoy_oidc_testkit::tokens::{self, ISSUER, Key};
use serde_json::{Value, json};

use crate::{
    NOW, assert_invalid, at, header_of, healthy, request, response, token_calls, world, world_with,
};

fn introspection_config(extra: Value) -> Value {
    let mut c = json!({"client_id": "rs", "client_secret": "rs-secret",
                       "introspection_endpoint": "https://idp.example.com/introspect",
                       "scopes_required": ["read"]});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

fn introspect_answer(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
    let active = body.contains("token=good");
    let answer = if active {
        json!({"active": true, "scope": "read write", "client_id": "c1", "exp": NOW + 100, "iss": ISSUER})
    } else {
        json!({"active": false})
    };
    IdpReply {
        status: Some(200),
        body: answer.to_string().into_bytes(),
        retry_after: None,
    }
}

#[test]
fn opaque_tokens_are_introspected_and_cached() {
    let mut w = world_with(introspection_config(json!({})), healthy, introspect_answer);
    let req = request(&["Bearer good-opaque-token"]);
    let d = at(&mut w, NOW, req.clone());
    assert!(
        matches!(&d.action, Action::Continue { set, .. } if set.is_empty()),
        "goes upstream as it came: {d:?}"
    );
    let call = token_calls(&w)[0].clone();
    assert_eq!(header_of(&call, ":path"), Some("/introspect"));
    assert_eq!(
        header_of(&call, "authorization"),
        Some("Basic cnM6cnMtc2VjcmV0")
    );
    assert_eq!(
        call.body.as_deref(),
        Some(&b"token=good-opaque-token&token_type_hint=access_token"[..])
    );
    assert!(crate::is_continue(&at(&mut w, NOW + 50, req.clone())));
    assert_eq!(token_calls(&w).len(), 1, "cached until exp");
    assert_invalid(&at(&mut w, NOW + 101, req), TokenError::Expired);
}

#[test]
fn without_bearer_a_jwt_is_introspected_too() {
    // Okta's org authorization server issues JWT access tokens that are
    // not for others to verify: with only introspection listed, they are
    // introspected, not refused as bearer tokens.
    let active = |_: &IdpRequest, _: u64| IdpReply {
        status: Some(200),
        body: json!({"active": true, "scope": "read", "exp": NOW + 100, "iss": ISSUER})
            .to_string()
            .into_bytes(),
        retry_after: None,
    };
    let cfg = introspection_config(json!({"auth_methods": ["introspection"]}));
    let mut w = world_with(cfg, healthy, active);
    let jwt = tokens::rs256(&tokens::access_claims(NOW));
    let d = at(&mut w, NOW, request(&[&format!("Bearer {jwt}")]));
    assert!(crate::is_continue(&d), "{d:?}");
    assert_eq!(token_calls(&w).len(), 1, "introspected");
    // With bearer listed too, a JWT is verified here, no call made.
    let local = introspection_config(json!({"scopes_required": ["kongresource/scope1"]}));
    let mut w = world_with(local, healthy, active);
    let d = at(&mut w, NOW, request(&[&format!("Bearer {jwt}")]));
    assert!(crate::is_continue(&d), "{d:?}");
    assert!(token_calls(&w).is_empty());
}

#[test]
fn an_answer_for_an_id_or_refresh_token_is_refused() {
    // Keycloak introspects its ID and refresh tokens too, saying which in
    // `typ`: as bearer tokens they are refused, as when verified here.
    fn answer(r: &IdpRequest, _now: u64) -> IdpReply {
        let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
        let typ = ["ID", "Refresh", "Bearer"]
            .into_iter()
            .find(|t| body.contains(&format!("token={t}-")))
            .unwrap();
        IdpReply {
            status: Some(200),
            body: json!({"active": true, "scope": "read", "exp": NOW + 100, "iss": ISSUER,
                         "typ": typ})
            .to_string()
            .into_bytes(),
            retry_after: None,
        }
    }
    let mut w = world_with(introspection_config(json!({})), healthy, answer);
    for typ in ["ID", "Refresh"] {
        let d = at(&mut w, NOW, request(&[&format!("Bearer {typ}-token")]));
        assert_invalid(&d, TokenError::NotAccessToken);
    }
    let d = at(&mut w, NOW, request(&["Bearer Bearer-token"]));
    assert!(crate::is_continue(&d), "{d:?}");
}

#[test]
fn hydras_answers_say_token_use_access_token() {
    // Ory Hydra (fosite) answers `token_use: access_token` for its access
    // tokens, `refresh_token` for its refresh tokens.
    fn answer(r: &IdpRequest, _now: u64) -> IdpReply {
        let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
        let token_use = if body.contains("token=refresh-") {
            "refresh_token"
        } else {
            "access_token"
        };
        IdpReply {
            status: Some(200),
            body: json!({"active": true, "scope": "read", "exp": NOW + 100, "iss": ISSUER,
                         "token_type": "Bearer", "token_use": token_use})
            .to_string()
            .into_bytes(),
            retry_after: None,
        }
    }
    let mut w = world_with(introspection_config(json!({})), healthy, answer);
    let d = at(&mut w, NOW, request(&["Bearer access-token"]));
    assert!(crate::is_continue(&d), "{d:?}");
    let d = at(&mut w, NOW, request(&["Bearer refresh-token"]));
    assert_invalid(&d, TokenError::NotAccessToken);
}

#[test]
fn introspections_the_budget_refuses_sign_no_client_assertion() {
    // With private_key_jwt an RS256 assertion takes ~9 ms of the worker: a
    // flood of unknown opaque tokens past the budget must not pay one each
    // (it paid two: one when the call was made, one when the flow ran
    // again to fail).
    let mut jwk = tokens::private_jwk(Key::Rsa, "gw");
    jwk.as_object_mut().unwrap().remove("alg");
    let cfg = introspection_config(json!({
        "client_auth": ["private_key_jwt"], "client_jwk": [jwk],
        "idp_call_budget": {"introspection": {"per_second": 1, "burst": 1}}}));
    let mut w = world_with(cfg, healthy, introspect_answer);
    for n in 0..5 {
        let d = at(&mut w, NOW, request(&[&format!("Bearer opaque-{n}")]));
        assert_eq!(response(&d).status, if n == 0 { 401 } else { 503 }, "{d:?}");
    }
    let calls = token_calls(&w);
    assert_eq!(calls.len(), 1, "the budget's one call");
    let body = String::from_utf8(calls[0].body.clone().unwrap()).unwrap();
    assert!(body.contains("&client_assertion="), "{body}");
    w.tick(0);
    let signed = w.workers[0]
        .host
        .counters
        .get("oidc_client_assertions_signed");
    assert_eq!(signed.copied(), Some(1));
}

#[test]
fn an_opaque_token_longer_than_a_jwt_may_be_is_refused_uncalled() {
    // Each answer keeps its token whole: 60 KiB tokens, each answered,
    // held ~64 KB an entry. Refused as a JWT that long is (16 KiB).
    let mut w = world_with(introspection_config(json!({})), healthy, introspect_answer);
    let long = format!("Bearer {}", "g".repeat(16 * 1024 + 1));
    assert_invalid(&at(&mut w, NOW, request(&[&long])), TokenError::TooLarge);
    assert!(token_calls(&w).is_empty());
    let at_the_cap = format!("Bearer {}", "g".repeat(16 * 1024));
    at(&mut w, NOW, request(&[&at_the_cap]));
    assert_eq!(token_calls(&w).len(), 1, "introspected");
}

#[test]
fn a_throttled_introspection_is_503_not_asked_again_before_retry_after() {
    let mut w = world_with(introspection_config(json!({})), healthy, |_, _| IdpReply {
        status: Some(429),
        body: vec![],
        retry_after: Some(5),
    });
    let req = request(&["Bearer good-opaque-token"]);
    let retry_after = |d: &envoy_oidc::action::Decision| {
        let r = response(d);
        assert_eq!(r.status, 503);
        let h = r.headers.iter().find(|(n, _)| n == "retry-after");
        h.map(|(_, v)| v.clone())
    };
    assert_eq!(
        retry_after(&at(&mut w, NOW, req.clone())).as_deref(),
        Some("5")
    );
    // Served from the cache, the wait that remains.
    assert_eq!(
        retry_after(&at(&mut w, NOW + 4, req.clone())).as_deref(),
        Some("1")
    );
    assert_eq!(token_calls(&w).len(), 1);
    at(&mut w, NOW + 5, req);
    assert_eq!(token_calls(&w).len(), 2);
}

#[test]
fn inactive_or_unscoped_opaque_tokens_are_refused() {
    let mut w = world_with(introspection_config(json!({})), healthy, introspect_answer);
    let d = at(&mut w, NOW, request(&["Bearer revoked-token"]));
    assert_invalid(&d, TokenError::Inactive);
    // The IdP answered: no IdP failure counted, no warning (a flood of
    // made-up tokens must not read as an outage).
    w.tick(0);
    let counters = &w.workers[0].host.counters;
    assert_eq!(
        counters.get("oidc_idp_introspection_refused"),
        Some(&1),
        "{counters:?}"
    );
    assert_eq!(
        counters.get("oidc_idp_introspection_error"),
        None,
        "{counters:?}"
    );
    assert!(
        !w.logs(0)
            .iter()
            .any(|(l, _)| *l == envoy_oidc::engine::Level::Warn),
        "{:?}",
        w.logs(0)
    );
    let mut w = world_with(
        introspection_config(json!({"scopes_required": ["admin"]})),
        healthy,
        introspect_answer,
    );
    let d = at(&mut w, NOW, request(&["Bearer good-token"]));
    assert_eq!(response(&d).status, 403);
    // Without introspection, an opaque token is simply malformed.
    let mut w = world_with(json!({}), healthy, introspect_answer);
    let d = at(&mut w, NOW, request(&["Bearer good-token"]));
    assert_invalid(
        &d,
        TokenError::Malformed("token is not three dot-separated parts"),
    );
}

#[test]
fn opaque_tokens_without_an_introspection_endpoint_are_401_not_502() {
    let mut w = world(json!({"client_id": "rs", "client_secret": "rs-secret"}));
    let d = at(&mut w, NOW, request(&["Bearer not.a-jwt"]));
    assert_invalid(
        &d,
        TokenError::Malformed("the IdP has no introspection endpoint to check the token at"),
    );
}

#[test]
fn the_introspection_answer_goes_upstream_and_downstream_when_asked() {
    use base64::Engine;
    let cfg = introspection_config(json!({"upstream_introspection_header": "x-introspection",
                                          "downstream_introspection_header": "x-introspected"}));
    let mut w = world_with(cfg, healthy, introspect_answer);
    let d = at(&mut w, NOW, request(&["Bearer good-opaque-token"]));
    let Action::Continue { set, response, .. } = &d.action else {
        panic!("{d:?}")
    };
    for (list, name) in [(set, "x-introspection"), (response, "x-introspected")] {
        let v = &list.iter().find(|(n, _)| n == name).expect(name).1;
        let json: Value =
            serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(v).unwrap())
                .unwrap();
        assert_eq!(
            (json["active"].as_bool(), json["client_id"].as_str()),
            (Some(true), Some("c1"))
        );
    }
}

/// Answers a map of which would not read (half a surrogate pair, a number
/// beyond f64) are the IdP's garbage: a 502, never a pass, whatever member
/// holds them (the claims are held lazily, in `JsonObject`).
fn unreadable_answer(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
    let bodies = [
        r#"{"active":true,"token_type":"refresh_token\ud800","iss":"ISS","exp":EXP}"#,
        r#"{"active":true,"token_type":1e400,"iss":"ISS","exp":EXP}"#,
        r#"{"active":true,"iss":"https://evil\udc00","exp":EXP}"#,
        r#"{"active":true,"scope":"read","unread":[1,2e999],"iss":"ISS","exp":EXP}"#,
    ];
    let n: usize = body
        .strip_prefix("token=bad")
        .and_then(|rest| rest.split('&').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    let text = bodies[n]
        .replace("ISS", ISSUER)
        .replace("EXP", &(NOW + 100).to_string());
    IdpReply {
        status: Some(200),
        body: text.into_bytes(),
        retry_after: None,
    }
}

#[test]
fn answers_with_values_that_do_not_read_are_refused() {
    for n in 0..4 {
        let mut w = world_with(introspection_config(json!({})), healthy, unreadable_answer);
        let d = at(&mut w, NOW, request(&[&format!("Bearer bad{n}")]));
        assert_eq!(response(&d).status, 502, "answer {n}: {d:?}");
    }
}

/// An active answer shaped by the token introspected: `nbf` or `iat` ten
/// minutes ahead, an `iss` that is no name, or none of these.
fn shaped_answer(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
    let mut answer = json!({"active": true, "scope": "read", "iss": ISSUER});
    if body.contains("token=early&") {
        answer["nbf"] = json!(NOW + 600);
    } else if body.contains("token=issued-later&") {
        answer["iat"] = json!(NOW + 600);
    } else if body.contains("token=no-name&") {
        answer["iss"] = json!(7);
    }
    IdpReply {
        status: Some(200),
        body: answer.to_string().into_bytes(),
        retry_after: None,
    }
}

#[test]
fn an_answer_not_yet_valid_or_naming_no_issuer_is_refused() {
    // RFC 7662's `nbf` and `iat` count whether the answer gives `exp` or not.
    let mut w = world_with(
        introspection_config(json!({"leeway": 0})),
        healthy,
        shaped_answer,
    );
    let mut run = |token: &str| at(&mut w, NOW, request(&[&format!("Bearer {token}")]));
    assert_invalid(&run("early"), TokenError::NotYetValid);
    assert_invalid(&run("issued-later"), TokenError::IssuedInFuture);
    // An `iss` that names no issuer at all is not the configured one.
    assert_invalid(&run("no-name"), TokenError::WrongIssuer);
    assert!(crate::is_continue(&run("plain")));
}
