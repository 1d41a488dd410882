//! Not tests: request loops to profile the filter's own code, run by hand.
//! The time of a cached request in Envoy is mostly host calls and V8 entry
//! (BENCHMARKS.md); what is left is ours, and these show where it goes:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_STRIP=false cargo build --release --target wasm32-wasip1
//! OIDC_WASM=target/wasm32-wasip1/release/envoy_oidc.wasm HARNESS_PERFMAP=1 \
//!   perf record -g cargo test --release --test harness profile -- --ignored
//! perf report --no-children
//! ```

use crate::common::idp::warm;
use crate::common::tokens::{claims, rs256};
use crate::common::*;

const ROUNDS: usize = 200_000;

#[test]
#[ignore = "a profiling loop, run by hand"]
fn profile_cached_bearer_requests() {
    let h = harness();
    warm(&h);
    let token = rs256(&claims(&h));
    let started = std::time::Instant::now();
    for _ in 0..ROUNDS {
        let req = bearer(&h, &token);
        req.expect_continue();
        req.finish();
    }
    eprintln!(
        "{:.2} µs per cached bearer request (wasmtime, harness included)",
        started.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64
    );
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
    let started = std::time::Instant::now();
    for _ in 0..ROUNDS {
        let req = h.request(&[
            (":method", "GET"),
            (":path", "/public/x"),
            (":authority", "gw.example.com"),
            (":scheme", "https"),
        ]);
        req.expect_continue();
        req.finish();
    }
    eprintln!(
        "{:.2} µs per bypassed request (wasmtime, harness included)",
        started.elapsed().as_secs_f64() * 1e6 / ROUNDS as f64
    );
}
