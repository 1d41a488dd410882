//! Sealing cookie values: AES-256-GCM with a fresh random 96-bit nonce per
//! seal, keys derived from `session_secret` with HKDF-SHA256. The first
//! key seals; every key opens, so a secret can be rotated without logging
//! everyone out. The cookie name is authenticated data: a login cookie can
//! never be replayed as a session cookie, nor one chunk as another. So is
//! the filter's issuer and client (`bound`): two configurations that share
//! a `session_secret` (and the default cookie names) do not open each
//! other's cookies; a session whose access token is not ours to verify
//! would otherwise carry its identity to another client's routes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

/// Format byte in front of every sealed value, so the format can change.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

pub struct Sealer {
    keys: Vec<Aes256Gcm>,
    /// What every sealed value is bound to, before the cookie name.
    context: Vec<u8>,
}

impl Sealer {
    /// Keys from secrets (each ≥ 32 bytes, checked by the configuration).
    pub fn new<S: AsRef<[u8]>>(secrets: &[S]) -> Sealer {
        let keys = secrets
            .iter()
            .filter_map(|secret| {
                let mut key = [0u8; 32];
                Hkdf::<Sha256>::new(Some(b"envoy-oidc session"), secret.as_ref())
                    .expand(b"aes-256-gcm cookie key", &mut key)
                    .ok()?;
                Aes256Gcm::new_from_slice(&key).ok()
            })
            .collect();
        Sealer {
            keys,
            context: Vec::new(),
        }
    }

    /// Keys as `new` makes them, and sealed values bound to `issuer` and
    /// `client_id`: what the filter seals with (`Config::sealer`).
    pub fn bound<S: AsRef<[u8]>>(secrets: &[S], issuer: &str, client_id: &str) -> Sealer {
        let mut context = Vec::with_capacity(issuer.len() + client_id.len() + 2);
        for part in [issuer, client_id] {
            context.extend_from_slice(part.as_bytes());
            context.push(0);
        }
        Sealer {
            context,
            ..Sealer::new(secrets)
        }
    }

    /// The same binding under other keys (the fallback session key agreed
    /// with the other workers).
    pub fn rekeyed<S: AsRef<[u8]>>(&self, secrets: &[S]) -> Sealer {
        Sealer {
            context: self.context.clone(),
            ..Sealer::new(secrets)
        }
    }

    /// The authenticated data of cookie `name`.
    fn aad(&self, name: &str) -> Vec<u8> {
        [self.context.as_slice(), name.as_bytes()].concat()
    }

    /// Seals `plain` for cookie `name`. `None` only if no key or no
    /// randomness is available: the caller must then fail closed.
    pub fn seal(&self, name: &str, plain: &[u8]) -> Option<String> {
        let key = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).ok()?;
        let sealed = key
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: &self.aad(name),
                },
            )
            .ok()?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens a value sealed for cookie `name` with any of the keys.
    pub fn open(&self, name: &str, value: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let (&version, rest) = bytes.split_first()?;
        if version != VERSION {
            return None;
        }
        let (nonce, sealed) = rest.split_first_chunk::<NONCE_LEN>()?;
        let nonce = Nonce::from(*nonce);
        let aad = self.aad(name);
        self.keys.iter().find_map(|k| {
            k.decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "a-secret-that-is-32-bytes-long!!";
    const B: &str = "another-secret-of-at-least-32-by";

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let s = Sealer::new(&[A]);
        let v = s.seal("session", b"hello").unwrap();
        assert_eq!(s.open("session", &v).as_deref(), Some(&b"hello"[..]));
        assert_ne!(
            s.seal("session", b"hello").unwrap(),
            v,
            "fresh nonce each time"
        );
        assert_eq!(s.open("login", &v), None, "bound to the cookie name");
        let bound = Sealer::bound(&[A], "https://idp", "web");
        let w = bound.seal("session", b"hello").unwrap();
        assert_eq!(bound.open("session", &w).as_deref(), Some(&b"hello"[..]));
        for other in [
            Sealer::new(&[A]),
            Sealer::bound(&[A], "https://idp", "api"),
            Sealer::bound(&[A], "https://other", "web"),
            // The parts are delimited: no shift from one into the other.
            Sealer::bound(&[A], "https://idpw", "eb"),
        ] {
            assert_eq!(
                other.open("session", &w),
                None,
                "bound to issuer and client"
            );
        }
        assert_eq!(
            bound.rekeyed(&[B, A]).open("session", &w).as_deref(),
            Some(&b"hello"[..])
        );
        let mut tampered = v.clone().into_bytes();
        let i = tampered.len() / 2;
        tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            s.open("session", std::str::from_utf8(&tampered).unwrap()),
            None
        );
        assert_eq!(s.open("session", &v[..v.len() - 4]), None, "truncated");
        assert_eq!(s.open("session", ""), None);
        assert_eq!(s.open("session", "!!"), None);
        assert_eq!(Sealer::new(&[B]).open("session", &v), None, "foreign key");
    }

    #[test]
    fn rotation_first_key_seals_all_keys_open() {
        let old = Sealer::new(&[A]).seal("session", b"x").unwrap();
        let rotated = Sealer::new(&[B, A]);
        assert_eq!(rotated.open("session", &old).as_deref(), Some(&b"x"[..]));
        let new = rotated.seal("session", b"y").unwrap();
        assert_eq!(Sealer::new(&[A]).open("session", &new), None);
    }
}
