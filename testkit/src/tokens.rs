//! The one token kit of the tests: the fixture keys (`tests/fixtures/`), the
//! JWKs that publish them, and tokens signed at test time. The harness tests
//! (`tests/common/tokens.rs`), the engine tests and the fuzz fixtures
//! (`tests/fuzz_corpus.rs`) all sign here.

use std::sync::OnceLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

pub const ISSUER: &str = "https://idp.example.com/pool";

/// A fixture key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `tests/fixtures/rsa-test-key.pem`, published as `test-rsa`.
    Rsa,
    /// `tests/fixtures/ec-test-key.pem` (P-256), published as `test-ec`.
    Ec,
    /// `tests/fixtures/rsa-other-key.pem`, never published by the test IdPs.
    OtherRsa,
    /// Ed25519 from the seed `[7; 32]`.
    Ed,
}

struct Keys {
    rsa: rsa::PrivateKey,
    other: rsa::PrivateKey,
    ec: p256::ecdsa::SigningKey,
    ed: ed25519_compact::KeyPair,
}

fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    STANDARD.decode(body).expect("fixture PEM")
}

fn rsa_key(pem: &str) -> rsa::PrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    rsa::PrivateKey::from_pkcs8_der(&pem_der(pem)).expect("fixture RSA key")
}

/// The fixture keys, parsed once.
fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        use p256::pkcs8::DecodePrivateKey;
        Keys {
            rsa: rsa_key(include_str!("../../tests/fixtures/rsa-test-key.pem")),
            other: rsa_key(include_str!("../../tests/fixtures/rsa-other-key.pem")),
            ec: p256::ecdsa::SigningKey::from_pkcs8_der(&pem_der(include_str!(
                "../../tests/fixtures/ec-test-key.pem"
            )))
            .expect("fixture EC key"),
            ed: ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32])),
        }
    })
}

pub fn rsa_test_key() -> rsa::PrivateKey {
    keys().rsa.clone()
}

pub fn rsa_other_key() -> rsa::PrivateKey {
    keys().other.clone()
}

pub fn ec_test_key() -> p256::ecdsa::SigningKey {
    keys().ec.clone()
}

pub fn ed_test_key() -> ed25519_compact::KeyPair {
    keys().ed.clone()
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

/// The public JWK of `key` under `kid`: RSA keys with `alg` RS256, the EC
/// key with ES256, the Ed25519 key without `alg`.
pub fn jwk(key: Key, kid: &str) -> Value {
    match key {
        Key::Rsa => rsa_jwk(&keys().rsa, kid),
        Key::OtherRsa => rsa_jwk(&keys().other, kid),
        Key::Ec => {
            // Uncompressed SEC1: 0x04 || x || y.
            let point = keys().ec.verifying_key().to_sec1_bytes();
            json!({"kty": "EC", "kid": kid, "use": "sig", "alg": "ES256", "crv": "P-256",
                   "x": b64(&point[1..33]), "y": b64(&point[33..65])})
        }
        Key::Ed => json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "use": "sig",
                          "x": b64(keys().ed.pk.as_ref())}),
    }
}

/// The private JWK of an RSA or EC fixture key (a `client_jwk`): the
/// public members plus `d` (and RSA's primes).
pub fn private_jwk(key: Key, kid: &str) -> Value {
    use rsa::traits::PrivateKeyParts;
    let mut jwk = jwk(key, kid);
    let rsa_key = match key {
        Key::Rsa => &keys().rsa,
        Key::OtherRsa => &keys().other,
        Key::Ec => {
            jwk["d"] = json!(b64(&keys().ec.to_bytes()));
            return jwk;
        }
        Key::Ed => panic!("Ed25519 keys do not sign client assertions here"),
    };
    let primes = rsa_key.primes();
    jwk["d"] = json!(b64(&rsa_key.d().to_be_bytes_trimmed_vartime()));
    jwk["p"] = json!(b64(&primes[0].to_be_bytes_trimmed_vartime()));
    jwk["q"] = json!(b64(&primes[1].to_be_bytes_trimmed_vartime()));
    jwk
}

/// The JWKS the test IdP publishes: RSA `test-rsa` (no alg, so PS256 works
/// too), P-256 `test-ec`, Ed25519 `test-ed`, and an encryption key that
/// must be skipped.
pub fn jwks() -> Vec<u8> {
    let mut rsa = jwk(Key::Rsa, "test-rsa");
    rsa.as_object_mut().unwrap().remove("alg");
    let ec = jwk(Key::Ec, "test-ec");
    let ed = jwk(Key::Ed, "test-ed");
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

/// Signs `header.claims` with `key`, whatever algorithm the header claims
/// (tokens that lie about it are tests too): an RSA key signs PKCS#1 v1.5
/// with SHA-384 or SHA-512 when the header says RS384 or RS512, else with
/// SHA-256; the EC key signs ES256, the Ed25519 key EdDSA.
pub fn sign_with(key: Key, header: &Value, claims: &Value) -> String {
    use rsa::signature::{SignatureEncoding, Signer};
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let rsa = |key: &rsa::PrivateKey| match header["alg"].as_str() {
        Some("RS384") => rsa::pkcs1v15::SigningKey::<sha2::Sha384>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
        Some("RS512") => rsa::pkcs1v15::SigningKey::<sha2::Sha512>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
        _ => rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
    };
    let sig = match key {
        Key::Rsa => rsa(&keys().rsa),
        Key::OtherRsa => rsa(&keys().other),
        Key::Ec => {
            let s: p256::ecdsa::Signature = keys().ec.sign(input.as_bytes());
            s.to_bytes().to_vec()
        }
        Key::Ed => keys().ed.sk.sign(input.as_bytes(), None).to_vec(),
    };
    format!("{input}.{}", b64(&sig))
}

/// Signs `claims` under `header` with the fixture key its `alg` (and
/// `kid`) name: RS256 with `test-rsa`, or with the unpublished key when the
/// kid is `other`; RS512 with `test-rsa`; ES256; EdDSA. Any other alg gets
/// a junk signature: it must be refused before use.
pub fn sign(header: &Value, claims: &Value) -> String {
    let key = match header["alg"].as_str().unwrap_or_default() {
        "RS256" if header["kid"] == "other" => Key::OtherRsa,
        "RS256" | "RS512" => Key::Rsa,
        "ES256" => Key::Ec,
        "EdDSA" => Key::Ed,
        _ => {
            let input = format!(
                "{}.{}",
                b64(&serde_json::to_vec(header).unwrap()),
                b64(&serde_json::to_vec(claims).unwrap())
            );
            return format!("{input}.{}", b64(&[0; 32]));
        }
    };
    sign_with(key, header, claims)
}

pub fn rs256(claims: &Value) -> String {
    sign(
        &json!({"alg": "RS256", "kid": "test-rsa", "typ": "JWT"}),
        claims,
    )
}

pub fn es256(claims: &Value) -> String {
    sign(
        &json!({"alg": "ES256", "kid": "test-ec", "typ": "JWT"}),
        claims,
    )
}
