//! The square and the reduction rows taken four and two at a time (`sqr`,
//! `sqr_four`, `reduce`, `reduce_four`) against crypto-bigint and against
//! `mul`, at every limb count
//! from 1 to 80 (sizes just above and below multiples of 29 and 58 bits)
//! and up to 283 (8192 bits): all-ones and sparse moduli, edge bases and
//! exponents, and the column sums at their largest. Under
//! scripts/wasm-vectors.sh they run the SIMD path. (Written by an
//! independent review of the pairing; each of a wrong column, a missing
//! product and too few normalizations made them fail. In session 20 a
//! missing product in `sqr_four` and one in `reduce_four`'s first columns
//! made them fail natively, a wrong splat in `mul_add8_four` under
//! scripts/wasm-vectors.sh.)

// Under scripts/wasm-vectors.sh these tests are to run the SIMD path.
#[cfg(all(target_arch = "wasm32", not(target_feature = "simd128")))]
compile_error!("bignum's tests on wasm32 are built with simd128 (.cargo/config.toml)");

use super::super::*;
use super::{bytes, reference};
use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero};

fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

fn big(be: &[u8]) -> BoxedUint {
    BoxedUint::from_be_slice_vartime(be)
}

/// `x` as exactly k big-endian bytes.
fn be_k(x: &BoxedUint, k: usize) -> Vec<u8> {
    let bytes = x.to_be_bytes_trimmed_vartime();
    let mut out = vec![0; k - bytes.len()];
    out.extend_from_slice(&bytes);
    out
}

fn set_bit(be: &mut [u8], bit: usize) {
    let k = be.len();
    be[k - 1 - bit / 8] |= 1 << (bit % 8);
}

/// Odd moduli of exactly `bits` bits: random; 2^bits − 1; every limb
/// below the top one all ones (n0 = 2^29 − 1); 2^(bits−1) + 1 (n0 = 1).
fn moduli(seed: &mut u64, bits: usize) -> Vec<Vec<u8>> {
    let k = bits.div_ceil(8);
    let top = |n: &mut Vec<u8>| {
        n[0] &= 0xff >> (8 * k - bits);
        set_bit(n, bits - 1);
        set_bit(n, 0);
    };
    let mut random = bytes(seed, k);
    top(&mut random);
    let mut ones = vec![0xff; k];
    top(&mut ones);
    let mut limbs_ones = bytes(seed, k);
    top(&mut limbs_ones);
    for b in 0..(bits - 1) / W as usize * W as usize {
        set_bit(&mut limbs_ones, b);
    }
    let mut sparse = vec![0; k];
    top(&mut sparse);
    let mut out = vec![random, ones, limbs_ones, sparse];
    out.dedup();
    out
}

/// Bases below n: 0, 1, 2, n − 1, n − 2, 2^(bits−1) − 1 (all ones
/// below the top bit), a random one.
fn bases(seed: &mut u64, n: &[u8], bits: usize) -> Vec<Vec<u8>> {
    let k = n.len();
    let nb = big(n);
    let small = |x: u64| be_k(&BoxedUint::from(x), k);
    let below = |d: u64| be_k(&nb.wrapping_sub(BoxedUint::from(d)), k);
    let mut ones = vec![0; k];
    for b in 0..bits - 1 {
        set_bit(&mut ones, b);
    }
    let mut random = bytes(seed, k);
    random[0] &= 0xff >> (8 * k - bits);
    if k * 8 - bits < 8 {
        // Clear the modulus's top bit: below n.
        random[0] &= !(0x80 >> (8 * k - bits));
    }
    let mut out = vec![
        small(0),
        small(1),
        small(2),
        below(1),
        below(2),
        ones,
        random,
    ];
    out.retain(|s| big(s) < nb);
    out
}

/// Bit sizes for a limb count: the first two and last two of the
/// 29-bit band (just above and at multiples of 29, hence of 58), and a
/// random one.
fn sizes(seed: &mut u64, limbs: usize) -> Vec<usize> {
    let lo = 29 * (limbs - 1);
    let mut v = vec![
        lo + 1,
        lo + 2,
        lo + 28,
        lo + 29,
        lo + 1 + (rng(seed) % 29) as usize,
    ];
    v.retain(|&b| b >= 2);
    v.sort();
    v.dedup();
    v
}

#[test]
fn rsavp1_every_limb_count_1_to_80() {
    let mut seed = 0x0123_4567_89ab_cdef;
    let mut checked = 0;
    for limbs in 1..=80 {
        for bits in sizes(&mut seed, limbs) {
            for n in moduli(&mut seed, bits) {
                let big_e = (rng(&mut seed) >> 31) | (1 << 32); // 33 bits
                for (j, e) in [3, 17, 65537, (1 << 33) - 1, big_e, 2]
                    .into_iter()
                    .enumerate()
                {
                    let key = PublicKey::new(&n, e).unwrap();
                    assert_eq!(key.bits(), bits);
                    assert_eq!(key.modulus.n.len(), limbs);
                    for (b, s) in bases(&mut seed, &n, bits).into_iter().enumerate() {
                        // Every base with e = 3 and 65537; a rotating
                        // few with the others (time in V8).
                        if !(e == 3 || e == 65537 || b % 3 == j % 3 || b == 3) {
                            continue;
                        }
                        assert_eq!(
                            key.rsavp1(&s).unwrap(),
                            reference(&n, &s, e),
                            "limbs {limbs} bits {bits} e {e} n {n:02x?} s {s:02x?}"
                        );
                        checked += 1;
                    }
                    assert!(key.rsavp1(&n).is_none());
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}

/// `sqr` (paired square and reduction) against `mul` (one row at a
/// time, unchanged) and, leaving Montgomery form, against a² mod n,
/// for every limb count up to 283 (8192 bits).
#[test]
fn sqr_matches_mul_up_to_283_limbs() {
    let mut seed = 0xfeed_face_cafe_beef;
    for limbs in 1..=283usize {
        let lo = 29 * (limbs - 1);
        for bits in [lo + 1, lo + 29, lo + 1 + (rng(&mut seed) % 29) as usize] {
            if bits < 2 {
                continue;
            }
            for n in moduli(&mut seed, bits) {
                let m = Modulus::new(&n).unwrap();
                let len = m.n.len();
                assert_eq!(len, limbs);
                let modulus = NonZero::new(big(&n)).unwrap();
                let mut t = Scratch::new(len);
                for s in bases(&mut seed, &n, bits) {
                    let a = from_be(&s, len).unwrap();
                    let (mut sq, mut mu, mut plain) = (vec![0; len], vec![0; len], vec![0; len]);
                    m.sqr(&a, &mut sq, &mut t);
                    m.mul(&a, &a, &mut mu, &mut t);
                    assert_eq!(sq, mu, "limbs {limbs} bits {bits} n {n:02x?} a {s:02x?}");
                    // sqr(a)·R² ·R⁻¹ = a² mod n.
                    m.mul(&sq, &m.r2, &mut plain, &mut t);
                    let want = big(&s).concatenating_mul(&big(&s)).rem_vartime(&modulus);
                    assert_eq!(
                        to_be(&plain, n.len()),
                        be_k(&want, n.len()),
                        "limbs {limbs} bits {bits}"
                    );
                    // Twice in a row from the same scratch (stale sums
                    // would show).
                    m.sqr(&sq, &mut mu, &mut t);
                    m.mul(&sq, &sq, &mut plain, &mut t);
                    assert_eq!(mu, plain);
                }
            }
        }
    }
}

/// Sums at their largest: n = 2^(29·len) − 1 (every limb all ones,
/// n0⁻¹ = 1 so m_i = column i's low bits) and a = n − 1, n − 2,
/// 2^(29·len − 1) − 1, for every length up to 283 limbs.
/// n = 2^(29·len) − 1, big-endian, and its `Modulus`: every limb all ones
/// and −n⁻¹ mod 2^29 = 1, so that m_i is column i's low bits.
fn all_ones_modulus(len: usize) -> (Vec<u8>, Modulus) {
    let bits = 29 * len;
    let k = bits.div_ceil(8);
    let mut n = vec![0xff; k];
    n[0] = 0xff >> (8 * k - bits);
    let m = Modulus::new(&n).unwrap();
    (n, m)
}

#[test]
fn all_ones_limbs_up_to_283() {
    for len in 1..=283usize {
        let (n, m) = all_ones_modulus(len);
        let k = n.len();
        assert!(m.n.iter().all(|&l| u64::from(l) == MASK));
        let modulus = NonZero::new(big(&n)).unwrap();
        let mut t = Scratch::new(len);
        for d in [1u64, 2, 3] {
            if BoxedUint::from(d) >= big(&n) {
                continue;
            }
            let s = be_k(&big(&n).wrapping_sub(BoxedUint::from(d)), k);
            let a = from_be(&s, len).unwrap();
            let (mut sq, mut mu) = (vec![0; len], vec![0; len]);
            m.sqr(&a, &mut sq, &mut t);
            m.mul(&a, &a, &mut mu, &mut t);
            assert_eq!(sq, mu, "len {len} d {d}");
            let mut plain = vec![0; len];
            m.mul(&sq, &m.r2, &mut plain, &mut t);
            let want = big(&s).concatenating_mul(&big(&s)).rem_vartime(&modulus);
            assert_eq!(to_be(&plain, k), be_k(&want, k), "len {len} d {d}");
        }
    }
}

/// The reduction with every product at its largest: n = 2^(29·len) − 1
/// (so −n⁻¹ mod 2^29 = 1) and column sums chosen so that every m_i is
/// 2^29 − 1, for every length up to 283 limbs; the result times R must be
/// the sums mod n. Random moduli never bring the columns near `PRODUCTS`'
/// bound; this does (an independent review's test, session 20: a budget of
/// 70 products instead of 62 overflows here, and no other test noticed).
#[test]
fn reduce_worst_case_m() {
    for len in 1..=283usize {
        let (nb, m) = all_ones_modulus(len);
        assert_eq!(m.n0inv, 1);
        // Simulate row by row with u128 columns to choose T.
        let mut sim = vec![0u128; 2 * len + 1];
        let mut t0 = vec![0u64; 2 * len + 1];
        for i in 0..len {
            let cur = (sim[i] & MASK as u128) as u64;
            let add = (MASK - cur) & MASK;
            t0[i] = add;
            sim[i] += add as u128;
            let mi = ((sim[i] as u64 & MASK) * m.n0inv) & MASK;
            assert_eq!(mi, MASK);
            for j in 0..len {
                sim[i + j] += mi as u128 * m.n[j] as u128;
            }
            sim[i + 1] += sim[i] >> W;
            sim[i] = 0;
        }
        for c in t0.iter_mut().take(2 * len).skip(len) {
            *c = MASK;
        }
        t0[2 * len - 1] = MASK - 1;
        let t32: Vec<u32> = t0.iter().map(|&c| c as u32).collect();
        let kk = (29 * (2 * len + 1)).div_ceil(8);
        let tbig = big(&to_be(&t32, kk));
        let mut s = Scratch::new(len);
        s.t.copy_from_slice(&t0);
        m.reduce(&mut s.t);
        let mut out = vec![0u32; len];
        m.finish(len, &mut out, &mut s);
        let modulus = NonZero::new(big(&nb)).unwrap();
        let mut shifted = vec![0u32; len];
        shifted.extend_from_slice(&out);
        let lhs = big(&to_be(&shifted, (29 * 2 * len).div_ceil(8))).rem_vartime(&modulus);
        let rhs = tbig.rem_vartime(&modulus);
        assert_eq!(lhs, rhs, "len {len}");
    }
}
