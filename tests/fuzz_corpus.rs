//! The fuzz corpus as ordinary tests: every file of `fuzz/corpus/<target>/`
//! and `fuzz/regressions/<target>/` goes through the same function the
//! cargo-fuzz target calls (`envoy_oidc_testkit::fuzzing`), so every seed
//! and every past finding is checked by `cargo test`.
//!
//! Two ignored tests write what the corpus is made of (run them again only
//! when the fixtures must change):
//! - `print_fuzz_fixtures` mints `fuzz/fixtures/` (tokens, JWKS, sessions);
//! - `write_seed_corpus` writes the seeds `fuzz/corpus/<target>/seed-*`.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use envoy_oidc::action::Action;
use envoy_oidc::session::{Login, Session};
use envoy_oidc_testkit::World;
use envoy_oidc_testkit::fuzzing::{self, ISSUER, NOW};
use envoy_oidc_testkit::tokens::{self, Key};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("core", fuzzing::core),
    ("engine", fuzzing::engine),
    ("jwt", fuzzing::jwt),
    ("jwks", fuzzing::jwks),
    ("discovery", fuzzing::discovery),
    ("token_response", fuzzing::token_response),
    ("basic", fuzzing::basic),
    ("cookie", fuzzing::cookie),
    ("seal", fuzzing::seal),
    ("config", fuzzing::config_parse),
];

/// Findings not fixed yet: (target, file). Each has its own ignored test.
const OPEN_FINDINGS: &[(&str, &str)] = &[];

fn replay_one(target: &str, name: &str) {
    let (_, f) = TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .expect("a target");
    let path = fuzz_dir().join("regressions").join(target).join(name);
    f(&fs::read(&path).expect("the finding's file"));
}

#[test]
fn finding_session_cookie_beside_non_utf8_cookie_bypass() {
    replay_one("core", "session-cookie-beside-non-utf8-cookie-bypass");
}

#[test]
fn finding_session_cookie_beside_non_utf8_cookie_bearer() {
    replay_one("core", "session-cookie-beside-non-utf8-cookie-bearer");
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Replays every file of `<kind>/<target>/`; returns how many ran.
fn replay(kind: &str, target: &str, f: Target) -> usize {
    let dir = fuzz_dir().join(kind).join(target);
    let mut failures = Vec::new();
    let mut count = 0;
    for path in files(&dir) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if OPEN_FINDINGS.contains(&(target, name)) {
            continue;
        }
        let data = fs::read(&path).expect("readable corpus file");
        count += 1;
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| f(&data))) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {msg}", path.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} inputs fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
}

#[test]
fn every_seed_and_corpus_input_holds_the_invariants() {
    for (target, f) in TARGETS {
        let n = replay("corpus", target, *f);
        assert!(n > 0, "fuzz/corpus/{target}/ has no seeds");
    }
}

#[test]
fn every_past_finding_stays_fixed() {
    for (target, f) in TARGETS {
        replay("regressions", target, *f);
    }
}

#[test]
fn the_fixture_credentials_pass_and_junk_does_not() {
    // The oracle of the core target is only as good as its fixtures: each
    // valid credential must really pass, or the target checks nothing.
    for token in fuzzing::VALID_TOKENS {
        let input = format!(":method: GET\n:path: /api\nauthorization: Bearer {token}\n");
        fuzzing::core(input.as_bytes());
        assert!(passes(&input), "a valid fixture token is refused");
    }
    for session in fuzzing::VALID_SESSIONS {
        assert!(passes(&format!(
            ":method: GET\n:path: /api\ncookie: session={session}\n"
        )));
    }
    assert!(passes(&format!(
        ":method: GET\n:path: /api\nauthorization: Basic {}=\n",
        fuzzing::GOOD_BASIC
    )));
    assert!(!passes(":method: GET\n:path: /api\n"));
    assert!(!passes(
        ":method: GET\n:path: /api\nauthorization: Basic YTpi\n"
    ));
}

/// Whether the core target's request passes upstream: its first request
/// sent to one worker of the fuzzing configuration, its IdP the target's
/// fake one (the fixture documents; the token endpoint knows only the good
/// client), settled to a decision.
fn passes(input: &str) -> bool {
    let cfg: Value = serde_json::from_str(fuzzing::CONFIG).expect("the fuzzing config");
    let mut world = World::new(&cfg, 1, NOW, fuzzing::fake_idp);
    let req = fuzzing::parse_requests(input.as_bytes()).remove(0);
    matches!(world.request(0, req).action, Action::Continue { .. })
}

// ---- generators (ignored) ------------------------------------------------

/// The Ed25519 fixture key (seed `[7; 32]`), published as `fuzz-ed`.
fn ed_key() -> ed25519_compact::KeyPair {
    tokens::ed_test_key()
}

fn rs256(kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    tokens::sign_with(Key::Rsa, &header, claims)
}

fn access_claims() -> Value {
    json!({"iss": ISSUER, "sub": "fuzz-user", "client_id": "web", "token_use": "access",
           "scope": "openid kongresource/scope1", "iat": NOW - 60, "exp": NOW + 3600,
           "jti": "fuzz-1"})
}

fn write(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

#[test]
#[ignore = "generator: writes fuzz/fixtures/"]
fn print_fuzz_fixtures() {
    let dir = fuzz_dir().join("fixtures");
    let mut rsa = tokens::jwk(Key::Rsa, "test-rsa");
    // No alg: the RSA key then also verifies PS256 and tokens without kid.
    rsa.as_object_mut().unwrap().remove("alg");
    let ed = tokens::jwk(Key::Ed, "fuzz-ed");
    let enc = json!({"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"});
    let jwks = json!({"keys": [rsa, tokens::jwk(Key::Ec, "test-ec"), ed, enc]});
    write(
        &dir.join("jwks.json"),
        serde_json::to_string_pretty(&jwks).unwrap().as_bytes(),
    );
    let claims = access_claims();
    let valid = [
        rs256(Some("test-rsa"), &claims),
        tokens::sign_with(
            Key::Ec,
            &json!({"alg": "ES256", "typ": "JWT", "kid": "test-ec"}),
            &claims,
        ),
        tokens::sign_with(
            Key::Ed,
            &json!({"alg": "EdDSA", "typ": "JWT", "kid": "fuzz-ed"}),
            &claims,
        ),
        rs256(None, &claims),
    ];
    for (name, token) in [
        "valid-rs256",
        "valid-es256",
        "valid-eddsa",
        "valid-rs256-nokid",
    ]
    .iter()
    .zip(&valid)
    {
        write(&dir.join(format!("{name}.jwt")), token.as_bytes());
    }
    let id_token = rs256(
        Some("test-rsa"),
        &json!({"iss": ISSUER, "sub": "fuzz-user", "aud": "web", "azp": "web",
                "iat": NOW - 60, "exp": NOW + 3600, "nonce": "fuzz-nonce"}),
    );
    write(&dir.join("id-token.jwt"), id_token.as_bytes());
    let sealer = fuzzing::sealer(&[fuzzing::SESSION_SECRET]);
    let fresh = Session {
        sid: "fuzz-sid-1".into(),
        access_token: valid[0].as_str().into(),
        refresh_token: Some(fuzzing::REFRESH_TOKEN.into()),
        id_token: Some(id_token),
        identity: None,
        scope: None,
        expires_at: NOW + 3600,
        obtained_at: NOW - 120,
        created_at: NOW - 120,
        renewed_at: NOW - 120,
        seen_at: NOW - 120,
    };
    let due = Session {
        sid: "fuzz-sid-2".into(),
        access_token: valid[2].as_str().into(),
        refresh_token: Some(fuzzing::REFRESH_TOKEN.into()),
        id_token: None,
        identity: None,
        scope: None,
        expires_at: NOW + 30,
        obtained_at: NOW - 3570,
        created_at: NOW - 3000,
        renewed_at: NOW - 30,
        seen_at: NOW - 30,
    };
    for (name, session) in [("session-fresh", fresh), ("session-refresh", due)] {
        let json = serde_json::to_vec(&session).unwrap();
        write(
            &dir.join(format!("{name}.txt")),
            sealer.seal("session", &json).unwrap().as_bytes(),
        );
    }
}

/// The login cookie of a login started with state `fuzz-state`.
fn login_cookie() -> (String, String) {
    let hash = Sha256::digest(b"fuzz-state");
    let hex: String = hash.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let name = format!("session_login_{hex}");
    let login = Login {
        state: "fuzz-state".into(),
        nonce: "fuzz-nonce".into(),
        verifier: "fuzz-verifier-fuzz-verifier-fuzz-verifier-123".into(),
        return_to: "/oidcroute/get?x=1".into(),
        redirect_uri: "https://gw.example.com/oidcroute/get".into(),
        expires_at: NOW + 600,
        scope: None,
        rule: None,
    };
    let sealed = fuzzing::sealer(&[fuzzing::SESSION_SECRET])
        .seal(&name, &serde_json::to_vec(&login).unwrap())
        .unwrap();
    (name, sealed)
}

#[test]
#[ignore = "generator: writes fuzz/corpus/<target>/seed-*"]
fn write_seed_corpus() {
    let mut seeds: Vec<(&str, String, Vec<u8>)> = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: &[u8]| {
        seeds.push((target, name.to_string(), bytes.to_vec()));
    };
    let valid = fuzzing::VALID_TOKENS;
    let claims = access_claims();
    let with = |changes: Value| tokens::with(access_claims(), &changes);
    // Signed tokens that must be refused by the core (not all by the JWT layer).
    let signed_invalid = [
        (
            "expired",
            rs256(Some("test-rsa"), &with(json!({"exp": NOW - 3600}))),
        ),
        (
            "not-yet",
            rs256(Some("test-rsa"), &with(json!({"nbf": NOW + 3600}))),
        ),
        (
            "no-exp",
            rs256(Some("test-rsa"), &with(json!({"exp": null}))),
        ),
        (
            "wrong-iss",
            rs256(
                Some("test-rsa"),
                &with(json!({"iss": "https://evil.example.com"})),
            ),
        ),
        (
            "no-scope",
            rs256(Some("test-rsa"), &with(json!({"scope": "openid"}))),
        ),
        (
            "id-token-use",
            rs256(Some("test-rsa"), &with(json!({"token_use": "id"}))),
        ),
        (
            "time-strings",
            rs256(Some("test-rsa"), &with(json!({"exp": "never"}))),
        ),
        (
            "other-key",
            tokens::sign_with(
                Key::OtherRsa,
                &json!({"alg": "RS256", "kid": "other"}),
                &claims,
            ),
        ),
        (
            "other-key-known-kid",
            tokens::sign_with(
                Key::OtherRsa,
                &json!({"alg": "RS256", "kid": "test-rsa"}),
                &claims,
            ),
        ),
        (
            "es-as-rs",
            tokens::sign_with(Key::Ec, &json!({"alg": "RS256", "kid": "test-ec"}), &claims),
        ),
        (
            "crit",
            rs256(Some("test-rsa"), &claims).replacen(
                &B64.encode(json!({"alg": "RS256", "typ": "JWT", "kid": "test-rsa"}).to_string()),
                &B64.encode(
                    json!({"alg": "RS256", "kid": "test-rsa", "crit": ["exp"]}).to_string(),
                ),
                1,
            ),
        ),
    ];
    let unsigned = |alg: &str| {
        format!(
            "{}.{}.",
            B64.encode(json!({"alg": alg, "kid": "test-rsa"}).to_string()),
            B64.encode(claims.to_string())
        )
    };
    let tampered = {
        let (input, sig) = valid[0].rsplit_once('.').unwrap();
        let other = B64.encode(with(json!({"sub": "admin"})).to_string());
        let header = input.split('.').next().unwrap();
        format!("{header}.{other}.{sig}")
    };
    let mut jwts: Vec<(String, String)> = valid
        .iter()
        .enumerate()
        .map(|(i, t)| (format!("valid-{i}"), t.to_string()))
        .collect();
    jwts.push(("id-token".into(), fuzzing::ID_TOKEN.into()));
    jwts.extend(
        signed_invalid
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone())),
    );
    jwts.extend([
        ("alg-none".into(), unsigned("none")),
        (
            "alg-hs256".into(),
            format!("{}{}", unsigned("HS256"), B64.encode([7; 32])),
        ),
        (
            "alg-ps256".into(),
            format!("{}{}", unsigned("PS256"), B64.encode([7; 256])),
        ),
        (
            "alg-es384".into(),
            format!("{}{}", unsigned("ES384"), B64.encode([7; 96])),
        ),
        ("tampered-claims".into(), tampered),
        ("two-parts".into(), "eyJhbGciOiJSUzI1NiJ9.e30".into()),
        ("four-parts".into(), format!("{}.x", valid[0])),
        ("not-base64".into(), "!!!.???.***".into()),
        (
            "kid-number".into(),
            format!(
                "{}.{}.AA",
                B64.encode(r#"{"alg":"RS256","kid":7}"#),
                B64.encode("{}")
            ),
        ),
    ]);
    for (name, token) in &jwts {
        add("jwt", name, token.as_bytes());
    }

    // The core: requests, blank-line separated.
    let get =
        |path: &str, extra: &str| format!(":method: GET\n:path: {path}\n:scheme: https\n{extra}");
    let bearer = |t: &str| get("/oidcroute/get", &format!("authorization: Bearer {t}\n"));
    for (name, token) in &jwts {
        add("core", &format!("bearer-{name}"), bearer(token).as_bytes());
    }
    let good_basic = format!("authorization: Basic {}=\n", fuzzing::GOOD_BASIC);
    let (login_name, login_value) = login_cookie();
    let session = |v: &str| format!("cookie: theme=dark; session={v}\n");
    let fresh = fuzzing::VALID_SESSIONS[0];
    let (first, rest) = fresh.split_at(fresh.len() / 2);
    let html = "accept: text/html,application/xhtml+xml\n";
    let core_seeds = [
        ("basic-good", get("/oidcroute/get", &good_basic)),
        (
            "basic-wrong-secret",
            get(
                "/oidcroute/get",
                &format!(
                    "authorization: Basic {}\n",
                    STANDARD.encode("fuzz-client:wrong")
                ),
            ),
        ),
        (
            "basic-malformed",
            get("/oidcroute/get", "authorization: Basic !!!\n"),
        ),
        (
            "basic-then-wrong",
            format!(
                "{}\n{}",
                get("/a", &good_basic),
                get(
                    "/a",
                    &format!(
                        "authorization: Basic {}\n",
                        STANDARD.encode("fuzz-client:fuzz-secreT")
                    )
                )
            ),
        ),
        ("session-fresh", get("/oidcroute/get", &session(fresh))),
        (
            "session-refresh",
            get("/oidcroute/get", &session(fuzzing::VALID_SESSIONS[1])),
        ),
        (
            "session-chunked",
            get(
                "/oidcroute/get",
                &format!("cookie: session=2~{first}; session.1={rest}\n"),
            ),
        ),
        (
            "session-tampered",
            get("/oidcroute/get", &session(&fresh.replacen('A', "B", 1))),
        ),
        (
            "session-as-login",
            get("/oidcroute/get", &format!("cookie: {login_name}={fresh}\n")),
        ),
        ("browser-navigation", get("/oidcroute/get?x=1", html)),
        (
            "browser-fetch",
            get("/oidcroute/get", &format!("{html}sec-fetch-mode: cors\n")),
        ),
        (
            "callback-good",
            get(
                "/oidcroute/get?code=fuzz-code&state=fuzz-state",
                &format!("{html}cookie: {login_name}={login_value}\n"),
            ),
        ),
        (
            "callback-bad-code",
            get(
                "/oidcroute/get?code=nope&state=fuzz-state&iss=https%3A%2F%2Fidp.example.com%2Fpool",
                &format!("cookie: {login_name}={login_value}\n"),
            ),
        ),
        (
            "callback-foreign-state",
            get(
                "/oidcroute/get?code=fuzz-code&state=other",
                &format!("cookie: {login_name}={login_value}\n"),
            ),
        ),
        (
            "callback-error",
            get(
                "/oidcroute/get?error=access_denied&state=fuzz-state",
                &format!("cookie: {login_name}={login_value}\n"),
            ),
        ),
        (
            "callback-then-session",
            format!(
                "{}\n{}",
                get(
                    "/oidcroute/get?code=fuzz-code&state=fuzz-state",
                    &format!("cookie: {login_name}={login_value}\n")
                ),
                get("/x", &session(fresh))
            ),
        ),
        ("logout", get("/logout", &session(fresh))),
        ("logout-anonymous", get("/logout?x", "")),
        ("bypass", get("/health", "")),
        ("bypass-sub", get("/health/live?x=1", "")),
        ("bypass-dotdot", get("/health/../admin", "")),
        ("bypass-encoded", get("/health/%2e%2e/admin", "")),
        ("bypass-prefix", get("/healthz", "")),
        ("anonymous", get("/oidcroute/get", "")),
        (
            "two-authorizations",
            get(
                "/a",
                &format!(
                    "authorization: Bearer {}\nauthorization: Bearer {}\n",
                    valid[0], valid[1]
                ),
            ),
        ),
        (
            "bearer-spaces",
            get(
                "/a",
                &format!("authorization:   bearer    {}  \n", valid[0]),
            ),
        ),
        ("unknown-scheme", get("/a", "authorization: Digest x=1\n")),
        (
            "preflight",
            ":method: OPTIONS\n:path: /a\naccess-control-request-method: GET\norigin: https://x\n"
                .to_string(),
        ),
        (
            "non-utf8",
            ":method: GET\n:path: /a\nauthorization: Bearer \u{fffd}\ncookie: session=\u{fffd}\n"
                .to_string(),
        ),
        (
            "valid-then-invalid",
            format!(
                "{}\n{}",
                bearer(valid[0]),
                bearer(&jwts.iter().find(|(n, _)| n == "expired").unwrap().1)
            ),
        ),
        (
            "claim-header-forged",
            get(
                "/a",
                &format!("x-user: admin\nauthorization: Bearer {}\n", valid[1]),
            ),
        ),
    ];
    for (name, input) in &core_seeds {
        add("core", name, input.as_bytes());
    }
    add(
        "core",
        "non-utf8-bytes",
        b":method: GET\n:path: /a\xff\nauthorization: Bearer \xff\xfe\ncookie: \x80=\x81\n",
    );

    let jwks = fuzzing::JWKS;
    add("jwks", "fixture", jwks.as_bytes());
    for (name, body) in [
        ("empty", json!({"keys": []})),
        ("not-a-list", json!({"keys": {}})),
        (
            "hs-key",
            json!({"keys": [{"kty": "oct", "k": "AAAA", "alg": "HS256"}]}),
        ),
        (
            "small-rsa",
            json!({"keys": [{"kty": "RSA", "n": B64.encode([0xc1; 128]), "e": "AQAB"}]}),
        ),
        (
            "rsa-even",
            json!({"keys": [{"kty": "RSA", "kid": "even", "n": B64.encode([0xc2; 256]), "e": "AQAB"}]}),
        ),
        (
            "rsa-big-e",
            json!({"keys": [{"kty": "RSA", "n": B64.encode([0xc3; 256]), "e": B64.encode([0xff; 8])}]}),
        ),
        (
            "ec-off-curve",
            json!({"keys": [{"kty": "EC", "crv": "P-256", "x": B64.encode([1; 32]), "y": B64.encode([2; 32])}]}),
        ),
        (
            "p384-short",
            json!({"keys": [{"kty": "EC", "crv": "P-384", "x": B64.encode([1; 32]), "y": B64.encode([2; 32])}]}),
        ),
        (
            "alg-mismatch",
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "alg": "RS256", "x": B64.encode(ed_key().pk.as_ref())}]}),
        ),
        (
            "kid-not-string",
            json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "kid": 1, "x": B64.encode(ed_key().pk.as_ref())}]}),
        ),
    ] {
        add("jwks", name, body.to_string().as_bytes());
    }
    add(
        "jwks",
        "array-form",
        format!("[{}]", serde_json::from_str::<Value>(jwks).unwrap()["keys"]).as_bytes(),
    );
    add("jwks", "html", b"<html>Service Unavailable</html>");

    add("discovery", "fixture", fuzzing::DISCOVERY.as_bytes());
    let disc = |changes: Value| {
        let mut d: Value = serde_json::from_str(fuzzing::DISCOVERY).unwrap();
        for (k, v) in changes.as_object().unwrap() {
            d[k] = v.clone();
        }
        d.to_string()
    };
    for (name, changes) in [
        (
            "other-issuer",
            json!({"issuer": "https://evil.example.com/pool"}),
        ),
        (
            "issuer-escaped",
            json!({"issuer": "https:\\/\\/idp.example.com\\/pool"}),
        ),
        (
            "ftp-jwks",
            json!({"jwks_uri": "ftp://idp.example.com/jwks"}),
        ),
        (
            "userinfo-url",
            json!({"token_endpoint": "https://u:p@idp.example.com/token"}),
        ),
        ("no-jwks", json!({"jwks_uri": null})),
        (
            "post-auth",
            json!({"token_endpoint_auth_methods_supported": ["client_secret_post"]}),
        ),
        (
            "port-and-ipv6",
            json!({"jwks_uri": "https://[::1]:8443/jwks?x=1#f"}),
        ),
    ] {
        add("discovery", name, disc(changes).as_bytes());
    }
    add(
        "discovery",
        "truncated",
        &fuzzing::DISCOVERY.as_bytes()[..40],
    );

    let status = |s: u16, body: &str| [&s.to_be_bytes()[..], body.as_bytes()].concat();
    for (name, s, body) in [
        (
            "ok",
            200,
            format!(
                r#"{{"access_token":"{}","token_type":"Bearer","expires_in":3600}}"#,
                valid[0]
            ),
        ),
        (
            "ok-all",
            200,
            format!(
                r#"{{"access_token":"{}","token_type":"bearer","expires_in":60,"refresh_token":"r","id_token":"{}","scope":"openid"}}"#,
                valid[1],
                fuzzing::ID_TOKEN
            ),
        ),
        ("no-type", 200, r#"{"access_token":"abc"}"#.into()),
        (
            "mac",
            200,
            r#"{"access_token":"abc","token_type":"mac"}"#.into(),
        ),
        (
            "empty-token",
            200,
            r#"{"access_token":"","token_type":"Bearer"}"#.into(),
        ),
        (
            "expires-string",
            200,
            r#"{"access_token":"a","expires_in":"3600"}"#.into(),
        ),
        (
            "invalid-client",
            401,
            r#"{"error":"invalid_client"}"#.into(),
        ),
        ("bad-request", 400, r#"{"error":"invalid_grant"}"#.into()),
        ("unavailable", 503, "upstream connect error".into()),
        ("timeout", 504, "upstream request timeout".into()),
        ("no-response", 0, String::new()),
        ("html", 200, "<html>hi</html>".into()),
        ("server-error", 500, "{}".into()),
    ] {
        add("token_response", name, &status(s, &body));
    }

    for (name, value) in [
        ("good", format!("{}=", fuzzing::GOOD_BASIC)),
        ("colon-in-secret", STANDARD.encode("id:se:cret")),
        ("empty-secret", STANDARD.encode("id:")),
        ("empty-id", STANDARD.encode(":secret")),
        ("no-colon", STANDARD.encode("nocolon")),
        ("control", STANDARD.encode("id\u{1}:secret")),
        ("not-utf8", STANDARD.encode([0xff, b':', b'x'])),
        ("no-padding", "YTpiYw".into()),
        ("spaces", format!("  {}  ", STANDARD.encode("a:b"))),
        ("unicode", STANDARD.encode("ïd:sécret")),
        ("url-safe", "_-_-".into()),
    ] {
        add("basic", name, value.as_bytes());
    }

    for (name, value) in [
        ("simple", "session=abc; theme=dark".to_string()),
        ("two-headers", "a=1\nsession=xyz".into()),
        (
            "chunked",
            "session=3~aaa; session.1=bbb; session.2=ccc".into(),
        ),
        ("chunk-missing", "session=3~aaa; session.2=ccc".into()),
        ("chunk-count-huge", "session=99999999999999999999~a".into()),
        ("quoted", "session=\"abc\"; x = y ".into()),
        ("no-value", "session; =x; ;;".into()),
        ("sealed", format!("session={fresh}")),
    ] {
        add("cookie", name, value.as_bytes());
    }

    for (i, s) in fuzzing::VALID_SESSIONS.iter().enumerate() {
        add("seal", &format!("valid-{i}"), s.as_bytes());
    }
    add("seal", "login-value", login_value.as_bytes());
    add("seal", "version-only", b"AQ");
    add("seal", "wrong-version", B64.encode([2; 40]).as_bytes());
    add("seal", "short", B64.encode([1; 13]).as_bytes());
    add(
        "seal",
        "padded",
        format!("{}==", &fresh[..fresh.len() - 1]).as_bytes(),
    );

    add("config", "fuzzing", fuzzing::CONFIG.as_bytes());
    for (name, cfg) in [
        (
            "minimal",
            json!({"issuer": "https://idp.example.com", "idp_cluster": "idp"}),
        ),
        (
            "cognito",
            json!({"issuer": "https://cognito-idp.us-west-1.amazonaws.com/us-west-1_AbCdEf/.well-known/openid-configuration",
            "scopes": ["kongresource/scope1"], "scopes_required": ["kongresource/scope1"], "audience_claim": ["client_id"],
            "idp_clusters": {"cognito-idp.us-west-1.amazonaws.com": "cognito_idp", "mydomain.auth.us-west-1.amazoncognito.com": "cognito_hosted_ui"}}),
        ),
        (
            "bypass",
            json!({"issuer": "https://idp.example.com", "idp_cluster": "idp", "bypass_paths": ["/fuzz"], "run_on_preflight": false}),
        ),
        (
            "methods",
            json!({"issuer": "https://idp.example.com", "idp_cluster": "idp", "auth_methods": ["session", "authorization_code"],
            "client_id": "a", "client_secret": "b", "redirect_uri": "https://gw/cb", "session_secret": "x".repeat(32)}),
        ),
        (
            "several-issuers",
            json!({"issuer": "https://a.example.com", "issuers_allowed": ["https://b.example.com"], "idp_cluster": "idp",
            "groups_required": ["admins"], "groups_claim": ["realm_access", "roles"], "claims_forbidden": ["act"]}),
        ),
        (
            "unknown-key",
            json!({"issuer": "https://idp.example.com", "idp_cluster": "idp", "nope": 1}),
        ),
        (
            "short-secret",
            json!({"issuer": "https://idp.example.com", "idp_cluster": "idp", "session_secret": "short"}),
        ),
        ("wrong-type", json!({"issuer": 7})),
        (
            "headers",
            json!({"issuer": "https://idp.example.com", "idp_cluster": "idp", "upstream_access_token_header": "x-token",
            "upstream_headers_claims": ["sub", "email"], "upstream_headers_names": ["x-sub", "x-email"], "leeway": 0}),
        ),
    ] {
        add("config", name, cfg.to_string().as_bytes());
    }
    add("config", "not-json", b"{\"issuer\": ");

    for (target, name, bytes) in seeds {
        write(
            &fuzz_dir()
                .join("corpus")
                .join(target)
                .join(format!("seed-{name}")),
            &bytes,
        );
    }
}
