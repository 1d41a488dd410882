//! Bearer tokens through the compiled filter: the happy path, caching of
//! discovery and JWKS, and every rejection with its status and header.

use std::time::Duration;

use crate::common::idp::{self, drive, serve_keys, warm};
use crate::common::tokens::{self, Key, claims, es256, rs256, with};
use crate::common::*;
use serde_json::json;

#[test]
fn valid_rs256_token_continues_with_the_token_upstream() {
    let h = harness();
    let token = rs256(&claims(&h));
    let req = bearer(&h, &token);
    req.expect_paused();
    serve_keys(&req);
    req.expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
}

#[test]
fn valid_es256_token_continues() {
    let h = harness();
    warm(&h);
    let token = es256(&claims(&h));
    bearer(&h, &token)
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
}

#[test]
fn issuer_given_as_discovery_url_fetches_the_same_document() {
    let mut config = config();
    config["issuer"] = json!(format!("{ISSUER}/.well-known/openid-configuration"));
    let h = harness_with(&config);
    let req = bearer(&h, &rs256(&claims(&h)));
    serve_keys(&req);
    req.expect_continue();
}

#[test]
fn second_request_makes_no_idp_call() {
    let h = harness();
    warm(&h);
    let req = bearer(&h, &rs256(&with(claims(&h), &json!({"jti": "second"}))));
    req.expect_no_http_call();
    req.expect_continue();
    h.expect_no_http_call();
}

#[test]
fn requests_arriving_during_a_fetch_share_it() {
    let h = harness();
    let first = bearer(&h, &rs256(&claims(&h)));
    let second = bearer(&h, &es256(&claims(&h)));
    first.expect_paused();
    second.expect_paused();
    assert_eq!(
        h.pending_calls().len(),
        1,
        "one discovery fetch for both requests"
    );
    let discovery = h.expect_http_call(CLUSTER);
    idp::assert_get(&discovery, idp::DISCOVERY_PATH);
    discovery.respond_json(200, &idp::discovery());
    second.expect_paused();
    assert_eq!(
        h.pending_calls().len(),
        1,
        "one JWKS fetch for both requests"
    );
    let jwks = h.expect_http_call(CLUSTER);
    idp::assert_get(&jwks, idp::JWKS_PATH);
    jwks.respond_json(200, &idp::jwks());
    first.expect_continue();
    second.expect_continue();
}

#[test]
fn unknown_kid_refetches_jwks_once_then_rate_limits() {
    let h = harness();
    warm(&h);
    let rotated = |kid: &str| {
        tokens::sign(
            Key::OtherRsa,
            &json!({"alg": "RS256", "typ": "JWT", "kid": kid}),
            &claims(&h),
        )
    };
    // The IdP rotated in a new key: one JWKS fetch finds it.
    let req = bearer(&h, &rotated("rotated-1"));
    let call = req.expect_http_call(CLUSTER);
    idp::assert_get(&call, idp::JWKS_PATH);
    call.respond_json(
        200,
        &idp::jwks_of(&[(Key::Rsa, "test-rsa"), (Key::OtherRsa, "rotated-1")]),
    );
    req.expect_continue();
    // Another unknown kid right after: no fetch within 30 s.
    let req = bearer(&h, &rotated("rotated-2"));
    req.expect_no_http_call();
    assert_invalid_token(&req);
    // 31 s later the filter may look again.
    h.advance(Duration::from_secs(31));
    let req = bearer(&h, &rotated("rotated-3"));
    let call = req.expect_http_call(CLUSTER);
    idp::assert_get(&call, idp::JWKS_PATH);
    call.respond_json(200, &idp::jwks());
    assert_invalid_token(&req);
}

#[test]
fn a_signature_the_keys_refuse_refetches_them_at_most_every_30_s() {
    // The IdP signs without `kid`, one key at a time, and has just
    // replaced its key: the tokens of the new one verify once the keys
    // are fetched again, which a refused signature now does.
    let h = harness();
    warm(&h);
    let kidless = |key: Key, jti: &str| {
        tokens::sign(
            key,
            &json!({"alg": "RS256", "typ": "JWT"}),
            &with(claims(&h), &json!({ "jti": jti })),
        )
    };
    // Keys fetched a moment ago are what the IdP publishes: refused.
    let req = bearer(&h, &kidless(Key::OtherRsa, "1"));
    req.expect_no_http_call();
    assert_invalid_token(&req);
    h.advance(Duration::from_secs(31));
    let req = bearer(&h, &kidless(Key::OtherRsa, "2"));
    let call = req.expect_http_call(CLUSTER);
    idp::assert_get(&call, idp::JWKS_PATH);
    call.respond_json(200, &idp::jwks_of(&[(Key::OtherRsa, "new")]));
    req.expect_continue();
    // Forgeries (the withdrawn key's, now) spend no more than one fetch
    // per 30 s.
    h.advance(Duration::from_secs(31));
    let req = bearer(&h, &kidless(Key::Rsa, "3"));
    let call = req.expect_http_call(CLUSTER);
    idp::assert_get(&call, idp::JWKS_PATH);
    call.respond_json(200, &idp::jwks_of(&[(Key::OtherRsa, "new")]));
    assert_invalid_token(&req);
    for jti in ["4", "5"] {
        let req = bearer(&h, &kidless(Key::Rsa, jti));
        req.expect_no_http_call();
        assert_invalid_token(&req);
    }
    h.expect_no_http_call();
}

#[test]
fn missing_token_gets_401_with_bare_realm() {
    let h = harness();
    let req = get(&h, None);
    drive(&h);
    req.expect_local_response(401)
        .assert_header("www-authenticate", &format!("Bearer realm=\"{REALM}\""))
        .assert_body_json(&json!({"message": "Unauthorized"}));
}

/// Each case: a token that must be refused with 401 invalid_token.
fn rejects(token: impl FnOnce(&wasm_test_harness::Harness) -> String) {
    let h = harness();
    warm(&h);
    let req = bearer(&h, &token(&h));
    drive(&h);
    assert_invalid_token(&req);
}

#[test]
fn rejects_a_token_that_is_not_a_jwt() {
    rejects(|_| "not-a-jwt".into());
}

#[test]
fn rejects_a_bad_signature() {
    // Signed by the unpublished key, under the published kid.
    rejects(|h| {
        tokens::sign(
            Key::OtherRsa,
            &json!({"alg": "RS256", "typ": "JWT", "kid": "test-rsa"}),
            &claims(h),
        )
    });
}

#[test]
fn rejects_a_tampered_payload() {
    rejects(|h| {
        let token = rs256(&claims(h));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = tokens::rs256(&with(claims(h), &json!({"scope": "admin"})));
        let forged_payload = forged.split('.').nth(1).unwrap_or_default().to_owned();
        format!("{}.{}.{}", parts[0], forged_payload, parts[2])
    });
}

#[test]
fn rejects_alg_none() {
    rejects(|h| {
        let signed = tokens::sign(
            Key::Rsa,
            &json!({"alg": "none", "typ": "JWT", "kid": "test-rsa"}),
            &claims(h),
        );
        let mut parts: Vec<&str> = signed.split('.').collect();
        parts[2] = "";
        parts.join(".")
    });
}

#[test]
fn rejects_an_algorithm_that_does_not_match_the_key() {
    // An RSA signature presented as ES256 under the EC key's kid.
    rejects(|h| {
        tokens::sign(
            Key::Rsa,
            &json!({"alg": "ES256", "typ": "JWT", "kid": "test-ec"}),
            &claims(h),
        )
    });
}

#[test]
fn rejects_a_foreign_issuer() {
    rejects(|h| {
        rs256(&with(
            claims(h),
            &json!({"iss": "https://evil.example.com"}),
        ))
    });
}

#[test]
fn rejects_an_expired_token_beyond_leeway() {
    rejects(|h| rs256(&with(claims(h), &json!({"exp": h.unix_now() - 31}))));
}

#[test]
fn accepts_an_expired_token_within_leeway() {
    let h = harness();
    warm(&h);
    bearer(
        &h,
        &rs256(&with(claims(&h), &json!({"exp": h.unix_now() - 20}))),
    )
    .expect_continue();
}

#[test]
fn rejects_a_token_not_yet_valid() {
    rejects(|h| rs256(&with(claims(h), &json!({"nbf": h.unix_now() + 60}))));
}

#[test]
fn rejects_a_token_issued_in_the_future() {
    rejects(|h| rs256(&with(claims(h), &json!({"iat": h.unix_now() + 60}))));
}

#[test]
fn rejects_an_id_token() {
    rejects(|h| rs256(&with(claims(h), &json!({"token_use": "id"}))));
}

#[test]
fn missing_scope_is_forbidden() {
    let h = harness();
    warm(&h);
    let req = bearer(
        &h,
        &rs256(&with(claims(&h), &json!({"scope": "other/scope"}))),
    );
    assert_forbidden(&req);
}

#[test]
fn wrong_audience_is_forbidden() {
    let mut config = config();
    config["audience_required"] = json!(["client-1"]);
    let h = harness_with(&config);
    warm(&h);
    let req = bearer(
        &h,
        &rs256(&with(claims(&h), &json!({"client_id": "client-2"}))),
    );
    assert_forbidden(&req);
    bearer(&h, &rs256(&claims(&h))).expect_continue();
}

#[test]
fn clock_moving_past_exp_turns_a_cached_token_away() {
    let h = harness();
    warm(&h);
    let token = rs256(&with(claims(&h), &json!({"exp": h.unix_now() + 60})));
    bearer(&h, &token).expect_continue();
    bearer(&h, &token).expect_continue();
    h.advance(Duration::from_secs(60 + 31));
    let req = bearer(&h, &token);
    drive(&h);
    assert_invalid_token(&req);
}

#[test]
fn duplicate_authorization_headers_never_reach_upstream_twice() {
    let h = harness();
    warm(&h);
    let token = rs256(&claims(&h));
    let req = h.request(&[
        (":method", "GET"),
        (":path", "/oidcroute/get"),
        (":authority", "gw.example.com"),
        ("authorization", &format!("Bearer {token}")),
        ("authorization", "Bearer smuggled"),
    ]);
    drive(&h);
    match req.outcome() {
        wasm_test_harness::Outcome::Continued => {
            req.expect_continue()
                .assert_header("authorization", &format!("Bearer {token}"));
        }
        _ => {
            let status = req.expect_local_response(401).status();
            assert_eq!(status, 401);
        }
    }
}

#[test]
fn each_worker_serves_requests_after_its_own_fetch() {
    let h = harness();
    h.add_worker().unwrap_or_else(|e| panic!("{e}"));
    warm(&h);
    let req = get_on(&h, 1, Some(&format!("Bearer {}", rs256(&claims(&h)))));
    drive(&h);
    req.expect_continue();
}

#[test]
fn workers_fetching_at_once_make_one_fetch_between_them() {
    let h = harness();
    h.add_worker().unwrap_or_else(|e| panic!("{e}"));
    let on_0 = get_on(&h, 0, Some(&format!("Bearer {}", rs256(&claims(&h)))));
    let on_1 = get_on(&h, 1, Some(&format!("Bearer {}", rs256(&claims(&h)))));
    on_0.expect_paused();
    on_1.expect_paused();
    // Worker 1 waits for worker 0's discovery instead of asking too.
    assert_eq!(
        h.pending_calls().len(),
        1,
        "one discovery between two workers"
    );
    on_1.expect_no_http_call();
    let call = on_0.expect_http_call(CLUSTER);
    assert_eq!(call.path(), idp::DISCOVERY_PATH);
    call.respond_json(200, &idp::discovery());
    // Worker 1 adopts the document on its tick, then waits for the JWKS.
    h.tick();
    assert_eq!(
        h.pending_calls().len(),
        1,
        "one JWKS fetch between two workers"
    );
    let call = on_0.expect_http_call(CLUSTER);
    assert_eq!(call.path(), idp::JWKS_PATH);
    call.respond_json(200, &idp::jwks());
    on_0.expect_continue();
    h.tick();
    on_1.expect_continue();
    h.expect_no_http_call();
}

#[test]
fn a_header_the_host_will_not_set_is_a_500_not_a_dead_vm() {
    // The SDK's hostcalls panic on such a status: the VM would trap, and
    // every later request on the worker fail. The request must not go on
    // without its header either.
    let mut config = config();
    config["upstream_headers_claims"] = json!(["sub"]);
    config["upstream_headers_names"] = json!(["x-sub"]);
    let h = wasm_test_harness::Harness::load(wasm_path())
        .and_then(|b| {
            b.cluster(CLUSTER)
                .refuse_header_write("x-sub")
                .configure(config.to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let first = bearer(&h, &rs256(&claims(&h)));
    first.expect_paused();
    serve_keys(&first);
    first.expect_local_response(500);
    h.assert_logged("could not set request header x-sub");
    // The VM lives on: the next request is decided (from the caches) alike.
    let token = rs256(&with(claims(&h), &json!({"jti": "second"})));
    bearer(&h, &token).expect_local_response(500);
    // A removal refused alike: the client's copy of our header would go on.
    let forged = h.request(&[
        (":method", "GET"),
        (":path", "/oidcroute/get"),
        (":authority", "gw.example.com"),
        ("authorization", &format!("Bearer {token}")),
        ("x-sub", "admin"),
    ]);
    forged.expect_local_response(500);
    h.assert_logged("could not remove request header x-sub");
}

#[test]
fn an_answer_the_host_will_not_take_resets_the_stream() {
    // Neither hung until Envoy's timeouts nor let through: reset.
    let h = wasm_test_harness::Harness::load(wasm_path())
        .and_then(|b| {
            b.cluster(CLUSTER)
                .refuse_local_replies()
                .configure(config().to_string())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let anonymous = h.request(&[
        (":method", "GET"),
        (":path", "/oidcroute/get"),
        (":authority", "gw.example.com"),
    ]);
    anonymous.expect_reset();
    h.assert_logged("could not send local response: resetting the stream");
    // The VM lives on.
    h.request(&[
        (":method", "GET"),
        (":path", "/oidcroute/get"),
        (":authority", "gw.example.com"),
    ])
    .expect_reset();
}
