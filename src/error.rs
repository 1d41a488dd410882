//! Why a request is refused, and the one mapping from that to the response
//! the client sees (the README's "Failures answer like Kong" paragraph).

use std::fmt;
use std::rc::Rc;

use crate::action::Response;

/// Every way a request can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// No credentials at all: 401 without an `error` parameter.
    Unauthenticated,
    /// Credentials were sent and are not acceptable: 401 `invalid_token`.
    Token(TokenError),
    /// Authenticated, but the token lacks what the policy requires: 403.
    Forbidden(Forbidden),
    /// The IdP could not be asked or answered nonsense: 503 or 502.
    Idp(IdpError),
    /// A login callback that does not belong to a login we started: 400.
    BadRequest(&'static str),
    /// The filter itself could not do its part (no randomness from the
    /// host, a session that cannot be sealed): 500, the client is not at
    /// fault and neither is the IdP.
    Internal(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    Malformed(&'static str),
    TooLarge,
    UnsupportedAlgorithm,
    CriticalHeader,
    UnknownKey,
    KeyMismatch,
    BadSignature,
    MissingExpiry,
    Expired,
    NotYetValid,
    IssuedInFuture,
    WrongIssuer,
    /// A multi-tenant issuer's token whose `iss` and `tid` name different
    /// tenants (or that has no `tid`).
    WrongTenant,
    NotAccessToken,
    UnsupportedScheme,
    MultipleAuthorization,
    MethodDisabled(&'static str),
    /// The IdP refused the client's credentials, code or refresh token.
    Rejected,
    /// The IdP ended the login with an `error`.
    LoginFailed,
    /// The ID token does not belong to this client.
    WrongIdTokenAudience,
    /// Introspection says the token is not active.
    Inactive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    MissingScope,
    /// Kong and Envoy's jwt_authn both answer a wrong audience with 403.
    WrongAudience,
    MissingGroup,
    MissingRole,
    ForbiddenClaim,
    /// `domains`: the `hd` claim is missing or not one of them.
    WrongDomain,
    /// Groups are required but the IdP left them out for being too many
    /// (Entra ID's group overage: `_claim_names.groups` or `hasgroups`).
    GroupOverage,
}

/// Which IdP endpoint a call went to, for errors and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Discovery,
    Jwks,
    Token,
    Revocation,
    Introspection,
    Userinfo,
}

impl Endpoint {
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "jwks",
            Endpoint::Token => "token",
            Endpoint::Revocation => "revocation",
            Endpoint::Introspection => "introspection",
            Endpoint::Userinfo => "userinfo",
        }
    }

    /// The counter of calls to this endpoint, by outcome.
    pub fn metric(self, ok: bool) -> &'static str {
        match (self, ok) {
            (Endpoint::Discovery, true) => "idp_discovery_ok",
            (Endpoint::Discovery, false) => "idp_discovery_error",
            (Endpoint::Jwks, true) => "idp_jwks_ok",
            (Endpoint::Jwks, false) => "idp_jwks_error",
            (Endpoint::Token, true) => "idp_token_ok",
            (Endpoint::Token, false) => "idp_token_error",
            (Endpoint::Revocation, true) => "idp_revocation_ok",
            (Endpoint::Revocation, false) => "idp_revocation_error",
            (Endpoint::Introspection, true) => "idp_introspection_ok",
            (Endpoint::Introspection, false) => "idp_introspection_error",
            (Endpoint::Userinfo, true) => "idp_userinfo_ok",
            (Endpoint::Userinfo, false) => "idp_userinfo_error",
        }
    }

    /// The counter of calls whose answer refused a client's token or
    /// credentials: an answer, not a failure of the IdP, but counted apart,
    /// so that a configuration every answer refuses shows.
    pub fn refused_metric(self) -> &'static str {
        match self {
            Endpoint::Discovery => "idp_discovery_refused",
            Endpoint::Jwks => "idp_jwks_refused",
            Endpoint::Token => "idp_token_refused",
            Endpoint::Revocation => "idp_revocation_refused",
            Endpoint::Introspection => "idp_introspection_refused",
            Endpoint::Userinfo => "idp_userinfo_refused",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdpError {
    /// No answer, or Envoy's own 503/504 (unreachable cluster, timeout).
    Unavailable {
        endpoint: Endpoint,
        status: Option<u16>,
    },
    /// Any other status than the one expected.
    BadStatus { endpoint: Endpoint, status: u16 },
    /// The body could not be understood.
    BadBody { endpoint: Endpoint, reason: String },
    /// Discovery names another issuer than the configured one (mix-up).
    IssuerMismatch { found: String },
    /// A URL the IdP gave us cannot be called (no cluster, not http).
    Unroutable { endpoint: Endpoint, reason: String },
    /// This purpose's `idp_call_budget` is spent for now: not called.
    OverBudget { purpose: &'static str },
    /// The IdP answered 429: come back after `retry_after` seconds.
    Throttled {
        endpoint: Endpoint,
        retry_after: u64,
    },
}

impl TokenError {
    /// The `error_description`: short, fixed text (never echoes input).
    pub fn description(self) -> &'static str {
        match self {
            TokenError::Malformed(why) => why,
            TokenError::TooLarge => "token too large",
            TokenError::UnsupportedAlgorithm => "unsupported signing algorithm",
            TokenError::CriticalHeader => "unsupported critical header",
            TokenError::UnknownKey => "unknown signing key",
            TokenError::KeyMismatch => "signing key does not fit the algorithm",
            TokenError::BadSignature => "invalid signature",
            TokenError::MissingExpiry => "token has no expiry",
            TokenError::Expired => "token expired",
            TokenError::NotYetValid => "token not yet valid",
            TokenError::IssuedInFuture => "token issued in the future",
            TokenError::WrongIssuer => "wrong issuer",
            TokenError::WrongTenant => "issuer and tenant differ",
            TokenError::NotAccessToken => "not an access token",
            TokenError::UnsupportedScheme => "unsupported authorization scheme",
            TokenError::MultipleAuthorization => "more than one authorization header",
            TokenError::MethodDisabled(m) => m,
            TokenError::Rejected => "rejected by the identity provider",
            TokenError::LoginFailed => "login failed at the identity provider",
            TokenError::WrongIdTokenAudience => "ID token not issued to this client",
            TokenError::Inactive => "token is not active",
        }
    }
}

impl fmt::Display for IdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdpError::Unavailable {
                endpoint,
                status: Some(s),
            } => {
                write!(f, "{} unavailable (status {s})", endpoint.name())
            }
            IdpError::Unavailable {
                endpoint,
                status: None,
            } => {
                write!(f, "{} unavailable (no answer)", endpoint.name())
            }
            IdpError::BadStatus { endpoint, status } => {
                write!(f, "{} answered status {status}", endpoint.name())
            }
            IdpError::BadBody { endpoint, reason } => {
                write!(f, "{} answered an unusable body: {reason}", endpoint.name())
            }
            IdpError::IssuerMismatch { found } => {
                write!(
                    f,
                    "discovery names issuer `{found}`, not the configured one"
                )
            }
            IdpError::OverBudget { purpose } => {
                write!(f, "the {purpose} call budget is spent: not called")
            }
            IdpError::Throttled {
                endpoint,
                retry_after,
            } => {
                write!(
                    f,
                    "{} is throttling us (429, retry after {retry_after} s)",
                    endpoint.name()
                )
            }
            IdpError::Unroutable { endpoint, reason } => {
                write!(f, "{} cannot be called: {reason}", endpoint.name())
            }
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Unauthenticated => f.write_str("no credentials"),
            Error::Token(t) => write!(f, "invalid token: {}", t.description()),
            Error::Forbidden(Forbidden::MissingScope) => f.write_str("insufficient scope"),
            Error::Forbidden(Forbidden::WrongAudience) => f.write_str("wrong audience"),
            Error::Forbidden(Forbidden::MissingGroup) => f.write_str("required group missing"),
            Error::Forbidden(Forbidden::MissingRole) => f.write_str("required role missing"),
            Error::Forbidden(Forbidden::ForbiddenClaim) => f.write_str("forbidden claim present"),
            Error::Forbidden(Forbidden::WrongDomain) => f.write_str("hosted domain not allowed"),
            Error::Forbidden(Forbidden::GroupOverage) => f.write_str(GROUP_OVERAGE),
            Error::Idp(e) => write!(f, "identity provider: {e}"),
            Error::BadRequest(why) => write!(f, "bad request: {why}"),
            Error::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl Error {
    /// The counter this denial is counted under.
    pub fn metric(&self) -> &'static str {
        match self {
            Error::Unauthenticated => "denied_no_credentials",
            Error::Token(_) => "denied_invalid_token",
            Error::Forbidden(_) => "denied_forbidden",
            Error::BadRequest(_) => "denied_bad_callback",
            Error::Internal(_) => "denied_internal_error",
            Error::Idp(IdpError::Unavailable { .. } | IdpError::Throttled { .. }) => {
                "denied_idp_unavailable"
            }
            Error::Idp(IdpError::OverBudget { .. }) => "denied_idp_over_budget",
            Error::Idp(_) => "denied_idp_bad_gateway",
        }
    }

    /// This error as a cache that keeps it until `until` serves it again at
    /// `now`: a throttled one asks for the wait that remains, not for the
    /// IdP's whole `Retry-After` again.
    pub fn served(&self, until: u64, now: u64) -> Error {
        let mut e = self.clone();
        if let Error::Idp(IdpError::Throttled { retry_after, .. }) = &mut e {
            *retry_after = until.saturating_sub(now).min(*retry_after).max(1);
        }
        e
    }

    /// How long the IdP asked us to wait before calling it again.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Error::Idp(IdpError::Throttled { retry_after, .. }) => Some(*retry_after),
            _ => None,
        }
    }

    /// The response for this error. `realm` is the issuer's authority.
    pub fn response(&self, realm: &str) -> Response {
        match self {
            Error::Unauthenticated => {
                challenge(401, "Unauthorized", format!("Bearer realm=\"{realm}\""))
            }
            Error::Token(t) => challenge(
                401,
                "Unauthorized",
                format!(
                    "Bearer realm=\"{realm}\", error=\"invalid_token\", error_description=\"{}\"",
                    t.description()
                ),
            ),
            // The user can do something about an overage (ask for app
            // roles): the only refusal whose reason the client is told.
            Error::Forbidden(Forbidden::GroupOverage) => challenge(
                403,
                "Forbidden",
                format!(
                    "Bearer realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{GROUP_OVERAGE}\""
                ),
            ),
            Error::Forbidden(_) => challenge(
                403,
                "Forbidden",
                format!("Bearer realm=\"{realm}\", error=\"insufficient_scope\""),
            ),
            Error::BadRequest(_) => plain(400, "Bad Request"),
            Error::Internal(_) => plain(500, "Internal Server Error"),
            Error::Idp(IdpError::Unavailable { .. }) => plain(503, "Service Unavailable"),
            Error::Idp(IdpError::OverBudget { .. }) => {
                let mut r = plain(503, "Service Unavailable");
                r.headers.push(("retry-after".into(), "1".into()));
                r
            }
            Error::Idp(IdpError::Throttled { retry_after, .. }) => {
                let mut r = plain(503, "Service Unavailable");
                r.headers
                    .push(("retry-after".into(), retry_after.to_string()));
                r
            }
            Error::Idp(_) => plain(502, "Bad Gateway"),
        }
    }
}

/// The responses of the refusals that depend on nothing but the error and
/// the realm (no credentials; a token refused, with its reason), built once
/// per worker and then shared: a refusal repeated (a forged token replayed,
/// a flood of requests without one) is not formatted and allocated anew.
/// That was ~3.5k of a replayed forged token's ~42k instructions in V8
/// (bench/instructions.sh, side by side). The other errors' responses
/// carry a request's details or are rare: built each time.
#[derive(Default)]
pub struct Responses(Vec<(Error, Box<str>, Rc<Response>)>);

impl Responses {
    /// About 35 such errors (a token error's reason is a static string)
    /// per realm configured. Full, it starts over: the refusals in use
    /// are back at their next request, the rare ones go.
    const MAX: usize = 64;

    /// The response to `e` under `realm`: the one kept, or built (and kept
    /// when it depends on nothing else).
    pub fn response(&mut self, e: &Error, realm: &str) -> Rc<Response> {
        if !matches!(e, Error::Unauthenticated | Error::Token(_)) {
            return Rc::new(e.response(realm));
        }
        if let Some((_, _, r)) = self.0.iter().find(|(k, at, _)| k == e && **at == *realm) {
            return Rc::clone(r);
        }
        if self.0.len() >= Self::MAX {
            self.0.clear();
        }
        let r = Rc::new(e.response(realm));
        self.0.push((e.clone(), realm.into(), Rc::clone(&r)));
        r
    }
}

/// Why an overage token cannot pass `groups_required`, and what to do.
const GROUP_OVERAGE: &str = "the identity provider left the groups out of the token (group overage); \
     require app roles (roles_required) or have the IdP send only the groups assigned to the application";

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        Error::Token(e)
    }
}

impl From<IdpError> for Error {
    fn from(e: IdpError) -> Self {
        Error::Idp(e)
    }
}

fn plain(status: u32, message: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: format!("{{\"message\":\"{message}\"}}"),
    }
}

fn challenge(status: u32, message: &str, www_authenticate: String) -> Response {
    let mut r = plain(status, message);
    r.headers
        .push(("www-authenticate".into(), www_authenticate));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
        r.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn refusals_are_built_once_per_error_and_realm_and_answer_the_same() {
        let mut kept = Responses::default();
        let errors = [
            Error::Unauthenticated,
            Error::Token(TokenError::BadSignature),
            Error::Token(TokenError::Malformed("not three parts")),
            Error::Token(TokenError::Malformed("empty bearer token")),
        ];
        for realm in ["a.example.com", "b.example.com"] {
            for e in &errors {
                let first = kept.response(e, realm);
                assert_eq!(*first, e.response(realm), "{e:?} in {realm}");
                assert!(
                    Rc::ptr_eq(&first, &kept.response(e, realm)),
                    "shared: {e:?}"
                );
            }
        }
        assert_eq!(kept.0.len(), errors.len() * 2);
        // Not kept: a response with a request's details, or a rare one.
        let e = Error::Idp(IdpError::Throttled {
            endpoint: Endpoint::Token,
            retry_after: 7,
        });
        assert_eq!(
            *kept.response(&e, "a.example.com"),
            e.response("a.example.com")
        );
        assert_eq!(kept.0.len(), errors.len() * 2);
        // Bounded, and still right past the bound.
        for i in 0..2 * Responses::MAX {
            let realm = format!("r{i}.example.com");
            assert_eq!(
                *kept.response(&errors[1], &realm),
                errors[1].response(&realm)
            );
            assert!(kept.0.len() <= Responses::MAX);
        }
        // Started over when full: what is asked again is kept again.
        let again = kept.response(&errors[0], "a.example.com");
        assert!(Rc::ptr_eq(
            &again,
            &kept.response(&errors[0], "a.example.com")
        ));
    }

    #[test]
    fn missing_credentials_challenge_has_no_error() {
        let r = Error::Unauthenticated.response("idp.example.com");
        assert_eq!(r.status, 401);
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"idp.example.com\"")
        );
        assert_eq!(r.body, r#"{"message":"Unauthorized"}"#);
    }

    #[test]
    fn invalid_token_names_error_then_description() {
        let r = Error::Token(TokenError::Expired).response("r");
        assert_eq!(
            header(&r, "www-authenticate"),
            Some(
                "Bearer realm=\"r\", error=\"invalid_token\", error_description=\"token expired\""
            )
        );
    }

    #[test]
    fn scope_is_403_and_idp_failures_are_503_or_502() {
        let r = Error::Forbidden(Forbidden::MissingScope).response("r");
        assert_eq!(
            (r.status, r.body.as_str()),
            (403, r#"{"message":"Forbidden"}"#)
        );
        assert_eq!(
            header(&r, "www-authenticate"),
            Some("Bearer realm=\"r\", error=\"insufficient_scope\"")
        );
        let down = Error::Idp(IdpError::Unavailable {
            endpoint: Endpoint::Jwks,
            status: Some(504),
        });
        assert_eq!(down.response("r").status, 503);
        assert_eq!(
            down.response("r").body,
            r#"{"message":"Service Unavailable"}"#
        );
        let bad = Error::Idp(IdpError::BadStatus {
            endpoint: Endpoint::Discovery,
            status: 500,
        });
        assert_eq!(
            (bad.response("r").status, bad.response("r").body.as_str()),
            (502, r#"{"message":"Bad Gateway"}"#)
        );
    }
}
