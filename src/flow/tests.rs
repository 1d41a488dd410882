//! The core driven end to end on the host, quinn-style: `drive` answers
//! every fetch the core asks for from a scripted IdP until it decides.

use serde_json::{Value, json};

use super::*;
use crate::action::{IdpReply, IdpRequest, Response};
use crate::config::Config;
use crate::error::Forbidden;
use crate::store::MemoryStore;
use crate::testkit::{self, ISSUER};

const NOW: u64 = 1_800_000_000;

fn config(extra: Value) -> Config {
    let mut c = json!({"issuer": ISSUER, "idp_cluster": "idp", "leeway": 0});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Config::parse(&serde_json::to_vec(&c).unwrap())
        .unwrap()
        .config
}

/// How the scripted IdP answers a fetch.
type Answer = fn(Document) -> IdpReply;

/// How the scripted token endpoint answers a request at `now`.
type TokenAnswer = fn(&IdpRequest, u64) -> IdpReply;

/// A scripted IdP: healthy unless told otherwise; counts calls.
struct Idp {
    calls: Vec<Document>,
    answer: Answer,
    store: MemoryStore,
    /// Token endpoint requests received, and how to answer them.
    token_calls: Vec<IdpRequest>,
    token_answer: TokenAnswer,
}

/// A token endpoint that issues a fresh one-hour access token to anyone.
fn issue_token(_: &IdpRequest, now: u64) -> IdpReply {
    let token = testkit::rs256(&testkit::access_claims(now));
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600});
    IdpReply {
        status: Some(200),
        body: body.to_string().into_bytes(),
    }
}

fn healthy(e: Document) -> IdpReply {
    let body = match e {
        Document::Discovery => testkit::discovery(),
        Document::Jwks => testkit::jwks(),
    };
    IdpReply {
        status: Some(200),
        body,
    }
}

impl Idp {
    fn new() -> Self {
        Idp::answering(healthy)
    }

    fn answering(answer: Answer) -> Self {
        Idp {
            calls: Vec::new(),
            answer,
            store: MemoryStore::default(),
            token_calls: Vec::new(),
            token_answer: issue_token,
        }
    }
}

fn request(authorization: &[&str]) -> RequestView {
    let mut h = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/oidcroute/get".to_vec()),
    ];
    h.extend(
        authorization
            .iter()
            .map(|a| ("authorization".to_string(), a.as_bytes().to_vec())),
    );
    RequestView::new(h)
}

/// Runs one request to a decision, answering fetches from `idp`.
fn drive(cfg: &Config, core: &mut Core, idp: &mut Idp, req: &RequestView, now: u64) -> Decision {
    let mut failed = None;
    for _ in 0..5 {
        match handle_request(cfg, req, now, core, &mut idp.store, failed.as_ref()) {
            Step::Done(d) => return d,
            Step::Wait(_) => panic!("a lone worker never waits for another"),
            Step::Call { key, request } => {
                let reply = (idp.token_answer)(&request, now);
                idp.token_calls.push(request);
                failed = handle_call_reply(cfg, &key, &reply, now, core, &mut idp.store);
            }
            Step::Fetch { doc: e, .. } => {
                idp.calls.push(e);
                failed = core
                    .provider
                    .handle_reply(&cfg.issuer, e, &(idp.answer)(e), now)
                    .err()
                    .map(Error::Idp);
            }
        }
    }
    panic!("the core kept asking for fetches")
}

fn bearer(cfg: &Config, token: &str) -> (Decision, Idp) {
    let mut idp = Idp::new();
    let d = drive(
        cfg,
        &mut Core::default(),
        &mut idp,
        &request(&[&format!("Bearer {token}")]),
        NOW,
    );
    (d, idp)
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

fn assert_invalid(d: &Decision, e: TokenError) {
    let r = response(d);
    assert_eq!(r.status, 401, "{d:?}");
    let want = format!(
        "error=\"invalid_token\", error_description=\"{}\"",
        e.description()
    );
    assert!(
        header(r, "www-authenticate").contains(&want),
        "{:?} vs {want}",
        header(r, "www-authenticate")
    );
}

fn claims_with(changes: Value) -> Value {
    let mut c = testkit::access_claims(NOW);
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

#[test]
fn valid_token_goes_upstream_as_bearer_after_one_discovery_and_one_jwks() {
    let cfg = config(
        json!({"scopes_required": ["kongresource/scope1"], "audience_claim": ["client_id"], "audience_required": ["client-1"]}),
    );
    let token = testkit::rs256(&testkit::access_claims(NOW));
    let (d, idp) = bearer(&cfg, &token);
    assert_eq!(idp.calls, vec![Document::Discovery, Document::Jwks]);
    // The request already carries `Authorization: Bearer <token>`: it goes
    // upstream as it came, without a rewrite.
    assert_eq!(
        d.action,
        Action::Continue {
            set: vec![],
            remove: vec![],
            response: vec![],
        }
    );
    // Any other spelling of the same token is rewritten to the canonical one.
    for sent in [format!("bearer {token}"), format!("Bearer  {token} ")] {
        let d = drive(
            &cfg,
            &mut Core::default(),
            &mut Idp::new(),
            &request(&[&sent]),
            NOW,
        );
        assert_eq!(continued_with_bearer(&d), token, "{sent}");
    }
}

#[test]
fn every_supported_algorithm_verifies() {
    let cfg = config(json!({}));
    for (alg, kid) in [
        ("RS256", "test-rsa"),
        ("RS512", "test-rsa"),
        ("ES256", "test-ec"),
        ("EdDSA", "test-ed"),
    ] {
        let token = testkit::sign(
            &json!({"alg": alg, "kid": kid}),
            &testkit::access_claims(NOW),
        );
        let (d, _) = bearer(&cfg, &token);
        assert!(matches!(d.action, Action::Continue { .. }), "{alg}: {d:?}");
    }
}

#[test]
fn repeated_token_is_verified_once_and_policy_still_runs() {
    let cfg = config(json!({}));
    let mut core = Core::default();
    let mut idp = Idp::new();
    let token = testkit::rs256(&testkit::access_claims(NOW));
    let req = request(&[&format!("Bearer {token}")]);
    for _ in 0..3 {
        assert!(matches!(
            drive(&cfg, &mut core, &mut idp, &req, NOW).action,
            Action::Continue { .. }
        ));
    }
    assert_eq!(idp.calls.len(), 2, "no fetch after the first request");
    assert_eq!(core.verified_len(), 1);
    // The cached token still expires: the clock moves past exp.
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW + 3600),
        TokenError::Expired,
    );
}

#[test]
fn a_cached_tokens_signature_on_other_claims_is_refused() {
    // The cache is keyed by the end of the token (its signature): a token
    // with the same signature and other claims lands on the cached entry
    // and must still be verified, and refused.
    let cfg = config(json!({}));
    let mut core = Core::default();
    let mut idp = Idp::new();
    let token = testkit::rs256(&testkit::access_claims(NOW));
    let good = request(&[&format!("Bearer {token}")]);
    assert!(matches!(
        drive(&cfg, &mut core, &mut idp, &good, NOW).action,
        Action::Continue { .. }
    ));
    let mut parts: Vec<&str> = token.split('.').collect();
    let mut claims = testkit::access_claims(NOW);
    claims["sub"] = json!("admin");
    let forged_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        claims.to_string(),
    );
    parts[1] = &forged_claims;
    let forged = parts.join(".");
    assert_ne!(forged, token);
    assert_invalid(
        &drive(
            &cfg,
            &mut core,
            &mut idp,
            &request(&[&format!("Bearer {forged}")]),
            NOW,
        ),
        TokenError::BadSignature,
    );
    // The genuine token is still served from the cache.
    assert!(matches!(
        drive(&cfg, &mut core, &mut idp, &good, NOW).action,
        Action::Continue { .. }
    ));
    assert_eq!(core.verified_len(), 1);
}

#[test]
fn no_credentials_is_a_challenge_without_error() {
    let cfg = config(json!({}));
    let mut idp = Idp::new();
    let d = drive(&cfg, &mut Core::default(), &mut idp, &request(&[]), NOW);
    let r = response(&d);
    assert_eq!(
        (r.status, header(r, "www-authenticate")),
        (401, "Bearer realm=\"idp.example.com\"")
    );
    assert!(
        idp.calls.is_empty(),
        "no IdP call for a request without credentials"
    );
}

#[test]
fn rejects_each_bad_token_with_its_reason() {
    let cfg = config(json!({"audience_claim": ["client_id"], "audience_required": ["client-1"]}));
    let good = testkit::access_claims(NOW);
    let rs = |c: &Value| testkit::rs256(c);
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
        (
            testkit::sign(&json!({"alg": "none"}), &good),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            testkit::sign(&json!({"alg": "HS256", "kid": "test-rsa"}), &good),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            testkit::sign(&json!({"kid": "test-rsa"}), &good),
            TokenError::UnsupportedAlgorithm,
        ),
        (
            testkit::sign(
                &json!({"alg": "RS256", "kid": "test-rsa", "crit": ["exp"]}),
                &good,
            ),
            TokenError::CriticalHeader,
        ),
        // alg must fit the key: ES256 header naming the RSA key.
        (
            testkit::sign(&json!({"alg": "ES256", "kid": "test-rsa"}), &good),
            TokenError::KeyMismatch,
        ),
        // The JWK says ES256; an EdDSA header naming it does not fit.
        (
            testkit::sign(&json!({"alg": "EdDSA", "kid": "test-ec"}), &good),
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
        let (d, _) = bearer(&cfg, &token);
        assert_invalid(&d, want);
    }
}

#[test]
fn bad_tokens_that_fail_cheap_checks_cost_no_idp_call() {
    let cfg = config(json!({}));
    for claims in [
        claims_with(json!({"exp": NOW - 1})),
        claims_with(json!({"iss": "https://other/"})),
    ] {
        let (_, idp) = bearer(&cfg, &testkit::rs256(&claims));
        assert!(idp.calls.is_empty());
    }
}

#[test]
fn wrong_audience_is_403() {
    let cfg = config(json!({"audience_claim": ["client_id"], "audience_required": ["client-1"]}));
    let (d, _) = bearer(
        &cfg,
        &testkit::rs256(&claims_with(json!({"client_id": "client-2"}))),
    );
    assert_eq!(response(&d).status, 403);
    let (d, _) = bearer(
        &cfg,
        &testkit::rs256(&claims_with(json!({"client_id": null}))),
    );
    assert_eq!(
        response(&d).status,
        403,
        "a missing audience claim is not a match"
    );
}

#[test]
fn missing_scope_is_403_insufficient_scope() {
    let cfg = config(json!({"scopes_required": ["kongresource/scope2", "admin other"]}));
    let (d, _) = bearer(&cfg, &testkit::rs256(&testkit::access_claims(NOW)));
    let r = response(&d);
    assert_eq!(r.status, 403);
    assert!(header(r, "www-authenticate").ends_with("error=\"insufficient_scope\""));
    let cfg =
        config(json!({"scopes_required": ["kongresource/scope2", "kongresource/scope1 other"]}));
    assert!(matches!(
        bearer(&cfg, &testkit::rs256(&testkit::access_claims(NOW)))
            .0
            .action,
        Action::Continue { .. }
    ));
    let _ = Forbidden::MissingScope;
}

#[test]
fn unknown_kid_refetches_once_then_is_rate_limited() {
    let cfg = config(json!({}));
    let mut core = Core::default();
    let mut idp = Idp::new();
    let good = testkit::rs256(&testkit::access_claims(NOW));
    drive(
        &cfg,
        &mut core,
        &mut idp,
        &request(&[&format!("Bearer {good}")]),
        NOW,
    );
    let rotated = testkit::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &testkit::access_claims(NOW),
    );
    let req = request(&[&format!("Bearer {rotated}")]);
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW),
        TokenError::UnknownKey,
    );
    assert_eq!(
        idp.calls,
        vec![Document::Discovery, Document::Jwks, Document::Jwks]
    );
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW + 29),
        TokenError::UnknownKey,
    );
    assert_eq!(idp.calls.len(), 3, "no refetch within 30 s");
    drive(&cfg, &mut core, &mut idp, &req, NOW + 31);
    assert_eq!(idp.calls.len(), 4, "refetch allowed again after 30 s");
}

#[test]
fn idp_failures_map_to_503_and_502() {
    let cfg = config(json!({}));
    let token = testkit::rs256(&testkit::access_claims(NOW));
    let req = request(&[&format!("Bearer {token}")]);
    let cases: [(Answer, u32); 6] = [
        (
            |_| IdpReply {
                status: None,
                body: vec![],
            },
            503,
        ),
        (
            |_| IdpReply {
                status: Some(504),
                body: b"upstream request timeout".to_vec(),
            },
            503,
        ),
        (
            |_| IdpReply {
                status: Some(503),
                body: vec![],
            },
            503,
        ),
        (
            |_| IdpReply {
                status: Some(500),
                body: vec![],
            },
            502,
        ),
        (
            |_| IdpReply {
                status: Some(200),
                body: b"<html>".to_vec(),
            },
            502,
        ),
        (
            |e| match e {
                Document::Discovery => healthy(e),
                Document::Jwks => IdpReply {
                    status: Some(200),
                    body: br#"{"keys":[]}"#.to_vec(),
                },
            },
            502,
        ),
    ];
    for (answer, status) in cases {
        let mut idp = Idp::answering(answer);
        let d = drive(&cfg, &mut Core::default(), &mut idp, &req, NOW);
        assert_eq!(response(&d).status, status);
    }
}

#[test]
fn discovery_of_another_issuer_is_refused() {
    let cfg = config(json!({}));
    let token = testkit::rs256(&testkit::access_claims(NOW));
    let mut idp = Idp::answering(|_| IdpReply {
        status: Some(200),
        body: br#"{"issuer":"https://evil","jwks_uri":"https://evil/j"}"#.to_vec(),
    });
    let d = drive(
        &cfg,
        &mut Core::default(),
        &mut idp,
        &request(&[&format!("Bearer {token}")]),
        NOW,
    );
    assert_eq!(response(&d).status, 502);
    assert_eq!(idp.calls, vec![Document::Discovery]);
}

#[test]
fn stale_keys_keep_serving_while_a_refresh_fails() {
    let cfg = config(json!({}));
    let mut core = Core::default();
    let mut idp = Idp::new();
    let later = NOW + 2 * 3600;
    let token = testkit::rs256(&testkit::access_claims(later));
    let req = request(&[&format!("Bearer {token}")]);
    drive(
        &cfg,
        &mut core,
        &mut idp,
        &request(&[&format!(
            "Bearer {}",
            testkit::rs256(&testkit::access_claims(NOW))
        )]),
        NOW,
    );
    idp.answer = |_| IdpReply {
        status: Some(503),
        body: vec![],
    };
    // JWKS and discovery are past their TTL; the refresh fails; the old keys verify.
    assert!(matches!(
        drive(&cfg, &mut core, &mut idp, &req, later).action,
        Action::Continue { .. }
    ));
}

#[test]
fn authorization_header_shapes() {
    let cfg = config(json!({}));
    let token = testkit::rs256(&testkit::access_claims(NOW));
    let mut idp = Idp::new();
    let mut core = Core::default();
    let ok = drive(
        &cfg,
        &mut core,
        &mut idp,
        &request(&[&format!("bEaReR   {token}")]),
        NOW,
    );
    assert!(
        matches!(ok.action, Action::Continue { .. }),
        "scheme is case-insensitive"
    );
    let two = format!("Bearer {token}");
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &request(&[&two, &two]), NOW),
        TokenError::MultipleAuthorization,
    );
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &request(&["Bearer"]), NOW),
        TokenError::Malformed("empty bearer token"),
    );
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &request(&["Digest x"]), NOW),
        TokenError::UnsupportedScheme,
    );
    assert_invalid(
        &drive(
            &config(json!({"auth_methods": ["bearer"]})),
            &mut core,
            &mut idp,
            &request(&["Basic Y2xpZW50OnNlY3JldA=="]),
            NOW,
        ),
        TokenError::MethodDisabled("client credentials are not accepted"),
    );
    let not_utf8 = RequestView::new(vec![("authorization".into(), b"Bearer \xff\xfe".to_vec())]);
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &not_utf8, NOW),
        TokenError::Malformed("authorization header is not UTF-8"),
    );
    let cfg = config(json!({"auth_methods": ["client_credentials"]}));
    assert_invalid(
        &drive(
            &cfg,
            &mut core,
            &mut idp,
            &request(&[&format!("Bearer {token}")]),
            NOW,
        ),
        TokenError::MethodDisabled("bearer tokens are not accepted"),
    );
}

#[test]
fn claim_headers_are_set_and_client_copies_removed() {
    let cfg = config(json!({
        "upstream_headers_claims": ["sub", "scope", "token_use"],
        "upstream_headers_names": ["x-user", "x-scope", "x-token-use"],
        "upstream_access_token_header": "x-access-token",
    }));
    let token = testkit::rs256(&claims_with(json!({"token_use": null})));
    let (d, _) = bearer(&cfg, &token);
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
    assert_eq!(
        remove,
        vec!["authorization", "x-user", "x-scope", "x-token-use"]
    );
}

#[test]
fn bypass_paths_and_preflight_pass_without_credentials() {
    let cfg = config(json!({"bypass_paths": ["/health"], "run_on_preflight": false}));
    let mut idp = Idp::new();
    let health = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/health?x".to_vec()),
    ]);
    assert!(matches!(
        drive(&cfg, &mut Core::default(), &mut idp, &health, NOW).action,
        Action::Continue { .. }
    ));
    let preflight = RequestView::new(vec![
        (":method".into(), b"OPTIONS".to_vec()),
        (":path".into(), b"/api".to_vec()),
        ("access-control-request-method".into(), b"POST".to_vec()),
    ]);
    assert!(matches!(
        drive(&cfg, &mut Core::default(), &mut idp, &preflight, NOW).action,
        Action::Continue { .. }
    ));
    let cfg = config(json!({}));
    assert_eq!(
        response(&drive(
            &cfg,
            &mut Core::default(),
            &mut idp,
            &preflight,
            NOW
        ))
        .status,
        401,
        "preflight is checked by default"
    );
    assert!(idp.calls.is_empty());
}

// ------------------------------------------------------- client credentials

fn basic(id: &str, secret: &str) -> RequestView {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    request(&[&format!("Basic {b64}")])
}

fn cc_config() -> Config {
    config(
        json!({"scopes": ["kongresource/scope1"], "scopes_required": ["kongresource/scope1"],
                  "audience_claim": ["client_id"]}),
    )
}

fn continued_with_bearer(d: &Decision) -> String {
    match &d.action {
        Action::Continue { set, .. } => {
            let (name, value) = &set[0];
            assert_eq!(name, "authorization");
            value
                .strip_prefix("Bearer ")
                .expect("a bearer token upstream")
                .to_string()
        }
        other => panic!("expected continue, got {other:?}"),
    }
}

fn header_of<'a>(r: &'a IdpRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn basic_credentials_are_exchanged_once_and_the_token_forwarded() {
    let cfg = cc_config();
    let mut core = Core::default();
    let mut idp = Idp::new();
    let req = basic("client-1", "s3cret");
    let first = continued_with_bearer(&drive(&cfg, &mut core, &mut idp, &req, NOW));
    assert_eq!(idp.token_calls.len(), 1);
    let call = &idp.token_calls[0];
    assert_eq!(header_of(call, ":method"), Some("POST"));
    assert_eq!(header_of(call, ":path"), Some("/oauth2/token"));
    assert_eq!(header_of(call, ":authority"), Some("auth.example.com"));
    assert_eq!(
        header_of(call, "authorization"),
        Some("Basic Y2xpZW50LTE6czNjcmV0")
    );
    assert_eq!(
        call.body.as_deref(),
        Some(&b"grant_type=client_credentials&scope=kongresource%2Fscope1"[..])
    );
    // Cached: the same token, no new call, even much later in its life.
    for t in [NOW + 1, NOW + 3000] {
        assert_eq!(
            continued_with_bearer(&drive(&cfg, &mut core, &mut idp, &req, t)),
            first
        );
    }
    assert_eq!(idp.token_calls.len(), 1);
    // Past the refresh margin (a minute before expiry): one new exchange.
    let refreshed = continued_with_bearer(&drive(&cfg, &mut core, &mut idp, &req, NOW + 3550));
    assert_eq!(idp.token_calls.len(), 2);
    assert_ne!(refreshed, first);
}

#[test]
fn default_scopes_are_not_sent_and_post_auth_is_used_when_advertised() {
    let cfg = config(json!({}));
    let mut idp = Idp::answering(|d| match d {
        Document::Discovery => IdpReply {
            status: Some(200),
            body: json!({"issuer": ISSUER, "jwks_uri": format!("{ISSUER}/jwks"),
                         "token_endpoint": format!("{ISSUER}/token"),
                         "token_endpoint_auth_methods_supported": ["client_secret_post"]})
            .to_string()
            .into_bytes(),
        },
        Document::Jwks => healthy(d),
    });
    continued_with_bearer(&drive(
        &cfg,
        &mut Core::default(),
        &mut idp,
        &basic("c 1", "p&q"),
        NOW,
    ));
    let call = &idp.token_calls[0];
    assert_eq!(header_of(call, "authorization"), None);
    assert_eq!(
        call.body.as_deref(),
        Some(&b"grant_type=client_credentials&client_id=c+1&client_secret=p%26q"[..])
    );
}

#[test]
fn rejected_credentials_are_401_and_remembered_briefly() {
    let cfg = cc_config();
    let mut core = Core::default();
    let mut idp = Idp::new();
    idp.token_answer = |_, _| IdpReply {
        status: Some(400),
        body: br#"{"error":"invalid_client"}"#.to_vec(),
    };
    let req = basic("client-1", "wrong");
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW),
        TokenError::Rejected,
    );
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW + 4),
        TokenError::Rejected,
    );
    assert_eq!(idp.token_calls.len(), 1, "negative cache spares the IdP");
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW + 6),
        TokenError::Rejected,
    );
    assert_eq!(idp.token_calls.len(), 2);
}

#[test]
fn malformed_basic_is_refused_without_any_idp_call() {
    let cfg = cc_config();
    let mut idp = Idp::new();
    for value in [
        "Basic !!!",
        "Basic bm9jb2xvbg==",
        "Basic OnNlY3JldA==",
        "Basic",
    ] {
        let d = drive(
            &cfg,
            &mut Core::default(),
            &mut idp,
            &request(&[value]),
            NOW,
        );
        assert_invalid(&d, TokenError::Malformed("malformed basic credentials"));
    }
    assert!(idp.calls.is_empty() && idp.token_calls.is_empty());
}

#[test]
fn token_endpoint_failures_map_to_503_and_502() {
    let cfg = cc_config();
    let cases: [(TokenAnswer, u32); 4] = [
        (
            |_, _| IdpReply {
                status: None,
                body: vec![],
            },
            503,
        ),
        (
            |_, _| IdpReply {
                status: Some(504),
                body: vec![],
            },
            503,
        ),
        (
            |_, _| IdpReply {
                status: Some(500),
                body: vec![],
            },
            502,
        ),
        (
            |_, _| IdpReply {
                status: Some(200),
                body: b"{\"access_token\":".to_vec(),
            },
            502,
        ),
    ];
    for (answer, status) in cases {
        let mut idp = Idp::new();
        idp.token_answer = answer;
        let d = drive(
            &cfg,
            &mut Core::default(),
            &mut idp,
            &basic("client-1", "s"),
            NOW,
        );
        assert_eq!(response(&d).status, status);
    }
}

#[test]
fn a_failed_refresh_keeps_serving_the_valid_token() {
    let cfg = cc_config();
    let mut core = Core::default();
    let mut idp = Idp::new();
    let req = basic("client-1", "s");
    let first = continued_with_bearer(&drive(&cfg, &mut core, &mut idp, &req, NOW));
    idp.token_answer = |_, _| IdpReply {
        status: Some(503),
        body: vec![],
    };
    assert_eq!(
        continued_with_bearer(&drive(&cfg, &mut core, &mut idp, &req, NOW + 3550)),
        first
    );
    assert_eq!(idp.token_calls.len(), 2);
}

#[test]
fn two_workers_share_one_exchange() {
    let cfg = cc_config();
    let mut idp = Idp::new();
    let first = Shared::prepare(&mut idp.store, "p/", [1; 64]);
    let second = Shared::prepare(&mut idp.store, "p/", [2; 64]);
    assert_eq!(
        (second.salt, second.session_key),
        ([1; 32], [1; 32]),
        "the first worker's values win"
    );
    let no_secrets: &[&[u8]] = &[];
    let (mut a, mut b) = (Core::new(no_secrets, first), Core::new(no_secrets, second));
    let req = basic("client-1", "s");
    // Both workers know the IdP already.
    drive(&cfg, &mut a, &mut idp, &request(&[]), NOW);
    for core in [&mut a, &mut b] {
        for d in [Document::Discovery, Document::Jwks] {
            core.provider
                .handle_reply(&cfg.issuer, d, &healthy(d), NOW)
                .unwrap();
        }
    }
    let Step::Call { key, request } = handle_request(&cfg, &req, NOW, &mut a, &mut idp.store, None)
    else {
        panic!("worker A exchanges");
    };
    assert!(
        matches!(handle_request(&cfg, &req, NOW, &mut b, &mut idp.store, None), Step::Wait(k) if k == key),
        "worker B waits for A's exchange"
    );
    handle_call_reply(
        &cfg,
        &key,
        &issue_token(&request, NOW),
        NOW,
        &mut a,
        &mut idp.store,
    );
    let Step::Done(d) = handle_request(&cfg, &req, NOW, &mut b, &mut idp.store, None) else {
        panic!("worker B finds A's token");
    };
    continued_with_bearer(&d);
}

#[test]
fn shared_keys_stay_bounded_for_many_clients() {
    let cfg = cc_config();
    let mut core = Core::default();
    let mut idp = Idp::new();
    // One token for everyone: this test is about keys, not signatures.
    idp.token_answer = |r, now| {
        static ONE: std::sync::OnceLock<IdpReply> = std::sync::OnceLock::new();
        ONE.get_or_init(|| issue_token(r, now)).clone()
    };
    for i in 0..3000 {
        continued_with_bearer(&drive(
            &cfg,
            &mut core,
            &mut idp,
            &basic(&format!("client-{i}"), "s"),
            NOW,
        ));
    }
    assert_eq!(idp.token_calls.len(), 3000);
    // Token slots and leases: a fixed set, whatever the number of clients.
    assert!(
        idp.store.len() <= 1024 + 64,
        "{} shared keys",
        idp.store.len()
    );
}

#[test]
fn groups_roles_and_forbidden_claims_are_403() {
    let claims = claims_with(json!({
        "cognito:groups": ["admins", "devs"],
        "realm_access": {"roles": ["reader"]},
    }));
    let token = testkit::rs256(&claims);
    let status = |extra: Value| {
        let (d, _) = bearer(&config(extra), &token);
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

// ------------------------------------------------------------ introspection

fn introspection_config(extra: Value) -> Config {
    let mut c = json!({"client_id": "rs", "client_secret": "rs-secret",
                       "introspection_endpoint": "https://idp.example.com/introspect",
                       "scopes_required": ["read"]});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    config(c)
}

fn introspect_answer(r: &IdpRequest, _now: u64) -> IdpReply {
    let body = String::from_utf8(r.body.clone().unwrap_or_default()).unwrap();
    let active = body.contains("token=good");
    let answer = if active {
        json!({"active": true, "scope": "read write", "client_id": "c1", "exp": NOW + 100, "iss": ISSUER})
    } else {
        json!({"active": false})
    };
    IdpReply {
        status: Some(200),
        body: answer.to_string().into_bytes(),
    }
}

#[test]
fn opaque_tokens_are_introspected_and_cached() {
    let cfg = introspection_config(json!({}));
    let mut core = Core::default();
    let mut idp = Idp::new();
    idp.token_answer = introspect_answer;
    let req = request(&["Bearer good-opaque-token"]);
    let d = drive(&cfg, &mut core, &mut idp, &req, NOW);
    assert!(
        matches!(&d.action, Action::Continue { set, .. } if set.is_empty()),
        "goes upstream as it came: {d:?}"
    );
    let call = &idp.token_calls[0];
    assert_eq!(header_of(call, ":path"), Some("/introspect"));
    assert_eq!(
        header_of(call, "authorization"),
        Some("Basic cnM6cnMtc2VjcmV0")
    );
    assert_eq!(
        call.body.as_deref(),
        Some(&b"token=good-opaque-token&token_type_hint=access_token"[..])
    );
    drive(&cfg, &mut core, &mut idp, &req, NOW + 50);
    assert_eq!(idp.token_calls.len(), 1, "cached until exp");
    assert_invalid(
        &drive(&cfg, &mut core, &mut idp, &req, NOW + 101),
        TokenError::Expired,
    );
}

#[test]
fn inactive_or_unscoped_opaque_tokens_are_refused() {
    let mut idp = Idp::new();
    idp.token_answer = introspect_answer;
    let cfg = introspection_config(json!({}));
    let d = drive(
        &cfg,
        &mut Core::default(),
        &mut idp,
        &request(&["Bearer revoked-token"]),
        NOW,
    );
    assert_invalid(&d, TokenError::Inactive);
    let cfg = introspection_config(json!({"scopes_required": ["admin"]}));
    let d = drive(
        &cfg,
        &mut Core::default(),
        &mut idp,
        &request(&["Bearer good-token"]),
        NOW,
    );
    assert_eq!(response(&d).status, 403);
    // Without introspection, an opaque token is simply malformed.
    let cfg = config(json!({}));
    let d = drive(
        &cfg,
        &mut Core::default(),
        &mut idp,
        &request(&["Bearer good-token"]),
        NOW,
    );
    assert_invalid(
        &d,
        TokenError::Malformed("token is not three dot-separated parts"),
    );
}

// ------------------------------------------------------------ several issuers

#[test]
fn tokens_of_each_allowed_issuer_verify_against_that_issuers_keys() {
    const OTHER: &str = "https://idp2.example.com/pool2";
    let cfg = config(json!({"issuers_allowed": [OTHER]}));
    let mut core = Core::default();
    let mut store = MemoryStore::default();
    let fetched = std::cell::RefCell::new(Vec::new());
    let mut run = |core: &mut Core, token: &str| -> Decision {
        let req = request(&[&format!("Bearer {token}")]);
        for _ in 0..4 {
            match handle_request(&cfg, &req, NOW, core, &mut store, None) {
                Step::Done(d) => return d,
                Step::Fetch { issuer, doc } => {
                    fetched.borrow_mut().push((issuer, doc));
                    let body = match (issuer, doc) {
                        (0, Document::Discovery) => testkit::discovery(),
                        (0, Document::Jwks) => testkit::jwks(),
                        (_, Document::Discovery) => {
                            json!({"issuer": OTHER, "jwks_uri": format!("{OTHER}/jwks")})
                                .to_string()
                                .into_bytes()
                        }
                        (_, Document::Jwks) => {
                            json!({"keys": [testkit::rsa_jwk(&testkit::rsa_other_key(), "other")]})
                                .to_string()
                                .into_bytes()
                        }
                    };
                    let reply = IdpReply {
                        status: Some(200),
                        body,
                    };
                    let issuer_cfg = cfg.issuer_at(issuer).unwrap();
                    core.provider_mut(issuer)
                        .unwrap()
                        .handle_reply(issuer_cfg, doc, &reply, NOW)
                        .unwrap();
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        panic!("too many fetches")
    };
    let second = testkit::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &claims_with(json!({"iss": OTHER})),
    );
    assert!(matches!(
        run(&mut core, &second).action,
        Action::Continue { .. }
    ));
    assert_eq!(
        *fetched.borrow(),
        vec![(1, Document::Discovery), (1, Document::Jwks)],
        "only the token's issuer is fetched"
    );
    // The second issuer's key does not verify a token claiming the first issuer.
    let forged = testkit::sign(
        &json!({"alg": "RS256", "kid": "other"}),
        &testkit::access_claims(NOW),
    );
    assert_invalid(&run(&mut core, &forged), TokenError::UnknownKey);
    // An issuer nobody configured costs no IdP call at all.
    let before = fetched.borrow().len();
    let stranger = testkit::rs256(&claims_with(json!({"iss": "https://attacker.example.com"})));
    assert_invalid(&run(&mut core, &stranger), TokenError::WrongIssuer);
    assert_eq!(fetched.borrow().len(), before);
}

// ------------------------------------------------------------------ userinfo

fn discovery_with_userinfo(d: Document) -> IdpReply {
    match d {
        Document::Discovery => IdpReply {
            status: Some(200),
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
    }
}

#[test]
fn userinfo_claims_feed_policy_and_headers_and_are_cached() {
    let cfg = config(json!({
        "search_user_info": true, "groups_required": ["admins"],
        "upstream_headers_claims": ["email", "sub"], "upstream_headers_names": ["x-email", "x-sub"],
    }));
    let mut core = Core::default();
    let mut idp = Idp::answering(discovery_with_userinfo);
    idp.token_answer = userinfo_answer;
    let req = request(&[&format!(
        "Bearer {}",
        testkit::rs256(&testkit::access_claims(NOW))
    )]);
    let d = drive(&cfg, &mut core, &mut idp, &req, NOW);
    let Action::Continue { set, .. } = &d.action else {
        panic!("{d:?}")
    };
    assert!(set.contains(&("x-email".to_string(), "a@example.com".to_string())));
    assert!(
        set.contains(&("x-sub".to_string(), "client-1".to_string())),
        "the token's claims win"
    );
    drive(&cfg, &mut core, &mut idp, &req, NOW + 1);
    assert_eq!(idp.token_calls.len(), 1, "cached");
    // Without userinfo the same token lacks the group.
    let cfg = config(json!({"groups_required": ["admins"]}));
    assert_eq!(
        response(&drive(
            &cfg,
            &mut Core::default(),
            &mut Idp::new(),
            &req,
            NOW
        ))
        .status,
        403
    );
}

#[test]
fn a_token_userinfo_refuses_is_401() {
    let cfg = config(json!({"search_user_info": true}));
    let mut idp = Idp::answering(discovery_with_userinfo);
    idp.token_answer = |_, _| IdpReply {
        status: Some(401),
        body: vec![],
    };
    let req = request(&[&format!(
        "Bearer {}",
        testkit::rs256(&testkit::access_claims(NOW))
    )]);
    assert_invalid(
        &drive(&cfg, &mut Core::default(), &mut idp, &req, NOW),
        TokenError::Rejected,
    );
}

#[test]
fn bypassed_requests_cannot_forge_claim_headers() {
    let cfg = config(json!({"bypass_paths": ["/health"],
                            "upstream_headers_claims": ["sub"], "upstream_headers_names": ["x-sub"]}));
    let req = RequestView::new(vec![
        (":method".into(), b"GET".to_vec()),
        (":path".into(), b"/health".to_vec()),
        ("x-sub".into(), b"admin".to_vec()),
    ]);
    let d = drive(&cfg, &mut Core::default(), &mut Idp::new(), &req, NOW);
    let Action::Continue { remove, .. } = d.action else {
        panic!("{d:?}")
    };
    assert_eq!(remove, vec!["x-sub"]);
}

#[test]
fn opaque_tokens_without_an_introspection_endpoint_are_401_not_502() {
    let cfg = config(json!({"client_id": "rs", "client_secret": "rs-secret"}));
    let d = drive(
        &cfg,
        &mut Core::default(),
        &mut Idp::new(),
        &request(&["Bearer not.a-jwt"]),
        NOW,
    );
    assert_invalid(
        &d,
        TokenError::Malformed("token is not three dot-separated parts"),
    );
}
