//! `Authorization: Basic id:secret`: exchange the client's credentials for
//! an access token at the IdP's token endpoint (client credentials grant),
//! and forward that token.
//!
//! Tokens are shared by all workers through fixed shared-data slots (shared
//! data has no delete, so never one key per client): slot `cc/<n>` holds
//! one entry carrying its full cache key and lifetimes. The slots are the
//! IdP's (`flow::idp_prefix`), not the configuration's: every
//! configuration of the issuer, an edited one too, serves the same token. One exchange per
//! credentials at a time across workers: a compare-and-set lease in slot
//! `cc-lease/<m>` (see `slots`); the others wait (resumed on the root context's tick) or
//! keep using the cached token while it is refreshed.

use std::rc::Rc;

use sha2::{Digest, Sha256};

use super::slots::{self, Key};
use super::{Allowed, Core, IdpCall, Stop, bearer, idp_args};
use crate::action::IdpReply;
use crate::cache::BoundedCache;
use crate::client_auth::Method;
use crate::config::Config;
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::provider::Document;
use crate::oidc::token::{self, ClientCredentials};
use crate::request::RequestView;
use crate::store::SharedStore;

/// A failed exchange is remembered this long per worker.
const NEGATIVE_TTL: u64 = 5;
/// After a failed refresh, the still-valid token is retried this late.
const REFRESH_RETRY: u64 = 5;
/// Lifetime assumed when the IdP states none and the token carries no `exp`.
const DEFAULT_LIFETIME: u64 = 300;
/// The shared-data kind of this flow's slots and leases.
pub(super) const KIND: &str = "cc";

/// What this way in keeps per worker (the shared slots hold the rest).
pub(super) struct State {
    /// Exchanged tokens by credentials key, until their refresh time.
    pub(super) tokens: BoundedCache<Key, Obtained>,
    /// Failed exchanges by credentials key (negative cache).
    pub(super) failures: BoundedCache<Key, Error>,
}

impl Default for State {
    fn default() -> State {
        State {
            tokens: BoundedCache::new(super::SMALL_CAPACITY),
            failures: BoundedCache::new(super::SMALL_CAPACITY),
        }
    }
}

/// The cache key: a salted hash of id, secret, the scope sent (none when
/// `scopes` is not set: the IdP's default scopes, not `openid`'s) and the
/// extra parameters sent, the configuration's fixed ones (hashed where
/// they lie) then those `copied` from the request (a token for one
/// `audience` is not one for another). The secret itself is never stored.
fn key(core: &Core, cfg: &Config, client: &ClientCredentials, copied: &[(String, String)]) -> Key {
    let mut h = core.salted.clone();
    // No scope sent: marked by a byte no id starts with (control characters
    // are refused), so that keys with a scope sent keep their value.
    if !cfg.scopes_explicit {
        h.update([1]);
    }
    let extra = cfg
        .client_credentials_args
        .iter()
        .chain(copied)
        .flat_map(|(n, v)| [n.as_str(), v.as_str()]);
    // Each part after its length: a value copied from the query may hold
    // any byte (`%00` too), so no separator would keep two lists of
    // parts apart.
    for part in [client.id.as_str(), client.secret(), &cfg.scope]
        .into_iter()
        .chain(extra)
    {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// SHA-256 having hashed the salt, padded to a whole block: each request's
/// key then starts from a copy of it, one compression (~0.13 µs in V8)
/// fewer per client-credentials request than hashing the salt each time.
pub(super) fn salted(salt: &[u8; 32]) -> Sha256 {
    let mut h = Sha256::new();
    h.update(salt);
    h.update([0; 32]);
    h
}

/// A token the exchange obtained.
#[derive(Clone)]
pub(super) struct Obtained {
    token: Rc<str>,
    /// Ours to verify (`bearer::is_ours`) by the top level's audience (a
    /// rule cannot change the issuers); else trusted for coming from our
    /// own exchange and forwarded as obtained (Okta's org server). `None`:
    /// not judged so yet (read from the shared slot under a rule with an
    /// audience of its own).
    ours: Option<bool>,
    /// The scopes granted (the response's `scope`), read by
    /// `scopes_required` when the token is not ours.
    scope: Option<Rc<str>>,
    /// An `ours` token as verified (its claims, until `exp` + leeway): this
    /// worker's later requests with these credentials skip the
    /// verified-token cache (a keyed hash, a lookup and a compare of the
    /// whole token). Never in the shared slot: each worker verifies.
    verified: Option<bearer::Verified>,
}

/// A cached token, as stored in its slot: what the IdP answered, which
/// every configuration of the issuer reads alike.
struct Entry {
    expires_at: u64,
    refresh_at: u64,
    token: Rc<str>,
    scope: Option<Rc<str>>,
}

impl Entry {
    /// `expires_at`, `refresh_at`, the length of `scope` (0: none),
    /// `scope`, the token.
    fn decode(payload: &[u8]) -> Option<Entry> {
        let (expires_at, rest) = payload.split_first_chunk::<8>()?;
        let (refresh_at, rest) = rest.split_first_chunk::<8>()?;
        let (&[hi, lo], rest) = rest.split_first_chunk::<2>()?;
        let (scope, token) = rest.split_at_checked(usize::from(u16::from_be_bytes([hi, lo])))?;
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(Rc::<str>::from);
        Some(Entry {
            expires_at: u64::from_be_bytes(*expires_at),
            refresh_at: u64::from_be_bytes(*refresh_at),
            token: text(token)?,
            scope: if scope.is_empty() {
                None
            } else {
                Some(text(scope)?)
            },
        })
    }

    fn encode(&self) -> Vec<u8> {
        // A scope list longer than 64 KiB is dropped: `scopes_required`
        // then finds none granted (refused, never passed).
        let scope = self
            .scope
            .as_deref()
            .filter(|s| s.len() <= usize::from(u16::MAX));
        let scope = scope.unwrap_or_default().as_bytes();
        let mut v = Vec::with_capacity(18 + scope.len() + self.token.len());
        v.extend_from_slice(&self.expires_at.to_be_bytes());
        v.extend_from_slice(&self.refresh_at.to_be_bytes());
        v.extend_from_slice(&(scope.len() as u16).to_be_bytes());
        v.extend_from_slice(scope);
        v.extend_from_slice(self.token.as_bytes());
        v
    }

    /// The token as `cfg`'s configuration takes it: whether it is ours to
    /// verify is its judgment (its issuers and audience), not the one of
    /// the configuration that obtained it. Judged only by a top level's
    /// audience (`Obtained::ours`).
    fn obtained(&self, cfg: &Config) -> Obtained {
        Obtained {
            token: Rc::clone(&self.token),
            ours: (!cfg.audience_overridden).then(|| bearer::is_ours(cfg, &self.token)),
            scope: self.scope.clone(),
            verified: None,
        }
    }
}

/// Where `key`'s token is in shared data.
fn slot(core: &Core, key: &Key) -> String {
    slots::slot_name(core.leases_for(KIND).prefix(), KIND, key)
}

fn read_entry(core: &Core, store: &dyn SharedStore, key: &Key) -> Option<Entry> {
    slots::read(store, &slot(core, key), key).and_then(|p| Entry::decode(&p))
}

fn write_entry(core: &Core, store: &mut dyn SharedStore, key: &Key, e: &Entry) {
    slots::write(store, &slot(core, key), key, &e.encode());
}

/// The budget refused the exchange for `key`: a token still valid serves
/// on (retried the next second), as when the IdP does not answer, rather
/// than a 503 for every request with these credentials until it expires.
pub(super) fn refused(key: &Key, now: u64, core: &Core, store: &mut dyn SharedStore) {
    serve_on_until(core, store, key, now, now + 1);
}

/// A refresh did not happen: the current token, if still valid, serves on
/// and is refreshed again at `retry`, or at its expiry if sooner (an IdP's
/// Retry-After never stretches a token's life). False when there is none
/// to serve.
fn serve_on_until(
    core: &Core,
    store: &mut dyn SharedStore,
    key: &Key,
    now: u64,
    retry: u64,
) -> bool {
    let Some(mut current) = read_entry(core, store, key).filter(|c| now < c.expires_at) else {
        return false;
    };
    current.refresh_at = retry.min(current.expires_at);
    write_entry(core, store, key, &current);
    true
}

/// Marks the shared entry for `key` expired (shared data has no delete),
/// so that no worker serves its token on.
fn forget(core: &Core, store: &mut dyn SharedStore, key: &Key, now: u64) {
    if let Some(mut e) = read_entry(core, store, key) {
        (e.expires_at, e.refresh_at) = (now, now);
        write_entry(core, store, key, &e);
    }
}

pub(super) fn authenticate(
    cfg: &Config,
    req: &RequestView,
    client: &ClientCredentials,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Allowed, Stop> {
    // With tls_client_auth for any endpoint, the IdP's cluster presents
    // the gateway's certificate (a cluster is per IdP host, not per
    // endpoint) on every exchange, callers' included: an IdP that
    // authenticates the client its certificate names (Keycloak's X.509
    // authenticator reads no secret) would give a caller naming our client
    // our token, whatever secret it sent. Named as an IdP's database may
    // match it: whatever the case, with spaces around.
    let ours = |id: &String| id.trim().eq_ignore_ascii_case(client.id.trim());
    if cfg.client_auth.uses(Method::TlsClientAuth) && cfg.client_ids.iter().any(ours) {
        return Err(TokenError::MethodDisabled(
            "the gateway's own client authenticates by certificate, not for callers",
        )
        .into());
    }
    let copied = idp_args::client_credentials(cfg, req);
    let key = key(core, cfg, client, &copied);
    // A failed exchange is answered again until it lapses (an IdP's
    // Retry-After may make that minutes), unless another worker has
    // obtained a token since: that one serves.
    let failed = core
        .cc
        .failures
        .get_until(&key, now)
        .map(|(e, until)| e.served(until, now));
    let obtained = match core.cc.tokens.get(&key, now) {
        Some(obtained) if failed.is_none() => {
            core.stats.add("cc_cache_hit");
            obtained.clone()
        }
        _ => {
            let cached = read_entry(core, store, &key).filter(|e| now < e.expires_at);
            match cached {
                Some(e) if now < e.refresh_at => {
                    let obtained = e.obtained(cfg);
                    core.cc
                        .tokens
                        .insert(key, obtained.clone(), now, e.refresh_at);
                    obtained
                }
                cached => {
                    if let Some(e) = failed {
                        return Err(Stop::Fail(e));
                    }
                    let Some(discovery) = core.provider.discovery(now) else {
                        return Err(Stop::fetch(Document::Discovery));
                    };
                    if core
                        .leases_for(KIND)
                        .acquire(store, KIND, &key, now, cfg.idp_timeout_ms)
                    {
                        let mut params = vec![("grant_type", "client_credentials")];
                        // Never the default `openid`: Cognito refuses it here.
                        if cfg.scopes_explicit {
                            params.push(("scope", cfg.scope.as_str()));
                        }
                        params.extend(idp_args::as_str(&cfg.client_credentials_args));
                        params.extend(idp_args::as_str(&copied));
                        return match token::request(cfg, discovery, client, &params) {
                            Ok(request) => Err(Stop::call(IdpCall::Credentials(key), request)),
                            Err(e) => {
                                core.leases_for(KIND).release(store, KIND, &key);
                                Err(Stop::Fail(e.into()))
                            }
                        };
                    }
                    // Someone else is exchanging: use the old token meanwhile, or wait.
                    match cached {
                        Some(e) => e.obtained(cfg),
                        None => return Err(Stop::wait(IdpCall::Credentials(key))),
                    }
                }
            }
        }
    };
    // Judged against the top level's audience when obtained: a rule with
    // its own judges again, by the claims this worker verified (before, a
    // JWT parse per request: ~4 µs of ~16 in the wasmtime harness's loop,
    // tests/harness/profile.rs), else by parsing the token (its first
    // request here, or a token that never verified).
    let ours = match (&obtained.verified, cfg.audience_overridden) {
        (_, false) => obtained.ours.unwrap_or_else(|| {
            let ours = bearer::is_ours(cfg, &obtained.token);
            if let Some(o) = core.cc.tokens.get_mut(&key, now) {
                o.ours = Some(ours);
            }
            ours
        }),
        (Some((_, claims, _)), true) => bearer::claims_are_ours(cfg, claims),
        (None, true) => bearer::is_ours(cfg, &obtained.token),
    };
    let mut allowed = if ours {
        let (verified, fresh) =
            bearer::verify_unless_kept(cfg, &obtained.token, obtained.verified, now, core)?;
        if fresh && let Some(o) = core.cc.tokens.get_mut(&key, now) {
            o.verified = Some(verified.clone());
        }
        let (token, claims, _) = verified;
        Allowed::new(token, claims)
    } else {
        // Who the token is for is the client that just authenticated at
        // the IdP; nothing of it is readable here.
        let scope = obtained.scope.or_else(|| Some(cfg.scope.as_str().into()));
        Allowed::obtained(obtained.token, Rc::default(), scope)
    };
    allowed.hide_authorization = true;
    allowed.metric = "allowed_client_credentials";
    Ok(allowed)
}

/// Takes the token endpoint's answer for `key`. Returns the error, if any,
/// for the log; waiting requests find the outcome in the caches.
pub(super) fn handle_reply(
    cfg: &Config,
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    let result = token::parse_response(reply).and_then(|response| {
        let by_expires_in = response.expires_in.map(|s| now.saturating_add(s));
        let by_exp = token::unverified_exp(&response.access_token);
        let expires_at = match (by_expires_in, by_exp) {
            (Some(a), Some(b)) => a.min(b),
            (Some(t), None) | (None, Some(t)) => t,
            (None, None) => now + DEFAULT_LIFETIME,
        };
        // A token that has expired already (`expires_in: 0`, a past `exp`)
        // would be cached until now, so the requests waiting for it would
        // miss it and exchange again, each time, until the budget is spent.
        if expires_at <= now {
            return Err(IdpError::BadBody {
                endpoint: Endpoint::Token,
                reason: "the access token has expired already".into(),
            }
            .into());
        }
        Ok((response, expires_at))
    });
    match &result {
        Ok((response, expires_at)) => {
            let expires_at = *expires_at;
            // Refresh a margin before expiry: a quarter of the life, at most a minute.
            let margin = (expires_at.saturating_sub(now) / 4).min(60);
            let entry = Entry {
                expires_at,
                refresh_at: expires_at - margin,
                token: response.access_token.as_str().into(),
                scope: response.scope.as_deref().map(Rc::from),
            };
            write_entry(core, store, key, &entry);
            core.cc
                .tokens
                .insert(*key, entry.obtained(cfg), now, entry.refresh_at);
        }
        // The IdP refused these credentials (a secret revoked, a client
        // disabled): the token they obtained before is not served on.
        Err(e @ Error::Token(TokenError::Rejected)) => {
            forget(core, store, key, now);
            core.cc
                .failures
                .insert(*key, e.clone(), now, now + NEGATIVE_TTL);
        }
        // A refresh failed: the current token serves on, retried soon.
        Err(e) => {
            let retry = now + e.retry_after().unwrap_or(REFRESH_RETRY);
            if !serve_on_until(core, store, key, now, retry) {
                let ttl = e.retry_after().unwrap_or(NEGATIVE_TTL);
                core.cc.failures.insert(*key, e.clone(), now, now + ttl);
            }
        }
    }
    core.leases_for(KIND).release(store, KIND, key);
    result.err()
}
