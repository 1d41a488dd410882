//! `Authorization: Basic id:secret`: exchange the client's credentials for
//! an access token at the IdP's token endpoint (client credentials grant),
//! and forward that token.
//!
//! Tokens are shared by all workers through fixed shared-data slots (shared
//! data has no delete, so never one key per client): slot `cc/<n>` holds
//! one entry carrying its full cache key and lifetimes. One exchange per
//! credentials at a time across workers: a compare-and-set lease in slot
//! `cc-lease/<m>`; the others wait (resumed on the root context's tick) or
//! keep using the cached token while it is refreshed.

use sha2::{Digest, Sha256};

use super::{Allowed, Core, Stop, bearer};
use crate::action::IdpReply;
use crate::config::Config;
use crate::error::Error;
use crate::oidc::provider::Document;
use crate::oidc::token::{self, ClientCredentials};
use crate::store::SharedStore;

/// Shared token slots per configuration (a bound on shared-data keys).
const SLOTS: u64 = 1024;
/// Shared leases per configuration; credentials whose leases collide just
/// take turns.
pub(super) const LEASES: u64 = 64;
/// A failed exchange is remembered this long per worker.
const NEGATIVE_TTL: u64 = 5;
/// After a failed refresh, the still-valid token is retried this late.
const REFRESH_RETRY: u64 = 5;
/// Lifetime assumed when the IdP states none and the token carries no `exp`.
const DEFAULT_LIFETIME: u64 = 300;

/// The cache key: a salted hash of id, secret and scopes. The secret itself
/// is never stored.
pub type Key = [u8; 32];

pub(super) fn key(core: &Core, cfg: &Config, client: &ClientCredentials) -> Key {
    let mut h = Sha256::new();
    h.update(core.salt);
    for part in [client.id.as_str(), client.secret(), &cfg.scopes.join(" ")] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.finalize().into()
}

fn index(key: &Key, modulus: u64) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key[..8]);
    u64::from_be_bytes(first) % modulus
}

fn slot_name(core: &Core, key: &Key) -> String {
    format!("{}cc/{}", core.shared_prefix, index(key, SLOTS))
}

pub(super) fn lease_name(core: &Core, n: u64) -> String {
    format!("{}cc-lease/{n}", core.shared_prefix)
}

/// A cached token, as stored in its slot.
struct Entry {
    expires_at: u64,
    refresh_at: u64,
    token: String,
}

fn read_slot(store: &dyn SharedStore, name: &str, key: &Key) -> Option<Entry> {
    let (value, _) = store.get(name)?;
    let (owner, rest) = value.split_first_chunk::<32>()?;
    let (expires_at, rest) = rest.split_first_chunk::<8>()?;
    let (refresh_at, token) = rest.split_first_chunk::<8>()?;
    (owner == key).then(|| Entry {
        expires_at: u64::from_be_bytes(*expires_at),
        refresh_at: u64::from_be_bytes(*refresh_at),
        token: String::from_utf8_lossy(token).into_owned(),
    })
}

fn write_slot(store: &mut dyn SharedStore, name: &str, key: &Key, e: &Entry) {
    let mut value = Vec::with_capacity(48 + e.token.len());
    value.extend_from_slice(key);
    value.extend_from_slice(&e.expires_at.to_be_bytes());
    value.extend_from_slice(&e.refresh_at.to_be_bytes());
    value.extend_from_slice(e.token.as_bytes());
    store.set(name, &value, 0);
}

/// Takes the lease for `key` unless another exchange holds it.
fn acquire(store: &mut dyn SharedStore, name: &str, key: &Key, now: u64, timeout_ms: u32) -> bool {
    let (value, cas) = store.get(name).unwrap_or_default();
    let held = value
        .split_at_checked(32)
        .and_then(|(_, until)| until.try_into().ok())
        .is_some_and(|until: [u8; 8]| now < u64::from_be_bytes(until));
    if held {
        return false;
    }
    // Held no longer than a call can take: a lost holder cannot block others.
    let until = now + u64::from(timeout_ms).div_ceil(1000) + 1;
    let mut lease = key.to_vec();
    lease.extend_from_slice(&until.to_be_bytes());
    store.set(name, &lease, cas)
}

fn release(store: &mut dyn SharedStore, name: &str) {
    store.set(name, &[], 0);
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
    if let Some(e) = core.cc_failures.get(&key, now) {
        return Err(Stop::Fail(e.clone()));
    }
    let token = match core.cc_tokens.get(&key, now) {
        Some(token) => token.clone(),
        None => {
            let slot = slot_name(core, &key);
            let cached = read_slot(store, &slot, &key).filter(|e| now < e.expires_at);
            match cached {
                Some(e) if now < e.refresh_at => {
                    core.cc_tokens.insert(key, e.token.clone(), e.refresh_at);
                    e.token
                }
                cached => {
                    let Some(discovery) = core.provider.discovery(now) else {
                        return Err(Stop::Fetch(Document::Discovery));
                    };
                    let lease = lease_name(core, index(&key, LEASES));
                    if acquire(store, &lease, &key, now, cfg.idp_timeout_ms) {
                        let scope = cfg.scopes.join(" ");
                        let mut params = vec![("grant_type", "client_credentials")];
                        // Never the default `openid`: Cognito refuses it here.
                        if cfg.scopes_explicit {
                            params.push(("scope", scope.as_str()));
                        }
                        return match token::request(cfg, discovery, &client, &params) {
                            Ok(request) => Err(Stop::Call { key, request }),
                            Err(e) => {
                                release(store, &lease);
                                Err(Stop::Fail(e.into()))
                            }
                        };
                    }
                    // Someone else is exchanging: use the old token meanwhile, or wait.
                    match cached {
                        Some(e) => e.token,
                        None => return Err(Stop::Wait(key)),
                    }
                }
            }
        }
    };
    let mut allowed = bearer::authenticate(cfg, &token, now, core)?;
    allowed.from_basic = true;
    Ok(allowed)
}

/// Takes the token endpoint's answer for `key`. Returns the error, if any,
/// for the log; waiting requests find the outcome in the caches.
pub fn handle_token_reply(
    cfg: &Config,
    key: &Key,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    let _ = cfg;
    let slot = slot_name(core, key);
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
            write_slot(store, &slot, key, &entry);
            core.cc_tokens.insert(*key, entry.token, entry.refresh_at);
        }
        Err(e) => match read_slot(store, &slot, key).filter(|c| now < c.expires_at) {
            // A refresh failed: the current token serves on, retried soon.
            Some(mut current) => {
                current.refresh_at = now + REFRESH_RETRY;
                write_slot(store, &slot, key, &current);
            }
            None => core.cc_failures.insert(*key, e.clone(), now + NEGATIVE_TTL),
        },
    }
    release(store, &lease_name(core, index(key, LEASES)));
    result.err()
}
