//! What a configuration adds to the requests the filter makes of the IdP:
//! `audience`, `authorization_query_args_*` and `token_post_args_*` (Kong's
//! keys), e.g. Auth0's `audience` or Keycloak's `kc_idp_hint`. None of them
//! can set a parameter the protocol sets (`config::PROTOCOL_PARAMS`).

use crate::config::{Config, ExtraArgs, PROTOCOL_PARAMS};
use crate::request::RequestView;

/// Extra parameters of the login redirect for `req`.
pub(super) fn authorization(cfg: &Config, req: &RequestView) -> Vec<(String, String)> {
    let mut args = Vec::new();
    if let Some(audience) = &cfg.audience {
        args.push(("audience".to_string(), audience.clone()));
    }
    extend(&mut args, &cfg.authorization_args, Some(req));
    args
}

/// Extra parameters of a token request; `client_credentials`: the
/// `audience` goes with it (the code exchange's was sent at login). `req`:
/// the user's request, when there is one to copy from.
pub(super) fn token(
    cfg: &Config,
    req: Option<&RequestView>,
    client_credentials: bool,
) -> Vec<(String, String)> {
    let mut args = Vec::new();
    if let (Some(audience), true) = (&cfg.audience, client_credentials) {
        args.push(("audience".to_string(), audience.clone()));
    }
    extend(&mut args, &cfg.token_args, req);
    args
}

/// The fixed parameters, then each named one the user's request carries as
/// a query argument, else as a header, that is not set already.
fn extend(args: &mut Vec<(String, String)>, extra: &ExtraArgs, req: Option<&RequestView>) {
    args.extend(extra.fixed.iter().cloned());
    let Some(req) = req else { return };
    let query = req
        .path()
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or_default();
    for name in &extra.client {
        if args.iter().any(|(n, _)| n == name) || PROTOCOL_PARAMS.contains(&name.as_str()) {
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
}

/// `pairs` as the `&str` pairs the request builders take.
pub(super) fn as_str(pairs: &[(String, String)]) -> impl Iterator<Item = (&str, &str)> {
    pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
}
