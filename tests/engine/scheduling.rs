//! One worker's scheduling: joining calls in flight, requests that go away
//! while they own a call, replies that arrive for nobody, refused
//! dispatches. Counterparts of the harness tests over the .wasm.

use envoy_oidc_testkit::World;
use envoy_oidc_testkit::world::Outcome;

use crate::fixtures::*;

#[test]
fn requests_arriving_during_a_fetch_share_it() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let token = fresh_token(NOW, "a");
    let first = w.send(0, bearer(&token));
    let second = w.send(0, bearer(&token));
    assert_eq!(
        w.pending().len(),
        1,
        "the second joined the discovery fetch"
    );
    w.settle();
    assert!(passes_with(w.decision(0, first), &token));
    assert!(passes_with(w.decision(0, second), &token));
    assert_eq!(w.calls.len(), 2, "one discovery, one JWKS");
}

#[test]
fn a_second_request_makes_no_idp_call() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let token = fresh_token(NOW, "a");
    w.request(0, bearer(&token));
    let calls = w.calls.len();
    let d = w.request(0, bearer(&token));
    assert!(passes_with(&d, &token));
    assert_eq!(w.calls.len(), calls);
}

#[test]
fn requests_on_one_worker_join_the_exchange_in_flight() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let first = w.send(0, basic("client-1", "s"));
    w.answer_next(); // discovery
    let second = w.send(0, basic("client-1", "s"));
    assert_eq!(grants(&w.calls, "client_credentials", None), 1);
    w.settle();
    assert_eq!(grants(&w.calls, "client_credentials", None), 1);
    assert_eq!(status_of(w.decision(0, first)), 200);
    assert_eq!(status_of(w.decision(0, second)), 200);
}

#[test]
fn the_waiter_of_a_request_gone_during_discovery_refetches_on_the_tick() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let token = fresh_token(NOW, "a");
    let first = w.send(0, bearer(&token));
    let second = w.send(0, bearer(&token));
    let orphan = w.pending()[0].token;
    w.drop_request(0, first);

    w.tick(0);
    let refetch = w.pending().into_iter().find(|c| c.token != orphan);
    let refetch = refetch.expect("discovery dispatched again on the tick");
    assert_eq!(
        refetch.owner, w.workers[0].host.root,
        "from the root context"
    );
    // The orphan's reply goes nowhere: its context is gone.
    assert!(!w.answer(orphan, ok(envoy_oidc_testkit::tokens::discovery())));
    assert_eq!(w.outcome(0, second), &Outcome::Paused);
    w.settle();
    assert!(passes_with(w.decision(0, second), &token));
}

#[test]
fn the_waiter_of_a_request_gone_during_the_exchange_redispatches_on_the_tick() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let first = w.send(0, basic("client-1", "s"));
    w.answer_next(); // discovery
    let second = w.send(0, basic("client-1", "s"));
    let orphan = w.pending()[0].token;
    w.drop_request(0, first);
    // Its lease was given back: the tick makes the call at once.
    w.tick(0);
    assert_eq!(grants(&w.calls, "client_credentials", None), 2);
    assert!(!w.answer(orphan, status(200)), "the reply reaches nobody");
    w.settle();
    assert_eq!(status_of(w.decision(0, second)), 200);
    assert_eq!(grants(&w.calls, "client_credentials", None), 2);
}

#[test]
fn a_dispatch_the_host_refuses_is_503_for_every_waiter_and_gives_the_lease_back() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    w.request(0, basic("warm", "up")); // discovery known
    w.refuse_dispatch = true;
    let d = w.request(0, basic("client-1", "s"));
    assert_eq!(status_of(&d), 503);
    assert!(
        w.logs(0).iter().any(|(_, l)| l.contains("refused")),
        "the refusal is logged"
    );
    // Remembered as an unanswered call (a few seconds), then tried again.
    w.now += 6;
    let before = w.calls.len();
    let d = w.request(0, basic("client-1", "s"));
    assert_eq!(status_of(&d), 503);
    assert_eq!(w.calls.len(), before, "refused again, nothing sent");
    assert!(
        w.logs(0)
            .iter()
            .filter(|(_, l)| l.contains("refused"))
            .count()
            >= 2,
        "the lease was given back: the second request tried the dispatch itself"
    );
}

#[test]
fn a_reply_after_its_request_went_away_resumes_nobody_and_decides_nothing() {
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let token = fresh_token(NOW, "a");
    let only = w.send(0, bearer(&token));
    let call = w.pending()[0].token;
    w.drop_request(0, only);
    assert!(!w.answer(call, ok(envoy_oidc_testkit::tokens::discovery())));
    w.settle();
    assert_eq!(w.outcome(0, only), &Outcome::Gone);
    // The next request starts over and is served.
    let d = w.request(0, bearer(&token));
    assert!(passes_with(&d, &token));
}

#[test]
fn waiting_requests_share_the_failure_and_the_next_request_tries_again() {
    let mut w = World::new(&api_config(), 1, NOW, |_, _| status(503));
    let token = fresh_token(NOW, "a");
    let first = w.send(0, bearer(&token));
    let second = w.send(0, bearer(&token));
    w.settle();
    assert_eq!(status_of(w.decision(0, first)), 503);
    assert_eq!(status_of(w.decision(0, second)), 503);
    assert_eq!(w.calls.len(), 1, "one failed fetch for both");
    w.idp = Box::new(idp);
    // Within the second, a request fails as they did, asking nothing: an
    // IdP that fails fast is not asked once per request.
    let d = w.request(0, bearer(&token));
    assert_eq!(status_of(&d), 503);
    assert_eq!(w.calls.len(), 1, "not fetched again");
    // The next second, the next request tries again.
    w.now = NOW + 1;
    let d = w.request(0, bearer(&token));
    assert!(passes_with(&d, &token));
}

#[test]
fn a_refresh_outlives_the_request_that_started_it_and_its_outcome_serves_the_next() {
    let mut w = World::new(&web_config(true), 1, NOW, idp);
    let mut session = due_session("s", "rt", NOW);
    // Renewed lately (rolling timeout): the cookie opens for a while yet.
    session.renewed_at = NOW - 100;
    let cookie = session_cookie(SECRET.as_bytes(), &session);
    let first = w.send(0, with_cookie(&cookie));
    w.answer_next(); // discovery
    assert_eq!(
        grants(&w.calls, "refresh_token", None),
        0,
        "not from the request"
    );
    w.drop_request(0, first);
    w.tick(0);
    let refresh = w.pending().into_iter().find(|c| c.path() == TOKEN_PATH);
    let refresh = refresh.expect("dispatched on the tick although its request is gone");
    assert_eq!(
        refresh.owner, w.workers[0].host.root,
        "from the root context"
    );
    let fresh = fresh_token(NOW, "refreshed");
    assert!(
        w.answer(refresh.token, ok(token_response(&fresh))),
        "the reply arrives"
    );
    // The browser retries with the cookie it has: the refresh token is not
    // spent again, the refreshed tokens serve.
    let retry = w.request(0, with_cookie(&cookie));
    assert_eq!(grants(&w.calls, "refresh_token", Some("rt")), 1);
    assert!(passes_with(&retry, &fresh));
    // And so later, past the minute the session's parallel requests need:
    // as long as that cookie could still open (the idling timeout).
    w.now = NOW + 600;
    let late = w.request(0, with_cookie(&cookie));
    assert_eq!(grants(&w.calls, "refresh_token", Some("rt")), 1);
    assert!(passes_with(&late, &fresh), "{late:?}");
}

#[test]
fn a_call_made_for_a_waiter_resumed_by_another_requests_reply_outlives_that_request() {
    // X and Y wait on one discovery fetch; its reply arrives in X's context
    // and resumes both. Y's exchange must not belong to X: X answered and
    // gone, Y's reply would be lost and its exchange made again (its lease
    // and budget slot held meanwhile).
    let mut w = World::new(&api_config(), 1, NOW, idp);
    let x = w.send(0, basic("client-1", "s1"));
    let y = w.send(0, basic("client-2", "s2"));
    assert_eq!(w.pending().len(), 1, "one discovery for both");
    w.answer_next();
    // Y's exchange is the one with Y's credentials.
    let ys = |c: &envoy_oidc_testkit::world::Call| {
        envoy_oidc_testkit::world::header(&c.request, "authorization")
            .is_some_and(|a| a.contains("Y2xpZW50LTI6czI"))
    };
    while matches!(w.outcome(0, x), Outcome::Paused) {
        let call = w.pending().into_iter().find(|c| c.owner == x && !ys(c));
        let call = call.expect("X waits on a call of its own");
        let reply = idp(&call.request, NOW);
        w.answer(call.token, reply);
    }
    w.drop_request(0, x);
    w.settle();
    assert_eq!(
        grants(&w.calls, "client_credentials", None),
        2,
        "one exchange each"
    );
    assert!(
        matches!(w.outcome(0, y), Outcome::Decided(_)),
        "{:?}",
        w.outcome(0, y)
    );
}
