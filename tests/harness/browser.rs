//! Browser login through the compiled filter: the redirect to the IdP, the
//! callback (code exchange, ID token checks), riding the session cookie,
//! its refresh (the renewed cookie on the response), logout, and hostile
//! cookies and callbacks.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use wasm_test_harness::{Harness, HttpCall, Outcome, Reply, Request};

use crate::common::cookies::{self, SetCookie};
use crate::common::idp::{
    AUTH_HOST, AUTHORIZE_PATH, END_SESSION_PATH, REVOKE_PATH, TOKEN_CLUSTER, TOKEN_PATH,
    assert_post, basic, form, serve_discovery, serve_jwks, split_discovery,
};
use crate::common::tokens::{claims, rs256, with};
use crate::common::*;

const REDIRECT_URI: &str = "https://gw.example.com/oidcroute/get";
const AFTER_LOGOUT: &str = "https://gw.example.com/bye";
const SESSION_SECRET: &str = "a-session-secret-of-32-bytes-or-more";

fn web_config() -> Value {
    let mut c = config();
    let extra = json!({
        "idp_clusters": { AUTH_HOST: TOKEN_CLUSTER },
        "client_id": "web",
        "client_secret": "web-secret",
        "redirect_uri": REDIRECT_URI,
        "scopes": ["openid", "kongresource/scope1"],
        "session_secret": SESSION_SECRET,
        "logout_path": "/oidcroute/logout",
        "post_logout_redirect_uri": AFTER_LOGOUT,
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c
}

fn web_harness() -> Harness {
    harness_on(&web_config(), &[CLUSTER, TOKEN_CLUSTER], 1)
}

/// A request as a browser navigating to `path` sends it.
fn browse(h: &Harness, path: &str, cookie: Option<&str>) -> Request {
    navigate(h, path, cookie, true)
}

/// The same request from a script (no `Accept: text/html`).
fn api(h: &Harness, path: &str, cookie: Option<&str>) -> Request {
    navigate(h, path, cookie, false)
}

fn navigate(h: &Harness, path: &str, cookie: Option<&str>, html: bool) -> Request {
    navigate_on(h, 0, path, cookie, html)
}

fn navigate_on(
    h: &Harness,
    worker: usize,
    path: &str,
    cookie: Option<&str>,
    html: bool,
) -> Request {
    let mut headers = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", "gw.example.com"),
        (":scheme", "https"),
    ];
    if html {
        headers.push(("accept", "text/html,application/xhtml+xml"));
    }
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    h.request_on(worker, &headers)
}

/// A login in progress, as the redirect to the IdP set it up.
struct Login {
    location: String,
    params: std::collections::BTreeMap<String, String>,
    state: String,
    nonce: String,
    cookie: SetCookie,
}

impl Login {
    /// The `Cookie` header the browser sends back with the callback.
    fn cookie_header(&self) -> String {
        format!("{}={}", self.cookie.name, self.cookie.value)
    }
}

fn set_cookies(reply: &Reply) -> Vec<SetCookie> {
    cookies::parse_all(&reply.headers().get_all("set-cookie"))
}

/// Navigates to `path` without a session and reads the redirect.
fn start_login(h: &Harness, path: &str) -> Login {
    let req = browse(h, path, None);
    if let Outcome::Paused = req.outcome() {
        serve_discovery(h, &split_discovery());
    }
    let reply = req.expect_local_response(302);
    let location = reply.header("location").unwrap_or_default();
    let (endpoint, query) = location.split_once('?').unwrap_or((&location, ""));
    assert_eq!(endpoint, format!("https://{AUTH_HOST}{AUTHORIZE_PATH}"));
    let params = form(query);
    let cookies = set_cookies(&reply);
    let logins: Vec<&SetCookie> = cookies
        .iter()
        .filter(|c| c.name.starts_with("session_login_"))
        .collect();
    assert_eq!(logins.len(), 1, "one login cookie: {cookies:?}");
    Login {
        state: params["state"].clone(),
        nonce: params["nonce"].clone(),
        cookie: logins[0].clone(),
        location,
        params,
    }
}

fn id_token(h: &Harness, nonce: &str) -> String {
    let now = h.unix_now();
    rs256(&json!({
        "iss": ISSUER, "sub": "alice", "aud": "web", "azp": "web",
        "iat": now, "exp": now + 300, "nonce": nonce,
    }))
}

fn access_token(h: &Harness, jti: &str) -> String {
    rs256(&with(
        claims(h),
        &json!({"sub": "alice", "client_id": "web", "jti": jti}),
    ))
}

/// What the token endpoint answers a code or refresh grant.
fn tokens(access: &str, id: &str, refresh: &str) -> Value {
    json!({
        "access_token": access, "id_token": id, "refresh_token": refresh,
        "token_type": "Bearer", "expires_in": 300,
    })
}

/// A logged-in browser: the session cookie and the tokens in it.
struct Session {
    cookie: SetCookie,
    access: String,
    id: String,
}

impl Session {
    fn cookie_header(&self) -> String {
        format!("session={}", self.cookie.value)
    }
}

/// The code exchange a callback asked for: made from the root context on
/// the next tick, so that a browser cancelling the callback (a reload)
/// cannot lose its reply and have the spent code exchanged again.
fn code_exchange(h: &Harness) -> HttpCall {
    h.advance(Duration::from_millis(1));
    h.tick();
    let call = h.expect_http_call(TOKEN_CLUSTER);
    assert!(call.from_root());
    call
}

/// The callback for `login` (with `code`), its exchange answered with
/// fresh tokens (and JWKS if still needed); returns the 302 reply.
fn finish_login(h: &Harness, login: &Login) -> (Reply, Session) {
    let path = format!(
        "/oidcroute/get?code=the-code&state={}",
        form_urlencoded::byte_serialize(login.state.as_bytes()).collect::<String>()
    );
    let req = browse(h, &path, Some(&login.cookie_header()));
    req.expect_paused();
    let call = code_exchange(h);
    let params = assert_post(&call, TOKEN_PATH);
    assert_eq!(
        call.header("authorization"),
        Some(basic("web", "web-secret"))
    );
    assert_eq!(params["grant_type"], "authorization_code");
    assert_eq!(params["code"], "the-code");
    assert_eq!(params["redirect_uri"], REDIRECT_URI);
    let verifier = &params["code_verifier"];
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    assert_eq!(challenge, login.params["code_challenge"], "PKCE S256");
    let (access, id) = (access_token(h, "login"), id_token(h, &login.nonce));
    call.respond_json(200, &tokens(&access, &id, "rt-1"));
    if let Outcome::Paused = req.outcome() {
        serve_jwks(h);
    }
    let reply = req.expect_local_response(302);
    let cookies = set_cookies(&reply);
    let cookie = cookies::named(&cookies, "session").clone();
    (reply, Session { cookie, access, id })
}

fn logged_in(h: &Harness) -> Session {
    let login = start_login(h, "/oidcroute/get");
    finish_login(h, &login).1
}

#[test]
fn browser_without_session_is_redirected_to_the_idp_with_a_login_cookie() {
    let h = web_harness();
    let login = start_login(&h, "/oidcroute/get?x=1");
    let p = &login.params;
    assert_eq!(p["response_type"], "code");
    assert_eq!(p["client_id"], "web");
    assert_eq!(p["redirect_uri"], REDIRECT_URI);
    assert_eq!(p["scope"], "openid kongresource/scope1");
    assert_eq!(p["code_challenge_method"], "S256");
    assert_eq!(p["code_challenge"].len(), 43, "base64url SHA-256");
    assert!(
        login.state.len() >= 22 && login.nonce.len() >= 22,
        "{}",
        login.location
    );
    assert_ne!(login.state, login.nonce);

    let hash: String = Sha256::digest(login.state.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect();
    let c = &login.cookie;
    assert_eq!(c.name, format!("session_login_{hash}"));
    assert!(!c.value.is_empty());
    assert!(
        !c.value.contains(&login.state),
        "the login cookie is sealed"
    );
    for attribute in [
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Max-Age=600",
    ] {
        assert!(c.has(attribute), "{attribute} missing from {c:?}");
    }

    // A second tab gets its own login.
    let other = start_login(&h, "/oidcroute/other");
    assert_ne!(other.state, login.state);
    assert_ne!(other.cookie.name, login.cookie.name);
}

#[test]
fn api_client_without_credentials_gets_401_not_a_redirect() {
    let h = web_harness();
    let req = api(&h, "/oidcroute/get", None);
    req.expect_no_http_call();
    req.expect_local_response(401)
        .assert_header("www-authenticate", &format!("Bearer realm=\"{REALM}\""))
        .assert_body_json(&json!({"message": "Unauthorized"}));
}

#[test]
fn callback_exchanges_the_code_and_sets_the_session_cookie() {
    let h = web_harness();
    let login = start_login(&h, "/oidcroute/get?x=1");
    let (reply, session) = finish_login(&h, &login);
    reply.assert_header("location", "/oidcroute/get?x=1");
    let cookies = set_cookies(&reply);
    let c = &session.cookie;
    for attribute in [
        "Path=/",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
        "Max-Age=86400",
    ] {
        assert!(c.has(attribute), "{attribute} missing from {c:?}");
    }
    assert!(!c.value.contains(&session.access), "the session is sealed");
    assert!(
        cookies::named(&cookies, &login.cookie.name).clears(),
        "the login cookie is cleared: {cookies:?}"
    );
    h.assert_not_logged("the-code");
    h.assert_not_logged("rt-1");
}

#[test]
fn riding_the_session_forwards_the_access_token_and_no_cookie_of_ours() {
    let h = web_harness();
    let session = logged_in(&h);

    let req = browse(
        &h,
        "/oidcroute/get",
        Some(&format!("theme=dark; {}", session.cookie_header())),
    );
    req.expect_no_http_call();
    req.expect_continue()
        .assert_header("authorization", &format!("Bearer {}", session.access))
        .assert_header("cookie", "theme=dark");

    let api_req = api(&h, "/oidcroute/get", Some(&session.cookie_header()));
    api_req
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {}", session.access))
        .assert_no_header("cookie");
    let (_, response) = api_req.respond(&[(":status", "200")], false);
    assert!(
        response.get_all("set-cookie").is_empty(),
        "nothing to renew yet: {:?}",
        response.to_pairs()
    );
    h.expect_no_http_call();
}

#[test]
fn session_is_refreshed_before_expiry_and_the_renewed_cookie_is_set_on_the_response() {
    let h = web_harness();
    let session = logged_in(&h);

    // Access token valid for 300 s: refreshed in its last minute.
    h.advance(Duration::from_secs(239));
    let early = api(&h, "/oidcroute/get", Some(&session.cookie_header()));
    early.expect_no_http_call();
    early.expect_continue();

    h.advance(Duration::from_secs(2));
    let req = api(&h, "/oidcroute/get", Some(&session.cookie_header()));
    req.expect_paused();
    // A refresh goes out from the root context on the next tick, so that
    // its reply cannot be lost with the request.
    h.advance(Duration::from_millis(1));
    h.tick();
    let call = h.expect_http_call(TOKEN_CLUSTER);
    assert!(call.from_root());
    let params = assert_post(&call, TOKEN_PATH);
    assert_eq!(params["grant_type"], "refresh_token");
    assert_eq!(params["refresh_token"], "rt-1");
    assert_eq!(
        call.header("authorization"),
        Some(basic("web", "web-secret"))
    );
    let access = access_token(&h, "refreshed");
    call.respond_json(200, &tokens(&access, &id_token(&h, ""), "rt-2"));

    req.expect_continue()
        .assert_header("authorization", &format!("Bearer {access}"));
    let (_, response) = req.respond(&[(":status", "200"), ("content-type", "text/plain")], false);
    let renewed = cookies::parse_all(&response.get_all("set-cookie"));
    let cookie = cookies::named(&renewed, "session");
    assert_ne!(cookie.value, session.cookie.value);
    assert!(cookie.has("HttpOnly") && cookie.has("Secure"), "{cookie:?}");

    // The renewed cookie carries the new tokens: no further refresh.
    let next = api(
        &h,
        "/oidcroute/get",
        Some(&format!("session={}", cookie.value)),
    );
    next.expect_no_http_call();
    next.expect_continue()
        .assert_header("authorization", &format!("Bearer {access}"));

    // The old cookie, still held by a parallel request, reads the shared
    // outcome instead of replaying the old refresh token.
    let parallel = api(&h, "/oidcroute/get", Some(&session.cookie_header()));
    parallel.expect_no_http_call();
    parallel
        .expect_continue()
        .assert_header("authorization", &format!("Bearer {access}"));
}

#[test]
fn an_idle_session_ends_and_one_in_use_is_kept_with_the_clock() {
    let mut cfg = web_config();
    cfg["session_idling_timeout"] = json!(100);
    let h = harness_on(&cfg, &[CLUSTER, TOKEN_CLUSTER], 1);
    let session = logged_in(&h);

    // In use after 30 s: noted (a quarter of the idling timeout passed),
    // so the cookie the response sets is good for 100 s from now.
    h.advance(Duration::from_secs(30));
    let req = api(&h, "/oidcroute/get", Some(&session.cookie_header()));
    req.expect_continue();
    let (_, response) = req.respond(&[(":status", "200")], false);
    let seen = cookies::parse_all(&response.get_all("set-cookie"));
    let seen = format!("session={}", cookies::named(&seen, "session").value);

    // 120 s after login, 90 s after it was last seen: alive on the new
    // cookie, over on the old one.
    h.advance(Duration::from_secs(90));
    let req = api(&h, "/oidcroute/get", Some(&seen));
    req.expect_continue();
    let (_, response) = req.respond(&[(":status", "200")], false);
    let latest = cookies::parse_all(&response.get_all("set-cookie"));
    let latest = format!("session={}", cookies::named(&latest, "session").value);
    api(&h, "/oidcroute/get", Some(&session.cookie_header())).expect_local_response(401);

    // Idle for 101 s since then: over, whichever cookie.
    h.advance(Duration::from_secs(101));
    api(&h, "/oidcroute/get", Some(&latest)).expect_local_response(401);
}

#[test]
fn one_refresh_per_session_across_workers_and_the_waiting_worker_resumes_on_tick() {
    let h = harness_on(&web_config(), &[CLUSTER, TOKEN_CLUSTER], 2);
    let session = logged_in(&h);
    h.advance(Duration::from_secs(241));
    let cookie = session.cookie_header();
    let on_0 = navigate_on(&h, 0, "/oidcroute/get", Some(&cookie), false);
    on_0.expect_paused();
    // A refresh goes out from the root context on the next tick, so that
    // its reply cannot be lost with the request.
    h.advance(Duration::from_millis(1));
    h.tick();
    let refresh = h.expect_http_call(TOKEN_CLUSTER);
    assert!(refresh.from_root());
    let on_1 = navigate_on(&h, 1, "/oidcroute/get", Some(&cookie), false);
    on_1.expect_paused();
    // Worker 1 is cold but reads discovery and JWKS from shared data, and
    // finds the session's refresh lease taken: it waits, calling nothing.
    on_1.expect_no_http_call();
    assert_eq!(h.pending_calls().len(), 1, "one refresh for the session");

    let access = access_token(&h, "refreshed");
    refresh.respond_json(200, &tokens(&access, &id_token(&h, ""), "rt-2"));
    on_0.expect_continue()
        .assert_header("authorization", &format!("Bearer {access}"));
    on_1.expect_paused();
    h.advance(Duration::from_millis(20));
    h.tick();
    on_1.expect_continue()
        .assert_header("authorization", &format!("Bearer {access}"));
    let (_, response) = on_1.respond(&[(":status", "200")], false);
    let renewed = cookies::parse_all(&response.get_all("set-cookie"));
    assert_ne!(
        cookies::named(&renewed, "session").value,
        session.cookie.value
    );
    h.expect_no_http_call();
}

#[test]
fn tampered_session_cookie_counts_as_no_session() {
    let h = web_harness();
    let session = logged_in(&h);
    let mut value = session.cookie.value.clone().into_bytes();
    let middle = value.len() / 2;
    value[middle] = if value[middle] == b'A' { b'B' } else { b'A' };
    let tampered = format!("session={}", String::from_utf8_lossy(&value));

    let req = browse(&h, "/oidcroute/get", Some(&tampered));
    let reply = req.expect_local_response(302);
    assert!(
        reply
            .header("location")
            .is_some_and(|l| l.starts_with(&format!("https://{AUTH_HOST}{AUTHORIZE_PATH}?"))),
        "a browser logs in again"
    );

    api(&h, "/oidcroute/get", Some(&tampered))
        .expect_local_response(401)
        .assert_header("www-authenticate", &format!("Bearer realm=\"{REALM}\""));
    h.expect_no_http_call();
}

#[test]
fn callback_with_a_state_that_does_not_match_the_login_is_400() {
    let h = web_harness();
    let login = start_login(&h, "/oidcroute/get");
    for query in [
        "code=the-code&state=another-state".to_owned(),
        format!("code=the-code&state={}x", login.state),
        // RFC 9207: the right state from the wrong issuer.
        format!(
            "code=the-code&state={}&iss=https%3A%2F%2Fevil.example.com",
            login.state
        ),
    ] {
        let req = browse(
            &h,
            &format!("/oidcroute/get?{query}"),
            Some(&login.cookie_header()),
        );
        req.expect_no_http_call();
        req.expect_local_response(400)
            .assert_body_json(&json!({"message": "Bad Request"}));
    }
    // Without the login cookie the right state is refused too.
    let req = browse(
        &h,
        &format!("/oidcroute/get?code=the-code&state={}", login.state),
        None,
    );
    req.expect_local_response(400);
    h.expect_no_http_call();
}

#[test]
fn callback_whose_id_token_has_another_nonce_is_400() {
    let h = web_harness();
    let login = start_login(&h, "/oidcroute/get");
    let req = browse(
        &h,
        &format!("/oidcroute/get?code=c&state={}", login.state),
        Some(&login.cookie_header()),
    );
    code_exchange(&h).respond_json(
        200,
        &tokens(&access_token(&h, "a"), &id_token(&h, "not-the-nonce"), "rt"),
    );
    serve_jwks(&h);
    req.expect_local_response(400);
}

#[test]
fn logout_clears_cookies_at_once_then_revokes_from_the_root_context() {
    let mut cfg = web_config();
    if let Some(c) = cfg.as_object_mut() {
        c.insert("logout_revoke".into(), json!(true));
    }
    let h = harness_on(&cfg, &[CLUSTER, TOKEN_CLUSTER], 1);
    let session = logged_in(&h);
    let cookie = format!("{}; theme=dark", session.cookie_header());
    let logout = |method: &str| {
        h.request(&[
            (":method", method),
            (":path", "/oidcroute/logout"),
            (":authority", "gw.example.com"),
            (":scheme", "https"),
            ("accept", "text/html,application/xhtml+xml"),
            ("cookie", &cookie),
        ])
    };
    // A GET (a link, an image from another site) is no logout: the session
    // rides on to the upstream.
    let get = logout("GET").expect_continue();
    assert_eq!(
        get.headers().get("authorization"),
        Some(format!("Bearer {}", session.access))
    );
    h.expect_no_http_call();

    // A POST is answered at once, without waiting on the IdP.
    let reply = logout("POST").expect_local_response(302);
    let location = reply.header("location").unwrap_or_default();
    let (endpoint, query) = location.split_once('?').unwrap_or_default();
    assert_eq!(endpoint, format!("https://{AUTH_HOST}{END_SESSION_PATH}"));
    let q = form(query);
    assert_eq!(q["client_id"], "web");
    assert_eq!(q["id_token_hint"], session.id);
    assert_eq!(q["post_logout_redirect_uri"], AFTER_LOGOUT);
    let cookies = set_cookies(&reply);
    assert!(cookies::named(&cookies, "session").clears(), "{cookies:?}");
    assert!(
        cookies.iter().all(|c| c.name != "theme"),
        "foreign cookies are left alone"
    );
    h.expect_no_http_call();

    // Both tokens are revoked from the root context on the next tick.
    h.advance(Duration::from_millis(1));
    h.tick();
    let mut revoked = Vec::new();
    for _ in 0..2 {
        let call = h.expect_http_call(TOKEN_CLUSTER);
        assert!(call.from_root());
        let params = assert_post(&call, REVOKE_PATH);
        assert_eq!(
            call.header("authorization"),
            Some(basic("web", "web-secret"))
        );
        revoked.push((params["token_type_hint"].clone(), params["token"].clone()));
        call.respond(200, &[], "");
    }
    revoked.sort();
    assert_eq!(
        revoked,
        [
            ("access_token".to_string(), session.access.clone()),
            ("refresh_token".to_string(), "rt-1".to_string())
        ]
    );
    h.expect_no_http_call();
}

/// The reply the filter gave `req`, which must not have gone upstream nor
/// trapped the VM.
fn refused_status(h: &Harness, req: &Request, what: &str) -> u32 {
    assert!(
        h.trap(0).is_none(),
        "{what} trapped the VM: {:?}",
        h.trap(0)
    );
    match req.outcome() {
        Outcome::LocalReply(r) => r.status,
        other => panic!("{what}: expected a local reply, the request is {other:?}"),
    }
}

#[test]
fn hostile_cookies_basic_credentials_and_callbacks_never_trap() {
    let h = web_harness();
    let session = logged_in(&h);
    let login = start_login(&h, "/oidcroute/get");
    let valid = session.cookie.value.clone();
    let long = "A".repeat(20_000);
    let many: String = (0..500).map(|i| format!("c{i}=v{i}; ")).collect();

    let cookies: Vec<String> = vec![
        String::new(),
        ";;;;".into(),
        "=".into(),
        "session".into(),
        "session=".into(),
        "session=\"\"".into(),
        "session=~".into(),
        "session=0~".into(),
        "session=2~abc".into(),
        "session=8~a; session.1=b".into(),
        "session=99~x".into(),
        "session=-1~x".into(),
        "session=18446744073709551616~x".into(),
        "session.1=orphan-chunk".into(),
        format!("session={long}"),
        format!("session=3~{long}; session.1={long}; session.2={long}"),
        format!("session={}", &valid[..valid.len() / 2]),
        format!("session={valid}x"),
        format!("session=x{valid}"),
        format!("session={}", valid.to_uppercase()),
        format!("session={}", valid.replace(['-', '_'], "+")),
        format!("session=garbage; session={}", "%".repeat(100)),
        format!("{}=forged", login.cookie.name),
        format!("session_login_={}", login.cookie.value),
        format!("session={}", login.cookie.value),
        many.clone(),
        "session=\u{00e9}\u{1F600}".into(),
    ];
    for (i, cookie) in cookies.iter().enumerate() {
        let what = format!("cookie #{i} {:?}", &cookie[..cookie.len().min(60)]);
        let status = refused_status(&h, &browse(&h, "/oidcroute/get", Some(cookie)), &what);
        assert!(matches!(status, 302 | 401), "{what}: browser got {status}");
        let status = refused_status(&h, &api(&h, "/oidcroute/get", Some(cookie)), &what);
        assert_eq!(status, 401, "{what}: API client");
    }
    // Among many foreign cookies, the valid session still rides.
    for good in [format!("session={valid}"), format!("{many}session={valid}")] {
        api(&h, "/oidcroute/get", Some(&good)).expect_continue();
    }

    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let raw: Vec<Vec<u8>> = vec![
        b"Basic \xff\xfe".to_vec(),
        format!("Basic {}", b64(b"\xff\xfe:\x80")).into_bytes(),
        format!("Basic {}", b64(&[0; 64])).into_bytes(),
        format!("Basic {}", "A".repeat(100_000)).into_bytes(),
        format!("Basic {}", b64("é:ü\u{0}".as_bytes())).into_bytes(),
        b"Basic =".to_vec(),
        b"Basic ====".to_vec(),
        b"basic\tY2xpZW50OnNlY3JldA==".to_vec(),
        b"Basic Y2xp ZW50".to_vec(),
        b"\x00Basic".to_vec(),
    ];
    for (i, value) in raw.iter().enumerate() {
        let req = h.request_bytes(&[
            (":method", b"GET"),
            (":path", b"/oidcroute/get"),
            (":authority", b"gw.example.com"),
            ("authorization", value),
        ]);
        let status = refused_status(&h, &req, &format!("authorization #{i}"));
        assert_eq!(status, 401, "authorization #{i}");
    }

    let state = &login.state;
    let queries: Vec<String> = vec![
        "code=&state=".into(),
        "state=&code=x".into(),
        "state=x&code=".into(),
        "state=%ff%fe&code=1".into(),
        "state=%00&code=%0d%0a".into(),
        format!("state={}&code=c", "s".repeat(50_000)),
        "code=a&state=a&state=b".into(),
        "error=access_denied&state=x".into(),
        format!("error=access_denied&state={state}&iss=nope"),
        "iss=https%3A%2F%2Fidp.example.com%2Fpool&state=x&code=y".into(),
        "&&&=&state==&code==".into(),
        "state=x&code=y#fragment".into(),
        "state&code".into(),
        "%&state=%&code=%".into(),
        format!("state={state}&code=c&code=d&iss=%E2%82"),
    ];
    for (i, query) in queries.iter().enumerate() {
        let what = format!("callback #{i} ?{}", &query[..query.len().min(60)]);
        for cookie in [None, Some(login.cookie_header())] {
            let req = browse(&h, &format!("/oidcroute/get?{query}"), cookie.as_deref());
            // A well-formed callback for the pending login may reach the IdP.
            if let Some(call) = req.http_calls().into_iter().next() {
                call.respond_json(400, &json!({"error": "invalid_grant"}));
            }
            let status = refused_status(&h, &req, &what);
            assert!(matches!(status, 302 | 400 | 401), "{what}: got {status}");
        }
    }
    let req = h.request_bytes(&[
        (":method", b"GET"),
        (":path", b"/oidcroute/get?state=\xff&code=\xfe"),
        (":authority", b"gw.example.com"),
        ("accept", b"text/html"),
        ("cookie", b"session=\xff\xfe; session_login_x=\x80"),
    ]);
    refused_status(&h, &req, "non-UTF-8 path and cookie");
    h.expect_no_http_call();
    assert!(h.trap(0).is_none());
}
