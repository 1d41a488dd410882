//! JWTs signed at test time with the fixture keys.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use p256::ecdsa::SigningKey as EcKey;
use p256::pkcs8::DecodePrivateKey as _;
use rsa::PrivateKey as RsaPrivateKey;
use rsa::pkcs1v15::SigningKey as RsaSigner;
use rsa::signature::{SignatureEncoding as _, Signer as _};
use rsa::traits::PublicKeyParts as _;
use serde_json::{Value, json};
use sha2::Sha256;
use wasm_test_harness::Harness;

use super::ISSUER;

#[derive(Clone, Copy, Debug)]
pub enum Key {
    /// `tests/fixtures/rsa-test-key.pem`, published as `test-rsa`.
    Rsa,
    /// `tests/fixtures/ec-test-key.pem`, published as `test-ec`.
    Ec,
    /// `tests/fixtures/rsa-other-key.pem`, never published.
    OtherRsa,
}

struct Keys {
    rsa: RsaPrivateKey,
    other: RsaPrivateKey,
    ec: EcKey,
}

fn pem_der(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| Keys {
        rsa: RsaPrivateKey::from_pkcs8_der(&pem_der("rsa-test-key.pem")).expect("rsa-test-key.pem"),
        other: RsaPrivateKey::from_pkcs8_der(&pem_der("rsa-other-key.pem"))
            .expect("rsa-other-key.pem"),
        ec: EcKey::from_pkcs8_der(&pem_der("ec-test-key.pem")).expect("ec-test-key.pem"),
    })
}

/// The public JWK of `key` under `kid`.
pub fn jwk(key: Key, kid: &str) -> Value {
    let rsa = |k: &RsaPrivateKey| {
        json!({
            "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": B64.encode(k.n().to_be_bytes_trimmed_vartime()),
            "e": B64.encode(k.e().to_be_bytes_trimmed_vartime()),
        })
    };
    match key {
        Key::Rsa => rsa(&keys().rsa),
        Key::OtherRsa => rsa(&keys().other),
        Key::Ec => {
            let point = p256::PublicKey::from(keys().ec.verifying_key()).to_sec1_bytes();
            json!({
                "kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                "x": B64.encode(&point[1..33]),
                "y": B64.encode(&point[33..65]),
            })
        }
    }
}

/// Signs `header.claims` with `key` (RS256 for RSA keys, ES256 for EC).
pub fn sign(key: Key, header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let signature = match key {
        Key::Rsa => RsaSigner::<Sha256>::new(keys().rsa.clone())
            .sign(input.as_bytes())
            .to_vec(),
        Key::OtherRsa => RsaSigner::<Sha256>::new(keys().other.clone())
            .sign(input.as_bytes())
            .to_vec(),
        Key::Ec => {
            let signature: p256::ecdsa::Signature =
                p256::ecdsa::signature::Signer::sign(&keys().ec, input.as_bytes());
            signature.to_bytes().to_vec()
        }
    };
    format!("{input}.{}", B64.encode(signature))
}

/// Valid Cognito-shaped access-token claims at the harness clock.
pub fn claims(h: &Harness) -> Value {
    let now = h.unix_now();
    json!({
        "sub": "client-1",
        "iss": ISSUER,
        "client_id": "client-1",
        "token_use": "access",
        "scope": "kongresource/scope1",
        "iat": now,
        "exp": now + 300,
        "jti": "b9b2b7f0",
        "version": 2,
    })
}

/// `claims` with `changes` merged in (a `null` removes a claim).
pub fn with(mut claims: Value, changes: &Value) -> Value {
    if let (Some(map), Some(changes)) = (claims.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                map.remove(k);
            } else {
                map.insert(k.clone(), v.clone());
            }
        }
    }
    claims
}

pub fn rs256(claims: &Value) -> String {
    sign(
        Key::Rsa,
        &json!({"alg": "RS256", "typ": "JWT", "kid": "test-rsa"}),
        claims,
    )
}

pub fn es256(claims: &Value) -> String {
    sign(
        Key::Ec,
        &json!({"alg": "ES256", "typ": "JWT", "kid": "test-ec"}),
        claims,
    )
}
