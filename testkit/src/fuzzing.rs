//! Fuzz targets: one `pub fn <target>(data: &[u8])` per target. The
//! cargo-fuzz binaries under `fuzz/` and the corpus replay in
//! `tests/fuzz_corpus.rs` both call these, so the invariants live in one
//! place. Each function drives the real code with arbitrary bytes and
//! asserts what must hold for every input; a panic is a finding.
//!
//! The fixtures (`JWKS`, `VALID_TOKENS`, `VALID_SESSIONS`, …) were minted
//! with the keys of `crate::tokens` (`tests/fixtures/rsa-test-key.pem`,
//! `ec-test-key.pem`, the Ed25519 seed) by `cargo test --test fuzz_corpus
//! -- --ignored --nocapture print_fuzz_fixtures`, valid at `NOW`. A fuzzer
//! cannot forge a signature or an AES-GCM tag, so these constants are the
//! only valid credentials an input can carry: that is the core's oracle.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use envoy_oidc::action::{Action, IdpReply, IdpRequest};
use envoy_oidc::config::Config;
use envoy_oidc::oidc::claims::check_registered;
use envoy_oidc::oidc::discovery::Discovery;
use envoy_oidc::oidc::jwks::{KeySet, PublicKey};
use envoy_oidc::oidc::jwt::{Alg, Jwt, MAX_TOKEN_LEN, verify_signature};
use envoy_oidc::oidc::token::{self, ClientCredentials};
use envoy_oidc::request::RequestView;
use envoy_oidc::session::cookie;
use envoy_oidc::session::seal::Sealer;

use crate::world::{self, World, header};

/// The clock of every target; the fixtures are valid around it.
pub const NOW: u64 = 1_800_000_000;
/// The issuer of `CONFIG`, `DISCOVERY` and the fixture tokens.
pub use crate::tokens::ISSUER;
/// The session secret of `CONFIG`; `VALID_SESSIONS` are sealed with it.
pub const SESSION_SECRET: &str = "a-fuzzing-session-secret-of-32-bytes-or-more";
/// A retired secret: still opens, never seals.
pub const OLD_SESSION_SECRET: &str = "an-older-fuzzing-session-secret-of-32-bytes";
/// `Authorization: Basic` of the one client the fake token endpoint knows
/// (`fuzz-client:fuzz-secret`), without its `=` padding.
pub const GOOD_BASIC: &str = "ZnV6ei1jbGllbnQ6ZnV6ei1zZWNyZXQ";
/// The code the fake token endpoint exchanges, and the refresh token it honours.
pub const GOOD_CODE: &str = "fuzz-code";
pub const REFRESH_TOKEN: &str = "fuzz-refresh-token";

/// The core's configuration: every way in, a bypass path, claim headers.
pub const CONFIG: &str = r#"{
  "issuer": "https://idp.example.com/pool",
  "idp_cluster": "idp",
  "client_id": "web",
  "client_secret": "web-secret",
  "redirect_uri": "https://gw.example.com/oidcroute/get",
  "scopes": ["openid", "kongresource/scope1"],
  "scopes_required": ["kongresource/scope1"],
  "session_secret": ["a-fuzzing-session-secret-of-32-bytes-or-more",
                     "an-older-fuzzing-session-secret-of-32-bytes"],
  "logout_path": "/logout",
  "post_logout_redirect_uri": "https://gw.example.com/bye",
  "bypass_paths": ["/health"],
  "upstream_headers_claims": ["sub"],
  "upstream_headers_names": ["x-user"]
}"#;

pub const DISCOVERY: &str = r#"{
  "issuer": "https://idp.example.com/pool",
  "jwks_uri": "https://idp.example.com/pool/.well-known/jwks.json",
  "authorization_endpoint": "https://login.example.com/authorize",
  "token_endpoint": "https://login.example.com/token",
  "revocation_endpoint": "https://login.example.com/revoke",
  "end_session_endpoint": "https://login.example.com/logout"
}"#;

/// RSA `test-rsa` (tests/fixtures/rsa-test-key.pem), P-256 `test-ec`
/// (ec-test-key.pem), Ed25519 `fuzz-ed` (seed [7; 32]), and an encryption
/// key that must be skipped.
pub const JWKS: &str = include_str!("../../fuzz/fixtures/jwks.json");

/// Access tokens valid at `NOW` for `CONFIG` (iss, exp, scope): RS256 with
/// kid, ES256, EdDSA, RS256 without kid.
pub const VALID_TOKENS: [&str; 4] = [
    include_str!("../../fuzz/fixtures/valid-rs256.jwt"),
    include_str!("../../fuzz/fixtures/valid-es256.jwt"),
    include_str!("../../fuzz/fixtures/valid-eddsa.jwt"),
    include_str!("../../fuzz/fixtures/valid-rs256-nokid.jwt"),
];

/// The ID token the fake token endpoint returns for `GOOD_CODE`: aud `web`,
/// nonce `fuzz-nonce`.
pub const ID_TOKEN: &str = include_str!("../../fuzz/fixtures/id-token.jwt");

/// Session cookie values (cookie `session`) valid at `NOW`: one fresh, one
/// whose access token is due for refresh (with `REFRESH_TOKEN`).
pub const VALID_SESSIONS: [&str; 2] = [
    include_str!("../../fuzz/fixtures/session-fresh.txt"),
    include_str!("../../fuzz/fixtures/session-refresh.txt"),
];

/// At most this many requests per core input.
const MAX_REQUESTS: usize = 8;
const MAX_HEADERS: usize = 64;

fn config() -> &'static Config {
    static CONFIG_: OnceLock<Config> = OnceLock::new();
    CONFIG_.get_or_init(|| {
        Config::parse(CONFIG.as_bytes())
            .expect("the fuzzing config parses")
            .config
    })
}

fn key_set() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| {
        KeySet::parse(JWKS.as_bytes())
            .expect("the fixture JWKS")
            .set
    })
}

fn ok(body: &str) -> IdpReply {
    IdpReply {
        status: Some(200),
        body: body.as_bytes().to_vec(),
        retry_after: None,
    }
}

fn reply(status: u16, body: &str) -> IdpReply {
    IdpReply {
        status: Some(status),
        body: body.as_bytes().to_vec(),
        retry_after: None,
    }
}

/// The fake IdP: the fixture documents, and the token, revocation,
/// introspection and userinfo endpoints.
pub fn fake_idp(request: &IdpRequest, _now: u64) -> IdpReply {
    let form = world::form(request);
    let param = |name: &str| form.get(name).map(String::as_str);
    let authorization = header(request, "authorization");
    let tokens = |access: &str, extra: &str| {
        format!(r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":3600{extra}}}"#)
    };
    let path = world::path(request);
    if path.ends_with("/openid-configuration") {
        return ok(DISCOVERY);
    }
    if path.ends_with("/jwks.json") {
        return ok(JWKS);
    }
    if path.starts_with("/revoke") {
        return ok("");
    }
    if !path.starts_with("/token") {
        return reply(503, "no such endpoint");
    }
    match param("grant_type") {
        Some("client_credentials") if authorization == Some(&format!("Basic {GOOD_BASIC}=")) => {
            ok(&tokens(VALID_TOKENS[0], ""))
        }
        Some("client_credentials") => reply(401, r#"{"error":"invalid_client"}"#),
        Some("authorization_code") if param("code") == Some(GOOD_CODE) => {
            let extra = format!(r#","id_token":"{ID_TOKEN}","refresh_token":"{REFRESH_TOKEN}""#);
            ok(&tokens(VALID_TOKENS[0], &extra))
        }
        Some("refresh_token") if param("refresh_token") == Some(REFRESH_TOKEN) => {
            ok(&tokens(VALID_TOKENS[1], ""))
        }
        _ => reply(400, r#"{"error":"invalid_grant"}"#),
    }
}

/// The core's input: requests separated by an empty line, each a list of
/// `name: value` header lines (pseudo-headers `:method: GET`); values are
/// raw bytes and need not be UTF-8, but hold no NUL, CR or LF (as Envoy
/// guarantees).
pub fn parse_requests(data: &[u8]) -> Vec<RequestView> {
    let mut requests = Vec::new();
    let mut headers: Vec<(String, Vec<u8>)> = Vec::new();
    for line in data.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if !headers.is_empty() {
                requests.push(RequestView::new(std::mem::take(&mut headers)));
            }
            continue;
        }
        // A pseudo-header's name starts with ':'; the separator is the next one.
        let from = usize::from(line.first() == Some(&b':'));
        let Some(colon) = line[from..].iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(from + colon);
        let value = &value[1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        // Envoy refuses a request whose header values hold NUL or CR (LF
        // ends the line here): the filter never sees those bytes.
        let value: Vec<u8> = value
            .iter()
            .copied()
            .filter(|&b| b != 0 && b != b'\r')
            .collect();
        if headers.len() < MAX_HEADERS {
            headers.push((String::from_utf8_lossy(name).to_ascii_lowercase(), value));
        }
    }
    if !headers.is_empty() {
        requests.push(RequestView::new(headers));
    }
    requests.truncate(MAX_REQUESTS);
    requests
}

/// One worker of the fuzzing configuration, its IdP the fake one.
fn world() -> World {
    let cfg: serde_json::Value = serde_json::from_str(CONFIG).expect("the fuzzing config");
    World::new(&cfg, 1, NOW, fake_idp)
}

/// Lenient on purpose: a path under `/health` may pass unauthenticated
/// (the filter narrows this further: dot segments, encoded slashes).
fn may_bypass(req: &RequestView) -> bool {
    req.path()
        .split(['?', '#'])
        .next()
        .is_some_and(|p| p.starts_with("/health"))
}

/// A request as header lines, for assertion messages.
fn show(req: &RequestView) -> String {
    let mut out = String::new();
    for name in [":method", ":path", "authorization", "cookie", "accept"] {
        for v in req.all(name) {
            out.push_str(&format!("  {name}: {}\n", v.escape_ascii()));
        }
    }
    out
}

fn lossy(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

/// Whether the request carries one of the only valid credentials there are.
fn has_valid_credentials(req: &RequestView) -> bool {
    let bearer_or_basic = req
        .all("authorization")
        .map(lossy)
        .any(|v| v.contains(GOOD_BASIC) || VALID_TOKENS.iter().any(|t| v.contains(t)));
    // Read as the filter reads them: lossily.
    let cookies: Vec<String> = req.all("cookie").map(lossy).collect();
    let pairs = cookie::parse(cookies.iter().map(String::as_str));
    let session =
        cookie::join(&pairs, "session").is_some_and(|v| VALID_SESSIONS.contains(&v.as_ref()));
    bearer_or_basic || session
}

/// Our cookies: the session, its chunks (`session.<n>`), logins in progress.
fn is_our_cookie(name: &str) -> bool {
    let chunk = name
        .strip_prefix("session.")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    name == "session" || chunk || name.starts_with("session_login_")
}

/// What goes upstream never carries our cookies, and the claim header
/// (`x-user`) is always ours: a client's copy removed, or set from the
/// token.
fn check_forwarded_headers(req: &RequestView, set: &[(String, String)], remove: &[String]) {
    let sets = |name: &str| set.iter().any(|(n, _)| n == name);
    let removes = |name: &str| remove.iter().any(|n| n == name);
    let sent = |name: &str| req.names().any(|n| n.eq_ignore_ascii_case(name));
    assert!(
        !sent("x-user") || removes("x-user") || sets("x-user"),
        "a client's x-user may reach the upstream:\n{}",
        show(req)
    );
    // Read leniently: a header with one non-UTF-8 byte still carries ours.
    let sent_ours = req.all("cookie").map(lossy).any(|v| {
        cookie::parse(std::iter::once(v.as_str()))
            .iter()
            .any(|(n, _)| is_our_cookie(n))
    });
    if sent_ours {
        assert!(
            removes("cookie") || sets("cookie"),
            "our cookies go upstream as sent:\n{}",
            show(req)
        );
    }
    for (_, v) in set.iter().filter(|(n, _)| n == "cookie") {
        let pairs = cookie::parse(std::iter::once(v.as_str()));
        assert!(
            !pairs.iter().any(|(n, _)| is_our_cookie(n)),
            "our cookie in the upstream cookie header {v:?}"
        );
    }
}

fn check_header_values(headers: &[(String, String)], what: &str) {
    for (name, value) in headers {
        assert!(
            !value.contains(['\r', '\n', '\0']) && !name.contains(['\r', '\n', '\0', ':']),
            "{what} header {name:?} carries CR, LF, NUL or a bad name: {value:?}"
        );
    }
}

/// The engine (one worker of a `World`, its IdP `fake_idp`) with arbitrary
/// request headers: it decides in a bounded number of IdP round trips, never passes a request without valid
/// credentials (other than to a bypass path), only ever forwards one of
/// the valid tokens, and answers with a documented status.
pub fn core(data: &[u8]) {
    let mut world = world();
    for (i, req) in parse_requests(data).iter().enumerate() {
        world.now = NOW + i as u64;
        let id = world.send(0, req.clone());
        world.settle();
        let decision = world.decision(0, id).clone();
        match &decision.action {
            Action::Continue {
                set,
                remove,
                response,
                ..
            } => {
                check_header_values(set, "upstream");
                check_header_values(response, "response");
                check_forwarded_headers(req, set, remove);
                // A bypass forwards no token of ours (only the foreign cookies).
                if may_bypass(req) && set.iter().all(|(n, _)| n == "cookie") && response.is_empty()
                {
                    continue;
                }
                assert!(
                    has_valid_credentials(req),
                    "passed upstream without valid credentials:\n{}-> {decision:?}",
                    show(req)
                );
                // Set by the filter, or else the client's own, left as it came.
                let kept = || {
                    let sent = req.get("authorization").unwrap_or_default();
                    (!remove.iter().any(|n| n == "authorization")).then_some(sent)
                };
                let forwarded = set
                    .iter()
                    .find(|(n, _)| n == "authorization")
                    .map(|(_, v)| v.as_str())
                    .or_else(kept)
                    .unwrap_or_default();
                assert!(
                    VALID_TOKENS
                        .iter()
                        .any(|t| forwarded == format!("Bearer {t}")),
                    "forwarded something else than a valid token: {forwarded:?}"
                );
            }
            Action::Respond(r) => {
                check_header_values(&r.headers, "local response");
                assert!(
                    matches!(r.status, 200 | 302 | 400 | 401 | 403 | 502 | 503),
                    "undocumented status {} for\n{}",
                    r.status,
                    show(req)
                );
                if r.status == 200 {
                    assert!(
                        req.path().starts_with("/logout"),
                        "200 from the filter outside logout:\n{}",
                        show(req)
                    );
                }
            }
        }
        if let Some(log) = &decision.log {
            for secret in VALID_TOKENS
                .iter()
                .chain(&VALID_SESSIONS)
                .chain(&[GOOD_BASIC])
            {
                // The log names the method and path: a client may put
                // anything there.
                assert!(
                    !log.contains(secret)
                        || req.path().contains(secret)
                        || req.method().contains(secret),
                    "a credential in the log: {log}"
                );
            }
        }
    }
}

/// `Jwt::parse` then `verify` against the fixture JWKS, and the claim
/// checks: a token that parses has three parts and an allowed algorithm;
/// verification agrees with the `rsa` crate for RS* and only passes with a
/// key that fits; a token that passes the time checks is not expired.
pub fn jwt(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jwt) = Jwt::parse(token) else {
        return;
    };
    assert!(token.len() <= MAX_TOKEN_LEN);
    assert_eq!(token.matches('.').count(), 2, "three parts: {token:?}");
    // The claims as the filter reads them (indexed, each read on demand)
    // are serde_json's map of them, where serde_json reads them at all.
    let claims = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).expect("three parts"))
        .expect("parsed");
    if let Ok(map) = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&claims) {
        let read: serde_json::Map<String, serde_json::Value> = jwt
            .claims
            .iter()
            .map(|(name, value)| (name.to_string(), value.clone()))
            .collect();
        assert_eq!(
            read, map,
            "claims read otherwise than serde_json: {token:?}"
        );
    }
    let keys = key_set();
    let candidates = keys.candidates(jwt.kid.as_deref());
    let result = jwt.verify(candidates.iter().copied());
    // The reference: the `rsa` crate's PKCS#1 v1.5 and PSS, the others as they are.
    let (input, signature) = token.rsplit_once('.').expect("three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("parsed");
    let reference = candidates
        .iter()
        .filter(|k| jwt.alg.fits(&k.key) && k.alg.is_none_or(|a| a == jwt.alg))
        .any(|k| match (&k.key, jwt.alg) {
            (
                PublicKey::Rsa(_),
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512,
            ) => reference_key(k.kid.as_deref())
                .is_some_and(|key| reference_rsa(&key, jwt.alg, input.as_bytes(), &signature)),
            (key, alg) => verify_signature(alg, key, input.as_bytes(), &signature),
        });
    assert_eq!(
        result.is_ok(),
        reference,
        "verification disagrees with the reference for {token:?}: {result:?}"
    );
    if let Ok(exp) = check_registered(config(), &jwt.claims, NOW) {
        assert!(
            NOW < exp.saturating_add(config().leeway),
            "expired: {token:?}"
        );
    }
}

/// The `rsa` crate's key for the fixture JWKS's RSA key `kid`, built from
/// the JWK itself: the reference shares nothing with our parsing.
fn reference_key(kid: Option<&str>) -> Option<::rsa::PublicKey> {
    let set: serde_json::Value = serde_json::from_str(JWKS).ok()?;
    let jwk = set["keys"]
        .as_array()?
        .iter()
        .find(|k| k["kty"] == "RSA" && k["kid"].as_str() == kid)?;
    let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str()?).ok();
    Some(::rsa::PublicKey::new_unchecked(
        ::rsa::BoxedUint::from_be_slice_vartime(&part("n")?),
        ::rsa::BoxedUint::from_be_slice_vartime(&part("e")?),
    ))
}

fn reference_rsa(key: &::rsa::PublicKey, alg: Alg, msg: &[u8], sig: &[u8]) -> bool {
    use ::rsa::Pkcs1v15Sign;
    use ::rsa::pss::Pss;
    use sha2::{Digest, Sha256, Sha384, Sha512};
    // JWA: PSS with MGF1 of the same hash and a salt as long as the hash.
    match alg {
        Alg::PS256 => key
            .verify(Pss::<Sha256>::new(), &Sha256::digest(msg), sig)
            .is_ok(),
        Alg::PS384 => key
            .verify(Pss::<Sha384>::new(), &Sha384::digest(msg), sig)
            .is_ok(),
        Alg::PS512 => key
            .verify(Pss::<Sha512>::new(), &Sha512::digest(msg), sig)
            .is_ok(),
        Alg::RS256 => key
            .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(msg), sig)
            .is_ok(),
        Alg::RS384 => key
            .verify(Pkcs1v15Sign::new::<Sha384>(), &Sha384::digest(msg), sig)
            .is_ok(),
        Alg::RS512 => key
            .verify(Pkcs1v15Sign::new::<Sha512>(), &Sha512::digest(msg), sig)
            .is_ok(),
        _ => false,
    }
}

/// `KeySet::parse`: never more than 64 keys, every key counted as kept or
/// skipped, a key's `alg` fits its type, lookups by kid agree, and a junk
/// signature verifies with none of them.
pub fn jwks(data: &[u8]) {
    let Ok(parsed) = KeySet::parse(data) else {
        return;
    };
    let set = &parsed.set;
    assert!(set.keys.len() <= 64);
    // serde also reads a struct from an array: `[[keys…]]`.
    let total = serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .and_then(|v| v.get("keys").or_else(|| v.get(0))?.as_array().map(Vec::len))
        .expect("a parsed set has a keys array");
    assert_eq!(parsed.skipped + set.keys.len(), total);
    for k in &set.keys {
        assert!(k.alg.is_none_or(|a| a.fits(&k.key)), "{k:?}");
        if let Some(kid) = &k.kid {
            assert!(set.has_kid(kid));
            assert!(
                set.candidates(Some(kid))
                    .iter()
                    .all(|c| c.kid.as_ref() == Some(kid))
            );
        }
        for alg in [Alg::RS256, Alg::PS256, Alg::ES256, Alg::ES384, Alg::EdDSA] {
            assert!(!verify_signature(alg, &k.key, b"msg", &[1; 256]));
        }
    }
    assert_eq!(set.candidates(None).len(), set.keys.len());
}

/// `Discovery::parse`: a document is only accepted for its own issuer
/// (given as its discovery URL: with or without a trailing `/`).
pub fn discovery(data: &[u8]) {
    let Ok(issuer) =
        envoy_oidc::config::Issuer::parse(&format!("{ISSUER}/.well-known/openid-configuration"))
    else {
        panic!("the fixtures' issuer");
    };
    if let Ok(d) = Discovery::parse(data, &issuer) {
        assert_eq!(d.issuer.trim_end_matches('/'), ISSUER);
        assert!(d.jwks_uri.path_and_query.starts_with('/'));
    }
}

/// `token::parse_response`: the first two bytes are the status (0: no
/// response at all), the rest the body. Only a 200 with a non-empty bearer
/// `access_token` is a success.
pub fn token_response(data: &[u8]) {
    let (status, body) = match data {
        [a, b, rest @ ..] => (u16::from_be_bytes([*a, *b]) % 1000, rest),
        _ => return,
    };
    let reply = IdpReply {
        status: (status != 0).then_some(status),
        body: body.to_vec(),
        retry_after: None,
    };
    if let Ok(t) = token::parse_response(&reply) {
        assert_eq!(reply.status, Some(200));
        assert!(!t.access_token.is_empty());
        assert!(
            t.token_type
                .as_deref()
                .is_none_or(|t| t.eq_ignore_ascii_case("bearer"))
        );
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = token::unverified_exp(text);
    }
}

/// `ClientCredentials::from_basic`: what it accepts is canonical base64 of
/// `id:secret` with a non-empty id and no control characters.
pub fn basic(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = ClientCredentials::from_basic(text) {
        assert!(!c.id.is_empty());
        assert!(!c.id.contains(':'), "the id ends at the first colon");
        assert!(!c.id.chars().chain(c.secret().chars()).any(char::is_control));
        let again = STANDARD.encode(format!("{}:{}", c.id, c.secret()));
        assert_eq!(again, text.trim(), "accepted a non-canonical encoding");
    }
}

/// `cookie::parse` and `join`: names are trimmed, non-empty and free of
/// `;` and `=`; and a cookie-safe value survives `split` then `join`.
pub fn cookie(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = cookie::parse(text.split('\n'));
    for (n, v) in &pairs {
        assert!(!n.is_empty() && n.trim() == *n, "{n:?}");
        assert!(!n.contains([';', '=']) && !v.contains(';'), "{n:?}={v:?}");
    }
    if let Some(joined) = cookie::join(&pairs, "session") {
        let total: usize = pairs.iter().map(|(_, v)| v.len()).sum();
        assert!(joined.len() <= total);
    }
    // Round trip of a sealed-looking value (base64url), as large as the input.
    let value: String = text
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    if value.is_empty() {
        return;
    }
    for copies in [1, cookie::CHUNK / value.len() + 1] {
        let value = value.repeat(copies);
        if let Some(chunks) = cookie::split("session", &value) {
            assert!(chunks.len() <= cookie::MAX_CHUNKS);
            let header: Vec<String> = chunks.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let header = header.join("; ");
            let pairs = cookie::parse(std::iter::once(header.as_str()));
            assert_eq!(
                cookie::join(&pairs, "session").as_deref(),
                Some(value.as_str())
            );
        }
    }
}

/// What seals `CONFIG`'s cookies with `secrets` (bound to its issuer and
/// client): how the fixtures were sealed.
pub fn sealer<S: AsRef<[u8]>>(secrets: &[S]) -> Sealer {
    config().sealer(secrets)
}

/// `Sealer::open`: only values sealed with one of our keys for that cookie
/// name open (the fixtures), and sealing round-trips through rotation.
pub fn seal(data: &[u8]) {
    let current = sealer(&[SESSION_SECRET, OLD_SESSION_SECRET]);
    let rotated = sealer(&["a-newer-fuzzing-session-secret-of-32-bytes", SESSION_SECRET]);
    if let Ok(value) = std::str::from_utf8(data) {
        for sealer in [&current, &rotated] {
            if sealer.open("session", value).is_some() {
                assert!(
                    VALID_SESSIONS.contains(&value),
                    "opened a value we never sealed: {value:?}"
                );
            }
            assert!(sealer.open("session.1", value).is_none());
        }
    }
    let sealed = current.seal("session", data).expect("sealing works");
    assert_eq!(rotated.open("session", &sealed).as_deref(), Some(data));
    assert_eq!(current.open("login", &sealed), None);
    // Any one changed character breaks it.
    let mut tampered = sealed.clone().into_bytes();
    let at = data.first().map_or(0, |&b| usize::from(b)) % tampered.len();
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).expect("base64 is ASCII");
    assert_eq!(current.open("session", &tampered), None);
}

/// `Config::parse`: any configuration that loads, given an anonymous
/// request, never passes it upstream unless it configures a bypass.
pub fn config_parse(data: &[u8]) {
    let cfg = match Config::parse(data) {
        Ok(loaded) => loaded.config,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    assert!(cfg.session.secrets.iter().all(|s| s.len() >= 32));
    let json: serde_json::Value = serde_json::from_slice(data).expect("it parsed as a config");
    // The IdP is down for this target.
    let mut world = World::new(&json, 1, NOW, |_, _| IdpReply {
        status: Some(503),
        body: Vec::new(),
        retry_after: None,
    });
    for accept in ["application/json", "text/html"] {
        let req = RequestView::new(vec![
            (":method".into(), b"GET".to_vec()),
            (":path".into(), b"/fuzz/anonymous".to_vec()),
            (":scheme".into(), b"https".to_vec()),
            ("accept".into(), accept.as_bytes().to_vec()),
        ]);
        let id = world.send(0, req);
        world.settle();
        let decided = match world.outcome(0, id) {
            crate::world::Outcome::Decided(d) => {
                if let Action::Continue { set, .. } = &d.action {
                    // Only a bypassed path, or Kong's anonymous consumer
                    // (`anonymous`, at the top or in a rule), marked as such
                    // for the upstream.
                    let anonymous = cfg.anonymous.is_some()
                        || cfg.rules.iter().any(|(_, c, _)| c.anonymous.is_some());
                    let marked = set
                        .iter()
                        .any(|(n, v)| n == "x-anonymous-consumer" && v == "true");
                    assert!(
                        !cfg.bypass_paths.is_empty() || (anonymous && marked),
                        "an anonymous request passed: {cfg:?}"
                    );
                }
                true
            }
            _ => false,
        };
        assert!(decided, "no decision with the IdP down: {cfg:?}");
    }
}

/// Seconds a lease holds with the fuzzing configuration's call timeout
/// (5 s, rounded up, plus one).
const LEASE: u64 = 6;

/// The requests the `engine` target sends: valid and invalid credentials
/// of every way in, an anonymous browser, a bypass path, a logout.
fn engine_requests() -> Vec<RequestView> {
    let get = |path: &str, headers: &[(&str, String)]| {
        let mut h = vec![
            (":method".to_string(), b"GET".to_vec()),
            (":path".to_string(), path.as_bytes().to_vec()),
            (":scheme".to_string(), b"https".to_vec()),
        ];
        h.extend(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
        );
        RequestView::new(h)
    };
    let bearer = |t: &str| vec![("authorization", format!("Bearer {t}"))];
    let session = |s: &str| vec![("cookie", format!("session={s}"))];
    vec![
        get("/oidcroute/get", &bearer(VALID_TOKENS[0])),
        get("/oidcroute/get", &bearer(VALID_TOKENS[1])),
        get(
            "/oidcroute/get",
            &bearer(&VALID_TOKENS[0].replace('.', ".x")),
        ),
        get(
            "/oidcroute/get",
            &[("authorization", format!("Basic {GOOD_BASIC}="))],
        ),
        get(
            "/oidcroute/get",
            &[("authorization", "Basic Zm9vOmJhcg==".into())],
        ),
        get("/oidcroute/get", &session(VALID_SESSIONS[0])),
        get("/oidcroute/get", &session(VALID_SESSIONS[1])),
        get("/oidcroute/get", &[("accept", "text/html".into())]),
        get("/health/live", &[]),
        get("/logout", &session(VALID_SESSIONS[1])),
        // A client's copy of our claim header, bypassed and authenticated.
        get("/health/live", &[("x-user", "admin".into())]),
        get(
            "/oidcroute/get",
            &[bearer(VALID_TOKENS[0]), vec![("x-user", "admin".into())]].concat(),
        ),
    ]
}

/// How a call may fail: Envoy's own 503, a reset (no status), a 500, and
/// a 200 with a body that is not JSON.
fn failure(kind: u8) -> IdpReply {
    match kind % 4 {
        0 => reply(503, "upstream connect error"),
        1 => IdpReply {
            status: None,
            body: Vec::new(),
            retry_after: None,
        },
        2 => reply(500, "oops"),
        _ => reply(200, "{not json"),
    }
}

/// What names one IdP call for the single-flight invariant: the same call
/// with the same credentials, or `None` for calls that are one-time by
/// nature (a code exchange, a revocation).
fn call_identity(call: &world::Call) -> Option<String> {
    let form = call.form();
    let grant = form.get("grant_type").map(String::as_str);
    if grant == Some("authorization_code") || call.path().starts_with("/revoke") {
        return None;
    }
    Some(format!(
        "{} {:?} {:?}",
        call.path(),
        header(&call.request, "authorization"),
        form
    ))
}

/// The engine with two workers sharing one store, driven by a script of
/// arbitrary bytes: requests on either worker, replies answered in any
/// order, failed, or lost with a request that goes away, ticks, and a
/// clock that moves. After every step: nothing without valid credentials
/// was forwarded (but to the bypass path), and no IdP call is in flight
/// twice for the same thing within a lease. At the end, once the IdP
/// answers and time passes, no request is left paused.
pub fn engine(data: &[u8]) {
    let cfg: serde_json::Value = serde_json::from_str(CONFIG).expect("the fuzzing config");
    let mut world = World::new(&cfg, 2, NOW, fake_idp);
    let requests = engine_requests();
    let mut sent: Vec<(usize, u32, usize)> = Vec::new();
    for step in data.chunks(2).take(64) {
        let (op, arg) = (step[0], step.get(1).copied().unwrap_or(0));
        let pending = world.pending();
        let pick = |n: usize| usize::from(arg) % n.max(1);
        match op % 8 {
            0 | 1 => {
                let (w, kind) = (usize::from(op / 8) % 2, pick(requests.len()));
                let id = world.send(w, requests[kind].clone());
                sent.push((w, id, kind));
            }
            2 => {
                world.answer_next();
            }
            3 if !pending.is_empty() => {
                let call = &pending[pick(pending.len())];
                let answer = fake_idp(&call.request, world.now);
                world.answer(call.token, answer);
            }
            4 if !pending.is_empty() => {
                let call = &pending[pick(pending.len())];
                world.answer(call.token, failure(op / 8));
            }
            5 if !sent.is_empty() => {
                let (w, id, _) = sent[pick(sent.len())];
                world.drop_request(w, id);
            }
            6 => world.tick(pick(2)),
            7 => world.now += u64::from(arg % 8),
            _ => {}
        }
        check_engine_step(&world, &requests, &sent);
    }
    // The IdP answers everything from now on, and time passes beyond every
    // lease and negative cache: every request still there is decided.
    for _ in 0..4 {
        world.now += LEASE;
        world.settle();
    }
    for &(w, id, kind) in &sent {
        assert!(
            *world.outcome(w, id) != crate::world::Outcome::Paused,
            "left paused:\n{}",
            show(&requests[kind])
        );
    }
}

fn check_engine_step(world: &World, requests: &[RequestView], sent: &[(usize, u32, usize)]) {
    for &(w, id, kind) in sent {
        if let crate::world::Outcome::Decided(d) = world.outcome(w, id)
            && let Action::Continue { .. } = d.action
        {
            let req = &requests[kind];
            assert!(
                has_valid_credentials(req) || may_bypass(req),
                "passed upstream without valid credentials:\n{}",
                show(req)
            );
        }
    }
    let live: Vec<world::Call> = world
        .pending()
        .into_iter()
        .filter(|c| world.owner_alive(c))
        .collect();
    for (i, a) in live.iter().enumerate() {
        for b in &live[i + 1..] {
            let same = call_identity(a).is_some() && call_identity(a) == call_identity(b);
            assert!(
                !same || a.at.abs_diff(b.at) >= LEASE,
                "the same call twice in flight within a lease: {:?} at {} (worker {}) and {} (worker {})",
                call_identity(a),
                a.at,
                a.worker,
                b.at,
                b.worker
            );
        }
    }
}
