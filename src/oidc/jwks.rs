//! JWK Set parsing (RFC 7517): turn the IdP's keys into ready-to-use public
//! keys once, so a verification never rebuilds a key (30–65 µs for RSA).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::oidc::jwt::Alg;
use crate::oidc::rsa::RsaKey;

/// At most this many keys are kept from one JWKS; IdPs publish a handful.
const MAX_KEYS: usize = 64;

pub enum PublicKey {
    Rsa(Box<RsaKey>),
    P256(envoy_oidc_bignum::p256::VerifyingKey),
    P384(envoy_oidc_bignum::p384::VerifyingKey),
    Ed25519(ed25519_compact::PublicKey),
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PublicKey::Rsa(_) => "Rsa",
            PublicKey::P256(_) => "P256",
            PublicKey::P384(_) => "P384",
            PublicKey::Ed25519(_) => "Ed25519",
        })
    }
}

#[derive(Debug)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The JWK's `alg`, when it names one: the token's must then be equal.
    pub alg: Option<Alg>,
    pub key: PublicKey,
    /// A hash of the key's members as published (`kty`, `crv`, `n`, `e`,
    /// `x`, `y`): which keys a later set still has, whatever their `kid`.
    pub material: [u8; 32],
}

/// The usable keys of a JWKS.
#[derive(Debug, Default)]
pub struct KeySet {
    pub keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

/// The members of a JWK we read. Read from the `Value` by hand (`from_json`)
/// rather than with `serde_json::from_value`: that was the module's only
/// use of serde_json's `Value` deserializer, ~15 KB of wasm.
struct RawKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    use_: Option<String>,
    /// `key_ops` (RFC 7517 §4.3): absent, or listing `verify`.
    verifies: bool,
    crv: Option<String>,
    n: Option<String>,
    e: Option<String>,
    x: Option<String>,
    y: Option<String>,
}

/// A parsed set, and how many of its keys we could not use (for the log).
#[derive(Debug)]
pub struct Parsed {
    pub set: KeySet,
    pub skipped: usize,
}

impl KeySet {
    /// Parses a JWKS document. Unusable keys (encryption keys, unknown
    /// types, broken numbers) are skipped, not fatal: one odd key must not
    /// take the others down.
    pub fn parse(body: &[u8]) -> Result<Parsed, String> {
        let raw: RawSet =
            serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
        let total = raw.keys.len();
        let keys: Vec<Jwk> = raw
            .keys
            .into_iter()
            .filter_map(RawKey::from_json)
            .filter_map(|k| k.into_jwk())
            .take(MAX_KEYS)
            .collect();
        Ok(Parsed {
            skipped: total - keys.len(),
            set: KeySet { keys },
        })
    }

    /// Whether the set holds a key made of `material` (`Jwk::material`).
    pub fn has_material(&self, material: &[u8; 32]) -> bool {
        self.keys.iter().any(|k| k.material == *material)
    }

    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// The keys a token may be verified with: the one named by `kid`, or
    /// every key when the token names none (`Jwt::verify` then tries only
    /// the first `MAX_KEYS_TRIED` that fit its algorithm).
    pub fn candidates(&self, kid: Option<&str>) -> Vec<&Jwk> {
        self.keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
            .collect()
    }
}

impl RawKey {
    /// As serde would: `None` (the key is skipped) unless it is an object
    /// with a string `kty`, and every other member we read is a string,
    /// null or absent.
    fn from_json(v: serde_json::Value) -> Option<RawKey> {
        let serde_json::Value::Object(mut obj) = v else {
            return None;
        };
        let verifies = match obj.get("key_ops") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::Array(ops)) => ops.iter().any(|op| op == "verify"),
            Some(_) => false,
        };
        let mut take = |name: &str| match obj.remove(name) {
            None | Some(serde_json::Value::Null) => Some(None),
            Some(serde_json::Value::String(s)) => Some(Some(s)),
            Some(_) => None,
        };
        Some(RawKey {
            kty: take("kty")??,
            kid: take("kid")?,
            alg: take("alg")?,
            use_: take("use")?,
            verifies,
            crv: take("crv")?,
            n: take("n")?,
            e: take("e")?,
            x: take("x")?,
            y: take("y")?,
        })
    }

    fn material(&self) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in [
            &Some(self.kty.clone()),
            &self.crv,
            &self.n,
            &self.e,
            &self.x,
            &self.y,
        ] {
            h.update(part.as_deref().unwrap_or_default());
            h.update([0]);
        }
        h.finalize().into()
    }

    fn into_jwk(self) -> Option<Jwk> {
        let material = self.material();
        // A key for encryption (`use: enc`, or `key_ops` without `verify`)
        // never verifies a signature (RFC 8725 §3.1: one key, one purpose).
        if self.use_.as_deref().is_some_and(|u| u != "sig") || !self.verifies {
            return None;
        }
        // A key whose `alg` we do not support (e.g. HS256, RSA-OAEP) is unusable.
        let alg = match self.alg.as_deref() {
            None => None,
            Some(a) => Some(Alg::from_name(a)?),
        };
        let key = match (self.kty.as_str(), self.crv.as_deref()) {
            ("RSA", _) => {
                let n = b64(self.n.as_deref()?)?;
                let e = b64(self.e.as_deref()?)?;
                // 2048..=8192 bits; Montgomery parameters precomputed here.
                PublicKey::Rsa(Box::new(RsaKey::new(&n, &e)?))
            }
            // The odd multiples of the point that verification adds,
            // computed here once (see bignum/src/ecdsa.rs).
            ("EC", Some("P-256")) => {
                let (x, y) = ec_point(&self.x?, &self.y?, 32)?;
                PublicKey::P256(envoy_oidc_bignum::p256::VerifyingKey::new(
                    x.as_slice().try_into().ok()?,
                    y.as_slice().try_into().ok()?,
                )?)
            }
            ("EC", Some("P-384")) => {
                let (x, y) = ec_point(&self.x?, &self.y?, 48)?;
                PublicKey::P384(envoy_oidc_bignum::p384::VerifyingKey::new(
                    x.as_slice().try_into().ok()?,
                    y.as_slice().try_into().ok()?,
                )?)
            }
            ("OKP", Some("Ed25519")) => PublicKey::Ed25519(
                ed25519_compact::PublicKey::from_slice(&b64(self.x.as_deref()?)?).ok()?,
            ),
            _ => return None,
        };
        let jwk = Jwk {
            kid: self.kid,
            alg,
            key,
            material,
        };
        // A JWK whose alg contradicts its key type can verify nothing.
        jwk.alg.is_none_or(|a| a.fits(&jwk.key)).then_some(jwk)
    }
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// An uncompressed SEC1 point from JWK `x` and `y` coordinates.
/// A JWK's `x` and `y`, each exactly `len` bytes (RFC 7518 §6.2.1.2).
fn ec_point(x: &str, y: &str, len: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let (x, y) = (b64(x)?, b64(y)?);
    (x.len() == len && y.len() == len).then_some((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(keys: serde_json::Value) -> Parsed {
        KeySet::parse(&serde_json::to_vec(&serde_json::json!({ "keys": keys })).unwrap()).unwrap()
    }

    #[test]
    fn skips_keys_that_are_not_objects_of_string_members() {
        let ed = |extra: serde_json::Value| {
            let mut k = serde_json::json!({"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
            k.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            k
        };
        let parsed = parse(serde_json::json!([
            ed(serde_json::json!({"kid": "ok"})),
            ed(serde_json::json!({"kid": null, "alg": null})),
            ed(serde_json::json!({"kid": 7})),
            ed(serde_json::json!({"kty": 1})),
            ed(serde_json::json!({"use": ["sig"]})),
            ed(serde_json::json!({"other": 1, "key_ops": ["verify"]})),
            "not an object",
            {"crv": "Ed25519"},
            // For encryption only (RFC 7517 §4.3), or not a list.
            ed(serde_json::json!({"key_ops": ["encrypt", "wrapKey"]})),
            ed(serde_json::json!({"key_ops": "verify"})),
        ]));
        assert_eq!(parsed.set.keys.len(), 3);
        assert_eq!(parsed.skipped, 7);
        assert_eq!(parsed.set.keys[0].kid.as_deref(), Some("ok"));
        assert!(parsed.set.keys[1].kid.is_none() && parsed.set.keys[1].alg.is_none());
    }
}
