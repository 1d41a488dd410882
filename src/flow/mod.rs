//! The sans-IO core: a pure function of (configuration, request, now,
//! cached state) that returns what to do. One file per way in.

mod bearer;
mod paths;
mod upstream;

use std::rc::Rc;

use crate::action::{Action, Decision};
use crate::cache::BoundedCache;
use crate::config::{AuthMethod, Config};
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::claims::Claims;
use crate::oidc::provider::Provider;
use crate::request::RequestView;

/// Verified tokens kept per worker; each entry is one token's claims.
const VERIFIED_CAPACITY: usize = 4096;

/// Per-worker state the core reads and updates.
pub struct Core {
    pub provider: Provider,
    /// Signature-verified tokens by SHA-256 of the token.
    verified: BoundedCache<[u8; 32], Rc<Claims>>,
}

impl Default for Core {
    fn default() -> Self {
        Core {
            provider: Provider::default(),
            verified: BoundedCache::new(VERIFIED_CAPACITY),
        }
    }
}

impl Core {
    pub fn verified_len(&self) -> usize {
        self.verified.len()
    }
}

/// The core's answer for one request.
#[derive(Debug)]
pub enum Step {
    Done(Decision),
    /// Fetch this from the IdP, then call `handle_request` again.
    Fetch(Endpoint),
}

/// Why a flow stopped before allowing the request.
enum Stop {
    Fail(Error),
    Fetch(Endpoint),
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
}

/// Decides what to do with a request. `failed` is the error of the IdP
/// fetch this request was waiting for, if that fetch failed: a request
/// that still needs it fails with that error instead of fetching again.
pub fn handle_request(
    cfg: &Config,
    req: &RequestView,
    now: u64,
    core: &mut Core,
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
    match authenticate(cfg, req, now, core) {
        Ok(allowed) => Step::Done(upstream::allow(cfg, &allowed.token, &allowed.claims)),
        Err(Stop::Fetch(endpoint)) => match failed {
            Some(e) => Step::Done(deny(cfg, req, Error::Idp(e.clone()))),
            None => Step::Fetch(endpoint),
        },
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
        // The client-credentials exchange is a later issue; until then a
        // Basic header is refused, never passed through.
        Err(TokenError::MethodDisabled("client credentials are not accepted").into())
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
