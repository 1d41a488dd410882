//! `envoy_oidc::oidc::rsa` against the `rsa` crate with the fixture key
//! (`tests/fixtures/rsa-test-key.pem`): what the crate signs verifies,
//! every tampering is refused, and keys outside the bounds are refused.
//! `vectors/tests/wycheproof_rsa.rs` runs the Wycheproof vectors; the encoder's
//! layout is checked in src/oidc/rsa.rs.

use envoy_oidc::oidc::rsa::{Hash, RsaKey, verify_pkcs1v15, verify_pss};
use envoy_oidc_testkit::tokens::rsa_test_key;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use sha2::digest::const_oid::AssociatedOid;
use sha2::{Digest, Sha256, Sha384, Sha512};

fn parts(key: &rsa::PrivateKey) -> (Vec<u8>, Vec<u8>) {
    let public = key.to_public_key();
    (
        public.n().to_be_bytes_trimmed_vartime().to_vec(),
        public.e().to_be_bytes_trimmed_vartime().to_vec(),
    )
}

fn sign<D: Digest + AssociatedOid>(key: &rsa::PrivateKey, msg: &[u8]) -> Vec<u8> {
    rsa::pkcs1v15::SigningKey::<D>::new(key.clone())
        .sign(msg)
        .to_vec()
}

fn sign_pss<D: Digest + sha2::digest::FixedOutputReset>(
    key: &rsa::PrivateKey,
    msg: &[u8],
) -> Vec<u8> {
    rsa::pss::SigningKey::<D>::new(key.clone())
        .sign_with_rng(&mut rand_core::UnwrapErr(getrandom::SysRng), msg)
        .to_vec()
}

fn other(hash: Hash) -> Hash {
    if hash == Hash::Sha256 {
        Hash::Sha512
    } else {
        Hash::Sha256
    }
}

fn refuses_tampering(
    verify: fn(&RsaKey, Hash, &[u8], &[u8]) -> bool,
    key: &RsaKey,
    hash: Hash,
    msg: &[u8],
    sig: &[u8],
) {
    assert!(verify(key, hash, msg, sig), "{hash:?}");
    assert!(!verify(key, hash, b"header.claimz", sig));
    assert!(!verify(key, other(hash), msg, sig), "hash mismatch");
    let mut flipped = sig.to_vec();
    flipped[100] ^= 1;
    assert!(!verify(key, hash, msg, &flipped));
    assert!(!verify(key, hash, msg, &sig[1..]), "short");
    let mut long = vec![0];
    long.extend_from_slice(sig);
    assert!(!verify(key, hash, msg, &long), "long");
}

#[test]
fn pkcs1v15_agrees_with_the_rsa_crate_for_every_hash() {
    let private = rsa_test_key();
    let (n, e) = parts(&private);
    let key = RsaKey::new(&n, &e).unwrap();
    assert_eq!(key.bits(), 2048);
    let msg = b"header.claims";
    for (hash, sig) in [
        (Hash::Sha256, sign::<Sha256>(&private, msg)),
        (Hash::Sha384, sign::<Sha384>(&private, msg)),
        (Hash::Sha512, sign::<Sha512>(&private, msg)),
    ] {
        refuses_tampering(verify_pkcs1v15, &key, hash, msg, &sig);
        assert!(!verify_pss(&key, hash, msg, &sig), "not PSS");
    }
}

#[test]
fn pss_agrees_with_the_rsa_crate_for_every_hash() {
    let private = rsa_test_key();
    let (n, e) = parts(&private);
    let key = RsaKey::new(&n, &e).unwrap();
    let msg = b"header.claims";
    for (hash, sig) in [
        (Hash::Sha256, sign_pss::<Sha256>(&private, msg)),
        (Hash::Sha384, sign_pss::<Sha384>(&private, msg)),
        (Hash::Sha512, sign_pss::<Sha512>(&private, msg)),
    ] {
        refuses_tampering(verify_pss, &key, hash, msg, &sig);
        assert!(!verify_pkcs1v15(&key, hash, msg, &sig), "not PKCS#1 v1.5");
    }
}

#[test]
fn refuses_signatures_not_below_the_modulus() {
    let private = rsa_test_key();
    let (n, e) = parts(&private);
    let key = RsaKey::new(&n, &e).unwrap();
    let sig = sign::<Sha256>(&private, b"m");
    // s + n encodes the same residue, but is not a valid representative.
    let s = rsa::BoxedUint::from_be_slice_vartime(&sig);
    let sum = s.wrapping_add(rsa::BoxedUint::from_be_slice_vartime(&n));
    let sum = sum.to_be_bytes_trimmed_vartime();
    if sum.len() == 256 {
        assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &sum));
    }
    assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &n));
    assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &[0xff; 256]));
    assert!(!verify_pkcs1v15(&key, Hash::Sha256, b"m", &[0; 256]));
    assert!(!verify_pss(&key, Hash::Sha256, b"m", &[0; 256]));
}

#[test]
fn leading_zeros_of_n_and_e_are_ignored() {
    let private = rsa_test_key();
    let (n, e) = parts(&private);
    let key = RsaKey::new(&[&[0, 0][..], &n].concat(), &[&[0][..], &e].concat()).unwrap();
    let sig = sign::<Sha256>(&private, b"m");
    assert!(verify_pkcs1v15(&key, Hash::Sha256, b"m", &sig));
}

#[test]
fn refuses_keys_outside_the_bounds() {
    let (n, _) = parts(&rsa_test_key());
    assert!(RsaKey::new(&n, &[3]).is_some(), "e = 3");
    assert!(RsaKey::new(&n, &[1]).is_none(), "e = 1");
    assert!(RsaKey::new(&n, &[1, 0, 0]).is_none(), "even e");
    assert!(RsaKey::new(&n, &[2, 0, 0, 0, 1]).is_none(), "e > 2^33 - 1");
    assert!(
        RsaKey::new(&n[..128], &[1, 0, 1]).is_none(),
        "1024-bit refused"
    );
    let mut even = n.clone();
    even[255] &= 0xfe;
    assert!(RsaKey::new(&even, &[1, 0, 1]).is_none(), "even n");
    assert!(
        RsaKey::new(&[0xff; 1025], &[1, 0, 1]).is_none(),
        "8200 bits"
    );
    assert!(RsaKey::new(&[], &[1, 0, 1]).is_none());
}
