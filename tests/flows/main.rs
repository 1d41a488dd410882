//! The filter's flows driven end to end through the fake host
//! (`envoy_oidc_testkit::World`): requests in, a scripted IdP answering
//! every call the engine dispatches, decisions out. One module per way in.

mod bearer;
mod browser;
mod browser_kit;
mod client_credentials;
mod forged;
mod hardening;
mod introspection;
mod logout;
mod policy;
mod providers;
mod token_cache;
mod userinfo;

use envoy_oidc::action::{Action, Decision, IdpReply, IdpRequest, Response};
use envoy_oidc::error::TokenError;
use envoy_oidc::oidc::provider::Document;
use envoy_oidc::request::RequestView;
use envoy_oidc_testkit::tokens::{self, ISSUER};
use envoy_oidc_testkit::world::World;
use serde_json::{Value, json};

pub use envoy_oidc_testkit::world::{header as header_of, response};

pub const NOW: u64 = 1_800_000_000;

/// The configuration of the bearer and API tests, with `extra` on top.
pub fn config(extra: Value) -> Value {
    let mut c = json!({"issuer": ISSUER, "idp_cluster": "idp", "leeway": 0});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    c
}

/// How the scripted IdP answers a discovery or JWKS fetch.
pub type Answer = fn(Document) -> IdpReply;

/// How the scripted IdP answers any other call (token endpoint,
/// introspection, userinfo) at `now`.
pub type TokenAnswer = fn(&IdpRequest, u64) -> IdpReply;

/// The document a call fetches, by its `:path`; `None` for any other call.
pub fn document(r: &IdpRequest) -> Option<Document> {
    let path = header_of(r, ":path").unwrap_or_default();
    if path.ends_with("/.well-known/openid-configuration") {
        Some(Document::Discovery)
    } else if path.ends_with("/jwks") || path.ends_with("/jwks.json") {
        Some(Document::Jwks)
    } else {
        None
    }
}

/// A healthy IdP's documents.
pub fn healthy(d: Document) -> IdpReply {
    let body = match d {
        Document::Discovery => tokens::discovery(),
        Document::Jwks => tokens::jwks(),
    };
    IdpReply {
        status: Some(200),
        body,
        retry_after: None,
    }
}

/// A token endpoint that issues a fresh one-hour access token to anyone.
pub fn issue_token(_: &IdpRequest, now: u64) -> IdpReply {
    let token = tokens::rs256(&tokens::access_claims(now));
    let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600});
    IdpReply {
        status: Some(200),
        body: body.to_string().into_bytes(),
        retry_after: None,
    }
}

/// The world's IdP: fetches answered by `answer`, other calls by
/// `token_answer`.
pub fn scripted(
    answer: Answer,
    token_answer: TokenAnswer,
) -> impl FnMut(&IdpRequest, u64) -> IdpReply + 'static {
    move |r, now| match document(r) {
        Some(d) => answer(d),
        None => token_answer(r, now),
    }
}

/// One worker configured with `config(extra)`, at `NOW`, its IdP healthy.
pub fn world(extra: Value) -> World {
    world_with(extra, healthy, issue_token)
}

pub fn world_with(extra: Value, answer: Answer, token_answer: TokenAnswer) -> World {
    World::new(&config(extra), 1, NOW, scripted(answer, token_answer))
}

/// Request `req` reaches the worker at `now`: its decision.
pub fn at(w: &mut World, now: u64, req: RequestView) -> Decision {
    w.now = now;
    w.request(0, req)
}

/// The discovery and JWKS fetches made so far, in order.
pub fn fetches(w: &World) -> Vec<Document> {
    w.calls
        .iter()
        .filter_map(|c| document(&c.request))
        .collect()
}

/// The other IdP calls made so far (token endpoint, introspection,
/// userinfo, revocation), in order.
pub fn token_calls(w: &World) -> Vec<&IdpRequest> {
    w.calls
        .iter()
        .map(|c| &c.request)
        .filter(|r| document(r).is_none())
        .collect()
}

pub fn request(authorization: &[&str]) -> RequestView {
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

/// A request with `Authorization: Bearer <token>` to a fresh worker of
/// `config(extra)`: its decision, and the world for its IdP calls.
pub fn bearer(extra: Value, token: &str) -> (Decision, World) {
    let mut w = world(extra);
    let d = at(&mut w, NOW, request(&[&format!("Bearer {token}")]));
    (d, w)
}

pub fn header<'a>(r: &'a Response, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

pub fn assert_invalid(d: &Decision, e: TokenError) {
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

pub fn is_continue(d: &Decision) -> bool {
    matches!(d.action, Action::Continue { .. })
}

/// Valid access-token claims at `NOW` with `changes` (null: removed).
pub fn claims_with(changes: Value) -> Value {
    let mut c = tokens::access_claims(NOW);
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v.clone();
        }
    }
    c
}

/// The bearer token a forwarded request carries upstream, rewritten as the
/// first header set.
pub fn continued_with_bearer(d: &Decision) -> String {
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
