//! What the filter knows of its OpenID Provider: the discovery document and
//! the signing keys, with their lifetimes. Sans-IO: it says which endpoint
//! to fetch (`request`) and takes the answer (`handle_reply`); the shell
//! moves the bytes.

use crate::action::{IdpReply, IdpRequest};
use crate::config::Config;
use crate::error::{Endpoint, IdpError};
use crate::oidc::discovery::{Discovery, DiscoveryError};
use crate::oidc::jwks::{Jwk, KeySet};
use crate::url::Url;

/// How long a discovery document is trusted before it is fetched again.
const DISCOVERY_TTL: u64 = 24 * 3600;
/// How long a JWKS is trusted before it is fetched again.
const JWKS_TTL: u64 = 3600;
/// A token naming an unknown `kid` refetches the JWKS at most this often.
const KID_REFETCH_INTERVAL: u64 = 30;
/// When a refresh fails, the stale value serves this long before a retry.
const STALE_RETRY: u64 = 30;

struct Cached<T> {
    value: T,
    fresh_until: u64,
}

impl<T> Cached<T> {
    fn fresh(&self, now: u64) -> Option<&T> {
        (now < self.fresh_until).then_some(&self.value)
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
    last_kid_refetch: Option<u64>,
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
            let recently = self
                .last_kid_refetch
                .is_some_and(|t| now < t.saturating_add(KID_REFETCH_INTERVAL));
            if recently {
                return Keys::Unknown;
            }
            self.last_kid_refetch = Some(now);
            return Keys::Fetch;
        }
        match self.keys.as_ref() {
            Some(c) => Keys::Found(c.value.candidates(kid)),
            None => Keys::Fetch,
        }
    }

    /// The request that fetches `endpoint`.
    pub fn request(&self, cfg: &Config, endpoint: Endpoint) -> Result<IdpRequest, IdpError> {
        let url = match endpoint {
            Endpoint::Discovery => &cfg.issuer.discovery_url,
            Endpoint::Jwks => match &self.discovery {
                Some(d) => &d.value.jwks_uri,
                None => {
                    return Err(IdpError::Unroutable {
                        endpoint,
                        reason: "no discovery document yet".into(),
                    });
                }
            },
        };
        get(cfg, endpoint, url)
    }

    /// Takes the IdP's answer for `endpoint`. On failure a stale value, if
    /// any, keeps serving for a while; the error is returned either way so
    /// that requests which cannot do without the fetch fail with it.
    pub fn handle_reply(
        &mut self,
        cfg: &Config,
        endpoint: Endpoint,
        reply: &IdpReply,
        now: u64,
    ) -> Result<Option<usize>, IdpError> {
        let result = check_status(endpoint, reply.status).and_then(|()| match endpoint {
            Endpoint::Discovery => Discovery::parse(&reply.body, &cfg.issuer.id)
                .map(|d| {
                    self.discovery = Some(Cached {
                        value: d,
                        fresh_until: now.saturating_add(DISCOVERY_TTL),
                    });
                    None
                })
                .map_err(|e| discovery_error(e)),
            Endpoint::Jwks => KeySet::parse(&reply.body)
                .map_err(|reason| IdpError::BadBody { endpoint, reason })
                .and_then(|parsed| {
                    if parsed.set.keys.is_empty() {
                        return Err(IdpError::BadBody {
                            endpoint,
                            reason: format!("no usable key among {}", parsed.skipped),
                        });
                    }
                    self.keys = Some(Cached {
                        value: parsed.set,
                        fresh_until: now.saturating_add(JWKS_TTL),
                    });
                    Ok(Some(parsed.skipped))
                }),
        });
        if result.is_err() {
            let retry = now.saturating_add(STALE_RETRY);
            match endpoint {
                Endpoint::Discovery => self
                    .discovery
                    .iter_mut()
                    .for_each(|c| c.fresh_until = retry),
                Endpoint::Jwks => self.keys.iter_mut().for_each(|c| c.fresh_until = retry),
            }
        }
        result
    }
}

fn check_status(endpoint: Endpoint, status: Option<u16>) -> Result<(), IdpError> {
    match status {
        Some(200) => Ok(()),
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
    let cluster = cfg
        .cluster_for(&url.authority)
        .ok_or_else(|| IdpError::Unroutable {
            endpoint,
            reason: format!(
                "no cluster for `{}` in idp_clusters and no idp_cluster",
                url.authority
            ),
        })?;
    Ok(IdpRequest {
        cluster: cluster.to_string(),
        headers: vec![
            (":method".into(), "GET".into()),
            (":path".into(), url.path_and_query.clone()),
            (":authority".into(), url.authority.clone()),
            (":scheme".into(), url.scheme.as_str().into()),
            ("accept".into(), "application/json".into()),
        ],
        body: None,
        timeout_ms: cfg.idp_timeout_ms,
    })
}
