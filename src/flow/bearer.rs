//! `Authorization: Bearer <jwt>`: verify an access token locally.
//!
//! Pipeline, cheapest first: cache by token hash → parse → registered
//! claims (`iss`, times, `token_use`; no IdP call for a token that fails
//! these) → discovery → keys (refetch on unknown `kid`) → signature. The
//! policy runs after, in `route`, on every request, cached or not.

use std::rc::Rc;

use super::{Allowed, Core, Stop};
use crate::cache::{BoundedCache, same_bytes, tail_key};
use crate::config::Config;
use crate::error::TokenError;
use crate::oidc::claims::{Claims, check_registered, issuer_id};
use crate::oidc::jwt::{Jwt, MAX_TOKEN_LEN};
use crate::oidc::provider::{Document, Keys};

/// Signature-verified tokens and their claims, by `cache::tail_key`.
pub(super) struct State {
    /// Until `exp` + leeway.
    pub(super) verified: BoundedCache<u64, (Rc<str>, Rc<Claims>)>,
}

impl Default for State {
    fn default() -> State {
        State {
            verified: BoundedCache::new(super::VERIFIED_CAPACITY),
        }
    }
}

pub(super) fn authenticate(
    cfg: &Config,
    token: &str,
    now: u64,
    core: &mut Core,
) -> Result<Allowed, Stop> {
    if token.is_empty() {
        return Err(TokenError::Malformed("empty bearer token").into());
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge.into());
    }
    let key = tail_key(&core.hasher, token);
    let cached = core.bearer.verified.get(&key, now);
    let (token, claims) = match cached.filter(|(t, _)| same_bytes(t.as_bytes(), token.as_bytes())) {
        // It passed every registered-claim check when it was verified; of
        // those only the expiry can change, and the entry lapses with it.
        Some((token, claims)) => {
            core.stats.add("token_cache_hit");
            (Rc::clone(token), Rc::clone(claims))
        }
        None => {
            core.stats.add("token_cache_miss");
            let jwt = Jwt::parse(token)?;
            let exp = check_registered(cfg, &jwt.claims, now)?;
            // The token names its issuer; only configured ones are ever fetched.
            let issuer = issuer_id(cfg, &jwt.claims)?;
            let provider = core.provider_mut(issuer).ok_or(TokenError::WrongIssuer)?;
            if provider.discovery(now).is_none() {
                return Err(Stop::Fetch {
                    issuer,
                    doc: Document::Discovery,
                });
            }
            match provider.keys(jwt.kid.as_deref(), now) {
                Keys::Found(candidates) => jwt.verify(candidates)?,
                Keys::Fetch => {
                    return Err(Stop::Fetch {
                        issuer,
                        doc: Document::Jwks,
                    });
                }
                Keys::Unknown => return Err(core.unknown_key(issuer)),
            }
            let (token, claims): (Rc<str>, _) = (token.into(), Rc::new(jwt.claims));
            // Kept until `exp` + leeway, when it would fail the expiry check
            // (then it is a miss, and parsed and refused as expired).
            core.bearer.verified.insert(
                key,
                (Rc::clone(&token), Rc::clone(&claims)),
                exp.saturating_add(cfg.leeway),
            );
            (token, claims)
        }
    };
    Ok(Allowed::new(token, claims))
}
