//! The policy on an authenticated request (audience, scopes, groups, roles,
//! forbidden claims), the headers sent upstream, and what passes without
//! credentials.

use envoy_oidc::action::{Action, Decision};
use envoy_oidc::error::Forbidden;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::tokens;
use serde_json::{Value, json};

use crate::{NOW, at, bearer, claims_with, header, is_continue, response, world};

#[test]
fn wrong_audience_is_403() {
    let cfg = json!({"audience_claim": ["client_id"], "audience_required": ["client-1"]});
    let (d, _) = bearer(
        cfg.clone(),
        &tokens::rs256(&claims_with(json!({"client_id": "client-2"}))),
    );
    assert_eq!(response(&d).status, 403);
    let (d, _) = bearer(
        cfg,
        &tokens::rs256(&claims_with(json!({"client_id": null}))),
    );
    assert_eq!(
        response(&d).status,
        403,
        "a missing audience claim is not a match"
    );
}

#[test]
fn missing_scope_is_403_insufficient_scope() {
    let cfg = json!({"scopes_required": ["kongresource/scope2", "admin other"]});
    let (d, _) = bearer(cfg, &tokens::rs256(&tokens::access_claims(NOW)));
    let r = response(&d);
    assert_eq!(r.status, 403);
    assert!(header(r, "www-authenticate").ends_with("error=\"insufficient_scope\""));
    let cfg = json!({"scopes_required": ["kongresource/scope2", "kongresource/scope1 other"]});
    assert!(is_continue(
        &bearer(cfg, &tokens::rs256(&tokens::access_claims(NOW))).0
    ));
    let _ = Forbidden::MissingScope;
}

#[test]
fn groups_roles_and_forbidden_claims_are_403() {
    let claims = claims_with(json!({
        "cognito:groups": ["admins", "devs"],
        "realm_access": {"roles": ["reader"]},
    }));
    let token = tokens::rs256(&claims);
    let status = |extra: Value| {
        let (d, _) = bearer(extra, &token);
        match d.action {
            Action::Continue { .. } => 200,
            Action::Respond(r) => r.status,
        }
    };
    assert_eq!(
        status(json!({"groups_claim": ["cognito:groups"], "groups_required": ["admins devs"]})),
        200
    );
    assert_eq!(
        status(json!({"groups_claim": ["cognito:groups"], "groups_required": ["ops", "admins"]})),
        200
    );
    assert_eq!(
        status(json!({"groups_claim": ["cognito:groups"], "groups_required": ["admins ops"]})),
        403
    );
    assert_eq!(
        status(json!({"groups_required": ["admins"]})),
        403,
        "Kong's default claim is `groups`"
    );
    assert_eq!(
        status(json!({"roles_claim": ["realm_access", "roles"], "roles_required": ["reader"]})),
        200
    );
    assert_eq!(
        status(json!({"roles_claim": ["realm_access", "roles"], "roles_required": ["writer"]})),
        403
    );
    assert_eq!(status(json!({"claims_forbidden": ["act"]})), 200);
    assert_eq!(status(json!({"claims_forbidden": ["cognito:groups"]})), 403);
}

#[test]
fn claim_headers_are_set_and_client_copies_removed() {
    let cfg = json!({
        "upstream_headers_claims": ["sub", "scope", "token_use"],
        "upstream_headers_names": ["x-user", "x-scope", "x-token-use"],
        "upstream_access_token_header": "x-access-token",
    });
    let token = tokens::rs256(&claims_with(json!({"token_use": null})));
    let auth = format!("Bearer {token}");
    // The client sends its own copies of two claim headers.
    let req = get_with(
        "/oidcroute/get",
        &[
            ("authorization", &auth),
            ("x-user", "admin"),
            ("x-scope", "all"),
        ],
    );
    let d = at(&mut world(cfg), NOW, req);
    let Action::Continue { set, remove, .. } = d.action else {
        panic!("{d:?}")
    };
    assert_eq!(
        set,
        vec![
            ("x-access-token".to_string(), token.clone()),
            ("x-user".to_string(), "client-1".to_string()),
            (
                "x-scope".to_string(),
                "kongresource/scope1 other".to_string()
            ),
        ]
    );
    // Removed: what the client sent of ours; a header it did not send
    // (x-token-use) costs no host call.
    assert_eq!(remove, vec!["authorization", "x-user", "x-scope"]);
}

#[test]
fn no_client_copy_of_a_header_any_rule_sets_reaches_the_upstream() {
    // A rule's claim and token headers replace the top level's for its
    // routes; one service behind both trusts all of them.
    let cfg = json!({
        "upstream_headers_claims": ["sub"],
        "upstream_headers_names": ["x-user"],
        "rules": [
            {"match": {"paths": ["/oidcroute/reports"]},
             "upstream_headers_claims": ["sub"], "upstream_headers_names": ["x-report-user"],
             "upstream_access_token_header": "x-access-token"},
            {"match": {"paths": ["/oidcroute/open"]}, "bypass": true},
        ],
    });
    let token = tokens::rs256(&claims_with(json!({})));
    let auth = format!("Bearer {token}");
    let forged = [
        ("x-user", "admin"),
        ("x-report-user", "admin"),
        ("x-access-token", "forged"),
        ("x_user", "admin"),
    ];
    for path in ["/oidcroute/reports", "/oidcroute/get", "/oidcroute/open"] {
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(forged);
        let d = at(&mut world(cfg.clone()), NOW, get_with(path, &headers));
        let Action::Continue { set, remove, .. } = d.action else {
            panic!("{path}: {d:?}")
        };
        for (name, _) in forged {
            let set_by_us = set
                .iter()
                .any(|(n, v)| n == name && v != "admin" && v != "forged");
            assert!(
                remove.iter().any(|r| r == name) || set_by_us,
                "{path}: the client's {name} reaches the upstream: {remove:?} {set:?}"
            );
        }
    }
}

#[test]
fn our_token_header_kept_as_sent_is_not_taken_for_another_rules_lookalike() {
    // The top level's token header and a rule's differ only by `-`/`_`.
    let cfg = json!({
        "upstream_access_token_header": "x-access-token",
        "rules": [{"match": {"paths": ["/b"]}, "upstream_access_token_header": "x_access_token"}],
    });
    let token = tokens::rs256(&claims_with(json!({})));
    let auth = format!("Bearer {token}");
    // The request carries our token in our header already: kept, unset.
    let req = get_with(
        "/oidcroute/get",
        &[("authorization", &auth), ("x-access-token", &token)],
    );
    let d = at(&mut world(cfg), NOW, req);
    let Action::Continue { set, remove, .. } = d.action else {
        panic!("{d:?}")
    };
    let upstream_has_it = set
        .iter()
        .any(|(n, v)| n == "x-access-token" && *v == token)
        || !remove.iter().any(|r| r == "x-access-token");
    assert!(upstream_has_it, "{set:?} {remove:?}");
}

#[test]
fn bypass_paths_and_preflight_pass_without_credentials() {
    let cfg = json!({"bypass_paths": ["/health"], "run_on_preflight": false});
    let health = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/health?x".to_vec()),
    ]);
    let mut w = world(cfg.clone());
    assert!(is_continue(&at(&mut w, NOW, health)));
    assert!(w.calls.is_empty());
    let preflight = RequestView::new(vec![
        (":method".into(), b"OPTIONS".to_vec()),
        (":path".into(), b"/api".to_vec()),
        ("access-control-request-method".into(), b"POST".to_vec()),
    ]);
    let mut w = world(cfg);
    assert!(is_continue(&at(&mut w, NOW, preflight.clone())));
    assert!(w.calls.is_empty());
    let mut w = world(json!({}));
    assert_eq!(
        response(&at(&mut w, NOW, preflight)).status,
        401,
        "preflight is checked by default"
    );
    assert!(w.calls.is_empty());
}

#[test]
fn bypassed_requests_cannot_forge_claim_headers() {
    let cfg = json!({"bypass_paths": ["/health"],
                     "upstream_headers_claims": ["sub"], "upstream_headers_names": ["x-sub"]});
    let req = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/health".to_vec()),
        ("x-sub".into(), b"admin".to_vec()),
        ("authorization".into(), b"Bearer forged".to_vec()),
    ]);
    let d = at(&mut world(cfg), NOW, req);
    let Action::Continue { remove, .. } = d.action else {
        panic!("{d:?}")
    };
    assert_eq!(remove, vec!["x-sub", "authorization"]);
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> RequestView {
    request_with("GET", path, headers)
}

fn request_with(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestView {
    let mut h = vec![
        (":method".to_string(), method.as_bytes().to_vec()),
        (":path".to_string(), path.as_bytes().to_vec()),
    ];
    h.extend(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    RequestView::new(h)
}

/// 200 for a request let through, else the status answered.
fn status(d: &Decision) -> u32 {
    match &d.action {
        Action::Continue { .. } => 200,
        _ => crate::response(d).status,
    }
}

fn removed(d: &Decision) -> Vec<String> {
    match &d.action {
        Action::Continue { remove, .. } => remove.clone(),
        other => panic!("expected continue, got {other:?}"),
    }
}

#[test]
fn lookalike_claim_and_token_headers_never_reach_the_upstream() {
    let cfg = json!({"bypass_paths": ["/health"],
                     "upstream_headers_claims": ["cognito:groups"],
                     "upstream_headers_names": ["x-user-groups"],
                     "upstream_access_token_header": "x-access-token"});
    let token = tokens::rs256(&claims_with(json!({})));
    let forged = [
        ("authorization", format!("Bearer {token}")),
        ("x_user_groups", "admins".to_string()),
        ("x-user_groups", "admins".to_string()),
        ("X_Access_Token", "forged".to_string()),
    ];
    let headers: Vec<(&str, &str)> = forged.iter().map(|(n, v)| (*n, v.as_str())).collect();
    // Authenticated: the token lacks the claim, so only removal protects.
    let d = at(
        &mut world(cfg.clone()),
        NOW,
        get_with("/oidcroute/get", &headers),
    );
    let remove = removed(&d);
    for lookalike in ["x_user_groups", "x-user_groups", "X_Access_Token"] {
        assert!(
            remove.iter().any(|r| r == lookalike),
            "{lookalike} kept: {remove:?}"
        );
    }
    // Unauthenticated (bypass) alike, and the token header itself.
    let sent = [
        &headers[1..],
        &[("x-user-groups", "admins"), ("x-access-token", "forged")],
    ]
    .concat();
    let d = at(&mut world(cfg), NOW, get_with("/health", &sent));
    let remove = removed(&d);
    for name in [
        "x-user-groups",
        "x-access-token",
        "x_user_groups",
        "x-user_groups",
        "X_Access_Token",
    ] {
        assert!(
            remove.iter().any(|r| r == name),
            "{name} kept on bypass: {remove:?}"
        );
    }
}

#[test]
fn a_dashed_client_header_does_not_pass_for_our_underscored_one() {
    // Ours is `x_user_id`: CGI, WSGI and PHP read a client's `x-user-id`
    // as the same HTTP_X_USER_ID (and nginx drops names with `_` by
    // default, leaving only the client's).
    let cfg = json!({"upstream_headers_claims": ["sub"], "upstream_headers_names": ["x_user_id"]});
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    let sent = [("authorization", auth.as_str()), ("x-user-id", "admin")];
    let d = at(&mut world(cfg), NOW, get_with("/oidcroute/get", &sent));
    let remove = removed(&d);
    assert!(remove.iter().any(|r| r == "x-user-id"), "{remove:?}");
    // The client's own other headers stay.
    assert!(!remove.iter().any(|r| r == "authorization"), "{remove:?}");
}

#[test]
fn hide_credentials_takes_out_the_credentials_a_request_did_not_use_too() {
    // A token in the header passed; another in the query (or the bearer
    // cookie) would reach the upstream's logs, as it would not on a bypass
    // path.
    let cfg = json!({"bearer_token_param_type": ["header", "query", "cookie"],
                     "bearer_token_cookie_name": "at"});
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    let sent = [
        ("authorization", auth.as_str()),
        ("cookie", "at=OTHER; theme=dark"),
    ];
    let d = at(
        &mut world(cfg),
        NOW,
        get_with("/oidcroute/get?access_token=OTHER&page=2", &sent),
    );
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    let get = |name: &str| set.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
    assert_eq!(get(":path"), Some("/oidcroute/get?page=2"), "{set:?}");
    assert_eq!(get("cookie"), Some("theme=dark"), "{set:?}");
    // A `client_id` without a secret is the application's argument, no
    // credential: the path goes as it came.
    let cfg = json!({"client_credentials_param_type": ["header", "query"]});
    let d = at(
        &mut world(cfg),
        NOW,
        get_with(
            "/apps?client_id=abc&page=2",
            &[("authorization", auth.as_str())],
        ),
    );
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert!(!set.iter().any(|(n, _)| n == ":path"), "{set:?}");
}

#[test]
fn a_bypassed_request_forwards_no_credentials_of_the_kind_we_forward() {
    let sent = [
        ("authorization", "Bearer whatever"),
        ("x-access-token", "t"),
    ];
    // Our token header is Authorization and hide_credentials is on: removed.
    let d = at(
        &mut world(json!({"bypass_paths": ["/health"]})),
        NOW,
        get_with("/health", &sent),
    );
    assert!(removed(&d).contains(&"authorization".to_string()));
    // hide_credentials off: the client's Authorization stays theirs.
    let cfg = json!({"bypass_paths": ["/health"], "hide_credentials": false});
    let d = at(&mut world(cfg), NOW, get_with("/health", &sent));
    assert!(!removed(&d).contains(&"authorization".to_string()));
    // Another token header: that one always goes.
    let cfg = json!({"bypass_paths": ["/health"], "hide_credentials": false,
                     "upstream_access_token_header": "x-access-token"});
    let d = at(&mut world(cfg), NOW, get_with("/health", &sent));
    assert!(removed(&d).contains(&"x-access-token".to_string()));
}

#[test]
fn anonymous_lets_what_would_be_a_401_through_marked_and_without_credentials() {
    use envoy_oidc::action::Action;
    let cfg = json!({"anonymous": "guest", "scopes_required": ["admin"]});
    let forged = format!(
        "Bearer {}x",
        envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW))
    );
    for (what, auth) in [
        ("no credential", None),
        ("an invalid token", Some(forged.as_str())),
    ] {
        let mut w = crate::world(cfg.clone());
        let mut h = vec![
            (":method", "GET"),
            (":path", "/x"),
            ("x-anonymous-consumer", "false"),
        ];
        if let Some(a) = auth {
            h.push(("authorization", a));
        }
        let req = envoy_oidc::request::RequestView::new(
            h.iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        );
        let d = crate::at(&mut w, NOW, req);
        let Action::Continue { set, remove, .. } = &d.action else {
            panic!("{what}: {d:?}")
        };
        assert!(
            set.contains(&("x-anonymous-consumer".into(), "true".into())),
            "{what}"
        );
        assert!(
            set.contains(&("x-consumer-id".into(), "guest".into())),
            "{what}"
        );
        assert_eq!(
            remove.contains(&"authorization".to_string()),
            auth.is_some(),
            "{what}: {remove:?}"
        );
    }
    // A valid token without the scope stays a 403, not anonymous.
    let token = envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW));
    let d = crate::at(
        &mut crate::world(cfg.clone()),
        NOW,
        crate::request(&[&format!("Bearer {token}")]),
    );
    assert_eq!(crate::response(&d).status, 403);
    // An authenticated request never carries a client's consumer headers.
    let auth = format!("Bearer {token}");
    let d = crate::at(
        &mut crate::world(json!({"anonymous": "guest"})),
        NOW,
        get_with(
            "/x",
            &[("authorization", &auth), ("x-anonymous-consumer", "true")],
        ),
    );
    let Action::Continue { remove, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert!(remove.contains(&"x-anonymous-consumer".to_string()));
}

#[test]
fn with_kongs_consumers_in_use_no_client_copy_of_their_headers_reaches_the_upstream() {
    // Kong sets or clears all of these on every request it authenticates:
    // an upstream that came from Kong trusts them.
    let spoofed = [
        ("x-consumer-custom-id", "premium"),
        ("x-credential-identifier", "admin"),
        ("x-consumer-groups", "admins"),
        ("x-consumer-username", "root"),
    ];
    let token = envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW));
    let auth = format!("Bearer {token}");
    let cfg = json!({"anonymous": "guest", "bypass_paths": ["/public"]});
    for (what, path, with_token) in [
        ("anonymous", "/x", false),
        ("authenticated", "/x", true),
        ("bypassed", "/public/x", false),
    ] {
        let mut headers = spoofed.to_vec();
        if with_token {
            headers.push(("authorization", &auth));
        }
        let d = at(&mut world(cfg.clone()), NOW, get_with(path, &headers));
        let removed = removed(&d);
        for (name, _) in spoofed {
            assert!(
                removed.iter().any(|r| r == name),
                "{what}: {name} in {removed:?}"
            );
        }
    }
}

#[test]
fn kongs_consumer_headers_are_removed_under_every_rule_when_any_uses_anonymous() {
    // One service behind several rules, `anonymous` on one of them: the
    // upstream trusts the consumer headers on every route.
    let cfg = json!({
        "bypass_paths": ["/public"],
        "rules": [{"match": {"paths": ["/catalog"]}, "anonymous": "guest"}]
    });
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    for (path, with_token) in [("/orders", true), ("/public/x", false)] {
        let mut headers = vec![("x-consumer-username", "root"), ("x-consumer-id", "admin")];
        if with_token {
            headers.push(("authorization", &auth));
        }
        let d = at(&mut world(cfg.clone()), NOW, get_with(path, &headers));
        assert!(is_continue(&d), "{path}: {d:?}");
        let removed = removed(&d);
        for name in ["x-consumer-username", "x-consumer-id"] {
            assert!(
                removed.iter().any(|r| r == name),
                "{path}: {name} in {removed:?}"
            );
        }
    }
}

#[test]
fn browsers_are_redirected_on_401_and_403_where_configured() {
    let cfg = json!({"auth_methods": ["bearer"], "scopes_required": ["admin"],
                     "unauthorized_redirect_uri": ["https://app.example.com/denied"],
                     "forbidden_redirect_uri": "https://app.example.com/forbidden"});
    let nav = |auth: Option<String>, html: bool| {
        let mut h = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), b"/x".to_vec()),
        ];
        if html {
            h.push(("accept".into(), b"text/html".to_vec()));
        }
        if let Some(a) = auth {
            h.push(("authorization".into(), a.into_bytes()));
        }
        envoy_oidc::request::RequestView::new(h)
    };
    let token = envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW));
    for (auth, html, status, location) in [
        (None, true, 302, Some("https://app.example.com/denied")),
        (None, false, 401, None),
        (
            Some(format!("Bearer {token}")),
            true,
            302,
            Some("https://app.example.com/forbidden"),
        ),
        (Some(format!("Bearer {token}")), false, 403, None),
    ] {
        let d = crate::at(&mut crate::world(cfg.clone()), NOW, nav(auth.clone(), html));
        let r = crate::response(&d);
        assert_eq!(r.status, status, "{auth:?} {html}");
        if let Some(l) = location {
            assert_eq!(crate::header(r, "location"), l);
        }
    }
}

#[test]
fn rules_give_each_route_its_own_requirements_first_match_wins() {
    let cfg = json!({
        "scopes_required": ["kongresource/scope1"],
        "rules": [
            {"match": {"paths": ["/public"]}, "bypass": true},
            {"match": {"hosts": ["admin.example.com"], "paths": ["/admin"]}, "groups_required": ["admins"]},
            {"match": {"paths": ["/api"], "methods": ["POST"]}, "scopes_required": ["write"]},
            {"match": {"hosts": ["*.example.com"]}, "scopes_required": ["nope"]},
        ],
    });
    let token = envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW));
    let bearer = format!("Bearer {token}");
    let send = |host: &str, method: &str, path: &str, auth: bool| {
        let mut h = vec![(":authority", host)];
        if auth {
            h.push(("authorization", bearer.as_str()));
        }
        status(&at(
            &mut world(cfg.clone()),
            NOW,
            request_with(method, path, &h),
        ))
    };
    assert_eq!(
        send("gw.test", "GET", "/public/x", false),
        200,
        "bypass rule"
    );
    assert_eq!(
        send("admin.example.com", "GET", "/admin", true),
        403,
        "needs admins"
    );
    assert_eq!(
        send("gw.test", "GET", "/admin", true),
        200,
        "another host: top level"
    );
    assert_eq!(
        send("gw.test", "POST", "/api/x", true),
        403,
        "POST needs write"
    );
    assert_eq!(
        send("gw.test", "GET", "/api/x", true),
        200,
        "GET: top level"
    );
    assert_eq!(
        send("www.example.com:8443", "GET", "/x", true),
        403,
        "wildcard host rule"
    );
    assert_eq!(
        send("example.com", "GET", "/x", true),
        200,
        "*. needs a subdomain"
    );
    assert_eq!(
        send("gw.test", "GET", "/x", false),
        401,
        "no rule: top level"
    );
    assert_eq!(
        send("admin.example.com", "GET", "/public/%2e%2e/admin", false),
        400,
        "ambiguous path: the admin rule's, read otherwise"
    );
    assert_eq!(
        send("gw.test", "GET", "/public/%2e%2e/admin", false),
        401,
        "ambiguous path no rule but the bypass could take: the top level's, never the bypass"
    );
}

/// `route_names` follows Envoy's route (`xds.route_name`), read from the
/// host only when some rule matches on it.
#[test]
fn rules_match_envoys_route_name_read_only_when_needed() {
    let token = envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW));
    let bearer = format!("Bearer {token}");
    let req = || {
        get_with(
            "/orders",
            &[(":authority", "gw.test"), ("authorization", &bearer)],
        )
    };
    let cfg = json!({"rules": [
        {"match": {"route_names": ["admin"]}, "groups_required": ["admins"]},
        {"match": {"route_names": ["public"], "methods": ["GET"]}, "bypass": true},
    ]});
    for (route, expected) in [
        (Some("admin"), 403),
        (Some("public"), 200),
        (Some("orders"), 200),
        (None, 200),
    ] {
        let mut w = crate::world(cfg.clone());
        w.workers[0].host.route_name = route.map(str::to_string);
        assert_eq!(
            status(&crate::at(&mut w, NOW, req())),
            expected,
            "{route:?}"
        );
        assert_eq!(w.workers[0].host.property_reads, 1);
    }
    // The public route bypasses even without a token.
    let mut w = crate::world(cfg.clone());
    w.workers[0].host.route_name = Some("public".into());
    assert_eq!(status(&crate::at(&mut w, NOW, get_with("/x", &[]))), 200);
    // Rules on hosts and paths only: no property is read.
    let mut w = crate::world(json!({"rules": [{"match": {"paths": ["/a"]}, "bypass": true}]}));
    w.workers[0].host.route_name = Some("admin".into());
    assert_eq!(status(&crate::at(&mut w, NOW, req())), 200);
    assert_eq!(w.workers[0].host.property_reads, 0);
    // A host that cannot say the route: a 500, never the top level's
    // laxer policy in place of the admin rule.
    let mut w = crate::world(cfg);
    w.workers[0].host.route_name = Some("admin".into());
    w.workers[0].host.property_fails = true;
    assert_eq!(status(&crate::at(&mut w, NOW, req())), 500);
    assert!(w.calls.is_empty());
}

/// A rule is looked up only in the configuration that chose it: one
/// without that rule answers none (the request is then refused), never its
/// own top level, which the rule may have tightened.
#[test]
fn a_rule_is_read_only_from_the_configuration_that_chose_it() {
    let load = |extra: Value| {
        envoy_oidc::config::Config::parse(&serde_json::to_vec(&crate::config(extra)).unwrap())
            .unwrap()
            .config
    };
    let with = load(json!({"rules": [{"match": {"paths": ["/a"]}, "scopes_required": ["x"]}]}));
    let without = load(json!({}));
    let (id, bypass) = with.rule_for(&get_with("/a", &[])).unwrap();
    assert!(!bypass);
    assert!(std::ptr::eq(with.rule(id).unwrap(), &*with.rules[0].1));
    assert!(without.rule(id).is_none());
    // The top level's choice reads the top level in either.
    let (top, _) = with.rule_for(&get_with("/b", &[])).unwrap();
    assert!(without.rule(top).is_some_and(|c| c.rules.is_empty()));
}

#[test]
fn a_rule_switches_the_top_levels_anonymous_pass_off_with_null() {
    let cfg = json!({"anonymous": "guest",
                     "rules": [{"match": {"paths": ["/admin"]}, "anonymous": null}]});
    assert_eq!(
        status(&at(&mut world(cfg.clone()), NOW, get_with("/x", &[]))),
        200
    );
    assert_eq!(
        status(&at(&mut world(cfg), NOW, get_with("/admin", &[]))),
        401
    );
}

#[test]
fn invalid_rules_are_refused_naming_the_rule_and_field() {
    for (rules, field) in [
        (
            json!([{"match": {"paths": ["/a"]}, "issuer": "https://x"}]),
            "rules[0].issuer",
        ),
        (
            json!([{"match": {"paths": ["/x"]}}, {"match": {"paths": ["a"]}}]),
            "rules[1].match.paths",
        ),
        (json!([{"scopes_required": ["x"]}]), "rules[0].match"),
        (
            json!([{"match": {"paths": []}, "bypass": true}]),
            "rules[0].match.paths",
        ),
        (json!([{"match": {"route": ["x"]}}]), "rules[0].match.route"),
        (
            json!([{"match": {"paths": ["/x"]}, "leeway": 5}]),
            "rules[0].leeway",
        ),
        (
            json!([{"match": {"paths": ["/x"]}, "token_cache_size": 10}]),
            "rules[0].token_cache_size",
        ),
        (
            json!([{"match": {"paths": ["/x"]}, "scopes_required": [""]}]),
            "rules[0].scopes_required",
        ),
        (
            json!([{"match": {"paths": ["/x"]}, "bypass": "yes"}]),
            "rules[0].bypass",
        ),
        (
            json!([{"match": {"route_names": [""]}}]),
            "rules[0].match.route_names",
        ),
        (
            json!([{"match": {"hosts": ["example.*"]}}]),
            "rules[0].match.hosts",
        ),
        (
            json!([{"match": {"hosts": ["api.example.com:8443"]}}]),
            "rules[0].match.hosts",
        ),
        (json!([{"match": {"hosts": ["."]}}]), "rules[0].match.hosts"),
        (
            json!([{"match": {"hosts": ["*."]}}]),
            "rules[0].match.hosts",
        ),
        // A template's missing value: not "the default", which is laxer.
        (
            json!([{"match": {"paths": ["/x"]}, "audience_required": null}]),
            "rules[0].audience_required",
        ),
        (
            json!([{"match": {}, "auth_methods": null}]),
            "rules[0].auth_methods",
        ),
    ] {
        let e = envoy_oidc::config::Config::parse(
            crate::config(json!({ "rules": rules }))
                .to_string()
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.field, field, "{rules}: {e}");
    }
}

/// The identity headers (`upstream_*_header`) of a configuration that
/// names them all.
const IDENTITY_HEADERS: [&str; 5] = [
    "x-id-token",
    "x-userinfo",
    "x-introspection",
    "x-refresh-token",
    "x-session-id",
];

fn with_identity_headers(more: Value) -> Value {
    let mut c = json!({
        "upstream_id_token_header": "x-id-token",
        "upstream_user_info_header": "x-userinfo",
        "upstream_introspection_header": "x-introspection",
        "upstream_refresh_token_header": "x-refresh-token",
        "upstream_session_id_header": "x-session-id",
    });
    c.as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());
    c
}

#[test]
fn requests_passing_unauthenticated_carry_no_client_copies_of_identity_headers() {
    // A client's own `x-userinfo` (base64url of {"sub":"admin","groups":["admins"]})
    // must not reach an upstream that reads its user from it: not on a
    // bypass path, not on an anonymous pass.
    let forged = "eyJzdWIiOiJhZG1pbiIsImdyb3VwcyI6WyJhZG1pbnMiXX0";
    let sent: Vec<(&str, &str)> = IDENTITY_HEADERS.iter().map(|n| (*n, forged)).collect();
    for (what, cfg, path) in [
        ("bypass", json!({"bypass_paths": ["/health"]}), "/health"),
        ("anonymous", json!({"anonymous": "guest"}), "/x"),
    ] {
        let d = at(
            &mut world(with_identity_headers(cfg)),
            NOW,
            get_with(path, &sent),
        );
        let remove = removed(&d);
        for name in IDENTITY_HEADERS {
            assert!(
                remove.iter().any(|r| r == name),
                "{what}: {name} kept: {remove:?}"
            );
        }
    }
}

#[test]
fn lookalikes_of_identity_headers_never_reach_the_upstream() {
    let token = tokens::rs256(&claims_with(json!({})));
    let auth = format!("Bearer {token}");
    let sent = [
        ("authorization", auth.as_str()),
        ("x_userinfo", "forged"),
        ("X_Id_Token", "forged"),
    ];
    let d = at(
        &mut world(with_identity_headers(json!({}))),
        NOW,
        get_with("/x", &sent),
    );
    let remove = removed(&d);
    for name in ["x_userinfo", "X_Id_Token"] {
        assert!(remove.iter().any(|r| r == name), "{name} kept: {remove:?}");
    }
}

#[test]
fn an_anonymous_pass_forwards_no_credential_from_the_query_or_the_bearer_cookie() {
    let forged = format!("{}x", tokens::rs256(&claims_with(json!({"sub": "admin"}))));
    let cfg = json!({"anonymous": "guest", "bearer_token_param_type": ["header", "query", "cookie"],
                     "bearer_token_cookie_name": "at"});
    let set_of = |d: &Decision, name: &str| match &d.action {
        Action::Continue { set, .. } => set.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()),
        other => panic!("expected continue, got {other:?}"),
    };
    let path = format!("/x?page=2&access_token={forged}");
    let d = at(&mut world(cfg.clone()), NOW, get_with(&path, &[]));
    assert_eq!(set_of(&d, ":path").as_deref(), Some("/x?page=2"));
    let cookie = format!("at={forged}; other=1");
    let d = at(
        &mut world(cfg.clone()),
        NOW,
        get_with("/x", &[("cookie", &cookie)]),
    );
    assert_eq!(set_of(&d, "cookie").as_deref(), Some("other=1"));
    // A query without credentials is left as it is.
    let d = at(&mut world(cfg.clone()), NOW, get_with("/x?page=2", &[]));
    assert_eq!(set_of(&d, ":path"), None);
    // hide_credentials off: the client's own, as for its Authorization.
    let mut open = cfg;
    open["hide_credentials"] = json!(false);
    let d = at(&mut world(open), NOW, get_with(&path, &[]));
    assert_eq!(set_of(&d, ":path"), None);
}

#[test]
fn an_encoded_path_does_not_slip_past_a_rule_on_its_path_to_a_later_rule() {
    // Envoy's `prefix: /admin` route sends `/admin/users%2F` (kept encoded
    // by default) to the admin upstream: the catch-all after the `/admin`
    // rule must not be chosen in its place.
    let cfg = json!({"rules": [
        {"match": {"hosts": ["other.example"]}, "scopes_required": ["x"]},
        {"match": {"paths": ["/admin"]}, "groups_required": ["admins"]},
        {"match": {}, "scopes_required": ["read"]},
    ]});
    let auth = format!(
        "Bearer {}",
        tokens::rs256(&claims_with(json!({"scope": "read"})))
    );
    let decide = |path: &str, host: &str| {
        let req = get_with(path, &[("authorization", &auth), (":authority", host)]);
        at(&mut world(cfg.clone()), NOW, req)
    };
    for path in ["/admin/users%2F", "/admin%2Fusers", "/x/%2E%2E/admin/users"] {
        let d = decide(path, "api.example");
        assert_eq!(status(&d), 400, "{path}: {d:?}");
    }
    // The catch-all still serves plain paths; a rule chosen before any rule
    // on paths is chosen whatever the path's reading.
    assert!(is_continue(&decide("/orders", "api.example")));
    assert!(!is_continue(&decide("/admin/users", "api.example")));
    let d = decide("/admin/users%2F", "other.example");
    assert_eq!(status(&d), 403, "the host rule's scope check: {d:?}");
    // A rule on paths for another host (kong2wasm's shape: a rule per
    // route), or a bypass rule, cannot be met otherwise: not refused.
    let cfg = json!({"rules": [
        {"match": {"hosts": ["a.example"], "paths": ["/x"]}, "groups_required": ["admins"]},
        {"match": {"paths": ["/public"]}, "bypass": true},
        {"match": {"hosts": ["b.example"]}, "scopes_required": ["read"]},
    ]});
    let req = get_with(
        "/api/v4/projects/grp%2Fproj",
        &[("authorization", &auth), (":authority", "b.example")],
    );
    let d = at(&mut world(cfg.clone()), NOW, req);
    assert!(is_continue(&d), "{d:?}");
    let req = get_with(
        "/x/%2E%2E/admin",
        &[("authorization", &auth), (":authority", "a.example")],
    );
    assert_eq!(status(&at(&mut world(cfg), NOW, req)), 400);
}

#[test]
fn a_fully_qualified_host_meets_the_rule_on_its_host() {
    let cfg = json!({"rules": [{"match": {"hosts": ["admin.example.com", "*.corp.example"]},
                                "groups_required": ["admins"]}]});
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    for host in [
        "admin.example.com.",
        "ADMIN.example.com.:443",
        "x.corp.example.",
    ] {
        let req = get_with("/x", &[("authorization", &auth), (":authority", host)]);
        assert_eq!(
            status(&at(&mut world(cfg.clone()), NOW, req)),
            403,
            "{host}"
        );
    }
    // Configured with the dot, alike.
    let cfg = json!({"rules": [{"match": {"hosts": ["admin.example.com."]},
                                "groups_required": ["admins"]}]});
    for host in ["admin.example.com.", "admin.example.com"] {
        let req = get_with("/x", &[("authorization", &auth), (":authority", host)]);
        let d = at(&mut world(cfg.clone()), NOW, req);
        assert_eq!(status(&d), 403, "{host}");
    }
}

#[test]
fn a_path_that_is_not_utf8_is_refused_before_any_rule() {
    // HTTP/2 lets raw bytes above 0x7F through Envoy in `:path`; read as no
    // path, it would meet no rule on paths.
    let cfg = json!({"rules": [{"match": {"paths": ["/admin"]}, "groups_required": ["admins"]}]});
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    for cfg in [cfg, json!({})] {
        let req = RequestView::new(vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/admin/users?x=\xff".to_vec()),
            ("authorization".into(), auth.as_bytes().to_vec()),
        ]);
        let d = at(&mut world(cfg.clone()), NOW, req);
        assert_eq!(status(&d), 400, "{cfg}: {d:?}");
    }
}

#[test]
fn a_path_an_upstream_reads_as_another_does_not_reach_a_laxer_rule() {
    // kong2wasm's shape: a Kong route `/admin` with the plugin, and the
    // root route without it. nginx and Tomcat merge `//` and resolve `/./`;
    // Go, Spring and servlet containers decode `%61`: each of these is
    // their `/admin/users`.
    let cfg = json!({"rules": [
        {"match": {"paths": ["/admin*"]}, "groups_required": ["admins"]},
        {"match": {"paths": ["/"]}, "bypass": true}]});
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    for path in [
        "//admin/users",
        "/./admin/users",
        "/%61dmin/users",
        "/.//admin",
        "/%2561dmin",
        // Path parameters first (Tomcat), then the same readings.
        "/.;/admin/users",
        "/;/admin/users",
    ] {
        for headers in [vec![], vec![("authorization", auth.as_str())]] {
            let d = at(&mut world(cfg.clone()), NOW, get_with(path, &headers));
            assert!(!is_continue(&d), "{path} passed: {d:?}");
        }
    }
    // Paths read otherwise but choosing the same rule pass as before.
    for (path, passes) in [
        ("/about", true),
        ("/admin/users", false),
        ("/a%20b", true),
        ("/api/v1//users", true),
        ("/static/./app.js", true),
    ] {
        let d = at(&mut world(cfg.clone()), NOW, get_with(path, &[]));
        assert_eq!(is_continue(&d), passes, "{path}: {d:?}");
    }
    // And inside a bypass prefix such a path stays inside it.
    let d = at(
        &mut world(json!({"bypass_paths": ["/public"]})),
        NOW,
        get_with("/public//css/./app.css", &[]),
    );
    assert!(is_continue(&d), "{d:?}");
}

#[test]
fn a_path_parameter_does_not_slip_past_a_rule_on_its_path() {
    // Java servers serve `/admin;x/users` as `/admin/users`, and Envoy's
    // prefix route `/admin` matches it: the `/admin` rule must not be
    // skipped for the laxer top level.
    let cfg = json!({"rules": [{"match": {"paths": ["/admin"]}, "groups_required": ["admins"]}]});
    let auth = format!("Bearer {}", tokens::rs256(&claims_with(json!({}))));
    let decide = |path: &str| {
        at(
            &mut world(cfg.clone()),
            NOW,
            get_with(path, &[("authorization", &auth)]),
        )
    };
    for path in ["/admin/users", "/admin;x/users", "/admin;/users"] {
        assert!(!is_continue(&decide(path)), "{path} passed");
    }
    // Parameters that choose the same rule either way pass; so does an
    // encoded `;`, which Tomcat does not take for one.
    for path in [
        "/other",
        "/shop/item;color=red",
        "/admin/users;v=2",
        "/files/a%3Bb.txt",
    ] {
        let d = decide(path);
        let expected = !path.starts_with("/admin");
        assert_eq!(is_continue(&d), expected, "{path}: {d:?}");
    }
    // A bypass path keeps its parameters: they cannot lead out of its prefix.
    let d = at(
        &mut world(json!({"bypass_paths": ["/static"]})),
        NOW,
        get_with("/static/app.js;jsessionid=ABC", &[]),
    );
    assert!(is_continue(&d), "{d:?}");
}
