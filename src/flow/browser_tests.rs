//! The browser flows driven on the host: login redirect, callback, session,
//! refresh, logout. A tiny cookie jar plays the browser.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::action::{IdpReply, IdpRequest, Response};
use crate::store::MemoryStore;
use crate::testkit::{self, ISSUER};

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "a-session-secret-of-32-bytes-or-more";

fn config(extra: Value) -> Config {
    let mut c = json!({
        "issuer": ISSUER, "idp_cluster": "idp", "leeway": 0,
        "client_id": "web", "client_secret": "web-secret",
        "redirect_uri": "https://gw.example.com/oidcroute/get",
        "scopes": ["openid", "kongresource/scope1"],
        "session_secret": SECRET, "logout_path": "/logout",
        "post_logout_redirect_uri": "https://gw.example.com/bye",
    });
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Config::parse(&serde_json::to_vec(&c).unwrap())
        .unwrap()
        .config
}

fn discovery(extra: Value) -> Vec<u8> {
    let mut d = json!({
        "issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks"),
        "authorization_endpoint": "https://login.example.com/authorize",
        "token_endpoint": "https://login.example.com/token",
        "revocation_endpoint": "https://login.example.com/revoke",
        "end_session_endpoint": "https://login.example.com/logout",
    });
    d.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::to_vec(&d).unwrap()
}

/// The browser and the IdP, with the nonce the IdP saw at /authorize.
struct World {
    cfg: Config,
    core: Core,
    store: MemoryStore,
    jar: BTreeMap<String, String>,
    discovery: Vec<u8>,
    nonce: String,
    calls: Vec<IdpRequest>,
    /// What the token endpoint answers (by grant type).
    refuse_refresh: bool,
    /// How many seconds access tokens live.
    token_life: u64,
}

impl World {
    fn new(cfg: Config) -> World {
        World::with_discovery(cfg, discovery(json!({})))
    }

    fn with_discovery(cfg: Config, discovery: Vec<u8>) -> World {
        World {
            core: Core::new(
                &cfg.session.secrets,
                Shared {
                    prefix: "t/".into(),
                    salt: [3; 32],
                    session_key: [4; 32],
                },
            ),
            cfg,
            store: MemoryStore::default(),
            jar: BTreeMap::new(),
            discovery,
            nonce: String::new(),
            calls: Vec::new(),
            refuse_refresh: false,
            token_life: 300,
        }
    }

    fn request(&self, path: &str, accept_html: bool) -> RequestView {
        let mut h = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
            (":scheme".to_string(), b"https".to_vec()),
        ];
        if accept_html {
            h.push(("accept".into(), b"text/html,application/xhtml+xml".to_vec()));
        }
        if !self.jar.is_empty() {
            let c: Vec<String> = self.jar.iter().map(|(n, v)| format!("{n}={v}")).collect();
            h.push(("cookie".into(), c.join("; ").into_bytes()));
        }
        RequestView::new(h)
    }

    fn token_reply(&self, request: &IdpRequest, now: u64) -> IdpReply {
        let body = String::from_utf8(request.body.clone().unwrap_or_default()).unwrap();
        let params: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        if params.get("grant_type").map(String::as_str) == Some("refresh_token")
            && self.refuse_refresh
        {
            return IdpReply {
                status: Some(400),
                body: br#"{"error":"invalid_grant"}"#.to_vec(),
            };
        }
        let mut at = testkit::access_claims(now);
        at["exp"] = json!(now + self.token_life);
        at["client_id"] = json!("web");
        let id = json!({"iss": ISSUER, "sub": "alice", "aud": "web", "azp": "web", "iat": now,
                        "exp": now + 300, "nonce": self.nonce});
        let body = json!({"access_token": testkit::rs256(&at), "id_token": testkit::rs256(&id),
                          "refresh_token": format!("rt-{now}"), "token_type": "Bearer",
                          "expires_in": self.token_life});
        IdpReply {
            status: Some(200),
            body: body.to_string().into_bytes(),
        }
    }

    /// One request to its decision, answering every IdP call.
    fn send(&mut self, req: &RequestView, now: u64) -> Decision {
        let mut failed = None;
        for _ in 0..6 {
            match handle_request(
                &self.cfg,
                req,
                now,
                &mut self.core,
                &mut self.store,
                failed.as_ref(),
            ) {
                Step::Done(d) => {
                    self.absorb(&d);
                    return d;
                }
                Step::Fetch { doc, .. } => {
                    let body = match doc {
                        Document::Discovery => self.discovery.clone(),
                        Document::Jwks => testkit::jwks(),
                    };
                    let reply = IdpReply {
                        status: Some(200),
                        body,
                    };
                    failed = self
                        .core
                        .provider
                        .handle_reply(&self.cfg.issuer, doc, &reply, now)
                        .err()
                        .map(Error::Idp);
                }
                Step::Call { key, request } => {
                    let reply = match key {
                        CallKey::Revoke(_) => IdpReply {
                            status: Some(200),
                            body: vec![],
                        },
                        _ => self.token_reply(&request, now),
                    };
                    self.calls.push(request);
                    failed = handle_call_reply(
                        &self.cfg,
                        &key,
                        &reply,
                        now,
                        &mut self.core,
                        &mut self.store,
                    );
                }
                Step::Wait(_) => panic!("a lone worker never waits"),
            }
        }
        panic!("too many IdP round trips")
    }

    /// The browser keeps the cookies it is given.
    fn absorb(&mut self, d: &Decision) {
        let headers = match &d.action {
            Action::Respond(r) => r.headers.clone(),
            Action::Continue { response, .. } => response.clone(),
        };
        for (n, v) in headers {
            if n != "set-cookie" {
                continue;
            }
            let (pair, attrs) = v.split_once(';').unwrap_or((&v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// Logs in through the redirect and the callback; returns the callback decision.
    fn login(&mut self, path: &str, now: u64) -> Decision {
        let d = self.send(&self.request(path, true), now);
        let location = header(response(&d), "location").to_string();
        let q = query(&location);
        self.nonce = q["nonce"].clone();
        let cb = format!(
            "/oidcroute/get?code=the-code&state={}&iss={}",
            q["state"],
            enc(ISSUER)
        );
        self.send(&self.request(&cb, true), now)
    }
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

fn response(d: &Decision) -> &Response {
    match &d.action {
        Action::Respond(r) => r,
        other => panic!("expected a response, got {other:?}"),
    }
}

fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
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
    let mut w = World::new(config(json!({})));
    let d = w.send(&w.request("/oidcroute/get?x=1", true), NOW);
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
    let mut w = World::new(config(json!({})));
    assert_eq!(
        response(&w.send(&w.request("/oidcroute/get", false), NOW)).status,
        401
    );
    let mut fetch = w.request("/oidcroute/get", true);
    fetch = RequestView::new({
        let mut h: Vec<(String, Vec<u8>)> = vec![("sec-fetch-mode".into(), b"cors".to_vec())];
        h.extend(
            ["accept", ":method", ":path"]
                .iter()
                .map(|n| (n.to_string(), fetch.get(n).unwrap().as_bytes().to_vec())),
        );
        h
    });
    assert_eq!(response(&w.send(&fetch, NOW)).status, 401);
}

#[test]
fn full_login_sets_a_session_and_returns_to_the_original_url() {
    let mut w = World::new(config(json!({})));
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
    let exchange = String::from_utf8(w.calls[0].body.clone().unwrap()).unwrap();
    let p: BTreeMap<String, String> = form_urlencoded::parse(exchange.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(p["grant_type"], "authorization_code");
    assert_eq!(p["code"], "the-code");
    assert_eq!(p["redirect_uri"], "https://gw.example.com/oidcroute/get");
    assert_eq!(p["code_verifier"].len(), 43);
    // Riding the session: the access token goes upstream, our cookie does not.
    let d = w.send(&w.request("/oidcroute/get?x=1", true), NOW + 1);
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
    assert_eq!(w.calls.len(), 1, "no IdP call while riding the session");
}

#[test]
fn callback_without_matching_login_state_or_nonce_is_400() {
    let mut w = World::new(config(json!({})));
    // No login cookie at all.
    let d = w.send(&w.request("/oidcroute/get?code=c&state=forged", true), NOW);
    assert_eq!(response(&d).status, 400);
    // A real login, then a callback with another state.
    let start = w.send(&w.request("/oidcroute/get", true), NOW);
    let state = query(header(response(&start), "location"))["state"].clone();
    let d = w.send(
        &w.request("/oidcroute/get?code=c&state=not-the-state", true),
        NOW,
    );
    assert_eq!(response(&d).status, 400);
    // The right state but the IdP's iss is another issuer (mix-up).
    let d = w.send(
        &w.request(
            &format!("/oidcroute/get?code=c&state={state}&iss=https%3A%2F%2Fevil"),
            true,
        ),
        NOW,
    );
    assert_eq!(response(&d).status, 400);
    // The right state, expired login.
    let d = w.send(
        &w.request(&format!("/oidcroute/get?code=c&state={state}"), true),
        NOW + 601,
    );
    assert_eq!(response(&d).status, 400);
    // The right state, but the ID token carries another nonce.
    w.nonce = "another-nonce".into();
    let d = w.send(
        &w.request(&format!("/oidcroute/get?code=c&state={state}"), true),
        NOW,
    );
    assert_eq!(response(&d).status, 400);
    assert!(!w.jar.contains_key("session"));
}

#[test]
fn idp_error_on_callback_is_401() {
    let mut w = World::new(config(json!({})));
    let start = w.send(&w.request("/oidcroute/get", true), NOW);
    let state = query(header(response(&start), "location"))["state"].clone();
    let d = w.send(
        &w.request(
            &format!("/oidcroute/get?error=access_denied&state={state}"),
            true,
        ),
        NOW,
    );
    assert_eq!(response(&d).status, 401);
    assert!(w.calls.is_empty());
}

#[test]
fn tampered_or_foreign_session_cookies_are_no_session() {
    let mut w = World::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let good = w.jar["session"].clone();
    let mut bad = good.clone().into_bytes();
    bad[10] = if bad[10] == b'A' { b'B' } else { b'A' };
    w.jar
        .insert("session".into(), String::from_utf8(bad).unwrap());
    assert_eq!(
        response(&w.send(&w.request("/oidcroute/get", true), NOW + 1)).status,
        302,
        "browser: login again"
    );
    w.jar
        .insert("session".into(), good[..good.len() / 2].to_string());
    assert_eq!(
        response(&w.send(&w.request("/oidcroute/get", false), NOW + 1)).status,
        401,
        "API: 401"
    );
    // A cookie sealed with another secret.
    let mut other = World::new(config(
        json!({"session_secret": "another-secret-of-at-least-32-bytes"}),
    ));
    other.jar.insert("session".into(), good);
    assert_eq!(
        response(&other.send(&other.request("/oidcroute/get", false), NOW + 1)).status,
        401
    );
}

#[test]
fn session_times_out_rolling_and_absolute() {
    let mut w = World::new(config(
        json!({"session_rolling_timeout": 100, "session_absolute_timeout": 250}),
    ));
    w.token_life = 3600;
    w.login("/oidcroute/get", NOW);
    let api = |w: &mut World, t| w.send(&w.request("/oidcroute/get", false), t);
    assert!(
        matches!(api(&mut w, NOW + 90).action, Action::Continue { .. }),
        "renewed at +90"
    );
    assert!(
        matches!(api(&mut w, NOW + 180).action, Action::Continue { .. }),
        "within 100 s of the renewal"
    );
    assert_eq!(
        response(&api(&mut w, NOW + 260)).status,
        401,
        "absolute timeout"
    );
    let mut w = World::new(config(json!({"session_rolling_timeout": 100})));
    w.token_life = 3600;
    w.login("/oidcroute/get", NOW);
    assert_eq!(
        response(&api(&mut w, NOW + 101)).status,
        401,
        "idle past the rolling timeout"
    );
}

#[test]
fn near_expiry_the_session_is_refreshed_once() {
    let mut w = World::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let before = upstream_bearer(&w.send(&w.request("/oidcroute/get", false), NOW + 1));
    let d = w.send(&w.request("/oidcroute/get", false), NOW + 250);
    let after = upstream_bearer(&d);
    assert_ne!(before, after, "a new access token after refresh");
    assert_eq!(w.calls.len(), 2);
    let refresh = String::from_utf8(w.calls[1].body.clone().unwrap()).unwrap();
    assert!(
        refresh.contains("grant_type=refresh_token")
            && refresh.contains(&format!("refresh_token=rt-{NOW}"))
    );
    // The renewed cookie carries the new tokens: no second refresh.
    assert_eq!(
        upstream_bearer(&w.send(&w.request("/oidcroute/get", false), NOW + 251)),
        after
    );
    assert_eq!(w.calls.len(), 2);
}

#[test]
fn a_refused_refresh_ends_the_session() {
    let mut w = World::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    w.refuse_refresh = true;
    assert_eq!(
        response(&w.send(&w.request("/oidcroute/get", false), NOW + 250)).status,
        401
    );
}

#[test]
fn logout_revokes_clears_and_ends_the_idp_session() {
    let mut w = World::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let d = w.send(&w.request("/logout", true), NOW + 5);
    let r = response(&d);
    assert_eq!(r.status, 302);
    let q = query(header(r, "location"));
    assert!(header(r, "location").starts_with("https://login.example.com/logout?"));
    assert_eq!(q["client_id"], "web");
    assert_eq!(q["post_logout_redirect_uri"], "https://gw.example.com/bye");
    assert_eq!(q["id_token_hint"].split('.').count(), 3);
    assert!(w.jar.is_empty(), "all our cookies cleared: {:?}", w.jar);
    let revoke = w.calls.last().unwrap();
    assert_eq!(
        revoke.headers.iter().find(|(n, _)| n == ":path").unwrap().1,
        "/revoke"
    );
    assert!(
        String::from_utf8(revoke.body.clone().unwrap())
            .unwrap()
            .contains("token_type_hint=refresh_token")
    );
    assert_eq!(
        response(&w.send(&w.request("/oidcroute/get", true), NOW + 6)).status,
        302,
        "back to login"
    );
}

#[test]
fn cognito_logout_uses_the_hosted_ui_logout() {
    let cognito = "https://cognito-idp.us-west-1.amazonaws.com/us-west-1_pool";
    let cfg = Config::parse(
        json!({"issuer": cognito, "idp_cluster": "c", "client_id": "web", "redirect_uri": "https://gw/cb",
               "logout_path": "/logout", "post_logout_redirect_uri": "https://gw/bye"})
        .to_string()
        .as_bytes(),
    )
    .unwrap()
    .config;
    let d = json!({"issuer": cognito, "jwks_uri": format!("{cognito}/.well-known/jwks.json"),
                   "authorization_endpoint": "https://demo.auth.us-west-1.amazoncognito.com/oauth2/authorize",
                   "token_endpoint": "https://demo.auth.us-west-1.amazoncognito.com/oauth2/token"});
    let mut w = World::with_discovery(cfg, serde_json::to_vec(&d).unwrap());
    let r = w.send(&w.request("/logout", true), NOW);
    assert_eq!(
        header(response(&r), "location"),
        "https://demo.auth.us-west-1.amazoncognito.com/logout?client_id=web&logout_uri=https%3A%2F%2Fgw%2Fbye"
    );
}

#[test]
fn return_url_is_always_local() {
    let mut w = World::new(config(json!({})));
    let d = w.login("//evil.example.com/x", NOW);
    assert_eq!(header(response(&d), "location"), "/");
}

#[test]
fn large_sessions_are_chunked_and_reassembled() {
    let cfg = config(json!({}));
    let mut core = Core::new(
        &[SECRET],
        Shared {
            prefix: String::new(),
            salt: [0; 32],
            session_key: [0; 32],
        },
    );
    let browser = session::Browser {
        cookies: vec![],
        secure: true,
    };
    let s = crate::session::Session {
        sid: "s".into(),
        access_token: "a".repeat(4000),
        refresh_token: Some("r".repeat(2000)),
        id_token: Some("i".repeat(2000)),
        expires_at: NOW + 300,
        created_at: NOW,
        renewed_at: NOW,
    };
    let headers = session::set_cookies(&cfg, &browser, &core, &s).unwrap();
    assert!(headers.len() >= 3, "{} chunks", headers.len());
    let cookies = headers
        .iter()
        .map(|(_, v)| {
            let (n, v) = v.split(';').next().unwrap().split_once('=').unwrap();
            (n.to_string(), v.to_string())
        })
        .collect();
    let browser = session::Browser {
        cookies,
        secure: true,
    };
    let back = session::open(&cfg, &browser, &mut core, NOW + 1).unwrap();
    assert_eq!(*back, s);
    // Opened again from the worker's cache: the same session, still held to
    // its timeouts; any other bytes are opened (and refused) afresh.
    let again = session::open(&cfg, &browser, &mut core, NOW + 2).unwrap();
    assert!(Rc::ptr_eq(&back, &again), "served from the cache");
    let rolling = cfg.session.rolling_timeout;
    assert!(session::open(&cfg, &browser, &mut core, NOW + rolling).is_none());
    let mut tampered = browser.cookies.clone();
    let (_, v) = tampered.last_mut().unwrap();
    let flipped = if v.ends_with('A') { 'B' } else { 'A' };
    v.pop();
    v.push(flipped);
    let tampered = session::Browser {
        cookies: tampered,
        secure: true,
    };
    assert!(session::open(&cfg, &tampered, &mut core, NOW + 2).is_none());
}

#[test]
fn a_fourth_login_clears_the_oldest_not_the_newest() {
    let mut w = World::new(config(json!({})));
    let mut states = Vec::new();
    for i in 0..4 {
        let d = w.send(&w.request("/oidcroute/get", true), NOW + i);
        states.push(query(header(response(&d), "location"))["state"].clone());
    }
    assert_eq!(w.jar.keys().filter(|k| k.contains("_login_")).count(), 3);
    // The three latest logins can finish; the first cannot.
    w.nonce = String::new();
    let finish = |w: &mut World, state: &str| {
        let cb = format!("/oidcroute/get?code=c&state={state}");
        response(&w.send(&w.request(&cb, true), NOW + 5)).status
    };
    assert_eq!(finish(&mut w, &states[0]), 400);
    // (the nonce check fails these, but only after the state was found)
    let d = w.send(
        &w.request(&format!("/oidcroute/get?code=c&state={}", states[3]), true),
        NOW + 5,
    );
    assert_eq!(response(&d).status, 400);
    assert!(w.calls.iter().any(|c| {
        String::from_utf8_lossy(c.body.as_deref().unwrap_or_default())
            .contains("authorization_code")
    }));
}

#[test]
fn an_idp_error_on_callback_clears_that_login() {
    let mut w = World::new(config(json!({})));
    let start = w.send(&w.request("/oidcroute/get", true), NOW);
    let state = query(header(response(&start), "location"))["state"].clone();
    assert_eq!(w.jar.len(), 1);
    let d = w.send(
        &w.request(
            &format!("/oidcroute/get?error=access_denied&state={state}"),
            true,
        ),
        NOW,
    );
    assert_eq!(response(&d).status, 401);
    assert!(w.jar.is_empty(), "login cookie cleared: {:?}", w.jar);
}

#[test]
fn an_unreachable_idp_at_refresh_time_leaves_the_valid_token_in_use() {
    let mut w = World::new(config(json!({})));
    w.login("/oidcroute/get", NOW);
    let before = upstream_bearer(&w.send(&w.request("/oidcroute/get", false), NOW + 1));
    // Not a refusal: the IdP does not answer (503).
    let req = w.request("/oidcroute/get", false);
    let step = handle_request(&w.cfg, &req, NOW + 250, &mut w.core, &mut w.store, None);
    let Step::Call { key, .. } = step else {
        panic!("a refresh call: {step:?}")
    };
    let failed = handle_call_reply(
        &w.cfg,
        &key,
        &IdpReply {
            status: Some(503),
            body: vec![],
        },
        NOW + 250,
        &mut w.core,
        &mut w.store,
    );
    let Step::Done(d) = handle_request(
        &w.cfg,
        &req,
        NOW + 250,
        &mut w.core,
        &mut w.store,
        failed.as_ref(),
    ) else {
        panic!("decided");
    };
    assert_eq!(
        upstream_bearer(&d),
        before,
        "the still-valid token serves on"
    );
}

#[test]
fn short_lived_tokens_refresh_again_and_again() {
    let mut w = World::new(config(json!({})));
    w.token_life = 70;
    w.login("/oidcroute/get", NOW);
    let mut seen = vec![upstream_bearer(
        &w.send(&w.request("/oidcroute/get", false), NOW + 1),
    )];
    for t in [NOW + 15, NOW + 30, NOW + 45] {
        // Each token lives 70 s and is refreshed 60 s before expiry.
        seen.push(upstream_bearer(
            &w.send(&w.request("/oidcroute/get", false), t),
        ));
    }
    seen.dedup();
    assert_eq!(seen.len(), 4, "a new token at each refresh");
}
