//! `search_user_info`: after authentication, the userinfo endpoint's claims
//! (OpenID Connect Core §5.3) join the token's, for claim headers and the
//! policy: IdPs such as Okta and Entra ID put groups and profile there
//! rather than in the access token. Cached per worker by token hash.

use std::rc::Rc;

use super::answers::{Answer, Answered, TokenAnswers};
use super::slots::Key;
use super::{Allowed, Core, IdpCall, Stop};
use crate::action::{IdpReply, IdpRequest};
use crate::config::{Config, IssuerId};
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::claims::{Claims, issuer_id};
use crate::oidc::provider::Document;
use crate::oidc::token;

/// A userinfo answer is reused at most this long.
const USERINFO_TTL: u64 = 300;

/// What this way in keeps per worker.
pub(super) struct State {
    /// Userinfo answers by token.
    pub(super) answers: TokenAnswers,
}

impl Default for State {
    fn default() -> State {
        State {
            answers: TokenAnswers::new(super::SMALL_CAPACITY),
        }
    }
}

/// Adds the userinfo claims to `allowed`'s; the token's own claims win.
pub(super) fn enrich(
    cfg: &Config,
    mut allowed: Allowed,
    now: u64,
    core: &mut Core,
) -> Result<Allowed, Stop> {
    // At the userinfo endpoint of the token's issuer (one of
    // `issuers_allowed` for its own tokens): never another IdP's, which
    // would refuse it, and should not see it.
    let issuer = issuer_id(cfg, &allowed.claims).unwrap_or(IssuerId::CONFIGURED);
    let (_, extra) = answer(cfg, &allowed.token, issuer, now, core)?;
    // OpenID Connect Core §5.3.2: userinfo about another subject than the
    // ID token's is not to be used. Checked where the claims are an ID
    // token's (a session whose access token is not ours to read): an
    // access token's `sub` may name the user otherwise (Okta's is the
    // login, its userinfo's the user id).
    let of_id_token = allowed
        .session
        .as_ref()
        .is_some_and(|s| s.identity.is_some());
    if of_id_token && extra.claims.get("sub") != allowed.claims.get("sub") {
        return Err(Error::Idp(IdpError::BadBody {
            endpoint: Endpoint::Userinfo,
            reason: "the answer is about another subject than the ID token".into(),
        })
        .into());
    }
    allowed.claims = extra.joined_to(&allowed.claims);
    allowed.userinfo = Some(extra);
    Ok(allowed)
}

/// `auth_methods: userinfo` (Kong): an opaque bearer token is valid when
/// the userinfo endpoint answers 200 for it; its claims are the identity.
/// A 401 or 403 from it is a 401 here.
pub(super) fn authenticate(
    cfg: &Config,
    token: &str,
    now: u64,
    core: &mut Core,
) -> Result<Allowed, Stop> {
    // An opaque token names no issuer: the configured one's.
    let (token, answer) = answer(cfg, token, IssuerId::CONFIGURED, now, core)?;
    let mut allowed = Allowed::new(token, Rc::clone(&answer.claims));
    allowed.metric = "allowed_userinfo";
    allowed.userinfo = Some(answer);
    Ok(allowed)
}

/// The userinfo endpoint's answer for `token` (and the token as the cache
/// keeps it): cached, else a call.
fn answer(
    cfg: &Config,
    token: &str,
    issuer: IssuerId,
    now: u64,
    core: &mut Core,
) -> Result<(Rc<str>, Rc<Answer>), Stop> {
    TokenAnswers::admit(token)?;
    let key = match core.userinfo.answers.get(&core.hasher, token, now) {
        Ok((token, answered)) => return Ok((token, answered?)),
        Err(key) => key,
    };
    let provider = core.provider_mut(issuer).ok_or(TokenError::WrongIssuer)?;
    let Some(discovery) = provider.discovery(now) else {
        return Err(Stop::fetch_from(issuer, Document::Discovery));
    };
    let url = discovery
        .userinfo_endpoint
        .as_ref()
        .ok_or(Error::Idp(IdpError::Unroutable {
            endpoint: Endpoint::Userinfo,
            reason: "discovery has no userinfo_endpoint".into(),
        }))?;
    let request = IdpRequest::to(cfg, Endpoint::Userinfo, "GET", url)
        .map_err(Error::Idp)?
        .header("authorization", format!("Bearer {token}"));
    Err(Stop::call(IdpCall::Userinfo(key), request))
}

/// Caches the userinfo answer for the requests awaiting it.
pub(super) fn handle_reply(
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
) -> Option<Error> {
    let endpoint = Endpoint::Userinfo;
    let result: Answered = match reply.status {
        Some(200) => match Claims::from_slice(&reply.body) {
            Some(claims) => Ok(Rc::new(Answer::new(claims))),
            None => Err(IdpError::BadBody {
                endpoint,
                reason: "not a JSON object".into(),
            }
            .into()),
        },
        // The IdP no longer accepts the token (revoked): not authenticated.
        // A 400 too (RFC 6750 §3.1 `invalid_request`): the call is a plain
        // GET with the token, so only the token can be what is malformed.
        Some(400 | 401 | 403) => Err(TokenError::Rejected.into()),
        Some(429) => Err(token::throttled(endpoint, reply).into()),
        None | Some(503 | 504) => Err(IdpError::Unavailable {
            endpoint,
            status: reply.status,
        }
        .into()),
        Some(status) => Err(IdpError::BadStatus { endpoint, status }.into()),
    };
    let until = match &result {
        Ok(_) | Err(Error::Token(_)) => now + USERINFO_TTL,
        // An IdP failure reaches the waiting requests and is barely cached;
        // a throttled call is not made again before the IdP said.
        Err(e) => now + e.retry_after().unwrap_or(1),
    };
    let err = result.as_ref().err().cloned();
    core.userinfo.answers.insert(*key, result, now, until);
    err
}
