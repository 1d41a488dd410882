//! RSA public keys and signature verification (RFC 8017): RSASSA-PKCS1-v1_5
//! (§8.2.2) for RS256/384/512 and RSASSA-PSS (§8.1.2) for PS256/384/512.
//!
//! Why this is hand-written rather than the `rsa` crate: speed and size.
//! Nearly every IdP signs with RS256, and in Envoy's V8 the `rsa` crate's
//! general path costs ~290 µs per verification (heap-allocated `BoxedUint`s
//! with 64-bit limbs, a generic exponentiation); with it and its bignum the
//! module was ~90 KB larger. The modular exponentiation is `bignum/`
//! (radix 2^29, see there why); what is here is the encoding checks around
//! it, and nothing in them needs a secret, so none of this is constant-time
//! on purpose.
//!
//! PKCS#1 v1.5 uses the simplest check the RFC allows (§8.2.2 step 3,
//! "compare"): build the one encoded message a valid signature can have,
//! `0x00 01 FF..FF 00 || DigestInfo || hash`, and compare it with `s^e mod
//! n`. Nothing is parsed from the recovered message, so there is no ASN.1
//! or padding parser to get wrong (the classic PKCS#1 v1.5 forgeries all
//! abuse a lenient parser). PSS follows EMSA-PSS-VERIFY (§9.1.2) step by
//! step, with MGF1 over the same hash and a salt as long as the hash, as
//! JWA requires (RFC 7518 §3.5). `vectors/tests/wycheproof_rsa.rs` runs the
//! Wycheproof vectors of both through this file.
//!
//! Keys: 2048 to 8192 bits, an odd public exponent from 3 to 2^33 − 1 (the
//! bounds the `rsa` crate applied before).

use std::sync::OnceLock;

use sha2::{Digest, Sha256, Sha384, Sha512};

use envoy_oidc_bignum::{Expected, PublicKey, strip_zeros};

/// Smallest and largest accepted modulus, in bits.
const MIN_BITS: usize = 2048;
const MAX_BITS: usize = 8192;
/// Largest accepted public exponent.
const MAX_E: u64 = (1 << 33) - 1;

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

/// The hash of an RSA signature (and of PSS's MGF1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn len(self) -> usize {
        match self {
            Hash::Sha256 => 32,
            Hash::Sha384 => 48,
            Hash::Sha512 => 64,
        }
    }

    /// Index of its slot in `RsaKey::expected`.
    fn slot(self) -> usize {
        match self {
            Hash::Sha256 => 0,
            Hash::Sha384 => 1,
            Hash::Sha512 => 2,
        }
    }

    fn digest_info_prefix(self) -> &'static [u8] {
        match self {
            Hash::Sha256 => SHA256_PREFIX,
            Hash::Sha384 => SHA384_PREFIX,
            Hash::Sha512 => SHA512_PREFIX,
        }
    }

    /// The hash of the concatenation of `parts`.
    fn digest(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Hash::Sha256 => run::<Sha256>(parts),
            Hash::Sha384 => run::<Sha384>(parts),
            Hash::Sha512 => run::<Sha512>(parts),
        }
    }
}

/// An RSA public key, ready to verify: the modulus and exponent with their
/// Montgomery constants (computed once, at JWKS parse), and per hash the
/// PKCS#1 v1.5 message's fixed part as `PublicKey::matches` compares it
/// (computed at the key's first verification with that hash: about a
/// verification's worth, which every later one then saves ~6 % of).
pub struct RsaKey {
    key: PublicKey,
    expected: [OnceLock<Option<Expected>>; 3],
}

impl RsaKey {
    /// A key from its big-endian modulus and exponent (a JWK's `n` and
    /// `e`, decoded). `None` outside 2048..=8192 bits, for an even modulus,
    /// and for an exponent that is even or outside 3..=2^33 − 1.
    pub fn new(n: &[u8], e: &[u8]) -> Option<RsaKey> {
        let (n, e) = (strip_zeros(n), strip_zeros(e));
        if e.len() > 8 {
            return None;
        }
        let e = e.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        if !(3..=MAX_E).contains(&e) || e % 2 == 0 {
            return None;
        }
        // Bounded before any arithmetic: a huge modulus must cost nothing.
        if !(MIN_BITS.div_ceil(8)..=MAX_BITS.div_ceil(8)).contains(&n.len()) {
            return None;
        }
        let key = PublicKey::new(n, e)?;
        if !(MIN_BITS..=MAX_BITS).contains(&key.bits()) {
            return None;
        }
        Some(RsaKey {
            key,
            expected: Default::default(),
        })
    }

    /// Modulus length in bits.
    pub fn bits(&self) -> usize {
        self.key.bits()
    }

    /// §8.2.2/§8.1.2 step 1: the signature is exactly k octets.
    fn sized<'s>(&self, sig: &'s [u8]) -> Option<&'s [u8]> {
        (sig.len() == self.key.byte_len()).then_some(sig)
    }

    /// RSAVP1 (§5.2.2) after step 1: the signature is exactly k octets and
    /// below the modulus; `s^e mod n` as k octets.
    fn open(&self, sig: &[u8]) -> Option<Vec<u8>> {
        self.key.rsavp1(self.sized(sig)?)
    }

    /// The PKCS#1 v1.5 message's fixed part for `hash`, as
    /// `PublicKey::matches` compares it: built at the first verification
    /// with that hash, then kept. `None` when the modulus is too short for
    /// the message.
    fn expected(&self, hash: Hash) -> Option<&Expected> {
        self.expected
            .get(hash.slot())?
            .get_or_init(|| {
                let fixed = encoded_message_fixed(
                    self.key.byte_len(),
                    hash.digest_info_prefix(),
                    hash.len(),
                )?;
                self.key.expect(&fixed, hash.len())
            })
            .as_ref()
    }
}

/// Verifies an RSASSA-PKCS1-v1_5 signature of `msg`; false on any failure.
/// s^e mod n is compared with the encoded message in `bignum`'s
/// Montgomery form (`PublicKey::matches`), the message's fixed part
/// brought there once per key and hash.
pub fn verify_pkcs1v15(key: &RsaKey, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
    let (Some(sig), Some(expected)) = (key.sized(sig), key.expected(hash)) else {
        return false;
    };
    key.key.matches(sig, expected, &hash.digest(&[msg]))
}

/// EMSA-PKCS1-v1_5 (RFC 8017 §9.2) for a k-octet modulus, all but the
/// digest of `digest_len` octets that ends it:
/// `0x00 0x01 || PS (0xFF…, at least 8) || 0x00 || DigestInfo`.
fn encoded_message_fixed(k: usize, prefix: &[u8], digest_len: usize) -> Option<Vec<u8>> {
    let t_len = prefix.len() + digest_len;
    // Step 3: "intended encoded message length too short".
    let ps_len = k.checked_sub(t_len + 3).filter(|&l| l >= 8)?;
    let mut em = Vec::with_capacity(k);
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(2 + ps_len, 0xff);
    em.push(0x00);
    em.extend_from_slice(prefix);
    Some(em)
}

/// Verifies an RSASSA-PSS signature of `msg` (MGF1 with the same hash, salt
/// length = hash length); false on any failure.
pub fn verify_pss(key: &RsaKey, hash: Hash, msg: &[u8], sig: &[u8]) -> bool {
    key.open(sig)
        .is_some_and(|m| pss_consistent(&m, key.bits() - 1, hash, &hash.digest(&[msg])))
}

/// EMSA-PSS-VERIFY (§9.1.2) with sLen = hLen; `m` is the k-octet
/// representative, of which the encoded message is the last emLen octets.
fn pss_consistent(m: &[u8], em_bits: usize, hash: Hash, m_hash: &[u8]) -> bool {
    let (h_len, s_len) = (hash.len(), hash.len());
    let em_len = em_bits.div_ceil(8);
    // §8.1.2 step 2c, I2OSP(m, emLen): the octets above emLen are zero.
    let Some((above, em)) = m.split_at_checked(m.len().saturating_sub(em_len)) else {
        return false;
    };
    if above.iter().any(|&b| b != 0) || em.len() != em_len {
        return false;
    }
    // Step 3.
    if em_len < h_len + s_len + 2 {
        return false;
    }
    // Steps 4 and 5: EM = maskedDB || H || 0xbc.
    let Some((&0xbc, rest)) = em.split_last() else {
        return false;
    };
    let Some((masked_db, h)) = rest.split_at_checked(em_len - h_len - 1) else {
        return false;
    };
    // Step 6: the leftmost 8·emLen − emBits bits of maskedDB are zero.
    let top = 0xffu8 >> (8 * em_len - em_bits);
    if masked_db.first().is_none_or(|&b| b & !top != 0) {
        return false;
    }
    // Steps 7 to 9: DB = maskedDB xor MGF1(H), its leftmost bits cleared.
    let mut db = mgf1(hash, h, masked_db.len());
    db.iter_mut().zip(masked_db).for_each(|(d, m)| *d ^= m);
    if let Some(first) = db.first_mut() {
        *first &= top;
    }
    // Step 10: DB = PS (zeros) || 0x01 || salt.
    let Some((ps, rest)) = db.split_at_checked(em_len - h_len - s_len - 2) else {
        return false;
    };
    let Some((&0x01, salt)) = rest.split_first() else {
        return false;
    };
    if ps.iter().any(|&b| b != 0) {
        return false;
    }
    // Steps 11 to 14: H = Hash(0x00 × 8 || mHash || salt).
    hash.digest(&[&[0; 8], m_hash, salt]) == h
}

/// MGF1 (RFC 8017 §B.2.1): `len` octets of Hash(seed || counter) blocks.
fn mgf1(hash: Hash, seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + hash.len());
    let mut counter = 0u32;
    while out.len() < len {
        out.extend_from_slice(&hash.digest(&[seed, &counter.to_be_bytes()]));
        counter += 1;
    }
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    // The tests that sign with the fixture keys are in tests/rsa.rs; this
    // one needs the private encoder.
    use super::*;

    #[test]
    fn encoded_message_has_the_rfc_layout() {
        let mut em = encoded_message_fixed(256, SHA256_PREFIX, 32).unwrap();
        em.extend_from_slice(&[0xab; 32]);
        assert_eq!(em.len(), 256);
        assert_eq!(&em[..2], &[0x00, 0x01]);
        assert!(em[2..256 - 52].iter().all(|&b| b == 0xff));
        assert_eq!(em[256 - 52], 0x00);
        assert_eq!(&em[256 - 51..256 - 32], SHA256_PREFIX);
        assert_eq!(&em[256 - 32..], &[0xab; 32]);
        assert!(encoded_message_fixed(61, SHA512_PREFIX, 64).is_none());
    }
}
