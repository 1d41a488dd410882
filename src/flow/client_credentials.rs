//! `Authorization: Basic id:secret`: exchange the client's credentials for
//! an access token at the IdP's token endpoint (client credentials grant),
//! and forward that token.
//!
//! Tokens are shared by all workers through fixed shared-data slots (shared
//! data has no delete, so never one key per client): slot `cc/<n>` holds
//! one entry carrying its full cache key and lifetimes. One exchange per
//! credentials at a time across workers: a compare-and-set lease in slot
//! `cc-lease/<m>` (see `slots`); the others wait (resumed on the root context's tick) or
//! keep using the cached token while it is refreshed.

use sha2::{Digest, Sha256};

use super::slots::{self, Key};
use super::{Allowed, Core, IdpCall, Stop, bearer};
use crate::action::IdpReply;
use crate::cache::BoundedCache;
use crate::config::Config;
use crate::error::Error;
use crate::oidc::provider::Document;
use crate::oidc::token::{self, ClientCredentials};
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
    pub(super) tokens: BoundedCache<Key, String>,
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

/// The cache key: a salted hash of id, secret and scopes. The secret itself
/// is never stored.
fn key(core: &Core, cfg: &Config, client: &ClientCredentials) -> Key {
    let mut h = Sha256::new();
    h.update(core.salt);
    for part in [client.id.as_str(), client.secret(), &cfg.scope] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

/// A cached token, as stored in its slot.
struct Entry {
    expires_at: u64,
    refresh_at: u64,
    token: String,
}

impl Entry {
    fn decode(payload: &[u8]) -> Option<Entry> {
        let (expires_at, rest) = payload.split_first_chunk::<8>()?;
        let (refresh_at, token) = rest.split_first_chunk::<8>()?;
        Some(Entry {
            expires_at: u64::from_be_bytes(*expires_at),
            refresh_at: u64::from_be_bytes(*refresh_at),
            token: String::from_utf8(token.to_vec()).ok()?,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + self.token.len());
        v.extend_from_slice(&self.expires_at.to_be_bytes());
        v.extend_from_slice(&self.refresh_at.to_be_bytes());
        v.extend_from_slice(self.token.as_bytes());
        v
    }
}

fn read_entry(core: &Core, store: &dyn SharedStore, key: &Key) -> Option<Entry> {
    slots::read(
        store,
        &slots::slot_name(core.shared_prefix(), KIND, key),
        key,
    )
    .and_then(|p| Entry::decode(&p))
}

fn write_entry(core: &Core, store: &mut dyn SharedStore, key: &Key, e: &Entry) {
    slots::write(
        store,
        &slots::slot_name(core.shared_prefix(), KIND, key),
        key,
        &e.encode(),
    );
}

pub(super) fn authenticate(
    cfg: &Config,
    basic: &str,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Allowed, Stop> {
    let client = ClientCredentials::from_basic(basic)?;
    let key = key(core, cfg, &client);
    if let Some(e) = core.cc.failures.get(&key, now) {
        return Err(Stop::Fail(e.clone()));
    }
    let token = match core.cc.tokens.get(&key, now) {
        Some(token) => {
            core.stats.add("cc_cache_hit");
            token.clone()
        }
        None => {
            let cached = read_entry(core, store, &key).filter(|e| now < e.expires_at);
            match cached {
                Some(e) if now < e.refresh_at => {
                    core.cc.tokens.insert(key, e.token.clone(), e.refresh_at);
                    e.token
                }
                cached => {
                    let Some(discovery) = core.provider.discovery(now) else {
                        return Err(Stop::fetch(Document::Discovery));
                    };
                    if core
                        .leases
                        .acquire(store, KIND, &key, now, cfg.idp_timeout_ms)
                    {
                        let mut params = vec![("grant_type", "client_credentials")];
                        // Never the default `openid`: Cognito refuses it here.
                        if cfg.scopes_explicit {
                            params.push(("scope", cfg.scope.as_str()));
                        }
                        return match token::request(cfg, discovery, &client, &params) {
                            Ok(request) => Err(Stop::Call {
                                key: IdpCall::Credentials(key),
                                request,
                            }),
                            Err(e) => {
                                core.leases.release(store, KIND, &key);
                                Err(Stop::Fail(e.into()))
                            }
                        };
                    }
                    // Someone else is exchanging: use the old token meanwhile, or wait.
                    match cached {
                        Some(e) => e.token,
                        None => return Err(Stop::Wait(IdpCall::Credentials(key))),
                    }
                }
            }
        }
    };
    let mut allowed = bearer::authenticate(cfg, &token, now, core)?;
    allowed.from_basic = true;
    allowed.metric = "allowed_client_credentials";
    Ok(allowed)
}

/// Takes the token endpoint's answer for `key`. Returns the error, if any,
/// for the log; waiting requests find the outcome in the caches.
pub(super) fn handle_reply(
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    let result = token::parse_response(reply);
    match &result {
        Ok(response) => {
            let by_expires_in = response.expires_in.map(|s| now.saturating_add(s));
            let by_exp = token::unverified_exp(&response.access_token);
            let expires_at = match (by_expires_in, by_exp) {
                (Some(a), Some(b)) => a.min(b),
                (Some(t), None) | (None, Some(t)) => t,
                (None, None) => now + DEFAULT_LIFETIME,
            };
            // Refresh a margin before expiry: a quarter of the life, at most a minute.
            let margin = (expires_at.saturating_sub(now) / 4).min(60);
            let entry = Entry {
                expires_at,
                refresh_at: expires_at - margin,
                token: response.access_token.clone(),
            };
            write_entry(core, store, key, &entry);
            core.cc.tokens.insert(*key, entry.token, entry.refresh_at);
        }
        Err(e) => match read_entry(core, store, key).filter(|c| now < c.expires_at) {
            // A refresh failed: the current token serves on, retried soon.
            Some(mut current) => {
                current.refresh_at = now + REFRESH_RETRY;
                write_entry(core, store, key, &current);
            }
            None => core.cc.failures.insert(*key, e.clone(), now + NEGATIVE_TTL),
        },
    }
    core.leases.release(store, KIND, key);
    result.err()
}
