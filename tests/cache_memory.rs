//! Memory per verified-token cache entry, measured by counting the bytes
//! the test's allocator hands out: two workers verify the same distinct
//! tokens, one keeping them all (`token_cache_size: N`), one keeping one;
//! the difference is what N - 1 entries hold (the token, its parsed claims,
//! the table slots). Native sizes (64-bit), requested bytes: the wasm32
//! filter's pointers are half as wide and its allocator adds its own
//! headers, so `bench/working-set.sh` measures a real Envoy too.
//!
//! Its own test binary: the counting allocator must see nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use envoy_oidc::action::{Action, IdpReply, IdpRequest};
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::tokens::{self, ISSUER};
use envoy_oidc_testkit::world::path;
use serde_json::json;

/// Bytes and allocations live on this thread (the world runs on one).
struct Counting;

thread_local! {
    static LIVE: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn count(bytes: isize, allocations: isize) {
    let _ = LIVE.try_with(|live| {
        let (b, a) = live.get();
        live.set((b + bytes, a + allocations));
    });
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize, 1);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        count(-(layout.size() as isize), -1);
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, layout, new_size) };
        if !q.is_null() {
            count(new_size as isize - layout.size() as isize, 0);
        }
        q
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> (isize, isize) {
    LIVE.with(Cell::get)
}

/// Distinct tokens cached. A power of two, as the default: the map's table
/// has just doubled, so its slots count twice per entry, as in the worst case.
const N: usize = 128;

const NOW: u64 = 1_800_000_000;

/// An access token shaped like Cognito's, as `bench/mint.mjs` mints them:
/// 11 claims, about 800 bytes signed with RSA-2048.
fn typical_token(i: usize) -> String {
    tokens::rs256(&json!({
        "sub": "bench-client", "token_use": "access",
        "scope": "kongresource/scope1 kongresource/scope2", "auth_time": NOW,
        "iss": ISSUER, "exp": NOW + 7200, "iat": NOW, "version": 2,
        "jti": format!("{i}-0123456789abcdef01234567"),
        "client_id": "bench-client", "username": "bench-user@example.com",
    }))
}

fn idp(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = if path(r).ends_with("/openid-configuration") {
        tokens::discovery()
    } else {
        tokens::jwks()
    };
    IdpReply {
        status: Some(200),
        body,
        retry_after: None,
    }
}

fn request(token: &str) -> RequestView {
    RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/api".to_vec()),
        (
            "authorization".into(),
            format!("Bearer {token}").into_bytes(),
        ),
    ])
}

/// Bytes and allocations a worker keeping `size` tokens still holds after
/// verifying `requests` (its discovery and keys already fetched).
fn held_after(size: usize, requests: Vec<RequestView>) -> (isize, isize) {
    let config = json!({"issuer": ISSUER, "idp_cluster": "idp", "token_cache_size": size});
    let mut w = World::new(&config, 1, NOW, idp);
    // Discovery and keys fetched, the cache's tables allocated.
    w.request(0, request(&typical_token(N)));
    let before = live();
    for r in requests {
        let d = w.request(0, r);
        assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    }
    let after = live();
    assert_eq!(
        w.workers[0].engine.core().verified_len(),
        size.min(N + 1),
        "cache filled as configured"
    );
    (after.0 - before.0, after.1 - before.1)
}

#[test]
fn a_verified_token_entry_holds_its_token_and_claims_and_little_more() {
    let tokens: Vec<String> = (0..N).map(typical_token).collect();
    let token_len = tokens[0].len();
    let requests: Vec<RequestView> = tokens.iter().map(|t| request(t)).collect();
    let all = held_after(N + 1, requests.clone());
    let one = held_after(1, requests);
    let entries = (N - 1) as isize;
    let (bytes, allocations) = ((all.0 - one.0) / entries, (all.1 - one.1) / entries);
    println!(
        "verified-token cache: {bytes} bytes and {allocations} allocations per entry \
         ({token_len}-byte RS256 token, 11 claims; native 64-bit, bytes requested)"
    );
    assert!(
        bytes > token_len as isize,
        "an entry holds at least its token: {bytes} bytes"
    );
    assert!(
        bytes < 4096,
        "{bytes} bytes per entry of a {token_len}-byte token: what does an entry hold now?"
    );
}
