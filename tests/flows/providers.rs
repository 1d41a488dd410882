//! Providers as they really are: access tokens that are not ours to verify
//! (Google's opaque ones, Entra ID's for Microsoft Graph), the scopes a
//! token endpoint grants, and token endpoints that refuse with 403 or
//! throttle with 429.

use envoy_oidc::action::{Action, Decision, IdpReply};
use serde_json::{Value, json};

use crate::browser_kit::{self, Access, Browser, merged};
use crate::{NOW, header, response};

fn config(extra: Value) -> Value {
    let base = json!({"scopes": ["openid", "email"],
                      "upstream_headers_claims": ["email"],
                      "upstream_headers_names": ["x-email"]});
    browser_kit::config(merged(base, extra))
}

/// The headers a request went upstream with; panics if it did not.
fn upstream(d: &Decision) -> Vec<(String, String)> {
    match &d.action {
        Action::Continue { set, .. } => set.clone(),
        other => panic!("expected continue, got {other:?}"),
    }
}

fn upstream_header(d: &Decision, name: &str) -> Option<String> {
    upstream(d)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

fn shaped(access: Access, extra: Value) -> Browser {
    let w = Browser::new(config(extra));
    w.idp().access = access;
    w.idp().id_claims = json!({"email": "alice@example.com", "groups": ["staff"]});
    w
}

#[test]
fn an_access_token_not_ours_rides_on_the_verified_id_token() {
    for access in [Access::Opaque, Access::OtherApi] {
        let mut w = shaped(access, json!({"groups_required": ["staff"]}));
        w.login("/app", NOW);
        let issued = w.idp().issued[0].0.clone();
        let d = w.get("/app", false, NOW + 10);
        // Forwarded untouched; who it is comes from the ID token.
        assert_eq!(
            upstream_header(&d, "authorization"),
            Some(format!("Bearer {issued}"))
        );
        assert_eq!(
            upstream_header(&d, "x-email").as_deref(),
            Some("alice@example.com")
        );
        // No userinfo or introspection call: nothing but the exchange.
        assert_eq!(w.calls().len(), 1);
    }
}

#[test]
fn the_policy_applies_to_the_id_token_of_such_a_session() {
    let mut w = shaped(Access::Opaque, json!({"groups_required": ["admins"]}));
    let cb = w.start_login("/app", NOW);
    let d = w.get(&cb, true, NOW);
    assert_eq!(response(&d).status, 403, "{d:?}");
    assert!(
        !w.jar.contains_key("session"),
        "no session for a refused login"
    );
}

#[test]
fn scopes_required_reads_the_scopes_the_token_endpoint_granted() {
    let required = json!({"scopes_required": ["orders.read"]});
    let mut w = shaped(Access::Opaque, required.clone());
    w.idp().scope = Some("openid email".into());
    let cb = w.start_login("/app", NOW);
    assert_eq!(response(&w.get(&cb, true, NOW)).status, 403);

    let mut w = shaped(Access::Opaque, required);
    w.idp().scope = Some("openid email orders.read".into());
    w.login("/app", NOW);
    upstream(&w.get("/app", false, NOW + 1));
}

#[test]
fn such_a_session_refreshes_by_expires_in_and_forwards_the_new_token() {
    let mut w = shaped(Access::Opaque, json!({}));
    w.idp().token_life = 120;
    w.login("/app", NOW);
    // Within a quarter of `expires_in` (30 s) of expiry: refreshed once,
    // the new token sent.
    let d = w.get("/app", false, NOW + 95);
    assert_eq!(w.calls().len(), 2);
    assert_eq!(w.calls()[1].form()["grant_type"], "refresh_token");
    let renewed = w.idp().issued[1].0.clone();
    assert_eq!(
        upstream_header(&d, "authorization"),
        Some(format!("Bearer {renewed}"))
    );
    assert_eq!(
        upstream_header(&d, "x-email").as_deref(),
        Some("alice@example.com"),
        "the identity stays the one verified at login"
    );
    // Past its expiry with the IdP refusing: no session, a login again.
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(400),
        body: br#"{"error":"invalid_grant"}"#.to_vec(),
        retry_after: None,
    });
    assert_eq!(response(&w.get("/app", true, NOW + 400)).status, 302);
}

#[test]
fn a_client_sending_such_a_token_itself_is_not_trusted() {
    let mut w = shaped(Access::Opaque, json!({}));
    w.login("/app", NOW);
    let issued = w.idp().issued[0].0.clone();
    w.jar.clear();
    let req = crate::request(&[&format!("Bearer {issued}")]);
    assert_eq!(response(&w.send(req, NOW + 1)).status, 401);
}

#[test]
fn a_refused_code_ends_the_login_with_400_whatever_the_status() {
    for status in [400, 401, 403] {
        let mut w = shaped(Access::Ours, json!({}));
        w.idp().code_reply = Some(IdpReply {
            status: Some(status),
            body: br#"{"error":"invalid_grant"}"#.to_vec(),
            retry_after: None,
        });
        let cb = w.start_login("/app", NOW);
        let d = w.get(&cb, true, NOW);
        let r = response(&d);
        assert_eq!(r.status, 400, "{status}: {d:?}");
        assert!(
            header(r, "set-cookie").contains("Max-Age=0"),
            "{status}: the login cookie is cleared"
        );
        assert!(w.jar.keys().all(|k| !k.starts_with("session")), "{status}");
    }
}

#[test]
fn a_throttled_code_exchange_is_503_with_the_idps_retry_after() {
    let mut w = shaped(Access::Ours, json!({}));
    w.idp().code_reply = Some(IdpReply {
        status: Some(429),
        body: vec![],
        retry_after: Some(30),
    });
    let cb = w.start_login("/app", NOW);
    let r = response(&w.get(&cb, true, NOW)).clone();
    assert_eq!(r.status, 503);
    assert_eq!(header(&r, "retry-after"), "30");
}

/// An Okta org authorization server: opaque client-credentials tokens.
fn okta_org_token(_: &envoy_oidc::action::IdpRequest, _: u64) -> IdpReply {
    let body = json!({"access_token": "opaque-org-token", "token_type": "Bearer",
                      "expires_in": 3600, "scope": "orders.read"});
    IdpReply {
        status: Some(200),
        body: body.to_string().into_bytes(),
        retry_after: None,
    }
}

fn basic(id: &str, secret: &str) -> envoy_oidc::request::RequestView {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    crate::request(&[&format!("Basic {b64}")])
}

#[test]
fn a_client_credentials_token_not_ours_is_forwarded_as_obtained() {
    let cfg = crate::config(json!({"scopes": ["orders.read"]}));
    let mut w = envoy_oidc_testkit::World::new(
        &cfg,
        2,
        NOW,
        crate::scripted(crate::healthy, okta_org_token),
    );
    for worker in [0, 1] {
        // The second worker reads the first one's exchange from shared data.
        let d = w.request(worker, basic("svc", "secret"));
        assert_eq!(
            upstream_header(&d, "authorization").as_deref(),
            Some("Bearer opaque-org-token"),
            "worker {worker}"
        );
    }
    assert_eq!(crate::token_calls(&w).len(), 1);

    // `scopes_required` reads the granted scopes.
    for (required, status) in [("orders.read", None), ("orders.write", Some(403))] {
        let cfg = crate::config(json!({"scopes": ["orders.read"], "scopes_required": [required]}));
        let mut w = envoy_oidc_testkit::World::new(
            &cfg,
            1,
            NOW,
            crate::scripted(crate::healthy, okta_org_token),
        );
        let d = w.request(0, basic("svc", "secret"));
        match status {
            None => assert!(matches!(d.action, Action::Continue { .. }), "{d:?}"),
            Some(s) => assert_eq!(response(&d).status, s),
        }
    }
}

#[test]
fn a_throttled_client_credentials_exchange_waits_as_the_idp_asked() {
    let throttled = |_: &envoy_oidc::action::IdpRequest, _| IdpReply {
        status: Some(429),
        body: vec![],
        retry_after: Some(20),
    };
    let mut w = crate::world_with(json!({}), crate::healthy, throttled);
    let d = crate::at(&mut w, NOW, basic("svc", "secret"));
    assert_eq!(response(&d).status, 503);
    assert_eq!(header(response(&d), "retry-after"), "20");
    // Served from the cache, the wait that remains.
    let d = crate::at(&mut w, NOW + 19, basic("svc", "secret"));
    assert_eq!(header(response(&d), "retry-after"), "1");
    assert_eq!(
        crate::token_calls(&w).len(),
        1,
        "not called again before 20 s"
    );
    crate::at(&mut w, NOW + 21, basic("svc", "secret"));
    assert_eq!(crate::token_calls(&w).len(), 2);
}

#[test]
fn a_token_endpoint_answering_403_refuses_the_client() {
    let forbidden = |_: &envoy_oidc::action::IdpRequest, _| IdpReply {
        status: Some(403),
        body: br#"{"error":"invalid_client"}"#.to_vec(),
        retry_after: None,
    };
    let mut w = crate::world_with(json!({}), crate::healthy, forbidden);
    let d = crate::at(&mut w, NOW, basic("svc", "wrong"));
    crate::assert_invalid(&d, envoy_oidc::error::TokenError::Rejected);
}

#[test]
fn audience_and_extra_parameters_reach_the_idp_never_over_the_protocols() {
    let extra = json!({
        "audience": "https://api.example.com",
        "authorization_query_args_names": ["prompt"],
        "authorization_query_args_values": ["login"],
        "authorization_query_args_client": ["login_hint", "kc_idp_hint"],
        "token_post_args_names": ["resource"],
        "token_post_args_values": ["urn:orders"],
    });
    let mut w = shaped(Access::Ours, extra);
    let d = w.get("/app?login_hint=alice%40example.com&code=x", true, NOW);
    let q = browser_kit::query(header(response(&d), "location"));
    assert_eq!(q["audience"], "https://api.example.com");
    assert_eq!(q["prompt"], "login");
    assert_eq!(q["login_hint"], "alice@example.com");
    assert!(
        !q.contains_key("kc_idp_hint"),
        "absent from the request: not sent"
    );
    assert_eq!(q["response_type"], "code");
    // The code exchange carries the token parameters, not the audience.
    w.login("/app", NOW);
    let exchange = w.calls()[0].form();
    assert_eq!(exchange["resource"], "urn:orders");
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert!(!exchange.contains_key("audience"));
}

/// A GET of `path` with the client credentials `svc:secret` and `headers`.
fn svc_request(path: &str, headers: &[(&str, &str)]) -> envoy_oidc::request::RequestView {
    let basic = basic("svc", "secret");
    let auth = basic.all("authorization").map(|v| ("authorization", v));
    let pairs = [(":method", "GET".as_bytes()), (":path", path.as_bytes())]
        .into_iter()
        .chain(headers.iter().map(|(n, v)| (*n, v.as_bytes())))
        .chain(auth);
    envoy_oidc::request::RequestView::new(pairs.map(|(n, v)| (n.to_string(), v.to_vec())).collect())
}

#[test]
fn client_credentials_carry_the_audience_and_are_cached_per_parameters() {
    let cfg = json!({"audience": ["https://api.example.com"],
                     "token_post_args_client": ["x-tenant"]});
    let mut w = crate::world(cfg);
    for tenant in ["a", "a", "b"] {
        let r = svc_request("/oidcroute/get", &[("x-tenant", tenant)]);
        let d = crate::at(&mut w, NOW, r);
        assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    }
    let calls = crate::token_calls(&w);
    assert_eq!(calls.len(), 2, "one exchange per tenant");
    let form = envoy_oidc_testkit::world::form(calls[1]);
    assert_eq!(form["audience"], "https://api.example.com");
    assert_eq!(form["x-tenant"], "b");
}

#[test]
fn client_credentials_are_cached_per_parameters_whatever_bytes_they_hold() {
    // `a` holding what a separator of the parts would look like, and no
    // `b`; then `a` and `b` as those parts: two parameter lists, two
    // exchanges.
    let mut w = crate::world(json!({"token_post_args_client": ["a", "b"]}));
    for query in ["a=x%00b%00y", "a=x&b=y"] {
        let r = svc_request(&format!("/oidcroute/get?{query}"), &[]);
        let d = crate::at(&mut w, NOW, r);
        assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    }
    assert_eq!(crate::token_calls(&w).len(), 2, "one exchange per list");
}

#[test]
fn google_domains_admit_only_their_hosted_domain() {
    for (hd, status) in [
        (Some("example.com"), 302),
        (Some("gmail.com"), 403),
        (None, 403),
    ] {
        let mut w = shaped(Access::Opaque, json!({"domains": ["example.com"]}));
        if let Some(hd) = hd {
            w.idp().id_claims["hd"] = json!(hd);
        }
        let cb = w.start_login("/app", NOW);
        assert_eq!(response(&w.get(&cb, true, NOW)).status, status, "{hd:?}");
    }
}

#[test]
fn a_group_overage_is_403_saying_what_to_configure() {
    for (id_claims, overage) in [
        (json!({}), false),
        (json!({"_claim_names": {"groups": "src1"}}), true),
        (json!({"hasgroups": true}), true),
    ] {
        let mut w = shaped(Access::Opaque, json!({"groups_required": ["staff"]}));
        w.idp().id_claims = id_claims.clone();
        let cb = w.start_login("/app", NOW);
        let d = w.get(&cb, true, NOW);
        let r = response(&d);
        assert_eq!(r.status, 403, "{id_claims}");
        assert_eq!(
            header(r, "www-authenticate").contains("group overage"),
            overage,
            "{id_claims}: {r:?}"
        );
    }
}

const ENTRA: &str = "https://login.microsoftonline.com";

fn tenant(t: &str) -> String {
    format!("{ENTRA}/{t}/v2.0")
}

/// Entra ID's multi-tenant endpoint: discovery names `{tenantid}`.
fn entra_discovery() -> Vec<u8> {
    json!({"issuer": tenant("{tenantid}"), "jwks_uri": format!("{ENTRA}/common/jwks"),
           "authorization_endpoint": format!("{ENTRA}/organizations/oauth2/v2.0/authorize"),
           "token_endpoint": format!("{ENTRA}/organizations/oauth2/v2.0/token")})
    .to_string()
    .into_bytes()
}

fn entra_config() -> Value {
    config(json!({"issuer": tenant("organizations"),
                  "issuers_allowed": [tenant("tenant-a")]}))
}

/// A browser of an Entra multi-tenant app whose users sign in at
/// `home` tenant with `tid` in their tokens; Graph access tokens.
fn entra_login(home: &str, tid: &str) -> (Browser, Decision) {
    let mut w = Browser::on(entra_config(), entra_discovery(), 1);
    w.idp().issuer = tenant(home);
    w.idp().access = Access::OtherApi;
    w.idp().id_claims = json!({"tid": tid, "email": "alice@example.com"});
    let cb = w.start_login("/app", NOW);
    let d = w.get(&cb, true, NOW);
    (w, d)
}

#[test]
fn entra_multi_tenant_logs_in_users_of_listed_tenants_only() {
    let (mut w, d) = entra_login("tenant-a", "tenant-a");
    assert_eq!(response(&d).status, 302, "{d:?}");
    assert_eq!(
        upstream_header(&w.get("/app", false, NOW + 1), "x-email").as_deref(),
        Some("alice@example.com")
    );
    // A tenant not in issuers_allowed: never "any tenant".
    let (w, d) = entra_login("tenant-b", "tenant-b");
    assert_eq!(response(&d).status, 400, "{d:?}");
    assert!(!w.jar.contains_key("session"));
    // Issuer of one tenant, tid of another.
    let (w, d) = entra_login("tenant-a", "tenant-b");
    assert_eq!(response(&d).status, 401, "{d:?}");
    assert!(!w.jar.contains_key("session"));
}

#[test]
fn entra_multi_tenant_bearer_tokens_must_name_one_tenant() {
    let discovery = |d: envoy_oidc::oidc::provider::Document| match d {
        envoy_oidc::oidc::provider::Document::Discovery => IdpReply {
            status: Some(200),
            body: entra_discovery(),
            retry_after: None,
        },
        other => crate::healthy(other),
    };
    let token = |iss: &str, tid: Option<&str>| {
        let mut c = envoy_oidc_testkit::tokens::access_claims(NOW);
        c["iss"] = json!(iss);
        if let Some(tid) = tid {
            c["tid"] = json!(tid);
        }
        envoy_oidc_testkit::tokens::rs256(&c)
    };
    let cfg = json!({"issuer": tenant("organizations"), "issuers_allowed": [tenant("tenant-a")]});
    for (iss, tid, passes) in [
        (tenant("tenant-a"), Some("tenant-a"), true),
        (tenant("tenant-a"), Some("tenant-b"), false),
        (tenant("tenant-a"), None, true),
        (tenant("tenant-b"), Some("tenant-b"), false),
        (
            "https://sts.windows.net/tenant-a/".to_string(),
            Some("tenant-a"),
            false,
        ),
    ] {
        let mut w = crate::world_with(cfg.clone(), discovery, crate::issue_token);
        let d = crate::at(
            &mut w,
            NOW,
            crate::request(&[&format!("Bearer {}", token(&iss, tid))]),
        );
        assert_eq!(
            matches!(d.action, Action::Continue { .. }),
            passes,
            "{iss} {tid:?}: {d:?}"
        );
    }
}

#[test]
fn a_throttled_refresh_is_not_retried_before_the_idps_retry_after() {
    let mut w = shaped(Access::Ours, json!({}));
    w.login("/app", NOW);
    w.idp().refresh_reply = Some(IdpReply {
        status: Some(429),
        body: vec![],
        retry_after: Some(30),
    });
    // Within a minute of expiry (300 s): refreshed, throttled; the valid
    // token serves on.
    upstream(&w.get("/app", false, NOW + 250));
    assert_eq!(w.calls().len(), 2);
    upstream(&w.get("/app", false, NOW + 270));
    assert_eq!(w.calls().len(), 2, "not before 30 s");
    upstream(&w.get("/app", false, NOW + 281));
    assert_eq!(w.calls().len(), 3);
}

#[test]
fn userinfo_about_another_subject_than_the_id_token_is_not_used() {
    // A session whose access token is opaque (Google): who it is comes from
    // the ID token, `sub` "alice"; `search_user_info` adds the groups.
    let mut discovery: Value = serde_json::from_slice(&browser_kit::discovery()).unwrap();
    discovery["userinfo_endpoint"] =
        json!(format!("{}/userinfo", envoy_oidc_testkit::tokens::ISSUER));
    let cfg = config(json!({"search_user_info": true, "groups_required": ["admins"]}));
    for (sub, status) in [("alice", 200), ("mallory", 502)] {
        let mut w = Browser::on(cfg.clone(), serde_json::to_vec(&discovery).unwrap(), 1);
        w.idp().access = Access::Opaque;
        w.idp().userinfo = Some(json!({"sub": sub, "groups": ["admins"]}));
        let cb = w.start_login("/app", NOW);
        let d = w.get(&cb, true, NOW);
        let got = match &d.action {
            Action::Continue { .. } => 200,
            _ => response(&d).status,
        };
        let d = if got == 302 {
            w.get("/app", false, NOW + 1)
        } else {
            d
        };
        let got = match &d.action {
            Action::Continue { .. } => 200,
            _ => response(&d).status,
        };
        assert_eq!(got, status, "userinfo sub {sub}: {d:?}");
    }
}

/// Auth0's issuer ends in `/` (`https://tenant.auth0.com/`); Kong's users
/// configure its discovery URL, which cannot say so.
#[test]
fn an_issuer_given_as_its_discovery_url_may_end_in_a_slash() {
    use envoy_oidc_testkit::tokens::ISSUER;
    let discovery = |d: envoy_oidc::oidc::provider::Document| match d {
        envoy_oidc::oidc::provider::Document::Discovery => {
            let mut doc: Value =
                serde_json::from_slice(&envoy_oidc_testkit::tokens::discovery()).unwrap();
            doc["issuer"] = json!(format!("{ISSUER}/"));
            IdpReply {
                status: Some(200),
                body: doc.to_string().into_bytes(),
                retry_after: None,
            }
        }
        other => crate::healthy(other),
    };
    let mut claims = envoy_oidc_testkit::tokens::access_claims(NOW);
    claims["iss"] = json!(format!("{ISSUER}/"));
    let bearer = format!("Bearer {}", envoy_oidc_testkit::tokens::rs256(&claims));
    let given = format!("{ISSUER}/.well-known/openid-configuration");
    let mut w = crate::world_with(json!({ "issuer": given }), discovery, crate::issue_token);
    let d = crate::at(&mut w, NOW, crate::request(&[&bearer]));
    assert!(matches!(d.action, Action::Continue { .. }), "{d:?}");
    // Given as the identifier without the slash, it is exact: refused.
    let mut w = crate::world_with(json!({ "issuer": ISSUER }), discovery, crate::issue_token);
    let d = crate::at(&mut w, NOW, crate::request(&[&bearer]));
    assert!(!matches!(d.action, Action::Continue { .. }), "{d:?}");
}
