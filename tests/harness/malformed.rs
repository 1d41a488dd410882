//! Hostile input never traps the module: malformed tokens, headers, IdP
//! answers and configurations each get an answer (never a pass upstream
//! for a bad token), and the VM survives them all.

use crate::common::idp::{self, warm};
use crate::common::tokens::{self, Key, claims, rs256, with};
use crate::common::*;
use serde_json::json;
use wasm_test_harness::{Harness, HarnessError, HeaderMap, Outcome};

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// Tokens that must each be refused.
fn hostile_tokens(h: &Harness) -> Vec<String> {
    let valid = rs256(&claims(h));
    let parts: Vec<&str> = valid.split('.').collect();
    let header = parts[0];
    let sig = parts[2];
    let signed = |header: serde_json::Value, claims: serde_json::Value| {
        tokens::sign(Key::Rsa, &header, &claims)
    };
    let rsa_header = json!({"alg": "RS256", "kid": "test-rsa"});
    vec![
        String::new(),
        ".".into(),
        "..".into(),
        "...".into(),
        "a.b".into(),
        "a.b.c.d".into(),
        format!("{}.{}", header, parts[1]),
        format!("{valid}."),
        format!("{valid}=="),
        format!("{header}.!!!.{sig}"),
        format!("{}.{}.{sig}", b64("not json"), parts[1]),
        format!("{}.{}.{sig}", b64("[]"), parts[1]),
        format!("{}.{}.{sig}", b64("{\"alg\":42}"), parts[1]),
        format!("{header}.{}.{sig}", b64("not json")),
        format!("{header}.{}.{sig}", b64("[1,2]")),
        format!("{header}.{}.", parts[1]),
        format!("{header}.{}.AAAA", parts[1]),
        format!("{header}.{}.{}", parts[1], "A".repeat(10_000)),
        "x".repeat(100_000),
        valid.replace('.', ". "),
        format!("{}\u{7f}", valid),
        signed(json!({"alg": "HS256", "kid": "test-rsa"}), claims(h)),
        signed(json!({"alg": "RS256", "kid": ""}), claims(h)),
        signed(json!({"alg": "RS256", "kid": 7}), claims(h)),
        signed(
            json!({"alg": "RS256", "kid": "test-rsa", "crit": ["exp"]}),
            claims(h),
        ),
        signed(rsa_header.clone(), json!({})),
        signed(rsa_header.clone(), json!(null)),
        signed(
            rsa_header.clone(),
            with(claims(h), &json!({"exp": "tomorrow"})),
        ),
        signed(rsa_header.clone(), with(claims(h), &json!({"exp": -1}))),
        signed(
            rsa_header.clone(),
            with(claims(h), &json!({"nbf": u64::MAX})),
        ),
        signed(rsa_header.clone(), with(claims(h), &json!({"iss": null}))),
        signed(
            rsa_header.clone(),
            with(claims(h), &json!({"iss": ["https://idp.example.com"]})),
        ),
        signed(rsa_header.clone(), with(claims(h), &json!({"scope": 5}))),
        signed(rsa_header.clone(), with(claims(h), &json!({"scope": null}))),
        signed(
            rsa_header.clone(),
            with(claims(h), &json!({"token_use": 1})),
        ),
    ]
}

fn assert_answered(
    h: &Harness,
    what: &str,
    result: Result<wasm_test_harness::Request, HarnessError>,
) {
    let req = match result {
        Ok(req) => req,
        Err(e) => panic!("{what} trapped the module:\n{e}"),
    };
    idp::drive(h);
    match req.outcome() {
        Outcome::LocalReply(reply) if (400..500).contains(&reply.status) => {}
        other => panic!("{what}: expected a 4xx local reply, got {other:?}"),
    }
}

fn request_with(
    h: &Harness,
    authorization: &[u8],
) -> Result<wasm_test_harness::Request, HarnessError> {
    let headers = HeaderMap::from_pairs(&[
        (":method", b"GET".as_slice()),
        (":path", b"/oidcroute/get".as_slice()),
        (":authority", b"gw.example.com".as_slice()),
        ("authorization", authorization),
    ]);
    h.try_request(0, headers, true)
}

#[test]
fn hostile_tokens_are_refused_without_a_trap() {
    let h = harness();
    warm(&h);
    for (i, token) in hostile_tokens(&h).iter().enumerate() {
        let shown: String = token.chars().take(80).collect();
        assert_answered(
            &h,
            &format!("token #{i} {shown:?}"),
            request_with(&h, format!("Bearer {token}").as_bytes()),
        );
    }
}

/// Odd but well-formed tokens: any answer will do, as long as nothing traps.
#[test]
fn odd_but_well_formed_tokens_do_not_trap() {
    let h = harness();
    warm(&h);
    let rsa_header = json!({"alg": "RS256", "kid": "test-rsa"});
    for claims in [
        with(claims(&h), &json!({"exp": 1e300})),
        with(claims(&h), &json!({"exp": u64::MAX})),
        with(claims(&h), &json!({"exp": 1.5})),
        with(claims(&h), &json!({"client_id": {"nested": true}})),
        with(claims(&h), &json!({"iat": -9_000_000_000_i64})),
        with(claims(&h), &json!({"scope": "a ".repeat(10_000)})),
        with(
            claims(&h),
            &json!({"extra": serde_json::from_str::<serde_json::Value>(&format!("{}1{}", "[".repeat(100), "]".repeat(100))).unwrap_or_default()}),
        ),
    ] {
        let token = tokens::sign(Key::Rsa, &rsa_header, &claims);
        if let Err(e) = request_with(&h, format!("Bearer {token}").as_bytes()) {
            panic!("claims {claims} trapped the module:\n{e}");
        }
        idp::drive(&h);
    }
}

#[test]
fn hostile_authorization_headers_are_refused_without_a_trap() {
    let h = harness();
    warm(&h);
    let values: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"Bearer".to_vec(),
        b"Bearer ".to_vec(),
        b"bearer".to_vec(),
        b"Bearer  ".to_vec(),
        b"Basic".to_vec(),
        b"Basic !!!".to_vec(),
        b"Basic Og==".to_vec(),
        b"Token abc".to_vec(),
        b"Bearer \xff\xfe".to_vec(),
        b"\xff\xff\xff".to_vec(),
        b"Bearer a\x00b".to_vec(),
        "Bearer ☃.☃.☃".as_bytes().to_vec(),
    ];
    for value in values {
        let shown = String::from_utf8_lossy(&value).into_owned();
        assert_answered(
            &h,
            &format!("authorization {shown:?}"),
            request_with(&h, &value),
        );
    }
}

#[test]
fn requests_missing_pseudo_headers_do_not_trap() {
    let h = harness();
    warm(&h);
    let token = format!("Bearer {}", rs256(&claims(&h)));
    for headers in [
        vec![("authorization", token.as_str())],
        vec![(":path", ""), ("authorization", token.as_str())],
        vec![
            (":method", "GET"),
            (":path", "*"),
            ("authorization", token.as_str()),
        ],
        vec![],
    ] {
        let map = HeaderMap::from_pairs(&headers);
        if let Err(e) = h.try_request(0, map, true) {
            panic!("headers {headers:?} trapped the module:\n{e}");
        }
        idp::drive(&h);
    }
}

#[test]
fn hostile_idp_answers_do_not_trap() {
    let discovery = idp::discovery();
    let answers: Vec<(u16, String)> = vec![
        (200, String::new()),
        (200, "null".into()),
        (200, "{}".into()),
        (200, "[]".into()),
        (200, "\u{0}\u{1}".into()),
        (200, json!({"issuer": ISSUER}).to_string()),
        (
            200,
            with(discovery.clone(), &json!({"jwks_uri": 5})).to_string(),
        ),
        (
            200,
            with(discovery.clone(), &json!({"jwks_uri": "not a url"})).to_string(),
        ),
        (
            200,
            with(
                discovery.clone(),
                &json!({"jwks_uri": "https://elsewhere.example.net/jwks"}),
            )
            .to_string(),
        ),
        (
            200,
            with(
                discovery.clone(),
                &json!({"issuer": "https://evil.example.com"}),
            )
            .to_string(),
        ),
        (200, "x".repeat(1 << 20)),
        (301, String::new()),
        (0, String::new()),
    ];
    for (status, body) in answers {
        let h = harness();
        let req = bearer(&h, &rs256(&claims(&h)));
        let shown: String = body.chars().take(60).collect();
        if let Err(e) = req.expect_http_call(CLUSTER).try_respond(
            status,
            &[("content-type", "application/json")],
            &body,
        ) {
            panic!("discovery answer {status} {shown:?} trapped the module:\n{e}");
        }
        // Whatever follows (a JWKS call to a strange place, a refusal), no trap.
        for call in h.pending_calls() {
            if let Err(e) = call.try_respond(
                200,
                &[],
                "{\"keys\":[{\"kty\":\"RSA\",\"n\":\"\",\"e\":\"\"}]}",
            ) {
                panic!("after discovery answer {status} {shown:?}: {e}");
            }
        }
        assert!(
            !matches!(req.outcome(), Outcome::Continued),
            "discovery answer {status} {shown:?} let the request through"
        );
    }
}

#[test]
fn hostile_jwks_answers_do_not_trap() {
    let keys = [
        json!({"keys": 5}),
        json!({"keys": [5, null, "x"]}),
        json!({"keys": [{"kty": "RSA", "kid": "test-rsa"}]}),
        json!({"keys": [{"kty": "RSA", "kid": "test-rsa", "n": "!!!", "e": "AQAB"}]}),
        json!({"keys": [{"kty": "RSA", "kid": "test-rsa", "n": "AQAB", "e": "AQAB"}]}),
        json!({"keys": [{"kty": "RSA", "kid": "test-rsa", "n": "A".repeat(5000), "e": "AQAB"}]}),
        json!({"keys": [{"kty": "EC", "kid": "test-rsa", "crv": "P-256", "x": "AA", "y": "AA"}]}),
        json!({"keys": [{"kty": "EC", "kid": "test-rsa", "crv": "P-999", "x": "AA", "y": "AA"}]}),
        json!({"keys": [{"kty": "OKP", "kid": "test-rsa", "crv": "Ed25519", "x": "AA"}]}),
        json!({"keys": [{"kty": "oct", "kid": "test-rsa", "k": "c2VjcmV0"}]}),
    ];
    for jwks in keys {
        let h = harness();
        let req = bearer(&h, &rs256(&claims(&h)));
        req.expect_http_call(CLUSTER)
            .respond_json(200, &idp::discovery());
        if let Err(e) = req
            .expect_http_call(CLUSTER)
            .try_respond(200, &[], jwks.to_string())
        {
            panic!("JWKS {jwks} trapped the module:\n{e}");
        }
        idp::drive(&h);
        assert!(
            !matches!(req.outcome(), Outcome::Continued),
            "JWKS {jwks} let the request through"
        );
    }
}

#[test]
fn hostile_configurations_are_refused_without_a_trap() {
    let configs: Vec<String> = vec![
        "\u{0}".into(),
        "\u{feff}{}".into(),
        "{\"issuer\": \"\u{0}\"}".into(),
        json!({"issuer": ""}).to_string(),
        json!({"issuer": "https://"}).to_string(),
        json!({"issuer": "https://idp.example.com:99999", "idp_cluster": CLUSTER}).to_string(),
        json!({"issuer": "https://idp.example.com?x=1", "idp_cluster": CLUSTER}).to_string(),
        json!({"issuer": "ftp://idp.example.com", "idp_cluster": CLUSTER}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": ""}).to_string(),
        json!({"issuer": ISSUER, "idp_clusters": {"": CLUSTER}}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "idp_timeout_ms": u64::MAX}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "leeway": 1e300}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "scopes_required": [null]}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "audience_claim": []}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "session_secret": "short"}).to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "upstream_access_token_header": ":"})
            .to_string(),
        json!({"issuer": ISSUER, "idp_cluster": CLUSTER, "upstream_headers_claims": ["a"]})
            .to_string(),
        format!("{{\"issuer\": \"{}\"}}", "a".repeat(100_000)),
        "[".repeat(10_000),
    ];
    for config in configs {
        let shown: String = config.chars().take(60).collect();
        match Harness::load(wasm_path())
            .and_then(|b| b.cluster(CLUSTER).configure(config.as_bytes()))
        {
            Ok(_) | Err(HarnessError::Refused { .. }) => {}
            Err(e) => panic!("configuration {shown:?} trapped the module:\n{e}"),
        }
    }
}
