//! The token endpoint (RFC 6749 §3.2, §4.4): preparing the request and
//! parsing the answer are two pure functions; sending is the shell's.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::action::{IdpReply, IdpRequest};
use crate::client_auth::{Audience, Method, Unsigned};
use crate::config::Config;
use crate::error::{Endpoint, Error, IdpError, TokenError};
use crate::oidc::discovery::Discovery;
use crate::url::Url;

/// A client's id and secret. The secret never appears in `Debug`.
pub struct ClientCredentials {
    pub id: String,
    secret: String,
    /// The gateway's own client (the configuration's): it authenticates as
    /// `client_auth` says. A calling client (Basic) by its secret.
    configured: bool,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCredentials({}, <redacted>)", self.id)
    }
}

impl ClientCredentials {
    pub fn new(id: String, secret: String) -> Self {
        ClientCredentials {
            id,
            secret,
            configured: false,
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Parses the value of an `Authorization: Basic` header (after the scheme).
    /// Id and secret are taken as sent, not form-decoded: the callers of a
    /// gateway send Basic credentials as HTTP clients do (`curl -u`, an
    /// HTTP library's basic auth), raw, and a secret may hold `%20` or `+`
    /// literally (tests/e2e: "reserved characters reach the IdP intact").
    /// RFC 6749 §2.3.1's encoding is for the token endpoint, where they go
    /// on encoded.
    pub fn from_basic(b64: &str) -> Result<ClientCredentials, TokenError> {
        let malformed = TokenError::Malformed("malformed basic credentials");
        let bytes = STANDARD.decode(b64.trim()).map_err(|_| malformed)?;
        let mut id = String::from_utf8(bytes).map_err(|_| malformed)?;
        let colon = id.find(':').ok_or(malformed)?;
        // The decoded text becomes the id, the part after `:` the secret:
        // one allocation fewer on every client-credentials request.
        // (`colon + 1` is a char boundary: `:` is one byte.)
        let secret = id.split_off(colon + 1);
        id.truncate(colon);
        let client = ClientCredentials::new(id, secret);
        if !client.is_well_formed() {
            return Err(malformed);
        }
        Ok(client)
    }

    /// A non-empty id and secret, and no control character in either.
    ///
    /// A caller's secret may not be empty: an exchange without one would go
    /// out with no client authentication at all (`post`'s public client),
    /// and with `tls_client_auth` the token endpoint's cluster presents the
    /// gateway's own certificate, so the IdP would hand the caller the
    /// gateway's token.
    pub fn is_well_formed(&self) -> bool {
        !self.id.is_empty()
            && !self.secret.is_empty()
            && !has_control(&self.id)
            && !has_control(&self.secret)
    }
}

/// Whether `s` holds a control character. ASCII text (nearly every client
/// id and secret) by bytes: this runs on every client-credentials request,
/// and decoding chars one call at a time was a visible share of it.
pub(crate) fn has_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_control())
    } else {
        s.chars().any(char::is_control)
    }
}

/// How the token endpoint wants the client to authenticate: HTTP Basic
/// unless discovery lists `client_secret_post` and not `client_secret_basic`.
fn uses_post(discovery: &Discovery) -> bool {
    let methods = &discovery.token_endpoint_auth_methods_supported;
    methods.iter().any(|m| m == "client_secret_post")
        && !methods.iter().any(|m| m == "client_secret_basic")
}

/// The client registered in the configuration (first id and secret).
pub fn configured_client(cfg: &Config) -> ClientCredentials {
    ClientCredentials {
        configured: true,
        ..ClientCredentials::new(
            cfg.client_ids.first().cloned().unwrap_or_default(),
            cfg.client_secrets.first().cloned().unwrap_or_default(),
        )
    }
}

/// A POST to the token endpoint with `params` and client authentication.
pub fn request(
    cfg: &Config,
    discovery: &Discovery,
    client: &ClientCredentials,
    params: &[(&str, &str)],
) -> Result<IdpRequest, IdpError> {
    let endpoint = Endpoint::Token;
    let url = discovery
        .token_endpoint
        .as_ref()
        .ok_or_else(|| IdpError::Unroutable {
            endpoint,
            reason: "discovery has no token_endpoint".into(),
        })?;
    post(cfg, discovery, endpoint, url, client, params)
}

/// A POST to an IdP endpoint (token, introspection, revocation) with
/// client authentication: for the gateway's own client as `client_auth`
/// says for that endpoint; otherwise (and by default) HTTP Basic, or the
/// form when discovery offers only `client_secret_post`, or the bare
/// `client_id` of a public client.
pub fn post(
    cfg: &Config,
    discovery: &Discovery,
    endpoint: Endpoint,
    url: &Url,
    client: &ClientCredentials,
    params: &[(&str, &str)],
) -> Result<IdpRequest, IdpError> {
    let mut request = IdpRequest::to(cfg, endpoint, "POST", url)?.header(
        "content-type",
        "application/x-www-form-urlencoded".to_string(),
    );
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(params);
    let configured = client
        .configured
        .then(|| cfg.client_auth.method_for(endpoint))
        .flatten();
    // Only the gateway's own client may be public: a caller's exchange always
    // carries the caller's secret (never none, see `is_well_formed`).
    let method = configured.unwrap_or(if client.configured && client.secret().is_empty() {
        Method::None
    } else if uses_post(discovery) {
        Method::Post
    } else {
        Method::Basic
    });
    match method {
        // A public client names itself and PKCE proves the rest; with
        // tls_client_auth the Envoy cluster's certificate proves it.
        Method::None | Method::TlsClientAuth => {
            form.append_pair("client_id", &client.id);
        }
        Method::Post => {
            form.append_pair("client_id", &client.id);
            form.append_pair("client_secret", client.secret());
        }
        Method::Basic => {
            // RFC 6749 §2.3.1: id and secret are form-encoded, then Basic.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&client.id), enc(client.secret()));
            request = request.header("authorization", format!("Basic {}", STANDARD.encode(pair)));
        }
        Method::SecretJwt | Method::PrivateKeyJwt => {
            // RFC 7521 §4.2 lets `client_id` go with the assertion (it must
            // be its `sub`); Spring Authorization Server, Entra ID and ADFS
            // refuse an assertion without it.
            form.append_pair("client_id", &client.id);
            let audience = match cfg.client_auth.audience {
                // Entra's multi-tenant document names `{tenantid}`, not an
                // issuer: the configured tenant's is the one meant.
                Audience::Issuer if discovery.is_multi_tenant() => cfg.issuer.id.clone(),
                Audience::Issuer => discovery.issuer.clone(),
                Audience::TokenEndpoint => {
                    discovery.token_endpoint.as_ref().unwrap_or(url).to_string()
                }
                Audience::Endpoint => url.to_string(),
            };
            // Signed when the call goes out, if the budget admits it.
            request.unsigned = Some(Box::new(Unsigned {
                method,
                client_id: client.id.clone(),
                secret: client.secret().to_string(),
                audience,
                endpoint,
            }));
        }
    }
    request.body = Some(form.finish().into_bytes());
    Ok(request)
}

/// Longest `Retry-After` honoured: a larger one (or a date) is read as this.
pub const MAX_RETRY_AFTER: u64 = 300;

/// A 429: honoured for the IdP's `Retry-After` (1 s when it gave none).
pub fn throttled(endpoint: Endpoint, reply: &IdpReply) -> IdpError {
    IdpError::Throttled {
        endpoint,
        retry_after: reply.retry_after.unwrap_or(1).clamp(1, MAX_RETRY_AFTER),
    }
}

/// A successful token response.
#[derive(Deserialize, Serialize, Clone)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(default, deserialize_with = "seconds")]
    pub expires_in: Option<u64>,
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The scopes granted, when they differ from those asked for (RFC
    /// 6749 §5.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// `expires_in` as a number (RFC 6749 §5.1) or as a string of digits, as
/// Entra ID's v1 token endpoint sends it (`"expires_in": "3599"`); a
/// fraction is cut off. Anything else refuses the answer, as before.
fn seconds<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<u64>, D::Error> {
    struct Seconds;
    impl serde::de::Visitor<'_> for Seconds {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of seconds")
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::custom("a negative expires_in"))
        }
        fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Self::Value, E> {
            if v.is_finite() && v >= 0.0 {
                Ok(Some(v as u64))
            } else {
                Err(E::custom("expires_in is not a number of seconds"))
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| E::custom("expires_in is not a number of seconds"))
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    de.deserialize_any(Seconds)
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenResponse(expires_in: {:?})", self.expires_in)
    }
}

/// Parses the token endpoint's answer. The IdP refusing the client or the
/// grant (`invalid_client`, `invalid_grant`) is the client's failure: 400
/// or 401 by RFC 6749 §5.2, and 403 from some certified providers.
pub fn parse_response(reply: &IdpReply) -> Result<TokenResponse, Error> {
    let endpoint = Endpoint::Token;
    match reply.status {
        Some(200) => {}
        Some(400 | 401 | 403) => return Err(TokenError::Rejected.into()),
        Some(429) => return Err(throttled(endpoint, reply).into()),
        None | Some(503 | 504) => {
            return Err(IdpError::Unavailable {
                endpoint,
                status: reply.status,
            }
            .into());
        }
        Some(status) => return Err(IdpError::BadStatus { endpoint, status }.into()),
    }
    let response: TokenResponse =
        crate::json::from_object(&reply.body).map_err(|e| IdpError::BadBody {
            endpoint,
            reason: e.to_string(),
        })?;
    // It goes into headers as it came (upstream, userinfo's call): a JSON
    // string can hold CR or LF.
    if response.access_token.is_empty()
        || !is_token_text(&response.access_token)
        || response
            .token_type
            .as_deref()
            .is_some_and(|t| !t.eq_ignore_ascii_case("bearer"))
    {
        return Err(IdpError::BadBody {
            endpoint,
            reason: "no bearer access_token".into(),
        }
        .into());
    }
    Ok(response)
}

/// Whether a token is text a header can carry as it is: visible ASCII
/// (RFC 6750's token characters are some of it). A bearer
/// token from the query is percent-decoded, and one from an IdP's JSON
/// unescaped: either could hold CR or LF, which would go on into the IdP
/// call's and the upstream request's headers.
pub fn is_token_text(token: &str) -> bool {
    token.bytes().all(|b| b.is_ascii_graphic())
}

/// The `exp` of a JWT, read without verification: only to bound how long
/// a token is cached (it is verified before every use).
pub fn unverified_exp(token: &str) -> Option<u64> {
    crate::oidc::jwt::unverified_claims(token)?
        .get("exp")?
        .as_f64()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(|t| t as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_parse_and_malformed_ones_are_refused() {
        let c = ClientCredentials::from_basic(&STANDARD.encode("client:se:cret")).unwrap();
        assert_eq!((c.id.as_str(), c.secret()), ("client", "se:cret"));
        assert!(!format!("{c:?}").contains("cret"), "secret redacted");
        for bad in [
            "!!!",
            &STANDARD.encode("no-colon"),
            &STANDARD.encode(":secret"),
            &STANDARD.encode("client:"),
            &STANDARD.encode([0xff, b':', b'x']),
            "",
            // Control characters, ASCII or not (C1, U+0085), in id or secret.
            &STANDARD.encode("cli\nent:secret"),
            &STANDARD.encode("client:sec\x7fret"),
            &STANDARD.encode("clïent:sec\u{85}ret"),
        ] {
            assert!(ClientCredentials::from_basic(bad).is_err(), "{bad}");
        }
        let c = ClientCredentials::from_basic(&STANDARD.encode("clïent:sécret")).unwrap();
        assert_eq!((c.id.as_str(), c.secret()), ("clïent", "sécret"));
        // Taken as sent: a secret's `%20` and `+` are its own.
        let c = ClientCredentials::from_basic(&STANDARD.encode("client:p+s%20w")).unwrap();
        assert_eq!(c.secret(), "p+s%20w");
    }

    #[test]
    fn token_replies_map_to_responses() {
        let reply = |status, body: &str| IdpReply {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
        };
        let ok = parse_response(&reply(
            Some(200),
            r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":3600}"#,
        ))
        .unwrap();
        assert_eq!(
            (ok.access_token.as_str(), ok.expires_in),
            ("a.b.c", Some(3600))
        );
        // Entra ID v1 sends it as a string; null is no lifetime.
        for (body, expires_in) in [
            (r#"{"access_token":"a","expires_in":"3599"}"#, Some(3599)),
            (r#"{"access_token":"a","expires_in":3599.5}"#, Some(3599)),
            (r#"{"access_token":"a","expires_in":null}"#, None),
            (r#"{"access_token":"a"}"#, None),
        ] {
            assert_eq!(
                parse_response(&reply(Some(200), body)).unwrap().expires_in,
                expires_in,
                "{body}"
            );
        }
        for body in [
            r#"{"access_token":"a","expires_in":"soon"}"#,
            r#"{"access_token":"a","expires_in":-1}"#,
            r#"{"access_token":"a","expires_in":[3600]}"#,
        ] {
            assert!(parse_response(&reply(Some(200), body)).is_err(), "{body}");
        }
        assert_eq!(
            parse_response(&reply(Some(400), r#"{"error":"invalid_client"}"#)).unwrap_err(),
            Error::Token(TokenError::Rejected)
        );
        assert_eq!(
            parse_response(&reply(Some(401), "")).unwrap_err(),
            Error::Token(TokenError::Rejected)
        );
        let status = |s, b| {
            parse_response(&reply(s, b))
                .unwrap_err()
                .response("r")
                .status
        };
        assert_eq!(status(None, ""), 503);
        assert_eq!(status(Some(504), ""), 503);
        assert_eq!(status(Some(500), ""), 502);
        assert_eq!(status(Some(200), "<html>"), 502);
        assert_eq!(status(Some(200), r#"{"access_token":""}"#), 502);
        // Unescaped, it would go into the upstream request's headers.
        for token in [r#"a\r\nx-admin: 1"#, r#"a\u0000b"#, "a b"] {
            let body = format!(r#"{{"access_token":"{token}"}}"#);
            let e = parse_response(&reply(Some(200), &body)).unwrap_err();
            assert_eq!(e.response("r").status, 502, "{body}");
        }
        assert_eq!(
            status(Some(200), r#"{"access_token":"x","token_type":"mac"}"#),
            502
        );
    }

    #[test]
    fn unverified_exp_reads_the_payload_only() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1800000000}"#);
        assert_eq!(
            unverified_exp(&format!("h.{payload}.s")),
            Some(1_800_000_000)
        );
        assert_eq!(unverified_exp("opaque"), None);
    }
}
