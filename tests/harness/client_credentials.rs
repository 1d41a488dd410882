//! Client credentials through the compiled filter: `Authorization: Basic`
//! exchanged at a token endpoint on another host (Cognito's shape), the
//! token shared by workers through shared-data slots with a lease, the
//! negative cache, IdP failures, and the shell's handling of calls whose
//! requests wait, go away, or cannot be dispatched.

use std::time::Duration;

use serde_json::{Value, json};
use wasm_test_harness::{Harness, HttpCall, Outcome, Request};

use crate::common::idp::{
    AUTH_HOST, TOKEN_CLUSTER, TOKEN_PATH, assert_post, basic, serve_discovery, serve_jwks,
    split_discovery, token_response,
};
use crate::common::tokens::{self, Key, claims, rs256};
use crate::common::*;

const ID: &str = "client-1";
/// Needs form-encoding before Basic (RFC 6749 §2.3.1): `top+secret%2B1`.
const SECRET: &str = "top secret+1";

/// The seed's Kong config: explicit scopes, Cognito-shaped tokens, the
/// token endpoint's host routed to its own cluster.
fn cc_config() -> Value {
    let mut c = config();
    c["scopes"] = json!(["kongresource/scope1"]);
    c["idp_clusters"] = json!({ AUTH_HOST: TOKEN_CLUSTER });
    c
}

fn cc_harness() -> Harness {
    harness_on(&cc_config(), &[CLUSTER, TOKEN_CLUSTER], 1)
}

fn client(h: &Harness) -> Request {
    get(h, Some(&basic(ID, SECRET)))
}

/// The calls to the token endpoint not answered yet.
fn token_calls(h: &Harness) -> Vec<HttpCall> {
    h.pending_calls()
        .into_iter()
        .filter(|c| c.cluster() == TOKEN_CLUSTER)
        .collect()
}

/// Drives `req` on a cold worker through discovery, the exchange (answered
/// with `token`) and JWKS; returns the token call's form parameters.
fn exchange(h: &Harness, req: &Request, token: &str) -> std::collections::BTreeMap<String, String> {
    req.expect_paused();
    serve_discovery(h, &split_discovery());
    let call = req.expect_http_call(TOKEN_CLUSTER);
    let form = assert_post(&call, TOKEN_PATH);
    call.respond_json(200, &token_response(token, 3600));
    serve_jwks(h);
    form
}

#[test]
fn basic_credentials_are_exchanged_at_the_token_endpoint_and_the_token_goes_upstream() {
    let h = cc_harness();
    let token = rs256(&claims(&h));
    let req = client(&h);
    req.expect_paused();
    serve_discovery(&h, &split_discovery());

    let call = req.expect_http_call(TOKEN_CLUSTER);
    let form = assert_post(&call, TOKEN_PATH);
    assert_eq!(call.header(":scheme").as_deref(), Some("https"));
    assert_eq!(
        call.header("authorization"),
        Some(basic("client-1", "top+secret%2B1")),
        "client_secret_basic with the form-encoded id and secret"
    );
    assert_eq!(
        form,
        [
            ("grant_type", "client_credentials"),
            ("scope", "kongresource/scope1")
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        "body {:?}",
        call.body_str()
    );
    assert_eq!(call.timeout(), Duration::from_millis(5000));
    call.respond_json(200, &token_response(&token, 3600));
    serve_jwks(&h);

    req.expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
    h.expect_no_http_call();
    h.assert_not_logged(SECRET);
    h.assert_not_logged("top+secret");
    assert_eq!(
        h.metric("oidc_allowed_client_credentials"),
        None,
        "not flushed before a tick"
    );
    h.tick();
    assert_eq!(h.metric("oidc_allowed_client_credentials"), Some(1));
}

#[test]
fn no_scope_is_sent_unless_configured_and_client_secret_post_is_used_when_only_it_is_advertised() {
    let mut config = cc_config();
    config.as_object_mut().map(|c| c.remove("scopes"));
    let h = harness_on(&config, &[CLUSTER, TOKEN_CLUSTER], 1);
    let req = client(&h);
    let mut discovery = split_discovery();
    discovery["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
    serve_discovery(&h, &discovery);
    let call = req.expect_http_call(TOKEN_CLUSTER);
    let form = assert_post(&call, TOKEN_PATH);
    assert_eq!(call.header("authorization"), None);
    assert_eq!(
        form.get("scope"),
        None,
        "the default `openid` is never sent"
    );
    assert_eq!(
        form.get("grant_type").map(String::as_str),
        Some("client_credentials")
    );
    assert_eq!(form.get("client_id").map(String::as_str), Some(ID));
    assert_eq!(form.get("client_secret").map(String::as_str), Some(SECRET));
    call.respond_json(200, &token_response(&rs256(&claims(&h)), 3600));
    serve_jwks(&h);
    req.expect_continue();
}

#[test]
fn second_request_with_the_same_credentials_makes_no_call() {
    let h = cc_harness();
    let token = rs256(&claims(&h));
    let first = client(&h);
    exchange(&h, &first, &token);
    first.expect_continue();

    let second = client(&h);
    second.expect_no_http_call();
    second
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
    h.expect_no_http_call();
}

#[test]
fn requests_on_one_worker_join_the_exchange_in_flight() {
    let h = cc_harness();
    let token = rs256(&claims(&h));
    let first = client(&h);
    serve_discovery(&h, &split_discovery());
    let second = client(&h);
    let third = client(&h);
    assert_eq!(token_calls(&h).len(), 1, "one exchange for three requests");
    first
        .expect_http_call(TOKEN_CLUSTER)
        .respond_json(200, &token_response(&token, 3600));
    // The JWKS fetch the first request makes is joined by the others too.
    assert_eq!(h.pending_calls().len(), 1);
    serve_jwks(&h);
    for req in [&first, &second, &third] {
        req.expect_continue()
            .assert_header("authorization", &format!("Bearer {token}"));
    }
}

#[test]
fn two_workers_make_one_token_call_and_the_waiting_one_resumes_on_tick() {
    let h = harness_on(&cc_config(), &[CLUSTER, TOKEN_CLUSTER], 2);
    let token = rs256(&claims(&h));
    let on_0 = get_on(&h, 0, Some(&basic(ID, SECRET)));
    serve_discovery(&h, &split_discovery());
    let exchange = on_0.expect_http_call(TOKEN_CLUSTER);

    // Worker 1 reads discovery from shared data, finds the lease taken, waits.
    let on_1 = get_on(&h, 1, Some(&basic(ID, SECRET)));
    on_1.expect_paused();
    on_1.expect_no_http_call();
    assert_eq!(h.pending_calls().len(), 1, "only worker 0's exchange");
    assert_eq!(
        h.tick_period(1),
        Some(Duration::from_millis(20)),
        "fast tick while waiting"
    );
    h.advance(Duration::from_millis(20));
    h.tick();
    on_1.expect_paused();
    assert_eq!(
        h.pending_calls().len(),
        1,
        "still one exchange after a tick"
    );

    exchange.respond_json(200, &token_response(&token, 3600));
    serve_jwks(&h);
    on_0.expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
    on_1.expect_paused();

    h.advance(Duration::from_millis(20));
    h.tick();
    on_1.expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
    h.expect_no_http_call();
    assert_eq!(
        h.tick_period(1),
        Some(Duration::from_secs(1)),
        "back to the idle tick"
    );

    // Worker 1 now serves the token from its own cache.
    let again = get_on(&h, 1, Some(&basic(ID, SECRET)));
    again.expect_continue();
    h.expect_no_http_call();
}

#[test]
fn rejected_credentials_are_401_and_remembered_for_five_seconds() {
    let h = cc_harness();
    let req = get(&h, Some(&basic(ID, "wrong")));
    serve_discovery(&h, &split_discovery());
    req.expect_http_call(TOKEN_CLUSTER)
        .respond_json(401, &json!({"error": "invalid_client"}));
    assert_invalid_token(&req);
    let www = req
        .expect_local_response(401)
        .header("www-authenticate")
        .unwrap_or_default();
    assert!(www.contains("rejected by the identity provider"), "{www}");

    h.advance(Duration::from_secs(4));
    let retry = get(&h, Some(&basic(ID, "wrong")));
    retry.expect_no_http_call();
    assert_invalid_token(&retry);

    h.advance(Duration::from_secs(2));
    let later = get(&h, Some(&basic(ID, "wrong")));
    later
        .expect_http_call(TOKEN_CLUSTER)
        .respond_json(400, &json!({"error": "invalid_client"}));
    assert_invalid_token(&later);

    // Other credentials are not caught by that negative entry.
    let other = get(&h, Some(&basic(ID, SECRET)));
    other.expect_http_call(TOKEN_CLUSTER);
}

#[test]
fn malformed_basic_credentials_are_401_without_any_call() {
    use base64::Engine as _;
    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let h = cc_harness();
    for value in [
        "Basic".to_owned(),
        "Basic ".to_owned(),
        "Basic !!!".to_owned(),
        "Basic Y2xpZW50".to_owned(), // "client": no colon
        format!("Basic {}", b64(b":secret")),
        format!("Basic {}", b64(b"no-colon")),
        format!("Basic {}", b64(&[0xff, b':', b'x'])),
        format!("Basic {}", b64(b"id\n:secret")),
        format!("Basic {}", b64(b"id:sec\x00ret")),
        format!("Basic {}=", b64(b"id:secret")),
    ] {
        let req = get(&h, Some(&value));
        req.expect_no_http_call();
        assert_invalid_token(&req);
    }
    h.expect_no_http_call();
}

#[test]
fn token_endpoint_failures_are_503_or_502() {
    type Answer = fn(HttpCall);
    let cases: [(&str, Answer, u32); 6] = [
        ("timeout", |c| c.time_out(), 503),
        ("reset", |c| c.fail(), 503),
        ("503", |c| c.respond(503, &[], "no healthy upstream"), 503),
        ("500", |c| c.respond(500, &[], "oops"), 502),
        (
            "garbage",
            |c| c.respond(200, &[("content-type", "application/json")], "{not json"),
            502,
        ),
        (
            "no access token",
            |c| c.respond_json(200, &json!({"token_type": "Bearer"})),
            502,
        ),
    ];
    for (name, answer, status) in cases {
        let h = cc_harness();
        let req = client(&h);
        serve_discovery(&h, &split_discovery());
        answer(req.expect_http_call(TOKEN_CLUSTER));
        match req.outcome() {
            Outcome::LocalReply(r) if r.status == status => assert_idp_failure(&req, status),
            other => panic!("token endpoint {name}: expected {status}, the request is {other:?}"),
        }
    }
}

#[test]
fn a_token_the_idp_returns_is_verified_before_it_goes_upstream() {
    let h = cc_harness();
    let forged = tokens::sign(
        Key::OtherRsa,
        &json!({"alg": "RS256", "typ": "JWT", "kid": "test-rsa"}),
        &claims(&h),
    );
    let req = client(&h);
    exchange(&h, &req, &forged);
    assert_invalid_token(&req);
}

#[test]
fn cached_token_is_refreshed_a_minute_before_it_expires() {
    let h = cc_harness();
    // exp in 300 s; expires_in 3600: the earlier wins, refresh at 240 s.
    let old = rs256(&claims(&h));
    let first = client(&h);
    exchange(&h, &first, &old);
    first.expect_continue();

    h.advance(Duration::from_secs(239));
    let before = client(&h);
    before.expect_no_http_call();
    before
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {old}"));

    h.advance(Duration::from_secs(2));
    let new = rs256(&tokens::with(claims(&h), &json!({"jti": "renewed"})));
    let due = client(&h);
    let call = due.expect_http_call(TOKEN_CLUSTER);
    assert_post(&call, TOKEN_PATH);
    call.respond_json(200, &token_response(&new, 3600));
    due.expect_continue()
        .assert_header("authorization", &format!("Bearer {new}"));

    let after = client(&h);
    after.expect_no_http_call();
    after
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {new}"));
}

#[test]
fn shared_data_stays_bounded_after_2000_distinct_clients() {
    // 2000 exchanges at one instant: far beyond the default call budget.
    let mut config = cc_config();
    config["idp_call_budget"] =
        json!({"client_credentials": {"per_second": 10000, "burst": 10000}});
    let h = harness_on(&config, &[CLUSTER, TOKEN_CLUSTER], 1);
    let token = rs256(&claims(&h));
    for i in 0..2000 {
        let req = get(&h, Some(&basic(&format!("client-{i}"), "secret")));
        if i == 0 {
            serve_discovery(&h, &split_discovery());
        }
        req.expect_http_call(TOKEN_CLUSTER)
            .respond_json(200, &token_response(&token, 3600));
        if i == 0 {
            serve_jwks(&h);
        }
        req.expect_continue();
    }
    let keys = h.shared_data_keys();
    let slots = keys.iter().filter(|k| k.contains("/cc/")).count();
    assert!(slots <= 1024, "{slots} client-credentials slots");
    assert!(slots > 800, "2000 clients spread over the slots: {slots}");
    let leases = keys.iter().filter(|k| k.contains("-lease/")).count();
    assert_eq!(
        leases,
        3 * 64,
        "cc, refresh and document-fetch leases, created at configure"
    );
    assert!(
        // Plus the call budgets: 5 purposes, 8 in-flight slots and a bucket each.
        keys.len() <= 1024 + 3 * 64 + 5 * (8 + 1) + 8,
        "{} shared-data keys: {:?}",
        keys.len(),
        keys.iter()
            .filter(|k| !k.contains("/cc/") && !k.contains("-lease/"))
            .collect::<Vec<_>>()
    );
    // Every key is the filter's (its configuration's prefix, or the IdP's
    // for the budget and the client's for the fallback session key).
    assert!(
        keys.iter().all(|k| k.starts_with("envoy-oidc/")),
        "{keys:?}"
    );
}

#[test]
fn waiter_of_a_request_dropped_during_discovery_refetches_from_the_root_on_tick() {
    let h = cc_harness();
    let token = rs256(&claims(&h));
    let first = client(&h);
    let second = client(&h);
    let orphan = first.expect_http_call(CLUSTER);
    assert_eq!(h.pending_calls().len(), 1, "the second joined the fetch");
    drop(first);

    h.tick();
    second.expect_paused();
    let refetch = h
        .pending_calls()
        .into_iter()
        .find(|c| c.token() != orphan.token())
        .unwrap_or_else(|| panic!("no discovery re-dispatched on tick"));
    assert!(refetch.from_root(), "re-dispatched from the root context");
    assert_eq!(refetch.path(), crate::common::idp::DISCOVERY_PATH);

    // The orphan's reply goes nowhere (its context is gone) and traps nothing.
    orphan.respond_json(200, &split_discovery());
    second.expect_paused();
    refetch.respond_json(200, &split_discovery());

    let call = h.expect_http_call(TOKEN_CLUSTER);
    assert!(call.from_root(), "later calls are made from the root too");
    call.respond_json(200, &token_response(&token, 3600));
    serve_jwks(&h);
    second
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
}

#[test]
fn waiter_of_a_request_dropped_during_the_exchange_redispatches_on_the_next_tick() {
    let h = cc_harness();
    let token = rs256(&claims(&h));
    let first = client(&h);
    serve_discovery(&h, &split_discovery());
    let second = client(&h);
    let orphan = first.expect_http_call(TOKEN_CLUSTER);
    assert_eq!(token_calls(&h).len(), 1, "the second joined the exchange");
    drop(first);

    h.advance(Duration::from_millis(20));
    h.tick();
    let again = token_calls(&h)
        .into_iter()
        .find(|c| c.token() != orphan.token())
        .unwrap_or_else(|| {
            panic!(
                "no exchange re-dispatched on the tick after the request went away; logs:\n{}",
                h.logs()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
    assert!(again.from_root());
    again.respond_json(200, &token_response(&token, 3600));
    serve_jwks(&h);
    second
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
}

#[test]
fn an_orphaned_reply_goes_nowhere_and_the_waiter_still_completes() {
    let h = cc_harness();
    let token = rs256(&claims(&h));
    let first = client(&h);
    serve_discovery(&h, &split_discovery());
    let second = client(&h);
    let orphan = first.expect_http_call(TOKEN_CLUSTER);
    drop(first);

    // The reply reaches the root context for a stream that is gone: the
    // SDK drops it; nothing traps and nobody is resumed by it.
    orphan.respond_json(200, &token_response(&token, 3600));
    second.expect_paused();
    assert!(h.trap(0).is_none());

    h.advance(Duration::from_millis(20));
    h.tick();
    let call = h.expect_http_call(TOKEN_CLUSTER);
    assert!(call.from_root(), "re-dispatched from the root context");
    call.respond_json(200, &token_response(&token, 3600));
    serve_jwks(&h);
    second
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {token}"));
}

#[test]
fn a_dispatch_the_host_refuses_is_503_for_every_waiter() {
    let mut config = cc_config();
    config["idp_clusters"] = json!({ AUTH_HOST: "not_in_envoy" });
    let h = harness_on(&config, &[CLUSTER], 1);
    let first = client(&h);
    let second = client(&h);
    serve_discovery(&h, &split_discovery());
    assert_idp_failure(&first, 503);
    assert_idp_failure(&second, 503);
    h.assert_logged("refused");
    h.expect_no_http_call();
    // The lease was given back: a later request tries again (and fails the same way).
    let later = client(&h);
    assert_idp_failure(&later, 503);
}

#[test]
fn a_budget_slot_given_back_by_a_reply_is_taken_again() {
    // One call in flight at a time. A released slot is an empty shared-data
    // value, which the SDK reads back without bytes: it must still count as
    // a slot to take, or the budget would shrink with every call.
    let mut config = cc_config();
    config["idp_call_budget"] = json!({"client_credentials": {"concurrent": 1}});
    let h = harness_on(&config, &[CLUSTER, TOKEN_CLUSTER], 1);
    let token = rs256(&claims(&h));
    let first = client(&h);
    exchange(&h, &first, &token);
    first.expect_continue();
    for i in 0..3 {
        let other = get(&h, Some(&basic(&format!("other-{i}"), SECRET)));
        let call = other.expect_http_call(TOKEN_CLUSTER);
        call.respond_json(200, &token_response(&token, 3600));
        other.expect_continue();
    }
    // While a call holds the one slot, other clients are answered at once
    // (one whose exchange lease shares a lease slot with the busy client's
    // waits for that instead: 64 lease slots, a salt random per run).
    let busy = get(&h, Some(&basic("busy", SECRET)));
    busy.expect_http_call(TOKEN_CLUSTER);
    let mut refused = 0;
    for i in 0..6 {
        let req = get(&h, Some(&basic(&format!("refused-{i}"), SECRET)));
        match req.outcome() {
            Outcome::LocalReply(r) => {
                assert_eq!(r.status, 503);
                let reply = req.expect_local_response(503);
                assert_eq!(reply.header("retry-after").as_deref(), Some("1"));
                refused += 1;
            }
            Outcome::Paused => {}
            other => panic!("refused-{i}: {other:?}"),
        }
    }
    assert!(refused >= 4, "{refused} of 6 answered 503 at once");
    assert_eq!(h.pending_calls().len(), 1, "only the busy client's call");
}
