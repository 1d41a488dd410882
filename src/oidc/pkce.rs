//! Random protocol values (`state`, `nonce`, PKCE verifier) and the PKCE
//! S256 challenge (RFC 7636).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A fresh random value: 32 bytes as base64url (43 characters, which is
/// also a valid PKCE verifier). `None` when the host has no randomness:
/// the caller must then fail rather than use a guessable value.
pub fn random_value() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// The S256 challenge for a verifier.
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Compares two secrets without an early exit that would leak how much of
/// them matched.
pub fn equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_is_base64url_sha256_as_openssl_computes_it() {
        // printf %s "$v" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d =
        assert_eq!(
            challenge("M25iVXpKU3puUjFaYWg3T1NDTDQtcW1ROUY5YXlwalNoc0hhakxifmZHag"),
            "qjrzSW9gMiUgpUvqgEPE4_-8swvyCtfOVvg55o5S_es"
        );
    }

    #[test]
    fn random_values_differ_and_compare() {
        let (a, b) = (random_value().unwrap(), random_value().unwrap());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(equal(&a, &a.clone()) && !equal(&a, &b) && !equal("a", "ab"));
    }
}
