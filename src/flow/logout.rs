//! Logout, as Kong does it: it always logs out. Our cookies are cleared in
//! the response itself, whatever the state of the IdP; the session's tokens
//! are revoked where configured (`logout_revoke`, RFC 7009) by calls no
//! request waits for; and the browser is sent on to end the IdP's session
//! too when its end-session endpoint is known: standard RP-initiated
//! logout, or Amazon Cognito's own `/logout`.
//!
//! A logout is a request with one of `logout_methods` (POST and DELETE by
//! default: a link or an image from another site cannot log anyone out) on
//! `logout_path`, on a path ending with `logout_uri_suffix`, or with
//! `logout_query_arg` in its query. Any other method there is no logout:
//! the request is authenticated and passed on like any other, as Kong does
//! (so the application can serve a page there whose form POSTs the logout).

use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::authorization_code::redirect;
use super::session::{self, Browser};
use super::slots::Key;
use super::{Core, IdpCall, Stop};
use crate::action::{Action, Decision, IdpReply, Response};
use crate::cache::BoundedCache;
use crate::config::{Config, IssuerId};
use crate::error::{Endpoint, Error, IdpError};
use crate::oidc::discovery::Discovery;
use crate::oidc::provider::Document;
use crate::oidc::token;
use crate::request::RequestView;
use crate::session::Session;
use crate::store::SharedStore;

/// A token revoked here is not sent to the IdP again for this long (a
/// session cookie replayed at logout).
const REVOKED_TTL: u64 = 3600;
/// A token whose revocation was asked for is not asked for again before
/// this (unless revoked: `REVOKED_TTL`), whatever the IdP answered: a
/// replayed session cookie, posted to the logout path again and again,
/// cannot make the IdP a call per request (nor us sign an assertion for
/// each), which the call budget does not cover.
const ASKED_TTL: u64 = 60;

/// What this way in keeps per worker.
pub(super) struct State {
    /// Tokens revoked at logout (or asked for lately), by hash.
    pub(super) revoked: BoundedCache<Key, ()>,
}

impl Default for State {
    fn default() -> State {
        State {
            revoked: BoundedCache::new(super::SMALL_CAPACITY),
        }
    }
}

pub(super) fn is_logout(cfg: &Config, req: &RequestView) -> bool {
    if !cfg.logout_methods.iter().any(|m| m == req.method()) {
        return false;
    }
    let (path, query) = req.path().split_once('?').unwrap_or((req.path(), ""));
    cfg.logout_path.as_deref() == Some(path)
        || cfg
            .logout_uri_suffix
            .as_deref()
            .is_some_and(|s| path.ends_with(s))
        || cfg.logout_query_arg.as_deref().is_some_and(|arg| {
            form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == arg)
        })
}

pub(super) fn handle(
    cfg: &Config,
    browser: &Browser,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Decision, Stop> {
    // Discovery is never fetched for a logout: ours, or another worker's
    // from shared data (no IdP call), or none.
    let issuer = IssuerId::CONFIGURED;
    let doc = Document::Discovery;
    if core.provider.discovery(now).is_none() && !core.adopted.contains(&(issuer, doc)) {
        return Err(Stop::adopt(issuer, doc));
    }
    let discovery = core.provider.discovery(now).cloned();
    // The tokens the session has now: a cookie from before a refresh
    // (its renewal lost) would have logout revoke spent ones.
    let session =
        session::open(cfg, browser, core, now).map(|s| session::latest(cfg, s, core, store, now));
    if let Some(s) = &session {
        session::end_refreshes(cfg, s, core, store, now);
        if cfg.logout_revoke {
            revoke(cfg, s, discovery.as_ref(), now, core);
        }
    }
    let mut headers = session::clear_cookies(cfg, browser);
    let id_token = session.as_ref().and_then(|s| s.id_token.as_deref());
    Ok(match end_session(cfg, discovery.as_ref(), id_token) {
        Some(location) => {
            headers.push(("location".to_string(), location));
            redirect(headers, "logout")
        }
        None => {
            headers.push(("content-type".to_string(), "application/json".to_string()));
            Decision {
                action: Action::Respond(Rc::new(Response {
                    status: 200,
                    headers,
                    body: r#"{"message":"Logged out"}"#.to_string(),
                })),
                log: Some("logout".to_string()),
            }
        }
    })
}

/// Where the browser goes after logout: the IdP's end-session endpoint
/// when known (configured, or discovered), else `post_logout_redirect_uri`.
fn end_session(
    cfg: &Config,
    discovery: Option<&Discovery>,
    id_token: Option<&str>,
) -> Option<String> {
    let client_id = cfg
        .client_ids
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let after = cfg
        .post_logout_redirect_uri
        .as_ref()
        .map(ToString::to_string);
    let end = cfg
        .end_session_endpoint
        .as_ref()
        .or(discovery.and_then(|d| d.end_session_endpoint.as_ref()));
    let cognito = cfg
        .issuer
        .discovery_url
        .authority
        .starts_with("cognito-idp.");
    if cognito {
        // Cognito has no end_session_endpoint: its hosted UI's /logout, which
        // takes `logout_uri` and no ID token hint.
        let url = match end {
            Some(end) => end.to_string(),
            None => {
                let authorize = discovery.and_then(|d| d.authorization_endpoint.as_ref())?;
                format!(
                    "{}://{}/logout",
                    authorize.scheme.as_str(),
                    authorize.authority
                )
            }
        };
        let mut params = vec![("client_id", client_id)];
        if let Some(after) = &after {
            params.push(("logout_uri", after));
        }
        return Some(with_query(&url, &params));
    }
    match end {
        Some(end) => {
            let mut params = vec![("client_id", client_id)];
            if let Some(idt) = id_token {
                params.push(("id_token_hint", idt));
            }
            if let Some(after) = &after {
                params.push(("post_logout_redirect_uri", after));
            }
            Some(end.with_query(&params))
        }
        None => after,
    }
}

/// `url` with `params` added to its query.
fn with_query(url: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(params);
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{}", query.finish())
}

/// Has the engine revoke the session's tokens (those `logout_revoke_*`
/// name) from the worker's root context, at `revocation_endpoint` or
/// discovery's. Nothing waits for it: the response has gone by then.
fn revoke(cfg: &Config, s: &Session, discovery: Option<&Discovery>, now: u64, core: &mut Core) {
    let Some(endpoint) = cfg
        .revocation_endpoint
        .as_ref()
        .or(discovery.and_then(|d| d.revocation_endpoint.as_ref()))
    else {
        return;
    };
    // Without discovery the client authenticates as RFC 6749 has it by
    // default (Basic): the token endpoint's advertised methods are unknown.
    let unknown;
    let discovery = match discovery {
        Some(d) => d,
        None => {
            unknown = Discovery {
                issuer: cfg.issuer.id.clone(),
                jwks_uri: cfg.issuer.discovery_url.clone(),
                token_endpoint: None,
                authorization_endpoint: None,
                end_session_endpoint: None,
                revocation_endpoint: None,
                introspection_endpoint: None,
                userinfo_endpoint: None,
                token_endpoint_auth_methods_supported: Vec::new(),
                iss_in_responses: false,
            };
            &unknown
        }
    };
    let client = token::configured_client(cfg);
    let tokens = [
        (
            cfg.logout_revoke_access_token,
            Some(&*s.access_token),
            "access_token",
        ),
        (
            cfg.logout_revoke_refresh_token,
            s.refresh_token.as_deref(),
            "refresh_token",
        ),
    ];
    for (wanted, token, hint) in tokens {
        let (true, Some(token)) = (wanted, token) else {
            continue;
        };
        let key: Key = Sha256::digest(token.as_bytes()).into();
        if core.logout.revoked.get(&key, now).is_some() {
            continue;
        }
        core.logout.revoked.insert(key, (), now, now + ASKED_TTL);
        let params = [("token", token), ("token_type_hint", hint)];
        match token::post(
            cfg,
            discovery,
            Endpoint::Revocation,
            endpoint,
            &client,
            &params,
        ) {
            Ok(request) => core.spawn(IdpCall::Revoke(key), request),
            Err(e) => core.warn(format!("logout: the {hint} is not revoked: {e}")),
        }
    }
}

/// The IdP answered a revocation. Its outcome changes nothing for the
/// browser (logged out already); a failure is reported to the operator,
/// and the token may be revoked again at a logout with it a minute later.
pub(super) fn handle_reply(
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
) -> Option<Error> {
    let endpoint = Endpoint::Revocation;
    match reply.status {
        Some(200) => {
            core.logout.revoked.insert(*key, (), now, now + REVOKED_TTL);
            None
        }
        status @ (None | Some(503) | Some(504)) => {
            Some(Error::Idp(IdpError::Unavailable { endpoint, status }))
        }
        Some(status) => Some(Error::Idp(IdpError::BadStatus { endpoint, status })),
    }
}
