//! Checks on an access token's claims, with `now` passed in: the registered
//! claims (`iss`, `exp`, `nbf`, `iat`) and the configured policy (audience,
//! scopes). The signature is `jwt.rs`'s business.

use serde_json::Value;

use crate::config::{Config, IssuerId};
use crate::error::{Error, Forbidden, TokenError};

/// A token's claims, or an IdP's answer taken as claims: a JSON object
/// whose members are read when asked for.
pub type Claims = crate::json_object::JsonObject;

/// A NumericDate claim as whole seconds; fractions are allowed by RFC 7519.
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(t) if t.is_finite() && t >= 0.0 => Ok(Some(t as u64)),
            _ => Err(TokenError::Malformed("token time claim is not a number")),
        },
    }
}

/// Which configured issuer (`issuer`, then `issuers_allowed`) issued this.
pub fn issuer_id(cfg: &Config, claims: &Claims) -> Result<IssuerId, TokenError> {
    claims
        .get("iss")
        .and_then(Value::as_str)
        .and_then(|iss| cfg.issuer_id(iss))
        .ok_or(TokenError::WrongIssuer)
}

/// For a multi-tenant issuer (Entra ID's `{tenantid}`): the token's `tid`
/// must be a path segment of its `iss` (`.../<tid>/v2.0`, v1's
/// `https://sts.windows.net/<tid>/`), so that a token of one listed tenant
/// never passes as another's. Which tenants pass at all is
/// `issuers_allowed`: their concrete issuers.
pub fn check_tenant(claims: &Claims) -> Result<(), TokenError> {
    let tid = claims.get("tid").and_then(Value::as_str);
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let path = iss
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| path)
        .unwrap_or_default();
    match tid {
        Some(tid) if !tid.is_empty() && path.split('/').any(|seg| seg == tid) => Ok(()),
        _ => Err(TokenError::WrongTenant),
    }
}

/// Checks `iss`, `exp`, `nbf`, `iat` and that it is no ID token; returns
/// `exp`.
pub fn check_registered(cfg: &Config, claims: &Claims, now: u64) -> Result<u64, TokenError> {
    issuer_id(cfg, claims)?;
    let exp = check_times(claims, now, cfg.leeway)?;
    if is_id_token(claims) {
        return Err(TokenError::NotAccessToken);
    }
    Ok(exp)
}

/// Whether the claims say an ID token (or a refresh token), which is no
/// access token: any app the user logged into holds one (with `aud` that
/// app), so as a bearer it would let every client's login in. Only where
/// the provider says so: Amazon Cognito (`token_use`), Keycloak (`typ`:
/// `Bearer` passes; `ID`, `Refresh`, `Offline`, `Logout`, `Serialized-ID`
/// do not), and a back-channel logout token's `events` (OIDC Back-Channel
/// Logout §2.4: it must not pass for another kind of token). Not by `at_hash` or `c_hash`: Dex builds its
/// access tokens as ID tokens, `at_hash` included, and some deployments
/// take Google ID tokens as bearers on purpose. What holds for every
/// provider is `audience_required`, which another app's ID token does not
/// meet (a configuration without it is told so at load).
pub fn is_id_token(claims: &Claims) -> bool {
    let text = |name| claims.get(name).map(|v| v.as_str());
    const NOT_ACCESS: [&str; 5] = ["id", "refresh", "offline", "logout", "serialized-id"];
    // Cognito's `access`; fosite's (Ory Hydra's) introspection answers say
    // `access_token`.
    const ACCESS_USES: [&str; 2] = ["access", "access_token"];
    text("token_use").is_some_and(|u| u.is_none_or(|u| !ACCESS_USES.contains(&u)))
        || text("typ").is_some_and(|t| {
            t.is_some_and(|t| NOT_ACCESS.iter().any(|n| t.eq_ignore_ascii_case(n)))
        })
        || claims.get("events").is_some_and(|e| {
            e.get("http://schemas.openid.net/event/backchannel-logout")
                .is_some()
        })
}

/// Checks `exp` (required), `nbf` and `iat` with `leeway`; returns `exp`.
pub fn check_times(claims: &Claims, now: u64, leeway: u64) -> Result<u64, TokenError> {
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::MissingExpiry)?;
    if now >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired);
    }
    check_not_early(claims, now, leeway)?;
    Ok(exp)
}

/// `nbf` and `iat`, where present: neither later than now (with leeway).
pub fn check_not_early(claims: &Claims, now: u64, leeway: u64) -> Result<(), TokenError> {
    if numeric_date(claims, "nbf")?.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(TokenError::NotYetValid);
    }
    if numeric_date(claims, "iat")?.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(TokenError::IssuedInFuture);
    }
    Ok(())
}

/// Checks the policy (audience, scopes, groups, roles, forbidden claims):
/// 403 when unmet; the reason goes to the log only. `granted`: the scopes
/// the token endpoint granted, checked instead of the claims' when the
/// claims are not the access token's (an identity from the ID token).
pub fn check_policy(cfg: &Config, claims: &Claims, granted: Option<&str>) -> Result<(), Error> {
    if !cfg.audience_required.is_met_in(&cfg.audience_claim, claims) {
        return Err(Error::Forbidden(Forbidden::WrongAudience));
    }
    let scopes_met = match granted {
        None => cfg.scopes_required.is_met_in(&cfg.scopes_claim, claims),
        Some(scope) => {
            let present: Vec<&str> = scope.split(' ').filter(|s| !s.is_empty()).collect();
            cfg.scopes_required.is_met_by(&present)
        }
    };
    if !scopes_met {
        return Err(Error::Forbidden(Forbidden::MissingScope));
    }
    if !cfg.groups_required.is_met_in(&cfg.groups_claim, claims) {
        return Err(Error::Forbidden(if group_overage(claims) {
            Forbidden::GroupOverage
        } else {
            Forbidden::MissingGroup
        }));
    }
    if !cfg.roles_required.is_met_in(&cfg.roles_claim, claims) {
        return Err(Error::Forbidden(Forbidden::MissingRole));
    }
    if cfg.claims_forbidden.iter().any(|c| claims.contains_key(c)) {
        return Err(Error::Forbidden(Forbidden::ForbiddenClaim));
    }
    if !cfg.domains.is_empty() {
        let hd = claims.get("hd").and_then(Value::as_str);
        if !hd.is_some_and(|hd| cfg.domains.iter().any(|d| d == hd)) {
            return Err(Error::Forbidden(Forbidden::WrongDomain));
        }
    }
    Ok(())
}

/// Entra ID leaves the groups out of a token for a user in too many of
/// them and says so instead: `_claim_names.groups` (JWT) or `hasgroups`.
fn group_overage(claims: &Claims) -> bool {
    claims
        .get("_claim_names")
        .and_then(Value::as_object)
        .is_some_and(|names| names.contains_key("groups"))
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true)
}
