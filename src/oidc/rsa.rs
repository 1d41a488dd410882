//! RSA public keys and RSASSA-PKCS1-v1_5 verification (RFC 8017 §8.2.2)
//! for RS256, RS384 and RS512.
//!
//! Why a hand-written part exists: nearly every IdP signs with RS256 and a
//! 2048-bit key with e = 65537, and in Envoy's V8 the `rsa` crate's general
//! path costs ~200 µs per verification (heap-allocated `BoxedUint`s, a
//! generic exponentiation). For that one key shape we keep the modulus in
//! a fixed-size `crypto_bigint::U2048` with its Montgomery parameters
//! computed once per key (at JWKS parse), and raise the signature to
//! 65537 = 2^16 + 1 as 16 squarings and one multiplication: ~87 µs in V8.
//! The arithmetic is `crypto-bigint`'s (the same crate `rsa` runs on); what
//! is ours is only the encoding check around it, and it is the simplest
//! one the RFC allows (§8.2.2 step 3, "compare"): build the one encoded
//! message a valid signature can have, `0x00 01 FF..FF 00 || DigestInfo ||
//! hash`, and compare it with `s^e mod n` in constant time. Nothing is
//! parsed from the recovered message, so there is no ASN.1 or padding
//! parser to get wrong (the classic PKCS#1 v1.5 forgeries all abuse a
//! lenient parser). Verification only: there is no private key here.
//! `tests/wycheproof_rsa.rs` runs the Wycheproof vectors through this file.
//!
//! Every other key (other sizes, other exponents) and PSS go to the `rsa`
//! crate, which is also what builds and bounds the key (2048..=8192 bits).

use ::rsa::{BoxedUint, Pkcs1v15Sign};
use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, U2048};
use sha2::digest::const_oid::AssociatedOid;
use sha2::{Digest, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

/// Modulus length of the fast path, in bytes (2048 bits).
const FAST_LEN: usize = 256;
const LIMBS: usize = U2048::LIMBS;

/// DER of `DigestInfo ::= SEQUENCE { AlgorithmIdentifier (with NULL
/// parameters), OCTET STRING }` up to the digest itself (RFC 8017 §9.2
/// note 1).
const SHA256_PREFIX: &[u8] = &[
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const SHA384_PREFIX: &[u8] = &[
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const SHA512_PREFIX: &[u8] = &[
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

/// The hash of an RSASSA-PKCS1-v1_5 signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// An RSA public key, ready to verify: the `rsa` crate's key, plus the
/// precomputed Montgomery form of a 2048-bit modulus when e = 65537.
pub struct RsaKey {
    key: ::rsa::PublicKey,
    fast: Option<Box<FastKey>>,
}

struct FastKey {
    modulus: U2048,
    params: FixedMontyParams<LIMBS>,
}

impl RsaKey {
    /// A key from its big-endian modulus and exponent (a JWK's `n` and
    /// `e`, decoded). `None` for keys the `rsa` crate refuses, and for
    /// moduli under 2048 bits.
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaKey> {
        let (n, e) = (strip_zeros(n), strip_zeros(e));
        let key = ::rsa::PublicKey::new_with_size_limits(
            BoxedUint::from_be_slice_vartime(n),
            BoxedUint::from_be_slice_vartime(e),
            2048..=8192,
        )
        .ok()?;
        let fast = (n.len() == FAST_LEN && e == [0x01, 0x00, 0x01])
            .then(|| {
                let modulus = U2048::from_be_slice(n);
                // The modulus is public: variable time is fine here.
                let odd = Odd::new(modulus).into_option()?;
                Some(Box::new(FastKey {
                    modulus,
                    params: FixedMontyParams::new_vartime(odd),
                }))
            })
            .flatten();
        Some(RsaKey { key, fast })
    }

    /// The `rsa` crate's key (for PSS).
    pub fn rsa(&self) -> &::rsa::PublicKey {
        &self.key
    }

    /// Whether PKCS#1 v1.5 verification with this key takes the fast path.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }
}

/// Verifies an RSASSA-PKCS1-v1_5 signature of `msg`; false on any failure.
pub fn verify_pkcs1v15(key: &RsaKey, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
    match hash {
        Hash::Sha256 => verify_with::<Sha256>(key, SHA256_PREFIX, msg, sig),
        Hash::Sha384 => verify_with::<Sha384>(key, SHA384_PREFIX, msg, sig),
        Hash::Sha512 => verify_with::<Sha512>(key, SHA512_PREFIX, msg, sig),
    }
}

fn verify_with<D: Digest + AssociatedOid>(
    key: &RsaKey,
    prefix: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> bool {
    let digest = D::digest(msg);
    match &key.fast {
        Some(fast) => fast.verify(&encoded_message(prefix, &digest), sig),
        None => key
            .key
            .verify(Pkcs1v15Sign::new::<D>(), &digest, sig)
            .is_ok(),
    }
}

impl FastKey {
    /// RFC 8017 §8.2.2 with the modulus length k = 256: `expected` is the
    /// EMSA-PKCS1-v1_5 encoding of the message's digest (step 3).
    fn verify(&self, expected: &[u8], sig: &[u8]) -> bool {
        // Step 1: the signature is exactly k octets.
        if sig.len() != FAST_LEN {
            return false;
        }
        let s = U2048::from_be_slice(sig);
        // RSAVP1 step 1: the representative is below the modulus.
        if s >= self.modulus {
            return false;
        }
        // RSAVP1 step 2: m = s^65537 mod n = (s^(2^16)) * s.
        let s = FixedMontyForm::new(&s, &self.params);
        let m = s.square_repeat_vartime(16).mul(&s).retrieve();
        // Step 4: compare the whole encoded message, in constant time.
        m.to_be_bytes().as_slice().ct_eq(expected).into()
    }
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2) for k = 256:
/// `0x00 0x01 || PS (0xFF…, at least 8) || 0x00 || DigestInfo || digest`.
fn encoded_message(prefix: &[u8], digest: &[u8]) -> Vec<u8> {
    let t_len = prefix.len() + digest.len();
    let mut em = Vec::with_capacity(FAST_LEN);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(FAST_LEN - t_len - 1, 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    em.extend_from_slice(digest);
    em
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rsa::signature::{SignatureEncoding, Signer};
    use ::rsa::traits::PublicKeyParts;

    fn parts(key: &::rsa::PrivateKey) -> (Vec<u8>, Vec<u8>) {
        let public = key.to_public_key();
        (
            public.n().to_be_bytes_trimmed_vartime().to_vec(),
            public.e().to_be_bytes_trimmed_vartime().to_vec(),
        )
    }

    fn sign<D: Digest + AssociatedOid>(key: &::rsa::PrivateKey, msg: &[u8]) -> Vec<u8> {
        ::rsa::pkcs1v15::SigningKey::<D>::new(key.clone())
            .sign(msg)
            .to_vec()
    }

    #[test]
    fn encoded_message_has_the_rfc_layout() {
        let em = encoded_message(SHA256_PREFIX, &[0xab; 32]);
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        assert!(em[2..256 - 52].iter().all(|&b| b == 0xff));
        assert_eq!(em[256 - 52], 0x00);
        assert_eq!(&em[256 - 51..256 - 32], SHA256_PREFIX);
        assert_eq!(&em[256 - 32..], &[0xab; 32]);
    }

    #[test]
    fn fast_path_agrees_with_the_rsa_crate_for_every_hash() {
        let private = crate::testkit::rsa_test_key();
        let (n, e) = parts(&private);
        let key = RsaKey::new(&n, &e).unwrap();
        assert!(key.is_fast(), "2048-bit, e = 65537");
        let msg = b"header.claims";
        for (hash, sig) in [
            (Hash::Sha256, sign::<Sha256>(&private, msg)),
            (Hash::Sha384, sign::<Sha384>(&private, msg)),
            (Hash::Sha512, sign::<Sha512>(&private, msg)),
        ] {
            assert!(verify_pkcs1v15(&key, hash, msg, &sig), "{hash:?}");
            assert!(!verify_pkcs1v15(&key, hash, b"header.claimz", &sig));
            let other = if hash == Hash::Sha256 {
                Hash::Sha512
            } else {
                Hash::Sha256
            };
            assert!(!verify_pkcs1v15(&key, other, msg, &sig), "hash mismatch");
            let mut flipped = sig.clone();
            flipped[100] ^= 1;
            assert!(!verify_pkcs1v15(&key, hash, msg, &flipped));
            assert!(!verify_pkcs1v15(&key, hash, msg, &sig[1..]), "short");
            let mut long = vec![0];
            long.extend_from_slice(&sig);
            assert!(!verify_pkcs1v15(&key, hash, msg, &long), "long");
        }
    }

    #[test]
    fn refuses_signatures_not_below_the_modulus() {
        let private = crate::testkit::rsa_test_key();
        let (n, e) = parts(&private);
        let key = RsaKey::new(&n, &e).unwrap();
        let sig = sign::<Sha256>(&private, b"m");
        // s + n encodes the same residue, but is not a valid representative.
        let s = U2048::from_be_slice(&sig);
        let (sum, carry) = s.carrying_add(&U2048::from_be_slice(&n), crypto_bigint::Limb::ZERO);
        if carry == crypto_bigint::Limb::ZERO {
            assert!(!verify_pkcs1v15(
                &key,
                Hash::Sha256,
                b"m",
                sum.to_be_bytes().as_slice()
            ));
        }
        assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &n));
        assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &[0xff; 256]));
        assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &[0; 256]));
    }

    #[test]
    fn leading_zeros_of_n_and_e_are_ignored() {
        let (n, e) = parts(&crate::testkit::rsa_test_key());
        let key = RsaKey::new(&[&[0, 0][..], &n].concat(), &[&[0][..], &e].concat()).unwrap();
        assert!(key.is_fast());
    }

    #[test]
    fn other_key_shapes_use_the_rsa_crate() {
        let (n, _) = parts(&crate::testkit::rsa_test_key());
        let key = RsaKey::new(&n, &[3]).unwrap();
        assert!(!key.is_fast(), "e = 3");
        assert!(
            RsaKey::new(&n[..128], &[1, 0, 1]).is_none(),
            "1024-bit refused"
        );
        assert!(RsaKey::new(&[], &[1, 0, 1]).is_none());
    }
}
