//! Issue 14, "forged tokens stay cheap": a token whose signature failed
//! against the current JWKS is remembered per worker, so that replaying it
//! answers the same 401 without a signature check; a new key set, the
//! JWKS's expiry, the entry's short life or the token's own expiry make it
//! a miss again, and refusals for an unknown `kid` or a time claim are
//! never remembered. The observable is the `token_refused_cached` counter.

use std::cell::Cell;
use std::rc::Rc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_oidc::action::IdpReply;
use envoy_oidc::error::TokenError;
use envoy_oidc::oidc::provider::Document;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::tokens::{self, Key};
use serde_json::{Value, json};

use crate::{NOW, assert_invalid, at, claims_with, config, fetches, healthy, is_continue, request};

/// The refusals answered from the cache so far on worker 0.
fn refused_hits(w: &mut World) -> u64 {
    counter(w, "oidc_token_refused_cached")
}

/// Worker 0's counter `name` so far (its metrics handed over on a tick).
fn counter(w: &mut World, name: &str) -> u64 {
    w.tick(0);
    w.workers[0].host.counters.get(name).copied().unwrap_or(0)
}

fn bearer(token: &str) -> envoy_oidc::request::RequestView {
    request(&[&format!("Bearer {token}")])
}

/// `token` with its claims replaced by `claims` and its signature kept.
fn with_claims_of(token: &str, claims: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{body}.{}", parts[0], parts[2])
}

fn rs256_by(key: Key, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    tokens::sign_with(key, &header, claims)
}

#[test]
fn a_replayed_forged_token_is_refused_from_the_cache() {
    let mut w = crate::world(json!({}));
    let genuine = tokens::rs256(&tokens::access_claims(NOW));
    // The genuine token's signature over other claims: the same cache key
    // (the token's end) as the genuine token, and a bad signature.
    let forged = with_claims_of(&genuine, &claims_with(json!({"sub": "admin"})));
    for n in 0..3 {
        assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
        assert_eq!(refused_hits(&mut w), n, "request {}", n + 1);
    }
    assert_eq!(w.workers[0].engine.core().verified_len(), 0);
    // The genuine token under the same key is not taken for the forged one.
    assert!(is_continue(&at(&mut w, NOW, bearer(&genuine))));
    assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
    assert_eq!(refused_hits(&mut w), 3);
    // The entry is short-lived: a minute later the token is checked again,
    // then remembered again.
    assert_invalid(
        &at(&mut w, NOW + 60, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 3, "lapsed after 60 s");
    assert_invalid(
        &at(&mut w, NOW + 61, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 4);
    // Discovery and JWKS; and the JWKS once more when the refusal lapsed,
    // the keys then a minute old (`refetch_after_refusal`): once per 30 s
    // at most, and not for the replays the cache answered.
    assert_eq!(
        fetches(&w),
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );

    // No key of the set fits the token's algorithm: remembered the same way.
    let mut w = crate::world(json!({}));
    let mismatch = tokens::sign_with(
        Key::Ec,
        &json!({"alg": "ES256", "kid": "test-rsa"}),
        &tokens::access_claims(NOW),
    );
    for n in 0..3 {
        assert_invalid(&at(&mut w, NOW, bearer(&mismatch)), TokenError::KeyMismatch);
        assert_eq!(refused_hits(&mut w), n);
    }
}

#[test]
fn a_remembered_refusal_lapses_with_the_tokens_expiry() {
    let mut w = crate::world(json!({}));
    let forged = rs256_by(
        Key::OtherRsa,
        Some("test-rsa"),
        &claims_with(json!({"exp": NOW + 10})),
    );
    assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
    assert_invalid(
        &at(&mut w, NOW + 9, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 1);
    // Expired now: refused as expired, not as a remembered bad signature.
    assert_invalid(&at(&mut w, NOW + 10, bearer(&forged)), TokenError::Expired);
    assert_eq!(refused_hits(&mut w), 1);
}

/// A world whose IdP publishes the usual JWKS until `rotated` is set, then
/// the same keys plus the unpublished RSA key as `rotated`.
fn rotating_world() -> (World, Rc<Cell<bool>>) {
    let rotated = Rc::new(Cell::new(false));
    (with_extra_key_while(Rc::clone(&rotated), true), rotated)
}

/// A world whose IdP publishes the usual JWKS, plus the RSA key `rotated`
/// while `published` is `when`.
fn with_extra_key_while(published: Rc<Cell<bool>>, when: bool) -> World {
    jwks_world(published, move |flag| {
        if flag == when {
            vec![tokens::jwk(Key::OtherRsa, "rotated")]
        } else {
            Vec::new()
        }
    })
}

/// A world whose IdP publishes the test keys and those `extra` gives for
/// the flag's value at each JWKS fetch.
fn jwks_world(flag: Rc<Cell<bool>>, extra: impl Fn(bool) -> Vec<Value> + 'static) -> World {
    jwks_world_of(1, flag, extra)
}

/// `jwks_world` with `workers` workers.
fn jwks_world_of(
    workers: usize,
    flag: Rc<Cell<bool>>,
    extra: impl Fn(bool) -> Vec<Value> + 'static,
) -> World {
    World::new(
        &config(json!({})),
        workers,
        NOW,
        move |r, _now| match crate::document(r) {
            Some(Document::Jwks) => {
                let mut jwks: Value = serde_json::from_slice(&tokens::jwks()).unwrap();
                jwks["keys"]
                    .as_array_mut()
                    .unwrap()
                    .extend(extra(flag.get()));
                IdpReply {
                    status: Some(200),
                    body: serde_json::to_vec(&jwks).unwrap(),
                    retry_after: None,
                }
            }
            Some(d) => healthy(d),
            None => panic!("no other IdP call expected: {r:?}"),
        },
    )
}

/// A world whose IdP publishes an extra key ("rotated") until the flag
/// says it is withdrawn, and a ten-day token that key signed.
fn a_key_to_withdraw() -> (Rc<Cell<bool>>, World, String) {
    let withdrawn = Rc::new(Cell::new(false));
    let w = with_extra_key_while(Rc::clone(&withdrawn), false);
    let claims = claims_with(json!({"exp": NOW + 10 * 86_400}));
    let leaked = rs256_by(Key::OtherRsa, Some("rotated"), &claims);
    (withdrawn, w, leaked)
}

#[test]
fn a_token_of_a_withdrawn_key_stops_passing_once_the_keys_are_fetched_again() {
    // A key leaks; the IdP withdraws it. A token it signed, living ten
    // days, was verified (and cached) while it was published.
    let (withdrawn, mut w, leaked) = a_key_to_withdraw();
    // The keys fetched at NOW, for an hour; the token first seen late in it.
    let other = tokens::rs256(&tokens::access_claims(NOW));
    assert!(is_continue(&at(&mut w, NOW, bearer(&other))));
    assert!(is_continue(&at(&mut w, NOW + 3500, bearer(&leaked))));
    assert!(is_continue(&at(&mut w, NOW + 3560, bearer(&leaked))));
    withdrawn.set(true);
    // The JWKS is fetched again when it expires: the token is checked
    // against it then, not passed from the cache until its `exp` (nor for
    // an hour from when it was first seen).
    let d = at(&mut w, NOW + 3601, bearer(&leaked));
    assert!(!is_continue(&d), "{d:?}");
}

#[test]
fn a_token_of_a_withdrawn_key_stops_passing_once_a_key_set_without_it_is_taken() {
    // The leaked key's token is verified and cached; the IdP withdraws the
    // key and publishes another, which a token naming it has fetched well
    // before the hour is out.
    let (withdrawn, mut w, leaked) = a_key_to_withdraw();
    refused_once_another_set_is_taken(&mut w, &leaked, &withdrawn);
    let claims = claims_with(json!({"exp": NOW + 10 * 86_400}));
    let naming_new = rs256_by(Key::OtherRsa, Some("new-kid"), &claims);
    // A key set that keeps every key forgets nothing: the published
    // key's tokens stay cached.
    let mut w = with_extra_key_while(Rc::new(Cell::new(false)), false);
    let kept = tokens::rs256(&tokens::access_claims(NOW));
    assert!(is_continue(&at(&mut w, NOW, bearer(&kept))));
    at(&mut w, NOW + 300, bearer(&naming_new));
    let hits = |w: &mut World| counter(w, "oidc_token_cache_hit");
    let before = hits(&mut w);
    assert!(is_continue(&at(&mut w, NOW + 301, bearer(&kept))));
    assert_eq!(hits(&mut w), before + 1, "a hit");
}

#[test]
fn a_key_replaced_under_its_kid_stops_passing_the_tokens_of_the_old_one() {
    // The IdP replaces the leaked key but keeps its `kid` (`rotated`),
    // and publishes it with a key of another `kid` that a token names.
    let replaced = Rc::new(Cell::new(false));
    let mut w = jwks_world(Rc::clone(&replaced), |replaced| {
        if replaced {
            vec![
                tokens::jwk(Key::Ed, "rotated"),
                tokens::jwk(Key::Ed, "new-kid"),
            ]
        } else {
            vec![tokens::jwk(Key::OtherRsa, "rotated")]
        }
    });
    let claims = claims_with(json!({"exp": NOW + 10 * 86_400}));
    let leaked = rs256_by(Key::OtherRsa, Some("rotated"), &claims);
    refused_once_another_set_is_taken(&mut w, &leaked, &replaced);
}

/// `leaked` passes, and from the cache; `change` has the IdP publish
/// another key set, fetched for a token naming a `kid` it adds; then
/// `leaked` is refused.
fn refused_once_another_set_is_taken(w: &mut World, leaked: &str, change: &Cell<bool>) {
    assert!(is_continue(&at(w, NOW, bearer(leaked))));
    assert!(is_continue(&at(w, NOW + 100, bearer(leaked))));
    change.set(true);
    let claims = claims_with(json!({"exp": NOW + 10 * 86_400}));
    let naming_new = rs256_by(Key::OtherRsa, Some("new-kid"), &claims);
    at(w, NOW + 300, bearer(&naming_new));
    assert_eq!(
        fetches(w),
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );
    let d = at(w, NOW + 301, bearer(leaked));
    assert!(!is_continue(&d), "{d:?}");
}

#[test]
fn a_new_key_set_forgets_the_refusals() {
    let (mut w, rotated) = rotating_world();
    // No kid, signed by a key the IdP does not publish yet.
    let kidless = rs256_by(Key::OtherRsa, None, &tokens::access_claims(NOW));
    assert_invalid(&at(&mut w, NOW, bearer(&kidless)), TokenError::BadSignature);
    assert_invalid(&at(&mut w, NOW, bearer(&kidless)), TokenError::BadSignature);
    assert_eq!(refused_hits(&mut w), 1);
    // The IdP publishes that key; a token naming its kid has the JWKS
    // refetched.
    rotated.set(true);
    let named = rs256_by(Key::OtherRsa, Some("rotated"), &tokens::access_claims(NOW));
    assert!(is_continue(&at(&mut w, NOW + 1, bearer(&named))));
    assert_eq!(
        fetches(&w),
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );
    // The once-refused token is checked against the new set, and passes.
    let d = at(&mut w, NOW + 2, bearer(&kidless));
    assert!(is_continue(&d), "{d:?}");
    assert_eq!(refused_hits(&mut w), 1);

    // Still bad under the new set: checked again once, then remembered.
    let (mut w, rotated) = rotating_world();
    let forged = rs256_by(Key::OtherRsa, Some("test-rsa"), &tokens::access_claims(NOW));
    assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
    assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
    assert_eq!(refused_hits(&mut w), 1);
    rotated.set(true);
    assert!(is_continue(&at(&mut w, NOW + 1, bearer(&named))));
    assert_invalid(
        &at(&mut w, NOW + 2, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 1, "a miss under the new key set");
    assert_invalid(
        &at(&mut w, NOW + 3, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 2);
}

#[test]
fn an_expired_key_set_forgets_the_refusals() {
    // The JWKS fetched at NOW is trusted for an hour. A refusal late in it
    // has the keys fetched again first (`refetch_after_refusal`); with the
    // JWKS endpoint failing, the set serves on, stale, a little longer, and
    // the refusal is remembered against it. Once the set has expired, the
    // refusal is not answered from the cache: the JWKS is fetched again and
    // the token checked against it.
    let (mut w, down) = jwks_failing_world();
    let forged = rs256_by(
        Key::OtherRsa,
        Some("test-rsa"),
        &claims_with(json!({"exp": NOW + 7200})),
    );
    assert!(is_continue(&at(
        &mut w,
        NOW,
        bearer(&tokens::rs256(&tokens::access_claims(NOW)))
    )));
    down.set(true);
    let before = NOW + 3600 - 5;
    // The failed refetch leaves the refusal standing: 401, not the 503.
    assert_invalid(
        &at(&mut w, before, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_invalid(
        &at(&mut w, before + 1, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 1);
    assert_eq!(
        fetches(&w),
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );
    down.set(false);
    // The stale set served 30 s past the failure (`STALE_RETRY`).
    assert_invalid(
        &at(&mut w, before + 31, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 1, "a miss once the JWKS expired");
    assert_eq!(fetches(&w).len(), 4);
    assert_invalid(
        &at(&mut w, before + 32, bearer(&forged)),
        TokenError::BadSignature,
    );
    assert_eq!(refused_hits(&mut w), 2);
}

#[test]
fn a_worker_held_back_by_anothers_refetch_takes_the_keys_it_fetched() {
    // The IdP signs without `kid` and has a new key. Worker 0 refetches for
    // the first such token; worker 1, refused by the same old keys, finds
    // worker 0's fetch under way (its lease), waits, and then takes the keys
    // worker 0 fetched, its own refetch being spent for 30 s.
    let rotated = Rc::new(Cell::new(false));
    let mut w = jwks_world_of(2, Rc::clone(&rotated), |rotated| {
        if rotated {
            vec![tokens::jwk(Key::OtherRsa, "new")]
        } else {
            Vec::new()
        }
    });
    let valid = tokens::rs256(&tokens::access_claims(NOW));
    w.now = NOW;
    for worker in [0, 1] {
        assert!(is_continue(&w.request(worker, bearer(&valid))));
    }
    rotated.set(true);
    w.now = NOW + 100;
    let kidless = |jti: &str| rs256_by(Key::OtherRsa, None, &claims_with(json!({"jti": jti})));
    let on_0 = w.send(0, bearer(&kidless("a")));
    let on_1 = w.send(1, bearer(&kidless("b")));
    w.settle();
    for (worker, id) in [(0, on_0), (1, on_1)] {
        let d = w.decision(worker, id);
        assert!(is_continue(d), "worker {worker}: {d:?}");
    }
    let jwks = fetches(&w).iter().filter(|d| **d == Document::Jwks).count();
    assert_eq!(jwks, 2, "the first fetch, and one refetch for both workers");
}

/// The signatures worker 0 has checked so far.
fn signature_checks(w: &mut World) -> u64 {
    counter(w, "oidc_token_signatures_checked")
}

/// A world whose JWKS endpoint answers 503 while the flag is set.
fn jwks_failing_world() -> (World, Rc<Cell<bool>>) {
    let down = Rc::new(Cell::new(false));
    let jwks_down = Rc::clone(&down);
    let w = World::new(
        &config(json!({})),
        1,
        NOW,
        move |r, _now| match crate::document(r) {
            Some(Document::Jwks) if jwks_down.get() => IdpReply {
                status: Some(503),
                body: b"no healthy upstream".to_vec(),
                retry_after: None,
            },
            Some(d) => healthy(d),
            None => panic!("no other IdP call expected: {r:?}"),
        },
    );
    (w, down)
}

#[test]
fn a_forged_token_is_checked_once_while_the_keys_are_old_and_cannot_be_refetched() {
    // The JWKS endpoint fails once the keys are fetched: a refused
    // signature's refetch fails, and after it this worker's refetch is
    // spent for 30 s, the keys still old. Each distinct forgery is then
    // checked once against them, not again after the refetch failed or
    // after the look in shared data found nothing newer.
    let (mut w, down) = jwks_failing_world();
    let genuine = tokens::rs256(&tokens::access_claims(NOW));
    assert!(is_continue(&at(&mut w, NOW, bearer(&genuine))));
    assert_eq!(signature_checks(&mut w), 1);
    down.set(true);
    let forged = |jti: &str| {
        rs256_by(
            Key::OtherRsa,
            Some("test-rsa"),
            &claims_with(json!({ "jti": jti })),
        )
    };
    // The keys 31 s old: the refusal refetches them, which fails; the 401
    // stands.
    assert_invalid(
        &at(&mut w, NOW + 31, bearer(&forged("1"))),
        TokenError::BadSignature,
    );
    assert_eq!(
        fetches(&w),
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );
    assert_eq!(
        signature_checks(&mut w),
        2,
        "one check for the first forgery"
    );
    // The refetch spent: a look in shared data, which finds nothing newer.
    for (n, jti) in ["2", "3"].into_iter().enumerate() {
        assert_invalid(
            &at(&mut w, NOW + 40, bearer(&forged(jti))),
            TokenError::BadSignature,
        );
        assert_eq!(signature_checks(&mut w), 3 + n as u64, "forgery {jti}");
    }
    assert_eq!(fetches(&w).len(), 3, "no fetch for them");
    // The old keys still verify the IdP's tokens.
    let other = tokens::rs256(&claims_with(json!({"jti": "4"})));
    assert!(is_continue(&at(&mut w, NOW + 40, bearer(&other))));
    assert_eq!(signature_checks(&mut w), 5);
}

#[test]
fn unknown_keys_time_failures_and_huge_tokens_are_not_remembered() {
    let mut w = crate::world(json!({}));
    let unknown = rs256_by(Key::OtherRsa, Some("nope"), &tokens::access_claims(NOW));
    let expired = rs256_by(
        Key::OtherRsa,
        Some("test-rsa"),
        &claims_with(json!({"exp": NOW - 1})),
    );
    let early = rs256_by(
        Key::OtherRsa,
        Some("test-rsa"),
        &claims_with(json!({"nbf": NOW + 100})),
    );
    // Far larger than any access token, yet under the 16 KiB limit.
    let huge = rs256_by(
        Key::OtherRsa,
        Some("test-rsa"),
        &claims_with(json!({"pad": "x".repeat(8 * 1024)})),
    );
    for _ in 0..3 {
        assert_invalid(&at(&mut w, NOW, bearer(&unknown)), TokenError::UnknownKey);
        assert_invalid(&at(&mut w, NOW, bearer(&expired)), TokenError::Expired);
        assert_invalid(&at(&mut w, NOW, bearer(&early)), TokenError::NotYetValid);
        assert_invalid(&at(&mut w, NOW, bearer(&huge)), TokenError::BadSignature);
    }
    assert_eq!(refused_hits(&mut w), 0);
    // The cache works in this world: a plain forgery is remembered.
    let forged = rs256_by(Key::OtherRsa, Some("test-rsa"), &tokens::access_claims(NOW));
    assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
    assert_invalid(&at(&mut w, NOW, bearer(&forged)), TokenError::BadSignature);
    assert_eq!(refused_hits(&mut w), 1);
}

/// A refused request's log line is made only when the host writes info
/// lines: a flood of forged tokens into a log at `warning` costs no
/// formatting. The level is read on each tick.
#[test]
fn denials_are_logged_only_when_the_host_logs_info() {
    let mut w = crate::world(json!({}));
    let forged = "not-a-jwt";
    let d = at(&mut w, NOW, bearer(forged));
    assert!(
        d.log.as_deref().is_some_and(|l| l.starts_with("401 GET")),
        "{d:?}"
    );
    w.workers[0].host.quiet = true;
    w.tick(0);
    let d = at(&mut w, NOW, bearer(forged));
    assert_eq!(crate::response(&d).status, 401);
    assert_eq!(d.log, None);
    w.workers[0].host.quiet = false;
    w.tick(0);
    assert!(at(&mut w, NOW, bearer(forged)).log.is_some());
}
