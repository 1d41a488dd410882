//! What a configuration adds to the requests the filter makes of the IdP:
//! `audience`, `authorization_query_args_*` and `token_post_args_*` (Kong's
//! keys), e.g. Auth0's `audience` or Keycloak's `kc_idp_hint`. None of them
//! can set a parameter the protocol sets (`config::PROTOCOL_PARAMS`).

use crate::config::{Config, PROTOCOL_PARAMS};
use crate::request::RequestView;

/// Extra parameters of the login redirect for `req`.
pub(super) fn authorization(cfg: &Config, req: &RequestView) -> Vec<(String, String)> {
    let mut args: Vec<(String, String)> = cfg
        .audience
        .iter()
        .map(|audience| ("audience".to_string(), audience.clone()))
        .chain(cfg.authorization_args.fixed.iter().cloned())
        .collect();
    let copied = copied(&args, &cfg.authorization_args.client, req);
    args.extend(copied);
    args
}

/// Extra parameters of a code exchange or a refresh (the `audience` was
/// sent at login). `req`: the user's request, when there is one to copy
/// from.
pub(super) fn token(cfg: &Config, req: Option<&RequestView>) -> Vec<(String, String)> {
    let mut args = cfg.token_args.fixed.clone();
    if let Some(req) = req {
        let copied = copied(&args, &cfg.token_args.client, req);
        args.extend(copied);
    }
    args
}

/// Extra parameters of a client credentials grant for `req` besides the
/// fixed ones (`Config::client_credentials_args`, sent before these): those
/// copied from the request. Nothing to copy costs no allocation.
pub(super) fn client_credentials(cfg: &Config, req: &RequestView) -> Vec<(String, String)> {
    copied(&cfg.client_credentials_args, &cfg.token_args.client, req)
}

/// Each of `names` that `req` carries as a query argument, else as a
/// header, and that neither `fixed` nor an earlier name sets.
fn copied(
    fixed: &[(String, String)],
    names: &[String],
    req: &RequestView,
) -> Vec<(String, String)> {
    let mut args: Vec<(String, String)> = Vec::new();
    let query = req
        .path()
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    for name in names {
        if fixed.iter().chain(&args).any(|(n, _)| n == name)
            || PROTOCOL_PARAMS.contains(&name.as_str())
        {
            continue;
        }
        let from_query = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == name.as_str())
            .map(|(_, v)| v.into_owned());
        let value = from_query.or_else(|| req.get(&name.to_ascii_lowercase()).map(str::to_string));
        if let Some(v) = value {
            args.push((name.clone(), v));
        }
    }
    args
}

/// `pairs` as the `&str` pairs the request builders take.
pub(super) fn as_str(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}
