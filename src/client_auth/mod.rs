//! How the filter authenticates itself to the IdP's token, introspection
//! and revocation endpoints (Kong's `client_auth`, `client_jwk`,
//! `client_alg` and the per-endpoint `*_endpoint_auth_method`):
//! `client_secret_basic`, `client_secret_post`, `client_secret_jwt` and
//! `private_key_jwt` (RFC 7523 client assertions), `tls_client_auth` (the
//! Envoy cluster presents the certificate) and `none` (public clients:
//! PKCE proves the rest).

pub mod key;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::action::IdpRequest;
use crate::config::ConfigError;
use crate::error::{Endpoint, IdpError};

/// How long an assertion is valid: RFC 7523 wants it short; the IdP
/// remembers its `jti` that long to refuse a replay.
const ASSERTION_LIFETIME: u64 = 120;
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Basic,
    Post,
    SecretJwt,
    PrivateKeyJwt,
    TlsClientAuth,
    None,
}

impl Method {
    fn parse(field: &str, name: &str) -> Result<Method, ConfigError> {
        Ok(match name {
            "client_secret_basic" => Method::Basic,
            "client_secret_post" => Method::Post,
            "client_secret_jwt" => Method::SecretJwt,
            "private_key_jwt" => Method::PrivateKeyJwt,
            "tls_client_auth" => Method::TlsClientAuth,
            "none" => Method::None,
            "self_signed_tls_client_auth" => {
                return Err(ConfigError::new(
                    field,
                    "`self_signed_tls_client_auth` is not supported: the certificate is the \
                     Envoy cluster's (its TLS context), which the IdP must trust as it trusts \
                     any client certificate; use `tls_client_auth`",
                ));
            }
            other => {
                return Err(ConfigError::new(
                    field,
                    format!("unknown client authentication method `{other}`"),
                ));
            }
        })
    }

    /// The methods that need `client_secret`.
    fn needs_secret(self) -> bool {
        matches!(self, Method::Basic | Method::Post | Method::SecretJwt)
    }
}

/// What a client assertion's `aud` names (`client_assertion_audience`).
/// RFC 7523 §3 asks only that it identify the authorization server, and
/// servers differ in what they take: Okta wants the URL of the endpoint
/// called; Keycloak takes its issuer or token endpoint at every endpoint
/// but not its revocation URL; RFC 7523bis (FAPI 2) wants the issuer alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Audience {
    /// The URL of the endpoint the assertion goes to.
    #[default]
    Endpoint,
    /// The token endpoint's URL, at every endpoint (OpenID Connect Core §9).
    TokenEndpoint,
    /// The issuer identifier, from discovery.
    Issuer,
}

impl Audience {
    fn parse(name: &str) -> Result<Audience, ConfigError> {
        Ok(match name {
            "endpoint" => Audience::Endpoint,
            "token_endpoint" => Audience::TokenEndpoint,
            "issuer" => Audience::Issuer,
            other => {
                return Err(ConfigError::new(
                    "client_assertion_audience",
                    format!("unknown value `{other}` (endpoint, token_endpoint, issuer)"),
                ));
            }
        })
    }
}

/// The signing algorithm of client assertions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Hs256,
    Hs384,
    Hs512,
    Es256,
    Rs256,
    Ps256,
}

impl Alg {
    fn parse(name: &str) -> Option<Alg> {
        Some(match name {
            "HS256" => Alg::Hs256,
            "HS384" => Alg::Hs384,
            "HS512" => Alg::Hs512,
            "ES256" => Alg::Es256,
            "RS256" => Alg::Rs256,
            "PS256" => Alg::Ps256,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Alg::Hs256 => "HS256",
            Alg::Hs384 => "HS384",
            Alg::Hs512 => "HS512",
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::Ps256 => "PS256",
        }
    }
}

/// What the configuration says about the gateway's own client (the first
/// `client_id`): its method overall and per endpoint, and its key.
#[derive(Debug, Clone, Default)]
pub struct ClientAuth {
    method: Option<Method>,
    token: Option<Method>,
    introspection: Option<Method>,
    revocation: Option<Method>,
    /// `client_jwk` and the algorithm it signs with (`private_key_jwt`);
    /// shared, not copied, with each clone of the configuration.
    key: Option<(Arc<key::ClientKey>, Alg)>,
    /// The algorithm of `client_secret_jwt`.
    secret_alg: Option<Alg>,
    /// What the assertions' `aud` names.
    pub audience: Audience,
}

/// The raw keys, as the configuration gives them.
pub struct Raw<'a> {
    pub client_auth: &'a [String],
    pub client_jwk: Option<&'a Value>,
    pub client_alg: &'a [String],
    pub token: Option<&'a str>,
    pub introspection: Option<&'a str>,
    pub revocation: Option<&'a str>,
    pub assertion_audience: Option<&'a str>,
    pub has_secret: bool,
}

impl ClientAuth {
    /// Checks the keys together: every method named has what it needs
    /// (a secret, a private key that fits the algorithm).
    pub fn parse(raw: &Raw) -> Result<ClientAuth, ConfigError> {
        let methods = raw
            .client_auth
            .iter()
            .map(|m| Method::parse("client_auth", m))
            .collect::<Result<Vec<_>, _>>()?;
        let one = |field: &str, v: Option<&str>| v.map(|m| Method::parse(field, m)).transpose();
        let auth = ClientAuth {
            method: methods.first().copied(),
            token: one("token_endpoint_auth_method", raw.token)?,
            introspection: one("introspection_endpoint_auth_method", raw.introspection)?,
            revocation: one("revocation_endpoint_auth_method", raw.revocation)?,
            key: None,
            secret_alg: None,
            audience: Audience::default(),
        };
        let used: Vec<(&str, Method)> = [
            ("client_auth", auth.method),
            ("token_endpoint_auth_method", auth.token),
            ("introspection_endpoint_auth_method", auth.introspection),
            ("revocation_endpoint_auth_method", auth.revocation),
        ]
        .into_iter()
        .filter_map(|(f, m)| Some((f, m?)))
        .collect();
        if let Some((field, m)) = used
            .iter()
            .find(|(_, m)| m.needs_secret() && !raw.has_secret)
        {
            return Err(ConfigError::new(
                field,
                format!("`{}` needs client_secret", method_name(*m)),
            ));
        }
        let alg = raw.client_alg.first().map(String::as_str);
        let wants_key = used.iter().any(|(_, m)| *m == Method::PrivateKeyJwt);
        let key = match (wants_key, raw.client_jwk) {
            (false, _) => None,
            (true, None) => {
                return Err(ConfigError::new(
                    "client_jwk",
                    "`private_key_jwt` needs the client's private key (a JWK)",
                ));
            }
            (true, Some(jwk)) => Some(signing_key(jwk, alg)?),
        };
        let wants_secret_jwt = used.iter().any(|(_, m)| *m == Method::SecretJwt);
        let secret_alg = match (wants_secret_jwt, alg) {
            (false, _) => None,
            (true, None) => Some(Alg::Hs256),
            // With both JWT methods, `client_alg` is the private key's.
            (true, Some(_)) if wants_key => Some(Alg::Hs256),
            (true, Some(name)) => match Alg::parse(name) {
                Some(a @ (Alg::Hs256 | Alg::Hs384 | Alg::Hs512)) => Some(a),
                _ => {
                    return Err(ConfigError::new(
                        "client_alg",
                        format!(
                            "`{name}` is not an HMAC algorithm for client_secret_jwt (HS256, HS384, HS512)"
                        ),
                    ));
                }
            },
        };
        let audience = raw
            .assertion_audience
            .map(Audience::parse)
            .transpose()?
            .unwrap_or_default();
        Ok(ClientAuth {
            key,
            secret_alg,
            audience,
            ..auth
        })
    }

    /// The method configured for `endpoint`, if any.
    pub fn method_for(&self, endpoint: Endpoint) -> Option<Method> {
        let specific = match endpoint {
            Endpoint::Token => self.token,
            Endpoint::Introspection => self.introspection,
            Endpoint::Revocation => self.revocation,
            _ => None,
        };
        specific.or(self.method)
    }

    /// Whether `method` is configured for any endpoint.
    pub fn uses(&self, method: Method) -> bool {
        [self.method, self.token, self.introspection, self.revocation].contains(&Some(method))
    }

    /// Whether the gateway's client can authenticate at `endpoint` without
    /// a secret (a key or a certificate).
    pub fn without_secret(&self, endpoint: Endpoint) -> bool {
        matches!(
            self.method_for(endpoint),
            Some(Method::PrivateKeyJwt | Method::TlsClientAuth)
        )
    }

    /// Signs the client assertion `request` still needs, if any, into its
    /// form body (`IdpRequest::unsigned`).
    pub fn sign_into(&self, request: &mut IdpRequest, now: u64) -> Result<(), IdpError> {
        let Some(u) = request.unsigned.take() else {
            return Ok(());
        };
        let pairs = self
            .assertion(u.method, &u.client_id, &u.secret, &u.audience, now)
            .ok_or_else(|| IdpError::Unroutable {
                endpoint: u.endpoint,
                reason: "no client assertion (no randomness from the host)".into(),
            })?;
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        let body = request.body.get_or_insert_with(Vec::new);
        if !body.is_empty() {
            body.push(b'&');
        }
        body.extend_from_slice(form.finish().as_bytes());
        Ok(())
    }

    /// The form parameters that authenticate `client_id` to `audience` (what
    /// `self.audience` names for the endpoint called) by a client assertion: `None` when `method` is not
    /// an assertion method, or when the host gave no randomness.
    fn assertion(
        &self,
        method: Method,
        client_id: &str,
        secret: &str,
        audience: &str,
        now: u64,
    ) -> Option<[(&'static str, String); 2]> {
        let jti = crate::oidc::pkce::random_value()?;
        let claims = json!({"iss": client_id, "sub": client_id, "aud": audience, "jti": jti,
                            "iat": now, "exp": now + ASSERTION_LIFETIME});
        let jws = match method {
            Method::SecretJwt => {
                let alg = self.secret_alg.unwrap_or(Alg::Hs256);
                sign(alg, None, &claims, |input| {
                    hmac(alg, secret.as_bytes(), input)
                })?
            }
            Method::PrivateKeyJwt => {
                let (key, alg) = self.key.as_ref()?;
                sign(*alg, key.kid.as_deref(), &claims, |input| {
                    private_sign(&key.signer, *alg, input)
                })?
            }
            _ => return None,
        };
        Some([
            ("client_assertion_type", ASSERTION_TYPE.to_string()),
            ("client_assertion", jws),
        ])
    }
}

/// A client assertion a request to the IdP still needs (RFC 7523): signed
/// only when the call goes out (`ClientAuth::sign_into`, from the engine's
/// dispatch), once the IdP budget has admitted it. A call the budget
/// refuses is then not signed: an RS256 assertion takes ~9 ms of the
/// worker, and a flood of unknown opaque tokens or forged callbacks would
/// otherwise pay one, or two (the flow runs again to fail), per request
/// past the budget.
#[derive(Clone, PartialEq, Eq)]
pub struct Unsigned {
    pub method: Method,
    pub client_id: String,
    /// `client_secret_jwt`'s HMAC key (empty for `private_key_jwt`).
    pub secret: String,
    pub audience: String,
    pub endpoint: Endpoint,
}

impl std::fmt::Debug for Unsigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("Unsigned")
            .field("method", &self.method)
            .field("client_id", &self.client_id)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Basic => "client_secret_basic",
        Method::Post => "client_secret_post",
        Method::SecretJwt => "client_secret_jwt",
        Method::PrivateKeyJwt => "private_key_jwt",
        Method::TlsClientAuth => "tls_client_auth",
        Method::None => "none",
    }
}

/// `client_jwk`'s first key and the algorithm it signs with: `client_alg`,
/// else the JWK's `alg`, else ES256 for EC and RS256 for RSA.
fn signing_key(jwk: &Value, alg: Option<&str>) -> Result<(Arc<key::ClientKey>, Alg), ConfigError> {
    let first = match jwk {
        Value::Array(keys) => keys.first().ok_or_else(|| {
            ConfigError::new("client_jwk", "`private_key_jwt` needs at least one key")
        })?,
        one => one,
    };
    let key = key::parse(first).map_err(|why| ConfigError::new("client_jwk", why))?;
    let named = alg.or(key.alg.as_deref());
    let alg = match (&key.signer, named.map(|n| (n, Alg::parse(n)))) {
        (key::Signer::Es256(_), None | Some((_, Some(Alg::Es256)))) => Alg::Es256,
        (key::Signer::Rsa(_), None) => Alg::Rs256,
        (key::Signer::Rsa(_), Some((_, Some(a @ (Alg::Rs256 | Alg::Ps256))))) => a,
        (_, Some((name, _))) => {
            return Err(ConfigError::new(
                "client_alg",
                format!(
                    "`{name}` does not fit the key of client_jwk (EC P-256: ES256; RSA: RS256, PS256)"
                ),
            ));
        }
    };
    Ok((Arc::new(key), alg))
}

/// A compact JWS of `claims`, its signature made by `signer` over the
/// signing input.
fn sign(
    alg: Alg,
    kid: Option<&str>,
    claims: &Value,
    signer: impl FnOnce(&[u8]) -> Option<Vec<u8>>,
) -> Option<String> {
    let header = match kid {
        Some(kid) => json!({"alg": alg.name(), "typ": "JWT", "kid": kid}),
        None => json!({"alg": alg.name(), "typ": "JWT"}),
    };
    let encode = |v: &Value| {
        serde_json::to_vec(v)
            .ok()
            .map(|b| URL_SAFE_NO_PAD.encode(b))
    };
    let input = format!("{}.{}", encode(&header)?, encode(claims)?);
    let signature = signer(input.as_bytes())?;
    Some(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn hmac(alg: Alg, secret: &[u8], input: &[u8]) -> Option<Vec<u8>> {
    fn mac<M: Mac + KeyInit>(secret: &[u8], input: &[u8]) -> Option<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(secret).ok()?;
        m.update(input);
        Some(m.finalize().into_bytes().to_vec())
    }
    match alg {
        Alg::Hs256 => mac::<hmac::Hmac<sha2::Sha256>>(secret, input),
        Alg::Hs384 => mac::<hmac::Hmac<sha2::Sha384>>(secret, input),
        Alg::Hs512 => mac::<hmac::Hmac<sha2::Sha512>>(secret, input),
        _ => None,
    }
}

fn private_sign(signer: &key::Signer, alg: Alg, input: &[u8]) -> Option<Vec<u8>> {
    use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
    match (signer, alg) {
        (key::Signer::Es256(k), Alg::Es256) => {
            let sig: p256::ecdsa::Signature = k.try_sign(input).ok()?;
            Some(sig.to_bytes().to_vec())
        }
        (key::Signer::Rsa(k), Alg::Rs256 | Alg::Ps256) => {
            // Blinding (and the PSS salt) from the host's random source
            // (WASI `random_get`, Envoy's): never an unblinded private
            // operation. A few draws a signature, and a signature is ~9 ms.
            let mut rng = getrandom::SysRng;
            let sig = if alg == Alg::Rs256 {
                rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(k.clone())
                    .try_sign_with_rng(&mut rng, input)
                    .ok()?
                    .to_vec()
            } else {
                rsa::pss::SigningKey::<sha2::Sha256>::new(k.clone())
                    .try_sign_with_rng(&mut rng, input)
                    .ok()?
                    .to_vec()
            };
            Some(sig)
        }
        _ => None,
    }
}
