//! The sans-IO core: a pure function of (configuration, request, now,
//! cached state) that returns what to do. One file per way in.

mod bearer;
mod client_credentials;
mod paths;
mod upstream;

use std::rc::Rc;

pub use client_credentials::{Key as CredentialsKey, handle_token_reply};

use crate::action::{Action, Decision, IdpRequest};
use crate::cache::BoundedCache;
use crate::config::{AuthMethod, Config};
use crate::error::{Error, IdpError, TokenError};
use crate::oidc::claims::Claims;
use crate::oidc::provider::{Document, Provider};
use crate::request::RequestView;
use crate::store::SharedStore;

/// Verified tokens kept per worker; each entry is one token's claims.
const VERIFIED_CAPACITY: usize = 4096;
/// Client-credentials tokens and failures remembered per worker.
const CREDENTIALS_CAPACITY: usize = 1024;

/// Per-worker state the core reads and updates.
pub struct Core {
    pub provider: Provider,
    /// Prefix of this configuration's shared-data keys.
    shared_prefix: String,
    /// Salt of the client-credentials cache keys, the same in all workers.
    salt: [u8; 32],
    /// Signature-verified tokens by SHA-256 of the token.
    verified: BoundedCache<[u8; 32], Rc<Claims>>,
    /// Exchanged tokens by credentials key, until their refresh time.
    cc_tokens: BoundedCache<CredentialsKey, String>,
    /// Failed exchanges by credentials key (negative cache).
    cc_failures: BoundedCache<CredentialsKey, Error>,
}

impl Default for Core {
    fn default() -> Self {
        Core::new(String::new(), [0; 32])
    }
}

impl Core {
    pub fn new(shared_prefix: String, salt: [u8; 32]) -> Self {
        Core {
            provider: Provider::default(),
            shared_prefix,
            salt,
            verified: BoundedCache::new(VERIFIED_CAPACITY),
            cc_tokens: BoundedCache::new(CREDENTIALS_CAPACITY),
            cc_failures: BoundedCache::new(CREDENTIALS_CAPACITY),
        }
    }

    /// Sets up a configuration's shared keys: the salt (the first worker's
    /// random one wins) and the leases, created up front so that taking one
    /// is always a real compare-and-set. Returns the salt to use.
    pub fn prepare_shared(store: &mut dyn SharedStore, prefix: &str, random: [u8; 32]) -> [u8; 32] {
        let probe = Core::new(prefix.to_string(), random);
        for n in 0..client_credentials::LEASES {
            let name = client_credentials::lease_name(&probe, n);
            if store.get(&name).is_none() {
                store.set(&name, &[], 0);
            }
        }
        let salt_key = format!("{prefix}salt");
        if store.get(&salt_key).is_none() {
            store.set(&salt_key, &random, 0);
        }
        store
            .get(&salt_key)
            .and_then(|(v, _)| v.try_into().ok())
            .unwrap_or(random)
    }

    pub fn verified_len(&self) -> usize {
        self.verified.len()
    }
}

/// The core's answer for one request.
#[derive(Debug)]
pub enum Step {
    Done(Decision),
    /// Fetch this from the IdP, then call `handle_request` again.
    Fetch(Document),
    /// Exchange credentials at the token endpoint (this worker holds the
    /// lease); give the reply to `handle_token_reply`, then call again.
    Call {
        key: CredentialsKey,
        request: IdpRequest,
    },
    /// Another exchange for these credentials is under way: call again
    /// when it is answered, or on the next tick.
    Wait(CredentialsKey),
}

/// Why a flow stopped before allowing the request.
enum Stop {
    Fail(Error),
    Fetch(Document),
    Call {
        key: CredentialsKey,
        request: IdpRequest,
    },
    Wait(CredentialsKey),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Fail(e)
    }
}

impl From<TokenError> for Stop {
    fn from(e: TokenError) -> Self {
        Stop::Fail(e.into())
    }
}

/// An authenticated request: the access token and its claims.
struct Allowed {
    token: String,
    claims: Rc<Claims>,
    /// The client sent Basic credentials: they never go upstream.
    from_basic: bool,
}

/// Decides what to do with a request. `failed` is the error of the IdP
/// fetch this request was waiting for, if that fetch failed: a request
/// that still needs it fails with that error instead of fetching again.
pub fn handle_request(
    cfg: &Config,
    req: &RequestView,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
    failed: Option<&IdpError>,
) -> Step {
    if paths::passes_unauthenticated(cfg, req) {
        return Step::Done(Decision {
            action: Action::Continue {
                set: Vec::new(),
                remove: Vec::new(),
            },
            log: None,
        });
    }
    match authenticate(cfg, req, now, core, store) {
        Ok(allowed) => Step::Done(upstream::allow(cfg, &allowed)),
        Err(Stop::Fetch(doc)) => match failed {
            Some(e) => Step::Done(deny(cfg, req, Error::Idp(e.clone()))),
            None => Step::Fetch(doc),
        },
        Err(Stop::Call { key, request }) => Step::Call { key, request },
        Err(Stop::Wait(key)) => Step::Wait(key),
        Err(Stop::Fail(Error::Token(TokenError::UnknownKey))) if failed.is_some() => {
            // The refetch for this unknown kid failed: the IdP is the problem.
            let e = failed
                .cloned()
                .map(Error::Idp)
                .unwrap_or(Error::Token(TokenError::UnknownKey));
            Step::Done(deny(cfg, req, e))
        }
        Err(Stop::Fail(e)) => Step::Done(deny(cfg, req, e)),
    }
}

fn authenticate(
    cfg: &Config,
    req: &RequestView,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Result<Allowed, Stop> {
    let mut values = req.all("authorization");
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(if req.all("authorization").next().is_some() {
            TokenError::MultipleAuthorization.into()
        } else {
            Error::Unauthenticated.into()
        });
    };
    let value = std::str::from_utf8(value)
        .map_err(|_| TokenError::Malformed("authorization header is not UTF-8"))?;
    let (scheme, credentials) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        if !cfg.auth_methods.contains(AuthMethod::Bearer) {
            return Err(TokenError::MethodDisabled("bearer tokens are not accepted").into());
        }
        bearer::authenticate(cfg, credentials, now, core)
    } else if scheme.eq_ignore_ascii_case("basic") {
        if !cfg.auth_methods.contains(AuthMethod::ClientCredentials) {
            return Err(TokenError::MethodDisabled("client credentials are not accepted").into());
        }
        client_credentials::authenticate(cfg, credentials, now, core, store)
    } else {
        Err(TokenError::UnsupportedScheme.into())
    }
}

fn deny(cfg: &Config, req: &RequestView, e: Error) -> Decision {
    let response = e.response(cfg.issuer.realm());
    let path = req.path().split('?').next().unwrap_or_default();
    Decision {
        log: Some(format!(
            "{} {} {}: {e}",
            response.status,
            req.method(),
            path
        )),
        action: Action::Respond(response),
    }
}

#[cfg(test)]
mod tests;
