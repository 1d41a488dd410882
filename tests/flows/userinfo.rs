//! `search_user_info`: the userinfo endpoint's claims join the token's for
//! the policy and the upstream headers, cached per token.

use envoy_oidc::action::{Action, IdpReply, IdpRequest};
use envoy_oidc::error::TokenError;
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::tokens::{self, ISSUER};
use serde_json::json;

use crate::{
    NOW, assert_invalid, at, header_of, healthy, request, response, token_calls, world, world_with,
};

fn discovery_with_userinfo(d: Document) -> IdpReply {
    match d {
        Document::Discovery => IdpReply {
            status: Some(200),
            retry_after: None,
            body: json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks"),
                         "userinfo_endpoint": format!("{ISSUER}/userinfo")})
            .to_string()
            .into_bytes(),
        },
        Document::Jwks => healthy(d),
    }
}

fn userinfo_answer(r: &IdpRequest, _now: u64) -> IdpReply {
    assert_eq!(header_of(r, ":path"), Some("/pool/userinfo"));
    assert!(header_of(r, "authorization").is_some_and(|a| a.starts_with("Bearer ey")));
    let body = json!({"sub": "someone-else", "groups": ["admins"], "email": "a@example.com"});
    IdpReply {
        status: Some(200),
        body: body.to_string().into_bytes(),
        retry_after: None,
    }
}

#[test]
fn userinfo_claims_feed_policy_and_headers_and_are_cached() {
    let cfg = json!({
        "search_user_info": true, "groups_required": ["admins"],
        "upstream_headers_claims": ["email", "sub"], "upstream_headers_names": ["x-email", "x-sub"],
    });
    let mut w = world_with(cfg, discovery_with_userinfo, userinfo_answer);
    let req = request(&[&format!(
        "Bearer {}",
        tokens::rs256(&tokens::access_claims(NOW))
    )]);
    let d = at(&mut w, NOW, req.clone());
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert!(set.contains(&("x-email".to_string(), "a@example.com".to_string())));
    assert!(
        set.contains(&("x-sub".to_string(), "client-1".to_string())),
        "the token's claims win"
    );
    assert!(crate::is_continue(&at(&mut w, NOW + 1, req.clone())));
    assert_eq!(token_calls(&w).len(), 1, "cached");
    // Without userinfo the same token lacks the group.
    let mut w = world(json!({"groups_required": ["admins"]}));
    assert_eq!(response(&at(&mut w, NOW, req)).status, 403);
}

#[test]
fn a_token_userinfo_refuses_is_401() {
    // 400 is RFC 6750's `invalid_request`: for a plain GET with the
    // token, the token is what is malformed.
    let answers: [(u16, crate::TokenAnswer); 3] = [
        (400, |_, _| refusal_of(400)),
        (401, |_, _| refusal_of(401)),
        (403, |_, _| refusal_of(403)),
    ];
    for (status, answer) in answers {
        let mut w = world_with(
            json!({"search_user_info": true}),
            discovery_with_userinfo,
            answer,
        );
        let req = request(&[&format!(
            "Bearer {}",
            tokens::rs256(&tokens::access_claims(NOW))
        )]);
        assert_invalid(&at(&mut w, NOW, req.clone()), TokenError::Rejected);
        // Remembered as the token's refusal, not asked again each second.
        assert_invalid(&at(&mut w, NOW + 2, req), TokenError::Rejected);
        assert_eq!(token_calls(&w).len(), 1, "the userinfo call ({status})");
    }
}

fn refusal_of(status: u16) -> IdpReply {
    IdpReply {
        status: Some(status),
        body: vec![],
        retry_after: None,
    }
}

/// A userinfo endpoint that knows two opaque tokens (one shaped like
/// Google's service-account tokens: three dot-separated parts).
fn userinfo_for_opaque(r: &IdpRequest, _now: u64) -> IdpReply {
    let known = matches!(
        header_of(r, "authorization"),
        Some("Bearer opaque-user-token" | "Bearer ya29.c.b0AXv0zTt8")
    );
    IdpReply {
        status: Some(if known { 200 } else { 401 }),
        body: json!({"sub": "alice", "groups": ["admins"]})
            .to_string()
            .into_bytes(),
        retry_after: None,
    }
}

#[test]
fn auth_method_userinfo_accepts_an_opaque_token_the_idp_knows() {
    let cfg = json!({"auth_methods": ["userinfo"], "groups_required": ["admins"],
                     "upstream_headers_claims": ["sub"], "upstream_headers_names": ["x-sub"]});
    let mut w = world_with(cfg, discovery_with_userinfo, userinfo_for_opaque);
    let good = request(&["Bearer opaque-user-token"]);
    for t in [NOW, NOW + 1] {
        let d = at(&mut w, t, good.clone());
        let Action::Continue { set, .. } = &d.action else {
            panic!("{d:?}")
        };
        assert!(set.contains(&("x-sub".to_string(), "alice".to_string())));
    }
    assert_eq!(token_calls(&w).len(), 1, "cached per token");
    let d = at(&mut w, NOW, request(&["Bearer someone-elses-token"]));
    assert_invalid(&d, TokenError::Rejected);
    // Three parts, but no JWS (whose header, JSON, starts `e` encoded).
    let d = at(&mut w, NOW, request(&["Bearer ya29.c.b0AXv0zTt8"]));
    assert!(crate::is_continue(&d), "{d:?}");
    // Without `bearer`, a JWT is asked about too (Entra ID's tokens for
    // Microsoft Graph only Graph's userinfo can check), as Kong does.
    let calls = token_calls(&w).len();
    let jwt = tokens::rs256(&tokens::access_claims(NOW));
    let d = at(&mut w, NOW, request(&[&format!("Bearer {jwt}")]));
    assert_invalid(&d, TokenError::Rejected);
    assert_eq!(token_calls(&w).len(), calls + 1, "asked at userinfo");
}

#[test]
fn userinfo_validates_tokens_only_when_listed() {
    // The default methods include introspection (a client is configured),
    // never userinfo: an opaque token is introspected.
    let cfg = json!({"client_id": "gw", "client_secret": "s"});
    let mut w = world_with(cfg, discovery_with_userinfo, userinfo_for_opaque);
    at(&mut w, NOW, request(&["Bearer opaque-user-token"]));
    assert!(
        token_calls(&w).iter().all(|r| !header_of(r, ":path")
            .unwrap_or_default()
            .ends_with("/userinfo")),
        "userinfo is not called"
    );
    // Without introspection or userinfo, an opaque token is malformed.
    let mut w = world_with(json!({}), discovery_with_userinfo, userinfo_for_opaque);
    let d = at(&mut w, NOW, request(&["Bearer opaque-user-token"]));
    assert_eq!(response(&d).status, 401);
    assert!(token_calls(&w).is_empty());
}

#[test]
fn userinfo_goes_upstream_as_json_in_base64() {
    use base64::Engine;
    let cfg = json!({"search_user_info": true, "upstream_user_info_header": "x-userinfo"});
    let mut w = world_with(cfg, discovery_with_userinfo, userinfo_answer);
    let req = request(&[&format!(
        "Bearer {}",
        tokens::rs256(&tokens::access_claims(NOW))
    )]);
    let d = at(&mut w, NOW, req);
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    let v = &set
        .iter()
        .find(|(n, _)| n == "x-userinfo")
        .expect("x-userinfo")
        .1;
    let json: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::STANDARD.decode(v).unwrap())
            .unwrap();
    assert_eq!(json["email"], "a@example.com");
}

/// A userinfo endpoint that knows one long opaque token (`KNOWN`).
const KNOWN: &str =
    "known-prefix.0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz";

fn userinfo_for_known(r: &IdpRequest, _now: u64) -> IdpReply {
    let known = header_of(r, "authorization") == Some(&format!("Bearer {KNOWN}"));
    IdpReply {
        status: Some(if known { 200 } else { 401 }),
        body: json!({"sub": "alice", "email": "alice@example.com"})
            .to_string()
            .into_bytes(),
        retry_after: None,
    }
}

#[test]
fn a_token_ending_like_an_answered_one_gets_its_own_answer() {
    // The answers are found by the tokens' last 64 bytes first: a token
    // that shares them with one answered before is still its own.
    let cfg = json!({"auth_methods": ["userinfo"], "upstream_user_info_header": "x-userinfo"});
    let mut w = world_with(cfg, discovery_with_userinfo, userinfo_for_known);
    let lookalike = format!("other-prefix.{}", &KNOWN[KNOWN.len() - 64..]);
    assert!(lookalike.ends_with(&KNOWN[KNOWN.len() - 64..]) && lookalike != KNOWN);
    let known = request(&[&format!("Bearer {KNOWN}")]);
    let other = request(&[&format!("Bearer {lookalike}")]);
    let mut forwarded = Vec::new();
    for t in [NOW, NOW + 1, NOW + 2] {
        let d = at(&mut w, t, known.clone());
        let Action::Continue { set, .. } = &d.action else {
            panic!("{d:?}")
        };
        forwarded.push(set.iter().find(|(n, _)| n == "x-userinfo").cloned());
        assert_invalid(&at(&mut w, t, other.clone()), TokenError::Rejected);
    }
    assert!(forwarded[0].is_some() && forwarded.iter().all(|f| *f == forwarded[0]));
    assert_eq!(token_calls(&w).len(), 2, "one call per token, then cached");
}

#[test]
fn a_query_token_with_control_characters_is_refused_before_any_call() {
    // Percent-decoded from the query, CR and LF would go into the userinfo
    // call's `authorization` and the upstream's token header.
    let cfg = json!({"auth_methods": ["userinfo"], "bearer_token_param_type": ["query"]});
    let mut w = world_with(cfg, discovery_with_userinfo, userinfo_for_opaque);
    let injected = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (
            ":path".into(),
            b"/x?access_token=opaque-user-token%0D%0Ax-userinfo:%20eyJzdWIiOiJhZG1pbiJ9".to_vec(),
        ),
    ]);
    let d = at(&mut w, NOW, injected);
    assert_invalid(
        &d,
        TokenError::Malformed("token has characters a token cannot have"),
    );
    assert!(token_calls(&w).is_empty());
    // The same token without them is called for and passes.
    let plain = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (
            ":path".into(),
            b"/x?access_token=opaque-user-token".to_vec(),
        ),
    ]);
    assert!(crate::is_continue(&at(&mut w, NOW, plain)));
}
