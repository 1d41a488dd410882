//! Not tests: request loops to profile the filter's own code, run by hand.
//! The time of a cached request in Envoy is mostly host calls and V8 entry
//! (BENCHMARKS.md); what is left is ours, and these show where it goes:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target wasm32-wasip1
//! OIDC_WASM=target/wasm32-wasip1/release/envoy_oidc.wasm HARNESS_PERFMAP=1 \
//!   perf record -g cargo test --release --features wasm-test-harness/perfmap \
//!   --test harness profile -- --ignored
//! perf report --no-children --sort dso,sym    # the module: dso "[JIT] tid …"
//! ```
//!
//! Without the `perfmap` feature wasmtime writes no map and the module's
//! functions show as bare addresses.

use crate::common::idp::warm;
use crate::common::tokens::{claims, rs256};
use crate::common::*;

const ROUNDS: usize = 200_000;

/// Sends `ROUNDS` requests made by `request`, each let through, and prints
/// the time per request.
fn timed(label: &str, request: impl Fn() -> wasm_test_harness::Request) {
    timed_n(label, ROUNDS, |_| request());
}

/// `rounds` requests, the i-th made by `request(i)`.
fn timed_n(label: &str, rounds: usize, request: impl Fn(usize) -> wasm_test_harness::Request) {
    let started = std::time::Instant::now();
    for i in 0..rounds {
        let req = request(i);
        req.expect_continue();
        req.finish();
    }
    eprintln!(
        "{:.2} µs per {label} (wasmtime, harness included)",
        started.elapsed().as_secs_f64() * 1e6 / rounds as f64
    );
}

#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_cached_bearer_requests() {
    let h = harness();
    warm(&h);
    let token = rs256(&claims(&h));
    timed("cached bearer request", || bearer(&h, &token));
}

/// First-seen RS256 tokens, each sent once (fewer than the token cache
/// holds, so none is evicted and none repeats): JWS parse, claims checks,
/// the signature (bignum/), the cache insert.
#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_first_seen_bearer_requests() {
    const TOKENS: usize = 4000;
    let h = harness();
    warm(&h);
    let base = claims(&h);
    let tokens: Vec<String> = (0..TOKENS)
        .map(|i| {
            let mut c = base.clone();
            c["jti"] = serde_json::json!(format!("first-seen-{i}"));
            rs256(&c)
        })
        .collect();
    timed_n("first-seen bearer request", TOKENS, |i| {
        bearer(&h, &tokens[i])
    });
}

/// The bypass path (no credential, a `bypass_paths` entry): the fixed cost
/// of a request with no authentication work (bench/ladder.sh prices its
/// steps in Envoy).
#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_bypassed_requests() {
    let mut cfg = config();
    cfg["bypass_paths"] = serde_json::json!(["/public"]);
    let h = harness_with(&cfg);
    timed("bypassed request", || {
        h.request(&[
            (":method", "GET"),
            (":path", "/public/x"),
            (":authority", "gw.example.com"),
            (":scheme", "https"),
        ])
    });
}

/// A session cookie carrying a cached token: the cookie found, opened from
/// the per-worker cache, the token forwarded and our cookie stripped.
#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_session_requests() {
    use envoy_oidc::session::{Session, cookie};
    let mut cfg = config();
    cfg["auth_methods"] = serde_json::json!(["bearer", "session"]);
    cfg["session_secret"] = serde_json::json!("profile-session-secret-of-32-bytes!!");
    let h = harness_with(&cfg);
    warm(&h);
    let token = rs256(&claims(&h));
    let parsed = envoy_oidc::config::Config::parse(cfg.to_string().as_bytes())
        .unwrap()
        .config;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let session = Session {
        sid: "profile-session".into(),
        access_token: token.as_str().into(),
        refresh_token: None,
        id_token: None,
        identity: None,
        scope: None,
        expires_at: now + 3000,
        obtained_at: now,
        created_at: now,
        renewed_at: now,
        seen_at: now,
    };
    let name = &parsed.session.cookie_name;
    let sealed = parsed
        .sealer(&parsed.session.secrets)
        .seal(name, &serde_json::to_vec(&session).unwrap())
        .unwrap();
    let jar: Vec<String> = cookie::split(name, &sealed)
        .unwrap()
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    let jar = jar.join("; ");
    timed("session request", || {
        h.request(&[
            (":method", "GET"),
            (":path", "/oidcroute/get"),
            (":authority", "gw.example.com"),
            (":scheme", "https"),
            ("cookie", &jar),
        ])
    });
}

/// Cached client credentials: the Basic header parsed, the cache key
/// hashed, the cached token forwarded in place of the Basic header.
#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_cached_client_credentials_requests() {
    timed_cached_client_credentials("cached client-credentials request", config());
}

/// The same under a rule with an audience of its own (as kong2wasm makes of
/// a Kong route's `audience_required`): the obtained token judged by it.
#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_cached_client_credentials_requests_under_a_rule_audience() {
    let mut cfg = config();
    cfg["rules"] =
        serde_json::json!([{"match": {"paths": ["/"]}, "audience_required": ["client-1"]}]);
    cfg["audience_claim"] = serde_json::json!(["client_id"]);
    timed_cached_client_credentials("cached client-credentials request, a rule's audience", cfg);
}

/// Client credentials exchanged once under `cfg` (the token endpoint on
/// its own cluster, as Cognito's), then requests with them timed.
fn timed_cached_client_credentials(label: &str, mut cfg: serde_json::Value) {
    use crate::common::idp::{
        AUTH_HOST, TOKEN_CLUSTER, basic, serve_discovery, serve_jwks, split_discovery,
        token_response,
    };
    cfg["scopes"] = serde_json::json!(["kongresource/scope1"]);
    cfg["idp_clusters"] = serde_json::json!({ AUTH_HOST: TOKEN_CLUSTER });
    let h = harness_on(&cfg, &[CLUSTER, TOKEN_CLUSTER], 1);
    let token = rs256(&claims(&h));
    let auth = basic("client-1", "top secret+1");
    let first = get(&h, Some(&auth));
    first.expect_paused();
    serve_discovery(&h, &split_discovery());
    first
        .expect_http_call(TOKEN_CLUSTER)
        .respond_json(200, &token_response(&token, 3600));
    serve_jwks(&h);
    first.expect_continue();
    first.finish();
    timed(label, || get(&h, Some(&auth)));
}
