//! OpenID Provider metadata (OpenID Connect Discovery 1.0, §3–4).

use serde::Deserialize;

use crate::config::Issuer;
use crate::url::Url;

/// The parts of the discovery document the filter uses.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub issuer: String,
    pub jwks_uri: Url,
    pub token_endpoint: Option<Url>,
    pub authorization_endpoint: Option<Url>,
    pub end_session_endpoint: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub introspection_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207): its
    /// callbacks carry `iss`, and one without it is refused.
    pub iss_in_responses: bool,
}

#[derive(Deserialize)]
struct Raw {
    issuer: String,
    jwks_uri: String,
    token_endpoint: Option<String>,
    authorization_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    introspection_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    token_endpoint_auth_methods_supported: Option<Vec<String>>,
    /// Any JSON: only `true` says so (a document that says it otherwise is
    /// not refused for it).
    authorization_response_iss_parameter_supported: Option<serde_json::Value>,
}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    Unparseable(String),
    /// The document names another issuer: a mix-up, never accepted.
    IssuerMismatch(String),
    BadUrl {
        field: &'static str,
        reason: String,
    },
}

impl Discovery {
    /// Parses the document and checks that it is the configured issuer's.
    pub fn parse(body: &[u8], expected: &Issuer) -> Result<Discovery, DiscoveryError> {
        let raw: Raw = crate::json::from_object(body)
            .map_err(|e| DiscoveryError::Unparseable(e.to_string()))?;
        if !expected.is(&raw.issuer) && !is_tenant_template(&raw.issuer, &expected.id) {
            return Err(DiscoveryError::IssuerMismatch(raw.issuer));
        }
        let url = |field: &'static str, v: &str| {
            Url::parse(v).map_err(|e| DiscoveryError::BadUrl {
                field,
                reason: e.to_string(),
            })
        };
        let opt = |field: &'static str, v: Option<String>| {
            v.as_deref().map(|v| url(field, v)).transpose()
        };
        Ok(Discovery {
            jwks_uri: url("jwks_uri", &raw.jwks_uri)?,
            token_endpoint: opt("token_endpoint", raw.token_endpoint)?,
            authorization_endpoint: opt("authorization_endpoint", raw.authorization_endpoint)?,
            end_session_endpoint: opt("end_session_endpoint", raw.end_session_endpoint)?,
            revocation_endpoint: opt("revocation_endpoint", raw.revocation_endpoint)?,
            introspection_endpoint: opt("introspection_endpoint", raw.introspection_endpoint)?,
            userinfo_endpoint: opt("userinfo_endpoint", raw.userinfo_endpoint)?,
            token_endpoint_auth_methods_supported: raw
                .token_endpoint_auth_methods_supported
                .unwrap_or_default(),
            iss_in_responses: raw.authorization_response_iss_parameter_supported
                == Some(serde_json::Value::Bool(true)),
            issuer: raw.issuer,
        })
    }
}

/// The placeholder of Entra ID's multi-tenant discovery issuer.
const TENANT: &str = "{tenantid}";

/// Entra ID's multi-tenant endpoints (`/common`, `/organizations`) publish
/// the literal issuer `https://login.microsoftonline.com/{tenantid}/v2.0`:
/// accepted for a configured issuer that is this one with one path segment
/// in place of the placeholder. Tokens never carry it: each names its
/// tenant, and must be from one of `issuers_allowed` (see
/// `claims::check_tenant`).
pub fn is_tenant_template(issuer: &str, configured: &str) -> bool {
    let Some((before, after)) = issuer.split_once(TENANT) else {
        return false;
    };
    configured
        .strip_prefix(before)
        .and_then(|rest| rest.strip_suffix(after))
        .is_some_and(|segment| !segment.is_empty() && !segment.contains(['/', '{', '}']))
}

impl Discovery {
    /// The document publishes a tenant placeholder, not an issuer.
    pub fn is_multi_tenant(&self) -> bool {
        self.issuer.contains(TENANT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://cognito-idp.us-west-1.amazonaws.com/us-west-1_abc";

    fn issuer(configured: &str) -> Issuer {
        Issuer::parse(configured).unwrap()
    }

    #[test]
    fn an_issuer_given_as_its_discovery_url_may_end_in_a_slash() {
        // Auth0's issuer is `https://tenant.auth0.com/`; Kong's users give
        // its discovery URL, which cannot say so.
        let body = br#"{"issuer":"https://t.us.auth0.com/","jwks_uri":"https://t.us.auth0.com/.well-known/jwks.json"}"#;
        let given = issuer("https://t.us.auth0.com/.well-known/openid-configuration");
        assert!(Discovery::parse(body, &given).is_ok());
        assert!(given.is("https://t.us.auth0.com/") && given.is("https://t.us.auth0.com"));
        assert!(!given.is("https://t.us.auth0.com//") && !given.is("https://t.us.auth0.com/x"));
        // Given as an identifier, it is exact, as OpenID Connect has it.
        let exact = issuer("https://t.us.auth0.com");
        assert!(Discovery::parse(body, &exact).is_err());
        assert!(!exact.is("https://t.us.auth0.com/"));
        assert!(issuer("https://t.us.auth0.com/").is("https://t.us.auth0.com/"));
    }

    #[test]
    fn parses_a_cognito_shaped_document() {
        let body = format!(
            r#"{{"issuer":"{ISS}","jwks_uri":"{ISS}/.well-known/jwks.json",
            "token_endpoint":"https://demo.auth.us-west-1.amazoncognito.com/oauth2/token",
            "authorization_endpoint":"https://demo.auth.us-west-1.amazoncognito.com/oauth2/authorize",
            "token_endpoint_auth_methods_supported":["client_secret_basic","client_secret_post"],
            "extra":{{"ignored":true}}}}"#
        );
        let d = Discovery::parse(body.as_bytes(), &issuer(ISS)).unwrap();
        assert_eq!(d.jwks_uri.authority, "cognito-idp.us-west-1.amazonaws.com");
        assert_eq!(
            d.jwks_uri.path_and_query,
            "/us-west-1_abc/.well-known/jwks.json"
        );
        assert_eq!(
            d.token_endpoint.unwrap().authority,
            "demo.auth.us-west-1.amazoncognito.com"
        );
        assert!(d.end_session_endpoint.is_none());
        assert_eq!(d.token_endpoint_auth_methods_supported.len(), 2);
    }

    #[test]
    fn accepts_entras_tenant_placeholder_for_the_configured_tenant_segment_only() {
        let t = "https://login.microsoftonline.com/{tenantid}/v2.0";
        assert!(is_tenant_template(
            t,
            "https://login.microsoftonline.com/organizations/v2.0"
        ));
        assert!(is_tenant_template(
            t,
            "https://login.microsoftonline.com/common/v2.0"
        ));
        for other in [
            "https://login.microsoftonline.com/v2.0",
            "https://login.microsoftonline.com/a/b/v2.0",
            "https://evil.example.com/common/v2.0",
            "https://login.microsoftonline.com/common/v1.0",
        ] {
            assert!(!is_tenant_template(t, other), "{other}");
        }
        assert!(!is_tenant_template(ISS, ISS), "no placeholder, no template");
        let body = format!(
            r#"{{"issuer":"{t}","jwks_uri":"https://login.microsoftonline.com/common/keys"}}"#
        );
        let d = Discovery::parse(
            body.as_bytes(),
            &issuer("https://login.microsoftonline.com/common/v2.0"),
        )
        .unwrap();
        assert!(d.is_multi_tenant());
    }

    #[test]
    fn refuses_another_issuer() {
        let body =
            br#"{"issuer":"https://evil.example.com","jwks_uri":"https://evil.example.com/jwks"}"#;
        assert_eq!(
            Discovery::parse(body, &issuer(ISS)).unwrap_err(),
            DiscoveryError::IssuerMismatch("https://evil.example.com".into())
        );
    }

    #[test]
    fn refuses_garbage_missing_fields_and_bad_urls() {
        assert!(matches!(
            Discovery::parse(b"<html>", &issuer(ISS)),
            Err(DiscoveryError::Unparseable(_))
        ));
        assert!(matches!(
            Discovery::parse(br#"{"issuer":"x""#, &issuer(ISS)),
            Err(DiscoveryError::Unparseable(_))
        ));
        let no_jwks = format!(r#"{{"issuer":"{ISS}"}}"#);
        assert!(matches!(
            Discovery::parse(no_jwks.as_bytes(), &issuer(ISS)),
            Err(DiscoveryError::Unparseable(_))
        ));
        let bad = format!(r#"{{"issuer":"{ISS}","jwks_uri":"file:///etc/passwd"}}"#);
        assert!(matches!(
            Discovery::parse(bad.as_bytes(), &issuer(ISS)),
            Err(DiscoveryError::BadUrl {
                field: "jwks_uri",
                ..
            })
        ));
    }
}
