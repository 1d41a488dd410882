//! Logout, as Kong does it: it always logs out. Our cookies are cleared in
//! the response itself, whatever the IdP's state; revoking the tokens
//! (`logout_revoke`, off by default) is a call no request waits for, made
//! from the worker's root context on its next tick; the IdP's end-session
//! redirect is added when the end-session endpoint is known. Which requests
//! are a logout: `logout_methods` (POST and DELETE by default, so that a
//! cross-site link cannot log anyone out) on `logout_path`, on a path
//! ending with `logout_uri_suffix`, or with `logout_query_arg` present.

use envoy_oidc::action::{Action, Decision};
use envoy_oidc::config::Config;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::world::Call;
use serde_json::{Value, json};

use crate::browser_kit::{
    BYE, Browser, SECRET, config, discovery, is_revocation, merged, query, refreshes,
};
use crate::{NOW, header, response};

const COGNITO: &str = "https://cognito-idp.us-west-1.amazonaws.com/us-west-1_pool";
const HOSTED_UI: &str = "https://demo.auth.us-west-1.amazoncognito.com";

/// Cognito's configuration and discovery: no `end_session_endpoint`, no
/// `revocation_endpoint`; authorize and token on the hosted UI.
fn cognito(extra: Value) -> (Value, Vec<u8>) {
    let c = json!({
        "issuer": COGNITO, "idp_cluster": "c", "leeway": 0,
        "client_id": "web", "client_secret": "web-secret",
        "redirect_uri": "https://gw.example.com/oidcroute/get", "session_secret": SECRET,
        "logout_path": "/logout", "post_logout_redirect_uri": "https://gw/bye",
    });
    let d = json!({"issuer": COGNITO, "jwks_uri": format!("{COGNITO}/.well-known/jwks.json"),
                   "authorization_endpoint": format!("{HOSTED_UI}/oauth2/authorize"),
                   "token_endpoint": format!("{HOSTED_UI}/oauth2/token")});
    (merged(c, extra), serde_json::to_vec(&d).unwrap())
}

/// What only the logout tests ask of the browser.
impl Browser {
    /// The same browser (its cookies) before another Envoy of the same
    /// configuration, one that has never fetched discovery.
    fn to_fresh_envoy(&self, cfg: Value, discovery: Vec<u8>) -> Browser {
        let mut b = Browser::on(cfg, discovery, 1);
        b.jar = self.jar.clone();
        b
    }

    fn revocations(&self) -> Vec<&Call> {
        self.calls()
            .into_iter()
            .filter(|c| is_revocation(&c.request))
            .collect()
    }

    /// What was revoked: each revocation's token type hint and token.
    fn revoked(&self) -> Vec<(String, String)> {
        self.revocations()
            .iter()
            .map(|c| {
                let f = c.form();
                (f["token_type_hint"].clone(), f["token"].clone())
            })
            .collect()
    }

    /// Logs out with `method` on `path`: the response, which must come at
    /// once, without waiting on the IdP.
    fn logout(&mut self, method: &str, path: &str, now: u64) -> Decision {
        let (d, at_once) = self.exchange(self.request(method, path, true), now);
        assert!(at_once, "logout waited on the IdP: {:?}", self.world.calls);
        assert!(
            matches!(d.action, Action::Respond(_)),
            "{method} {path} is a logout: {d:?}"
        );
        d
    }

    /// The session is still there and still serves.
    fn still_logged_in(&mut self, now: u64) -> bool {
        let d = self.get("/oidcroute/get", true, now);
        self.jar.contains_key("session") && matches!(d.action, Action::Continue { .. })
    }
}

fn location(d: &Decision) -> &str {
    header(response(d), "location")
}

/// The request was taken as a logout (not authenticated and passed on).
fn is_logout(d: &Decision) -> bool {
    matches!(d.action, Action::Respond(_)) && d.log.as_deref() == Some("logout")
}

// --- The IdP down, or discovery never fetched: cookies cleared at once.

#[test]
fn with_discovery_never_fetched_and_the_idp_down_logout_clears_the_cookies_at_once() {
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    b.jar.insert("theme".into(), "dark".into());
    // Another Envoy (or a worker that has served no one yet) whose IdP is
    // down: it cannot fetch discovery.
    let mut other = b.to_fresh_envoy(config(json!({"logout_revoke": true})), discovery());
    other.idp().down = true;
    let d = other.logout("POST", "/logout", NOW + 5);
    let r = response(&d);
    assert_eq!(r.status, 302);
    // No end-session endpoint known: straight to post_logout_redirect_uri.
    assert_eq!(location(&d), BYE);
    assert_eq!(
        other.jar.keys().collect::<Vec<_>>(),
        ["theme"],
        "all our cookies cleared, no other"
    );
    assert!(other.world.calls.is_empty(), "{:?}", other.world.calls);
    // Nothing to revoke at: no revocation endpoint known.
    other.world.tick(0);
    assert!(other.world.calls.is_empty(), "{:?}", other.world.calls);
}

#[test]
fn a_logout_with_many_made_up_cookies_of_ours_clears_a_bounded_number() {
    // Made-up cookies of ours, sent before the session (as a sibling
    // subdomain's, planted on a longer path, are): the session is still
    // cleared, and no more than its chunks and eight logins are answered.
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    let session = b.jar["session"].clone();
    let mut cookie: Vec<String> = (0..200)
        .flat_map(|i| {
            [
                format!("session_login_{i}=x"),
                format!("session.{:0>width$}=x", 1, width = i + 2),
                "session_login_0=x".to_string(),
            ]
        })
        .collect();
    cookie.push(format!("session={session}"));
    let req = RequestView::new(vec![
        (":method".into(), b"POST".to_vec()),
        (":path".into(), b"/logout".to_vec()),
        (":scheme".into(), b"https".to_vec()),
        ("cookie".into(), cookie.join("; ").into_bytes()),
    ]);
    let d = b.send(req, NOW + 5);
    let r = response(&d);
    assert_eq!(r.status, 302, "{d:?}");
    let cleared: Vec<&str> = r
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, v)| v.split('=').next())
        .collect();
    assert_eq!(cleared[0], "session", "the session first");
    let logins: Vec<String> = (0..8).map(|i| format!("session_login_{i}")).collect();
    assert_eq!(cleared[1..], logins, "eight logins, each once");
}

#[test]
fn with_no_redirect_configured_logout_still_answers_at_once() {
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    let cfg = config(json!({"post_logout_redirect_uri": null}));
    let mut other = b.to_fresh_envoy(cfg, discovery());
    other.idp().down = true;
    let d = other.logout("DELETE", "/logout", NOW + 5);
    assert_eq!(response(&d).status, 200);
    assert_eq!(response(&d).body, r#"{"message":"Logged out"}"#);
    assert!(other.jar.is_empty());
}

#[test]
fn a_configured_end_session_endpoint_serves_without_discovery() {
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    let cfg = config(json!({"end_session_endpoint": "https://login.example.com/bye-bye"}));
    let mut other = b.to_fresh_envoy(cfg, discovery());
    other.idp().down = true;
    let d = other.logout("POST", "/logout", NOW + 5);
    let to = location(&d);
    assert!(to.starts_with("https://login.example.com/bye-bye?"), "{to}");
    let q = query(to);
    assert_eq!(q["client_id"], "web");
    assert_eq!(q["post_logout_redirect_uri"], BYE);
    assert_eq!(q["id_token_hint"].split('.').count(), 3);
    assert!(other.jar.is_empty());
}

#[test]
fn another_workers_discovery_is_adopted_without_a_call() {
    let mut b = Browser::on(config(json!({})), discovery(), 2);
    b.login("/oidcroute/get", NOW);
    let calls = b.world.calls.len();
    b.idp().down = true;
    b.worker = 1;
    let d = b.logout("POST", "/logout", NOW + 5);
    assert!(
        location(&d).starts_with("https://login.example.com/logout?"),
        "{}",
        location(&d)
    );
    assert_eq!(b.world.calls.len(), calls, "no IdP call");
}

#[test]
fn with_the_idp_answering_503_logout_is_not_held_up_by_revocation() {
    let mut b = Browser::new(config(json!({"logout_revoke": true})));
    b.login("/oidcroute/get", NOW);
    b.idp().down = true;
    let d = b.logout("POST", "/logout", NOW + 5);
    assert!(location(&d).starts_with("https://login.example.com/logout?"));
    assert!(b.jar.is_empty());
    assert!(b.revocations().is_empty(), "not before the response");
    // Revocation goes out later, from the root context, and fails quietly.
    b.world.tick(0);
    let root = b.world.workers[0].host.root;
    let revocations = b.revocations();
    assert_eq!(revocations.len(), 2, "{revocations:?}");
    assert!(revocations.iter().all(|c| c.owner == root));
    b.world.settle();
    assert!(b.world.pending().is_empty());
    assert!(
        b.world
            .logs(0)
            .iter()
            .any(|(_, l)| l.contains("revocation")),
        "{:?}",
        b.world.logs(0)
    );
}

#[test]
fn a_replayed_session_cookie_cannot_make_a_revocation_call_per_logout() {
    // The IdP refuses the revocations (so none is remembered as done): a
    // client posting the same session cookie to the logout path again and
    // again gets no call per request, only one per token a minute.
    let mut b = Browser::new(config(json!({"logout_revoke": true})));
    b.login("/oidcroute/get", NOW);
    let jar = b.jar.clone();
    b.idp().down = true;
    for i in 0..5 {
        b.jar = jar.clone();
        b.logout("POST", "/logout", NOW + 5 + i);
        b.world.tick(0);
        b.world.settle();
    }
    assert_eq!(b.revocations().len(), 2, "each token asked for once");
    b.jar = jar;
    b.logout("POST", "/logout", NOW + 70);
    b.world.tick(0);
    b.world.settle();
    assert_eq!(b.revocations().len(), 4, "and again a minute later");
}

// --- Revocation: only with logout_revoke, from the root context.

#[test]
fn by_default_logout_revokes_nothing() {
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    let d = b.logout("POST", "/logout", NOW + 5);
    assert_eq!(response(&d).status, 302);
    let q = query(location(&d));
    assert_eq!(q["client_id"], "web");
    assert_eq!(q["post_logout_redirect_uri"], BYE);
    assert_eq!(q["id_token_hint"].split('.').count(), 3);
    assert!(b.jar.is_empty(), "all our cookies cleared: {:?}", b.jar);
    b.world.tick(0);
    b.world.settle();
    assert!(b.revocations().is_empty(), "{:?}", b.revocations());
    // Back to login.
    let d = b.visit("GET", "/oidcroute/get", NOW + 6);
    assert!(location(&d).starts_with("https://login.example.com/authorize?"));
}

#[test]
fn with_logout_revoke_both_tokens_are_revoked_later_from_the_root_context() {
    let mut b = Browser::new(config(json!({"logout_revoke": true})));
    b.login("/oidcroute/get", NOW);
    let (access, _, refresh) = b.idp().issued[0].clone();
    let d = b.logout("POST", "/logout", NOW + 5);
    assert_eq!(response(&d).status, 302);
    assert!(b.jar.is_empty());
    assert!(b.revocations().is_empty(), "the response does not wait");

    b.world.tick(0);
    let root = b.world.workers[0].host.root;
    let revocations: Vec<Call> = b.revocations().into_iter().cloned().collect();
    assert_eq!(revocations.len(), 2, "{revocations:?}");
    for c in &revocations {
        assert_eq!(c.owner, root, "made from the root context");
        assert_eq!(c.path(), "/revoke");
        assert_eq!(
            crate::header_of(&c.request, "authorization"),
            Some(format!("Basic {}", b64("web:web-secret")).as_str())
        );
    }
    let forms = b.revoked();
    assert!(
        forms.contains(&("access_token".into(), access)),
        "{forms:?}"
    );
    assert!(
        forms.contains(&("refresh_token".into(), refresh.clone())),
        "{forms:?}"
    );
    b.world.settle();
    assert!(b.world.pending().is_empty());

    // The same cookie replayed at logout: revoked already, not again.
    let mut again = Browser::new(config(json!({"logout_revoke": true})));
    again.login("/oidcroute/get", NOW);
    let cookies = again.jar.clone();
    again.logout("POST", "/logout", NOW + 5);
    again.world.tick(0);
    again.world.settle();
    let made = again.revocations().len();
    again.jar = cookies;
    again.logout("POST", "/logout", NOW + 6);
    again.world.tick(0);
    assert_eq!(again.revocations().len(), made);
}

#[test]
fn logout_revokes_and_ends_the_tokens_a_refresh_gave_though_the_cookie_is_older() {
    let mut b = Browser::new(config(json!({"logout_revoke": true})));
    b.idp().token_life = 20;
    b.login("/oidcroute/get", NOW);
    // The renewed cookie of the refresh never reached the browser.
    let before = b.jar.clone();
    b.get("/oidcroute/get", false, NOW + 15);
    let (access, _, refresh) = b.idp().issued[1].clone();
    b.jar = before.clone();
    b.logout("POST", "/logout", NOW + 20);
    b.world.tick(0);
    let forms = b.revoked();
    assert!(
        forms.contains(&("refresh_token".into(), refresh)),
        "{forms:?}"
    );
    assert!(
        forms.contains(&("access_token".into(), access)),
        "{forms:?}"
    );
    // Another copy of that cookie, once its token is due: no session, and
    // no refresh with the refresh token logout ended.
    b.jar = before;
    let d = b.get("/oidcroute/get", false, NOW + 31);
    assert!(!matches!(d.action, Action::Continue { .. }), "{d:?}");
    assert_eq!(refreshes(&b), 1);
}

#[test]
fn a_copy_of_the_cookie_kept_in_use_after_logout_is_no_session_once_due() {
    // A tab whose response renewed the cookie after the logout keeps using
    // it (so it never idles out) until its hour-long token is due.
    let mut b = Browser::new(config(json!({})));
    b.idp().token_life = 3000;
    b.login("/oidcroute/get", NOW);
    let copy = b.jar.clone();
    b.logout("POST", "/logout", NOW + 10);
    b.jar = copy;
    for t in [NOW + 600, NOW + 1200, NOW + 1800, NOW + 2400] {
        let d = b.get("/oidcroute/get", false, t);
        assert!(matches!(d.action, Action::Continue { .. }), "{t}: {d:?}");
    }
    let d = b.get("/oidcroute/get", false, NOW + 2950);
    assert!(!matches!(d.action, Action::Continue { .. }), "{d:?}");
    assert_eq!(refreshes(&b), 0, "no refresh after logout");
}

#[test]
fn logout_revoke_access_token_and_refresh_token_pick_what_is_revoked() {
    for (flags, want) in [
        (
            json!({"logout_revoke_access_token": false}),
            vec!["refresh_token"],
        ),
        (
            json!({"logout_revoke_refresh_token": false}),
            vec!["access_token"],
        ),
        (
            json!({"logout_revoke_access_token": false, "logout_revoke_refresh_token": false}),
            vec![],
        ),
    ] {
        let cfg = merged(config(json!({"logout_revoke": true})), flags.clone());
        let mut b = Browser::new(cfg);
        b.login("/oidcroute/get", NOW);
        b.logout("POST", "/logout", NOW + 5);
        b.world.tick(0);
        let hints: Vec<String> = b
            .revocations()
            .iter()
            .map(|c| c.form()["token_type_hint"].clone())
            .collect();
        assert_eq!(hints, want, "{flags}");
    }
}

// --- Which requests are a logout.

#[test]
fn get_is_not_a_logout_by_default() {
    let mut b = Browser::new(config(json!({})));
    b.login("/oidcroute/get", NOW);
    // A cross-site link or image: GET on the logout path.
    let d = b.visit("GET", "/logout", NOW + 5);
    assert!(!is_logout(&d), "{d:?}");
    assert!(
        matches!(d.action, Action::Continue { .. }),
        "authenticated and passed on like any request: {d:?}"
    );
    assert!(b.still_logged_in(NOW + 6), "{:?}", b.jar);
    // PUT is no logout either; POST and DELETE are.
    let d = b.visit("PUT", "/logout", NOW + 7);
    assert!(!is_logout(&d), "{d:?}");
    assert!(b.still_logged_in(NOW + 8));
    b.logout("DELETE", "/logout", NOW + 9);
    assert!(b.jar.is_empty());
    b.login("/oidcroute/get", NOW + 10);
    b.logout("POST", "/logout", NOW + 11);
    assert!(b.jar.is_empty());
}

#[test]
fn get_logs_out_when_listed_and_then_only_the_listed_methods_do() {
    let mut b = Browser::new(config(json!({"logout_methods": ["GET"]})));
    b.login("/oidcroute/get", NOW);
    let d = b.visit("POST", "/logout", NOW + 5);
    assert!(!is_logout(&d), "POST is not listed: {d:?}");
    assert!(b.still_logged_in(NOW + 6));
    let d = b.logout("GET", "/logout", NOW + 7);
    assert!(location(&d).starts_with("https://login.example.com/logout?"));
    assert!(b.jar.is_empty());
}

#[test]
fn logout_query_arg_logs_out_on_any_path() {
    let mut b = Browser::new(config(
        json!({"logout_path": null, "logout_query_arg": "logout"}),
    ));
    b.login("/oidcroute/get", NOW);
    for path in ["/oidcroute/get?x=logout", "/oidcroute/get?logout_now=1"] {
        let d = b.visit("POST", path, NOW + 1);
        assert!(!is_logout(&d), "{path}: {d:?}");
    }
    let d = b.visit("GET", "/oidcroute/get?logout", NOW + 2);
    assert!(!is_logout(&d), "GET is not a logout method: {d:?}");
    assert!(b.still_logged_in(NOW + 3));
    b.logout("POST", "/anything/at/all?a=1&logout", NOW + 4);
    assert!(b.jar.is_empty());
    b.login("/oidcroute/get", NOW + 5);
    b.logout("DELETE", "/oidcroute/get?logout=yes", NOW + 6);
    assert!(b.jar.is_empty());
}

#[test]
fn logout_uri_suffix_logs_out_where_the_path_ends_with_it() {
    let mut b = Browser::new(config(
        json!({"logout_path": null, "logout_uri_suffix": "/logout"}),
    ));
    b.login("/oidcroute/get", NOW);
    for path in ["/app/logoutx", "/app/mylogout", "/app?to=/logout"] {
        let d = b.visit("POST", path, NOW + 1);
        assert!(!is_logout(&d), "{path}: {d:?}");
    }
    let d = b.visit("GET", "/app/logout", NOW + 2);
    assert!(!is_logout(&d), "GET is not a logout method: {d:?}");
    assert!(b.still_logged_in(NOW + 3));
    b.logout("POST", "/app/logout?x=1", NOW + 4);
    assert!(b.jar.is_empty());
    b.login("/oidcroute/get", NOW + 5);
    b.logout("POST", "/logout", NOW + 6);
    assert!(b.jar.is_empty());
}

// --- Cognito: hosted-UI logout, and revocation at `revocation_endpoint`.

#[test]
fn cognito_logout_uses_the_hosted_ui_logout() {
    let (cfg, d) = cognito(json!({}));
    let mut b = Browser::on(cfg, d, 1);
    b.login("/oidcroute/get", NOW);
    let d = b.logout("POST", "/logout", NOW + 1);
    assert_eq!(
        location(&d),
        format!("{HOSTED_UI}/logout?client_id=web&logout_uri=https%3A%2F%2Fgw%2Fbye")
    );
}

#[test]
fn cognito_logout_at_a_configured_end_session_endpoint_speaks_cognito() {
    let (cfg, d) = cognito(json!({"end_session_endpoint": format!("{HOSTED_UI}/logout")}));
    let mut b = Browser::on(cfg.clone(), d.clone(), 1);
    b.login("/oidcroute/get", NOW);
    // Even on an Envoy that never fetched discovery.
    let mut other = b.to_fresh_envoy(cfg, d);
    other.idp().down = true;
    let d = other.logout("POST", "/logout", NOW + 1);
    assert_eq!(
        location(&d),
        format!("{HOSTED_UI}/logout?client_id=web&logout_uri=https%3A%2F%2Fgw%2Fbye")
    );
}

#[test]
fn revocation_endpoint_is_used_when_discovery_has_none() {
    let revoke = format!("{HOSTED_UI}/oauth2/revoke");
    let (cfg, d) = cognito(json!({"logout_revoke": true, "revocation_endpoint": revoke}));
    let mut b = Browser::on(cfg, d, 1);
    b.login("/oidcroute/get", NOW);
    let refresh = b.idp().issued[0].2.clone();
    b.logout("POST", "/logout", NOW + 1);
    b.world.tick(0);
    let root = b.world.workers[0].host.root;
    let calls = b.revocations();
    let rt: Vec<&&Call> = calls
        .iter()
        .filter(|c| c.form()["token_type_hint"] == "refresh_token")
        .collect();
    assert_eq!(rt.len(), 1, "{calls:?}");
    assert_eq!(rt[0].path(), "/oauth2/revoke");
    assert_eq!(
        crate::header_of(&rt[0].request, ":authority"),
        Some("demo.auth.us-west-1.amazoncognito.com")
    );
    assert_eq!(rt[0].owner, root);
    assert_eq!(rt[0].form()["token"], refresh);

    // Without it (and with discovery silent) there is nowhere to revoke.
    let (cfg, d) = cognito(json!({"logout_revoke": true}));
    let mut b = Browser::on(cfg, d, 1);
    b.login("/oidcroute/get", NOW);
    b.logout("POST", "/logout", NOW + 1);
    b.world.tick(0);
    assert!(b.revocations().is_empty());
}

#[test]
fn a_revocation_that_cannot_be_sent_is_logged_on_the_next_tick() {
    // A revocation endpoint on a host no cluster reaches: the logout goes
    // on, and the operator is told at the worker's next tick, not at its
    // next IdP reply (which may not come).
    let revoke = "https://elsewhere.example.org/revoke";
    let (cfg, d) = cognito(json!({"logout_revoke": true, "revocation_endpoint": revoke,
        "idp_cluster": null, "idp_clusters": {
            "cognito-idp.us-west-1.amazonaws.com": "c",
            "demo.auth.us-west-1.amazoncognito.com": "c"}}));
    let mut b = Browser::on(cfg, d, 1);
    b.login("/oidcroute/get", NOW);
    b.logout("POST", "/logout", NOW + 1);
    b.world.tick(0);
    assert!(b.revocations().is_empty());
    let warned = b
        .world
        .logs(0)
        .iter()
        .any(|(l, m)| *l == envoy_oidc::engine::Level::Warn && m.contains("is not revoked"));
    assert!(warned, "{:?}", b.world.logs(0));
}

#[test]
fn revocation_endpoint_overrides_discovery_and_serves_without_it() {
    let cfg = config(
        json!({"logout_revoke": true, "logout_revoke_access_token": false,
                            "revocation_endpoint": "https://login.example.com/custom/revoke"}),
    );
    let mut b = Browser::new(cfg.clone());
    b.login("/oidcroute/get", NOW);
    let jar = b.jar.clone();
    b.logout("POST", "/logout", NOW + 1);
    b.world.tick(0);
    let paths: Vec<&str> = b.revocations().iter().map(|c| c.path()).collect();
    assert_eq!(paths, ["/custom/revoke"]);

    // An Envoy that never fetched discovery, its IdP down: still revoked
    // (best effort: the call fails).
    let mut other = Browser::on(cfg, discovery(), 1);
    other.jar = jar;
    other.idp().down = true;
    other.logout("POST", "/logout", NOW + 2);
    other.world.tick(0);
    let paths: Vec<&str> = other.revocations().iter().map(|c| c.path()).collect();
    assert_eq!(paths, ["/custom/revoke"]);
    other.world.settle();
    assert!(other.world.pending().is_empty());
}

// --- The keys at load.

fn refused(extra: Value) -> envoy_oidc::config::ConfigError {
    Config::parse(&serde_json::to_vec(&config(extra)).unwrap()).expect_err("refused")
}

#[test]
fn logout_keys_are_checked_at_load() {
    // (The defaults are the tests above: POST and DELETE, no revocation.)
    let accepted = json!({"logout_methods": ["GET", "POST", "DELETE"], "logout_query_arg": "logout",
                          "logout_uri_suffix": "/logout", "logout_revoke": true,
                          "logout_revoke_access_token": false, "logout_revoke_refresh_token": true,
                          "revocation_endpoint": "https://login.example.com/revoke"});
    assert!(Config::parse(&serde_json::to_vec(&config(accepted)).unwrap()).is_ok());
    for (extra, field) in [
        (json!({"logout_methods": []}), "logout_methods"),
        (json!({"logout_methods": ["PUT"]}), "logout_methods"),
        (json!({"logout_methods": ["get"]}), "logout_methods"),
        (json!({"logout_methods": "POST"}), "logout_methods"),
        (json!({"logout_query_arg": ""}), "logout_query_arg"),
        (json!({"logout_query_arg": "a&b"}), "logout_query_arg"),
        (json!({"logout_uri_suffix": ""}), "logout_uri_suffix"),
        (json!({"logout_uri_suffix": "/"}), "logout_uri_suffix"),
        (json!({"logout_uri_suffix": "/x?y"}), "logout_uri_suffix"),
        (json!({"logout_revoke": "yes"}), "logout_revoke"),
        (
            json!({"logout_revoke_access_token": 1}),
            "logout_revoke_access_token",
        ),
        (
            json!({"logout_revoke_refresh_token": "no"}),
            "logout_revoke_refresh_token",
        ),
        (
            json!({"revocation_endpoint": "nope"}),
            "revocation_endpoint",
        ),
    ] {
        let e = refused(extra.clone());
        assert_eq!(e.field, field, "{extra} → {e}");
        assert!(e.to_string().contains(&format!("`{field}`")), "{e}");
    }
    // A key Kong has and the filter cannot honour yet is refused, not
    // silently ignored.
    let e = refused(json!({"logout_post_arg": "logout"}));
    assert_eq!(e.field, "logout_post_arg");
    assert!(e.reason.contains("not supported"), "{e}");
    assert!(e.reason.contains("body"), "says why: {e}");
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}
