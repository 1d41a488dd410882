//! Client authentication at the IdP: the request each method makes, the
//! RFC 7523 assertions (their claims, and their signatures checked by a
//! verifier independent of the signing code: our own RSA arithmetic, and
//! a published HMAC vector), and what the configuration refuses.

use std::collections::BTreeMap;

use envoy_oidc::action::IdpRequest;
use envoy_oidc::config::Config;
use envoy_oidc::error::Endpoint;
use envoy_oidc::oidc::discovery::Discovery;
use envoy_oidc::oidc::jwks::KeySet;
use envoy_oidc::oidc::jwt::Jwt;
use envoy_oidc::oidc::token;
use envoy_oidc_testkit::tokens::{self, Key};
use serde_json::{Value, json};

const NOW: u64 = 1_800_000_000;
const TOKEN_URL: &str = "https://idp.example.com/oauth2/token";
const REVOKE_URL: &str = "https://idp.example.com/oauth2/revoke";

fn config(extra: Value) -> Result<Config, String> {
    let mut c = json!({"issuer": "https://idp.example.com", "idp_cluster": "idp",
                       "client_id": "gw", "redirect_uri": "https://gw.example.com/cb"});
    c.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    Config::parse(c.to_string().as_bytes())
        .map(|l| l.config)
        .map_err(|e| e.to_string())
}

fn discovery() -> Discovery {
    let d = json!({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/jwks",
                   "token_endpoint": TOKEN_URL, "revocation_endpoint": REVOKE_URL});
    let issuer = envoy_oidc::config::Issuer::parse("https://idp.example.com").unwrap();
    Discovery::parse(d.to_string().as_bytes(), &issuer).unwrap()
}

/// The code exchange the gateway's client makes under `cfg`, as sent.
fn exchange(cfg: &Config) -> IdpRequest {
    let r = token::request(
        cfg,
        &discovery(),
        &token::configured_client(cfg),
        &[("grant_type", "authorization_code"), ("code", "c")],
    );
    sent(cfg, r.unwrap())
}

/// `r` as the engine sends it once the call is admitted: its client
/// assertion, if any, signed into the form (at `NOW`).
fn sent(cfg: &Config, mut r: IdpRequest) -> IdpRequest {
    cfg.client_auth.sign_into(&mut r, NOW).unwrap();
    r
}

fn form(r: &IdpRequest) -> BTreeMap<String, String> {
    form_urlencoded::parse(r.body.as_deref().unwrap())
        .into_owned()
        .collect()
}

fn authorization(r: &IdpRequest) -> Option<&str> {
    r.headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.as_str())
}

/// Checks an assertion's RFC 7523 claims; returns it parsed.
fn assertion(r: &IdpRequest) -> (String, Value) {
    let f = form(r);
    assert_eq!(
        f["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(!f.contains_key("client_secret"), "no secret in the form");
    // RFC 7521 §4.2 allows it; Spring Authorization Server and Entra ID
    // require it.
    assert_eq!(f.get("client_id").map(String::as_str), Some("gw"));
    assert_eq!(authorization(r), None, "no Basic header");
    let jws = f["client_assertion"].clone();
    let c = part(&jws, 1);
    assert_eq!(
        (c["iss"].as_str(), c["sub"].as_str()),
        (Some("gw"), Some("gw"))
    );
    assert_eq!(c["aud"], TOKEN_URL);
    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
    assert_eq!(iat, NOW);
    assert!(exp > iat && exp - iat <= 300, "exp within 5 minutes");
    assert!(c["jti"].as_str().unwrap().len() >= 32, "a random jti");
    (jws.clone(), c)
}

/// The JSON of a JWS part (0: header, 1: claims), read without checks.
fn part(jws: &str, i: usize) -> Value {
    let b64 = jws.split('.').nth(i).unwrap();
    let bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b64).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Verifies `jws` with the public key of `key`, by our verifier.
fn verified_by(jws: &str, key: Key, kid: &str) -> bool {
    let mut jwk = tokens::jwk(key, kid);
    // Any algorithm of the key's type (the fixture JWK names one).
    jwk.as_object_mut().unwrap().remove("alg");
    let set = json!({"keys": [jwk]});
    let keys = KeySet::parse(set.to_string().as_bytes()).unwrap().set;
    let jwt = Jwt::parse(jws).unwrap();
    jwt.verify(keys.candidates(jwt.kid.as_deref())).is_ok()
}

#[test]
fn private_key_jwt_signs_with_ec_and_rsa_keys() {
    for (key, alg, kid) in [
        (Key::Ec, "ES256", "client-ec"),
        (Key::Rsa, "RS256", "client-rsa"),
        (Key::Rsa, "PS256", "client-rsa"),
    ] {
        let mut jwk = tokens::private_jwk(key, kid);
        jwk.as_object_mut().unwrap().remove("alg");
        let cfg = config(
            json!({"client_auth": ["private_key_jwt"], "client_jwk": [jwk],
                                "client_alg": alg}),
        )
        .unwrap();
        let first = exchange(&cfg);
        let (jws, _) = assertion(&first);
        let header = part(&jws, 0);
        assert_eq!(
            (header["alg"].as_str(), header["kid"].as_str()),
            (Some(alg), Some(kid))
        );
        assert!(verified_by(&jws, key, kid), "{alg}: verifies");
        // The public key of another key pair does not verify it.
        if key == Key::Rsa {
            assert!(
                !verified_by(&jws, Key::OtherRsa, kid),
                "{alg}: not by another key"
            );
        }
        // A fresh jti each time: the IdP refuses a replayed assertion.
        let (again, _) = assertion(&exchange(&cfg));
        assert_ne!(part(&again, 1)["jti"], part(&jws, 1)["jti"]);
        assert_eq!(form(&first)["grant_type"], "authorization_code");
    }
}

#[test]
fn client_secret_jwt_is_an_hmac_of_the_secret() {
    use hmac::{KeyInit, Mac};
    for (alg, len) in [("HS256", 32), ("HS384", 48), ("HS512", 64)] {
        let cfg = config(
            json!({"client_auth": "client_secret_jwt", "client_secret": "s3cret",
                                "client_alg": [alg]}),
        )
        .unwrap();
        let (jws, _) = assertion(&exchange(&cfg));
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig =
            base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sig).unwrap();
        assert_eq!(sig.len(), len, "{alg}");
        let expected = match alg {
            "HS256" => {
                let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
                m.update(input.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            "HS384" => {
                let mut m = hmac::Hmac::<sha2::Sha384>::new_from_slice(b"s3cret").unwrap();
                m.update(input.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
            _ => {
                let mut m = hmac::Hmac::<sha2::Sha512>::new_from_slice(b"s3cret").unwrap();
                m.update(input.as_bytes());
                m.finalize().into_bytes().to_vec()
            }
        };
        assert_eq!(sig, expected, "{alg}");
    }
}

#[test]
fn hmac_matches_rfc_7515_appendix_a1() {
    // RFC 7515 A.1: HS256 over its signing input with its key: the
    // published signature, computed by the hmac crate the filter signs with.
    use hmac::{KeyInit, Mac};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let key = base64::Engine::decode(
        &b64,
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
    )
    .unwrap();
    let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    m.update(input.as_bytes());
    assert_eq!(
        base64::Engine::encode(&b64, m.finalize().into_bytes()),
        "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
}

#[test]
fn each_method_authenticates_as_it_says() {
    let with_secret = |m: &str| config(json!({"client_auth": m, "client_secret": "p&q"})).unwrap();
    let basic = exchange(&with_secret("client_secret_basic"));
    assert_eq!(authorization(&basic), Some("Basic Z3c6cCUyNnE="));
    let post = form(&exchange(&with_secret("client_secret_post")));
    assert_eq!(
        (post["client_id"].as_str(), post["client_secret"].as_str()),
        ("gw", "p&q")
    );
    for public in ["none", "tls_client_auth"] {
        let r = exchange(&config(json!({"client_auth": public})).unwrap());
        let f = form(&r);
        assert_eq!(f["client_id"], "gw", "{public}");
        assert!(
            !f.contains_key("client_secret") && authorization(&r).is_none(),
            "{public}"
        );
    }
    // A per-endpoint method wins over client_auth.
    let cfg = config(
        json!({"client_auth": "client_secret_basic", "client_secret": "s",
                            "token_endpoint_auth_method": "client_secret_post"}),
    )
    .unwrap();
    assert!(form(&exchange(&cfg)).contains_key("client_secret"));
    let revocation = token::post(
        &cfg,
        &discovery(),
        Endpoint::Revocation,
        &envoy_oidc::oidc::discovery::Discovery::parse(
            json!({"issuer": "https://idp.example.com", "jwks_uri": "https://idp.example.com/j",
                   "token_endpoint": "https://idp.example.com/revoke"})
            .to_string()
            .as_bytes(),
            &cfg.issuer,
        )
        .unwrap()
        .token_endpoint
        .unwrap(),
        &token::configured_client(&cfg),
        &[("token", "t")],
    )
    .unwrap();
    assert!(
        authorization(&revocation).is_some(),
        "revocation keeps client_auth"
    );
}

#[test]
fn the_configuration_refuses_what_cannot_authenticate_naming_the_field() {
    let mut public_only = tokens::private_jwk(Key::Ec, "k");
    public_only.as_object_mut().unwrap().remove("d");
    let mut mismatched = tokens::private_jwk(Key::Ec, "k");
    mismatched["x"] = tokens::jwk(Key::Rsa, "k")["n"].clone();
    let small_rsa = {
        let mut k = tokens::private_jwk(Key::Rsa, "k");
        k["n"] = json!("AQAB");
        k
    };
    for (extra, field, says) in [
        (
            json!({"client_auth": "private_key_jwt"}),
            "client_jwk",
            "private key",
        ),
        (
            json!({"client_auth": "private_key_jwt", "client_jwk": [public_only]}),
            "client_jwk",
            "no private part (`d`)",
        ),
        (
            json!({"client_auth": "private_key_jwt", "client_jwk": [mismatched]}),
            "client_jwk",
            "not the public key of `d`",
        ),
        (
            json!({"client_auth": "private_key_jwt", "client_jwk": [small_rsa]}),
            "client_jwk",
            "RSA",
        ),
        (
            json!({"client_auth": "private_key_jwt", "client_jwk": {"kty": "oct", "k": "AA"}}),
            "client_jwk",
            "key type `oct`",
        ),
        (
            json!({"client_auth": "private_key_jwt", "client_jwk": [tokens::private_jwk(Key::Ec, "k")],
                "client_alg": "RS256"}),
            "client_alg",
            "does not fit",
        ),
        (
            json!({"client_auth": "client_secret_jwt"}),
            "client_auth",
            "needs client_secret",
        ),
        (
            json!({"client_auth": "client_secret_jwt", "client_secret": "s", "client_alg": "ES256"}),
            "client_alg",
            "HMAC",
        ),
        (
            json!({"client_auth": "self_signed_tls_client_auth"}),
            "client_auth",
            "tls_client_auth",
        ),
        (json!({"client_auth": "mtls"}), "client_auth", "unknown"),
        (
            json!({"introspection_endpoint_auth_method": "client_secret_post"}),
            "introspection_endpoint_auth_method",
            "needs client_secret",
        ),
    ] {
        let e = config(extra.clone()).expect_err("refused");
        assert!(e.contains(&format!("`{field}`")), "{extra}: {e}");
        assert!(e.contains(says), "{extra}: {e}");
        // Key material never appears in the message.
        if let Some(d) = extra["client_jwk"][0]["d"].as_str() {
            assert!(!e.contains(d), "{e}");
        }
    }
    // A key is never shown by Debug.
    let cfg = config(json!({"client_auth": "private_key_jwt",
                            "client_jwk": [tokens::private_jwk(Key::Rsa, "k")]}))
    .unwrap();
    let d = tokens::private_jwk(Key::Rsa, "k")["d"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = format!("{:?}", cfg.client_auth);
    assert!(
        shown.contains("redacted") && !shown.contains(&d[..16]),
        "{shown}"
    );
}

#[test]
fn introspection_needs_no_secret_with_a_key() {
    let cfg = config(
        json!({"auth_methods": ["introspection"], "client_auth": "private_key_jwt",
                            "client_jwk": [tokens::private_jwk(Key::Ec, "k")]}),
    );
    assert!(cfg.is_ok(), "{cfg:?}");
    let refused = config(json!({"auth_methods": ["introspection"], "client_auth": "none"}));
    assert!(refused.unwrap_err().contains("client_secret"));
}

#[test]
fn client_assertion_audience_names_the_endpoint_the_token_endpoint_or_the_issuer() {
    let discovery = discovery();
    let revoke = discovery.revocation_endpoint.as_ref().unwrap();
    for (said, at_token, at_revocation) in [
        (None, TOKEN_URL, REVOKE_URL),
        (Some("endpoint"), TOKEN_URL, REVOKE_URL),
        (Some("token_endpoint"), TOKEN_URL, TOKEN_URL),
        (
            Some("issuer"),
            "https://idp.example.com",
            "https://idp.example.com",
        ),
    ] {
        for method in ["private_key_jwt", "client_secret_jwt"] {
            let mut extra = json!({"client_auth": method, "client_secret": "s",
                                   "client_jwk": [tokens::private_jwk(Key::Ec, "k")]});
            if let Some(said) = said {
                extra["client_assertion_audience"] = json!(said);
            }
            let cfg = config(extra).unwrap();
            let aud = |r: &IdpRequest| part(&form(r)["client_assertion"], 1)["aud"].clone();
            assert_eq!(aud(&exchange(&cfg)), at_token, "{said:?} {method}");
            let revocation = token::post(
                &cfg,
                &discovery,
                Endpoint::Revocation,
                revoke,
                &token::configured_client(&cfg),
                &[("token", "t")],
            );
            let revocation = sent(&cfg, revocation.unwrap());
            assert_eq!(aud(&revocation), at_revocation, "{said:?} {method}");
        }
    }
    // An unknown value is refused at load, naming the key.
    let e = config(
        json!({"client_auth": "client_secret_jwt", "client_secret": "s",
                          "client_assertion_audience": "token"}),
    )
    .expect_err("refused");
    assert!(
        e.contains("`client_assertion_audience`") && e.contains("unknown value `token`"),
        "{e}"
    );
}

#[test]
fn an_issuer_audience_under_entras_tenant_placeholder_is_the_configured_issuer() {
    // Entra's multi-tenant document names `{tenantid}`, not an issuer.
    const ORGS: &str = "https://login.microsoftonline.com/organizations/v2.0";
    let cfg = config(json!({"issuer": ORGS, "client_auth": "client_secret_jwt",
                            "client_secret": "s", "client_assertion_audience": "issuer"}))
    .unwrap();
    let d = json!({"issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
                   "jwks_uri": "https://login.microsoftonline.com/organizations/discovery/v2.0/keys",
                   "token_endpoint": TOKEN_URL});
    let issuer = envoy_oidc::config::Issuer::parse(ORGS).unwrap();
    let discovery = Discovery::parse(d.to_string().as_bytes(), &issuer).unwrap();
    let r = token::request(
        &cfg,
        &discovery,
        &token::configured_client(&cfg),
        &[("grant_type", "client_credentials")],
    );
    let r = sent(&cfg, r.unwrap());
    assert_eq!(part(&form(&r)["client_assertion"], 1)["aud"], ORGS);
}
