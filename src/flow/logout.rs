//! Logout at `logout_path`: clear our cookies, revoke the refresh token
//! where the IdP can (RFC 7009), and end the IdP's session too: standard
//! RP-initiated logout, or Amazon Cognito's own `/logout`.

use sha2::{Digest, Sha256};

use super::authorization_code::redirect;
use super::session::{self, Browser};
use super::slots::Key;
use super::{Core, IdpCall, Stop};
use crate::action::{Action, Decision, Response};
use crate::cache::BoundedCache;
use crate::config::Config;
use crate::error::Endpoint;
use crate::oidc::provider::Document;
use crate::oidc::token;
use crate::request::RequestView;

/// A revocation is waited for at most once per session and minute.
const REVOKED_TTL: u64 = 60;

/// What this way in keeps per worker.
pub(super) struct State {
    /// Sessions whose refresh token was revoked at logout.
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
    let path = req.path().split('?').next().unwrap_or_default();
    cfg.logout_path.as_deref() == Some(path)
}

pub(super) fn handle(
    cfg: &Config,
    browser: &Browser,
    now: u64,
    core: &mut Core,
) -> Result<Decision, Stop> {
    let session = session::open(cfg, browser, core, now);
    let Some(discovery) = core.provider.discovery(now) else {
        return Err(Stop::fetch(Document::Discovery));
    };
    // Revoke the refresh token first, and wait for it: a reply to a
    // request that has already been answered would be lost.
    if let (Some(s), Some(endpoint)) = (&session, &discovery.revocation_endpoint)
        && let Some(rt) = &s.refresh_token
    {
        let key: Key = Sha256::digest(s.sid.as_bytes()).into();
        if core.logout.revoked.get(&key, now).is_none() {
            let client = token::configured_client(cfg);
            let params = [("token", rt.as_str()), ("token_type_hint", "refresh_token")];
            if let Ok(request) = token::post(
                cfg,
                discovery,
                Endpoint::Revocation,
                endpoint,
                &client,
                &params,
            ) {
                return Err(Stop::Call {
                    key: IdpCall::Revoke(key),
                    request,
                });
            }
        }
    }
    let mut headers = session::clear_cookies(cfg, browser);
    let client_id = cfg
        .client_ids
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let after = cfg
        .post_logout_redirect_uri
        .as_ref()
        .map(ToString::to_string);
    let end_session = cfg
        .end_session_endpoint
        .as_ref()
        .or(discovery.end_session_endpoint.as_ref());
    let cognito = cfg
        .issuer
        .discovery_url
        .authority
        .starts_with("cognito-idp.");
    let location = match (end_session, &discovery.authorization_endpoint) {
        (Some(end), _) => {
            let mut params = vec![("client_id", client_id)];
            if let Some(idt) = session.as_ref().and_then(|s| s.id_token.as_deref()) {
                params.push(("id_token_hint", idt));
            }
            if let Some(after) = &after {
                params.push(("post_logout_redirect_uri", after));
            }
            Some(end.with_query(&params))
        }
        // Cognito has no end_session_endpoint: its hosted UI's /logout.
        (None, Some(authorize)) if cognito => {
            let origin = format!("{}://{}", authorize.scheme.as_str(), authorize.authority);
            let mut url = format!(
                "{origin}/logout?client_id={}",
                form_urlencoded::byte_serialize(client_id.as_bytes()).collect::<String>()
            );
            if let Some(after) = &after {
                url.push_str("&logout_uri=");
                url.extend(form_urlencoded::byte_serialize(after.as_bytes()));
            }
            Some(url)
        }
        _ => after,
    };
    Ok(match location {
        Some(location) => {
            headers.push(("location".to_string(), location));
            redirect(headers, "logout")
        }
        None => {
            headers.push(("content-type".to_string(), "application/json".to_string()));
            Decision {
                action: Action::Respond(Response {
                    status: 200,
                    headers,
                    body: r#"{"message":"Logged out"}"#.to_string(),
                }),
                log: Some("logout".to_string()),
            }
        }
    })
}

/// The revocation was answered (its outcome does not matter: the cookies
/// are cleared either way).
pub(super) fn handle_reply(key: &Key, now: u64, core: &mut Core) {
    core.logout.revoked.insert(*key, (), now + REVOKED_TTL);
}
