//! Opaque access tokens (and, without `bearer` in `auth_methods`, JWTs),
//! checked at the IdP's introspection endpoint (RFC 7662). An answer
//! passes when it is `active`, names our issuer (if any), an access
//! token's `token_type` (if any) and no other kind of token (`typ`,
//! `token_use`, as `claims::is_id_token` reads them); its claims (`scope`,
//! `client_id`, `exp`, …) feed the same policy as a JWT's. Answers are
//! cached per worker by token hash until the token's `exp`, at most
//! `introspection_cache_ttl`.

use std::rc::Rc;

use serde_json::Value;

use super::answers::{Answer, TokenAnswers};
use super::slots::Key;
use super::{Allowed, Core, IdpCall, Stop};
use crate::action::IdpReply;
use crate::config::Config;
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::claims::{self, Claims, check_not_early, check_times};
use crate::oidc::provider::Document;
use crate::oidc::token;

/// An inactive token is remembered this long (it may not become active).
const INACTIVE_TTL: u64 = 30;

/// What this way in keeps per worker.
pub(super) struct State {
    /// Introspection answers by token.
    pub(super) answers: TokenAnswers,
}

impl State {
    /// Keeps as many answers as verified tokens (`token_cache_size`): an
    /// opaque token is an API client's credential as a JWT is, and a miss
    /// is an IdP call.
    pub(super) fn new(token_cache_size: usize) -> State {
        State {
            answers: TokenAnswers::new(token_cache_size),
        }
    }
}

/// Is this token for introspection rather than local verification? Not
/// a JWS: three parts, the first a JSON object, base64url-encoded, which
/// starts `e` (`{` is 0x7B). Google's service-account tokens
/// (`ya29.c.…`) have three parts too.
pub(super) fn is_opaque(token: &str) -> bool {
    !token.starts_with('e') || token.split('.').count() != 3
}

pub(super) fn authenticate(
    cfg: &Config,
    token: &str,
    now: u64,
    core: &mut Core,
) -> Result<Allowed, Stop> {
    TokenAnswers::admit(token)?;
    let (token, answer) = match core.introspection.answers.get(&core.hasher, token, now) {
        Ok((token, answered)) => (token, answered?),
        Err(key) => {
            let Some(discovery) = core.provider.discovery(now) else {
                return Err(Stop::fetch(Document::Discovery));
            };
            let url = cfg
                .introspection_endpoint
                .as_ref()
                .or(discovery.introspection_endpoint.as_ref())
                // No endpoint (Amazon Cognito has none): the token cannot
                // be checked, so it is simply not a valid token (401), not
                // an IdP outage (502).
                .ok_or(TokenError::Malformed(
                    "the IdP has no introspection endpoint to check the token at",
                ))?;
            let client = token::configured_client(cfg);
            let params = [
                ("token", token),
                ("token_type_hint", cfg.introspection_hint.as_str()),
            ];
            let request = token::post(
                cfg,
                discovery,
                Endpoint::Introspection,
                url,
                &client,
                &params,
            )
            .map_err(Error::Idp)?;
            return Err(Stop::call(IdpCall::Introspect(key), request));
        }
    };
    check_times_if_any(&answer.claims, now, cfg.leeway)?;
    let mut allowed = Allowed::new(token, Rc::clone(&answer.claims));
    allowed.metric = "allowed_introspection";
    allowed.introspection = Some(answer);
    Ok(allowed)
}

/// Introspection answers need not carry `exp`; when they do, it counts,
/// and `nbf` and `iat` count either way.
fn check_times_if_any(claims: &Claims, now: u64, leeway: u64) -> Result<(), TokenError> {
    if claims.contains_key("exp") {
        check_times(claims, now, leeway)?;
    }
    check_not_early(claims, now, leeway)
}

/// `active: true` says nothing about what the token is for: a refresh
/// token introspected as active must not pass as an access token. The
/// answer's `token_type` (RFC 7662 §2.2) may be absent (or null), the
/// scheme `Bearer` (any case), `access_token` (the `token_type_hint` value)
/// or RFC 8693's access-token URN; anything else is refused.
fn is_access_token_type(token_type: Option<&Value>) -> bool {
    match token_type {
        None | Some(Value::Null) => true,
        Some(Value::String(t)) => {
            t.eq_ignore_ascii_case("bearer")
                || t == "access_token"
                || t == "urn:ietf:params:oauth:token-type:access_token"
        }
        Some(_) => false,
    }
}

/// Caches the introspection answer for the requests awaiting it.
pub(super) fn handle_reply(
    cfg: &Config,
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
) -> Option<Error> {
    let endpoint = Endpoint::Introspection;
    let result: Result<Claims, Error> = match reply.status {
        Some(200) => match Claims::from_slice(&reply.body) {
            Some(claims) => match claims.get("active") {
                // An `iss` that is not the issuer's name, or no name at all.
                Some(Value::Bool(true)) => match claims.get("iss") {
                    Some(iss) if iss.as_str().is_none_or(|iss| !cfg.issuer.is(iss)) => {
                        Err(TokenError::WrongIssuer.into())
                    }
                    // Keycloak answers for its ID and refresh tokens too,
                    // saying so in `typ`: as a bearer token, either is
                    // refused as it is when verified here.
                    _ if !is_access_token_type(claims.get("token_type"))
                        || claims::is_id_token(&claims) =>
                    {
                        Err(TokenError::NotAccessToken.into())
                    }
                    _ => Ok(claims),
                },
                _ => Err(TokenError::Inactive.into()),
            },
            _ => Err(IdpError::BadBody {
                endpoint,
                reason: "not a JSON object".into(),
            }
            .into()),
        },
        Some(429) => Err(token::throttled(endpoint, reply).into()),
        None | Some(503 | 504) => Err(IdpError::Unavailable {
            endpoint,
            status: reply.status,
        }
        .into()),
        Some(status) => Err(IdpError::BadStatus { endpoint, status }.into()),
    };
    let exp = |claims: &Claims| {
        claims
            .get("exp")
            .and_then(Value::as_f64)
            .map_or(u64::MAX, |t| t as u64)
    };
    let result = match result {
        Ok(claims) if now >= exp(&claims).saturating_add(cfg.leeway) => {
            Err(TokenError::Expired.into())
        }
        other => other,
    };
    // At least until the next second, so the requests awaiting the answer
    // find it; an IdP failure reaches them directly and is barely cached.
    let until = match &result {
        Ok(claims) => exp(claims).min(now.saturating_add(cfg.introspection_cache_ttl)),
        Err(Error::Token(_)) => now + INACTIVE_TTL,
        // Throttled: not asked again before the IdP said.
        Err(e) => now + e.retry_after().unwrap_or(0),
    }
    .max(now + 1);
    let err = result.as_ref().err().cloned();
    core.introspection
        .answers
        .insert(*key, result.map(|c| Rc::new(Answer::new(c))), now, until);
    err
}
