//! The client's private key (`client_jwk`), as a signer of assertions.
//!
//! Signing touches a private key, so it is never our verify-only
//! arithmetic: P-256 by the RustCrypto `p256` crate (RFC 6979 nonces), RSA
//! by the `rsa` crate (constant-time `crypto-bigint`, blinded with
//! randomness from the host).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rsa::traits::PublicKeyParts;
use serde_json::{Map, Value};

/// The smallest RSA modulus accepted for signing.
const MIN_RSA_BITS: u32 = 2048;

/// A private key that signs client assertions. Its `Debug` never shows
/// key material.
pub enum Signer {
    Es256(p256::ecdsa::SigningKey),
    Rsa(rsa::PrivateKey),
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signer::Es256(_) => f.write_str("Signer(EC P-256, <redacted>)"),
            Signer::Rsa(k) => write!(f, "Signer(RSA {} bits, <redacted>)", k.n().bit_width()),
        }
    }
}

/// A parsed `client_jwk`: its signer, `kid` and `alg` (if it names one).
#[derive(Debug)]
pub struct ClientKey {
    pub signer: Signer,
    pub kid: Option<String>,
    pub alg: Option<String>,
}

/// Parses a private JWK (RFC 7517/7518). The error says what is wrong with
/// the key, never what is in it.
pub fn parse(jwk: &Value) -> Result<ClientKey, String> {
    let Value::Object(jwk) = jwk else {
        return Err("must be a JWK (a JSON object)".into());
    };
    let text = |name: &str| jwk.get(name).and_then(Value::as_str).map(str::to_string);
    let signer = match text("kty").as_deref() {
        Some("EC") => ec(jwk)?,
        Some("RSA") => rsa_key(jwk)?,
        Some(other) => {
            return Err(format!(
                "key type `{other}` cannot sign here (EC P-256 or RSA)"
            ));
        }
        None => return Err("has no `kty`".into()),
    };
    Ok(ClientKey {
        signer,
        kid: text("kid"),
        alg: text("alg"),
    })
}

/// A base64url member as bytes; `what` names it in the error.
fn member(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let value = jwk.get(name).and_then(Value::as_str).ok_or_else(|| {
        if name == "d" {
            "has no private part (`d`): a public key cannot sign".to_string()
        } else {
            format!("has no `{name}`")
        }
    })?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| format!("`{name}` is not base64url"))
}

fn ec(jwk: &Map<String, Value>) -> Result<Signer, String> {
    match jwk.get("crv").and_then(Value::as_str) {
        Some("P-256") => {}
        Some(other) => return Err(format!("curve `{other}` is not supported (P-256)")),
        None => return Err("has no `crv`".into()),
    }
    let d = member(jwk, "d")?;
    let key = p256::ecdsa::SigningKey::from_slice(&d)
        .map_err(|_| "`d` is not a P-256 private key".to_string())?;
    // The public part must be this key's: a mismatch is a pasted mix-up
    // that the IdP would refuse at every call.
    let point = key.verifying_key().to_sec1_point(false);
    let (x, y) = (member(jwk, "x")?, member(jwk, "y")?);
    if point.x().map(|v| v.as_slice()) != Some(&x[..])
        || point.y().map(|v| v.as_slice()) != Some(&y[..])
    {
        return Err("`x`/`y` are not the public key of `d`".into());
    }
    Ok(Signer::Es256(key))
}

fn rsa_key(jwk: &Map<String, Value>) -> Result<Signer, String> {
    let uint = |name: &str| member(jwk, name).map(|b| rsa::BoxedUint::from_be_slice_vartime(&b));
    let (n, e, d) = (uint("n")?, uint("e")?, uint("d")?);
    // The primes make the key checkable (and signing fast, by CRT).
    let primes = vec![uint("p")?, uint("q")?];
    let key = rsa::PrivateKey::from_components(n, e, d, primes)
        .map_err(|e| format!("is not a consistent RSA private key ({e})"))?;
    let bits = key.n().bit_width();
    if bits < MIN_RSA_BITS {
        return Err(format!("RSA key of {bits} bits: at least {MIN_RSA_BITS}"));
    }
    Ok(Signer::Rsa(key))
}
