//! `Authorization: Bearer <jwt>`: verify an access token locally.
//!
//! Pipeline, cheapest first: cache by token hash → refused-token cache →
//! parse → registered claims (`iss`, times, `token_use`; no IdP call for a
//! token that fails these) → discovery → keys (refetch on unknown `kid`) →
//! signature (refetch, budgeted, when no key verified it). The policy runs after, in `route`, on every request, cached
//! or not.

use std::rc::Rc;

use super::{Allowed, Core, Stop};
use crate::cache::{TailKeyed, same_bytes, tail_key};
use crate::config::{Config, IssuerId};
use crate::error::TokenError;
use crate::oidc::claims::{Claims, check_registered, check_tenant, issuer_id};
use crate::oidc::jwt::{Jwt, MAX_TOKEN_LEN};
use crate::oidc::provider::{Document, Keys};

/// Refused tokens remembered at once, per worker. A replayed forgery is a
/// handful of distinct tokens; a flood of distinct ones gains nothing from
/// the cache (each is checked once anyway) and only evicts, the unused
/// ones first: a forgery being replayed stays. As many as the other small
/// caches.
const REFUSED_CAPACITY: usize = super::SMALL_CAPACITY;
/// How long a refusal is remembered, at most (and never past the token's
/// `exp` + leeway, when it would be refused as expired instead). Long
/// enough to absorb a replay burst; short so that one-off forgeries do not
/// hold memory. A new key set forgets the refusals earlier (`key_set`).
const REFUSED_TTL: u64 = 60;
/// Longer refused tokens are not remembered (only checked each time):
/// each entry keeps the whole token, and this bounds the cache to about
/// 4 MiB per worker whatever clients send (`MAX_TOKEN_LEN` would allow
/// 16 MiB). Access tokens are typically 1–2 KiB.
pub(super) const REFUSED_MAX_LEN: usize = 4 * 1024;

/// Signature-verified tokens and their claims, and tokens refused for
/// their signature, both by `cache::tail_key`; a hit compares the whole
/// token.
pub(super) struct State {
    /// Until `exp` + leeway.
    pub(super) verified: TailKeyed<(Rc<str>, Rc<Claims>)>,
    /// For `REFUSED_TTL`, and only while their issuer's key set is the one
    /// that refused them.
    refused: TailKeyed<Refused>,
    /// The signature refused just before this worker fetched, or looked in
    /// shared data for, newer keys (`Core::refused_signature`). The
    /// request's next pass, at once, checks it again only if that gave
    /// another key set: against the same set it is refused as it was, not
    /// verified a second time (which a forgery would cost while the keys
    /// are old and this worker's refetch is spent or fails).
    before_look: Option<Refused>,
}

impl State {
    /// Keeps up to `token_cache_size` verified tokens.
    pub(super) fn new(token_cache_size: usize) -> State {
        State {
            verified: TailKeyed::with_capacity(token_cache_size),
            refused: TailKeyed::with_capacity(REFUSED_CAPACITY),
            before_look: None,
        }
    }
}

/// A token no key of its issuer's current key set verified.
struct Refused {
    token: Box<str>,
    error: TokenError,
    issuer: IssuerId,
    /// `Provider::key_set` when it was refused.
    key_set: u64,
}

/// Whether a refusal holds for as long as the key set that made it: no key
/// verified the signature (`BadSignature`), or none fits the algorithm
/// (`KeyMismatch`). Never an unknown `kid` (the key may arrive with a
/// refetch) nor a time or claim failure (checked before the signature, and
/// time moves).
pub(super) fn stands_with_key_set(e: TokenError) -> bool {
    matches!(e, TokenError::BadSignature | TokenError::KeyMismatch)
}

/// The refusal remembered for `token` under `key`, if its issuer's keys
/// are still the set that refused it.
fn remembered_refusal(core: &mut Core, key: u64, token: &[u8], now: u64) -> Option<TokenError> {
    let entry = core.bearer.refused.get(&key, now)?;
    if !same_bytes(entry.token.as_bytes(), token) {
        return None;
    }
    let (error, issuer, key_set) = (entry.error, entry.issuer, entry.key_set);
    let current = core.provider_mut(issuer)?.key_set(now);
    (current == Some(key_set)).then_some(error)
}

/// Is `token` an access token for us to verify: a JWS whose `iss` we
/// accept and whose audience meets `audience_required`? Any other access
/// token from our own exchange at the token endpoint (opaque, as Google's;
/// or for another API, as Entra ID's for Microsoft Graph, which only Graph
/// can verify) is trusted for where it came from and forwarded untouched.
/// Asked once per token obtained, never of a client's bearer token.
pub(super) fn is_ours(cfg: &Config, token: &str) -> bool {
    Jwt::parse(token).is_ok_and(|jwt| claims_are_ours(cfg, &jwt.claims))
}

/// `is_ours`, of a token whose claims are at hand (it verified before).
pub(super) fn claims_are_ours(cfg: &Config, claims: &Claims) -> bool {
    issuer_id(cfg, claims).is_ok() && cfg.audience_required.is_met_in(&cfg.audience_claim, claims)
}

pub(super) fn authenticate(
    cfg: &Config,
    token: &str,
    now: u64,
    core: &mut Core,
) -> Result<Allowed, Stop> {
    let (token, claims, _) = verify(cfg, token, now, core)?;
    Ok(Allowed::new(token, claims))
}

/// A verified token, its claims, and until when they stand (`exp` +
/// leeway: the verified-token cache's lifetime for it).
pub(super) type Verified = (Rc<str>, Rc<Claims>, u64);

/// `verify`, unless `kept` (a verification the caller kept for this very
/// token: `client_credentials` for the token it obtained, `session` for a
/// cookie's) still stands at `now`: then not even this cache is looked
/// at. True with a fresh verification, for the caller to keep.
pub(super) fn verify_unless_kept(
    cfg: &Config,
    token: &str,
    kept: Option<Verified>,
    now: u64,
    core: &mut Core,
) -> Result<(Verified, bool), Stop> {
    match kept.filter(|(_, _, until)| now < *until) {
        Some(kept) => Ok((kept, false)),
        None => Ok((verify(cfg, token, now, core)?, true)),
    }
}

/// What the caches know of a token.
pub(super) enum Known {
    /// It verified (and its entry has not lapsed).
    Verified(Verified),
    /// It was refused for its signature by its issuer's current keys.
    Refused(TokenError),
    /// Neither: it is to be verified, and cached under this key.
    Unknown(u64),
}

/// What the caches know of `token`, looked up by its bytes: they need not
/// be UTF-8, since a hit compares them with a token that was (so callers
/// may ask before checking). Counts a hit, and a remembered refusal (a
/// miss and `token_refused_cached`); an unknown token's miss is counted by
/// `first_seen`, which it goes to.
pub(super) fn known(core: &mut Core, token: &[u8], now: u64) -> Known {
    let key = tail_key(&core.hasher, token);
    let cached = core.bearer.verified.get_until(&key, now);
    // It passed every registered-claim check when it was verified; of
    // those only the expiry can change, and the entry lapses with it.
    if let Some(((t, claims), until)) = cached.filter(|((t, _), _)| same_bytes(t.as_bytes(), token))
    {
        let verified = (Rc::clone(t), Rc::clone(claims), until);
        core.stats.add("token_cache_hit");
        return Known::Verified(verified);
    }
    // A forgery replayed: the same 401, with no parsing and no
    // signature check.
    if let Some(e) = remembered_refusal(core, key, token, now) {
        core.stats.add("token_cache_miss");
        core.stats.add("token_refused_cached");
        return Known::Refused(e);
    }
    Known::Unknown(key)
}

/// `authenticate`'s checks, returning the result whole.
fn verify(cfg: &Config, token: &str, now: u64, core: &mut Core) -> Result<Verified, Stop> {
    match known(core, token.as_bytes(), now) {
        Known::Verified(verified) => Ok(verified),
        Known::Refused(e) => Err(e.into()),
        Known::Unknown(key) => first_seen(cfg, token, key, now, core),
    }
}

/// A token the caches do not know (`Known::Unknown(key)`): the whole
/// pipeline, and the cache filled with its outcome. (An empty or oversized
/// token is never in the caches: it is refused here, uncounted.)
pub(super) fn first_seen(
    cfg: &Config,
    token: &str,
    key: u64,
    now: u64,
    core: &mut Core,
) -> Result<Verified, Stop> {
    if token.is_empty() {
        return Err(TokenError::Malformed("empty bearer token").into());
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge.into());
    }
    core.stats.add("token_cache_miss");
    let jwt = Jwt::parse(token)?;
    let exp = check_registered(cfg, &jwt.claims, now)?;
    // The token names its issuer; only configured ones are ever fetched.
    let issuer = issuer_id(cfg, &jwt.claims)?;
    if jwt.claims.contains_key("tid") {
        // Entra ID: the configured issuer's discovery says whether
        // it is a multi-tenant one, whose tokens' tenants must match.
        match core.provider.discovery(now) {
            None => return Err(Stop::fetch(Document::Discovery)),
            Some(d) if d.is_multi_tenant() => check_tenant(&jwt.claims)?,
            Some(_) => {}
        }
    }
    let before_look = core
        .bearer
        .before_look
        .take_if(|r| r.issuer == issuer && same_bytes(r.token.as_bytes(), token.as_bytes()));
    let provider = core.provider_mut(issuer).ok_or(TokenError::WrongIssuer)?;
    if provider.discovery(now).is_none() {
        return Err(Stop::fetch_from(issuer, Document::Discovery));
    }
    let keys_until = provider.keys_fresh_until().unwrap_or(now);
    let key_set = provider.key_set(now);
    let refused_again = before_look.filter(|r| key_set == Some(r.key_set));
    let verdict = match provider.keys(jwt.kid.as_deref(), now) {
        Keys::Found(candidates) => match &refused_again {
            Some(r) => Err(r.error),
            None => jwt.verify(candidates),
        },
        Keys::Fetch => {
            return Err(Stop::fetch_from(issuer, Document::Jwks));
        }
        Keys::Unknown => return Err(core.unknown_key(issuer)),
    };
    // (No key fitting the algorithm checks no signature.)
    if refused_again.is_none() && !matches!(verdict, Err(TokenError::KeyMismatch)) {
        core.stats.add("token_signatures_checked");
    }
    if let Err(error) = verdict {
        if let Some(stop) = core.refused_signature(issuer, error, now) {
            if let Some(key_set) = key_set {
                core.bearer.before_look = Some(Refused {
                    token: token.into(),
                    error,
                    issuer,
                    key_set,
                });
            }
            return Err(stop);
        }
        if let Some(key_set) = key_set
            && stands_with_key_set(error)
            && token.len() <= REFUSED_MAX_LEN
        {
            let until = now
                .saturating_add(REFUSED_TTL)
                .min(exp.saturating_add(cfg.leeway));
            let entry = Refused {
                token: token.into(),
                error,
                issuer,
                key_set,
            };
            core.bearer.refused.insert(key, entry, now, until);
        }
        return Err(error.into());
    }
    let (token, claims): (Rc<str>, _) = (token.into(), Rc::new(jwt.claims));
    // Kept until `exp` + leeway, when it would fail the expiry check (then
    // it is a miss, and parsed and refused as expired); and no longer than
    // the key set it was verified with is trusted: then checked again,
    // against the keys fetched anew, so that a key the IdP withdrew (a
    // leaked one) stops passing the tokens it signed, however far their
    // `exp` (a signature check per token in use per JWKS fetch, hourly).
    let until = exp.saturating_add(cfg.leeway).min(keys_until);
    core.bearer
        .verified
        .insert(key, (Rc::clone(&token), Rc::clone(&claims)), now, until);
    Ok((token, claims, until))
}
