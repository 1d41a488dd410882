//! What the filter knows of its OpenID Provider: the discovery document and
//! the signing keys, with their lifetimes. Sans-IO: it says which endpoint
//! to fetch (`request`) and takes the answer (`handle_reply`); the shell
//! moves the bytes.

use crate::action::{IdpReply, IdpRequest};
use crate::config::{Config, Issuer};
use crate::error::{Endpoint, Error, IdpError};
use crate::oidc::discovery::{Discovery, DiscoveryError};
use crate::oidc::jwks::{Jwk, KeySet};
use crate::url::Url;

/// How long a discovery document is trusted before it is fetched again.
const DISCOVERY_TTL: u64 = 24 * 3600;
/// How long a JWKS is trusted before it is fetched again.
const JWKS_TTL: u64 = 3600;
/// A token the keys cannot place (an unknown `kid`, or a signature no key
/// verified) refetches the JWKS at most this often.
const KID_REFETCH_INTERVAL: u64 = 30;
/// When a refresh fails, the stale value serves this long before a retry.
const STALE_RETRY: u64 = 30;
/// When a fetch fails with no value to serve (a cold start against a
/// failing IdP), the requests that need it fail at once for the rest of
/// this second (or as long as the IdP's `Retry-After`) rather than each
/// fetching it again: fetches are not budgeted (`budget`), and an IdP that
/// fails fast was asked once per request. Short, so that a start while the
/// IdP's cluster warms up is over as soon as it answers.
const COLD_RETRY: u64 = 1;

struct Cached<T> {
    value: T,
    fetched_at: u64,
    fresh_until: u64,
}

impl<T> Cached<T> {
    fn fresh(&self, now: u64) -> Option<&T> {
        (now < self.fresh_until).then_some(&self.value)
    }
}

/// The documents the provider keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Document {
    Discovery,
    Jwks,
}

impl Document {
    pub fn endpoint(self) -> Endpoint {
        match self {
            Document::Discovery => Endpoint::Discovery,
            Document::Jwks => Endpoint::Jwks,
        }
    }
}

/// The outcome of looking for a token's key.
pub enum Keys<'a> {
    /// These keys may have signed it.
    Found(Vec<&'a Jwk>),
    /// The keys must be fetched (none yet, expired, or unknown `kid`).
    Fetch,
    /// No such key, and a refetch was made too recently to try again.
    Unknown,
}

#[derive(Default)]
pub struct Provider {
    discovery: Option<Cached<Discovery>>,
    keys: Option<Cached<KeySet>>,
    /// Counts the key sets taken (fetched or adopted): what was decided
    /// against one set (a signature refused) is not reused against another.
    key_sets: u64,
    /// Counts the key sets taken that lack a key the set before had (by
    /// its material, whatever its `kid`: an IdP may keep the `kid` of a key
    /// it replaced): what was verified with the keys before may have been
    /// signed by a withdrawn one.
    withdrawals: u64,
    /// When a token the keys could not place last refetched them.
    last_refetch: Option<u64>,
    /// A failed fetch of a document never fetched: its error, until when.
    discovery_failed: Option<(u64, IdpError)>,
    keys_failed: Option<(u64, IdpError)>,
}

fn ttl(doc: Document) -> u64 {
    match doc {
        Document::Discovery => DISCOVERY_TTL,
        Document::Jwks => JWKS_TTL,
    }
}

/// Envoy answers 503 for an unreachable cluster and 504 for a timeout.
fn is_unavailable(status: Option<u16>) -> bool {
    matches!(status, None | Some(503) | Some(504))
}

impl Provider {
    /// The discovery document, unless it must be fetched first.
    pub fn discovery(&self, now: u64) -> Option<&Discovery> {
        self.discovery.as_ref()?.fresh(now)
    }

    /// The keys that may verify a token naming `kid` (or none).
    pub fn keys(&mut self, kid: Option<&str>, now: u64) -> Keys<'_> {
        let Some(set) = self.keys.as_ref().and_then(|c| c.fresh(now)) else {
            return Keys::Fetch;
        };
        if let Some(kid) = kid
            && !set.has_kid(kid)
        {
            // Key rotation: the IdP may have published a key since we fetched.
            if self.refetched_lately(now) {
                return Keys::Unknown;
            }
            self.last_refetch = Some(now);
            return Keys::Fetch;
        }
        match self.keys.as_ref() {
            Some(c) => Keys::Found(c.value.candidates(kid)),
            None => Keys::Fetch,
        }
    }

    /// Whether keys that refused a token's signature (no key verified it,
    /// or none fits its algorithm) are to be fetched again first; if so,
    /// the refetch is counted as made. An IdP that signs without `kid` (one
    /// key at a time, as OpenID Connect Core §10.1 allows), or that replaced
    /// a key under its `kid`, would otherwise see its new tokens refused
    /// until the hourly refetch. Budgeted with the unknown `kid`'s refetch
    /// (one per `KID_REFETCH_INTERVAL` for both, so forgeries cannot spend
    /// the IdP), and never for keys fetched within that interval: they are
    /// what the IdP publishes now, and the refusal stands.
    pub fn refetch_after_refusal(&mut self, now: u64) -> bool {
        if !self.keys_settled(now) || self.refetched_lately(now) {
            return false;
        }
        self.last_refetch = Some(now);
        true
    }

    /// Whether the keys in use were fetched (or adopted) over
    /// `KID_REFETCH_INTERVAL` ago.
    pub fn keys_settled(&self, now: u64) -> bool {
        self.keys
            .as_ref()
            .is_some_and(|c| now >= c.fetched_at.saturating_add(KID_REFETCH_INTERVAL))
    }

    fn refetched_lately(&self, now: u64) -> bool {
        self.last_refetch
            .is_some_and(|t| now < t.saturating_add(KID_REFETCH_INTERVAL))
    }

    /// Which key set is in use, while it is fresh: a number that changes
    /// with every JWKS taken, even an identical one. `None` when the keys
    /// must be fetched first.
    pub fn key_set(&self, now: u64) -> Option<u64> {
        self.keys.as_ref()?.fresh(now).map(|_| self.key_sets)
    }

    /// How many key sets taken lacked a key of the set before: see
    /// `Provider::withdrawals`.
    pub fn withdrawals(&self) -> u64 {
        self.withdrawals
    }

    /// Until when the key set in use is trusted (then fetched again).
    pub fn keys_fresh_until(&self) -> Option<u64> {
        self.keys.as_ref().map(|c| c.fresh_until)
    }

    /// The request that fetches `endpoint`.
    pub fn request(
        &self,
        cfg: &Config,
        issuer: &Issuer,
        doc: Document,
    ) -> Result<IdpRequest, IdpError> {
        let url = match doc {
            Document::Discovery => &issuer.discovery_url,
            Document::Jwks => match &self.discovery {
                Some(d) => &d.value.jwks_uri,
                None => {
                    return Err(IdpError::Unroutable {
                        endpoint: doc.endpoint(),
                        reason: "no discovery document yet".into(),
                    });
                }
            },
        };
        get(cfg, doc.endpoint(), url)
    }

    /// The error of a recent fetch of `doc` that failed with nothing
    /// cached to serve instead (see `COLD_RETRY`), as served at `now`: a
    /// throttled one asks for the wait that remains (`Error::served`).
    pub fn failed(&self, doc: Document, now: u64) -> Option<Error> {
        let failed = match doc {
            Document::Discovery => &self.discovery_failed,
            Document::Jwks => &self.keys_failed,
        };
        failed
            .as_ref()
            .filter(|(until, _)| now < *until)
            .map(|(until, e)| Error::Idp(e.clone()).served(*until, now))
    }

    /// When `endpoint` was last fetched successfully.
    pub fn fetched_at(&self, doc: Document) -> Option<u64> {
        match doc {
            Document::Discovery => self.discovery.as_ref().map(|c| c.fetched_at),
            Document::Jwks => self.keys.as_ref().map(|c| c.fetched_at),
        }
    }

    /// Takes a document another worker fetched at `fetched_at`, when it is
    /// newer than ours and recent enough to stand for a fetch of our own
    /// (within `KID_REFETCH_INTERVAL`, unless we have none). Returns whether
    /// it was taken.
    pub fn adopt(
        &mut self,
        issuer: &Issuer,
        doc: Document,
        body: &[u8],
        fetched_at: u64,
        now: u64,
    ) -> bool {
        let ours = self.fetched_at(doc);
        let newer = ours.is_none_or(|t| fetched_at > t);
        let recent = ours.is_none() || now < fetched_at.saturating_add(KID_REFETCH_INTERVAL);
        let fresh = now < fetched_at.saturating_add(ttl(doc));
        newer && recent && fresh && self.store(issuer, doc, body, fetched_at).is_ok()
    }

    /// Takes the IdP's answer for `endpoint`. On failure a stale value, if
    /// any, keeps serving for a while; the error is returned either way so
    /// that requests which cannot do without the fetch fail with it.
    /// On success, returns how many JWKS keys were skipped as unusable.
    pub fn handle_reply(
        &mut self,
        issuer: &Issuer,
        doc: Document,
        reply: &IdpReply,
        now: u64,
    ) -> Result<usize, IdpError> {
        let result = check_status(doc.endpoint(), reply)
            .and_then(|()| self.store(issuer, doc, &reply.body, now));
        if let Err(e) = &result {
            self.fetch_failed(doc, e, now);
        }
        result
    }

    /// A fetch of `doc` failed at `now` with `e` (here, or at another
    /// worker that shared its throttling): a stale value, if any, serves on,
    /// and it is asked for again no sooner than the IdP said.
    pub fn fetch_failed(&mut self, doc: Document, e: &IdpError, now: u64) {
        let throttled = match e {
            IdpError::Throttled { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        // A stale value serves on; asked again no sooner than the IdP said.
        let retry = now.saturating_add(STALE_RETRY.max(throttled.unwrap_or(0)));
        let cold = Some((
            now.saturating_add(throttled.unwrap_or(COLD_RETRY)),
            e.clone(),
        ));
        // A value still fresh (the JWKS refetched for an unknown `kid`)
        // keeps its time: one failed refetch must not make the keys
        // stale every 30 s from then on.
        match doc {
            Document::Discovery => match &mut self.discovery {
                Some(c) => c.fresh_until = c.fresh_until.max(retry),
                None => self.discovery_failed = cold,
            },
            Document::Jwks => match &mut self.keys {
                Some(c) => {
                    c.fresh_until = c.fresh_until.max(retry);
                    // Nor refetched for a token they cannot place before then.
                    if let Some(wait) = throttled {
                        let next = now.saturating_add(wait);
                        self.last_refetch =
                            Some(next.saturating_sub(KID_REFETCH_INTERVAL).max(now));
                    }
                }
                None => self.keys_failed = cold,
            },
        }
    }

    /// Parses and keeps a document fetched at `fetched_at`.
    fn store(
        &mut self,
        issuer: &Issuer,
        doc: Document,
        body: &[u8],
        fetched_at: u64,
    ) -> Result<usize, IdpError> {
        let fresh_until = fetched_at.saturating_add(ttl(doc));
        match doc {
            Document::Discovery => {
                let value = Discovery::parse(body, issuer).map_err(discovery_error)?;
                self.discovery = Some(Cached {
                    value,
                    fetched_at,
                    fresh_until,
                });
                self.discovery_failed = None;
                Ok(0)
            }
            Document::Jwks => {
                let parsed = KeySet::parse(body).map_err(|reason| IdpError::BadBody {
                    endpoint: Endpoint::Jwks,
                    reason,
                })?;
                if parsed.set.keys.is_empty() {
                    return Err(IdpError::BadBody {
                        endpoint: Endpoint::Jwks,
                        reason: format!("no usable key among {}", parsed.skipped),
                    });
                }
                let withdrew = self.keys.as_ref().is_some_and(|before| {
                    before
                        .value
                        .keys
                        .iter()
                        .any(|k| !parsed.set.has_material(&k.material))
                });
                if withdrew {
                    self.withdrawals = self.withdrawals.wrapping_add(1);
                }
                self.keys = Some(Cached {
                    value: parsed.set,
                    fetched_at,
                    fresh_until,
                });
                self.keys_failed = None;
                self.key_sets = self.key_sets.wrapping_add(1);
                Ok(parsed.skipped)
            }
        }
    }
}

fn check_status(endpoint: Endpoint, reply: &IdpReply) -> Result<(), IdpError> {
    let status = reply.status;
    match status {
        Some(200) => Ok(()),
        Some(429) => Err(crate::oidc::token::throttled(endpoint, reply)),
        s if is_unavailable(s) => Err(IdpError::Unavailable {
            endpoint,
            status: s,
        }),
        Some(status) => Err(IdpError::BadStatus { endpoint, status }),
        None => Err(IdpError::Unavailable {
            endpoint,
            status: None,
        }),
    }
}

fn discovery_error(e: DiscoveryError) -> IdpError {
    let endpoint = Endpoint::Discovery;
    match e {
        DiscoveryError::IssuerMismatch(found) => IdpError::IssuerMismatch { found },
        DiscoveryError::Unparseable(reason) => IdpError::BadBody { endpoint, reason },
        DiscoveryError::BadUrl { field, reason } => IdpError::BadBody {
            endpoint,
            reason: format!("{field} {reason}"),
        },
    }
}

/// A GET to an IdP URL through the cluster configured for its authority.
fn get(cfg: &Config, endpoint: Endpoint, url: &Url) -> Result<IdpRequest, IdpError> {
    IdpRequest::to(cfg, endpoint, "GET", url)
}
