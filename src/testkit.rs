//! Test-only helpers: the fixture keys, a JWKS that publishes them, and
//! tokens signed at test time.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.example.com/pool";

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("fixture PEM")
}

fn rsa_key(pem: &str) -> rsa::PrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::PrivateKey::from_pkcs8_der(&pem_der(pem)).expect("fixture RSA key")
}

pub fn rsa_test_key() -> rsa::PrivateKey {
    rsa_key(include_str!("../tests/fixtures/rsa-test-key.pem"))
}

pub fn rsa_other_key() -> rsa::PrivateKey {
    rsa_key(include_str!("../tests/fixtures/rsa-other-key.pem"))
}

pub fn ec_test_key() -> p256::ecdsa::SigningKey {
    use p256::pkcs8::DecodePrivateKey;
    p256::ecdsa::SigningKey::from_pkcs8_der(&pem_der(include_str!(
        "../tests/fixtures/ec-test-key.pem"
    )))
    .expect("fixture EC key")
}

pub fn ed_test_key() -> ed25519_compact::KeyPair {
    ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32]))
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn rsa_jwk(key: &rsa::PrivateKey, kid: &str) -> Value {
    use rsa::traits::PublicKeyParts;
    let public = key.to_public_key();
    json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
           "n": b64(&public.n().to_be_bytes_trimmed_vartime()),
           "e": b64(&public.e().to_be_bytes_trimmed_vartime())})
}

/// The JWKS the test IdP publishes: RSA `test-rsa` (no alg, so PS256 works
/// too), P-256 `test-ec`, Ed25519 `test-ed`.
pub fn jwks() -> Vec<u8> {
    let mut rsa = rsa_jwk(&rsa_test_key(), "test-rsa");
    rsa.as_object_mut().unwrap().remove("alg");
    // Uncompressed SEC1: 0x04 || x || y.
    let point = ec_test_key().verifying_key().to_sec1_bytes();
    let ec = json!({"kty": "EC", "crv": "P-256", "kid": "test-ec", "alg": "ES256",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65])});
    let ed = json!({"kty": "OKP", "crv": "Ed25519", "kid": "test-ed", "x": b64(ed_test_key().pk.as_ref())});
    let enc = json!({"kty": "RSA", "use": "enc", "kid": "enc", "n": "AQAB", "e": "AQAB"});
    serde_json::to_vec(&json!({"keys": [rsa, ec, ed, enc]})).unwrap()
}

pub fn discovery() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "issuer": ISSUER,
        "jwks_uri": format!("{ISSUER}/.well-known/jwks.json"),
        "token_endpoint": "https://auth.example.com/oauth2/token",
    }))
    .unwrap()
}

/// Claims of a valid Cognito-shaped access token at `now`.
pub fn access_claims(now: u64) -> Value {
    json!({"iss": ISSUER, "sub": "client-1", "client_id": "client-1", "token_use": "access",
           "scope": "kongresource/scope1 other", "iat": now, "exp": now + 3600, "jti": "j1"})
}

/// Signs `claims` with `alg` and the matching fixture key, header `header`.
pub fn sign(header: &Value, claims: &Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let sig = match header["alg"].as_str().unwrap_or_default() {
        "RS256" if header["kid"] == "other" => {
            rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_other_key())
                .sign(input.as_bytes())
                .to_vec()
        }
        "RS256" => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(rsa_test_key())
            .sign(input.as_bytes())
            .to_vec(),
        "RS512" => rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(rsa_test_key())
            .sign(input.as_bytes())
            .to_vec(),
        "ES256" => {
            let s: p256::ecdsa::Signature = ec_test_key().sign(input.as_bytes());
            s.to_bytes().to_vec()
        }
        "EdDSA" => ed_test_key().sk.sign(input.as_bytes(), None).to_vec(),
        // Anything else gets a junk signature: it must be refused before use.
        _ => vec![0; 32],
    };
    format!("{input}.{}", b64(&sig))
}

pub fn rs256(claims: &Value) -> String {
    sign(
        &json!({"alg": "RS256", "kid": "test-rsa", "typ": "JWT"}),
        claims,
    )
}
