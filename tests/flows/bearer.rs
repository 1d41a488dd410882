//! `Authorization: Bearer <JWT>`: discovery and JWKS on first use, the
//! verified-token cache, every refusal with its reason, IdP failures, key
//! rotation, several issuers.

use envoy_oidc::action::{Action, IdpReply, IdpRequest};
use envoy_oidc::error::TokenError;
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::tokens;
use envoy_oidc_testkit::world::header;
use serde_json::{Value, json};

use crate::{
    Answer, NOW, assert_invalid, at, bearer, claims_with, config, continued_with_bearer, fetches,
    healthy, is_continue, issue_token, request, response, scripted, world, world_with,
};

#[test]
fn valid_token_goes_upstream_as_bearer_after_one_discovery_and_one_jwks() {
    let cfg = json!({"scopes_required": ["kongresource/scope1"], "audience_claim": ["client_id"], "audience_required": ["client-1"]});
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let (d, w) = bearer(cfg.clone(), &token);
    assert_eq!(fetches(&w), vec![Document::Discovery, Document::Jwks]);
    assert_eq!(w.calls.len(), 2, "no other IdP call");
    // The request already carries `Authorization: Bearer <token>`: it goes
    // upstream as it came, without a rewrite.
    assert_eq!(
        d.action,
        Action::Continue {
            set: vec![],
            remove: vec![],
            response: vec![],
            state: vec![],
        }
    );
    // Any other spelling of the same token is rewritten to the canonical one.
    for sent in [format!("bearer {token}"), format!("Bearer  {token} ")] {
        let d = at(&mut world(cfg.clone()), NOW, request(&[&sent]));
        assert_eq!(continued_with_bearer(&d), token, "{sent}");
    }
}

#[test]
fn every_supported_algorithm_verifies() {
    for (alg, kid) in [
        ("RS256", "test-rsa"),
        ("RS512", "test-rsa"),
        ("ES256", "test-ec"),
        ("EdDSA", "test-ed"),
    ] {
        let token = tokens::sign(
            &json!({"alg": alg, "kid": kid}),
            &tokens::access_claims(NOW),
        );
        let (d, _) = bearer(json!({}), &token);
        assert!(is_continue(&d), "{alg}: {d:?}");
    }
}

#[test]
fn repeated_token_is_verified_once_and_policy_still_runs() {
    let mut w = world(json!({}));
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let req = request(&[&format!("Bearer {token}")]);
    for _ in 0..3 {
        assert!(is_continue(&at(&mut w, NOW, req.clone())));
    }
    assert_eq!(w.calls.len(), 2, "no fetch after the first request");
    assert_eq!(w.workers[0].engine.core().verified_len(), 1);
    // The cached token still expires: the clock moves past exp.
    assert_invalid(&at(&mut w, NOW + 3600, req), TokenError::Expired);
}

#[test]
fn a_cached_tokens_signature_on_other_claims_is_refused() {
    // The cache is keyed by the end of the token (its signature): a token
    // with the same signature and other claims lands on the cached entry
    // and must still be verified, and refused.
    let mut w = world(json!({}));
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let good = request(&[&format!("Bearer {token}")]);
    assert!(is_continue(&at(&mut w, NOW, good.clone())));
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut claims = tokens::access_claims(NOW);
    claims["sub"] = json!("admin");
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    parts[1] = &forged_claims;
    let forged = parts.join(".");
    assert_ne!(forged, token);
    assert_invalid(
        &at(&mut w, NOW, request(&[&format!("Bearer {forged}")])),
        TokenError::BadSignature,
    );
    // The genuine token is still served from the cache.
    assert!(is_continue(&at(&mut w, NOW, good)));
    assert_eq!(w.workers[0].engine.core().verified_len(), 1);
}

#[test]
fn no_credentials_is_a_challenge_without_error() {
    let mut w = world(json!({}));
    let d = at(&mut w, NOW, request(&[]));
    let r = response(&d);
    assert_eq!(
        (r.status, crate::header(r, "www-authenticate")),
        (401, "Bearer realm=\"idp.example.com\"")
    );
    assert!(
        w.calls.is_empty(),
        "no IdP call for a request without credentials"
    );
}

#[test]
fn rejects_each_bad_token_with_its_reason() {
    let cfg = json!({"audience_claim": ["client_id"], "audience_required": ["client-1"]});
    let good = tokens::access_claims(NOW);
    let rs = |c: &Value| tokens::rs256(c);
    let mut tampered = rs(&good);
    tampered.insert(
        tampered.len() - 5,
        if tampered.ends_with('A') { 'B' } else { 'A' },
    );
    let swapped = {
        // Claims of one token under the signature of another.
        let a: Vec<&str> = tampered.split('.').collect();
        let other = rs(&claims_with(json!({"sub": "admin"})));
        let b: Vec<&str> = other.split('.').collect();
        format!("{}.{}.{}", a[0], b[1], rs(&good).split('.').nth(2).unwrap())
    };
    let cases: Vec<(String, TokenError)> = vec![
        (tampered, TokenError::BadSignature),
        (swapped, TokenError::BadSignature),
        (
            rs(&claims_with(json!({"exp": NOW - 1}))),
            TokenError::Expired,
        ),
        (
            rs(&claims_with(json!({"exp": null}))),
            TokenError::MissingExpiry,
        ),
        (
            rs(&claims_with(json!({"exp": "tomorrow"}))),
            TokenError::Malformed("token time claim is not a number"),
        ),
        (
            rs(&claims_with(json!({"nbf": NOW + 60}))),
            TokenError::NotYetValid,
        ),
        (
            rs(&claims_with(json!({"iat": NOW + 60}))),
            TokenError::IssuedInFuture,
        ),
        (
            rs(&claims_with(
                json!({"iss": "https://evil.example.com/pool"}),
            )),
            TokenError::WrongIssuer,
        ),
        (
            rs(&claims_with(json!({"iss": null}))),
            TokenError::WrongIssuer,
        ),
        (
            rs(&claims_with(json!({"token_use": "id"}))),
            TokenError::NotAccessToken,
        ),
        // ID and refresh tokens as Keycloak marks them.
        (
            rs(&claims_with(json!({"typ": "ID"}))),
            TokenError::NotAccessToken,
        ),
        (
            rs(&claims_with(json!({"typ": "Refresh"}))),
            TokenError::NotAccessToken,
        ),
        // Keycloak's logout and offline tokens, and any back-channel
        // logout token (OIDC Back-Channel Logout §2.4).
        (
            rs(&claims_with(json!({"typ": "Logout"}))),
            TokenError::NotAccessToken,
        ),
        (
            rs(&claims_with(json!({"typ": "Offline"}))),
            TokenError::NotAccessToken,
        ),
        (
            rs(&claims_with(json!({"events": {
                "http://schemas.openid.net/event/backchannel-logout": {}}}))),
            TokenError::NotAccessToken,
        ),
        (
            tokens::sign(&json!({"alg": "none"}), &good),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            tokens::sign(&json!({"alg": "HS256", "kid": "test-rsa"}), &good),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            tokens::sign(&json!({"kid": "test-rsa"}), &good),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            tokens::sign(
                &json!({"alg": "RS256", "kid": "test-rsa", "crit": ["exp"]}),
                &good,
            ),
            TokenError::CriticalHeader,
        ),
        // alg must fit the key: ES256 header naming the RSA key.
        (
            tokens::sign(&json!({"alg": "ES256", "kid": "test-rsa"}), &good),
            TokenError::KeyMismatch,
        ),
        // The JWK says ES256; an EdDSA header naming it does not fit.
        (
            tokens::sign(&json!({"alg": "EdDSA", "kid": "test-ec"}), &good),
            TokenError::KeyMismatch,
        ),
        (
            "a.b".into(),
            TokenError::Malformed("token is not three dot-separated parts"),
        ),
        (
            "a.b.c.d".into(),
            TokenError::Malformed("token is not three dot-separated parts"),
        ),
        (
            "!!.e30.AA".into(),
            TokenError::Malformed("token header is not base64url JSON"),
        ),
        (
            "e30.e30.!!".into(),
            TokenError::Malformed("token signature is not base64url"),
        ),
        (
            "W10.e30.AA".into(),
            TokenError::Malformed("token header is not base64url JSON"),
        ),
        ("x".repeat(20_000), TokenError::TooLarge),
    ];
    for (token, want) in cases {
        let (d, _) = bearer(cfg.clone(), &token);
        assert_invalid(&d, want);
    }
}

#[test]
fn bad_tokens_that_fail_cheap_checks_cost_no_idp_call() {
    for claims in [
        claims_with(json!({"exp": NOW - 1})),
        claims_with(json!({"iss": "https://other/"})),
    ] {
        let (_, w) = bearer(json!({}), &tokens::rs256(&claims));
        assert!(w.calls.is_empty());
    }
}

/// A worker that fetched the keys at `NOW`, and a request with a token
/// naming a key they lack.
fn keys_fetched_and_an_unknown_kid() -> (World, RequestView) {
    let mut w = world(json!({}));
    let good = tokens::rs256(&tokens::access_claims(NOW));
    assert!(is_continue(&at(
        &mut w,
        NOW,
        request(&[&format!("Bearer {good}")])
    )));
    let rotated = tokens::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &tokens::access_claims(NOW),
    );
    (w, request(&[&format!("Bearer {rotated}")]))
}

/// The IdP answers every fetch with `status` (and `retry_after`).
fn idp_answering(status: u16, retry_after: Option<u64>) -> envoy_oidc_testkit::world::Idp {
    let answer = move |r: &IdpRequest, now: u64| match crate::document(r) {
        Some(_) => IdpReply {
            status: Some(status),
            body: vec![],
            retry_after,
        },
        None => issue_token(r, now),
    };
    Box::new(answer)
}

#[test]
fn unknown_kid_refetches_once_then_is_rate_limited() {
    let (mut w, req) = keys_fetched_and_an_unknown_kid();
    assert_invalid(&at(&mut w, NOW, req.clone()), TokenError::UnknownKey);
    assert_eq!(
        fetches(&w),
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );
    assert_invalid(&at(&mut w, NOW + 29, req.clone()), TokenError::UnknownKey);
    assert_eq!(fetches(&w).len(), 3, "no refetch within 30 s");
    at(&mut w, NOW + 31, req);
    assert_eq!(fetches(&w).len(), 4, "refetch allowed again after 30 s");
    assert_eq!(fetches(&w).len(), w.calls.len(), "only fetches");
}

#[test]
fn a_failed_unknown_kid_refetch_leaves_the_keys_fresh() {
    // An unknown `kid` during a JWKS outage: the refetch fails; the keys
    // fetched a moment ago stay good for their hour, not 30 s at a time.
    let (mut w, req) = keys_fetched_and_an_unknown_kid();
    w.idp = idp_answering(503, None);
    let d = at(&mut w, NOW, req);
    assert_eq!(response(&d).status, 503);
    assert_eq!(fetches(&w).len(), 3, "discovery, JWKS, the refetch");
    // New tokens later in the hour verify with the keys held: no fetch.
    let good = |t| format!("Bearer {}", tokens::rs256(&tokens::access_claims(t)));
    for t in [NOW + 31, NOW + 62, NOW + 3000] {
        assert!(is_continue(&at(&mut w, t, request(&[&good(t)]))), "{t}");
    }
    assert_eq!(fetches(&w).len(), 3);
}

#[test]
fn a_throttled_unknown_kid_refetch_waits_the_idps_retry_after() {
    let (mut w, req) = keys_fetched_and_an_unknown_kid();
    w.idp = idp_answering(429, Some(120));
    at(&mut w, NOW, req.clone());
    assert_eq!(fetches(&w).len(), 3, "discovery, JWKS, the refetch");
    // Past the 30 s between unknown-kid refetches, not past the 120 s.
    for t in [NOW + 31, NOW + 119] {
        at(&mut w, t, req.clone());
    }
    assert_eq!(fetches(&w).len(), 3);
    at(&mut w, NOW + 121, req);
    assert_eq!(fetches(&w).len(), 4);
}

#[test]
fn idp_failures_map_to_503_and_502() {
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let cases: [(Answer, u32); 7] = [
        (
            |_| IdpReply {
                status: None,
                body: vec![],
                retry_after: None,
            },
            503,
        ),
        // Throttled: 503, not a bad gateway.
        (
            |_| IdpReply {
                status: Some(429),
                body: vec![],
                retry_after: Some(7),
            },
            503,
        ),
        (
            |_| IdpReply {
                status: Some(504),
                body: b"upstream request timeout".to_vec(),
                retry_after: None,
            },
            503,
        ),
        (
            |_| IdpReply {
                status: Some(503),
                body: vec![],
                retry_after: None,
            },
            503,
        ),
        (
            |_| IdpReply {
                status: Some(500),
                body: vec![],
                retry_after: None,
            },
            502,
        ),
        (
            |_| IdpReply {
                status: Some(200),
                body: b"<html>".to_vec(),
                retry_after: None,
            },
            502,
        ),
        (
            |e| match e {
                Document::Discovery => healthy(e),
                Document::Jwks => IdpReply {
                    status: Some(200),
                    retry_after: None,
                    body: br#"{"keys":[]}"#.to_vec(),
                },
            },
            502,
        ),
    ];
    for (answer, status) in cases {
        let mut w = world_with(json!({}), answer, issue_token);
        let d = at(&mut w, NOW, request(&[&format!("Bearer {token}")]));
        assert_eq!(response(&d).status, status);
    }
    // The 429's Retry-After is the IdP's, and nothing is fetched before.
    let mut w = world_with(
        json!({}),
        |_| IdpReply {
            status: Some(429),
            body: vec![],
            retry_after: Some(7),
        },
        issue_token,
    );
    let req = request(&[&format!("Bearer {token}")]);
    let d = at(&mut w, NOW, req.clone());
    assert!(
        response(&d)
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("retry-after") && v == "7"),
        "{d:?}"
    );
    at(&mut w, NOW + 6, req);
    assert_eq!(fetches(&w).len(), 1);
}

#[test]
fn discovery_of_another_issuer_is_refused() {
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let mut w = world_with(
        json!({}),
        |_| IdpReply {
            status: Some(200),
            retry_after: None,
            body: br#"{"issuer":"https://evil","jwks_uri":"https://evil/j"}"#.to_vec(),
        },
        issue_token,
    );
    let d = at(&mut w, NOW, request(&[&format!("Bearer {token}")]));
    assert_eq!(response(&d).status, 502);
    assert_eq!(fetches(&w), vec![Document::Discovery]);
    assert_eq!(w.calls.len(), 1);
}

#[test]
fn stale_keys_keep_serving_while_a_refresh_fails() {
    let mut w = world(json!({}));
    let later = NOW + 2 * 3600;
    let token = tokens::rs256(&tokens::access_claims(later));
    let req = request(&[&format!("Bearer {token}")]);
    assert!(is_continue(&at(
        &mut w,
        NOW,
        request(&[&format!(
            "Bearer {}",
            tokens::rs256(&tokens::access_claims(NOW))
        )]),
    )));
    w.idp = Box::new(scripted(
        |_| IdpReply {
            status: Some(503),
            body: vec![],
            retry_after: None,
        },
        issue_token,
    ));
    // JWKS and discovery are past their TTL; the refresh fails; the old keys verify.
    assert!(is_continue(&at(&mut w, later, req)));
}

#[test]
fn authorization_header_shapes() {
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let mut w = world(json!({}));
    let ok = at(&mut w, NOW, request(&[&format!("bEaReR   {token}")]));
    assert!(is_continue(&ok), "scheme is case-insensitive");
    let two = format!("Bearer {token}");
    assert_invalid(
        &at(&mut w, NOW, request(&[&two, &two])),
        TokenError::MultipleAuthorization,
    );
    assert_invalid(
        &at(&mut w, NOW, request(&["Bearer"])),
        TokenError::Malformed("empty bearer token"),
    );
    assert_invalid(
        &at(&mut w, NOW, request(&["Digest x"])),
        TokenError::UnsupportedScheme,
    );
    assert_invalid(
        &at(
            &mut world(json!({"auth_methods": ["bearer"]})),
            NOW,
            request(&["Basic Y2xpZW50OnNlY3JldA=="]),
        ),
        TokenError::MethodDisabled("client credentials are not accepted"),
    );
    let not_utf8 = RequestView::new(vec![("authorization".into(), b"Bearer \xff\xfe".to_vec())]);
    assert_invalid(
        &at(&mut w, NOW, not_utf8),
        TokenError::Malformed("authorization header is not UTF-8"),
    );
    assert_invalid(
        &at(
            &mut world(json!({"auth_methods": ["client_credentials"]})),
            NOW,
            request(&[&format!("Bearer {token}")]),
        ),
        TokenError::MethodDisabled("bearer tokens are not accepted"),
    );
}

// ------------------------------------------------------------ several issuers

#[test]
fn tokens_of_each_allowed_issuer_verify_against_that_issuers_keys() {
    const OTHER: &str = "https://idp2.example.com/pool2";
    /// Which issuer a fetch is for, by its authority.
    fn issuer_of(r: &IdpRequest) -> usize {
        match header(r, ":authority") {
            Some("idp.example.com") => 0,
            Some("idp2.example.com") => 1,
            other => panic!("a call to {other:?}"),
        }
    }
    let idp = |r: &IdpRequest, _now: u64| {
        let doc = crate::document(r).unwrap_or_else(|| panic!("unexpected {r:?}"));
        let body = match (issuer_of(r), doc) {
            (0, Document::Discovery) => tokens::discovery(),
            (0, Document::Jwks) => tokens::jwks(),
            (_, Document::Discovery) => {
                json!({"issuer": OTHER, "jwks_uri": format!("{OTHER}/jwks")})
                    .to_string()
                    .into_bytes()
            }
            (_, Document::Jwks) => {
                json!({"keys": [tokens::rsa_jwk(&tokens::rsa_other_key(), "other")]})
                    .to_string()
                    .into_bytes()
            }
        };
        IdpReply {
            status: Some(200),
            body,
            retry_after: None,
        }
    };
    let mut w = World::new(&config(json!({"issuers_allowed": [OTHER]})), 1, NOW, idp);
    let fetched = |w: &World| -> Vec<(usize, Document)> {
        w.calls
            .iter()
            .map(|c| {
                let doc = crate::document(&c.request).expect("only fetches");
                (issuer_of(&c.request), doc)
            })
            .collect()
    };
    let run = |w: &mut World, token: &str| at(w, NOW, request(&[&format!("Bearer {token}")]));
    let second = tokens::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &claims_with(json!({"iss": OTHER})),
    );
    assert!(is_continue(&run(&mut w, &second)));
    assert_eq!(
        fetched(&w),
        vec![(1, Document::Discovery), (1, Document::Jwks)],
        "only the token's issuer is fetched"
    );
    // The second issuer's key does not verify a token claiming the first issuer.
    let forged = tokens::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &tokens::access_claims(NOW),
    );
    assert_invalid(&run(&mut w, &forged), TokenError::UnknownKey);
    // An issuer nobody configured costs no IdP call at all.
    let before = fetched(&w).len();
    let stranger = tokens::rs256(&claims_with(json!({"iss": "https://attacker.example.com"})));
    assert_invalid(&run(&mut w, &stranger), TokenError::WrongIssuer);
    assert_eq!(fetched(&w).len(), before);
}

#[test]
fn a_token_of_another_allowed_issuer_is_taken_to_that_issuers_userinfo() {
    const OTHER: &str = "https://idp2.example.com/pool2";
    let idp = |r: &IdpRequest, _now: u64| {
        let other = header(r, ":authority") == Some("idp2.example.com");
        let body = match (other, crate::document(r)) {
            (false, Some(Document::Discovery)) => tokens::discovery(),
            (false, Some(Document::Jwks)) => tokens::jwks(),
            (true, Some(Document::Discovery)) => json!({"issuer": OTHER,
                "jwks_uri": format!("{OTHER}/jwks"), "userinfo_endpoint": format!("{OTHER}/userinfo")})
            .to_string()
            .into_bytes(),
            (true, Some(Document::Jwks)) => {
                json!({"keys": [tokens::rsa_jwk(&tokens::rsa_other_key(), "other")]})
                    .to_string()
                    .into_bytes()
            }
            (true, None) if header(r, ":path") == Some("/pool2/userinfo") => {
                br#"{"sub": "client-1", "groups": ["admins"]}"#.to_vec()
            }
            _ => panic!("a call to the wrong IdP: {r:?}"),
        };
        IdpReply {
            status: Some(200),
            body,
            retry_after: None,
        }
    };
    let cfg = config(json!({"issuers_allowed": [OTHER], "search_user_info": true,
                            "groups_required": ["admins"]}));
    let mut w = World::new(&cfg, 1, NOW, idp);
    let token = tokens::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &claims_with(json!({"iss": OTHER})),
    );
    let d = at(&mut w, NOW, request(&[&format!("Bearer {token}")]));
    assert!(is_continue(&d), "{d:?}");
}

#[test]
fn identity_filter_state_names_who_came_in_and_how_only_when_asked() {
    let token = tokens::rs256(&tokens::access_claims(NOW));
    for on in [false, true] {
        let mut w = world(json!({"identity_filter_state": on}));
        let req = request(&[&format!("Bearer {token}")]);
        w.now = NOW;
        let id = w.send(0, req);
        w.settle();
        let state = w.workers[0]
            .host
            .filter_state
            .get(&id)
            .cloned()
            .unwrap_or_default();
        if on {
            assert_eq!(state["envoy_oidc.subject"], "client-1");
            assert_eq!(state["envoy_oidc.client_id"], "client-1");
            assert_eq!(state["envoy_oidc.method"], "bearer");
        } else {
            assert!(state.is_empty(), "{state:?}");
        }
    }
}

fn view(headers: &[(&str, &str)]) -> envoy_oidc::request::RequestView {
    envoy_oidc::request::RequestView::new(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
    )
}

#[test]
fn credentials_come_from_where_param_type_lists_and_leave_from_there() {
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let get = |set: &[(String, String)], n: &str| {
        set.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
    };
    // Query: the argument is taken out of the path, the others kept.
    let path = format!("/oidcroute/get?x=1&access_token={token}&y=%20");
    let d = at(
        &mut world(json!({"bearer_token_param_type": ["header", "query"]})),
        NOW,
        view(&[(":method", "GET"), (":path", &path)]),
    );
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert_eq!(
        get(set, ":path").as_deref(),
        Some("/oidcroute/get?x=1&y=%20")
    );
    assert_eq!(get(set, "authorization"), Some(format!("Bearer {token}")));
    // Not listed (our default): a query token is no credential at all.
    let d = at(
        &mut world(json!({})),
        NOW,
        view(&[(":method", "GET"), (":path", &path)]),
    );
    assert_eq!(response(&d).status, 401);
    // Cookie: the cookie leaves, the others stay.
    let cookie = format!("theme=dark; at={token}");
    let d = at(
        &mut world(
            json!({"bearer_token_param_type": ["cookie"], "bearer_token_cookie_name": "at"}),
        ),
        NOW,
        view(&[(":method", "GET"), (":path", "/x"), ("cookie", &cookie)]),
    );
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert_eq!(get(set, "cookie").as_deref(), Some("theme=dark"));
    // The header not listed: a bearer header is refused.
    let d = at(
        &mut world(json!({"bearer_token_param_type": ["query"]})),
        NOW,
        request(&[&format!("Bearer {token}")]),
    );
    assert_eq!(response(&d).status, 401);
}

#[test]
fn a_known_token_in_the_header_is_read_as_any_other() {
    // `Bearer <token>` is looked up in the token caches before the header
    // is read as text: a token they know must still meet every check the
    // header's way has.
    let token = tokens::rs256(&tokens::access_claims(NOW));
    let mut w = world(json!({"bearer_token_param_type": ["query"]}));
    let path = format!("/x?access_token={token}");
    let d = at(&mut w, NOW, view(&[(":method", "GET"), (":path", &path)]));
    assert!(is_continue(&d), "verified and cached: {d:?}");
    assert_eq!(w.workers[0].engine.core().verified_len(), 1);
    // The header is not a way in here.
    assert_invalid(
        &at(&mut w, NOW, request(&[&format!("Bearer {token}")])),
        TokenError::MethodDisabled("bearer tokens are not accepted"),
    );
    let mut w = world(json!({}));
    let sent = format!("Bearer {token}");
    assert!(is_continue(&at(&mut w, NOW, request(&[&sent]))));
    let mut bytes = sent.clone().into_bytes();
    bytes.push(0xff);
    let not_utf8 = RequestView::new(vec![("authorization".into(), bytes)]);
    assert_invalid(
        &at(&mut w, NOW, not_utf8),
        TokenError::Malformed("authorization header is not UTF-8"),
    );
    // Known, and as sent: forwarded untouched; expired: refused as such.
    let d = at(&mut w, NOW + 1, request(&[&sent]));
    assert_eq!(d.action, Action::pass());
    assert_invalid(
        &at(&mut w, NOW + 3600, request(&[&sent])),
        TokenError::Expired,
    );
}

#[test]
fn client_credentials_from_the_query_are_exchanged_and_removed() {
    let path = "/oidcroute/get?client_id=svc&client_secret=s3cret&keep=1";
    let mut w = world(json!({"client_credentials_param_type": ["query"]}));
    let d = at(&mut w, NOW, view(&[(":method", "GET"), (":path", path)]));
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert!(
        set.contains(&(":path".to_string(), "/oidcroute/get?keep=1".to_string())),
        "{set:?}"
    );
    let call = crate::token_calls(&w)[0].clone();
    assert_eq!(
        crate::header_of(&call, "authorization"),
        Some("Basic c3ZjOnMzY3JldA==")
    );
    // Control characters, or no secret, are refused as in a Basic header,
    // before any call.
    for path in [
        "/oidcroute/get?client_id=svc%0A&client_secret=s3cret",
        "/oidcroute/get?client_id=svc&client_secret=",
    ] {
        let mut w = world(json!({"client_credentials_param_type": ["query"]}));
        let d = at(&mut w, NOW, view(&[(":method", "GET"), (":path", path)]));
        crate::assert_invalid(&d, TokenError::Malformed("malformed client credentials"));
        assert!(crate::token_calls(&w).is_empty(), "{path}");
    }
}

#[test]
fn a_body_credential_source_is_refused_at_load_saying_why() {
    for field in ["bearer_token_param_type", "client_credentials_param_type"] {
        let e = envoy_oidc::config::Config::parse(
            crate::config(json!({ field: ["header", "body"] }))
                .to_string()
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(e.field, field);
        assert!(e.reason.contains("body"), "{e}");
    }
    let e = envoy_oidc::config::Config::parse(
        crate::config(json!({"bearer_token_param_type": ["cookie"]}))
            .to_string()
            .as_bytes(),
    )
    .unwrap_err();
    assert_eq!(e.field, "bearer_token_cookie_name");
}

#[test]
fn access_tokens_marked_as_such_pass() {
    // Keycloak's access token (`typ: Bearer`, a `nonce` copied from the
    // login), Cognito's (`token_use: access`), Dex's (built as an ID token:
    // `at_hash`, `aud` the client).
    let mut w = world(json!({}));
    for extra in [
        json!({"typ": "Bearer", "nonce": "n", "azp": "web"}),
        json!({"token_use": "access"}),
        json!({"at_hash": "hV4-7GAgKsJT8uVnrxwVSw", "aud": "web", "nonce": "n"}),
    ] {
        let token = tokens::rs256(&claims_with(extra.clone()));
        let d = at(&mut w, NOW, request(&[&format!("Bearer {token}")]));
        assert!(is_continue(&d), "{extra}: {d:?}");
    }
}
