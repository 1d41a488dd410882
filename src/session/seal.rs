//! Sealing cookie values: AES-256-GCM with a fresh random 96-bit nonce per
//! seal, keys derived from `session_secret` with HKDF-SHA256. The first
//! key seals; every key opens, so a secret can be rotated without logging
//! everyone out. The cookie name is authenticated data: a login cookie can
//! never be replayed as a session cookie, nor one chunk as another.

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
        Sealer { keys }
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
                    aad: name.as_bytes(),
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
        self.keys.iter().find_map(|k| {
            k.decrypt(
                &nonce,
                Payload {
                    msg: sealed,
                    aad: name.as_bytes(),
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
