//! The configurations, IdP and requests the engine tests share.

use envoy_oidc::action::{Action, Decision, IdpReply, IdpRequest};
use envoy_oidc::request::RequestView;
use envoy_oidc::session::Session;
use envoy_oidc::session::cookie;
use envoy_oidc::session::seal::Sealer;
use envoy_oidc_testkit::tokens::{self, ISSUER};
use envoy_oidc_testkit::world::{Call, header};
use serde_json::{Value, json};

pub const NOW: u64 = 1_800_000_000;
pub const SECRET: &str = "an engine-test session secret, 32+ bytes";
pub const TOKEN_PATH: &str = "/oauth2/token";

/// Bearer tokens and client credentials (the Cognito shape).
pub fn api_config() -> Value {
    json!({"issuer": ISSUER, "idp_cluster": "idp", "idp_timeout_ms": 1000})
}

/// Browser sessions with refresh, sealed with `SECRET` unless `secret` is false.
pub fn web_config(secret: bool) -> Value {
    let mut c = json!({"issuer": ISSUER, "idp_cluster": "idp", "idp_timeout_ms": 1000,
                       "client_id": "web", "client_secret": "web-secret",
                       "redirect_uri": "https://gw.example.com/oidcroute/get"});
    if secret {
        c["session_secret"] = json!(SECRET);
    }
    c
}

pub fn ok(body: Vec<u8>) -> IdpReply {
    IdpReply {
        status: Some(200),
        body,
        retry_after: None,
    }
}

pub fn status(code: u16) -> IdpReply {
    IdpReply {
        status: Some(code),
        body: Vec::new(),
        retry_after: None,
    }
}

/// A healthy IdP: discovery, the fixture JWKS, and a token endpoint that
/// grants every client credential and refresh with a fresh hour-long token.
pub fn idp(req: &IdpRequest, now: u64) -> IdpReply {
    let path = header(req, ":path").unwrap_or_default();
    if path.ends_with("/openid-configuration") {
        ok(tokens::discovery())
    } else if path.ends_with("/jwks.json") {
        ok(tokens::jwks())
    } else if path == TOKEN_PATH {
        ok(token_response(&fresh_token(now, "granted")))
    } else {
        status(404)
    }
}

pub fn fresh_token(now: u64, jti: &str) -> String {
    let mut claims = tokens::access_claims(now);
    claims["jti"] = json!(jti);
    tokens::rs256(&claims)
}

pub fn token_response(access: &str) -> Vec<u8> {
    json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600})
        .to_string()
        .into_bytes()
}

pub fn get(headers: &[(&str, &str)]) -> RequestView {
    let mut h = vec![
        (":method".to_string(), b"GET".to_vec()),
        (":path".to_string(), b"/oidcroute/get".to_vec()),
        (":scheme".to_string(), b"https".to_vec()),
        (":authority".to_string(), b"gw.example.com".to_vec()),
    ];
    h.extend(
        headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())),
    );
    RequestView::new(h)
}

pub fn bearer(token: &str) -> RequestView {
    get(&[("authorization", &format!("Bearer {token}"))])
}

/// `Authorization: Basic` for `id:secret`.
pub fn basic(id: &str, secret: &str) -> RequestView {
    use base64::Engine;
    let value = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    get(&[("authorization", &format!("Basic {value}"))])
}

pub fn with_cookie(cookie: &str) -> RequestView {
    get(&[("cookie", cookie)])
}

/// The token forwarded upstream, if the request was forwarded.
pub fn forwarded(d: &Decision) -> Option<String> {
    match &d.action {
        Action::Continue { set, .. } => set
            .iter()
            .find(|(n, _)| n == "authorization")
            .map(|(_, v)| v.trim_start_matches("Bearer ").to_string()),
        Action::Respond(_) => None,
    }
}

/// Forwarded with `Authorization: Bearer <token>`: set by the filter, or
/// the client's own left as it came (it is not rewritten when already so).
pub fn passes_with(d: &Decision, token: &str) -> bool {
    match &d.action {
        Action::Continue { remove, .. } => {
            forwarded(d).map_or(!remove.iter().any(|n| n == "authorization"), |t| t == token)
        }
        Action::Respond(_) => false,
    }
}

pub fn status_of(d: &Decision) -> u32 {
    match &d.action {
        Action::Continue { .. } => 200,
        Action::Respond(r) => r.status,
    }
}

/// A session cookie header for `session`, sealed with key material `key`
/// for `web_config`'s issuer and client.
pub fn session_cookie(key: &[u8], session: &Session) -> String {
    let sealed = Sealer::bound(&[key], ISSUER, "web")
        .seal("session", &serde_json::to_vec(session).expect("json"))
        .expect("sealed");
    cookie::split("session", &sealed)
        .expect("fits")
        .into_iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A session whose access token expires in 30 s: due for refresh.
pub fn due_session(sid: &str, refresh_token: &str, now: u64) -> Session {
    let mut claims = tokens::access_claims(now - 3570);
    claims["jti"] = json!(sid);
    Session {
        sid: sid.into(),
        access_token: tokens::rs256(&claims).into(),
        refresh_token: Some(refresh_token.into()),
        id_token: None,
        identity: None,
        scope: None,
        expires_at: now + 30,
        // A cookie from before `obtained_at`: `renewed_at` stands for it.
        obtained_at: 0,
        created_at: now - 3570,
        renewed_at: now - 3570,
        seen_at: now - 10,
    }
}

/// Calls to the token endpoint with this grant (and refresh token).
pub fn grants(calls: &[Call], grant: &str, refresh_token: Option<&str>) -> usize {
    calls
        .iter()
        .filter(|c| c.path() == TOKEN_PATH)
        .filter(|c| {
            let form = c.form();
            form.get("grant_type").map(String::as_str) == Some(grant)
                && refresh_token
                    .is_none_or(|rt| form.get("refresh_token").map(String::as_str) == Some(rt))
        })
        .count()
}
