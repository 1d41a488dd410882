//! The browser flows: login redirect, callback, session, refresh, logout.
//! A tiny cookie jar plays the browser; the world's IdP issues tokens for
//! the nonce it saw at /authorize (both in `browser_kit`).

use envoy_oidc::action::{Action, Decision, IdpReply};
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use serde_json::{Value, json};

use crate::browser_kit::{self, Access, Browser, merged, query, refreshes};
use crate::{NOW, document, header, response};

/// The kit's configuration, asking for a scope beyond `openid`.
fn config(extra: Value) -> Value {
    let scopes = json!({"scopes": ["openid", "kongresource/scope1"]});
    browser_kit::config(merged(scopes, extra))
}

fn upstream_bearer(d: &Decision) -> String {
    match &d.action {
        Action::Continue { set, .. } => set
            .iter()
            .find(|(n, _)| n == "authorization")
            .and_then(|(_, v)| v.strip_prefix("Bearer "))
            .expect("bearer upstream")
            .to_string(),
        other => panic!("expected continue, got {other:?}"),
    }
}

#[test]
fn browser_is_sent_to_login_with_pkce_state_and_nonce() {
    let mut w = Browser::new(config(json!({})));
    let d = w.get("/oidcroute/get?x=1", true, NOW);
    let r = response(&d);
    assert_eq!(r.status, 302);
    let location = header(r, "location");
    assert!(
        location.starts_with("https://login.example.com/authorize?"),
        "{location}"
    );
    let q = query(location);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "web");
    assert_eq!(q["redirect_uri"], "https://gw.example.com/oidcroute/get");
    assert_eq!(q["scope"], "openid kongresource/scope1");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(
        (
            q["state"].len(),
            q["nonce"].len(),
            q["code_challenge"].len()
        ),
        (43, 43, 43)
    );
    let cookie = header(r, "set-cookie");
    assert!(cookie.starts_with("session_login_"), "{cookie}");
    for attr in [
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Path=/",
        "Max-Age=600",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
}

#[test]
fn api_clients_get_401_not_a_redirect() {
    let mut w = Browser::new(config(json!({})));
    assert_eq!(response(&w.get("/oidcroute/get", false, NOW)).status, 401);
    let mut fetch = w.request("GET", "/oidcroute/get", true);
    fetch = RequestView::new({
        let mut h: Vec<(String, Vec<u8>)> = vec![("sec-fetch-mode".into(), b"cors".to_vec())];
        h.extend(
            ["accept", ":method", ":path"]
                .iter()
                .map(|n| (n.to_string(), fetch.get(n).unwrap().as_bytes().to_vec())),
        );
        h
    });
    assert_eq!(response(&w.send(fetch, NOW)).status, 401);
}

#[test]
fn full_login_sets_a_session_and_returns_to_the_original_url() {
    let mut w = Browser::new(config(json!({})));
    let d = w.login("/oidcroute/get?x=1", NOW);
    let r = response(&d);
    assert_eq!(
        (r.status, header(r, "location")),
        (302, "/oidcroute/get?x=1")
    );
    assert!(
        w.jar.contains_key("session"),
        "session cookie set: {:?}",
        w.jar.keys()
    );
    assert!(
        !w.jar.keys().any(|k| k.contains("_login_")),
        "login cookie cleared"
    );
    // The code exchange carried the PKCE verifier that matches the challenge.
    let p = w.calls()[0].form();
    assert_eq!(p["grant_type"], "authorization_code");
    assert_eq!(p["code"], "the-code");
    assert_eq!(p["redirect_uri"], "https://gw.example.com/oidcroute/get");
    assert_eq!(p["code_verifier"].len(), 43);
    // Riding the session: the access token goes upstream, our cookie does not.
    let d = w.get("/oidcroute/get?x=1", true, NOW + 1);
    let token = upstream_bearer(&d);
    assert_eq!(token.split('.').count(), 3);
    let Action::Continue { set, remove, .. } = &d.action else {
        unreachable!()
    };
    assert!(
        remove.contains(&"cookie".to_string())
            || set
                .iter()
                .any(|(n, v)| n == "cookie" && !v.contains("session"))
    );
    assert_eq!(w.calls().len(), 1, "no IdP call while riding the session");
}

#[test]
fn callback_without_matching_login_state_or_nonce_is_400() {
    let mut w = Browser::new(config(json!({})));
    // No login cookie at all.
    let d = w.get("/oidcroute/get?code=c&state=forged", true, NOW);
    assert_eq!(response(&d).status, 400);
    // A real login, then a callback with another state.
    let start = w.get("/oidcroute/get", true, NOW);
    let state = query(header(response(&start), "location"))["state"].clone();
    let d = w.get("/oidcroute/get?code=c&state=not-the-state", true, NOW);
    assert_eq!(response(&d).status, 400);
    // The right state but the IdP's iss is another issuer (mix-up).
    let d = w.get(
        &format!("/oidcroute/get?code=c&state={state}&iss=https%3A%2F%2Fevil"),
        true,
        NOW,
    );
    assert_eq!(response(&d).status, 400);
    // The right state, expired login.
    let d = w.get(
        &format!("/oidcroute/get?code=c&state={state}"),
        true,
        NOW + 601,
    );
    assert_eq!(response(&d).status, 400);
    // The right state, but the ID token carries another nonce.
    w.idp().nonce = "another-nonce".into();
    let d = w.get(&format!("/oidcroute/get?code=c&state={state}"), true, NOW);
    assert_eq!(response(&d).status, 400);
    assert!(!w.jar.contains_key("session"));
}

#[test]
fn a_callback_without_iss_from_an_idp_that_sends_it_is_400() {
    // RFC 9207 §2.4: the IdP says its callbacks carry `iss`.
    let mut d: Value = serde_json::from_slice(&browser_kit::discovery()).unwrap();
    d["authorization_response_iss_parameter_supported"] = json!(true);
    let mut w = Browser::on(config(json!({})), serde_json::to_vec(&d).unwrap(), 1);
    let cb = w.start_login("/oidcroute/get", NOW);
    let (without, _) = cb.split_once("&iss=").unwrap();
    let d = w.get(without, true, NOW);
    assert_eq!(response(&d).status, 400, "{d:?}");
    assert!(w.calls().is_empty(), "the code is not exchanged");
    // With it, the login completes.
    let d = w.get(&cb, true, NOW);
    assert_eq!(response(&d).status, 302, "{d:?}");
    // An IdP that does not say so may leave it out.
    let mut w = Browser::new(config(json!({})));
    let cb = w.start_login("/oidcroute/get", NOW);
    let d = w.get(cb.split_once("&iss=").unwrap().0, true, NOW);
    assert_eq!(response(&d).status, 302, "{d:?}");
}

#[test]
fn idp_error_on_callback_is_401() {
    let mut w = Browser::new(config(json!({})));
    let start = w.get("/oidcroute/get", true, NOW);
    let state = query(header(response(&start), "location"))["state"].clone();
    let d = w.get(
        &format!("/oidcroute/get?error=access_denied&state={state}"),
        true,
        NOW,
    );
    assert_eq!(response(&d).status, 401);
    assert!(w.calls().is_empty());
}

#[test]
fn tampered_or_foreign_session_cookies_are_no_session() {
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let good = w.jar["session"].clone();
    let mut bad = good.clone().into_bytes();
    bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
    w.jar
        .insert("session".into(), String::from_utf8(bad).unwrap());
    assert_eq!(
        response(&w.get("/oidcroute/get", true, NOW + 1)).status,
        302,
        "browser: login again"
    );
    w.jar
        .insert("session".into(), good[..good.len() / 2].to_string());
    assert_eq!(
        response(&w.get("/oidcroute/get", false, NOW + 1)).status,
        401,
        "API: 401"
    );
    // A cookie sealed with another secret.
    let mut other = Browser::new(config(
        json!({"session_secret": "another-secret-of-at-least-32-bytes"}),
    ));
    other.jar.insert("session".into(), good);
    assert_eq!(
        response(&other.get("/oidcroute/get", false, NOW + 1)).status,
        401
    );
}

#[test]
fn session_times_out_idle_rolling_and_absolute_as_kong_does() {
    let api = |w: &mut Browser, t| w.get("/oidcroute/get", false, t);
    let ok = |d: Decision| matches!(d.action, Action::Continue { .. });
    // Kong's defaults: idle 900 s, renewal every 3600 s, 86400 s in all.
    let mut w = Browser::new(config(json!({})));
    w.idp().token_life = 100_000;
    w.login("/oidcroute/get", NOW);
    assert!(ok(api(&mut w, NOW + 899)), "within the idling timeout");
    assert!(
        ok(api(&mut w, NOW + 1798)),
        "seen at +899: idle again from there"
    );
    assert_eq!(
        response(&api(&mut w, NOW + 2799)).status,
        401,
        "idle 1001 s"
    );

    // In use every 10 minutes: renewed within each rolling period, until
    // the absolute timeout.
    let mut w = Browser::new(config(json!({"session_idling_timeout": 0,
                                           "session_absolute_timeout": 10_000})));
    w.idp().token_life = 100_000;
    w.login("/oidcroute/get", NOW);
    for t in (600..10_000).step_by(600) {
        assert!(ok(api(&mut w, NOW + t)), "in use at +{t}");
    }
    assert_eq!(
        response(&api(&mut w, NOW + 10_001)).status,
        401,
        "absolute timeout"
    );

    // Not renewed for a rolling period (idling disabled): ended.
    let mut w = Browser::new(config(json!({"session_idling_timeout": 0,
                                           "session_rolling_timeout": 100})));
    w.idp().token_life = 100_000;
    w.login("/oidcroute/get", NOW);
    assert!(
        ok(api(&mut w, NOW + 40)),
        "before half the period: not renewed"
    );
    assert_eq!(
        response(&api(&mut w, NOW + 101)).status,
        401,
        "not renewed for 100 s"
    );
    let mut w = Browser::new(config(json!({"session_idling_timeout": 0,
                                           "session_rolling_timeout": 100})));
    w.idp().token_life = 100_000;
    w.login("/oidcroute/get", NOW);
    assert!(ok(api(&mut w, NOW + 60)), "past half the period: renewed");
    assert!(ok(api(&mut w, NOW + 150)), "within 100 s of the renewal");

    // Every limit disabled: a browser-session cookie that lasts.
    let mut w = Browser::new(config(json!({"session_idling_timeout": 0,
        "session_rolling_timeout": 0, "session_absolute_timeout": 0})));
    w.idp().token_life = 10_000_000;
    let d = w.login("/oidcroute/get", NOW);
    let cookie = header(response(&d), "set-cookie");
    assert!(
        cookie.starts_with("session=") && !cookie.contains("Max-Age"),
        "{cookie}"
    );
    assert!(ok(api(&mut w, NOW + 5_000_000)));
}

#[test]
fn near_expiry_the_session_is_refreshed_once() {
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let before = upstream_bearer(&w.get("/oidcroute/get", false, NOW + 1));
    let d = w.get("/oidcroute/get", false, NOW + 250);
    let after = upstream_bearer(&d);
    assert_ne!(before, after, "a new access token after refresh");
    assert_eq!(w.calls().len(), 2);
    let refresh = w.calls()[1].form();
    assert_eq!(refresh["grant_type"], "refresh_token");
    assert_eq!(refresh["refresh_token"], format!("rt-{NOW}-0"));
    // The renewed cookie carries the new tokens: no second refresh.
    assert_eq!(
        upstream_bearer(&w.get("/oidcroute/get", false, NOW + 251)),
        after
    );
    assert_eq!(w.calls().len(), 2);
}

#[test]
fn a_refused_refresh_ends_the_session() {
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(400),
        retry_after: None,
        body: br#"{"error":"invalid_grant"}"#.to_vec(),
    });
    assert_eq!(
        response(&w.get("/oidcroute/get", false, NOW + 250)).status,
        401
    );
    assert_eq!(w.calls()[1].form()["grant_type"], "refresh_token");
}

#[test]
fn a_refresh_answered_in_json_that_does_not_read_ends_the_session() {
    // The IdP answered, and may have rotated the refresh token, but its
    // answer does not read (a negative `expires_in`): the refresh token is
    // not sent again, the session is over.
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(200),
        retry_after: None,
        body: br#"{"access_token":"x","refresh_token":"rt-2","expires_in":-1}"#.to_vec(),
    });
    let d = w.get("/oidcroute/get", false, NOW + 250);
    assert!(!matches!(d.action, Action::Continue { .. }), "{d:?}");
    let d = w.get("/oidcroute/get", false, NOW + 260);
    assert_eq!(response(&d).status, 401, "{d:?}");
    assert_eq!(refreshes(&w), 1);
}

#[test]
fn a_login_whose_token_has_expired_already_ends_instead_of_looping() {
    // `expires_in: 0` (or a clock past the token's `exp` within the
    // leeway): a session made of it would be due at once, and each request
    // would start a new login.
    for access in [Access::Ours, Access::Opaque] {
        // With a leeway, the token itself still passes.
        let mut w = Browser::new(config(json!({"leeway": 30})));
        w.idp().token_life = 0;
        w.idp().access = access;
        let cb = w.start_login("/oidcroute/get", NOW);
        let d = w.get(&cb, true, NOW);
        assert_eq!(response(&d).status, 502, "{d:?}");
        assert!(!w.jar.contains_key("session"), "{:?}", w.jar);
    }
}

#[test]
fn a_page_outside_the_session_cookies_path_is_refused_not_looped() {
    // Its session cookie would never come back there: each visit would
    // be a new login.
    let mut w = Browser::new(config(
        json!({"session_cookie_path": "/oidcroute", "logout_path": "/oidcroute/logout"}),
    ));
    let d = w.get("/other/page", true, NOW);
    assert_eq!(response(&d).status, 400, "{d:?}");
    assert!(w.jar.is_empty(), "{:?}", w.jar);
    let d = w.get("/oidcroute/page", true, NOW);
    assert_eq!(response(&d).status, 302, "{d:?}");
}

#[test]
fn a_login_started_under_a_rule_is_judged_by_that_rule_not_the_callbacks() {
    // The callback is under the top level (staff only); the partner's
    // login started on the partners' pages.
    let mut w = Browser::new(config(json!({"groups_required": ["staff"], "rules": [
        {"match": {"paths": ["/partners"]}, "groups_required": ["partners"]}]})));
    w.idp().access = Access::Opaque;
    w.idp().id_claims = json!({"groups": ["partners"]});
    w.login("/partners/home", NOW);
    let d = w.get("/partners/home", false, NOW + 1);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    // The top level's pages stay closed to a partner.
    let d = w.get("/oidcroute/get", false, NOW + 2);
    assert_eq!(response(&d).status, 403, "{d:?}");
}

#[test]
fn a_session_whose_answer_names_no_scope_has_the_scope_its_login_asked_for() {
    // RFC 6749 §5.1: no `scope` in the answer is the scope asked for,
    // here the rule's, not the callback's.
    let mut w = Browser::new(config(json!({"rules": [{"match": {"paths": ["/orders"]},
        "scopes": ["openid", "orders.read"], "scopes_required": ["orders.read"]}]})));
    w.idp().access = Access::Opaque;
    w.login("/orders/list", NOW);
    let d = w.get("/orders/list", false, NOW + 1);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
}

#[test]
fn return_url_is_always_local() {
    let mut w = Browser::new(config(json!({})));
    // Browsers drop TAB, CR and LF from a URL as they read it: `/<TAB>/evil`
    // would be read `//evil`.
    for path in [
        "//evil.example.com/x",
        "/\\evil.example.com/x",
        "/\t/evil.example.com/x",
    ] {
        let mut w = Browser::new(config(json!({})));
        let d = w.login(path, NOW);
        assert_eq!(header(response(&d), "location"), "/", "{path:?}");
    }
    let d = w.login("/oidcroute/get", NOW);
    assert_eq!(header(response(&d), "location"), "/oidcroute/get");
}

#[test]
fn large_sessions_are_chunked_and_reassembled() {
    // GET logs out here, to read the ID token hint the logout redirect carries.
    let mut w = Browser::new(config(json!({"logout_methods": ["GET"]})));
    // Tokens of a few KB each: a session too large for one cookie.
    w.idp().pad = 2000;
    let d = w.login("/oidcroute/get", NOW);
    let chunks: Vec<&str> = response(&d)
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.split('=').next().unwrap())
        .filter(|name| *name == "session" || name.starts_with("session."))
        .collect();
    assert!(chunks.len() >= 3, "{} chunks: {chunks:?}", chunks.len());
    for (i, name) in chunks.iter().enumerate() {
        let want = if i == 0 {
            "session".to_string()
        } else {
            format!("session.{i}")
        };
        assert_eq!(*name, want);
        assert!(w.jar.contains_key(*name), "{name} kept by the browser");
    }
    let (access, id, refresh) = w.idp().issued[0].clone();
    assert!(access.len() > 2000 && id.len() > 2000 && refresh.len() > 2000);
    // Reassembled: the session's access token goes upstream.
    let calls = w.calls().len();
    assert_eq!(
        upstream_bearer(&w.get("/oidcroute/get", false, NOW + 1)),
        access
    );
    // Opened again (from the worker's cache): the same session, still held
    // to its timeouts; any other bytes are opened (and refused) afresh.
    assert_eq!(
        upstream_bearer(&w.get("/oidcroute/get", false, NOW + 2)),
        access
    );
    assert_eq!(
        w.calls().len(),
        calls,
        "no IdP call while riding the session"
    );
    let good = w.jar.clone();
    let rolling = w.world.workers[0].engine.config().session.rolling_timeout;
    // Past the rolling timeout the session does not open: no refresh of its
    // long-expired token is even tried.
    assert_eq!(
        response(&w.get("/oidcroute/get", false, NOW + rolling)).status,
        401
    );
    assert_eq!(w.calls().len(), calls, "no refresh of a timed-out session");
    w.jar = good.clone();
    let last = format!("session.{}", chunks.len() - 1);
    let v = w.jar.get_mut(&last).unwrap();
    let flipped = if v.ends_with('A') { 'B' } else { 'A' };
    v.pop();
    v.push(flipped);
    assert_eq!(
        response(&w.get("/oidcroute/get", false, NOW + 2)).status,
        401,
        "a tampered chunk is no session"
    );
    // The whole session came back: the refresh token at refresh time, the
    // ID token (of the refreshed session, chunked again) at logout.
    w.jar = good;
    let refreshed = upstream_bearer(&w.get("/oidcroute/get", false, NOW + 250));
    let grant = w.calls()[calls].form();
    assert_eq!(
        (grant["grant_type"].as_str(), &grant["refresh_token"]),
        ("refresh_token", &refresh)
    );
    let (access, id, _) = w.idp().issued[1].clone();
    assert_eq!(refreshed, access);
    let d = w.get("/logout", true, NOW + 251);
    assert_eq!(query(header(response(&d), "location"))["id_token_hint"], id);
}

#[test]
fn a_fourth_login_clears_the_oldest_not_the_newest() {
    let mut w = Browser::new(config(json!({})));
    let mut states = Vec::new();
    for i in 0..4 {
        let d = w.get("/oidcroute/get", true, NOW + i);
        states.push(query(header(response(&d), "location"))["state"].clone());
    }
    assert_eq!(w.jar.keys().filter(|k| k.contains("_login_")).count(), 3);
    // The three latest logins can finish; the first cannot.
    w.idp().nonce = String::new();
    let finish = |w: &mut Browser, state: &str| {
        let cb = format!("/oidcroute/get?code=c&state={state}");
        response(&w.get(&cb, true, NOW + 5)).status
    };
    assert_eq!(finish(&mut w, &states[0]), 400);
    // (the nonce check fails these, but only after the state was found)
    let d = w.get(
        &format!("/oidcroute/get?code=c&state={}", states[3]),
        true,
        NOW + 5,
    );
    assert_eq!(response(&d).status, 400);
    assert!(
        w.calls()
            .iter()
            .any(|c| c.form().get("grant_type").map(String::as_str) == Some("authorization_code"))
    );
}

#[test]
fn an_idp_error_on_callback_clears_that_login() {
    let mut w = Browser::new(config(json!({})));
    let start = w.get("/oidcroute/get", true, NOW);
    let state = query(header(response(&start), "location"))["state"].clone();
    assert_eq!(w.jar.len(), 1);
    let d = w.get(
        &format!("/oidcroute/get?error=access_denied&state={state}"),
        true,
        NOW,
    );
    assert_eq!(response(&d).status, 401);
    assert!(w.jar.is_empty(), "login cookie cleared: {:?}", w.jar);
}

#[test]
fn an_unreachable_idp_at_refresh_time_leaves_the_valid_token_in_use() {
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let before = upstream_bearer(&w.get("/oidcroute/get", false, NOW + 1));
    // Not a refusal: the IdP does not answer (503).
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(503),
        body: vec![],
        retry_after: None,
    });
    let d = w.get("/oidcroute/get", false, NOW + 250);
    assert_eq!(w.calls().len(), 2);
    assert_eq!(
        w.calls()[1].form()["grant_type"],
        "refresh_token",
        "a refresh call"
    );
    assert_eq!(
        upstream_bearer(&d),
        before,
        "the still-valid token serves on"
    );
}

#[test]
fn short_lived_tokens_refresh_again_and_again() {
    let mut w = Browser::new(config(json!({})));
    w.idp().token_life = 20;
    w.login("/oidcroute/get", NOW);
    let mut seen = vec![upstream_bearer(&w.get("/oidcroute/get", false, NOW + 1))];
    for t in [NOW + 15, NOW + 30, NOW + 45] {
        // Each token lives 20 s and is refreshed a quarter of that (5 s)
        // before expiry.
        seen.push(upstream_bearer(&w.get("/oidcroute/get", false, t)));
    }
    seen.dedup();
    assert_eq!(seen.len(), 4, "a new token at each refresh");
}

#[test]
fn a_cookie_from_before_refreshes_comes_back_to_their_tokens_not_to_a_spent_refresh_token() {
    let mut w = Browser::new(config(json!({})));
    w.idp().token_life = 20;
    w.login("/oidcroute/get", NOW);
    // The cookie of a request whose responses never reached the browser
    // (an aborted fetch, a closed tab), or that a slower response set back.
    let before = w.jar.clone();
    let mut last = String::new();
    for t in [NOW + 15, NOW + 30, NOW + 45] {
        last = upstream_bearer(&w.get("/oidcroute/get", false, t));
    }
    assert_eq!(refreshes(&w), 3);
    // Within the outcomes' minute: the last refresh's token, no new grant.
    w.jar = before.clone();
    assert_eq!(
        upstream_bearer(&w.get("/oidcroute/get", false, NOW + 50)),
        last
    );
    assert_eq!(refreshes(&w), 3);
    // Two minutes on (the idling timeout is 15): the three refreshes'
    // outcomes lead to the last token, due by now, so one refresh, with the
    // refresh token the last refresh gave.
    w.jar = before;
    let d = w.get("/oidcroute/get", false, NOW + 170);
    assert_ne!(upstream_bearer(&d), last, "refreshed");
    assert_eq!(refreshes(&w), 4);
    let sent: Vec<String> = w
        .calls()
        .iter()
        .filter_map(|c| c.form().get("refresh_token").cloned())
        .collect();
    let mut once = sent.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        once.len(),
        sent.len(),
        "a refresh token sent twice: {sent:?}"
    );
}

#[test]
fn a_replayed_callback_is_400_without_an_idp_call_and_without_a_session() {
    let mut b = Browser::new(config(json!({})));
    let cb = b.start_login("/oidcroute/get", NOW);
    let cookies_before = b.jar.clone();
    let first = b.get(&cb, true, NOW);
    assert_eq!(response(&first).status, 302, "logged in");
    let exchanges = b.calls().len();

    // An attacker (or a back button) replays the callback URL with the
    // cookies from before the login.
    b.jar = cookies_before.clone();
    let replay = b.get(&cb, true, NOW + 5);
    assert_eq!(response(&replay).status, 400);
    assert!(
        !header_of_response(&replay, "set-cookie").contains("session="),
        "no session is set"
    );
    assert_eq!(b.calls().len(), exchanges, "the IdP is not asked again");

    // The same after logout.
    b.jar = cookies_before;
    let replay = b.get(&cb, true, NOW + 60);
    assert_eq!(response(&replay).status, 400);
    assert_eq!(b.calls().len(), exchanges);
}

#[test]
fn callbacks_that_waited_on_one_exchange_all_get_its_outcome() {
    let mut b = Browser::new(config(json!({})));
    let cb = b.start_login("/oidcroute/get", NOW);
    // A double submit: both reach the filter before the IdP answers.
    let first = b.world.send(0, b.request("GET", &cb, true));
    let second = b.world.send(0, b.request("GET", &cb, true));
    b.world.settle();
    assert_eq!(response(b.world.decision(0, first)).status, 302);
    assert_eq!(response(b.world.decision(0, second)).status, 302);
    let exchanges = b
        .calls()
        .iter()
        .filter(|c| c.form().get("grant_type").map(String::as_str) == Some("authorization_code"))
        .count();
    assert_eq!(exchanges, 1, "one exchange for both");
}

#[test]
fn a_reload_after_the_exchange_answered_for_a_callback_gone_gets_its_session_once() {
    let mut b = Browser::new(config(json!({})));
    let cb = b.start_login("/oidcroute/get", NOW);
    let cookies = b.jar.clone();
    // The callback reaches the filter, which calls the token endpoint; the
    // browser reloads (the first request goes away) and the IdP answers
    // before the reload arrives.
    let first = b.world.send(0, b.request("GET", &cb, true));
    b.world.drop_request(0, first);
    b.world.tick(0); // the exchange, from the root context
    b.world.settle();
    let exchanges = |b: &Browser| {
        b.calls()
            .iter()
            .filter(|c| {
                c.form().get("grant_type").map(String::as_str) == Some("authorization_code")
            })
            .count()
    };
    assert_eq!(exchanges(&b), 1);
    let reload = b.get(&cb, true, NOW + 1);
    assert_eq!(response(&reload).status, 302, "{reload:?}");
    assert!(header_of_response(&reload, "set-cookie").contains("session="));
    assert_eq!(exchanges(&b), 1, "the code is not sent again");
    // Once given, a later callback with the same cookies is a replay.
    b.jar = cookies;
    let replay = b.get(&cb, true, NOW + 2);
    assert_eq!(response(&replay).status, 400);
    assert!(!header_of_response(&replay, "set-cookie").contains("session="));
    assert_eq!(exchanges(&b), 1);
}

fn header_of_response(d: &Decision, name: &str) -> String {
    response(d)
        .headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_claim_header_the_access_token_lacks_is_read_from_the_sessions_id_token() {
    // Cognito's access tokens carry no `aud` (nor `email`): as Kong does, a
    // claim header looks in the ID token the session keeps when the access
    // token lacks the claim; the access token's own claims come first.
    let cfg = config(json!({"upstream_headers_claims": ["aud", "sub", "nope"],
                            "upstream_headers_names": ["x-aud", "x-sub", "x-nope"]}));
    let mut b = Browser::new(cfg);
    b.login("/oidcroute/get", NOW);
    let d = b.get("/oidcroute/get", false, NOW + 1);
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    let header = |name: &str| set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(header("x-aud"), Some("web"), "the ID token's: {set:?}");
    assert_eq!(
        header("x-sub"),
        Some("client-1"),
        "the access token's: {set:?}"
    );
    assert_eq!(header("x-nope"), None);
}

#[test]
fn our_cookies_never_go_upstream_even_without_hide_credentials() {
    // Kong removes its session cookie whatever `hide_credentials` says:
    // the sealed session holds the refresh token, which an upstream (or
    // its logs) could replay. The same on a bypass path.
    let cfg = config(json!({"hide_credentials": false, "bypass_paths": ["/public"]}));
    let mut b = Browser::new(cfg);
    b.login("/oidcroute/get", NOW);
    b.jar.insert("theme".into(), "dark".into());
    for path in ["/oidcroute/get", "/public/x"] {
        let d = b.get(path, false, NOW + 1);
        let Action::Continue { set, .. } = &d.action else {
            panic!("{path}: {d:?}")
        };
        let upstream = set.iter().find(|(n, _)| n == "cookie");
        assert_eq!(
            upstream.map(|(_, v)| v.as_str()),
            Some("theme=dark"),
            "{path}"
        );
    }
    // With no sessions anywhere in the filter, a cookie named like ours is
    // the application's (Flask's is `session`): with `hide_credentials:
    // false` it goes on, and so does the bearer cookie.
    let cfg = json!({"issuer": envoy_oidc_testkit::tokens::ISSUER, "idp_cluster": "idp", "auth_methods": ["bearer"],
                     "hide_credentials": false, "bypass_paths": ["/public"],
                     "bearer_token_param_type": ["header", "cookie"],
                     "bearer_token_cookie_name": "at"});
    let idp = crate::scripted(crate::healthy, crate::issue_token);
    let mut w = envoy_oidc_testkit::World::new(&cfg, 1, NOW, idp);
    let req = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/public/x".to_vec()),
        ("cookie".into(), b"session=flask; at=tok".to_vec()),
    ]);
    let d = w.request(0, req);
    let Action::Continue { set, remove, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert!(!set.iter().any(|(n, _)| n == "cookie"), "{d:?}");
    assert!(!remove.iter().any(|n| n == "cookie"), "{d:?}");
    // A rule with sessions makes the name ours on every route: the same
    // request to the bearer-only top level loses the cookie.
    let mut cfg = cfg;
    cfg["rules"] = json!([{"match": {"paths": ["/app"]},
                           "auth_methods": ["authorization_code", "session"]}]);
    cfg["client_id"] = json!("web");
    cfg["client_secret"] = json!("web-secret");
    cfg["redirect_uri"] = json!("https://gw.example.com/app/callback");
    let idp = crate::scripted(crate::healthy, crate::issue_token);
    let mut w = envoy_oidc_testkit::World::new(&cfg, 1, NOW, idp);
    let req = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/public/x".to_vec()),
        ("cookie".into(), b"session=x; at=tok".to_vec()),
    ]);
    let d = w.request(0, req);
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    let upstream = set.iter().find(|(n, _)| n == "cookie");
    assert_eq!(upstream.map(|(_, v)| v.as_str()), Some("at=tok"), "{d:?}");
}

#[test]
fn other_cookies_go_upstream_byte_for_byte_without_ours() {
    let mut b = Browser::new(config(json!({})));
    assert_eq!(response(&b.login("/oidcroute/get", NOW)).status, 302);
    let ours: Vec<String> = b.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let cookie = format!(
        "flag; theme=\"dark blue\"; {};a=b=c;  empty=",
        ours.join("; ")
    );
    let req = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/oidcroute/get".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        ("cookie".into(), cookie.into_bytes()),
    ]);
    let d = b.send(req, NOW + 1);
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    let upstream = set
        .iter()
        .find(|(n, _)| n == "cookie")
        .map(|(_, v)| v.as_str());
    assert_eq!(upstream, Some("flag; theme=\"dark blue\"; a=b=c; empty="));
}

#[test]
fn a_session_wins_over_the_scripts_own_authorization_header() {
    for header in ["authorization:bearer", "x-access-token"] {
        let mut w = Browser::new(config(json!({"upstream_access_token_header": header})));
        w.login("/oidcroute/get", NOW);
        let calls = w.calls().len();
        let session_token = w.idp().issued[0].0.clone();
        let mut h: Vec<(String, Vec<u8>)> = vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/oidcroute/get".to_vec()),
            (":scheme".into(), b"https".to_vec()),
            (
                "authorization".into(),
                b"Basic c2NyaXB0OnNlY3JldA==".to_vec(),
            ),
        ];
        let c: Vec<String> = w.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        h.push(("cookie".into(), c.join("; ").into_bytes()));
        let d = w.send(RequestView::new(h), NOW + 1);
        let Action::Continue { set, remove, .. } = &d.action else {
            panic!("{header}: {d:?}")
        };
        assert_eq!(
            w.calls().len(),
            calls,
            "{header}: no client-credentials exchange"
        );
        let name = header.split(':').next().unwrap();
        let sent = set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        assert!(
            sent.is_some_and(|v| v.ends_with(&session_token)),
            "{header}: {set:?}"
        );
        if name != "authorization" {
            assert!(
                remove.contains(&"authorization".to_string()),
                "{header}: the script's header never goes upstream"
            );
        }
    }
}

#[test]
fn a_refresh_whose_id_token_names_another_subject_ends_the_session() {
    // OpenID Connect Core §12.2: the refreshed ID token must name the
    // login's iss, sub and aud; else the refresh failed, and its tokens are
    // not this user's to forward.
    for (claims, kept) in [(json!({}), true), (json!({"sub": "mallory"}), false)] {
        let mut w = Browser::new(config(json!({"upstream_id_token_header": "x-id-token"})));
        w.login("/oidcroute/get", NOW);
        w.idp().id_claims = claims.clone();
        let d = w.get("/oidcroute/get", false, NOW + 250);
        assert_eq!(refreshes(&w), 1);
        let issued = w.idp().issued.clone();
        match &d.action {
            Action::Continue { set, .. } if kept => {
                let id = set.iter().find(|(k, _)| k == "x-id-token").map(|(_, v)| v);
                assert_eq!(id, Some(&issued[1].1));
                assert_eq!(upstream_bearer(&d), issued[1].0);
            }
            Action::Continue { .. } => panic!("{claims}: passed with another user's tokens"),
            _ => assert!(!kept, "{claims}: {d:?}"),
        }
    }
}

#[test]
fn kong_token_and_identity_headers_go_upstream_and_downstream() {
    let mut w = Browser::new(config(json!({
        "upstream_id_token_header": "x-id-token",
        "upstream_refresh_token_header": "x-refresh-token",
        "upstream_session_id_header": "x-session-id",
        "upstream_user_info_header": "x-userinfo",
        "upstream_headers": [{"header": "x-scope-1", "path": ["scope"]}],
        "downstream_access_token_header": "x-access-token",
        "downstream_headers_claims": ["sub"],
        "downstream_headers_names": ["x-user"],
    })));
    w.login("/oidcroute/get", NOW);
    let (access, id, refresh) = w.idp().issued[0].clone();
    let mut h: Vec<(String, Vec<u8>)> = vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/oidcroute/get".to_vec()),
        ("x-id-token".into(), b"forged".to_vec()),
        ("x-userinfo".into(), b"forged".to_vec()),
        ("x-session-id".into(), b"forged".to_vec()),
    ];
    let c: Vec<String> = w.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
    h.push(("cookie".into(), c.join("; ").into_bytes()));
    let d = w.send(RequestView::new(h), NOW + 1);
    let Action::Continue {
        set,
        remove,
        response,
        ..
    } = &d.action
    else {
        panic!("{d:?}")
    };
    let get = |list: &[(String, String)], n: &str| {
        list.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    };
    assert_eq!(get(set, "x-id-token"), Some(id));
    assert_eq!(get(set, "x-refresh-token"), Some(refresh));
    assert!(get(set, "x-session-id").is_some_and(|s| s.len() >= 32));
    assert_eq!(
        get(set, "x-scope-1").as_deref(),
        Some("kongresource/scope1 other")
    );
    // No userinfo here: the header is not sent, and a client's is removed.
    assert_eq!(get(set, "x-userinfo"), None);
    for n in ["x-id-token", "x-userinfo", "x-session-id"] {
        assert!(remove.contains(&n.to_string()), "{n}: {remove:?}");
    }
    assert_eq!(get(response, "x-access-token"), Some(access));
    assert_eq!(get(response, "x-user").as_deref(), Some("client-1"));
}

fn on_host(w: &Browser, host: &str, path: &str) -> RequestView {
    let mut h = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
        (":authority".to_string(), host.as_bytes().to_vec()),
        ("accept".to_string(), b"text/html".to_vec()),
    ];
    if !w.jar.is_empty() {
        let c: Vec<String> = w.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
        h.push(("cookie".into(), c.join("; ").into_bytes()));
    }
    RequestView::new(h)
}

#[test]
fn each_host_logs_in_through_its_own_redirect_uri() {
    let uris = ["https://a.example.com/cb", "https://b.example.com/cb"];
    let mut w = Browser::new(config(json!({"redirect_uri": uris})));
    for (host, want) in [
        ("b.example.com", uris[1]),
        ("a.example.com:443", uris[0]),
        ("c.example.com", uris[0]),
    ] {
        let d = w.send(on_host(&w, host, "/app"), NOW);
        let q = query(header(response(&d), "location"));
        assert_eq!(q["redirect_uri"], want, "{host}");
    }
}

#[test]
fn without_redirect_uri_it_is_derived_from_the_request_and_the_login_completes() {
    let cfg = browser_kit::config(json!({}));
    let mut cfg = cfg;
    cfg.as_object_mut().unwrap().remove("redirect_uri");
    let mut w = Browser::new(cfg);
    let d = w.send(on_host(&w, "gw.example.com", "/app/page?x=1"), NOW);
    let q = query(header(response(&d), "location"));
    assert_eq!(q["redirect_uri"], "https://gw.example.com/app/page");
    w.idp().nonce = q["nonce"].clone();
    // The IdP sends the browser back to that URI with code and state.
    let cb = format!("/app/page?code=c&state={}", browser_kit::enc(&q["state"]));
    let d = w.send(on_host(&w, "gw.example.com", &cb), NOW);
    assert_eq!(response(&d).status, 302, "{d:?}");
    assert_eq!(header(response(&d), "location"), "/app/page?x=1");
    assert_eq!(
        w.calls()[0].form()["redirect_uri"],
        "https://gw.example.com/app/page"
    );
    assert!(w.jar.contains_key("session"));
    // An application's own ?code=&state= without our login cookie is no
    // callback of ours: it rides the session.
    let d = w.send(
        on_host(&w, "gw.example.com", "/app/page?code=x&state=y"),
        NOW + 1,
    );
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
}

#[test]
fn a_session_of_another_client_or_issuer_does_not_open() {
    use crate::browser_kit::Access;
    // App A, client "web": its access tokens are opaque (Google-like), so
    // the session carries the identity verified at login.
    let mut a = Browser::new(config(json!({})));
    a.idp().access = Access::Opaque;
    a.login("/oidcroute/get", NOW);
    let cookie = a.jar["session"].clone();
    // The same session_secret (one per deployment, as the README asks),
    // another client of the same IdP, then another IdP.
    for other in [
        json!({"client_id": "admin-app", "client_secret": "other",
               "redirect_uri": "https://admin.example.com/cb"}),
        json!({"issuer": "https://other-idp.example.org",
               "client_id": "admin-app", "client_secret": "other"}),
    ] {
        let mut b = Browser::new(config(other.clone()));
        b.jar.insert("session".into(), cookie.clone());
        let d = b.get("/oidcroute/get", false, NOW + 1);
        assert!(
            !matches!(d.action, Action::Continue { .. }),
            "{other}: another configuration's session let in: {d:?}"
        );
    }
    // Its own configuration still opens it.
    let d = a.get("/oidcroute/get", false, NOW + 1);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
}

#[test]
fn over_the_refresh_budget_a_still_valid_session_serves_on() {
    // One refresh a second for the whole Envoy; two sessions due at once.
    let cfg = config(json!({"idp_call_budget": {"refresh": {"per_second": 1, "burst": 1}}}));
    let mut a = Browser::new(cfg);
    a.login("/oidcroute/get", NOW);
    let first = a.jar.clone();
    a.jar.clear();
    a.login("/oidcroute/get", NOW);
    // Both tokens live 300 s: at +250 both are due, valid 50 s more.
    let d = a.get("/oidcroute/get", false, NOW + 250);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    a.jar = first;
    let d = a.get("/oidcroute/get", false, NOW + 250);
    assert!(
        matches!(d.action, Action::Continue { .. }),
        "the budget spent, the current token serves: {d:?}"
    );
}

#[test]
fn with_strict_sessions_the_login_cookie_is_lax_and_the_login_ends_on_our_site() {
    // The callback is a navigation from the IdP's site: a Strict cookie
    // would not come with it, and every login would end in a 400.
    let mut b = Browser::new(config(json!({"session_cookie_same_site": "Strict"})));
    let d = b.get("/oidcroute/get", true, NOW);
    let login = header_of_response(&d, "set-cookie");
    assert!(
        login.contains("_login_") && login.contains("SameSite=Lax"),
        "{login}"
    );
    // The callback answers a page that goes on from our own site: a
    // redirect would still be the IdP's navigation, which carries no Strict
    // cookie, and the session just set would be missing there (a loop).
    let cb = b.start_login("/oidcroute/get?a=1&b=2", NOW);
    let d = b.get(&cb, true, NOW);
    let r = response(&d);
    assert_eq!(r.status, 200, "{d:?}");
    assert!(
        r.body
            .contains(r#"<meta http-equiv="refresh" content="0;url=/oidcroute/get?a=1&amp;b=2">"#),
        "{}",
        r.body
    );
    assert_eq!(header_of_response(&d, "referrer-policy"), "no-referrer");
    let session = header_of_response(&d, "set-cookie");
    assert!(
        session
            .lines()
            .any(|c| c.starts_with("session=") && c.contains("SameSite=Strict")),
        "{session}"
    );
    // The page's navigation, same-site, brings the session.
    let d = b.get("/oidcroute/get?a=1&b=2", true, NOW + 1);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
}

#[test]
fn a_refresh_answered_with_a_token_that_expires_at_once_ends_the_session() {
    // Logged in with an opaque token of 300 s; the refresh answers one of
    // 0 s. Taken, the session would be due again at once and every request
    // would refresh it anew; retried, the spent (perhaps rotated) refresh
    // token would be sent again. The session is over, as when refused.
    let mut w = Browser::new(config(json!({})));
    w.idp().access = crate::browser_kit::Access::Opaque;
    w.login("/oidcroute/get", NOW);
    w.idp().token_life = 0;
    for t in [NOW + 250, NOW + 251, NOW + 252] {
        let d = w.get("/oidcroute/get", false, t);
        assert_eq!(response(&d).status, 401, "{d:?}");
    }
    assert_eq!(refreshes(&w), 1, "one refresh, never sent again");
}

#[test]
fn short_tokens_serve_three_quarters_of_their_life_between_refreshes() {
    // A refresh a fixed minute before expiry would make a 60 s token due
    // the moment it is obtained (every request would refresh it), and a
    // 62 s token due 2 s in (a refresh grant every 2 s per session).
    let mut w = Browser::new(config(json!({})));
    w.idp().token_life = 60;
    w.login("/oidcroute/get", NOW);
    for t in NOW + 1..NOW + 45 {
        let d = w.get("/oidcroute/get", false, t);
        assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    }
    assert_eq!(refreshes(&w), 0, "served 44 s of its 60");
    // 15 s before expiry: refreshed, and the new token serves 45 s again.
    for t in NOW + 45..NOW + 90 {
        for _ in 0..3 {
            let d = w.get("/oidcroute/get", false, t);
            assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
        }
    }
    assert_eq!(refreshes(&w), 1, "one refresh in 45 s of requests");
    let d = w.get("/oidcroute/get", false, NOW + 90);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    assert_eq!(refreshes(&w), 2, "due again 45 s after the refresh");
}

#[test]
fn a_refresh_answered_with_a_page_keeps_the_session() {
    // A 200 that is no token answer (a maintenance page, a WAF's): the IdP
    // likely spent nothing; the current token serves on, retried later.
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(200),
        body: b"<html>down for maintenance</html>".to_vec(),
        retry_after: None,
    });
    let d = w.get("/oidcroute/get", false, NOW + 250);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    // The IdP is back: the next try refreshes.
    w.idp().refresh_reply = None;
    let d = w.get("/oidcroute/get", false, NOW + 256);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    assert_eq!(refreshes(&w), 2);
}

/// Logged in at NOW, under a rule the user does not meet on
/// `/oidcroute/admin` (a group it lacks): a 403 there.
fn logged_in_under_an_admin_rule() -> Browser {
    let mut w = Browser::new(config(json!({"rules": [
        {"match": {"paths": ["/oidcroute/admin"]}, "groups_required": ["admins"]}
    ]})));
    w.login("/oidcroute/get", NOW);
    w
}

#[test]
fn a_refresh_made_for_a_refused_request_still_renews_the_cookie() {
    // The refresh happens before the rule's policy refuses the user: it
    // spent the refresh token the browser's cookie holds.
    let mut w = logged_in_under_an_admin_rule();
    let d = w.get("/oidcroute/admin", false, NOW + 250);
    assert_eq!(response(&d).status, 403, "{d:?}");
    assert_eq!(refreshes(&w), 1);
    assert!(
        header_of_response(&d, "set-cookie").contains("session="),
        "the renewed cookie goes out with the 403: {d:?}"
    );
    // Long after the refresh's outcome is gone, the next refresh sends the
    // new refresh token, never the spent one again.
    let d = w.get("/oidcroute/get", false, NOW + 500);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    let sent: Vec<String> = w
        .calls()
        .iter()
        .filter_map(|c| c.form().get("refresh_token").cloned())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert_ne!(sent[0], sent[1], "a spent refresh token sent again");
}

#[test]
fn an_expired_sessions_failed_refresh_is_not_retried_per_request_before_its_retry_after() {
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(429),
        body: br#"{"error":"slow_down"}"#.to_vec(),
        retry_after: Some(120),
    });
    // The token expired at NOW + 300: nothing serves while the IdP asks
    // us to wait, and it is asked once.
    for t in NOW + 301..NOW + 306 {
        let d = w.get("/oidcroute/get", false, t);
        assert_eq!(response(&d).status, 503, "{d:?}");
        // The wait that remains of the IdP's 120 s.
        let wait = (NOW + 301 + 120 - t).to_string();
        assert_eq!(header_of_response(&d, "retry-after"), wait);
    }
    assert_eq!(refreshes(&w), 1, "asked once within its Retry-After");
    // Past it, with the IdP back: refreshed.
    w.idp().refresh_reply = None;
    let d = w.get("/oidcroute/get", false, NOW + 422);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    assert_eq!(refreshes(&w), 2);
}

/// The code exchanges the IdP was asked for.
fn code_exchanges(b: &Browser) -> usize {
    b.calls()
        .iter()
        .filter(|c| c.form().get("grant_type").map(String::as_str) == Some("authorization_code"))
        .count()
}

#[test]
fn a_callback_reloaded_onto_another_worker_waits_for_the_first_exchange() {
    // HTTP/1.1: a reload during a slow exchange comes over a new
    // connection, which may reach another worker. Exchanging the code
    // there too would be refused by the IdP (which may also revoke what the
    // first exchange obtained); it takes the first exchange's outcome.
    let mut b = Browser::on(config(json!({})), browser_kit::discovery(), 3);
    let cb = b.start_login("/oidcroute/get", NOW);
    let cookies_before = b.jar.clone();
    let req = b.request("GET", &cb, true);
    b.world.now = NOW;
    let first = b.world.send(0, req.clone());
    b.world.tick(0); // the exchange goes out from worker 0's root
    assert_eq!(code_exchanges(&b), 1);
    let second = b.world.send(1, req);
    b.world.drop_request(0, first); // the reload abandons the first
    b.world.settle();
    assert_eq!(code_exchanges(&b), 1, "the code exchanged once");
    let d = b.world.decision(1, second).clone();
    let r = response(&d);
    assert_eq!(r.status, 302, "logged in on worker 1: {d:?}");
    assert!(header(r, "set-cookie").contains("session="), "{d:?}");

    // A replay of the callback later, on any worker, with the cookies from
    // before the login: refused, and the IdP not asked (also once the
    // shared outcome has lapsed: each worker that saw it noted the code
    // spent, worker 2 at the first replay).
    for at in [NOW + 5, NOW + 300] {
        for worker in [1, 0, 2] {
            b.jar = cookies_before.clone();
            b.worker = worker;
            let replay = b.get(&cb, true, at);
            assert_eq!(response(&replay).status, 400, "worker {worker} at {at}");
            assert_eq!(code_exchanges(&b), 1, "worker {worker} at {at}");
        }
    }
}

#[test]
fn behind_an_h2c_tls_terminator_cookies_are_secure_as_the_redirect_uri_is_https() {
    // The terminator speaks h2c to Envoy (`:scheme: http`) and says the
    // client's scheme in `X-Forwarded-Proto`: the login's cookie is
    // `Secure`, as its derived `redirect_uri` is https.
    let mut b = Browser::new(config(json!({"redirect_uri": null})));
    let req = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/oidcroute/get".to_vec()),
        (":scheme".into(), b"http".to_vec()),
        (":authority".into(), b"gw.example.com".to_vec()),
        ("x-forwarded-proto".into(), b"https".to_vec()),
        ("accept".into(), b"text/html".to_vec()),
    ]);
    let d = b.send(req, NOW);
    let r = response(&d);
    assert_eq!(r.status, 302, "{d:?}");
    let q = query(header(r, "location"));
    assert!(
        q["redirect_uri"].starts_with("https://gw.example.com/"),
        "{q:?}"
    );
    let cookie = header(r, "set-cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[test]
fn a_session_cookie_under_a_name_with_unicode_spaces_is_not_ours() {
    // A browser keeps `\u{2000}session` apart from `session` (and, for a
    // `__Host-` name, lets a sibling subdomain set it): only blanks and
    // tabs around a name are RFC 6265's whitespace, so it is someone
    // else's cookie, not the session, however valid its value.
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    let sealed = b.jar.remove("session").expect("a session cookie");
    for name in ["\u{2000}session", "session\u{a0}", "\u{3000}session"] {
        b.jar.clear();
        b.jar.insert(name.to_string(), sealed.clone());
        let d = b.get("/oidcroute/get", false, NOW + 1);
        assert_eq!(response(&d).status, 401, "{name:?}: {d:?}");
    }
    // Blanks and tabs around the name are trimmed, as browsers send them.
    b.jar.clear();
    b.jar.insert(" \tsession".to_string(), sealed);
    let d = b.get("/oidcroute/get", false, NOW + 1);
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
}

#[test]
fn a_callback_reloaded_onto_an_edited_configuration_waits_for_the_first_exchange() {
    // While Envoy drains a configuration, its edited successor takes the
    // new connections: a reload of a slow callback reaches the successor,
    // which opens the same login cookie. It takes the first exchange's
    // outcome instead of sending the code again.
    let mut b = Browser::on(config(json!({})), browser_kit::discovery(), 1);
    let edited = config(json!({"bypass_paths": ["/health"]}));
    let successor = b.world.start_configured(&edited, "edited/", [5; 72]);
    let cb = b.start_login("/oidcroute/get", NOW);
    let req = b.request("GET", &cb, true);
    b.world.now = NOW;
    let first = b.world.send(0, req.clone());
    b.world.tick(0); // the exchange goes out from worker 0's root
    assert_eq!(code_exchanges(&b), 1);
    let second = b.world.send(successor, req);
    b.world.drop_request(0, first);
    b.world.settle();
    assert_eq!(code_exchanges(&b), 1, "the code exchanged once");
    let d = b.world.decision(successor, second).clone();
    let r = response(&d);
    assert_eq!(r.status, 302, "logged in by the successor: {d:?}");
    assert!(header(r, "set-cookie").contains("session="), "{d:?}");
}

#[test]
fn an_exchange_dispatched_after_its_lease_lapsed_is_not_made_again() {
    // Worker 0's root is late to send the exchange: its lease lapses, and
    // worker 1 (the reload) exchanges the code. Worker 0 then does not send
    // the spent code; its callback takes worker 1's outcome.
    let mut b = Browser::on(config(json!({})), browser_kit::discovery(), 2);
    let cb = b.start_login("/oidcroute/get", NOW);
    let req = b.request("GET", &cb, true);
    b.world.now = NOW;
    let first = b.world.send(0, req.clone());
    b.world.now = NOW + 10; // past its lease (the 5 s timeout, and 1 s)
    let second = b.world.send(1, req);
    b.world.tick(1);
    assert_eq!(code_exchanges(&b), 1, "worker 1's");
    while b.world.answer_next() {}
    b.world.tick(0);
    b.world.settle();
    assert_eq!(code_exchanges(&b), 1, "the code exchanged once");
    for (worker, id) in [(0, first), (1, second)] {
        let d = b.world.decision(worker, id).clone();
        assert_eq!(response(&d).status, 302, "worker {worker}: {d:?}");
    }
}

#[test]
fn a_throttled_code_exchange_is_not_sent_again_before_its_retry_after() {
    let mut b = Browser::new(config(json!({})));
    b.idp().code_reply = Some(IdpReply {
        status: Some(429),
        body: Vec::new(),
        retry_after: Some(30),
    });
    let cb = b.start_login("/oidcroute/get", NOW);
    let d = b.get(&cb, true, NOW);
    assert_eq!(header_of_response(&d, "retry-after"), "30");
    b.idp().code_reply = None;
    let d = b.get(&cb, true, NOW + 10);
    assert_eq!(header_of_response(&d, "retry-after"), "20", "{d:?}");
    assert_eq!(code_exchanges(&b), 1);
    // After it, the code (never spent) is exchanged.
    let d = b.get(&cb, true, NOW + 31);
    assert_eq!(response(&d).status, 302, "logged in: {d:?}");
    assert_eq!(code_exchanges(&b), 2);
}

#[test]
fn a_worker_throttled_on_a_code_waits_for_another_workers_exchange_of_it() {
    let mut b = Browser::on(config(json!({})), browser_kit::discovery(), 2);
    b.idp().code_reply = Some(IdpReply {
        status: Some(429),
        body: Vec::new(),
        retry_after: Some(30),
    });
    let cb = b.start_login("/oidcroute/get", NOW);
    let req = b.request("GET", &cb, true);
    b.world.now = NOW;
    let first = b.world.send(0, req.clone());
    b.world.settle();
    assert_eq!(response(b.world.decision(0, first)).status, 503);
    // A reload on worker 1 exchanges it; another, on worker 0, meanwhile.
    b.idp().code_reply = None;
    b.world.now = NOW + 5;
    let second = b.world.send(1, req.clone());
    b.world.tick(1);
    let third = b.world.send(0, req);
    assert_eq!(
        b.world.outcome(0, third),
        &envoy_oidc_testkit::world::Outcome::Paused,
        "waits for worker 1's exchange, not 503 for its own throttle"
    );
    b.world.settle();
    for (worker, id) in [(1, second), (0, third)] {
        let d = b.world.decision(worker, id).clone();
        assert_eq!(response(&d).status, 302, "worker {worker}: {d:?}");
    }
    assert_eq!(code_exchanges(&b), 2, "the throttled one and worker 1's");
}

#[test]
fn an_exchange_the_idp_did_not_answer_may_be_tried_again() {
    // A 503 (or no answer): the IdP may not have seen the code, and the
    // login is not over; a reload exchanges it again.
    let mut b = Browser::new(config(json!({})));
    b.idp().code_reply = Some(IdpReply {
        status: Some(503),
        body: Vec::new(),
        retry_after: None,
    });
    let cb = b.start_login("/oidcroute/get", NOW);
    let d = b.get(&cb, true, NOW);
    assert_eq!(response(&d).status, 503, "{d:?}");
    b.idp().code_reply = None;
    let d = b.get(&cb, true, NOW + 2);
    assert_eq!(response(&d).status, 302, "logged in: {d:?}");
    assert_eq!(code_exchanges(&b), 2);
}

#[test]
fn a_code_the_idp_refused_ends_the_login_on_the_worker_that_waited_for_it() {
    let mut b = Browser::on(config(json!({})), browser_kit::discovery(), 2);
    b.idp().code_reply = Some(IdpReply {
        status: Some(400),
        body: br#"{"error":"invalid_grant"}"#.to_vec(),
        retry_after: None,
    });
    let cb = b.start_login("/oidcroute/get", NOW);
    let req = b.request("GET", &cb, true);
    b.world.now = NOW;
    let first = b.world.send(0, req.clone());
    b.world.tick(0);
    let second = b.world.send(1, req);
    b.world.settle();
    assert_eq!(code_exchanges(&b), 1);
    for (worker, id) in [(0, first), (1, second)] {
        let r = response(b.world.decision(worker, id)).clone();
        assert_eq!(r.status, 400, "worker {worker}");
        assert!(
            header(&r, "set-cookie").contains("Max-Age=0"),
            "worker {worker}: login cleared"
        );
    }
}

#[test]
fn a_callback_cancelled_during_its_exchange_does_not_exchange_its_code_again() {
    // A reload while the token endpoint is slow: the first callback goes
    // away, the second waits on its exchange. A second exchange of the code
    // would be refused by the IdP (and may revoke what the first obtained).
    let mut b = Browser::new(config(json!({})));
    let cb = b.start_login("/oidcroute/get", NOW);
    let req = b.request("GET", &cb, true);
    b.world.now = NOW;
    let first = b.world.send(0, req.clone());
    let second = b.world.send(0, req);
    b.world.drop_request(0, first);
    b.world.settle();
    let exchanges = b
        .calls()
        .iter()
        .filter(|c| c.form().get("grant_type").map(String::as_str) == Some("authorization_code"))
        .count();
    assert_eq!(exchanges, 1, "the code exchanged once");
    let d = b.world.decision(0, second).clone();
    assert_eq!(response(&d).status, 302, "logged in: {d:?}");
}

#[test]
fn a_code_exchange_the_host_cannot_dispatch_leaves_the_code_unspent() {
    let mut b = Browser::new(config(json!({})));
    let cb = b.start_login("/oidcroute/get", NOW);
    let jar = b.jar.clone();
    b.world.refuse_dispatch = true;
    let d = b.get(&cb, true, NOW);
    assert_eq!(
        response(&d).status,
        503,
        "the IdP could not be asked: {d:?}"
    );
    // The code never left: the same callback again logs in.
    b.world.refuse_dispatch = false;
    b.jar = jar;
    let d = b.get(&cb, true, NOW + 1);
    assert_eq!(response(&d).status, 302, "{d:?}");
    assert!(b.jar.contains_key("session"));
}

#[test]
fn a_refresh_whose_requests_next_call_is_refused_still_renews_the_cookie() {
    // After the refresh, the request needs the new token's userinfo; the
    // userinfo budget is spent this second: a 503, which must still carry
    // the renewed cookie (the refresh spent the one the browser holds).
    let mut discovery: Value = serde_json::from_slice(&browser_kit::discovery()).unwrap();
    discovery["userinfo_endpoint"] =
        json!(format!("{}/userinfo", envoy_oidc_testkit::tokens::ISSUER));
    let cfg = config(json!({"search_user_info": true,
        "idp_call_budget": {"userinfo": {"per_second": 1, "burst": 1}}}));
    let mut w = Browser::on(cfg, serde_json::to_vec(&discovery).unwrap(), 1);
    w.idp().userinfo = Some(json!({"sub": "alice", "email": "a@example.com"}));
    w.login("/oidcroute/get", NOW);
    // Another client's token spends the userinfo budget of NOW + 250.
    let other =
        envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW + 250));
    w.world.now = NOW + 250;
    let d = w
        .world
        .request(0, crate::request(&[&format!("Bearer {other}")]));
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    let d = w.get("/oidcroute/get", false, NOW + 250);
    assert_eq!(response(&d).status, 503, "{d:?}");
    assert_eq!(refreshes(&w), 1);
    assert!(
        header_of_response(&d, "set-cookie").contains("session="),
        "the renewed cookie goes out with the 503: {d:?}"
    );
}

#[test]
fn a_refreshed_token_under_a_key_not_yet_published_still_renews_the_cookie() {
    let mut w = Browser::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    w.idp().access = Access::NewKey;
    let d = w.get("/oidcroute/get", false, NOW + 250);
    assert_eq!(refreshes(&w), 1);
    assert_eq!(response(&d).status, 401, "{d:?}");
    assert!(
        header_of_response(&d, "set-cookie").contains("session="),
        "the refresh spent the cookie's refresh token: {d:?}"
    );
}

#[test]
fn an_id_token_of_a_new_key_without_kid_has_the_keys_fetched_again() {
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    let jwks_fetches = |b: &Browser| {
        b.world
            .calls
            .iter()
            .filter(|c| document(&c.request) == Some(Document::Jwks))
            .count()
    };
    assert_eq!(jwks_fetches(&b), 1);
    b.idp().new_key = true;
    b.jar.clear();
    // Keys fetched a moment ago are what the IdP publishes: the login
    // fails, and they are not fetched again for it.
    let cb = b.start_login("/oidcroute/get", NOW + 10);
    let d = b.get(&cb, true, NOW + 10);
    assert_ne!(response(&d).status, 302, "{d:?}");
    assert!(!b.jar.contains_key("session"), "{:?}", b.jar);
    assert_eq!(jwks_fetches(&b), 1);
    // Older keys are fetched again when they verify no signature: the
    // new key is among them, and the login completes.
    b.login("/oidcroute/get", NOW + 60);
    assert_eq!(jwks_fetches(&b), 2);
}

#[test]
fn a_refused_request_that_only_noted_the_sessions_use_sets_no_cookie() {
    // No refresh: a refused request need not keep the session alive.
    let mut w = logged_in_under_an_admin_rule();
    let d = w.get("/oidcroute/admin", false, NOW + 120);
    assert_eq!(response(&d).status, 403, "{d:?}");
    assert_eq!(refreshes(&w), 0);
    assert_eq!(header_of_response(&d, "set-cookie"), "", "{d:?}");
}

#[test]
fn a_long_link_still_logs_in_and_returns_to_its_path() {
    // A 3,000-byte query: kept whole, the sealed login cookie would pass
    // the 4 KB a browser keeps, and the callback could never complete.
    let mut b = Browser::new(config(json!({})));
    let long = format!("/oidcroute/report?filter={}", "x".repeat(3000));
    let d = b.get(&long, true, NOW);
    let set = header_of_response(&d, "set-cookie");
    let login = set
        .lines()
        .find(|c| c.starts_with("session_login_"))
        .unwrap();
    assert!(login.len() <= 4096, "{} bytes", login.len());
    let q = query(header(response(&d), "location"));
    b.idp().nonce = q["nonce"].clone();
    let issuer = browser_kit::enc(&b.idp().issuer);
    let cb = format!(
        "/oidcroute/get?code=the-code&state={}&iss={issuer}",
        q["state"]
    );
    let d = b.get(&cb, true, NOW);
    assert_eq!(response(&d).status, 302, "{d:?}");
    assert_eq!(header(response(&d), "location"), "/oidcroute/report");
    // Backslashes and quotes, which browsers send unencoded in a query,
    // take twice their bytes in the cookie's JSON.
    for link in [
        format!("/oidcroute/report?q={}", "\\".repeat(2400)),
        format!("/oidcroute/report?q={}", "\"".repeat(2400)),
    ] {
        let d = Browser::new(config(json!({}))).get(&link, true, NOW);
        let set = header_of_response(&d, "set-cookie");
        let login = set.lines().find(|c| c.starts_with("session_login_"));
        let pair = login.unwrap().split(';').next().unwrap();
        assert!(pair.len() <= 4096, "{} bytes", pair.len());
    }
    // Without a configured redirect_uri it is derived from the path (query
    // left out), and kept in the cookie too: both stay within the 4 KB.
    let mut cfg = config(json!({}));
    cfg.as_object_mut().unwrap().remove("redirect_uri");
    for path in [
        format!("/{}", "a".repeat(1400)),
        format!("/{}?q={}", "a".repeat(1300), "b".repeat(200)),
        format!("/{}", "a\\".repeat(700)),
    ] {
        let d = Browser::new(cfg.clone()).get(&path, true, NOW);
        let set = header_of_response(&d, "set-cookie");
        let login = set
            .lines()
            .find(|c| c.starts_with("session_login_"))
            .unwrap();
        let pair = login.split(';').next().unwrap();
        assert!(pair.len() <= 4096, "{} bytes", pair.len());
    }
    // A path whose derived redirect_uri, escaped, is past the room: refused
    // at once, not a login cookie the browser would drop.
    let path = format!("/a{}", "\\".repeat(1500));
    let d = Browser::new(cfg).get(&path, true, NOW);
    let set = header_of_response(&d, "set-cookie");
    assert!(
        set.lines()
            .all(|c| !c.starts_with("session_login_") || c.len() <= 4096),
        "{set}"
    );
    assert_eq!(response(&d).status, 400, "{d:?}");
}

#[test]
fn the_idp_refusing_our_own_client_is_an_idp_error_with_a_warning() {
    // invalid_client on the code exchange (a secret rotated at the IdP):
    // every login fails, which the operator must see, unlike a client's
    // made-up token refused.
    let mut w = Browser::new(config(json!({})));
    w.idp().code_reply = Some(IdpReply {
        status: Some(401),
        body: br#"{"error":"invalid_client"}"#.to_vec(),
        retry_after: None,
    });
    let cb = w.start_login("/oidcroute/get", NOW);
    let d = w.get(&cb, true, NOW);
    assert_eq!(response(&d).status, 400, "{d:?}");
    w.world.tick(0);
    let counters = &w.world.workers[0].host.counters;
    assert_eq!(
        counters.get("oidc_idp_token_error"),
        Some(&1),
        "{counters:?}"
    );
    assert!(
        w.world
            .logs(0)
            .iter()
            .any(|(l, m)| *l == envoy_oidc::engine::Level::Warn && m.contains("identity provider")),
        "{:?}",
        w.world.logs(0)
    );
}

#[test]
fn a_path_too_long_for_a_derived_redirect_uri_is_refused_not_looped() {
    // Without a configured redirect_uri, the callback is the path itself:
    // a login cookie that cannot hold it would be dropped, and every
    // callback start a login again.
    let mut cfg = config(json!({}));
    cfg.as_object_mut().unwrap().remove("redirect_uri");
    let d = Browser::new(cfg).get(&format!("/{}", "a".repeat(2800)), true, NOW);
    assert_eq!(response(&d).status, 400, "{d:?}");
    assert!(!header_of_response(&d, "set-cookie").contains("session_login_"));
}

#[test]
fn the_redirect_uri_of_the_host_as_the_request_names_it_comes_first() {
    let mut b = Browser::new(config(json!({"redirect_uri": [
        "https://gw.example.com./oidcroute/get", "https://gw.example.com/oidcroute/get"
    ]})));
    for (host, expected) in [
        ("gw.example.com", "https://gw.example.com/oidcroute/get"),
        ("gw.example.com.", "https://gw.example.com./oidcroute/get"),
    ] {
        let req = envoy_oidc::request::RequestView::new(vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/oidcroute/get".to_vec()),
            (":authority".into(), host.as_bytes().to_vec()),
            ("accept".into(), b"text/html".to_vec()),
        ]);
        let d = b.send(req, NOW);
        let q = query(header(response(&d), "location"));
        assert_eq!(q["redirect_uri"], expected, "{host}");
    }
}

#[test]
fn a_rolling_renewal_near_expiry_keeps_the_tokens_refresh_margin() {
    // Renewed (rolling timeout) 100 s before the token expires: the margin
    // stays the token's (a minute), not a quarter of those 100 s.
    let mut w = Browser::new(config(json!({"session_rolling_timeout": 7000,
                                           "session_idling_timeout": 0})));
    w.idp().token_life = 3600;
    w.login("/oidcroute/get", NOW);
    let first = upstream_bearer(&w.get("/oidcroute/get", false, NOW + 1));
    let rolled = w.get("/oidcroute/get", false, NOW + 3500);
    let renewed = match &rolled.action {
        Action::Continue { response, .. } => response
            .iter()
            .any(|(n, v)| n == "set-cookie" && v.starts_with("session=")),
        _ => false,
    };
    assert!(renewed, "renewed: {rolled:?}");
    assert_eq!(upstream_bearer(&rolled), first, "not yet refreshed");
    let calls = w.calls().len();
    // 50 s before expiry: within the minute.
    let later = w.get("/oidcroute/get", false, NOW + 3550);
    assert_eq!(w.calls().len(), calls + 1, "a refresh call");
    assert_eq!(w.calls()[calls].form()["grant_type"], "refresh_token");
    assert_ne!(upstream_bearer(&later), first, "a new token");
}
