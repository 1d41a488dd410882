//! Leases: one call per key across workers, for no longer than a call can
//! take, released only by their holder; slots that read only for their
//! owner.

use envoy_oidc::flow::Leases;
use envoy_oidc::flow::slots::{self, prepare_leases};
use envoy_oidc_testkit::world::Outcome;
use envoy_oidc_testkit::{EnvoyStore, World};

use crate::fixtures::*;

#[test]
fn a_lease_is_exclusive_until_released_or_lapsed_and_only_its_holder_releases_it() {
    let mut s = EnvoyStore::default();
    prepare_leases(&mut s, "p/", "k");
    let (a, b) = ([1u8; 32], [2u8; 32]);
    let (one, two) = (Leases::new("p/", [1; 8]), Leases::new("p/", [2; 8]));
    assert!(one.acquire(&mut s, "k", &a, 100, 2000));
    assert!(!two.acquire(&mut s, "k", &a, 100, 2000), "held");
    assert!(
        two.acquire(&mut s, "k", &a, 104, 2000),
        "lapsed after the call timeout"
    );
    one.release(&mut s, "k", &a);
    assert!(
        !one.acquire(&mut s, "k", &a, 104, 2000),
        "the lapsed holder's release left the new holder's lease alone"
    );
    two.release(&mut s, "k", &a);
    assert!(one.acquire(&mut s, "k", &b, 104, 2000));
}

#[test]
fn a_lease_binds_whatever_timeout_the_configuration_reading_it_has() {
    // A refresh lease is shared by every configuration that opens the
    // session: one waiting two minutes for its IdP holds it against one
    // whose calls time out in a second.
    let mut s = EnvoyStore::default();
    prepare_leases(&mut s, "p/", "k");
    let key = [1u8; 32];
    let (slow, quick) = (Leases::new("p/", [1; 8]), Leases::new("p/", [2; 8]));
    assert!(slow.acquire(&mut s, "k", &key, 100, 120_000));
    assert!(!quick.acquire(&mut s, "k", &key, 100, 1000), "held");
    assert!(
        !quick.acquire(&mut s, "k", &key, 220, 1000),
        "until it lapses"
    );
    assert!(quick.acquire(&mut s, "k", &key, 221, 1000), "lapsed");
    // Ending later than any lease taken now could (the longest timeout,
    // five minutes), beyond the workers' skew: taken before the clock
    // stepped back, and free rather than held for as long.
    let mut s = EnvoyStore::default();
    prepare_leases(&mut s, "p/", "k");
    assert!(slow.acquire(&mut s, "k", &key, 1000, 120_000));
    let (until, longest) = (1000 + 121, 301 + 60);
    let believed = quick.acquire(&mut s, "k", &key, until - longest, 1000);
    assert!(!believed, "within the longest lease and the skew");
    let past = quick.acquire(&mut s, "k", &key, until - longest - 1, 1000);
    assert!(past, "beyond them");
}

#[test]
fn a_slot_reads_only_for_its_owner() {
    let mut s = EnvoyStore::default();
    let name = slots::slot_name("p/", "k", &[1; 32]);
    slots::write(&mut s, &name, &[1; 32], b"x");
    assert_eq!(slots::read(&s, &name, &[1; 32]).as_deref(), Some(&b"x"[..]));
    assert_eq!(slots::read(&s, &name, &[2; 32]), None);
}

#[test]
fn a_late_reply_does_not_release_the_lease_another_worker_took_since() {
    let mut w = World::new(&api_config(), 3, NOW, idp);
    for n in 0..3 {
        w.request(n, basic("warm", "up")); // discovery known everywhere
    }
    let exchanges = grants(&w.calls, "client_credentials", None);

    w.send(0, basic("client-1", "s"));
    let slow = w.pending()[0].token;
    // Worker 0's exchange outlives its lease; worker 1 takes the lease over.
    w.now += 3;
    let on_1 = w.send(1, basic("client-1", "s"));
    assert_eq!(grants(&w.calls, "client_credentials", None), exchanges + 2);
    // Worker 0's call fails late: it must not release worker 1's lease.
    w.answer(slow, status(503));
    let on_2 = w.send(2, basic("client-1", "s"));
    assert_eq!(
        grants(&w.calls, "client_credentials", None),
        exchanges + 2,
        "worker 2 waits for worker 1's exchange instead of making a third"
    );
    assert_eq!(w.outcome(2, on_2), &Outcome::Paused);
    w.settle();
    let token = forwarded(w.decision(1, on_1)).expect("forwarded");
    assert_eq!(forwarded(w.decision(2, on_2)), Some(token));
}

#[test]
fn shared_keys_stay_bounded_for_many_clients() {
    // One token for every client: signed once, verified once.
    let token = fresh_token(NOW, "shared");
    let mut cfg = api_config();
    cfg["idp_call_budget"] =
        serde_json::json!({"client_credentials": {"per_second": 10000, "burst": 10000}});
    let mut w = World::new(&cfg, 1, NOW, move |req, now| {
        if envoy_oidc_testkit::world::header(req, ":path") == Some(TOKEN_PATH) {
            ok(token_response(&token))
        } else {
            idp(req, now)
        }
    });
    for i in 0..300 {
        let d = w.request(0, basic(&format!("client-{i}"), "s"));
        assert_eq!(status_of(&d), 200);
    }
    let after_300 = w.store.len();
    for i in 300..2000 {
        w.request(0, basic(&format!("client-{i}"), "s"));
    }
    assert!(w.store.len() <= after_300 + 1024, "slots are a fixed set");
    // Slots, leases, budget slots and buckets, a few documents and keys.
    let budget = 5 * (8 + 1);
    assert!(
        w.store.len() < 1024 + 3 * 64 + budget + 10,
        "{} keys",
        w.store.len()
    );
}
