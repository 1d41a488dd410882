//! The IdP call budget (`idp_call_budget`): calls that unauthenticated
//! input can cause are limited per purpose for the whole Envoy, in rate and
//! in flight; past it the filter answers 503 with Retry-After, calling
//! nothing, and cached traffic is unaffected.

use envoy_oidc::action::{Action, Decision};
use envoy_oidc::budget::Purpose;
use envoy_oidc::config::Config;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::world::Outcome;
use serde_json::{Value, json};

use crate::fixtures::*;

fn budgeted(budget: Value) -> Value {
    let mut c = api_config();
    c["idp_call_budget"] = json!({ "client_credentials": budget });
    c
}

fn retry_after(d: &Decision) -> Option<&str> {
    match &d.action {
        Action::Respond(r) => r
            .headers
            .iter()
            .find(|(n, _)| n == "retry-after")
            .map(|(_, v)| v.as_str()),
        Action::Continue { .. } => None,
    }
}

#[test]
fn a_flood_of_random_client_credentials_spends_only_the_budget() {
    let cfg = budgeted(json!({"per_second": 2, "burst": 3, "concurrent": 8}));
    let mut w = World::new(&cfg, 2, NOW, idp);
    let cached = fresh_token(NOW, "cached");
    assert!(passes_with(&w.request(0, bearer(&cached)), &cached));

    let mut over = 0;
    for i in 0..30 {
        let d = w.request(i % 2, basic(&format!("random-{i}"), "x"));
        if status_of(&d) == 503 {
            assert_eq!(retry_after(&d), Some("1"));
            over += 1;
        }
        // Cached traffic goes on during the flood.
        assert!(passes_with(&w.request(i % 2, bearer(&cached)), &cached));
    }
    assert_eq!(
        grants(&w.calls, "client_credentials", None),
        3,
        "the burst, for both workers"
    );
    assert_eq!(over, 27);

    // A second later the budget has refilled by its rate.
    w.now += 1;
    for i in 0..5 {
        w.request(0, basic(&format!("later-{i}"), "x"));
    }
    assert_eq!(grants(&w.calls, "client_credentials", None), 5);
}

#[test]
fn calls_in_flight_are_bounded_and_a_reply_frees_its_slot() {
    let cfg = budgeted(json!({"per_second": 100, "burst": 100, "concurrent": 2}));
    let mut w = World::new(&cfg, 1, NOW, idp);
    w.request(0, basic("warm", "up")); // discovery known
    let ids: Vec<u32> = (0..4)
        .map(|i| w.send(0, basic(&format!("c{i}"), "s")))
        .collect();
    let pending = w.pending();
    assert_eq!(pending.len(), 2, "two in flight");
    assert_eq!(status_of(w.decision(0, ids[2])), 503);
    assert_eq!(status_of(w.decision(0, ids[3])), 503);
    w.answer_next();
    assert!(matches!(w.outcome(0, ids[0]), Outcome::Decided(_)));
    let next = w.send(0, basic("c4", "s"));
    assert_eq!(
        w.outcome(0, next),
        &Outcome::Paused,
        "the freed slot is taken"
    );
    assert_eq!(w.pending().len(), 2);
}

/// A world whose one budget slot is held by a call whose request went
/// away, and with it the reply: Envoy does not cancel the call, so the IdP
/// still works on it and the slot stays taken.
fn one_slot_held_by_a_lost_call() -> World {
    let cfg = budgeted(json!({"per_second": 100, "burst": 100, "concurrent": 1}));
    let mut w = World::new(&cfg, 1, NOW, idp);
    w.request(0, basic("warm", "up"));
    let lost = w.send(0, basic("a", "s"));
    assert_eq!(w.pending().len(), 1);
    w.drop_request(0, lost);
    w
}

#[test]
fn a_slot_whose_reply_was_lost_comes_back_when_the_call_would_have_timed_out() {
    let mut w = one_slot_held_by_a_lost_call();
    assert_eq!(
        status_of(&w.request(0, basic("b", "s"))),
        503,
        "the slot is taken"
    );
    // ...until the call would have timed out (`idp_timeout_ms` 1000: now + 2).
    w.now += 2;
    let d = w.request(0, basic("c", "s"));
    assert_eq!(status_of(&d), 200, "{d:?}");
}

#[test]
fn a_slot_taken_before_the_clock_stepped_back_is_free_once_the_step_is_past_the_skew() {
    let mut w = one_slot_held_by_a_lost_call();
    // Stepped back within the workers' skew: still taken.
    w.now = NOW - 30;
    assert_eq!(status_of(&w.request(0, basic("b", "s"))), 503);
    // Stepped back five minutes: taken later than now could be, so free
    // now, not for the five minutes the step lasts (as when it was held
    // for as long as the longest call any configuration may wait).
    w.now = NOW - 300;
    let d = w.request(0, basic("c", "s"));
    assert_eq!(status_of(&d), 200, "{d:?}");
}

#[test]
fn clients_resetting_their_streams_keep_no_more_calls_in_flight_than_the_budget() {
    let cfg = budgeted(json!({"per_second": 100, "burst": 100, "concurrent": 1}));
    let mut w = World::new(&cfg, 1, NOW, idp);
    w.request(0, basic("warm", "up")); // discovery known
    for i in 0..10 {
        let id = w.send(0, basic(&format!("random-{i}"), "x"));
        w.drop_request(0, id);
    }
    let in_flight = w
        .pending()
        .iter()
        .filter(|c| c.path() == TOKEN_PATH)
        .count();
    assert_eq!(in_flight, 1, "calls sent to the IdP with concurrent: 1");
}

#[test]
fn other_purposes_keep_their_own_budget() {
    let mut cfg = api_config();
    cfg["idp_call_budget"] =
        json!({"client_credentials": {"per_second": 1, "burst": 1, "concurrent": 1}});
    let mut w = World::new(&cfg, 1, NOW, idp);
    w.request(0, basic("a", "s"));
    assert_eq!(status_of(&w.request(0, basic("b", "s"))), 503);
    // A token of a kind we verify locally needs no budgeted call at all.
    let t = fresh_token(NOW, "t");
    assert!(passes_with(&w.request(0, bearer(&t)), &t));
}

#[test]
fn budgets_that_make_no_sense_are_refused_naming_the_field() {
    for (budget, field) in [
        (json!({"logins": {}}), "idp_call_budget.logins"),
        (
            json!({"code": {"per_second": 0}}),
            "idp_call_budget.code.per_second",
        ),
        (
            json!({"refresh": {"concurrent": 100000}}),
            "idp_call_budget.refresh.concurrent",
        ),
        (
            json!({"userinfo": {"rate": 3}}),
            "idp_call_budget.userinfo.rate",
        ),
        (json!({"code": 5}), "idp_call_budget.code"),
        // The bucket refills to `burst` each second: a higher rate would
        // be capped at it without a word.
        (
            json!({"code": {"per_second": 100, "burst": 1}}),
            "idp_call_budget.code.burst",
        ),
    ] {
        let mut c = api_config();
        c["idp_call_budget"] = budget.clone();
        let Err(e) = Config::parse(&serde_json::to_vec(&c).unwrap()) else {
            panic!("{budget} was accepted")
        };
        assert!(e.to_string().contains(field), "{e} should name {field}");
    }
}

#[test]
fn a_rate_above_the_default_burst_is_the_rate() {
    // `burst` left out follows `per_second` (the bucket refills once a
    // second, up to `burst`): 100 a second, not the default burst's 20.
    let cfg = budgeted(json!({"per_second": 100}));
    let mut w = World::new(&cfg, 1, NOW, idp);
    w.request(0, basic("warm", "up"));
    let mut served = 0;
    for s in 1..=3 {
        w.now = NOW + s;
        for i in 0..100 {
            if status_of(&w.request(0, basic(&format!("c{s}-{i}"), "x"))) == 200 {
                served += 1;
            }
        }
    }
    assert_eq!(served, 300);
}

#[test]
fn configurations_of_one_idp_spend_one_client_credentials_budget() {
    // A filter per group of routes (whose whole-filter keys differ) is a
    // shared-data namespace of its own, but the IdP is the same, and so is
    // what a flood of made-up Basic pairs sent to each spends of it.
    let cfg = budgeted(json!({"per_second": 1, "burst": 1, "concurrent": 8}));
    let mut other_route = cfg.clone();
    other_route["bypass_paths"] = json!(["/health"]);
    // Callers' credentials are exchanged, whichever client is the gateway's.
    let mut other_client = cfg.clone();
    other_client["client_id"] = json!("another-app");
    // A budget raised for one filter is that filter's own.
    let raised = budgeted(json!({"per_second": 2, "burst": 2, "concurrent": 8}));
    let mut w = World::new(&cfg, 0, NOW, idp);
    let a = w.start_configured(&cfg, "A/", [7; 72]);
    let b = w.start_configured(&other_route, "B/", [8; 72]);
    let c = w.start_configured(&other_client, "C/", [9; 72]);
    let r = w.start_configured(&raised, "R/", [10; 72]);

    assert_eq!(status_of(&w.request(a, basic("first", "s"))), 200);
    for (worker, id) in [(b, "second"), (c, "third")] {
        let d = w.request(worker, basic(id, "s"));
        assert_eq!(status_of(&d), 503, "{id}: {d:?}");
        assert_eq!(retry_after(&d), Some("1"));
    }
    assert_eq!(grants(&w.calls, "client_credentials", None), 1);
    assert_eq!(status_of(&w.request(r, basic("fourth", "s"))), 200);
    assert_eq!(grants(&w.calls, "client_credentials", None), 2);
}

#[test]
fn calls_the_gateways_client_makes_are_budgeted_per_client() {
    // A code, a refresh, an introspection: the gateway's client is
    // authenticated, so that client's quota is what is spent.
    let names = |c: &Value| envoy_oidc::flow::budget_names(&envoy_oidc_testkit::world::config(c));
    let mut route_group = web_config(true);
    route_group["bypass_paths"] = json!(["/health"]);
    let mut other_client = web_config(true);
    other_client["client_id"] = json!("another-app");
    let (web, group, other) = (
        names(&web_config(true)),
        names(&route_group),
        names(&other_client),
    );
    for p in [Purpose::Code, Purpose::Refresh, Purpose::Introspection] {
        assert_eq!(web.bucket(p), group.bucket(p), "{p:?}");
        assert_ne!(web.bucket(p), other.bucket(p), "{p:?}");
    }
    for p in [Purpose::ClientCredentials, Purpose::Userinfo] {
        assert_eq!(web.bucket(p), other.bucket(p), "{p:?}");
    }
}

#[test]
fn an_idp_spends_one_budget_however_its_issuer_is_spelled() {
    // An issuer with a final `/` (Auth0's) is configured as itself or by
    // its discovery URL, which Kong takes too (the slash then optional).
    let spelled = |issuer: &str| {
        let mut c = web_config(true);
        c["issuer"] = json!(issuer);
        envoy_oidc::flow::budget_names(&envoy_oidc_testkit::world::config(&c))
    };
    let plain = spelled("https://tenant.example.com/");
    let by_discovery = spelled("https://tenant.example.com/.well-known/openid-configuration");
    for p in Purpose::ALL {
        assert_eq!(plain.bucket(p), by_discovery.bucket(p), "{p:?}");
    }
}

#[test]
fn a_slot_held_by_a_configuration_with_a_longer_timeout_stays_held() {
    // The same budget, spent by a filter that waits two minutes for its
    // IdP and one that waits the default five seconds.
    let budget = json!({"per_second": 100, "burst": 100, "concurrent": 1});
    let mut patient = budgeted(budget.clone());
    patient["idp_timeout_ms"] = json!(120_000);
    let hasty = budgeted(budget);
    let mut w = World::new(&hasty, 0, NOW, idp);
    let p = w.start_configured(&patient, "P/", [7; 72]);
    let h = w.start_configured(&hasty, "H/", [8; 72]);
    w.request(p, basic("warm", "up")); // documents
    w.request(h, basic("warm", "up"));
    let calls = grants(&w.calls, "client_credentials", None);
    let slow = w.send(p, basic("slow", "s"));
    assert_eq!(w.outcome(p, slow), &Outcome::Paused);
    let other = w.send(h, basic("other", "s"));
    let d = w.decision(h, other);
    assert_eq!(status_of(d), 503, "the one slot is in flight: {d:?}");
    assert_eq!(w.pending().len(), 1);
    assert_eq!(grants(&w.calls, "client_credentials", None), calls + 1);
}
