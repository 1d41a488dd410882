//! ECDSA verification (FIPS 186-5 §6.4.2) over the NIST prime curves with
//! a = −3: P-256 (`p256.rs`, ES256) and P-384 (`p384.rs`, ES384), for the
//! filter's `oidc::jwt`. This module is the arithmetic and the algorithm,
//! generic over a curve's constants and its number of limbs `N`.
//!
//! Why this is hand-written: the `p256` and `p384` crates (the filter
//! still uses `p256` to *sign* client assertions, in constant time) verify
//! with complete projective formulas (~13 field products per doubling),
//! 4-bit windows and no tables: 361 µs per ES256 verification in Envoy's
//! V8 (the probe, bench/probe), where issue 19 asks for 200. Verification
//! only ever sees public values (key, message hash, signature), so it may
//! be variable-time, and it is built the way verifiers usually are:
//! - the field in radix 2^29 (N limbs in `u64`s: 9 for P-256, 14 for
//!   P-384), Montgomery products summed in columns with no carries inside
//!   (as `lib.rs` does for RSA); the primes' limbs are constants, which
//!   the compiler folds into the code;
//! - Jacobian coordinates with a = −3 (3M + 5S per doubling) and additions
//!   of affine points (7M + 4S);
//! - u1·G + u2·Q interleaved over one run of doublings, in width-w NAF,
//!   with the odd multiples of G computed once per curve (static tables)
//!   and those of Q once per key (`VerifyingKey::new`);
//! - each scalar's NAF cut into `SPLIT` pieces of `stride` digits, piece k
//!   added from a table of the odd multiples of 2^(stride·k)·G (or ·Q):
//!   the run of doublings is a quarter as long (~65 for P-256 instead of
//!   257, 8 field products each), for the same number of additions and
//!   four times the tables (18 KB for G, 9 KB per key, P-256). Both
//!   points are known before any signature (G always, Q from the JWKS),
//!   so their tables are built once and every verification reuses them.
//!   In the probe (Envoy's V8): ES256 208–217 → 99–104 µs, ES384 763–823
//!   → 329–344 µs. A P-256 key's tables take ~280 µs natively (three runs
//!   of 65 doublings, eleven inversions), paid by the key's first
//!   verification after each JWKS fetch (`VerifyingKey`);
//! - no inversion at the end: x(R) ≡ r is checked as X ≡ r·Z² (and
//!   (r + n)·Z² when r + n < p); s⁻¹ mod n by the binary extended Euclid
//!   algorithm.
//!
//! `vectors/tests/wycheproof_ecdsa.rs` runs Wycheproof's P-256 / SHA-256
//! and P-384 / SHA-384 vectors through it (with their edge cases: r or s
//! out of range, points at infinity on the way, u1·G = ±u2·Q), and
//! compares it with the `p256` and `p384` crates on random keys and
//! messages.

// Every index below is a loop counter over a constant range inside a
// fixed-size array (N limbs, 2N columns, the tables' constant sizes), or
// is checked first: none can be out of range, and after unrolling the
// compiler drops the bounds checks. The crate's no-panic lint is off for
// this module only for that reason: an edit here must keep it true (the
// tests and the vectors exercise every function, natively and in V8).
#![allow(clippy::indexing_slicing)]

use std::sync::OnceLock;

/// Bits per limb.
pub(crate) const W: u32 = 29;
const MASK: u64 = (1 << W) - 1;
/// The most limbs of any curve here (P-384's): the column sums of a
/// product are an array of twice as many, whatever the curve (arrays
/// cannot be sized 2N by a generic N); `mul`, `sqr` and `redc` refuse to
/// compile for a larger N, so every column index below stays in range.
const MAX_N: usize = 14;
/// Width of the NAF for u1 (multiples of G: 2^(7−2) = 32 in a table)
/// and for u2 (multiples of Q: 16 in a table).
const WG: u32 = 7;
const WQ: u32 = 6;
pub(crate) const G_POINTS: usize = 1 << (WG - 2);
const Q_POINTS: usize = 1 << (WQ - 2);
/// Pieces of a scalar's NAF, each with tables of its own (see the top).
/// Natively, 8 pieces verified ES256 in 70 µs instead of 4's 82 (1 piece:
/// 158) but doubled a key's cost (533 µs instead of 277, 35 with 1): the
/// tables' cost grows with the pieces, the doublings saved shrink.
const SPLIT: usize = 4;
/// NAF digits of a scalar of the largest curve (384 bits, and one more),
/// rounded up to whole pieces.
const MAX_DIGITS: usize = SPLIT * (384 + 1usize).div_ceil(SPLIT);

/// The odd multiples of P, 2^s·P, 2^(2s)·P, … (one table per piece of a
/// NAF of stride s), K of each.
pub(crate) type Tables<const N: usize, const K: usize> = [[Affine<N>; K]; SPLIT];
/// G's tables, one static per curve.
pub(crate) type GTables<const N: usize> = Tables<N, G_POINTS>;

/// A number in little-endian limbs of 29 bits (each limb below 2^29
/// except transiently inside an operation).
pub(crate) type Limbs<const N: usize> = [u64; N];

/// A big-endian hex number as limbs. Only constants call it, so a bad
/// digit or a number too long stops the build, never a request.
#[allow(clippy::panic)]
pub(crate) const fn from_hex<const N: usize>(hex: &str) -> Limbs<N> {
    let hex = hex.as_bytes();
    let mut out = [0; N];
    let mut i = 0;
    while i < hex.len() {
        let c = hex[hex.len() - 1 - i];
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a hex digit"),
        };
        let mut b = 0;
        while b < 4 {
            let bit = 4 * i + b;
            if (v >> b) & 1 == 1 {
                if bit >= W as usize * N {
                    panic!("too long for the limbs");
                }
                out[bit / W as usize] |= 1 << (bit % W as usize);
            }
            b += 1;
        }
        i += 1;
    }
    out
}

/// Big-endian bytes as limbs; `None` when they do not fit.
fn from_be<const N: usize>(be: &[u8]) -> Option<Limbs<N>> {
    if be.len() * 8 > W as usize * N {
        return None;
    }
    let mut out = [0; N];
    for (i, &byte) in be.iter().rev().enumerate() {
        for b in 0..8 {
            let bit = 8 * i + b;
            out[bit / W as usize] |= u64::from((byte >> b) & 1) << (bit % W as usize);
        }
    }
    Some(out)
}

// ------------------------------------------------------------ numbers

const fn one<const N: usize>() -> Limbs<N> {
    let mut one = [0; N];
    one[0] = 1;
    one
}

/// a < b.
fn less<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> bool {
    for i in (0..N).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

fn is_zero<const N: usize>(a: &Limbs<N>) -> bool {
    a.iter().all(|&l| l == 0)
}

/// a − b for a ≥ b.
fn sub_plain<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
    let mut out = [0; N];
    let mut borrow = 0i64;
    for i in 0..N {
        let v = a[i] as i64 - b[i] as i64 - borrow;
        borrow = i64::from(v < 0);
        out[i] = (v + (borrow << W)) as u64;
    }
    out
}

/// a + b, for a sum below 2^(29N).
fn add_plain<const N: usize>(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
    let mut out = [0; N];
    let mut carry = 0;
    for i in 0..N {
        let v = a[i] + b[i] + carry;
        out[i] = v & MASK;
        carry = v >> W;
    }
    out
}

fn half<const N: usize>(a: &Limbs<N>) -> Limbs<N> {
    let mut out = [0; N];
    for i in 0..N {
        let high = if i + 1 < N { a[i + 1] & 1 } else { 0 };
        out[i] = (a[i] >> 1) | (high << (W - 1));
    }
    out
}

// ------------------------------------------------------- modular arithmetic

/// An odd modulus below 2^(29N − 2) with its Montgomery constants,
/// R = 2^(29N); arithmetic modulo it. Each modulus is its own type, so
/// that its operations are compiled with its limbs as constants.
pub(crate) trait Modulus<const N: usize> {
    const M: Limbs<N>;
    /// −M⁻¹ mod 2^29.
    const N0INV: u64;
    /// R² mod M.
    const R2: Limbs<N>;

    /// a mod M for a < 2M.
    #[inline(always)]
    fn reduce_once(a: Limbs<N>) -> Limbs<N> {
        if less(&a, &Self::M) {
            a
        } else {
            sub_plain(&a, &Self::M)
        }
    }

    /// a + b mod M (a, b < M). Not inlined, nor `sub`: the point
    /// formulas make ~20 such calls each, and inlined they would be ~10 KB
    /// of code per formula (measured), for a call's cost.
    #[inline(never)]
    fn add(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        Self::reduce_once(add_plain(a, b))
    }

    /// a − b mod M (a, b < M), as (a + M) − b.
    #[inline(never)]
    fn sub(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        let mut out = [0; N];
        let mut carry = 0i64;
        for i in 0..N {
            let v = (a[i] + Self::M[i]) as i64 - b[i] as i64 + carry;
            out[i] = (v as u64) & MASK;
            carry = v >> W;
        }
        Self::reduce_once(out)
    }

    /// a·b·R⁻¹ mod M for a·b < M·R (both below M, or one below M and the
    /// other any N limbs): the product's columns as `u64` sums of 58-bit
    /// limb products (at most N + N of them per column with the
    /// reduction's, < 2^63 for N ≤ 14), then one Montgomery reduction row
    /// per limb.
    #[inline(never)]
    fn mul(a: &Limbs<N>, b: &Limbs<N>) -> Limbs<N> {
        const { assert!(N <= MAX_N) };
        let mut t = [0u64; 2 * MAX_N];
        for i in 0..N {
            for j in 0..N {
                t[i + j] += a[i] * b[j];
            }
        }
        Self::redc(&mut t)
    }

    /// a²·R⁻¹ mod M: each cross product once, doubled (a column gets at
    /// most N/2 doubled products: no more than `mul`'s N).
    #[inline(never)]
    fn sqr(a: &Limbs<N>) -> Limbs<N> {
        const { assert!(N <= MAX_N) };
        let mut t = [0u64; 2 * MAX_N];
        for i in 0..N {
            t[2 * i] += a[i] * a[i];
            let twice = 2 * a[i];
            for j in i + 1..N {
                t[i + j] += twice * a[j];
            }
        }
        Self::redc(&mut t)
    }

    /// t·R⁻¹ mod M for t < M·R in the first 2N columns: row i adds m_i·M
    /// so that column i's low 29 bits vanish, and carries the rest into
    /// column i + 1.
    #[inline(never)]
    fn redc(t: &mut [u64; 2 * MAX_N]) -> Limbs<N> {
        const { assert!(N <= MAX_N) };
        for i in 0..N {
            let m = ((t[i] & MASK) * Self::N0INV) & MASK;
            for j in 0..N {
                t[i + j] += m * Self::M[j];
            }
            t[i + 1] += t[i] >> W;
        }
        let mut out = [0; N];
        let mut carry = 0;
        for i in 0..N {
            let v = t[N + i] + carry;
            out[i] = v & MASK;
            carry = v >> W;
        }
        Self::reduce_once(out)
    }

    /// a·R mod M (a < M): into Montgomery form.
    fn to_mont(a: &Limbs<N>) -> Limbs<N> {
        Self::mul(a, &Self::R2)
    }

    /// a⁻¹ mod M for 0 < a < M, M prime (binary extended Euclid, HAC
    /// 14.61): x1·a ≡ u and x2·a ≡ v throughout.
    fn invert(a: &Limbs<N>) -> Option<Limbs<N>> {
        if is_zero(a) || !less(a, &Self::M) {
            return None;
        }
        let (mut u, mut v) = (*a, Self::M);
        let (mut x1, mut x2) = (one(), [0; N]);
        let halve = |x: &Limbs<N>| {
            if x[0] & 1 == 0 {
                half(x)
            } else {
                half(&add_plain(x, &Self::M))
            }
        };
        while u != one() && v != one() {
            // Only a modulus that is not prime could bring u or v to zero
            // (the halving below would then never end): refuse rather
            // than loop.
            if is_zero(&u) || is_zero(&v) {
                return None;
            }
            while u[0] & 1 == 0 {
                u = half(&u);
                x1 = halve(&x1);
            }
            while v[0] & 1 == 0 {
                v = half(&v);
                x2 = halve(&x2);
            }
            if less(&u, &v) {
                v = sub_plain(&v, &u);
                x2 = Self::sub(&x2, &x1);
            } else {
                u = sub_plain(&u, &v);
                x1 = Self::sub(&x1, &x2);
            }
        }
        Some(if u == one() { x1 } else { x2 })
    }

    /// The Montgomery form of a⁻¹ from that of a: (aR)⁻¹ = a⁻¹R⁻¹, and
    /// each product with R² multiplies by R.
    fn invert_mont(a: &Limbs<N>) -> Option<Limbs<N>> {
        let inv = Self::invert(a)?;
        Some(Self::to_mont(&Self::to_mont(&inv)))
    }
}

// ------------------------------------------------------------- the curve

/// An affine point, coordinates in Montgomery form.
#[derive(Clone, Copy)]
pub(crate) struct Affine<const N: usize> {
    x: Limbs<N>,
    y: Limbs<N>,
}

/// A point in Jacobian coordinates (X/Z², Y/Z³), in Montgomery form;
/// Z = 0 is the point at infinity.
#[derive(Clone, Copy)]
pub(crate) struct Jacobian<const N: usize> {
    x: Limbs<N>,
    y: Limbs<N>,
    z: Limbs<N>,
}

impl<const N: usize> Jacobian<N> {
    const INFINITY: Jacobian<N> = Jacobian {
        x: [0; N],
        y: [0; N],
        z: [0; N],
    };

    fn is_infinity(&self) -> bool {
        is_zero(&self.z)
    }
}

/// A short Weierstrass curve y² = x³ − 3x + b over the prime field `Fp`,
/// of prime order `Order` with n < p (the final check of `verify` takes r
/// as a field element, and tries r + n below p), with its base point: the
/// curve's constants, and its point arithmetic and ECDSA verification
/// (provided, in terms of those).
pub(crate) trait Curve<const N: usize>: Sized {
    type Fp: Modulus<N>;
    type Order: Modulus<N>;
    /// Bits of p and n; bytes of a coordinate, a scalar, and the hash.
    const BITS: usize;
    const B: Limbs<N>;
    const GX: Limbs<N>;
    const GY: Limbs<N>;
    /// R mod p: the Montgomery form of 1 in the field.
    const R_MOD_P: Limbs<N>;

    /// G's tables, computed on first use and kept in a static of the
    /// curve's own (a generic function cannot have one): see
    /// `cached_g_tables`.
    fn g_tables() -> Option<&'static GTables<N>>;

    /// NAF digits of a scalar, BITS + 1, cut into `SPLIT` pieces of this
    /// many.
    const STRIDE: usize = (Self::BITS + 1).div_ceil(SPLIT);

    /// From plain coordinates, when they are below p and on the curve
    /// (the group has prime order: any such point is a valid public key).
    fn point(x: &Limbs<N>, y: &Limbs<N>) -> Option<Affine<N>> {
        if !less(x, &Self::Fp::M) || !less(y, &Self::Fp::M) {
            return None;
        }
        let (x, y) = (Self::Fp::to_mont(x), Self::Fp::to_mont(y));
        let (mul, sqr) = (Self::Fp::mul, Self::Fp::sqr);
        let (add, sub) = (Self::Fp::add, Self::Fp::sub);
        let x3 = mul(&sqr(&x), &x);
        let three_x = add(&add(&x, &x), &x);
        let rhs = add(&sub(&x3, &three_x), &Self::Fp::to_mont(&Self::B));
        (sqr(&y) == rhs).then_some(Affine { x, y })
    }

    fn neg(p: &Affine<N>) -> Affine<N> {
        Affine {
            x: p.x,
            y: Self::Fp::sub(&[0; N], &p.y),
        }
    }

    fn to_jacobian(p: &Affine<N>) -> Jacobian<N> {
        Jacobian {
            x: p.x,
            y: p.y,
            z: Self::R_MOD_P,
        }
    }

    /// The affine point (X/Z², Y/Z³), given 1/Z.
    fn scaled(p: &Jacobian<N>, zinv: &Limbs<N>) -> Affine<N> {
        let (mul, sqr) = (Self::Fp::mul, Self::Fp::sqr);
        let zinv2 = sqr(zinv);
        Affine {
            x: mul(&p.x, &zinv2),
            y: mul(&p.y, &mul(&zinv2, zinv)),
        }
    }

    fn to_affine(p: &Jacobian<N>) -> Option<Affine<N>> {
        Some(Self::scaled(p, &Self::Fp::invert_mont(&p.z)?))
    }

    /// 2P, "dbl-2001-b" (a = −3): 3M + 5S.
    fn double(p: &Jacobian<N>) -> Jacobian<N> {
        if p.is_infinity() {
            return *p;
        }
        let (mul, sqr) = (Self::Fp::mul, Self::Fp::sqr);
        let (add, sub) = (Self::Fp::add, Self::Fp::sub);
        let delta = sqr(&p.z);
        let gamma = sqr(&p.y);
        let beta = mul(&p.x, &gamma);
        let t = mul(&sub(&p.x, &delta), &add(&p.x, &delta));
        let alpha = add(&add(&t, &t), &t);
        let beta2 = add(&beta, &beta);
        let beta4 = add(&beta2, &beta2);
        let beta8 = add(&beta4, &beta4);
        let x = sub(&sqr(&alpha), &beta8);
        let yz = add(&p.y, &p.z);
        let z = sub(&sub(&sqr(&yz), &gamma), &delta);
        let g2 = sqr(&gamma);
        let g4 = add(&g2, &g2);
        let g8 = add(&g4, &g4);
        let y = sub(&mul(&alpha, &sub(&beta4, &x)), &add(&g8, &g8));
        Jacobian { x, y, z }
    }

    /// P + Q for an affine Q, "madd-2007-bl": 7M + 4S; doubles when Q = P
    /// and gives infinity when Q = −P.
    fn add_affine(p: &Jacobian<N>, q: &Affine<N>) -> Jacobian<N> {
        if p.is_infinity() {
            return Self::to_jacobian(q);
        }
        let (mul, sqr) = (Self::Fp::mul, Self::Fp::sqr);
        let (add, sub) = (Self::Fp::add, Self::Fp::sub);
        let z1z1 = sqr(&p.z);
        let u2 = mul(&q.x, &z1z1);
        let s2 = mul(&q.y, &mul(&p.z, &z1z1));
        let h = sub(&u2, &p.x);
        let s = sub(&s2, &p.y);
        if is_zero(&h) {
            return if is_zero(&s) {
                Self::double(p)
            } else {
                Jacobian::INFINITY
            };
        }
        let r = add(&s, &s);
        let hh = sqr(&h);
        let hh2 = add(&hh, &hh);
        let i = add(&hh2, &hh2);
        let j = mul(&h, &i);
        let v = mul(&p.x, &i);
        let x = sub(&sub(&sqr(&r), &j), &add(&v, &v));
        let y1j = mul(&p.y, &j);
        let y = sub(&mul(&r, &sub(&v, &x)), &add(&y1j, &y1j));
        let zh = add(&p.z, &h);
        let z = sub(&sub(&sqr(&zh), &z1z1), &hh);
        Jacobian { x, y, z }
    }

    /// P, 3P, 5P, … (2k − 1)P in affine coordinates: one inversion for
    /// 2P, one for the whole table (Montgomery's trick).
    fn odd_multiples<const K: usize>(p: &Affine<N>) -> Option<[Affine<N>; K]> {
        let mul = Self::Fp::mul;
        let two_p = Self::to_affine(&Self::double(&Self::to_jacobian(p)))?;
        let mut points = [Self::to_jacobian(p); K];
        for k in 1..K {
            points[k] = Self::add_affine(&points[k - 1], &two_p);
        }
        // prefix[k] = z_0 ⋯ z_k; one inversion of the whole product, then
        // back down the table peeling one z off at a time.
        let mut prefix = [[0; N]; K];
        let mut acc = Self::R_MOD_P;
        for k in 0..K {
            acc = mul(&acc, &points[k].z);
            prefix[k] = acc;
        }
        let mut inv = Self::Fp::invert_mont(&acc)?;
        let mut out = [*p; K];
        for k in (0..K).rev() {
            let zinv = if k == 0 {
                inv
            } else {
                mul(&inv, &prefix[k - 1])
            };
            inv = mul(&inv, &points[k].z);
            out[k] = Self::scaled(&points[k], &zinv);
        }
        Some(out)
    }

    /// The tables of P for NAF pieces of `STRIDE` digits: the odd
    /// multiples of 2^(STRIDE·k)·P for each piece k.
    fn tables<const K: usize>(p: &Affine<N>) -> Option<Tables<N, K>> {
        let mut base = *p;
        let mut out = [[base; K]; SPLIT];
        for (k, table) in out.iter_mut().enumerate() {
            if k > 0 {
                let mut q = Self::to_jacobian(&base);
                for _ in 0..Self::STRIDE {
                    q = Self::double(&q);
                }
                base = Self::to_affine(&q)?;
            }
            *table = Self::odd_multiples(&base)?;
        }
        Some(out)
    }

    /// u1·G + u2·Q for plain scalars below 2^BITS, given G's tables and
    /// Q's.
    fn lincomb(
        g: &GTables<N>,
        q: &Tables<N, Q_POINTS>,
        u1: &Limbs<N>,
        u2: &Limbs<N>,
    ) -> Option<Jacobian<N>> {
        // The NAF arrays hold the pieces' digits.
        const { assert!(SPLIT * Self::STRIDE <= MAX_DIGITS) };
        let digits = Self::BITS + 1;
        let (n1, n2) = (wnaf(u1, WG, digits), wnaf(u2, WQ, digits));
        // Digit STRIDE·k + j of a NAF is digit j of piece k, whose table
        // holds the multiples of 2^(STRIDE·k) times the point: each
        // doubling below serves all pieces.
        let stride = Self::STRIDE;
        let any = |j: usize| (0..SPLIT).any(|k| n1[stride * k + j] != 0 || n2[stride * k + j] != 0);
        let mut acc = Jacobian::INFINITY;
        let Some(top) = (0..stride).rev().find(|&j| any(j)) else {
            return Some(acc);
        };
        for j in (0..=top).rev() {
            acc = Self::double(&acc);
            for k in 0..SPLIT {
                let (d1, d2) = (n1[stride * k + j], n2[stride * k + j]);
                if d1 != 0 {
                    acc = Self::add_affine(&acc, &lookup::<Self, N>(&g[k], d1)?);
                }
                if d2 != 0 {
                    acc = Self::add_affine(&acc, &lookup::<Self, N>(&q[k], d2)?);
                }
            }
        }
        Some(acc)
    }

    /// ECDSA verification of `hash` (a big-endian number of `BITS` bits)
    /// against `sig` = r ‖ s (`BITS` / 8 big-endian bytes each, as JWS
    /// carries it), for the key whose tables are `q`. `None` (refused) for
    /// inputs of other lengths.
    fn verify(q: &Tables<N, Q_POINTS>, hash: &[u8], sig: &[u8]) -> Option<bool> {
        // p, n and the hash are whole bytes.
        const { assert!(Self::BITS % 8 == 0) };
        let bytes = Self::BITS / 8;
        if hash.len() != bytes || sig.len() != 2 * bytes {
            return None;
        }
        let (r, s) = sig.split_at_checked(bytes)?;
        let (r, s) = (from_be::<N>(r)?, from_be::<N>(s)?);
        let n = Self::Order::M;
        if is_zero(&r) || !less(&r, &n) {
            return Some(false);
        }
        // e may be ≥ n (it is below 2^BITS); `mul` takes it as it is,
        // since e·w < n·R for w < n.
        let e = from_be::<N>(hash)?;
        let w = Self::Order::invert(&s)?; // None for s = 0 or s ≥ n
        // mul gives e·w·R⁻¹; a product with R² makes it e·w.
        let to_mont = Self::Order::to_mont;
        let u1 = to_mont(&Self::Order::mul(&e, &w));
        let u2 = to_mont(&Self::Order::mul(&r, &w));
        let acc = Self::lincomb(Self::g_tables()?, q, &u1, &u2)?;
        if acc.is_infinity() {
            return Some(false);
        }
        // x(R) = X/Z²; x(R) mod n = r means x(R) = r or, when r + n < p,
        // x(R) = r + n.
        let (mul, to_mont_p) = (Self::Fp::mul, Self::Fp::to_mont);
        let z2 = Self::Fp::sqr(&acc.z);
        if mul(&to_mont_p(&r), &z2) == acc.x {
            return Some(true);
        }
        let r_n = add_plain(&r, &n);
        Some(less(&r_n, &Self::Fp::M) && mul(&to_mont_p(&r_n), &z2) == acc.x)
    }
}

/// Bits pos..pos + count (count ≤ 8) of a plain number.
fn bits<const N: usize>(k: &Limbs<N>, pos: usize, count: usize) -> u32 {
    let (limb, shift) = (pos / W as usize, pos % W as usize);
    let low = k.get(limb).copied().unwrap_or(0) >> shift;
    let high = k.get(limb + 1).copied().unwrap_or(0) << (W as usize - shift);
    ((low | high) & ((1 << count) - 1)) as u32
}

/// Width-w NAF of a scalar below 2^(digits − 1), in its first `digits`
/// entries: digits odd and below 2^(w−1) in absolute value, any w
/// consecutive digits with at most one nonzero.
fn wnaf<const N: usize>(k: &Limbs<N>, w: u32, digits: usize) -> [i8; MAX_DIGITS] {
    let mut naf = [0i8; MAX_DIGITS];
    let digits = digits.min(MAX_DIGITS);
    let (mut bit, mut carry) = (0usize, 0u32);
    while bit < digits {
        if bits(k, bit, 1) == carry {
            bit += 1;
            continue;
        }
        let now = (w as usize).min(digits - bit);
        let mut word = (bits(k, bit, now) + carry) as i32;
        carry = ((word >> (w - 1)) & 1) as u32;
        word -= (carry << w) as i32;
        naf[bit] = word as i8;
        bit += now;
    }
    naf
}

/// The table's entry for a nonzero odd digit d: |d|·P, negated for d < 0.
fn lookup<C: Curve<N>, const N: usize>(table: &[Affine<N>], d: i8) -> Option<Affine<N>> {
    let p = table.get(usize::from(d.unsigned_abs() / 2))?;
    Some(if d < 0 { C::neg(p) } else { *p })
}

/// A public key of curve `C`, with the tables of it that verification
/// adds from, built at its first verification: a JWKS may list many keys
/// (up to 64 are kept) of which an IdP signs with one, and a P-256 key's
/// tables take ~280 µs natively, the point's check ~2 (JWKS parse in the
/// probe: 74–75 µs for an RSA and a P-256 key; 118–121 when the key's
/// one table of before was built at parse).
pub(crate) struct VerifyingKey<C, const N: usize> {
    point: Affine<N>,
    /// `None` inside when they cannot be built, which a point of the
    /// curve (of prime order, so no multiple of it below n is infinity)
    /// never meets: the key then verifies nothing.
    tables: OnceLock<Option<Box<Tables<N, Q_POINTS>>>>,
    curve: std::marker::PhantomData<C>,
}

// Not derived: a derive would ask the curve's marker type to be `Clone`.
impl<C, const N: usize> Clone for VerifyingKey<C, N> {
    fn clone(&self) -> Self {
        VerifyingKey {
            point: self.point,
            tables: self.tables.clone(),
            curve: std::marker::PhantomData,
        }
    }
}

impl<C: Curve<N>, const N: usize> VerifyingKey<C, N> {
    /// From the big-endian affine coordinates (`BITS` / 8 bytes each);
    /// `None` unless (x, y) is a point of the curve.
    pub(crate) fn new(x: &[u8], y: &[u8]) -> Option<Self> {
        let bytes = C::BITS / 8;
        if x.len() != bytes || y.len() != bytes {
            return None;
        }
        Some(VerifyingKey {
            point: C::point(&from_be(x)?, &from_be(y)?)?,
            tables: OnceLock::new(),
            curve: std::marker::PhantomData,
        })
    }

    /// Whether `sig` (r ‖ s) signs `hash`; false for any malformed input.
    pub(crate) fn verify_prehash(&self, hash: &[u8], sig: &[u8]) -> bool {
        let tables = self
            .tables
            .get_or_init(|| C::tables(&self.point).map(Box::new));
        tables
            .as_deref()
            .and_then(|q| C::verify(q, hash, sig))
            .unwrap_or(false)
    }
}

/// A curve's tables of G, computed on first use, in a static of the
/// curve's own.
pub(crate) fn cached_g_tables<C: Curve<N>, const N: usize>(
    cell: &'static OnceLock<Option<GTables<N>>>,
) -> Option<&'static GTables<N>> {
    cell.get_or_init(|| C::tables(&C::point(&C::GX, &C::GY)?))
        .as_ref()
}

/// A curve's public key type (`$name`): coordinates and hashes of
/// `$bytes` bytes, over the generic key of `ecdsa`.
macro_rules! verifying_key {
    ($curve:ty, $n:expr, $bytes:expr, $name:literal) => {
        const _: () = assert!(<$curve as $crate::ecdsa::Curve<$n>>::BITS == 8 * $bytes);

        #[doc = concat!("A ", $name, " public key, with the tables of it that verification adds from.")]
        #[derive(Clone)]
        pub struct VerifyingKey($crate::ecdsa::VerifyingKey<$curve, $n>);

        impl std::fmt::Debug for VerifyingKey {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!($name, " VerifyingKey"))
            }
        }

        impl VerifyingKey {
            /// From the big-endian affine coordinates; `None` unless (x, y)
            /// is a point of the curve.
            pub fn new(x: &[u8; $bytes], y: &[u8; $bytes]) -> Option<VerifyingKey> {
                $crate::ecdsa::VerifyingKey::new(x, y).map(VerifyingKey)
            }

            /// ECDSA verification of a `hash` (of the curve's size) against
            /// `sig` = r ‖ s (big-endian, as JWS carries it).
            pub fn verify_prehash(&self, hash: &[u8; $bytes], sig: &[u8]) -> bool {
                self.0.verify_prehash(hash, sig)
            }
        }
    };
}
pub(crate) use verifying_key;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{p256, p384};
    use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero};

    /// Big-endian bytes of the largest curve's numbers (and room above).
    const BYTES: usize = 56;

    fn big<const N: usize>(a: &Limbs<N>) -> BoxedUint {
        let mut be = [0u8; BYTES];
        for bit in 0..W as usize * N {
            if (a[bit / W as usize] >> (bit % W as usize)) & 1 == 1 {
                be[BYTES - 1 - bit / 8] |= 1 << (bit % 8);
            }
        }
        BoxedUint::from_be_slice_vartime(&be)
    }

    fn limbs<const N: usize>(x: &BoxedUint) -> Limbs<N> {
        from_be(&x.to_be_bytes_trimmed_vartime()).unwrap()
    }

    /// Deterministic pseudo-random limbs below 2^bits (xorshift64).
    fn random<const N: usize>(seed: &mut u64, bits: usize) -> Limbs<N> {
        let mut be = vec![0u8; bits / 8];
        for b in be.iter_mut() {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *b = *seed as u8;
        }
        from_be(&be).unwrap()
    }

    fn check_field<M: Modulus<N>, const N: usize>(bits: usize) {
        let m = NonZero::new(big(&M::M)).unwrap();
        let reduce = |x: BoxedUint| limbs::<N>(&x.rem_vartime(&m));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2000 {
            let (mut a, mut b) = (random::<N>(&mut seed, bits), random::<N>(&mut seed, bits));
            if round % 7 == 0 {
                a = sub_plain(&M::M, &one());
            }
            if round % 11 == 0 {
                b = [0; N];
            }
            let (a, b) = (reduce(big(&a)), reduce(big(&b)));
            let (ma, mb) = (M::to_mont(&a), M::to_mont(&b));
            let back = |x: &Limbs<N>| M::mul(x, &one());
            assert_eq!(back(&ma), a, "Montgomery form round trip");
            assert_eq!(
                back(&M::mul(&ma, &mb)),
                reduce(big(&a).concatenating_mul(&big(&b)))
            );
            assert_eq!(
                back(&M::sqr(&ma)),
                reduce(big(&a).concatenating_mul(&big(&a)))
            );
            let sum = big(&a).concatenating_add(big(&b));
            assert_eq!(back(&M::add(&ma, &mb)), reduce(sum));
            let diff = big(&a).concatenating_add(big(&M::M)).wrapping_sub(big(&b));
            assert_eq!(back(&M::sub(&ma, &mb)), reduce(diff));
            if a != [0; N] {
                let inv = M::invert(&a).unwrap();
                assert_eq!(reduce(big(&a).concatenating_mul(&big(&inv))), one());
                assert_eq!(back(&M::mul(&ma, &M::invert_mont(&ma).unwrap())), one());
            }
        }
        // `verify` multiplies the hash, which may be ≥ n, as it is: any
        // number of `bits` bits times one below M.
        let all_ones = from_be::<N>(&vec![0xff; bits / 8]).unwrap();
        let w = reduce(big(&random::<N>(&mut seed, bits)));
        let product = M::to_mont(&M::mul(&all_ones, &w));
        assert_eq!(product, reduce(big(&all_ones).concatenating_mul(&big(&w))));
        assert!(M::invert(&[0; N]).is_none());
        assert!(M::invert(&M::M).is_none());
    }

    #[test]
    fn field_and_scalar_arithmetic_match_crypto_bigint() {
        check_field::<p256::Fp, 9>(256);
        check_field::<p256::Order, 9>(256);
        check_field::<p384::Fp, 14>(384);
        check_field::<p384::Order, 14>(384);
    }

    /// 2^k, with room for products of two such numbers.
    fn pow2(k: usize) -> BoxedUint {
        let mut be = [0u8; 2 * BYTES];
        be[2 * BYTES - 1 - k / 8] = 1 << (k % 8);
        BoxedUint::from_be_slice_vartime(&be)
    }

    /// R² for both moduli, R mod p, and −M⁻¹ mod 2^29, from p and n.
    fn check_constants<C: Curve<N>, const N: usize>(p: BoxedUint) {
        assert_eq!(limbs::<N>(&p), C::Fp::M);
        assert_eq!(C::Fp::to_mont(&one()), C::R_MOD_P);
        for (m, n0inv, r2) in [
            (C::Fp::M, C::Fp::N0INV, C::Fp::R2),
            (C::Order::M, C::Order::N0INV, C::Order::R2),
        ] {
            assert_eq!((m[0] * n0inv + 1) & MASK, 0, "-m^-1 mod 2^29");
            let m = NonZero::new(big(&m)).unwrap();
            let r = pow2(W as usize * N).rem_vartime(&m);
            assert_eq!(limbs::<N>(&r.concatenating_mul(&r).rem_vartime(&m)), r2);
        }
        assert!(less(&C::Order::M, &C::Fp::M), "n < p");
        // Column sums of a product stay below 2^63: N + N products < 2^58.
        assert!(2 * N as u64 * (1 << (2 * W)) < 1 << 63);
        assert!(N <= MAX_N && C::BITS < MAX_DIGITS);
    }

    #[test]
    fn constants_are_the_curves() {
        let one = BoxedUint::one();
        let p256 = pow2(256)
            .wrapping_sub(pow2(224))
            .wrapping_add(pow2(192))
            .wrapping_add(pow2(96))
            .wrapping_sub(one.clone());
        check_constants::<p256::P256, 9>(p256);
        let p384 = pow2(384)
            .wrapping_sub(pow2(128))
            .wrapping_sub(pow2(96))
            .wrapping_add(pow2(32))
            .wrapping_sub(one);
        check_constants::<p384::P384, 14>(p384);
    }

    fn check_naf<C: Curve<N>, const N: usize>() {
        let mut seed = 42u64;
        let n = NonZero::new(big(&C::Order::M)).unwrap();
        let digits = C::BITS + 1;
        for _ in 0..500 {
            let k = limbs::<N>(&big(&random::<N>(&mut seed, C::BITS)).rem_vartime(&n));
            for w in [WG, WQ] {
                let naf = wnaf(&k, w, digits);
                assert!(naf[digits..].iter().all(|&d| d == 0));
                let mut last: Option<usize> = None;
                // Horner's rule mod n, from the top digit.
                let mut acc = [0; N];
                for i in (0..digits).rev() {
                    acc = C::Order::add(&acc, &acc);
                    let d = naf[i];
                    if d == 0 {
                        continue;
                    }
                    assert!(d % 2 != 0 && i32::from(d).abs() < 1 << (w - 1));
                    if let Some(l) = last {
                        assert!(l - i >= w as usize, "digits too close");
                    }
                    last = Some(i);
                    let mut small = [0; N];
                    small[0] = u64::from(d.unsigned_abs());
                    acc = if d > 0 {
                        C::Order::add(&acc, &small)
                    } else {
                        C::Order::sub(&acc, &small)
                    };
                }
                assert_eq!(acc, k);
            }
        }
    }

    #[test]
    fn naf_digits_rebuild_the_scalar() {
        check_naf::<p256::P256, 9>();
        check_naf::<p384::P384, 14>();
    }

    fn check_base_point<C: Curve<N>, const N: usize>() {
        let g = C::point(&C::GX, &C::GY).unwrap();
        let tables = C::g_tables().unwrap();
        let table = &tables[0];
        // 3G by doubling and adding, against the table's second entry.
        let three = C::to_affine(&C::add_affine(&C::double(&C::to_jacobian(&g)), &g)).unwrap();
        assert!(three.x == table[1].x && three.y == table[1].y);
        // Every entry is on the curve.
        let back = |x: &Limbs<N>| C::Fp::mul(x, &one());
        for p in tables.iter().flatten() {
            assert!(C::point(&back(&p.x), &back(&p.y)).is_some());
        }
        // Each piece's table starts at 2^STRIDE times the one before's
        // first point, and its entry i is (2i + 1) times its first.
        for k in 1..SPLIT {
            let mut p = C::to_jacobian(&tables[k - 1][0]);
            for _ in 0..C::STRIDE {
                p = C::double(&p);
            }
            let first = C::to_affine(&p).unwrap();
            assert!(first.x == tables[k][0].x && first.y == tables[k][0].y);
            let two = C::double(&C::to_jacobian(&first));
            let mut odd = C::to_jacobian(&first);
            for entry in &tables[k][1..] {
                odd = C::add_affine(&two, &C::to_affine(&odd).unwrap());
                let odd_affine = C::to_affine(&odd).unwrap();
                assert!(
                    odd_affine.x == entry.x && odd_affine.y == entry.y,
                    "piece {k}"
                );
            }
        }
        // n·G = infinity: (n − 1)·G + G, through a NAF of n − 1.
        let n_minus_1 = sub_plain(&C::Order::M, &one());
        let naf = wnaf(&n_minus_1, WG, C::BITS + 1);
        let mut acc = Jacobian::INFINITY;
        for i in (0..=C::BITS).rev() {
            acc = C::double(&acc);
            if naf[i] != 0 {
                acc = C::add_affine(&acc, &lookup::<C, N>(table, naf[i]).unwrap());
            }
        }
        assert!(!acc.is_infinity());
        assert!(C::add_affine(&acc, &g).is_infinity());
        // Off the curve, or a coordinate not below p: refused.
        assert!(C::point(&C::GX, &C::GX).is_none());
        assert!(C::point(&C::Fp::M, &C::GY).is_none());
    }

    /// The pieces' sum where the points added meet the sum so far: a key
    /// Q = G, so that 1·G + 1·Q adds G to G (the doubling branch of
    /// `add_affine`) and u·G + (n − u)·Q ends at infinity (the last
    /// addition adds −acc); random u·G + v·Q against (u + v mod n)·Q.
    fn check_lincomb<C: Curve<N>, const N: usize>() {
        let g = C::g_tables().unwrap();
        let base = C::point(&C::GX, &C::GY).unwrap();
        let q = C::tables::<Q_POINTS>(&base).unwrap();
        let affine = |p: &Jacobian<N>| {
            let a = C::to_affine(p).unwrap();
            (a.x, a.y)
        };
        let small = |k: u64| {
            let mut l = [0; N];
            l[0] = k;
            l
        };
        let zero = [0; N];
        let two_g = affine(&C::double(&C::to_jacobian(&base)));
        assert_eq!(
            affine(&C::lincomb(g, &q, &small(1), &small(1)).unwrap()),
            two_g
        );
        assert_eq!(affine(&C::lincomb(g, &q, &small(2), &zero).unwrap()), two_g);
        assert_eq!(affine(&C::lincomb(g, &q, &zero, &small(2)).unwrap()), two_g);
        let n = NonZero::new(big(&C::Order::M)).unwrap();
        let mut seed = 7u64;
        for round in 0..40 {
            let u = limbs::<N>(&big(&random::<N>(&mut seed, C::BITS)).rem_vartime(&n));
            let v = limbs::<N>(&big(&random::<N>(&mut seed, C::BITS)).rem_vartime(&n));
            let sum = affine(&C::lincomb(g, &q, &zero, &C::Order::add(&u, &v)).unwrap());
            assert_eq!(affine(&C::lincomb(g, &q, &u, &v).unwrap()), sum, "{round}");
            let twice = affine(&C::lincomb(g, &q, &C::Order::add(&u, &u), &zero).unwrap());
            assert_eq!(
                affine(&C::lincomb(g, &q, &u, &u).unwrap()),
                twice,
                "{round}"
            );
            let minus_u = C::Order::sub(&zero, &u);
            assert!(
                C::lincomb(g, &q, &u, &minus_u).unwrap().is_infinity(),
                "{round}"
            );
        }
        let minus_one = C::Order::sub(&zero, &small(1));
        assert!(
            C::lincomb(g, &q, &small(1), &minus_one)
                .unwrap()
                .is_infinity()
        );
        assert!(C::lincomb(g, &q, &zero, &zero).unwrap().is_infinity());
    }

    /// k·P by plain double-and-add over every bit: the reference.
    fn naive<C: Curve<N>, const N: usize>(p: &Affine<N>, k: &Limbs<N>) -> Jacobian<N> {
        let mut acc = Jacobian::INFINITY;
        for bit in (0..W as usize * N).rev() {
            acc = C::double(&acc);
            if bits(k, bit, 1) == 1 {
                acc = C::add_affine(&acc, p);
            }
        }
        acc
    }

    fn pow2_limbs<const N: usize>(e: usize) -> Limbs<N> {
        let mut l = [0; N];
        l[e / W as usize] = 1 << (e % W as usize);
        l
    }

    /// `lincomb` against double-and-add for scalars at the pieces' edges
    /// (0, 1, n − 1, 2^(STRIDE·k) and its neighbours, runs of ones across
    /// a boundary, where a NAF carries into the next piece, and the top
    /// digit), every pair of them, with Q = 3G. (From an independent
    /// review of the pieces.)
    fn check_piece_edges<C: Curve<N>, const N: usize>() {
        let g = C::g_tables().unwrap();
        let base = C::point(&C::GX, &C::GY).unwrap();
        let three = C::to_affine(&C::add_affine(&C::double(&C::to_jacobian(&base)), &base));
        let three = three.unwrap();
        let q = C::tables::<Q_POINTS>(&three).unwrap();
        let n = C::Order::M;
        let one = one::<N>();
        let mut scalars = vec![
            [0; N],
            one,
            sub_plain(&n, &one),
            sub_plain(&n, &pow2_limbs(C::STRIDE)),
        ];
        for k in 1..SPLIT {
            let e = C::STRIDE * k;
            scalars.push(pow2_limbs(e));
            scalars.push(sub_plain(&pow2_limbs(e), &one));
            scalars.push(add_plain(&pow2_limbs(e), &one));
            scalars.push(sub_plain(&pow2_limbs(e + 5), &pow2_limbs(e - 5)));
        }
        // 2^BITS − 1 mod n.
        let top = sub_plain(&sub_plain(&pow2_limbs(C::BITS - 1), &n), &one);
        scalars.push(add_plain(&top, &pow2_limbs(C::BITS - 1)));
        let affine = |p: &Jacobian<N>| C::to_affine(p).map(|a| (a.x, a.y));
        for u1 in &scalars {
            assert!(less(u1, &n));
            for u2 in &scalars {
                let got = C::lincomb(g, &q, u1, u2).unwrap();
                let a = naive::<C, N>(&base, u1);
                let want = match C::to_affine(&naive::<C, N>(&three, u2)) {
                    Some(b) => C::add_affine(&a, &b),
                    None => a,
                };
                assert_eq!(affine(&got), affine(&want));
                assert_eq!(got.is_infinity(), want.is_infinity());
            }
        }
    }

    #[test]
    fn the_pieces_agree_with_double_and_add_at_their_edges() {
        check_piece_edges::<p256::P256, 9>();
        check_piece_edges::<p384::P384, 14>();
    }

    #[test]
    fn the_pieces_add_up_where_the_points_meet() {
        check_lincomb::<p256::P256, 9>();
        check_lincomb::<p384::P384, 14>();
    }

    #[test]
    fn the_base_points_are_on_the_curves_and_their_tables_are_right() {
        check_base_point::<p256::P256, 9>();
        check_base_point::<p384::P384, 14>();
    }

    #[test]
    fn inputs_of_the_wrong_length_are_refused() {
        let key = p384::VerifyingKey::new(&[0; 48], &[0; 48]);
        assert!(key.is_none(), "(0, 0) is not on the curve");
        let g = |l: &Limbs<14>| {
            let mut be = [0u8; 48];
            let b = big(l).to_be_bytes_trimmed_vartime();
            be[48 - b.len()..].copy_from_slice(&b);
            be
        };
        let key = p384::VerifyingKey::new(&g(&p384::P384::GX), &g(&p384::P384::GY)).unwrap();
        assert!(!key.verify_prehash(&[1; 48], &[1; 95]));
        assert!(!key.verify_prehash(&[1; 48], &[1; 97]));
        assert!(!key.verify_prehash(&[1; 48], &[]));
        assert!(
            from_be::<9>(&[1; 33]).is_none(),
            "264 bits do not fit 9 limbs"
        );
    }
}
