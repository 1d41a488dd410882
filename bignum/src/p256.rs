//! ECDSA verification over NIST P-256 (FIPS 186-5 §6.4.2): ES256, for the
//! filter's `oidc::jwt`.
//!
//! Why this is hand-written: the `p256` crate (which the filter still uses
//! to *sign* client assertions, in constant time) verifies with complete
//! projective formulas (~13 field products per doubling), 4-bit windows
//! and no tables: 361 µs per ES256 verification in Envoy's V8 (the probe,
//! bench/probe), where issue 19 asks for 200. Verification only ever sees
//! public values (key, message hash, signature), so it may be
//! variable-time, and it is built the way verifiers usually are:
//! - the field in radix 2^29 (nine limbs in `u64`s), Montgomery products
//!   summed in columns with no carries inside (as `lib.rs` does for RSA);
//!   p's limbs are constants with zeros and ones, which the compiler folds
//!   away, and −p⁻¹ ≡ 1 (mod 2^29);
//! - Jacobian coordinates with a = −3 (3M + 5S per doubling) and additions
//!   of affine points (7M + 4S);
//! - u1·G + u2·Q interleaved over one run of doublings, in width-w NAF,
//!   with the odd multiples of G computed once (a static table) and those
//!   of Q once per key (`VerifyingKey::new`);
//! - no inversion at the end: x(R) ≡ r is checked as X ≡ r·Z² (and
//!   (r + n)·Z² when r + n < p); s⁻¹ mod n by the binary extended Euclid
//!   algorithm.
//!
//! `vectors/tests/wycheproof_ecdsa.rs` runs Wycheproof's P-256
//! SHA-256 vectors through it (with its edge cases: r or s out of range,
//! points at infinity on the way, u1·G = ±u2·Q), and compares it with the
//! `p256` crate on random keys and messages.

// Every index below is a loop counter over a constant range inside a
// fixed-size array (N limbs, 2N columns, the tables' constant sizes), or
// is checked first: none can be out of range, and after unrolling the
// compiler drops the bounds checks. The crate's no-panic lint is off for
// this module only for that reason: an edit here must keep it true (the
// tests and the vectors exercise every function, natively and in V8).
#![allow(clippy::indexing_slicing)]

use std::sync::OnceLock;

/// Limbs per number: 9 × 29 = 261 bits.
const N: usize = 9;
/// Bits per limb.
const W: u32 = 29;
const MASK: u64 = (1 << W) - 1;

/// A number below 2^261 in little-endian limbs of 29 bits (each limb below
/// 2^29 except transiently inside an operation).
type Limbs = [u64; N];

/// A modulus below 2^256 with its Montgomery constants, R = 2^261.
trait Modulus {
    const M: Limbs;
    /// −M⁻¹ mod 2^29.
    const N0INV: u64;
    /// R² mod M.
    const R2: Limbs;
}

/// The field prime p = 2^256 − 2^224 + 2^192 + 2^96 − 1.
struct Fp;
impl Modulus for Fp {
    const M: Limbs = from_hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    const N0INV: u64 = 1;
    const R2: Limbs = from_hex("000013fffffff7fffffffffffffffbffffffeffffffffc000000000000000c00");
}

/// The group order n (scalars).
struct Order;
impl Modulus for Order {
    const M: Limbs = from_hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    const N0INV: u64 = 234_929_231;
    const R2: Limbs = from_hex("84b6556a65587f0616c8e4adafb165861f11fc5bb2d31a9945e9cfeeb48d9ef5");
}

/// The curve's b and base point G (SEC 2 §2.4.2), as plain numbers.
const B: Limbs = from_hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
const GX: Limbs = from_hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
const GY: Limbs = from_hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");

/// R mod p: the Montgomery form of 1 in the field.
const R_MOD_P: Limbs = from_hex("0000001fffffffdfffffffffffffffffffffffe0000000000000000000000020");

const ZERO: Limbs = [0; N];
const ONE: Limbs = {
    let mut one = ZERO;
    one[0] = 1;
    one
};

/// Width of the NAF for u1 (multiples of G: 2^(7−2) = 32 in the table)
/// and for u2 (multiples of Q: 16 per key).
const WG: u32 = 7;
const WQ: u32 = 6;
const G_POINTS: usize = 1 << (WG - 2);
const Q_POINTS: usize = 1 << (WQ - 2);
/// NAF digits of a scalar below 2^256.
const DIGITS: usize = 257;

/// 64 hex digits (a big-endian 256-bit number) as limbs. Only constants
/// call it, so a bad digit stops the build, never a request.
#[allow(clippy::panic)]
const fn from_hex(hex: &str) -> Limbs {
    let hex = hex.as_bytes();
    let mut be = [0u8; 32];
    let mut i = 0;
    while i < 64 {
        let c = hex[i];
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => panic!("not a hex digit"),
        };
        be[i / 2] |= v << (4 * (1 - i % 2));
        i += 1;
    }
    from_be(&be)
}

/// 32 big-endian bytes as limbs.
const fn from_be(be: &[u8; 32]) -> Limbs {
    let mut out = ZERO;
    let mut bit = 0;
    while bit < 256 {
        let b = (be[31 - bit / 8] >> (bit % 8)) & 1;
        out[bit / W as usize] |= (b as u64) << (bit % W as usize);
        bit += 1;
    }
    out
}

// ------------------------------------------------------------ numbers

/// a < b.
fn less(a: &Limbs, b: &Limbs) -> bool {
    for i in (0..N).rev() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
    }
    false
}

fn is_zero(a: &Limbs) -> bool {
    a.iter().all(|&l| l == 0)
}

/// a − b for a ≥ b.
fn sub_plain(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = ZERO;
    let mut borrow = 0i64;
    for i in 0..N {
        let v = a[i] as i64 - b[i] as i64 - borrow;
        borrow = i64::from(v < 0);
        out[i] = (v + (borrow << W)) as u64;
    }
    out
}

/// a + b, for a sum below 2^261.
fn add_plain(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = ZERO;
    let mut carry = 0;
    for i in 0..N {
        let v = a[i] + b[i] + carry;
        out[i] = v & MASK;
        carry = v >> W;
    }
    out
}

fn half(a: &Limbs) -> Limbs {
    let mut out = ZERO;
    for i in 0..N {
        let high = if i + 1 < N { a[i + 1] & 1 } else { 0 };
        out[i] = (a[i] >> 1) | (high << (W - 1));
    }
    out
}

// ------------------------------------------------------- modular arithmetic

/// a mod M for a < 2M.
#[inline(always)]
fn reduce_once<M: Modulus>(a: Limbs) -> Limbs {
    if less(&a, &M::M) {
        a
    } else {
        sub_plain(&a, &M::M)
    }
}

/// a + b mod M (a, b < M).
#[inline(always)]
fn add<M: Modulus>(a: &Limbs, b: &Limbs) -> Limbs {
    reduce_once::<M>(add_plain(a, b))
}

/// a − b mod M (a, b < M), as (a + M) − b.
#[inline(always)]
fn sub<M: Modulus>(a: &Limbs, b: &Limbs) -> Limbs {
    let mut out = ZERO;
    let mut carry = 0i64;
    for i in 0..N {
        let v = (a[i] + M::M[i]) as i64 - b[i] as i64 + carry;
        out[i] = (v as u64) & MASK;
        carry = v >> W;
    }
    reduce_once::<M>(out)
}

/// a·b·R⁻¹ mod M for a·b < M·R (both below M, or one below M and the
/// other any 9 limbs): the product's columns as `u64` sums of 58-bit limb
/// products (at most 9 + 9 of them per column, < 2^63), then one
/// Montgomery reduction row per limb.
#[inline(never)]
fn mul<M: Modulus>(a: &Limbs, b: &Limbs) -> Limbs {
    let mut t = [0u64; 2 * N];
    for i in 0..N {
        for j in 0..N {
            t[i + j] += a[i] * b[j];
        }
    }
    redc::<M>(t)
}

/// a²·R⁻¹ mod M: each cross product once, doubled.
#[inline(never)]
fn sqr<M: Modulus>(a: &Limbs) -> Limbs {
    let mut t = [0u64; 2 * N];
    for i in 0..N {
        t[2 * i] += a[i] * a[i];
        let twice = 2 * a[i];
        for j in i + 1..N {
            t[i + j] += twice * a[j];
        }
    }
    redc::<M>(t)
}

/// t·R⁻¹ mod M for t < M·R: row i adds m_i·M so that column i's low 29
/// bits vanish, and carries the rest into column i + 1.
#[inline(never)]
fn redc<M: Modulus>(mut t: [u64; 2 * N]) -> Limbs {
    for i in 0..N {
        let m = ((t[i] & MASK) * M::N0INV) & MASK;
        for j in 0..N {
            t[i + j] += m * M::M[j];
        }
        t[i + 1] += t[i] >> W;
    }
    let mut out = ZERO;
    let mut carry = 0;
    for i in 0..N {
        let v = t[N + i] + carry;
        out[i] = v & MASK;
        carry = v >> W;
    }
    reduce_once::<M>(out)
}

/// a·R mod M (a < M): into Montgomery form.
fn to_mont<M: Modulus>(a: &Limbs) -> Limbs {
    mul::<M>(a, &M::R2)
}

/// a⁻¹ mod M for 0 < a < M, M prime (binary extended Euclid, HAC 14.61):
/// x1·a ≡ u and x2·a ≡ v throughout.
fn invert<M: Modulus>(a: &Limbs) -> Option<Limbs> {
    if is_zero(a) || !less(a, &M::M) {
        return None;
    }
    let (mut u, mut v) = (*a, M::M);
    let (mut x1, mut x2) = (ONE, ZERO);
    let halve = |x: &Limbs| {
        if x[0] & 1 == 0 {
            half(x)
        } else {
            half(&add_plain(x, &M::M))
        }
    };
    while u != ONE && v != ONE {
        // Only a modulus that is not prime could bring u or v to zero (the
        // halving below would then never end): refuse rather than loop.
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
            x2 = sub::<M>(&x2, &x1);
        } else {
            u = sub_plain(&u, &v);
            x1 = sub::<M>(&x1, &x2);
        }
    }
    Some(if u == ONE { x1 } else { x2 })
}

/// The Montgomery form of a⁻¹ from that of a: (aR)⁻¹ = a⁻¹R⁻¹, and each
/// product with R² multiplies by R.
fn invert_mont<M: Modulus>(a: &Limbs) -> Option<Limbs> {
    let inv = invert::<M>(a)?;
    Some(to_mont::<M>(&to_mont::<M>(&inv)))
}

// The field's operations by name; all in Montgomery form.
fn fadd(a: &Limbs, b: &Limbs) -> Limbs {
    add::<Fp>(a, b)
}
fn fsub(a: &Limbs, b: &Limbs) -> Limbs {
    sub::<Fp>(a, b)
}
fn fmul(a: &Limbs, b: &Limbs) -> Limbs {
    mul::<Fp>(a, b)
}
fn fsqr(a: &Limbs) -> Limbs {
    sqr::<Fp>(a)
}

// ------------------------------------------------------------- the curve

/// An affine point, coordinates in Montgomery form.
#[derive(Clone, Copy)]
struct Affine {
    x: Limbs,
    y: Limbs,
}

/// A point in Jacobian coordinates (X/Z², Y/Z³), in Montgomery form;
/// Z = 0 is the point at infinity.
#[derive(Clone, Copy)]
struct Jacobian {
    x: Limbs,
    y: Limbs,
    z: Limbs,
}

const INFINITY: Jacobian = Jacobian {
    x: ZERO,
    y: ZERO,
    z: ZERO,
};

impl Affine {
    /// From plain coordinates, when they are below p and on the curve
    /// y² = x³ − 3x + b (the group has prime order: any such point is a
    /// valid public key).
    fn new(x: &Limbs, y: &Limbs) -> Option<Affine> {
        if !less(x, &Fp::M) || !less(y, &Fp::M) {
            return None;
        }
        let (x, y) = (to_mont::<Fp>(x), to_mont::<Fp>(y));
        let x3 = fmul(&fsqr(&x), &x);
        let three_x = fadd(&fadd(&x, &x), &x);
        let rhs = fadd(&fsub(&x3, &three_x), &to_mont::<Fp>(&B));
        (fsqr(&y) == rhs).then_some(Affine { x, y })
    }

    fn neg(&self) -> Affine {
        Affine {
            x: self.x,
            y: fsub(&ZERO, &self.y),
        }
    }

    fn to_jacobian(self) -> Jacobian {
        Jacobian {
            x: self.x,
            y: self.y,
            z: R_MOD_P,
        }
    }
}

impl Jacobian {
    fn is_infinity(&self) -> bool {
        is_zero(&self.z)
    }

    /// The affine point (X/Z², Y/Z³), given 1/Z.
    fn scaled(&self, zinv: &Limbs) -> Affine {
        let zinv2 = fsqr(zinv);
        Affine {
            x: fmul(&self.x, &zinv2),
            y: fmul(&self.y, &fmul(&zinv2, zinv)),
        }
    }

    /// 2P, "dbl-2001-b" (a = −3): 3M + 5S.
    fn double(&self) -> Jacobian {
        if self.is_infinity() {
            return *self;
        }
        let delta = fsqr(&self.z);
        let gamma = fsqr(&self.y);
        let beta = fmul(&self.x, &gamma);
        let t = fmul(&fsub(&self.x, &delta), &fadd(&self.x, &delta));
        let alpha = fadd(&fadd(&t, &t), &t);
        let beta2 = fadd(&beta, &beta);
        let beta4 = fadd(&beta2, &beta2);
        let beta8 = fadd(&beta4, &beta4);
        let x = fsub(&fsqr(&alpha), &beta8);
        let yz = fadd(&self.y, &self.z);
        let z = fsub(&fsub(&fsqr(&yz), &gamma), &delta);
        let g2 = fsqr(&gamma);
        let g4 = fadd(&g2, &g2);
        let g8 = fadd(&g4, &g4);
        let y = fsub(&fmul(&alpha, &fsub(&beta4, &x)), &fadd(&g8, &g8));
        Jacobian { x, y, z }
    }

    /// P + Q for an affine Q, "madd-2007-bl": 7M + 4S; doubles when Q = P
    /// and gives infinity when Q = −P.
    fn add_affine(&self, q: &Affine) -> Jacobian {
        if self.is_infinity() {
            return q.to_jacobian();
        }
        let z1z1 = fsqr(&self.z);
        let u2 = fmul(&q.x, &z1z1);
        let s2 = fmul(&q.y, &fmul(&self.z, &z1z1));
        let h = fsub(&u2, &self.x);
        let s = fsub(&s2, &self.y);
        if is_zero(&h) {
            return if is_zero(&s) { self.double() } else { INFINITY };
        }
        let r = fadd(&s, &s);
        let hh = fsqr(&h);
        let hh2 = fadd(&hh, &hh);
        let i = fadd(&hh2, &hh2);
        let j = fmul(&h, &i);
        let v = fmul(&self.x, &i);
        let x = fsub(&fsub(&fsqr(&r), &j), &fadd(&v, &v));
        let y1j = fmul(&self.y, &j);
        let y = fsub(&fmul(&r, &fsub(&v, &x)), &fadd(&y1j, &y1j));
        let zh = fadd(&self.z, &h);
        let z = fsub(&fsub(&fsqr(&zh), &z1z1), &hh);
        Jacobian { x, y, z }
    }
}

/// P, 3P, 5P, … (2k − 1)P in affine coordinates: one inversion for 2P,
/// one for the whole table (Montgomery's trick).
fn odd_multiples<const K: usize>(p: &Affine) -> Option<[Affine; K]> {
    let two_p = to_affine(&p.to_jacobian().double())?;
    let mut points = [p.to_jacobian(); K];
    for k in 1..K {
        points[k] = points[k - 1].add_affine(&two_p);
    }
    // prefix[k] = z_0 ⋯ z_k; one inversion of the whole product, then
    // back down the table peeling one z off at a time.
    let mut prefix = [ZERO; K];
    let mut acc = R_MOD_P;
    for k in 0..K {
        acc = fmul(&acc, &points[k].z);
        prefix[k] = acc;
    }
    let mut inv = invert_mont::<Fp>(&acc)?;
    let mut out = [*p; K];
    for k in (0..K).rev() {
        let zinv = if k == 0 {
            inv
        } else {
            fmul(&inv, &prefix[k - 1])
        };
        inv = fmul(&inv, &points[k].z);
        out[k] = points[k].scaled(&zinv);
    }
    Some(out)
}

fn to_affine(p: &Jacobian) -> Option<Affine> {
    Some(p.scaled(&invert_mont::<Fp>(&p.z)?))
}

/// The odd multiples of G, computed on first use.
fn g_table() -> Option<&'static [Affine; G_POINTS]> {
    static TABLE: OnceLock<Option<[Affine; G_POINTS]>> = OnceLock::new();
    TABLE
        .get_or_init(|| odd_multiples(&Affine::new(&GX, &GY)?))
        .as_ref()
}

/// Bits pos..pos + count (count ≤ 8) of a plain number.
fn bits(k: &Limbs, pos: usize, count: usize) -> u32 {
    let (limb, shift) = (pos / W as usize, pos % W as usize);
    let low = k.get(limb).copied().unwrap_or(0) >> shift;
    let high = k.get(limb + 1).copied().unwrap_or(0) << (W as usize - shift);
    ((low | high) & ((1 << count) - 1)) as u32
}

/// Width-w NAF of a scalar below 2^256: digits odd and below 2^(w−1) in
/// absolute value, any w consecutive digits with at most one nonzero.
fn wnaf(k: &Limbs, w: u32) -> [i8; DIGITS] {
    let mut naf = [0i8; DIGITS];
    let (mut bit, mut carry) = (0usize, 0u32);
    while bit < DIGITS {
        if bits(k, bit, 1) == carry {
            bit += 1;
            continue;
        }
        let now = (w as usize).min(DIGITS - bit);
        let mut word = (bits(k, bit, now) + carry) as i32;
        carry = ((word >> (w - 1)) & 1) as u32;
        word -= (carry << w) as i32;
        naf[bit] = word as i8;
        bit += now;
    }
    naf
}

/// The table's entry for a nonzero odd digit d: |d|·P, negated for d < 0.
fn lookup(table: &[Affine], d: i8) -> Option<Affine> {
    let p = table.get(usize::from(d.unsigned_abs() / 2))?;
    Some(if d < 0 { p.neg() } else { *p })
}

/// A P-256 public key, with the odd multiples of it that verification adds.
#[derive(Clone)]
pub struct VerifyingKey {
    table: Box<[Affine; Q_POINTS]>,
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("p256::VerifyingKey")
    }
}

impl VerifyingKey {
    /// From the big-endian affine coordinates; `None` unless (x, y) is a
    /// point of the curve.
    pub fn new(x: &[u8; 32], y: &[u8; 32]) -> Option<VerifyingKey> {
        let q = Affine::new(&from_be(x), &from_be(y))?;
        Some(VerifyingKey {
            table: Box::new(odd_multiples(&q)?),
        })
    }

    /// ECDSA verification of a SHA-256 `hash` against `sig` = r ‖ s (32
    /// big-endian bytes each, as JWS carries it).
    pub fn verify_prehash(&self, hash: &[u8; 32], sig: &[u8]) -> bool {
        self.verify(hash, sig).unwrap_or(false)
    }

    fn verify(&self, hash: &[u8; 32], sig: &[u8]) -> Option<bool> {
        let (r, s) = sig.split_at_checked(32)?;
        let r = from_be(r.try_into().ok()?);
        let s = from_be(s.try_into().ok()?);
        if is_zero(&r) || !less(&r, &Order::M) {
            return Some(false);
        }
        // e may be ≥ n (it is below 2^256); `mul` takes it as it is, since
        // e·w < n·R for w < n.
        let e = from_be(hash);
        let w = invert::<Order>(&s)?; // None for s = 0 or s ≥ n
        // mul gives e·w·R⁻¹; a product with R² makes it e·w.
        let u1 = to_mont::<Order>(&mul::<Order>(&e, &w));
        let u2 = to_mont::<Order>(&mul::<Order>(&r, &w));
        let (n1, n2) = (wnaf(&u1, WG), wnaf(&u2, WQ));
        let g = g_table()?;
        let top = (0..DIGITS).rev().find(|&i| n1[i] != 0 || n2[i] != 0)?;
        let mut acc = INFINITY;
        for i in (0..=top).rev() {
            acc = acc.double();
            if n1[i] != 0 {
                acc = acc.add_affine(&lookup(g, n1[i])?);
            }
            if n2[i] != 0 {
                acc = acc.add_affine(&lookup(&self.table[..], n2[i])?);
            }
        }
        if acc.is_infinity() {
            return Some(false);
        }
        // x(R) = X/Z²; x(R) mod n = r means x(R) = r or, when r + n < p,
        // x(R) = r + n.
        let z2 = fsqr(&acc.z);
        if fmul(&to_mont::<Fp>(&r), &z2) == acc.x {
            return Some(true);
        }
        let r_n = add_plain(&r, &Order::M);
        Some(less(&r_n, &Fp::M) && fmul(&to_mont::<Fp>(&r_n), &z2) == acc.x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero};

    fn big(a: &Limbs) -> BoxedUint {
        let mut be = [0u8; 32];
        for bit in 0..256 {
            if (a[bit / 29] >> (bit % 29)) & 1 == 1 {
                be[31 - bit / 8] |= 1 << (bit % 8);
            }
        }
        BoxedUint::from_be_slice_vartime(&be)
    }

    fn limbs(x: &BoxedUint) -> Limbs {
        let bytes = x.to_be_bytes_trimmed_vartime();
        let mut be = [0u8; 32];
        be[32 - bytes.len()..].copy_from_slice(&bytes);
        from_be(&be)
    }

    /// Deterministic pseudo-random limbs below 2^256 (xorshift64).
    fn random(seed: &mut u64) -> Limbs {
        let mut be = [0u8; 32];
        for b in be.iter_mut() {
            *seed ^= *seed << 13;
            *seed ^= *seed >> 7;
            *seed ^= *seed << 17;
            *b = *seed as u8;
        }
        from_be(&be)
    }

    fn check_field<M: Modulus>() {
        let m = NonZero::new(big(&M::M)).unwrap();
        let reduce = |x: BoxedUint| limbs(&x.rem_vartime(&m));
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..2000 {
            let (mut a, mut b) = (random(&mut seed), random(&mut seed));
            if round % 7 == 0 {
                a = sub_plain(&M::M, &ONE);
            }
            if round % 11 == 0 {
                b = ZERO;
            }
            let (a, b) = (reduce(big(&a)), reduce(big(&b)));
            let (ma, mb) = (to_mont::<M>(&a), to_mont::<M>(&b));
            let back = |x: &Limbs| mul::<M>(x, &ONE);
            assert_eq!(back(&ma), a, "Montgomery form round trip");
            assert_eq!(
                back(&mul::<M>(&ma, &mb)),
                reduce(big(&a).concatenating_mul(&big(&b)))
            );
            assert_eq!(
                back(&sqr::<M>(&ma)),
                reduce(big(&a).concatenating_mul(&big(&a)))
            );
            let sum = big(&a).concatenating_add(big(&b));
            assert_eq!(back(&add::<M>(&ma, &mb)), reduce(sum));
            let diff = big(&a).concatenating_add(big(&M::M)).wrapping_sub(big(&b));
            assert_eq!(back(&sub::<M>(&ma, &mb)), reduce(diff));
            if a != ZERO {
                let inv = invert::<M>(&a).unwrap();
                assert_eq!(reduce(big(&a).concatenating_mul(&big(&inv))), ONE);
                assert_eq!(back(&mul::<M>(&ma, &invert_mont::<M>(&ma).unwrap())), ONE);
            }
        }
        assert!(invert::<M>(&ZERO).is_none());
        assert!(invert::<M>(&M::M).is_none());
    }

    #[test]
    fn field_and_scalar_arithmetic_match_crypto_bigint() {
        check_field::<Fp>();
        check_field::<Order>();
    }

    /// 2^k, with room for products of two such numbers.
    fn pow2(k: usize) -> BoxedUint {
        let mut be = [0u8; 96];
        be[95 - k / 8] = 1 << (k % 8);
        BoxedUint::from_be_slice_vartime(&be)
    }

    #[test]
    fn constants_are_the_curve_s() {
        let p = pow2(256)
            .wrapping_sub(pow2(224))
            .wrapping_add(pow2(192))
            .wrapping_add(pow2(96))
            .wrapping_sub(BoxedUint::one());
        assert_eq!(limbs(&p), Fp::M);
        assert_eq!(to_mont::<Fp>(&ONE), R_MOD_P);
        assert_eq!((Fp::M[0] * Fp::N0INV + 1) & MASK, 0, "-p^-1 mod 2^29");
        assert_eq!((Order::M[0] * Order::N0INV + 1) & MASK, 0, "-n^-1 mod 2^29");
        for (r2, m) in [(Fp::R2, Fp::M), (Order::R2, Order::M)] {
            let m = NonZero::new(big(&m)).unwrap();
            let r = pow2(261).rem_vartime(&m);
            assert_eq!(limbs(&r.concatenating_mul(&r).rem_vartime(&m)), r2);
        }
    }

    #[test]
    fn naf_digits_rebuild_the_scalar() {
        let mut seed = 42u64;
        for _ in 0..500 {
            let k = random(&mut seed);
            let k = limbs(&big(&k).rem_vartime(&NonZero::new(big(&Order::M)).unwrap()));
            for w in [WG, WQ] {
                let naf = wnaf(&k, w);
                let mut last: Option<usize> = None;
                // Horner's rule mod n, from the top digit.
                let mut acc = ZERO;
                for i in (0..DIGITS).rev() {
                    acc = add::<Order>(&acc, &acc);
                    let d = naf[i];
                    if d == 0 {
                        continue;
                    }
                    assert!(d % 2 != 0 && i32::from(d).abs() < 1 << (w - 1));
                    if let Some(l) = last {
                        assert!(l - i >= w as usize, "digits too close");
                    }
                    last = Some(i);
                    let mut small = ZERO;
                    small[0] = u64::from(d.unsigned_abs());
                    acc = if d > 0 {
                        add::<Order>(&acc, &small)
                    } else {
                        sub::<Order>(&acc, &small)
                    };
                }
                assert_eq!(acc, k);
            }
        }
    }

    #[test]
    fn the_base_point_is_on_the_curve_and_its_table_is_right() {
        let g = Affine::new(&GX, &GY).unwrap();
        let table = g_table().unwrap();
        // 3G by doubling and adding, against the table's second entry.
        let three = to_affine(&g.to_jacobian().double().add_affine(&g)).unwrap();
        assert!(three.x == table[1].x && three.y == table[1].y);
        // Every entry is on the curve.
        for p in table {
            let back = |x: &Limbs| mul::<Fp>(x, &ONE);
            assert!(Affine::new(&back(&p.x), &back(&p.y)).is_some());
        }
        // n·G = infinity: (n − 1)·G + G, through a NAF of n − 1.
        let n_minus_1 = sub_plain(&Order::M, &ONE);
        let naf = wnaf(&n_minus_1, WG);
        let mut acc = INFINITY;
        for i in (0..DIGITS).rev() {
            acc = acc.double();
            if naf[i] != 0 {
                acc = acc.add_affine(&lookup(table, naf[i]).unwrap());
            }
        }
        assert!(!acc.is_infinity());
        assert!(acc.add_affine(&g).is_infinity());
        // Off the curve, or a coordinate not below p: refused.
        assert!(Affine::new(&GX, &GX).is_none());
        assert!(Affine::new(&Fp::M, &GY).is_none());
    }
}
