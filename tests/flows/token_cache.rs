//! `token_cache_size`: how many verified tokens (and introspection
//! answers) a worker keeps, evicting first the oldest expired or not used
//! since it was last passed over (second chance, `cache.rs`). A hit is seen
//! in the `token_cache_hit` and `token_cache_miss` counters the engine
//! hands the host on each tick (a miss of a valid token is one signature
//! check), an introspection answer in the calls made to the IdP.

use envoy_oidc::action::{IdpReply, IdpRequest};
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::tokens;
use serde_json::json;

use crate::{NOW, at, claims_with, healthy, is_continue, request, token_calls, world, world_with};

/// `n` distinct valid RS256 tokens, as `Authorization` values.
fn distinct_tokens(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let token = tokens::rs256(&claims_with(json!({ "jti": format!("t{i}") })));
            format!("Bearer {token}")
        })
        .collect()
}

/// The worker's `token_cache_hit` and `token_cache_miss` counts so far.
fn hits_and_misses(w: &mut World) -> (u64, u64) {
    w.tick(0);
    let count = |name: &str| {
        w.workers[0]
            .host
            .counters
            .get(name)
            .copied()
            .unwrap_or_default()
    };
    (
        count("oidc_token_cache_hit"),
        count("oidc_token_cache_miss"),
    )
}

/// A worker that has its issuer's discovery and keys, with nothing in its
/// token cache, and its counters zeroed: a request that waits for a fetch
/// is decided again after it, and each attempt counts a miss. A forged
/// token fetches both and is refused, so it is never cached.
fn warm(w: &mut World) {
    let forged = tokens::sign_with(
        tokens::Key::OtherRsa,
        &json!({"alg": "RS256", "kid": "test-rsa"}),
        &claims_with(json!({})),
    );
    assert!(!is_continue(&at(
        w,
        NOW,
        request(&[&format!("Bearer {forged}")])
    )));
    assert_eq!(w.workers[0].engine.core().verified_len(), 0);
    hits_and_misses(w);
    w.workers[0].host.counters.clear();
}

/// Each token once, all let in.
fn pass(w: &mut World, tokens: &[String]) {
    for t in tokens {
        assert!(is_continue(&at(w, NOW, request(&[t]))), "{t}");
    }
}

#[test]
fn token_cache_size_tokens_stay_verified_and_the_next_evicts_the_oldest() {
    const N: usize = 5;
    let mut w = world(json!({ "token_cache_size": N }));
    warm(&mut w);
    let tokens = distinct_tokens(N + 1);
    let (first, extra) = tokens.split_at(N);

    pass(&mut w, first);
    assert_eq!(hits_and_misses(&mut w), (0, N as u64), "each verified once");
    // A second pass over the N: all cached, no signature checked.
    pass(&mut w, first);
    assert_eq!(hits_and_misses(&mut w), (N as u64, N as u64));
    assert_eq!(w.workers[0].engine.core().verified_len(), N);

    // The N+1-th is verified and takes the place of the first one in.
    pass(&mut w, extra);
    assert_eq!(hits_and_misses(&mut w), (N as u64, N as u64 + 1));
    assert_eq!(w.workers[0].engine.core().verified_len(), N);
    pass(&mut w, &first[1..]);
    assert_eq!(
        hits_and_misses(&mut w),
        (2 * N as u64 - 1, N as u64 + 1),
        "the others are still cached"
    );
    pass(&mut w, &first[..1]);
    assert_eq!(
        hits_and_misses(&mut w),
        (2 * N as u64 - 1, N as u64 + 2),
        "the oldest was evicted: verified again"
    );
    // One discovery and one JWKS for all of it (the forged token's): a
    // miss checks a signature, it calls no one.
    assert_eq!(w.calls.len(), 2);
}

#[test]
fn a_working_set_larger_than_the_cache_misses_every_time() {
    // A cycle longer than the cache, each token used once per turn: each
    // was evicted (unused since inserted) by the time it comes round
    // again. The cost that `token_cache_size` is there to avoid.
    let tokens = distinct_tokens(4);
    let mut small = world(json!({ "token_cache_size": 3 }));
    let mut large = world(json!({ "token_cache_size": 4 }));
    warm(&mut small);
    warm(&mut large);
    for _ in 0..3 {
        pass(&mut small, &tokens);
        pass(&mut large, &tokens);
    }
    assert_eq!(hits_and_misses(&mut small), (0, 12));
    assert_eq!(hits_and_misses(&mut large), (8, 4));
}

#[test]
fn a_token_in_use_outlives_a_stream_of_tokens_seen_once() {
    // Each token of the stream is used once: those go first. First in,
    // first out evicted the token in use every `token_cache_size`
    // insertions, and verified it again.
    let mut w = world(json!({ "token_cache_size": 3 }));
    warm(&mut w);
    let tokens = distinct_tokens(11);
    let (hot, stream) = tokens.split_first().unwrap();
    for once in stream {
        pass(&mut w, std::slice::from_ref(hot));
        pass(&mut w, std::slice::from_ref(once));
    }
    assert_eq!(
        hits_and_misses(&mut w),
        (9, 11),
        "the token in use verified once, each of the stream's once"
    );
    assert_eq!(w.workers[0].engine.core().verified_len(), 3);
}

/// Every opaque token whose name starts with `good` is active.
fn introspect_answer(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
    let active = body.contains("token=good");
    let answer = json!({"active": active, "client_id": "c1", "exp": NOW + 100});
    IdpReply {
        status: Some(200),
        body: answer.to_string().into_bytes(),
        retry_after: None,
    }
}

#[test]
fn token_cache_size_also_bounds_the_introspection_answers() {
    let config = json!({"client_id": "rs", "client_secret": "rs-secret",
                        "introspection_endpoint": "https://idp.example.com/introspect",
                        "token_cache_size": 2});
    let mut w = world_with(config, healthy, introspect_answer);
    let tokens = ["Bearer good-1", "Bearer good-2", "Bearer good-3"].map(String::from);
    pass(&mut w, &tokens[..2]);
    pass(&mut w, &tokens[..2]);
    assert_eq!(token_calls(&w).len(), 2, "both answers cached");
    pass(&mut w, &tokens[2..]);
    pass(&mut w, &tokens[1..]);
    assert_eq!(token_calls(&w).len(), 3, "the two newest still cached");
    pass(&mut w, &tokens[..1]);
    assert_eq!(token_calls(&w).len(), 4, "the oldest asked again");
}
