//! `Authorization: Basic id:secret`: the client credentials exchange, its
//! cache and negative cache, token endpoint failures, and the exchange
//! shared by the workers of one Envoy.

use envoy_oidc::action::{Action, IdpReply, IdpRequest};
use envoy_oidc::error::TokenError;
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use envoy_oidc::store::SharedStore;
use envoy_oidc_testkit::tokens::ISSUER;
use envoy_oidc_testkit::world::{Outcome, World};
use serde_json::{Value, json};

use crate::{
    NOW, TokenAnswer, assert_invalid, at, config, continued_with_bearer, header_of, healthy,
    issue_token, request, response, scripted, token_calls, world, world_with,
};

fn basic(id: &str, secret: &str) -> RequestView {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    request(&[&format!("Basic {b64}")])
}

fn cc_config() -> Value {
    json!({"scopes": ["kongresource/scope1"], "scopes_required": ["kongresource/scope1"],
           "audience_claim": ["client_id"]})
}

#[test]
fn basic_credentials_are_exchanged_once_and_the_token_forwarded() {
    let mut w = world(cc_config());
    let req = basic("client-1", "s3cret");
    let first = continued_with_bearer(&at(&mut w, NOW, req.clone()));
    assert_eq!(token_calls(&w).len(), 1);
    let call = token_calls(&w)[0].clone();
    assert_eq!(header_of(&call, ":method"), Some("POST"));
    assert_eq!(header_of(&call, ":path"), Some("/oauth2/token"));
    assert_eq!(header_of(&call, ":authority"), Some("auth.example.com"));
    assert_eq!(
        header_of(&call, "authorization"),
        Some("Basic Y2xpZW50LTE6czNjcmV0")
    );
    assert_eq!(
        call.body.as_deref(),
        Some(&b"grant_type=client_credentials&scope=kongresource%2Fscope1"[..])
    );
    // Cached: the same token, no new call, even much later in its life.
    for t in [NOW + 1, NOW + 3000] {
        assert_eq!(continued_with_bearer(&at(&mut w, t, req.clone())), first);
    }
    assert_eq!(token_calls(&w).len(), 1);
    // Past the refresh margin (a minute before expiry): one new exchange.
    let refreshed = continued_with_bearer(&at(&mut w, NOW + 3550, req));
    assert_eq!(token_calls(&w).len(), 2);
    assert_ne!(refreshed, first);
}

/// The `x-iat` header a forwarded request carries (the token's `iat`).
fn iat_upstream(d: &envoy_oidc::action::Decision) -> String {
    match &d.action {
        envoy_oidc::action::Action::Continue { set, .. } => set
            .iter()
            .find(|(n, _)| n == "x-iat")
            .map(|(_, v)| v.clone())
            .expect("an x-iat header upstream"),
        other => panic!("expected continue, got {other:?}"),
    }
}

#[test]
fn a_new_exchange_brings_its_own_claims_not_the_old_tokens() {
    // Each worker keeps a cached token's claims once verified; a token
    // from a new exchange must be read for itself.
    let mut cfg = cc_config();
    cfg["upstream_headers_claims"] = json!(["iat"]);
    cfg["upstream_headers_names"] = json!(["x-iat"]);
    let mut w = world(cfg);
    let req = basic("client-1", "s3cret");
    for t in [NOW, NOW + 1, NOW + 3000] {
        assert_eq!(iat_upstream(&at(&mut w, t, req.clone())), NOW.to_string());
    }
    // Past the refresh margin: a new token, issued (and `iat`) now.
    let d = at(&mut w, NOW + 3550, req.clone());
    assert_eq!(token_calls(&w).len(), 2);
    assert_eq!(iat_upstream(&d), (NOW + 3550).to_string());
    assert_eq!(
        iat_upstream(&at(&mut w, NOW + 3551, req)),
        (NOW + 3550).to_string()
    );
}

#[test]
fn an_empty_scope_list_sends_no_scope() {
    let mut w = world(json!({"scopes": []}));
    continued_with_bearer(&at(&mut w, NOW, basic("client-1", "s3cret")));
    let call = token_calls(&w)[0].clone();
    assert_eq!(
        call.body.as_deref(),
        Some(&b"grant_type=client_credentials"[..])
    );
}

#[test]
fn default_scopes_are_not_sent_and_post_auth_is_used_when_advertised() {
    let mut w = world_with(
        json!({}),
        |d| match d {
            Document::Discovery => IdpReply {
                status: Some(200),
                retry_after: None,
                body: json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks"),
                             "token_endpoint": format!("{ISSUER}/token"),
                             "token_endpoint_auth_methods_supported": ["client_secret_post"]})
                .to_string()
                .into_bytes(),
            },
            Document::Jwks => healthy(d),
        },
        issue_token,
    );
    continued_with_bearer(&at(&mut w, NOW, basic("c 1", "p&q")));
    let call = token_calls(&w)[0].clone();
    assert_eq!(header_of(&call, "authorization"), None);
    assert_eq!(
        call.body.as_deref(),
        Some(&b"grant_type=client_credentials&client_id=c+1&client_secret=p%26q"[..])
    );
}

#[test]
fn a_token_obtained_without_a_scope_is_not_served_where_a_scope_is_sent() {
    // No `scopes` at the top (none sent: the IdP's defaults); a rule sends
    // `openid`, the value the top level's scope string has by default.
    let cfg = json!({"rules": [{"match": {"paths": ["/scoped"]}, "scopes": ["openid"]}]});
    let mut w = world_with(cfg, healthy, issue_token);
    let top = basic("client-1", "s");
    continued_with_bearer(&at(&mut w, NOW, top.clone()));
    let scoped = RequestView::new(vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/scoped/x".to_vec()),
        (
            "authorization".to_string(),
            top.get("authorization").unwrap().as_bytes().to_vec(),
        ),
    ]);
    continued_with_bearer(&at(&mut w, NOW, scoped));
    let bodies: Vec<String> = token_calls(&w)
        .iter()
        .map(|c| String::from_utf8(c.body.clone().unwrap_or_default()).unwrap())
        .collect();
    assert_eq!(bodies.len(), 2, "two token requests: {bodies:?}");
    assert!(
        !bodies[0].contains("scope=") && bodies[1].contains("scope=openid"),
        "{bodies:?}"
    );
}

#[test]
fn rejected_credentials_are_401_and_remembered_briefly() {
    let mut w = world_with(cc_config(), healthy, |_, _| IdpReply {
        status: Some(400),
        retry_after: None,
        body: br#"{"error":"invalid_client"}"#.to_vec(),
    });
    let req = basic("client-1", "wrong");
    assert_invalid(&at(&mut w, NOW, req.clone()), TokenError::Rejected);
    assert_invalid(&at(&mut w, NOW + 4, req.clone()), TokenError::Rejected);
    assert_eq!(token_calls(&w).len(), 1, "negative cache spares the IdP");
    assert_invalid(&at(&mut w, NOW + 6, req), TokenError::Rejected);
    assert_eq!(token_calls(&w).len(), 2);
}

#[test]
fn malformed_basic_is_refused_without_any_idp_call() {
    // "client-1:" has no secret: an exchange for it would carry no client
    // authentication, and with `tls_client_auth` the cluster's certificate
    // (the gateway's) would authenticate it, so the configuration below.
    let mut cfg = cc_config();
    cfg["client_id"] = json!("client-1");
    cfg["client_auth"] = json!("tls_client_auth");
    for value in [
        "Basic !!!",
        "Basic bm9jb2xvbg==",
        "Basic OnNlY3JldA==",
        "Basic Y2xpZW50LTE6",
        "Basic",
    ] {
        let mut w = world(cfg.clone());
        let d = at(&mut w, NOW, request(&[value]));
        assert_invalid(&d, TokenError::Malformed("malformed basic credentials"));
        assert!(w.calls.is_empty(), "{value}: {} IdP calls", w.calls.len());
    }
}

#[test]
fn token_endpoint_failures_map_to_503_and_502() {
    let cases: [(TokenAnswer, u32); 4] = [
        (
            |_, _| IdpReply {
                status: None,
                body: vec![],
                retry_after: None,
            },
            503,
        ),
        (
            |_, _| IdpReply {
                status: Some(504),
                body: vec![],
                retry_after: None,
            },
            503,
        ),
        (
            |_, _| IdpReply {
                status: Some(500),
                body: vec![],
                retry_after: None,
            },
            502,
        ),
        (
            |_, _| IdpReply {
                status: Some(200),
                retry_after: None,
                body: b"{\"access_token\":".to_vec(),
            },
            502,
        ),
    ];
    for (answer, status) in cases {
        let mut w = world_with(cc_config(), healthy, answer);
        let d = at(&mut w, NOW, basic("client-1", "s"));
        assert_eq!(response(&d).status, status);
    }
}

#[test]
fn a_failed_refresh_keeps_serving_the_valid_token() {
    let mut w = world(cc_config());
    let req = basic("client-1", "s");
    let first = continued_with_bearer(&at(&mut w, NOW, req.clone()));
    w.idp = Box::new(scripted(healthy, |_, _| IdpReply {
        status: Some(503),
        body: vec![],
        retry_after: None,
    }));
    assert_eq!(continued_with_bearer(&at(&mut w, NOW + 3550, req)), first);
    assert_eq!(token_calls(&w).len(), 2);
}

#[test]
fn callers_cannot_name_the_gateways_certificate_bound_client() {
    // The cluster presents the gateway's certificate on callers' exchanges
    // too; Keycloak's X.509 client authenticator reads no secret.
    // The certificate is the IdP cluster's: for every endpoint there once
    // any uses it. Named as an IdP's database may match the name.
    for auth in [
        json!({"client_auth": "tls_client_auth"}),
        json!({"client_auth": "client_secret_basic",
               "introspection_endpoint_auth_method": "tls_client_auth"}),
    ] {
        let mut cfg = cc_config();
        cfg["client_id"] = json!("client-1");
        cfg["client_secret"] = json!("the-gateways");
        cfg.as_object_mut()
            .unwrap()
            .extend(auth.as_object().unwrap().clone());
        let mut w = world(cfg);
        for id in ["client-1", "CLIENT-1", " client-1 "] {
            let d = at(&mut w, NOW, basic(id, "anything"));
            assert_eq!(response(&d).status, 401, "{auth} {id:?}");
        }
        assert!(token_calls(&w).is_empty());
    }
    let mut cfg = cc_config();
    cfg["client_id"] = json!("client-1");
    cfg["client_auth"] = json!("tls_client_auth");
    let mut w = world(cfg);
    // Other clients exchange their own credentials as before.
    continued_with_bearer(&at(&mut w, NOW, basic("client-2", "s")));
    assert_eq!(token_calls(&w).len(), 1);
}

#[test]
fn over_the_budget_a_still_valid_token_serves_on() {
    let mut cfg = cc_config();
    cfg["idp_call_budget"] = json!({"client_credentials": {"per_second": 1, "burst": 1}});
    let mut w = world(cfg);
    let req = basic("client-1", "s");
    let first = continued_with_bearer(&at(&mut w, NOW, req.clone()));
    // Another client spends this second's budget at refresh time.
    continued_with_bearer(&at(&mut w, NOW + 3550, basic("client-2", "s")));
    assert_eq!(token_calls(&w).len(), 2);
    // Due for refresh, not refreshed: the valid token serves on.
    assert_eq!(
        continued_with_bearer(&at(&mut w, NOW + 3550, req.clone())),
        first
    );
    assert_eq!(token_calls(&w).len(), 2);
    // The next second, refreshed.
    assert_ne!(continued_with_bearer(&at(&mut w, NOW + 3551, req)), first);
    assert_eq!(token_calls(&w).len(), 3);
}

#[test]
fn a_token_that_expires_at_once_is_a_502_made_once() {
    // `expires_in: 0` (or an `exp` already past): cached until now, the
    // waiting request would miss it and exchange again, and again.
    let mut w = world_with(cc_config(), healthy, |_, now| {
        let token =
            envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(now));
        IdpReply {
            status: Some(200),
            retry_after: None,
            body: json!({"access_token": token, "token_type": "Bearer", "expires_in": 0})
                .to_string()
                .into_bytes(),
        }
    });
    let req = basic("client-1", "s");
    assert_eq!(response(&at(&mut w, NOW, req.clone())).status, 502);
    assert_eq!(token_calls(&w).len(), 1);
    // Remembered briefly, as a refusal is.
    assert_eq!(response(&at(&mut w, NOW + 1, req)).status, 502);
    assert_eq!(token_calls(&w).len(), 1);
}

#[test]
fn a_refused_refresh_stops_serving_the_token() {
    // The client's secret was revoked (or the client disabled) since the
    // first exchange: its token is not served on to the end of its life.
    let mut w = world(cc_config());
    let req = basic("client-1", "s");
    continued_with_bearer(&at(&mut w, NOW, req.clone()));
    w.idp = Box::new(scripted(healthy, |_, _| IdpReply {
        status: Some(401),
        body: br#"{"error":"invalid_client"}"#.to_vec(),
        retry_after: None,
    }));
    assert_invalid(&at(&mut w, NOW + 3550, req.clone()), TokenError::Rejected);
    assert_invalid(&at(&mut w, NOW + 3552, req.clone()), TokenError::Rejected);
    assert_eq!(token_calls(&w).len(), 2, "the refusal is remembered");
    // Nor from the shared slot once that is over: asked again, refused.
    assert_invalid(&at(&mut w, NOW + 3556, req), TokenError::Rejected);
    assert_eq!(token_calls(&w).len(), 3);
}

#[test]
fn two_workers_share_one_exchange() {
    let mut w = World::new(&config(cc_config()), 2, NOW, scripted(healthy, issue_token));
    // Worker 0 started first: its salt and session key are everyone's.
    let parsed = envoy_oidc::config::Config::parse(config(cc_config()).to_string().as_bytes());
    let parsed = parsed.unwrap().config;
    let session_key = envoy_oidc::flow::fallback_session_key_name(&parsed);
    let salt = format!("{}salt", envoy_oidc::flow::idp_prefix(&parsed));
    for name in [&salt, &session_key] {
        assert_eq!(
            w.store.get(name).map(|(v, _)| v),
            Some(vec![1; 32]),
            "the first worker's values win: {name}"
        );
    }
    // Both workers know the IdP already.
    let token = envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(NOW));
    for worker in 0..2 {
        let d = w.request(worker, request(&[&format!("Bearer {token}")]));
        assert!(crate::is_continue(&d), "worker {worker}: {d:?}");
    }
    let fetched = w.calls.len();
    let req = basic("client-1", "s");
    let a = w.send(0, req.clone());
    assert_eq!(token_calls(&w).len(), 1, "worker A exchanges");
    let b = w.send(1, req);
    assert_eq!(
        (w.outcome(1, b), token_calls(&w).len()),
        (&Outcome::Paused, 1),
        "worker B waits for A's exchange"
    );
    assert!(w.answer_next());
    let from_a = continued_with_bearer(w.decision(0, a));
    assert_eq!(*w.outcome(1, b), Outcome::Paused, "until its tick");
    w.tick(1);
    let from_b = continued_with_bearer(w.decision(1, b));
    assert_eq!(from_b, from_a, "worker B finds A's token");
    assert_eq!(w.calls.len(), fetched + 1, "one exchange in all");
}

#[test]
fn configurations_of_one_issuer_share_a_callers_token() {
    // An edited configuration (another prefix: here a bypass path added)
    // forwards the token the first obtained, with no exchange of its own.
    // Before, every edit had each machine client exchange again.
    let mut w = World::new(&config(cc_config()), 0, NOW, scripted(healthy, issue_token));
    let a = w.start_configured(&config(cc_config()), "A/", [7; 72]);
    let mut edited = cc_config();
    edited["bypass_paths"] = json!(["/health"]);
    let b = w.start_configured(&config(edited), "B/", [8; 72]);
    let req = basic("client-1", "s");
    let token = continued_with_bearer(&w.request(a, req.clone()));
    let d = w.request(b, req.clone());
    assert_eq!(continued_with_bearer(&d), token);
    assert_eq!(token_calls(&w).len(), 1, "one exchange for both");
    // Each judges the token by its own policy: one requiring a scope the
    // token lacks refuses it.
    let mut stricter = cc_config();
    stricter["scopes_required"] = json!(["kongresource/scope2"]);
    let c = w.start_configured(&config(stricter), "C/", [9; 72]);
    let refused = w.request(c, req);
    assert_eq!(response(&refused).status, 403, "{refused:?}");
    assert_eq!(token_calls(&w).len(), 1);
}

#[test]
fn a_token_read_from_the_shared_slot_under_a_rule_is_judged_by_the_top_level_after() {
    // Worker 0 exchanges under the top level. Worker 1 first reads the
    // token from the shared slot under a rule whose audience it does not
    // meet (403 there); the top level's requests on worker 1 must still
    // verify it as the top level's token, not take the rule's judgment.
    let mut cfg = cc_config();
    cfg["audience_required"] = json!(["client-1"]);
    cfg["upstream_headers_claims"] = json!(["sub"]);
    cfg["upstream_headers_names"] = json!(["x-sub"]);
    cfg["rules"] =
        json!([{"match": {"paths": ["/partner"]}, "audience_required": ["some-other-api"]}]);
    let mut w = World::new(&config(cfg), 2, NOW, scripted(healthy, issue_token));
    let top = basic("client-1", "s");
    let token = continued_with_bearer(&w.request(0, top.clone()));
    let partner = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/partner/x".to_vec()),
        (
            "authorization".into(),
            top.get("authorization").unwrap().into(),
        ),
    ]);
    let d = w.request(1, partner);
    assert_eq!(
        response(&d).status,
        403,
        "not for the rule's audience: {d:?}"
    );
    let d = w.request(1, top);
    assert_eq!(continued_with_bearer(&d), token);
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    let sub = set.iter().find(|(n, _)| n == "x-sub");
    assert_eq!(
        sub.map(|(_, v)| v.as_str()),
        Some("client-1"),
        "verified: {d:?}"
    );
    assert_eq!(token_calls(&w).len(), 1);
}

#[test]
fn shared_keys_stay_bounded_for_many_clients() {
    // One token for everyone: this test is about keys, not signatures.
    let mut one: Option<IdpReply> = None;
    let idp = move |r: &IdpRequest, now: u64| match crate::document(r) {
        Some(d) => healthy(d),
        None => one.get_or_insert_with(|| issue_token(r, now)).clone(),
    };
    // 3000 exchanges in one second: far beyond the default budget.
    let mut cfg = cc_config();
    cfg["idp_call_budget"] = json!({"client_credentials": {"per_second": 10000, "burst": 10000}});
    let cfg = config(cfg);
    let prefix = envoy_oidc::flow::idp_prefix(&envoy_oidc_testkit::world::config(&cfg));
    let mut w = World::new(&cfg, 1, NOW, idp);
    continued_with_bearer(&at(&mut w, NOW, basic("client-0", "s")));
    let cc = |k: &str| {
        k.strip_prefix(prefix.as_str())
            .is_some_and(|k| k.starts_with("cc/") || k.starts_with("cc-lease/"))
    };
    // The keys every configuration has, whatever its clients.
    let fixed = w.store.keys().filter(|k| !cc(k)).count();
    for i in 1..3000 {
        continued_with_bearer(&at(&mut w, NOW, basic(&format!("client-{i}"), "s")));
    }
    assert_eq!(token_calls(&w).len(), 3000);
    // Token slots and leases: a fixed set, whatever the number of clients.
    let clients = w.store.keys().filter(|k| cc(k)).count();
    assert!(clients <= 1024 + 64, "{clients} shared keys");
    assert_eq!(
        w.store.len(),
        fixed + clients,
        "no other key grows with the clients"
    );
}

/// A token of 100 s, then a token endpoint that asks for 300 s of quiet.
fn throttled_after_the_first(_: &IdpRequest, now: u64) -> IdpReply {
    if now < NOW + 50 {
        let token =
            envoy_oidc_testkit::tokens::rs256(&envoy_oidc_testkit::tokens::access_claims(now));
        let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 100});
        return IdpReply {
            status: Some(200),
            body: body.to_string().into_bytes(),
            retry_after: None,
        };
    }
    IdpReply {
        status: Some(429),
        body: br#"{"error":"slow_down"}"#.to_vec(),
        retry_after: Some(300),
    }
}

#[test]
fn a_throttled_refresh_never_serves_the_token_past_its_expiry() {
    let mut w = world_with(cc_config(), healthy, throttled_after_the_first);
    let req = basic("client-1", "s3cret");
    let token = continued_with_bearer(&at(&mut w, NOW, req.clone()));
    // Due at NOW + 75: throttled, the token serves on while it is valid.
    assert_eq!(
        continued_with_bearer(&at(&mut w, NOW + 80, req.clone())),
        token
    );
    assert_eq!(token_calls(&w).len(), 2);
    // Expired at NOW + 100, whatever the IdP's Retry-After says: the IdP
    // cannot answer (503), never an expired token upstream, never a 401.
    let d = at(&mut w, NOW + 150, req.clone());
    assert_eq!(response(&d).status, 503, "{d:?}");
}

#[test]
fn a_rule_with_its_own_audience_judges_the_obtained_token_by_it() {
    // The token is for `client-1` (its client_id): not for the top level's
    // audience, but for the rule's, which then verifies and passes it.
    let mut cfg = cc_config();
    cfg["audience_required"] = json!(["some-other-api"]);
    cfg["rules"] = json!([{"match": {"paths": ["/oidcroute"]}, "audience_required": ["client-1"]}]);
    let mut w = world(cfg);
    let token = continued_with_bearer(&at(&mut w, NOW, basic("client-1", "s3cret")));
    // Again from the cache: judged by the rule each time.
    assert_eq!(
        continued_with_bearer(&at(&mut w, NOW + 1, basic("client-1", "s3cret"))),
        token
    );
    assert_eq!(token_calls(&w).len(), 1);
    // Under the top level (no rule), the same credentials' token is not for
    // its audience: 403.
    let mut top = cc_config();
    top["audience_required"] = json!(["some-other-api"]);
    let d = at(&mut world(top), NOW, basic("client-1", "s3cret"));
    assert_eq!(response(&d).status, 403, "{d:?}");
}
