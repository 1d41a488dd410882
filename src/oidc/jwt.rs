//! JWS compact serialization: split, decode, check the header, and verify
//! the signature with a key from the JWKS.
//!
//! The parsing is written by hand (it is three base64url parts and two JSON
//! objects) so that every header rule is ours to enforce: the algorithm must
//! be one we allow and must fit the key, `none` and HMAC never pass, and a
//! `crit` header we do not understand refuses the token (RFC 7515 §4.1.11).
//! The cryptography is `ed25519-compact`, and for RSA, P-256 and P-384 our
//! own (`oidc::rsa`, bignum/src/ecdsa.rs: see there why).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::error::TokenError;
use crate::json_object::JsonObject;
use crate::oidc::claims::Claims;
use crate::oidc::jwks::{Jwk, PublicKey};

/// Tokens larger than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// A token is verified with at most this many keys that fit its algorithm:
/// without a `kid` any key of the JWKS may have signed it, and a forged
/// kid-less token must not cost one signature check per published key
/// (up to 64). IdPs that publish many keys name them in their tokens.
pub const MAX_KEYS_TRIED: usize = 3;

/// The signature algorithms we accept. HMAC and `none` are absent on
/// purpose: an IdP's public JWKS cannot verify them safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

impl Alg {
    pub fn from_name(s: &str) -> Option<Alg> {
        Some(match s {
            "RS256" => Alg::RS256,
            "RS384" => Alg::RS384,
            "RS512" => Alg::RS512,
            "PS256" => Alg::PS256,
            "PS384" => Alg::PS384,
            "PS512" => Alg::PS512,
            "ES256" => Alg::ES256,
            "ES384" => Alg::ES384,
            "EdDSA" => Alg::EdDSA,
            _ => return None,
        })
    }

    /// Whether this algorithm can be verified with this kind of key.
    pub fn fits(self, key: &PublicKey) -> bool {
        matches!(
            (self, key),
            (
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512,
                PublicKey::Rsa(_)
            ) | (Alg::ES256, PublicKey::P256(_))
                | (Alg::ES384, PublicKey::P384(_))
                | (Alg::EdDSA, PublicKey::Ed25519(_))
        )
    }
}

/// A decoded token whose signature is not yet checked.
#[derive(Debug)]
pub struct Jwt<'a> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub claims: Claims,
    signing_input: &'a str,
    signature: Vec<u8>,
}

impl<'a> Jwt<'a> {
    pub fn parse(token: &'a str) -> Result<Jwt<'a>, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed(
                "token is not three dot-separated parts",
            ));
        };
        let header =
            decode_object(h).ok_or(TokenError::Malformed("token header is not base64url JSON"))?;
        let claims =
            decode_object(c).ok_or(TokenError::Malformed("token claims are not base64url JSON"))?;
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| TokenError::Malformed("token signature is not base64url"))?;
        if header.contains_key("crit") {
            return Err(TokenError::CriticalHeader);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(Alg::from_name)
            .ok_or(TokenError::UnsupportedAlgorithm)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(TokenError::Malformed("token kid is not a string")),
        };
        let signing_input = token
            .get(..h.len() + 1 + c.len())
            .ok_or(TokenError::Malformed(
                "token is not three dot-separated parts",
            ))?;
        Ok(Jwt {
            alg,
            kid,
            claims,
            signing_input,
            signature,
        })
    }

    /// Checks the signature against the candidate keys that fit, at most
    /// `MAX_KEYS_TRIED` of them, in the JWKS's order.
    pub fn verify<'k>(
        &self,
        candidates: impl IntoIterator<Item = &'k Jwk>,
    ) -> Result<(), TokenError> {
        let mut fitting = candidates
            .into_iter()
            .filter(|k| self.alg.fits(&k.key) && k.alg.is_none_or(|a| a == self.alg))
            .take(MAX_KEYS_TRIED)
            .peekable();
        if fitting.peek().is_none() {
            return Err(TokenError::KeyMismatch);
        }
        // Several keys can fit only when the token names no kid (or the
        // JWKS repeats one); any may sign.
        if fitting.any(|k| {
            verify_signature(
                self.alg,
                &k.key,
                self.signing_input.as_bytes(),
                &self.signature,
            )
        }) {
            Ok(())
        } else {
            Err(TokenError::BadSignature)
        }
    }
}

/// A JWS's claims, read without verification: for a token verified before
/// and kept where nobody could change it (a session's sealed ID token), or
/// only to bound how long something is cached.
pub fn unverified_claims(token: &str) -> Option<Claims> {
    decode_object(token.split('.').nth(1)?)
}

fn decode_object(part: &str) -> Option<JsonObject> {
    JsonObject::from_vec(URL_SAFE_NO_PAD.decode(part).ok()?)
}

/// Verifies one signature; false on any failure, including a malformed one.
pub fn verify_signature(alg: Alg, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    use crate::oidc::rsa::{Hash as RsaHash, verify_pkcs1v15 as pkcs1v15, verify_pss as pss};
    match (alg, key) {
        (Alg::RS256, PublicKey::Rsa(k)) => pkcs1v15(k, RsaHash::Sha256, msg, sig),
        (Alg::RS384, PublicKey::Rsa(k)) => pkcs1v15(k, RsaHash::Sha384, msg, sig),
        (Alg::RS512, PublicKey::Rsa(k)) => pkcs1v15(k, RsaHash::Sha512, msg, sig),
        (Alg::PS256, PublicKey::Rsa(k)) => pss(k, RsaHash::Sha256, msg, sig),
        (Alg::PS384, PublicKey::Rsa(k)) => pss(k, RsaHash::Sha384, msg, sig),
        (Alg::PS512, PublicKey::Rsa(k)) => pss(k, RsaHash::Sha512, msg, sig),
        (Alg::ES256, PublicKey::P256(k)) => {
            use sha2::Digest;
            k.verify_prehash(&sha2::Sha256::digest(msg).into(), sig)
        }
        (Alg::ES384, PublicKey::P384(k)) => {
            use sha2::Digest;
            k.verify_prehash(&sha2::Sha384::digest(msg).into(), sig)
        }
        (Alg::EdDSA, PublicKey::Ed25519(k)) => {
            ed25519_compact::Signature::from_slice(sig).is_ok_and(|s| k.verify(msg, &s).is_ok())
        }
        _ => false,
    }
}
