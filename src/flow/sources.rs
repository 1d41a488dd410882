//! Kong's `bearer_token_param_type` and `client_credentials_param_type`
//! beyond the `Authorization` header: a bearer token in the `access_token`
//! query argument or in the cookie `bearer_token_cookie_name`; client
//! credentials in the `client_id` and `client_secret` query arguments.
//! Off unless listed: tokens in URLs end up in logs.

use super::session::Browser;
use crate::config::Config;
use crate::oidc::token::ClientCredentials;
use crate::request::RequestView;

pub(super) enum Found {
    Bearer(String),
    Client(ClientCredentials),
}

const TOKEN_ARG: &[&str] = &["access_token"];
const CLIENT_ARGS: &[&str] = &["client_id", "client_secret"];
/// Both, when the configuration reads both from the query.
const ALL_ARGS: &[&str] = &["access_token", "client_id", "client_secret"];

/// The first credential the configuration lets a request carry outside
/// the `Authorization` header, if it carries one.
pub(super) fn find(cfg: &Config, req: &RequestView, browser: &Browser) -> Option<Found> {
    let wants_query = cfg.bearer_from_query || cfg.client_credentials_from_query;
    let query = if wants_query { query(req) } else { Vec::new() };
    let arg = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if cfg.bearer_from_query
        && let Some(token) = arg("access_token")
    {
        return Some(Found::Bearer(token));
    }
    if cfg.client_credentials_from_query
        && let (Some(id), Some(secret)) = (arg("client_id"), arg("client_secret"))
        && !id.is_empty()
    {
        // Checked as Basic credentials are (`is_well_formed`) by the caller.
        let client = ClientCredentials::new(id, secret);
        return Some(Found::Client(client));
    }
    let cookie = cfg.bearer_cookie.as_deref()?;
    let token = browser.cookie(cookie)?;
    Some(Found::Bearer(token.to_string()))
}

/// The request's `:path` without the query arguments that carry
/// credentials under this configuration, when it has any: what a request
/// that passes without authentication (bypass, `anonymous`) loses with
/// `hide_credentials`.
pub(super) fn path_without_credentials(cfg: &Config, req: &RequestView) -> Option<String> {
    if !cfg.bearer_from_query && !cfg.client_credentials_from_query {
        return None;
    }
    let (_, q) = req.path().split_once('?')?;
    // `client_id` alone is no credential (an application's own argument,
    // often): it goes only with a `client_secret`.
    let (mut token, mut secret) = (false, false);
    for (k, _) in form_urlencoded::parse(q.as_bytes()) {
        token |= cfg.bearer_from_query && k == "access_token";
        secret |= cfg.client_credentials_from_query && k == "client_secret";
    }
    let names = match (token, secret) {
        (false, false) => return None,
        (true, false) => TOKEN_ARG,
        (false, true) => CLIENT_ARGS,
        (true, true) => ALL_ARGS,
    };
    Some(path_without(req, names))
}

fn query(req: &RequestView) -> Vec<(String, String)> {
    let q = req
        .path()
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    form_urlencoded::parse(q.as_bytes()).into_owned().collect()
}

/// The request's `:path` without the query arguments `names`, the others
/// kept byte for byte.
fn path_without(req: &RequestView, names: &[&str]) -> String {
    let Some((path, q)) = req.path().split_once('?') else {
        return req.path().to_string();
    };
    let kept: Vec<&str> = q
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            let key = form_urlencoded::parse(key.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            !pair.is_empty() && !names.contains(&key.as_str())
        })
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}
