//! Several workers of one Envoy sharing one store: one fetch and one
//! exchange between them, the waiting worker resumed by its tick, key
//! rotation, refresh outcomes, and the keys every worker must agree on.

use envoy_oidc::budget;
use envoy_oidc::config::Config;
use envoy_oidc::flow::Shared;
use envoy_oidc::store::SharedStore;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::store::EnvoyStore;
use envoy_oidc_testkit::tokens::{self, rsa_jwk, rsa_other_key};
use envoy_oidc_testkit::world::{Outcome, header};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::fixtures::*;

#[test]
fn workers_fetching_at_once_make_one_fetch_between_them() {
    let mut w = World::new(&api_config(), 2, NOW, idp);
    let token = fresh_token(NOW, "a");
    let on_0 = w.send(0, bearer(&token));
    let on_1 = w.send(1, bearer(&token));
    assert_eq!(w.pending().len(), 1, "worker 1 found the fetch leased");
    assert_eq!(w.outcome(1, on_1), &Outcome::Paused);
    w.settle();
    assert!(passes_with(w.decision(0, on_0), &token));
    assert!(passes_with(w.decision(1, on_1), &token));
    assert_eq!(
        w.calls.len(),
        2,
        "one discovery and one JWKS for both workers"
    );
}

#[test]
fn two_workers_make_one_token_call_and_the_waiting_one_resumes_on_its_tick() {
    let mut w = World::new(&api_config(), 2, NOW, idp);
    let on_0 = w.send(0, basic("client-1", "s"));
    w.answer_next(); // discovery: worker 0 now exchanges
    let on_1 = w.send(1, basic("client-1", "s"));
    assert_eq!(w.outcome(1, on_1), &Outcome::Paused);
    assert_eq!(
        w.workers[1].host.tick_ms, 20,
        "worker 1 ticks fast while it waits"
    );
    w.settle();
    assert_eq!(grants(&w.calls, "client_credentials", None), 1);
    let token = forwarded(w.decision(0, on_0)).expect("forwarded");
    assert_eq!(forwarded(w.decision(1, on_1)), Some(token));
    assert_eq!(w.workers[1].host.tick_ms, 1000, "and slows down again");
}

#[test]
fn a_worker_whose_fetch_lease_holder_went_silent_fetches_after_the_lease_lapses() {
    let mut w = World::new(&api_config(), 2, NOW, idp);
    let token = fresh_token(NOW, "a");
    w.send(0, bearer(&token));
    let on_1 = w.send(1, bearer(&token));
    w.tick(1);
    assert_eq!(w.pending().len(), 1, "worker 1 waits while the lease holds");
    // Worker 0's call never comes back; its lease lapses with the call timeout.
    w.now += 3;
    w.tick(1);
    assert_eq!(w.pending().len(), 2, "worker 1 fetches itself");
    let mine = w
        .pending()
        .into_iter()
        .find(|c| c.worker == 1)
        .expect("its call");
    w.answer(mine.token, ok(tokens::discovery()));
    w.settle();
    assert!(passes_with(w.decision(1, on_1), &token));
}

/// The JWKS with the fixture keys and a new key `other`.
fn rotated_jwks() -> Vec<u8> {
    let mut set: serde_json::Value = serde_json::from_slice(&tokens::jwks()).expect("json");
    set["keys"]
        .as_array_mut()
        .expect("keys")
        .push(rsa_jwk(&rsa_other_key(), "other"));
    serde_json::to_vec(&set).expect("json")
}

fn signed_by_new_key(now: u64, jti: &str) -> String {
    let mut claims = tokens::access_claims(now);
    claims["jti"] = json!(jti);
    tokens::sign(
        &json!({"alg": "RS256", "kid": "other", "typ": "JWT"}),
        &claims,
    )
}

#[test]
fn after_a_key_rotation_a_worker_that_waited_on_anothers_refetch_takes_the_new_keys() {
    let mut w = World::new(&api_config(), 2, NOW, idp);
    let old = fresh_token(NOW, "old");
    w.request(0, bearer(&old));
    w.request(1, bearer(&old));
    assert_eq!(w.calls.len(), 2, "worker 1 adopted worker 0's documents");

    w.now += 5;
    w.idp = Box::new(|req, now| {
        if header(req, ":path")
            .unwrap_or_default()
            .ends_with("/jwks.json")
        {
            ok(rotated_jwks())
        } else {
            idp(req, now)
        }
    });
    let new = signed_by_new_key(w.now, "new");
    let on_0 = w.send(0, bearer(&new));
    let on_1 = w.send(1, bearer(&new));
    assert_eq!(w.pending().len(), 1, "one refetch, by worker 0");
    w.settle();
    assert!(passes_with(w.decision(0, on_0), &new));
    assert!(
        passes_with(w.decision(1, on_1), &new),
        "worker 1 took the JWKS worker 0 refetched"
    );
    // Another token with the new key on worker 1, within the refetch
    // interval: served from what it adopted, no call.
    let calls = w.calls.len();
    let another = signed_by_new_key(w.now, "another");
    assert!(passes_with(&w.request(1, bearer(&another)), &another));
    assert_eq!(w.calls.len(), calls);
    assert_eq!(
        w.calls_to("/pool/.well-known/jwks.json"),
        2,
        "one JWKS fetch per rotation"
    );
}

#[test]
fn an_unknown_key_is_still_refused_after_looking_in_shared_data() {
    let mut w = World::new(&api_config(), 2, NOW, idp);
    let old = fresh_token(NOW, "old");
    w.request(0, bearer(&old));
    let forged = signed_by_new_key(NOW, "forged");
    let d = w.request(0, bearer(&forged));
    assert_eq!(status_of(&d), 401, "the IdP does not publish `other`");
    let calls = w.calls.len();
    let d = w.request(1, bearer(&forged));
    assert_eq!(status_of(&d), 401);
    let d = w.request(0, bearer(&forged));
    assert_eq!(status_of(&d), 401);
    assert_eq!(
        w.calls.len(),
        calls + 1,
        "worker 1 refetched once; worker 0 is rate-limited"
    );
}

/// The shared-data slot a session's refresh outcome goes to first.
fn refresh_slot(s: &envoy_oidc::session::Session) -> u64 {
    let mut h = Sha256::new();
    h.update(s.sid.as_bytes());
    h.update([0]);
    h.update(s.access_token.as_bytes());
    let digest = h.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % 1024
}

#[test]
fn a_colliding_sessions_refresh_never_makes_another_worker_spend_a_refresh_token_twice() {
    let mut w = World::new(&web_config(true), 2, NOW, idp);
    let a = due_session("session-a", "rt-a", NOW);
    // A second session whose refresh outcome lands in the same slot.
    let template = due_session("session-b", "rt-b", NOW);
    let b = (0..100_000)
        .map(|i| envoy_oidc::session::Session {
            sid: format!("session-b{i}"),
            ..template.clone()
        })
        .find(|b| refresh_slot(b) == refresh_slot(&a))
        .expect("a colliding session id");
    let a_cookie = session_cookie(SECRET.as_bytes(), &a);

    let refreshed = w.request(0, with_cookie(&a_cookie));
    assert_eq!(status_of(&refreshed), 200);
    assert_eq!(grants(&w.calls, "refresh_token", Some("rt-a")), 1);
    let b_refreshed = w.request(0, with_cookie(&session_cookie(SECRET.as_bytes(), &b)));
    assert_eq!(status_of(&b_refreshed), 200);

    // A parallel request of session A, sent with the cookie from before its
    // refresh, reaches the other worker.
    let late = w.request(1, with_cookie(&a_cookie));
    assert_eq!(
        grants(&w.calls, "refresh_token", Some("rt-a")),
        1,
        "the refresh token of session A was spent once"
    );
    assert_eq!(
        forwarded(&late),
        forwarded(&refreshed),
        "it rides the refreshed tokens"
    );
}

#[test]
fn parallel_requests_of_one_session_on_two_workers_refresh_once() {
    let mut w = World::new(&web_config(true), 2, NOW, idp);
    let cookie = session_cookie(SECRET.as_bytes(), &due_session("s", "rt", NOW));
    w.request(0, get(&[])); // documents fetched
    let on_0 = w.send(0, with_cookie(&cookie));
    let on_1 = w.send(1, with_cookie(&cookie));
    w.settle();
    assert_eq!(grants(&w.calls, "refresh_token", Some("rt")), 1);
    let token = forwarded(w.decision(0, on_0)).expect("forwarded");
    assert_eq!(forwarded(w.decision(1, on_1)), Some(token));
    assert!(
        w.respond(1, on_1)
            .iter()
            .any(|(n, v)| n == "set-cookie" && v.starts_with("session=")),
        "the waiting worker sets the renewed cookie too"
    );
}

#[test]
fn workers_that_prepared_at_once_converge_on_one_session_key_and_salt() {
    let mut w = World::new(&web_config(false), 1, NOW, idp);
    // Worker 1 overwrote the key worker 0 created (as builds before
    // `store::CREATE_ONLY` could, starting at the same moment): each tick
    // takes up what the store holds.
    let theirs = [42u8; 32];
    let parsed = envoy_oidc::config::Config::parse(web_config(false).to_string().as_bytes());
    let name = envoy_oidc::flow::fallback_session_key_name(&parsed.unwrap().config);
    w.store.set(&name, &theirs, 0);
    w.store.set("test/salt", &[43u8; 32], 0);
    let one = w.start_worker(&web_config(false), [9; 72]);

    let cookie = session_cookie(&theirs, &due_session("s", "rt", NOW + 1000));
    let before = w.request(0, with_cookie(&cookie));
    assert_ne!(
        status_of(&before),
        200,
        "worker 0 still seals with its own key"
    );
    w.tick(0);
    let after = w.request(0, with_cookie(&cookie));
    assert_eq!(
        status_of(&after),
        200,
        "after its tick worker 0 opens worker 1's sessions"
    );

    // And client credentials exchanged by one are the other's too.
    w.request(one, basic("client-1", "s"));
    let d = w.request(0, basic("client-1", "s"));
    assert_eq!(status_of(&d), 200);
    assert_eq!(grants(&w.calls, "client_credentials", None), 1);
}

#[test]
fn a_changed_configuration_opens_the_sessions_sealed_before_it_without_session_secret() {
    let mut w = World::new(&web_config(false), 1, NOW, idp);
    let parsed = envoy_oidc::config::Config::parse(web_config(false).to_string().as_bytes());
    let name = envoy_oidc::flow::fallback_session_key_name(&parsed.unwrap().config);
    let key = w.store.get(&name).expect("the fallback key").0;
    let cookie = session_cookie(&key, &due_session("s", "rt", NOW + 1000));
    assert_eq!(status_of(&w.request(0, with_cookie(&cookie))), 200);
    // A scope, a bypass path changed: the shell's prefix for the new
    // configuration is another, its random values too.
    let mut changed = web_config(false);
    changed["bypass_paths"] = json!(["/health"]);
    let new = w.start_configured(&changed, "changed/", [9; 72]);
    let d = w.request(new, with_cookie(&cookie));
    assert_eq!(status_of(&d), 200, "the users stay logged in: {d:?}");
}

#[test]
fn an_upgraded_module_opens_the_sessions_sealed_under_the_key_kept_before() {
    // The builds before kept the fallback key under the configuration's
    // prefix; shared data outlives a module upgraded in the same VM.
    let mut w = World::new(&web_config(false), 0, NOW, idp);
    let before = [77u8; 32];
    w.store.set("test/session-key", &before, 0);
    let worker = w.start_worker(&web_config(false), [9; 72]);
    let cookie = session_cookie(&before, &due_session("s", "rt", NOW + 1000));
    let d = w.request(worker, with_cookie(&cookie));
    assert_eq!(status_of(&d), 200, "{d:?}");
}

#[test]
fn two_configurations_upgraded_together_keep_opening_their_own_sessions() {
    // One issuer and client, two configurations (prefixes A/ and B/), each
    // with the key builds before kept under its prefix: the first to start
    // shares its key; the second still opens what it sealed before.
    let mut w = World::new(&web_config(false), 0, NOW, idp);
    w.store.set("A/session-key", &[1u8; 32], 0);
    w.store.set("B/session-key", &[2u8; 32], 0);
    let a = w.start_configured(&web_config(false), "A/", [7; 72]);
    let mut other = web_config(false);
    other["scopes"] = json!(["openid", "email"]);
    let b = w.start_configured(&other, "B/", [8; 72]);
    for (worker, key) in [(a, [1u8; 32]), (b, [2u8; 32]), (b, [1u8; 32])] {
        let cookie = session_cookie(&key, &due_session("s", "rt", NOW + 1000));
        let d = w.request(worker, with_cookie(&cookie));
        assert_eq!(status_of(&d), 200, "worker {worker}, key {}: {d:?}", key[0]);
    }
}

#[test]
fn two_configurations_opening_one_session_spend_its_refresh_token_once() {
    // One issuer, client and cookie, two configurations (a filter per
    // group of routes, or one and its edited successor while Envoy
    // drains): both open the session's cookie, so both must find its
    // refresh under way, or done.
    let mut w = World::new(&web_config(true), 0, NOW, idp);
    let a = w.start_configured(&web_config(true), "A/", [7; 72]);
    let mut other = web_config(true);
    other["scopes"] = json!(["openid", "email"]);
    let b = w.start_configured(&other, "B/", [8; 72]);
    w.request(a, get(&[])); // documents fetched
    w.request(b, get(&[]));
    let cookie = session_cookie(SECRET.as_bytes(), &due_session("s", "rt", NOW));
    let on_a = w.send(a, with_cookie(&cookie));
    let on_b = w.send(b, with_cookie(&cookie));
    w.settle();
    assert_eq!(grants(&w.calls, "refresh_token", Some("rt")), 1);
    let token = forwarded(w.decision(a, on_a)).expect("forwarded");
    assert_eq!(forwarded(w.decision(b, on_b)), Some(token.clone()));
    // The cookie from before the refresh, later, through either.
    for worker in [b, a] {
        let late = w.request(worker, with_cookie(&cookie));
        assert_eq!(forwarded(&late), Some(token.clone()), "worker {worker}");
    }
    assert_eq!(grants(&w.calls, "refresh_token", Some("rt")), 1);
}

/// What another worker does meanwhile, given the store and the key.
type Hook<'a> = Box<dyn FnOnce(&mut EnvoyStore, &str) + 'a>;

/// A store that runs `hook` before the first write of a key containing
/// `marker`: another worker doing its part between this worker's look at
/// the key and its write.
struct SetHooked<'a> {
    inner: &'a mut EnvoyStore,
    marker: &'static str,
    hook: Option<Hook<'a>>,
}

impl SharedStore for SetHooked<'_> {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
        if key.contains(self.marker)
            && let Some(hook) = self.hook.take()
        {
            hook(self.inner, key);
        }
        self.inner.set(key, value, cas)
    }
}

fn parsed(config: &serde_json::Value) -> Config {
    Config::parse(config.to_string().as_bytes()).unwrap().config
}

#[test]
fn workers_starting_at_once_agree_on_the_session_key_and_salt_before_any_tick() {
    let cfg = parsed(&web_config(false));
    for marker in ["session-key/", "salt"] {
        let mut store = EnvoyStore::default();
        let mut other = None;
        // Worker B starts, and writes its own values just before A writes
        // there.
        let hook: Hook = Box::new(|s, _| other = Some(Shared::prepare(s, "test/", &cfg, [9; 72])));
        let mut hooked = SetHooked {
            inner: &mut store,
            marker,
            hook: Some(hook),
        };
        let mine = Shared::prepare(&mut hooked, "test/", &cfg, [7; 72]);
        drop(hooked);
        let other = other.expect("B started");
        assert_eq!(mine.session_key, other.session_key, "{marker}");
        assert_eq!(mine.salt, other.salt, "{marker}");
    }
}

#[test]
fn a_worker_starting_late_leaves_the_leases_slots_and_budget_others_took() {
    let mut refreshing = web_config(false);
    refreshing["auth_methods"] = json!(["authorization_code", "session", "refresh_token"]);
    let cfg = parsed(&refreshing);
    // A lease, a refresh-outcome slot (by its whole name: every name
    // under the refresh prefix has `/refresh/` in it), a budget slot.
    let first_slot = format!("{}refresh/0", envoy_oidc::flow::session_prefix(&cfg));
    let first_slot: &'static str = Box::leak(first_slot.into_boxed_str());
    for marker in ["-lease/", first_slot, "budget/"] {
        let mut store = EnvoyStore::default();
        let mut taken = None;
        // Another worker, started first, takes the entry this one is about
        // to create.
        let hook: Hook = Box::new(|s, key| {
            s.set(key, b"taken", 0);
            taken = Some(key.to_string());
        });
        let mut hooked = SetHooked {
            inner: &mut store,
            marker,
            hook: Some(hook),
        };
        Shared::prepare(&mut hooked, "test/", &cfg, [7; 72]);
        budget::prepare(
            &cfg.idp_call_budget,
            &envoy_oidc::flow::budget_names(&cfg),
            &mut hooked,
        );
        drop(hooked);
        let key = taken.unwrap_or_else(|| panic!("no entry of {marker} created"));
        assert_eq!(store.get(&key).unwrap().0, b"taken", "{key}");
    }
}

#[test]
fn a_fetch_the_idp_throttled_is_not_made_again_by_another_worker_before_its_retry_after() {
    let throttled_jwks = |req: &envoy_oidc::action::IdpRequest, now: u64| {
        if header(req, ":path").is_some_and(|p| p.ends_with("/jwks.json")) {
            return envoy_oidc::action::IdpReply {
                retry_after: Some(60),
                ..status(429)
            };
        }
        idp(req, now)
    };
    let mut w = World::new(&api_config(), 2, NOW, throttled_jwks);
    let token = fresh_token(NOW, "a");
    let retry_after = |d: &envoy_oidc::action::Decision| match &d.action {
        envoy_oidc::action::Action::Respond(r) if r.status == 503 => r
            .headers
            .iter()
            .find(|(n, _)| n == "retry-after")
            .map(|(_, v)| v.clone()),
        _ => None,
    };
    let d = w.request(0, bearer(&token));
    assert_eq!(retry_after(&d).as_deref(), Some("60"), "{d:?}");
    let fetches = w.calls.len();
    assert_eq!(fetches, 2, "discovery, then the JWKS");
    // The other worker, 10 s later: throttled as the first was, unasked;
    // and the first says the wait that remains too.
    w.now = NOW + 10;
    let d = w.request(1, bearer(&token));
    assert_eq!(retry_after(&d).as_deref(), Some("50"), "{d:?}");
    let d = w.request(0, bearer(&token));
    assert_eq!(retry_after(&d).as_deref(), Some("50"), "{d:?}");
    assert_eq!(w.calls.len(), fetches, "discovery adopted, no JWKS fetch");
    // Past the wait, it is fetched again.
    w.now = NOW + 61;
    w.request(1, bearer(&token));
    assert_eq!(w.calls.len(), fetches + 1);

    // A record beyond the longest Retry-After honoured is not believed (a
    // clock stepped back, a value not ours): the documents are fetched.
    let mut w = World::new(&api_config(), 1, NOW, idp);
    w.store
        .set("test/0/discovery-throttled", &u64::MAX.to_be_bytes(), 0);
    w.store
        .set("test/0/jwks-throttled", &(NOW + 361).to_be_bytes(), 0);
    let d = w.request(0, bearer(&token));
    assert_eq!(status_of(&d), 200, "{d:?}");
    assert_eq!(w.calls.len(), 2);
}

#[test]
fn a_cookie_from_before_obtained_at_keeps_its_tokens_margin_through_a_rolling_renewal() {
    // Token obtained (and the session last renewed) 3,500 s ago, an hour's
    // life: the rolling timeout (7,000 s) renews it now, 100 s before the
    // token expires. Its margin stays a minute, as the token's life says.
    let mut config = web_config(true);
    config["session_rolling_timeout"] = json!(7000);
    config["session_idling_timeout"] = json!(0);
    let mut w = World::new(&config, 1, NOW, idp);
    let mut session = due_session("s", "rt", NOW);
    session.expires_at = NOW + 100;
    session.renewed_at = NOW - 3500;
    session.created_at = NOW - 3500;
    assert_eq!(session.obtained_at, 0, "as cookies before it");
    let rolled = w.request(0, with_cookie(&session_cookie(SECRET.as_bytes(), &session)));
    assert!(forwarded(&rolled).is_some(), "{rolled:?}");
    let renewed = match &rolled.action {
        envoy_oidc::action::Action::Continue { response, .. } => response
            .iter()
            .find_map(|(n, v)| v.strip_prefix("session=").filter(|_| n == "set-cookie"))
            .and_then(|v| v.split(';').next())
            .map(|v| format!("session={v}")),
        _ => None,
    };
    let renewed = renewed.expect("a renewed cookie");
    assert_eq!(grants(&w.calls, "refresh_token", None), 0, "not due yet");
    w.now = NOW + 50;
    w.request(0, with_cookie(&renewed));
    assert_eq!(
        grants(&w.calls, "refresh_token", Some("rt")),
        1,
        "due a minute before expiry"
    );
}

/// The shared-data key of the client-credentials budget `config` spends:
/// its rate's bucket, or its slot `n`.
fn cc_budget_key(config: &serde_json::Value, slot: Option<u64>) -> String {
    let names = envoy_oidc::flow::budget_names(&envoy_oidc_testkit::world::config(config));
    let purpose = budget::Purpose::ClientCredentials;
    slot.map_or_else(
        || names.bucket(purpose).to_string(),
        |n| names.slot(purpose, n),
    )
}

#[test]
fn leases_and_budget_held_into_a_future_the_clock_stepped_back_from_do_not_block() {
    // Entries written before the clock stepped back an hour: held until
    // an hour from now, longer than any taken now could be.
    let later = NOW + 3600;
    let mut w = World::new(&api_config(), 1, NOW, idp);
    for n in 0..64 {
        let mut held = vec![9u8; 32];
        held.extend_from_slice(&later.to_be_bytes());
        held.extend_from_slice(&[7u8; 8]);
        w.store.set(&format!("test/fetch-lease/{n}"), &held, 0);
        w.store.set(&format!("test/cc-lease/{n}"), &held, 0);
        // Lapse, holder, when it was taken.
        let mut slot = later.to_be_bytes().to_vec();
        slot.extend_from_slice(&[7u8; 8]);
        slot.extend_from_slice(&(later - 2).to_be_bytes());
        w.store
            .set(&cc_budget_key(&api_config(), Some(n)), &slot, 0);
    }
    // The rate's bucket: empty, stamped an hour ahead.
    let mut bucket = 0u64.to_be_bytes().to_vec();
    bucket.extend_from_slice(&later.to_be_bytes());
    w.store.set(&cc_budget_key(&api_config(), None), &bucket, 0);

    let d = w.request(0, bearer(&fresh_token(NOW, "a")));
    assert_eq!(status_of(&d), 200, "documents fetched: {d:?}");
    // The bucket was empty: restamped now, it refills from now on.
    w.now = NOW + 1;
    let d = w.request(0, basic("client-1", "s"));
    assert_eq!(status_of(&d), 503, "{d:?}");
    w.now = NOW + 2;
    let d = w.request(0, basic("client-1", "s"));
    assert!(forwarded(&d).is_some(), "exchanged: {d:?}");
    assert_eq!(grants(&w.calls, "client_credentials", None), 1);
}

#[test]
fn a_lease_or_bucket_stamped_a_second_ahead_by_another_workers_clock_is_believed() {
    // Another worker read the clock a second later and took every fetch
    // lease (a 1 s call timeout: held for 2 s from its now).
    let mut w = World::new(&api_config(), 1, NOW, idp);
    for n in 0..64 {
        let mut held = vec![9u8; 32];
        held.extend_from_slice(&(NOW + 1 + 2).to_be_bytes());
        held.extend_from_slice(&[7u8; 8]);
        w.store.set(&format!("test/fetch-lease/{n}"), &held, 0);
    }
    let on_0 = w.send(0, bearer(&fresh_token(NOW, "a")));
    assert_eq!(w.outcome(0, on_0), &Outcome::Paused, "it waits");
    assert!(w.calls.is_empty());
    w.now = NOW + 4;
    w.settle();
    assert_eq!(status_of(w.decision(0, on_0)), 200);

    // Stamped 10 s ahead: from before the clock stepped back (a worker's
    // later reading is a second or two ahead at most). Restamped now, it
    // refills from now on, a token a second.
    let mut config = api_config();
    config["idp_call_budget"] = json!({"client_credentials": {"per_second": 1, "burst": 1}});
    let mut w = World::new(&config, 1, NOW, idp);
    w.request(0, bearer(&fresh_token(NOW, "a"))); // documents
    let mut bucket = 0u64.to_be_bytes().to_vec();
    bucket.extend_from_slice(&(NOW + 10).to_be_bytes());
    w.store.set(&cc_budget_key(&config, None), &bucket, 0);
    assert_eq!(status_of(&w.request(0, basic("client-1", "s"))), 503);
    w.now = NOW + 1;
    let d = w.request(0, basic("client-1", "s"));
    assert!(
        forwarded(&d).is_some(),
        "a token a second from the restamp: {d:?}"
    );

    // The rate's bucket emptied by a worker whose clock read a second
    // later: no refill, and no fresh burst either.
    let mut config = api_config();
    config["idp_call_budget"] = json!({"client_credentials": {"per_second": 1, "burst": 1}});
    let mut w = World::new(&config, 1, NOW, idp);
    w.request(0, bearer(&fresh_token(NOW, "a"))); // documents
    let mut bucket = 0u64.to_be_bytes().to_vec();
    bucket.extend_from_slice(&(NOW + 1).to_be_bytes());
    w.store.set(&cc_budget_key(&config, None), &bucket, 0);
    let d = w.request(0, basic("client-1", "s"));
    assert_eq!(status_of(&d), 503, "over budget: {d:?}");
    assert_eq!(grants(&w.calls, "client_credentials", None), 0);
}

#[test]
fn the_fallback_session_key_keeps_its_name_from_builds_before() {
    // Renamed, it would be a new key: every cookie sealed under the old one
    // (no `session_secret`) would open no more, logging everyone out.
    let digest = Sha256::digest(format!("{}\0web", tokens::ISSUER));
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        envoy_oidc::flow::fallback_session_key_name(&parsed(&web_config(false))),
        format!("envoy-oidc/session-key/{hex}")
    );
}

#[test]
fn a_token_another_worker_obtained_serves_a_worker_whose_exchange_was_throttled() {
    // The IdP throttles the first exchange for five minutes, and answers
    // the next: worker 0 remembers its failure that long, but not past a
    // token worker 1 obtained meanwhile.
    let exchanges = std::rc::Rc::new(std::cell::Cell::new(0));
    let n = std::rc::Rc::clone(&exchanges);
    let throttled_once = move |req: &envoy_oidc::action::IdpRequest, now: u64| {
        if header(req, ":path") == Some(TOKEN_PATH) {
            n.set(n.get() + 1);
            if n.get() == 1 {
                return envoy_oidc::action::IdpReply {
                    retry_after: Some(300),
                    ..status(429)
                };
            }
        }
        idp(req, now)
    };
    let mut w = World::new(&api_config(), 2, NOW, throttled_once);
    let d = w.request(0, basic("client-1", "s"));
    assert_eq!(status_of(&d), 503, "{d:?}");
    w.now = NOW + 5;
    let d = w.request(1, basic("client-1", "s"));
    assert!(forwarded(&d).is_some(), "worker 1 exchanges: {d:?}");
    w.now = NOW + 6;
    let d = w.request(0, basic("client-1", "s"));
    assert!(forwarded(&d).is_some(), "served worker 1's token: {d:?}");
    assert_eq!(exchanges.get(), 2);
}
