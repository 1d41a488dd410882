//! Montgomery arithmetic modulo a public RSA modulus: just enough to raise
//! a signature to the public exponent (RSAVP1, RFC 8017 §5.2.2) for the
//! filter's `oidc::rsa`. (ECDSA verification, P-256 and P-384, is in
//! `ecdsa.rs`, `p256.rs` and `p384.rs`.)
//!
//! Why this is hand-written: RS256 verification is the filter's hottest
//! piece of work, and in Envoy's V8 the general-purpose crates are slow on
//! wasm32. crypto-bigint (which the `rsa` crate runs on) uses 64-bit limbs
//! there, so every limb product is an emulated 64×64→128 multiplication:
//! its `FixedMontyForm<U2048>` took ~133–166 µs per RS256 verification in
//! the probe (bench/probe), ~127 µs even when built with 32-bit limbs. Here
//! numbers are in radix 2^29 (one limb per `u32`) and a Montgomery product
//! adds limb products (< 2^58) into `u64` column sums row by row, with no
//! carry handling in the inner loop: carries are propagated once every 31
//! passes of a product over the columns (`ROWS`), and in a square and its
//! reduction before a column could take more than 62 products
//! (`PRODUCTS`: every 15 passes of four rows). Squaring, 16 of the 18 products of a
//! verification with e = 65537, sums each cross product once, then
//! doubles the columns and adds the squares in one pass. Each pass over
//! the columns adds several products to each (a_i·b + m_i·n in a product;
//! four rows at a time in a square and its reduction), so that a column is
//! loaded and stored once for all of them: ~41 → ~32.5 µs per RS256
//! verification in V8 with two rows at a time, and four instead of two
//! took RS256 in the probe from 0.162–0.169 to 0.150–0.155 of the `rsa`
//! crate's time (see `simd`).
//! Entering and leaving Montgomery form costs one product, with a per-key
//! constant (`rsavp1`, for PSS), or, where the message is known but for
//! its hash (PKCS#1 v1.5), a product as short as the hash (`matches`):
//! RS256 in the probe 46.2–46.7 → 42.7–44.0 µs (0.174–0.179 → 0.167–0.169
//! of the `rsa` crate's time in the same runs, 4 runs alternating). The
//! whole module is variable-time on purpose: a verification only ever
//! sees public values (the modulus, the exponent, the signature), never a
//! secret.
//!
//! The API is a few non-generic functions, so that their code is generated
//! here, at this crate's opt-level (3, see the root Cargo.toml), and not
//! in the caller's ("z").
//!
//! `vectors/tests/wycheproof_rsa.rs` runs the Wycheproof PKCS#1 v1.5
//! and PSS vectors (2048 to 4096 bits) through it, and the unit tests below
//! compare it with crypto-bigint up to 8192 bits.

// A panic would kill the wasm VM: as in the filter's crate, nothing may
// unwrap, index or panic outside tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

mod ecdsa;
pub mod p256;
pub mod p384;

/// Bits per limb.
const W: u32 = 29;
const MASK: u64 = (1 << W) - 1;
/// Passes of `mul` over the column sums between two normalizations. A pass
/// adds two products below 2^(2W) to a column (a_i·b_j + m_i·n_j), so
/// 2^(63−2W) − 1 passes, plus a normalized column and the carries, stay
/// below 2^64.
const ROWS: usize = (1 << (63 - 2 * W)) - 1;
/// The products below 2^(2W) a column can take between two normalizations
/// (`ROWS` passes of two): `sqr` and `reduce` count them (`Budget`).
const PRODUCTS: usize = 2 * ROWS;
/// The longest number whose square's columns need no carrying while the
/// cross products are added: a column gets at most len / 2 of them, and
/// 2^(64−2W) − 1 products below 2^(2W) stay below 2^64 (see `sqr`).
const SQR_FLAT_LEN: usize = 2 * ((1 << (64 - 2 * W)) - 1) + 1;

/// An odd modulus with its Montgomery constants (R = 2^(29·len)).
struct Modulus {
    /// Little-endian limbs of 29 bits.
    n: Vec<u32>,
    /// `n` and three zero limbs: `reduce_four`'s four rows read it from
    /// four offsets, so that the later rows' products past n's top limb
    /// are zeros.
    padded: Vec<u32>,
    /// −n⁻¹ mod 2^29.
    n0inv: u64,
    /// R² mod n: multiplying by it enters Montgomery form.
    r2: Vec<u32>,
    bits: usize,
}

/// An RSA public key (n, e) ready for RSAVP1.
pub struct PublicKey {
    modulus: Modulus,
    e: u64,
    /// R^e mod n: see `rsavp1`.
    fix: Vec<u32>,
    /// Modulus length in bytes.
    k: usize,
}

impl PublicKey {
    /// From a big-endian modulus and the exponent; `None` when the modulus
    /// is even or below 3, or e < 2.
    pub fn new(n: &[u8], e: u64) -> Option<PublicKey> {
        let modulus = Modulus::new(n)?;
        if e < 2 {
            return None;
        }
        // The Montgomery form of R^(e−1) is R^e.
        let fix = modulus.pow_monty(&modulus.r2, e - 1);
        Some(PublicKey {
            k: modulus.bits.div_ceil(8),
            modulus,
            e,
            fix,
        })
    }

    /// Bit length of the modulus.
    pub fn bits(&self) -> usize {
        self.modulus.bits
    }

    /// Length of the modulus in bytes (k).
    pub fn byte_len(&self) -> usize {
        self.k
    }

    /// RSAVP1 (RFC 8017 §5.2.2): `s^e mod n` as k big-endian bytes, for a
    /// big-endian `s` (leading zeros allowed); `None` when `s` is not below
    /// the modulus.
    ///
    /// `s` itself is taken as the Montgomery form of s·R⁻¹, so raising it
    /// gives the Montgomery form of (s·R⁻¹)^e, i.e. s^e·R^(1−e); one product
    /// with R^e (`fix`) leaves s^e. That saves the product that would enter
    /// Montgomery form.
    pub fn rsavp1(&self, s: &[u8]) -> Option<Vec<u8>> {
        let m = &self.modulus;
        let raised = self.raise(s)?;
        let mut out = vec![0u32; m.n.len()];
        m.mul(&raised, &self.fix, &mut out, &mut Scratch::new(m.n.len()));
        Some(to_be(&out, self.k))
    }

    /// s^e in Montgomery form (s^e·R^(1−e) mod n), where `rsavp1` and
    /// `matches` start: `None` unless s (big-endian) is below n.
    fn raise(&self, s: &[u8]) -> Option<Vec<u32>> {
        let m = &self.modulus;
        let s = from_be(strip_zeros(s), m.n.len())?;
        less(&s, &m.n).then(|| m.pow_monty(&s, self.e))
    }
}

/// What `PublicKey::matches` compares a signature with, for one key:
/// messages of k bytes made of a fixed part and a tail of `tail_len`
/// bytes (for RSASSA-PKCS1-v1_5, `00 01 FF..FF 00 ‖ DigestInfo` and the
/// hash), in the Montgomery world of the raised signature.
pub struct Expected {
    /// fixed·R^(1−e) mod n, the fixed part followed by zeros.
    fixed: Vec<u32>,
    /// R^(1−e)·2^(29·rows) mod n: a short product with it takes a tail
    /// of `rows` limbs to tail·R^(1−e).
    tail_factor: Vec<u32>,
    rows: usize,
    tail_len: usize,
}

impl PublicKey {
    /// Precomputes the check of `matches` for messages `fixed ‖ tail`
    /// (k bytes, the tail `tail_len` of them): ~20 Montgomery products,
    /// about a verification's worth, once per key and message layout.
    /// `None` unless every such message is below the modulus (for then
    /// s^e mod n = m and s^e ≡ m (mod n) are the same check).
    pub fn expect(&self, fixed: &[u8], tail_len: usize) -> Option<Expected> {
        let m = &self.modulus;
        let len = m.n.len();
        if fixed.len().checked_add(tail_len)? != self.k {
            return None;
        }
        let largest: Vec<u8> = fixed
            .iter()
            .copied()
            .chain(std::iter::repeat_n(0xff, tail_len))
            .collect();
        if !less(&from_be(&largest, len)?, &m.n) {
            return None;
        }
        let rows = (8 * tail_len).div_ceil(W as usize).max(1);
        if rows > len {
            return None;
        }
        // 1 is the Montgomery form of R⁻¹: raised to e − 1, the Montgomery
        // form of R^(1−e), that is R^(2−e) mod n; a product with a number
        // x then gives x·R^(1−e).
        let mut one = vec![0u32; len];
        *one.first_mut()? = 1;
        let factor = m.pow_monty(&one, self.e - 1);
        let mut t = Scratch::new(len);
        let mut with_zeros = fixed.to_vec();
        with_zeros.resize(self.k, 0);
        let mut fixed = vec![0u32; len];
        m.mul(&from_be(&with_zeros, len)?, &factor, &mut fixed, &mut t);
        // 2^(29·rows) < n, as a number of `len` limbs.
        let mut shift = vec![0u32; len];
        *shift.get_mut(rows)? = 1;
        let mut tail_factor = vec![0u32; len];
        m.mul(&shift, &factor, &mut tail_factor, &mut t);
        Some(Expected {
            fixed,
            tail_factor,
            rows,
            tail_len,
        })
    }

    /// Whether s^e mod n is the message `fixed ‖ tail` that `expected`
    /// was made for (RSAVP1 and the comparison of RFC 8017 §8.2.2): false
    /// when `s` is not below the modulus or the tail has another length.
    ///
    /// `rsavp1` leaves the raised signature s^e·R^(1−e) and multiplies it
    /// by R^e, a product as long as the modulus. Here the message is
    /// brought to the same factor instead: its fixed part was, once, and
    /// its tail (a hash: 9 limbs for SHA-256 against 71 of a 2048-bit
    /// modulus) takes a product of that many rows.
    pub fn matches(&self, s: &[u8], expected: &Expected, tail: &[u8]) -> bool {
        let m = &self.modulus;
        let len = m.n.len();
        if tail.len() != expected.tail_len {
            return false;
        }
        let (Some(raised), Some(tail)) = (self.raise(s), from_be(tail, expected.rows)) else {
            return false;
        };
        let mut message = vec![0u32; len];
        m.mul(
            &tail,
            &expected.tail_factor,
            &mut message,
            &mut Scratch::new(len),
        );
        m.add_assign(&mut message, &expected.fixed);
        message == raised
    }
}

impl Modulus {
    /// From a big-endian number; `None` when it is even or below 3.
    fn new(be: &[u8]) -> Option<Modulus> {
        let be = strip_zeros(be);
        let top = *be.first()?;
        let bits = be.len() * 8 - top.leading_zeros() as usize;
        let len = bits.div_ceil(W as usize);
        let n = from_be(be, len)?;
        let n0 = u64::from(*n.first()?);
        if n0 & 1 == 0 || bits < 2 {
            return None;
        }
        // Newton's iteration for n0⁻¹ mod 2^29: x = n0 is right to 3 bits
        // (n0² ≡ 1 mod 8 for odd n0); each step doubles the bits.
        let mut inv = n0;
        for _ in 0..4 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(n0.wrapping_mul(inv)));
        }
        let mut padded = n.clone();
        padded.extend([0; 3]);
        let mut m = Modulus {
            n,
            padded,
            n0inv: inv.wrapping_neg() & MASK,
            r2: Vec::new(),
            bits,
        };
        m.r2 = m.r_squared();
        Some(m)
    }

    /// R² mod n, as the Montgomery form of R = 2^(29·len): 2R mod n (the
    /// Montgomery form of 2) by doubling 2^(bits−1) < n, then raised to
    /// 29·len with Montgomery products.
    fn r_squared(&self) -> Vec<u32> {
        let len = self.n.len();
        let mut x = vec![0u32; len];
        let top = self.bits - 1;
        if let Some(limb) = x.get_mut(top / W as usize) {
            *limb = 1 << (top % W as usize);
        }
        for _ in top..=W as usize * len {
            self.double(&mut x);
        }
        self.pow_monty(&x, (W as usize * len) as u64)
    }

    /// x = x + y mod n, for x, y < n.
    fn add_assign(&self, x: &mut [u32], y: &[u32]) {
        let mut carry = 0u32;
        for (limb, &add) in x.iter_mut().zip(y) {
            let v = *limb + add + carry;
            carry = v >> W;
            *limb = v & MASK as u32;
        }
        if carry != 0 || !less(x, &self.n) {
            sub_assign(x, &self.n);
        }
    }

    /// x = 2x mod n, for x < n.
    fn double(&self, x: &mut [u32]) {
        let copy = x.to_vec();
        self.add_assign(x, &copy);
    }

    /// x^e in Montgomery form, left to right, for e ≥ 1.
    fn pow_monty(&self, x: &[u32], e: u64) -> Vec<u32> {
        let mut t = Scratch::new(self.n.len());
        let mut acc = x.to_vec();
        let mut tmp = vec![0u32; self.n.len()];
        for bit in (0..63u32.saturating_sub(e.leading_zeros())).rev() {
            self.sqr(&acc, &mut tmp, &mut t);
            std::mem::swap(&mut acc, &mut tmp);
            if (e >> bit) & 1 == 1 {
                self.mul(&acc, x, &mut tmp, &mut t);
                std::mem::swap(&mut acc, &mut tmp);
            }
        }
        acc
    }

    /// out = a·b·R⁻¹ mod n (a, b < n), row by row: row i adds a_i·b and
    /// m_i·n to the columns t[i..i + len], with m_i chosen so that column
    /// i's low 29 bits vanish; column i's high part then carries into
    /// column i + 1. Columns are `u64` sums of 58-bit products, normalized
    /// back to 29 bits every `ROWS` rows.
    ///
    /// With `a` shorter than the modulus (l limbs), the same rows give
    /// a·b·2^(−29l) mod n: `PublicKey::matches`'s short product.
    fn mul(&self, a: &[u32], b: &[u32], out: &mut [u32], t: &mut Scratch) {
        let b0 = u64::from(b.first().copied().unwrap_or_default());
        t.t.iter_mut().for_each(|c| *c = 0);
        for (i, &x) in a.iter().enumerate() {
            let x = u64::from(x);
            let Some(row) = t.t.get_mut(i..) else { return };
            let Some((first, _)) = row.split_first() else {
                return;
            };
            let m = (((first + x * b0) & MASK) * self.n0inv) & MASK;
            // x and m are below 2^29.
            add_rows(row, x as u32, b, m as u32, &self.n);
            carry_once(row);
            if (i + 1) % ROWS == 0 {
                normalize(row.get_mut(1..).unwrap_or_default());
            }
        }
        self.finish(a.len(), out, t);
    }

    /// out = a²·R⁻¹ mod n: the cross products a_i·a_j (i < j) once each,
    /// then doubled with the squares a_i² added (`double_add_squares`),
    /// then the reduction rows of `reduce`.
    ///
    /// The rows go four at a time (`sqr_four`: all four reach from column
    /// 2i + 7 on), like the reduction's, and the last two or three rows
    /// (len mod 4) in one pair, the last row having no cross products: in
    /// a pair, row i adds x_i·a_j to column i + j
    /// (j > i); row i + 1 starts two columns later, so from column 2i + 3
    /// on a column k gets x_i·a_(k−i) + x_(i+1)·a_(k−i−1), loaded and
    /// stored once (the last, i + len, only the second). `a` has the
    /// modulus's length.
    ///
    /// A column gets at most len / 2 cross products, each below 2^58: up
    /// to `SQR_FLAT_LEN` limbs (3683 bits) they add up below 2^64 with no
    /// carrying on the way. Summed doubled instead (as this did), they
    /// had to be carried column by column, serially, twice on the way and
    /// once before the reduction (2048 bits); with the one pass that does
    /// not wait on the column before, RS256 verification took 0.170–0.177
    /// of the `rsa` crate's time in the probe instead of 0.179–0.183 (7
    /// runs alternating with the build before): ~3 %, ~1.3 µs.
    fn sqr(&self, a: &[u32], out: &mut [u32], t: &mut Scratch) {
        let len = self.n.len();
        t.t.iter_mut().for_each(|c| *c = 0);
        // Longer numbers: normalized before a column could take more
        // than `PRODUCTS`.
        let mut budget = Budget(0);
        let mut i = 0;
        if let (Some(padded), Some(a)) = (t.a.get_mut(..len), a.get(..len)) {
            padded.copy_from_slice(a);
        }
        while i + 3 < len {
            if len > SQR_FLAT_LEN {
                budget.make_room(&mut t.t, 4);
            }
            sqr_four(&mut t.t, &t.a, i, len);
            i += 4;
        }
        while i + 1 < len {
            if len > SQR_FLAT_LEN {
                budget.make_room(&mut t.t, 2);
            }
            let (Some(&x0), Some(&x1)) = (a.get(i), a.get(i + 1)) else {
                return;
            };
            let (x0, x1) = (u64::from(x0), u64::from(x1));
            let Some(row) = t.t.get_mut(2 * i..) else {
                return;
            };
            let [_, c1, d2, ..] = row else { return };
            *c1 += x0 * x1;
            if let Some(&a2) = a.get(i + 2) {
                *d2 += x0 * u64::from(a2);
                let Some(rest) = row.get_mut(3..) else { return };
                let (from_2, from_3) = (a.get(i + 2..), a.get(i + 3..));
                let (from_2, from_3) = (from_2.unwrap_or_default(), from_3.unwrap_or_default());
                add_rows(rest, x0 as u32, from_3, x1 as u32, from_2);
                // Row i + 1's last product, in the column after row i's.
                if let (Some(c), Some(&last)) = (rest.get_mut(len - i - 3), a.last()) {
                    *c += x1 * u64::from(last);
                }
            }
            i += 2;
        }
        double_add_squares(&mut t.t, a);
        self.reduce(&mut t.t);
        self.finish(len, out, t);
    }

    /// Montgomery reduction of the column sums `t` (2·len + 1 columns):
    /// rows m_i·n, four at a time (`reduce_four`) and the last ones in a
    /// pair and alone, so that each column is loaded and stored once for
    /// several products (as in `mul`'s rows). In a pair m_(i+1) depends on
    /// column i + 1 after row i, which is computed first from the two
    /// columns the pair starts with; the rest of the pair's columns then
    /// get m_i·n_j + m_(i+1)·n_(j−1) (the last, i + len, only the second).
    /// The sums are those of one row at a time, added in another order.
    fn reduce(&self, t: &mut [u64]) {
        let n = &self.n;
        let len = n.len();
        let (Some(&n0), Some(&n1), Some(&top), Some(n_from_1), Some(n_from_2)) =
            (n.first(), n.get(1), n.last(), n.get(1..), n.get(2..))
        else {
            // One limb: a single row.
            self.reduce_row(t, 0);
            return;
        };
        let (n0, n1, top) = (u64::from(n0), u64::from(n1), u64::from(top));
        // The columns start normalized (see `double_add_squares`); the
        // rows before row i have left t[..i] zero.
        let mut budget = Budget(0);
        let mut i = 0;
        while i + 3 < len {
            budget.make_room(t.get_mut(i..).unwrap_or_default(), 4);
            self.reduce_four(t, i);
            i += 4;
        }
        while i + 1 < len {
            budget.make_room(t.get_mut(i..).unwrap_or_default(), 2);
            let Some(row) = t.get_mut(i..) else { return };
            let [c0, c1, c2, ..] = row else { return };
            let m0 = ((*c0 & MASK) * self.n0inv) & MASK;
            let c1v = *c1 + m0 * n1 + ((*c0 + m0 * n0) >> W);
            let m1 = ((c1v & MASK) * self.n0inv) & MASK;
            *c2 += (c1v + m1 * n0) >> W;
            (*c0, *c1) = (0, 0);
            let Some(rest) = row.get_mut(2..) else { return };
            add_rows(rest, m0 as u32, n_from_2, m1 as u32, n_from_1);
            if let Some(c) = rest.get_mut(len - 2) {
                *c += m1 * top;
            }
            i += 2;
        }
        if i < len {
            budget.make_room(t.get_mut(i..).unwrap_or_default(), 1);
            self.reduce_row(t, i);
        }
    }

    /// Reduction rows i to i + 3 at once: m_i..m_(i+3) from the first four
    /// columns, one after another (each depends on the rows before it
    /// through its column), then the columns from i + 4 on get
    /// m_i·n_(k−i) + … + m_(i+3)·n_(k−i−3), loaded and stored once.
    #[inline(always)]
    fn reduce_four(&self, t: &mut [u64], i: usize) {
        let len = self.n.len();
        let p = &self.padded;
        // Every slice first, so that a row is done whole or not at all.
        let Some((head, rest)) = t.get_mut(i..).and_then(|row| row.split_at_mut_checked(4)) else {
            return;
        };
        let (Some(body), Some(p4), Some(p3), Some(p2), Some(p1)) = (
            rest.get_mut(..len - 1),
            p.get(4..),
            p.get(3..),
            p.get(2..),
            p.get(1..),
        ) else {
            return;
        };
        let ([c0, c1, c2, c3], Some(&[n0, n1, n2, n3])) = (head, p.get(..4)) else {
            return;
        };
        let (n0, n1, n2, n3) = (u64::from(n0), u64::from(n1), u64::from(n2), u64::from(n3));
        let k = self.n0inv;
        let m0 = ((*c0 & MASK) * k) & MASK;
        let v1 = *c1 + m0 * n1 + ((*c0 + m0 * n0) >> W);
        let m1 = ((v1 & MASK) * k) & MASK;
        let v2 = *c2 + m0 * n2 + m1 * n1 + ((v1 + m1 * n0) >> W);
        let m2 = ((v2 & MASK) * k) & MASK;
        let v3 = *c3 + m0 * n3 + m1 * n2 + m2 * n1 + ((v2 + m2 * n0) >> W);
        let m3 = ((v3 & MASK) * k) & MASK;
        (*c0, *c1, *c2, *c3) = (0, 0, 0, 0);
        // Column i + 4, the body's first (len ≥ 4 here, so it has one).
        if let Some(c4) = body.first_mut() {
            *c4 += (v3 + m3 * n0) >> W;
        }
        add_rows_four(
            body,
            [m0 as u32, m1 as u32, m2 as u32, m3 as u32],
            [p4, p3, p2, p1],
        );
    }

    /// One reduction row: column i's low 29 bits cleared by m_i·n.
    fn reduce_row(&self, t: &mut [u64], i: usize) {
        let Some(row) = t.get_mut(i..) else { return };
        let Some(&first) = row.first() else { return };
        let m = ((first & MASK) * self.n0inv) & MASK;
        add_row(row, m as u32, &self.n);
        carry_once(row);
    }

    /// The result is t[rows..] (below 2n) after that many reduction rows:
    /// normalized into `out`, then brought below n.
    fn finish(&self, rows: usize, out: &mut [u32], t: &mut Scratch) {
        let high = t.t.get_mut(rows..).unwrap_or_default();
        normalize(high);
        for (o, &c) in out.iter_mut().zip(high.iter()) {
            *o = c as u32;
        }
        let top = high.get(self.n.len()).copied().unwrap_or_default();
        if top != 0 || !less(out, &self.n) {
            sub_assign(out, &self.n);
        }
    }
}

/// c[j] += x·a[j] for the columns a reaches (x, a[j] < 2^30).
#[inline(always)]
fn add_row(c: &mut [u64], x: u32, a: &[u32]) {
    let len = c.len().min(a.len());
    let (Some(c), Some(a)) = (c.get_mut(..len), a.get(..len)) else {
        return;
    };
    let xs = simd::splat(x);
    let (c8, c_rest) = c.as_chunks_mut::<8>();
    let (a8, a_rest) = a.as_chunks::<8>();
    for (c8, a8) in c8.iter_mut().zip(a8) {
        simd::mul_add8(c8, xs, a8);
    }
    for (c, &aj) in c_rest.iter_mut().zip(a_rest) {
        *c += u64::from(x) * u64::from(aj);
    }
}

/// c[j] += x·a[j] + m·n[j] for the columns a and n reach.
#[inline(always)]
fn add_rows(c: &mut [u64], x: u32, a: &[u32], m: u32, n: &[u32]) {
    let len = c.len().min(a.len()).min(n.len());
    let (Some(c), Some(a), Some(n)) = (c.get_mut(..len), a.get(..len), n.get(..len)) else {
        return;
    };
    let (xs, ms) = (simd::splat(x), simd::splat(m));
    let (c4, c_rest) = c.as_chunks_mut::<4>();
    let (a4, a_rest) = a.as_chunks::<4>();
    let (n4, n_rest) = n.as_chunks::<4>();
    for ((c4, a4), n4) in c4.iter_mut().zip(a4).zip(n4) {
        simd::mul_add4_twice(c4, xs, a4, ms, n4);
    }
    for ((c, &aj), &nj) in c_rest.iter_mut().zip(a_rest).zip(n_rest) {
        *c += u64::from(x) * u64::from(aj) + u64::from(m) * u64::from(nj);
    }
}

/// A square's cross-product rows i to i + 3 at once (row r adds x_r·a_j
/// to column r + j, j > r): the six columns where they start, each with
/// the products it gets, then from column 2i + 7 on, where all four reach,
/// x_i·a_(k−i) + … + x_(i+3)·a_(k−i−3), loaded and stored once. `p` is
/// the number (`len` limbs) followed by three zeros, so that the rows end
/// alike.
#[inline(always)]
fn sqr_four(t: &mut [u64], p: &[u32], i: usize, len: usize) {
    // Every slice first, so that the rows are done whole or not at all.
    let Some((head, rest)) = t
        .get_mut(2 * i + 1..)
        .and_then(|row| row.split_at_mut_checked(6))
    else {
        return;
    };
    let (Some(body), Some(p7), Some(p6), Some(p5), Some(p4)) = (
        rest.get_mut(..len - i - 4),
        p.get(i + 7..),
        p.get(i + 6..),
        p.get(i + 5..),
        p.get(i + 4..),
    ) else {
        return;
    };
    let ([r1, r2, r3, r4, r5, r6], Some(&[x0, x1, x2, x3, a4, a5, a6])) = (head, p.get(i..i + 7))
    else {
        return;
    };
    let [x0, x1, x2, x3, a4, a5, a6] = [x0, x1, x2, x3, a4, a5, a6].map(u64::from);
    // The x's are a_i..a_(i+3).
    *r1 += x0 * x1;
    *r2 += x0 * x2;
    *r3 += x0 * x3 + x1 * x2;
    *r4 += x0 * a4 + x1 * x3;
    *r5 += x0 * a5 + x1 * a4 + x2 * x3;
    *r6 += x0 * a6 + x1 * a5 + x2 * a4;
    add_rows_four(
        body,
        [x0 as u32, x1 as u32, x2 as u32, x3 as u32],
        [p7, p6, p5, p4],
    );
}

/// c[j] += m_0·n_0[j] + m_1·n_1[j] + m_2·n_2[j] + m_3·n_3[j] for the
/// columns all reach.
#[inline(always)]
fn add_rows_four(c: &mut [u64], m: [u32; 4], n: [&[u32]; 4]) {
    let len = n.iter().fold(c.len(), |l, n| l.min(n.len()));
    let [Some(n0), Some(n1), Some(n2), Some(n3)] = n.map(|n| n.get(..len)) else {
        return;
    };
    let Some(c) = c.get_mut(..len) else { return };
    let ms = m.map(simd::splat);
    let (c8, c_rest) = c.as_chunks_mut::<8>();
    let ((a8, a_rest), (b8, b_rest)) = (n0.as_chunks::<8>(), n1.as_chunks::<8>());
    let ((d8, d_rest), (e8, e_rest)) = (n2.as_chunks::<8>(), n3.as_chunks::<8>());
    for ((((c8, a8), b8), d8), e8) in c8.iter_mut().zip(a8).zip(b8).zip(d8).zip(e8) {
        simd::mul_add8_four(c8, ms, [a8, b8, d8, e8]);
    }
    let [m0, m1, m2, m3] = m.map(u64::from);
    let rest = c_rest
        .iter_mut()
        .zip(a_rest)
        .zip(b_rest)
        .zip(d_rest)
        .zip(e_rest);
    for ((((c, &a), &b), &d), &e) in rest {
        *c += m0 * u64::from(a) + m1 * u64::from(b) + m2 * u64::from(d) + m3 * u64::from(e);
    }
}

/// Columns four or eight at a time: c[j] += x·a[j] (+ m·n[j]), x and m
/// given as `splat(x)`, `splat(m)`; or four rows' products at once
/// (`mul_add8_four`).
///
/// On wasm32, with WebAssembly SIMD's widening multiply
/// (`i64x2.extmul_{low,high}_i32x4_u`: two 32×32→64-bit products per
/// instruction). Left to itself LLVM multiplies the zero-extended limbs
/// with `i64x2.mul`, a full 64×64-bit product that V8 builds out of
/// several 32-bit multiplies on x86-64. It does so even for the extmul
/// intrinsics when it can take them apart: when one operand is a splat,
/// when a vector is loaded half by half, or when the splat's extension is
/// hoisted out of the row's loop (instruction selection sees one block at
/// a time). Hence whole-vector loads, and the splat passed through
/// `black_box` on every call (a store and a load). Measured in the probe
/// (RS256 in Envoy's V8): 61 µs with `i64x2.mul`, ~48 with extmul, ~43
/// with the two products of a `mul` row summed before one store, ~41 with
/// one `black_box` per eight columns of a squaring's rows (since paired:
/// `mul_add8` now serves only `reduce_row`, an odd length's last
/// reduction row), ~36 with the
/// reduction's rows taken two at a time (two products per column stored,
/// as in `mul`), ~32.5 with the square's rows two at a time too. Then
/// four rows at a time in the square and in the reduction
/// (`mul_add8_four`, one `black_box` of four splats per eight columns):
/// on another machine, RS256 in the probe 0.162–0.169 → 0.150–0.155 of
/// the `rsa` crate's time (5 runs alternating), and a first-seen RS256
/// request in Envoy 929k → 779k instructions in V8's code (callgrind,
/// `bench/instructions.sh`; L1 misses +4 %, the larger loops).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use core::arch::wasm32::{
        u32x4_splat, u64x2_add, u64x2_extmul_high_u32x4, u64x2_extmul_low_u32x4, v128, v128_load,
        v128_store,
    };

    #[inline(always)]
    pub(super) fn splat(x: u32) -> v128 {
        u32x4_splat(x)
    }

    /// Eight columns, one `black_box` for both halves.
    #[inline(always)]
    pub(super) fn mul_add8(c: &mut [u64; 8], xs: v128, a: &[u32; 8]) {
        let xs = core::hint::black_box(xs);
        let c = c.as_mut_ptr().cast::<v128>();
        let a = a.as_ptr().cast::<v128>();
        // SAFETY: `a` is 32 readable bytes and `c` 64 writable ones, read
        // and written as two and four vectors (no alignment needed).
        unsafe {
            for k in 0..2 {
                let av = v128_load(a.add(k));
                let (c0, c1) = (c.add(2 * k), c.add(2 * k + 1));
                v128_store(c0, u64x2_add(v128_load(c0), u64x2_extmul_low_u32x4(av, xs)));
                v128_store(
                    c1,
                    u64x2_add(v128_load(c1), u64x2_extmul_high_u32x4(av, xs)),
                );
            }
        }
    }

    /// c[j] += m_0·n_0[j] + … + m_3·n_3[j]: the columns loaded and stored
    /// once for four products each.
    #[inline(always)]
    pub(super) fn mul_add8_four(c: &mut [u64; 8], ms: [v128; 4], n: [&[u32; 8]; 4]) {
        let [m0, m1, m2, m3] = core::hint::black_box(ms);
        let c = c.as_mut_ptr().cast::<v128>();
        // SAFETY: each `n` is 32 readable bytes and `c` 64 writable ones,
        // read and written as two vectors each and four (v128_load and
        // v128_store need no alignment); `c` is borrowed mutably.
        unsafe {
            for h in 0..2 {
                let c = c.add(2 * h);
                let [n0, n1, n2, n3] = n.map(|n| v128_load(n.as_ptr().cast::<v128>().add(h)));
                let low = u64x2_add(
                    u64x2_add(
                        u64x2_extmul_low_u32x4(n0, m0),
                        u64x2_extmul_low_u32x4(n1, m1),
                    ),
                    u64x2_add(
                        u64x2_extmul_low_u32x4(n2, m2),
                        u64x2_extmul_low_u32x4(n3, m3),
                    ),
                );
                v128_store(c, u64x2_add(v128_load(c), low));
                let c1 = c.add(1);
                let high = u64x2_add(
                    u64x2_add(
                        u64x2_extmul_high_u32x4(n0, m0),
                        u64x2_extmul_high_u32x4(n1, m1),
                    ),
                    u64x2_add(
                        u64x2_extmul_high_u32x4(n2, m2),
                        u64x2_extmul_high_u32x4(n3, m3),
                    ),
                );
                v128_store(c1, u64x2_add(v128_load(c1), high));
            }
        }
    }

    /// c[j] += x·a[j] + m·n[j]: the columns loaded and stored once.
    #[inline(always)]
    pub(super) fn mul_add4_twice(c: &mut [u64; 4], xs: v128, a: &[u32; 4], ms: v128, n: &[u32; 4]) {
        let (xs, ms) = core::hint::black_box((xs, ms));
        let c = c.as_mut_ptr().cast::<v128>();
        // SAFETY: `a` and `n` are 16 readable bytes each and `c` 32
        // writable ones, read and written as one, one and two vectors
        // (v128_load and v128_store need no alignment); `c` is borrowed
        // mutably, so nothing else reads or writes it meanwhile.
        unsafe {
            let av = v128_load(a.as_ptr().cast::<v128>());
            let nv = v128_load(n.as_ptr().cast::<v128>());
            let low = u64x2_add(
                u64x2_extmul_low_u32x4(av, xs),
                u64x2_extmul_low_u32x4(nv, ms),
            );
            v128_store(c, u64x2_add(v128_load(c), low));
            let c1 = c.add(1);
            let high = u64x2_add(
                u64x2_extmul_high_u32x4(av, xs),
                u64x2_extmul_high_u32x4(nv, ms),
            );
            v128_store(c1, u64x2_add(v128_load(c1), high));
        }
    }
}

/// Elsewhere (the host-side tests, a wasm build without SIMD): the same
/// sums, one column at a time.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
mod simd {
    #[inline(always)]
    pub(super) fn splat(x: u32) -> u64 {
        u64::from(x)
    }

    #[inline(always)]
    pub(super) fn mul_add4(c: &mut [u64; 4], x: u64, a: &[u32; 4]) {
        for (c, &aj) in c.iter_mut().zip(a) {
            *c += x * u64::from(aj);
        }
    }

    #[inline(always)]
    pub(super) fn mul_add8(c: &mut [u64; 8], x: u64, a: &[u32; 8]) {
        for (c, &aj) in c.iter_mut().zip(a) {
            *c += x * u64::from(aj);
        }
    }

    #[inline(always)]
    pub(super) fn mul_add8_four(c: &mut [u64; 8], m: [u64; 4], n: [&[u32; 8]; 4]) {
        for (m, n) in m.into_iter().zip(n) {
            mul_add8(c, m, n);
        }
    }

    #[inline(always)]
    pub(super) fn mul_add4_twice(c: &mut [u64; 4], x: u64, a: &[u32; 4], m: u64, n: &[u32; 4]) {
        mul_add4(c, x, a);
        mul_add4(c, m, n);
    }
}

/// Column sums for one Montgomery product: 2·len + 1 columns.
struct Scratch {
    t: Vec<u64>,
    /// A number to square, followed by three zeros (`sqr_four`).
    a: Vec<u32>,
}

impl Scratch {
    fn new(len: usize) -> Scratch {
        Scratch {
            t: vec![0; 2 * len + 1],
            a: vec![0; len + 3],
        }
    }
}

/// The columns of a square from those of its cross products (each
/// a_i·a_j, i < j, once): column k doubled, a_(k/2)² added to the even
/// ones, and then the high part of each column moved into the next, all
/// at once rather than one after another (the value is unchanged), so
/// that each column ends below 2^31 for `reduce` (the last kept whole).
///
/// From columns below 2^64: doubling 29 bits and the high part of the
/// column before (below 2^35) gives at most 2^36, the square 2^58, and
/// the high part of that sum 2^30.
fn double_add_squares(t: &mut [u64], a: &[u32]) {
    let last = t.len().saturating_sub(1);
    // The high parts of column k − 1 before and after doubling.
    let (mut cross_high, mut sum_high) = (0u64, 0u64);
    for (k, column) in t.iter_mut().enumerate() {
        let cross = *column;
        let square = match a.get(k / 2) {
            Some(&x) if k % 2 == 0 => u64::from(x) * u64::from(x),
            _ => 0,
        };
        let sum = 2 * ((cross & MASK) + cross_high) + square;
        cross_high = cross >> W;
        *column = if k == last {
            sum + sum_high
        } else {
            (sum & MASK) + sum_high
        };
        sum_high = sum >> W;
    }
}

/// The products below 2^(2W) added to each column since the column sums
/// were last normalized, for `sqr` and `reduce`, whose passes add four,
/// two or one.
struct Budget(usize);

impl Budget {
    /// Before a pass of `step` products a column: the columns normalized
    /// first when it would take one past `PRODUCTS`.
    #[inline(always)]
    fn make_room(&mut self, cols: &mut [u64], step: usize) {
        if self.0 + step > PRODUCTS {
            normalize(cols);
            self.0 = 0;
        }
        self.0 += step;
    }
}

/// Moves the high part of the first column (whose low 29 bits are zero)
/// into the second.
#[inline(always)]
fn carry_once(row: &mut [u64]) {
    if let [first, second, ..] = row {
        *second += *first >> W;
        *first = 0;
    }
}

/// Carries through the columns so that each but the last is below 2^29
/// (the value is unchanged).
fn normalize(cols: &mut [u64]) {
    let mut carry = 0u64;
    let last = cols.len().saturating_sub(1);
    for (i, c) in cols.iter_mut().enumerate() {
        let v = *c + carry;
        if i == last {
            *c = v;
        } else {
            *c = v & MASK;
            carry = v >> W;
        }
    }
}

/// a < b, for limb slices of one length.
fn less(a: &[u32], b: &[u32]) -> bool {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .find(|(x, y)| x != y)
        .is_some_and(|(x, y)| x < y)
}

/// a −= b (mod 2^(29·len)).
fn sub_assign(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0i64;
    for (x, &y) in a.iter_mut().zip(b) {
        let v = i64::from(*x) - i64::from(y) - borrow;
        borrow = i64::from(v < 0);
        *x = (v + (borrow << W)) as u32;
    }
}

/// Big-endian bytes to `len` limbs; `None` when the number needs more.
fn from_be(be: &[u8], len: usize) -> Option<Vec<u32>> {
    let mut out = Vec::with_capacity(len + 1);
    let (mut acc, mut nbits) = (0u64, 0u32);
    for &byte in be.iter().rev() {
        acc |= u64::from(byte) << nbits;
        nbits += 8;
        if nbits >= W {
            out.push((acc & MASK) as u32);
            acc >>= W;
            nbits -= W;
        }
    }
    out.push(acc as u32);
    while out.len() > len {
        if out.pop() != Some(0) {
            return None;
        }
    }
    out.resize(len, 0);
    Some(out)
}

/// Limbs to exactly `k` big-endian bytes (the value must fit).
fn to_be(limbs: &[u32], k: usize) -> Vec<u8> {
    let mut out = vec![0u8; k];
    let mut bytes = out.iter_mut().rev();
    let (mut acc, mut nbits) = (0u64, 0u32);
    for &limb in limbs {
        acc |= u64::from(limb) << nbits;
        nbits += W;
        while nbits >= 8 {
            if let Some(b) = bytes.next() {
                *b = acc as u8;
            }
            acc >>= 8;
            nbits -= 8;
        }
    }
    if let Some(b) = bytes.next() {
        *b = acc as u8;
    }
    out
}

pub fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(first..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_bigint::{BoxedUint, ConcatenatingMul, NonZero};

    mod limbs;

    /// s^e mod n by crypto-bigint's schoolbook `mul` and `rem_vartime`.
    fn reference(n: &[u8], s: &[u8], e: u64) -> Vec<u8> {
        let modulus = NonZero::new(BoxedUint::from_be_slice_vartime(n)).unwrap();
        let base = BoxedUint::from_be_slice_vartime(s);
        let mut acc = BoxedUint::one();
        for bit in (0..64).rev() {
            acc = acc.concatenating_mul(&acc).rem_vartime(&modulus);
            if (e >> bit) & 1 == 1 {
                acc = acc.concatenating_mul(&base).rem_vartime(&modulus);
            }
        }
        let bytes = acc.to_be_bytes_trimmed_vartime();
        let mut out = vec![0; n.len() - bytes.len()];
        out.extend_from_slice(&bytes);
        out
    }

    /// Deterministic pseudo-random bytes (xorshift64*).
    fn bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed >> 12;
                *seed ^= *seed << 25;
                *seed ^= *seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    /// An odd modulus of exactly `bits` bits, big-endian: random, or all
    /// ones (every column of a product at its largest).
    fn modulus(seed: &mut u64, bits: usize, all_ones: bool) -> Vec<u8> {
        let k = usize::div_ceil(bits, 8);
        let mut n = bytes(seed, k);
        if all_ones {
            n.iter_mut().for_each(|b| *b = 0xff);
        }
        n[0] &= 0xff >> (8 * k - bits);
        n[0] |= 0x80 >> (8 * k - bits);
        n[k - 1] |= 1;
        n
    }

    #[test]
    fn limbs_round_trip() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let limbs = from_be(&bytes, 2048usize.div_ceil(28)).unwrap();
        assert!(limbs.iter().all(|&l| u64::from(l) <= MASK));
        assert_eq!(to_be(&limbs, 256), bytes);
        assert!(from_be(&bytes, 10).is_none(), "too long");
    }

    #[test]
    fn pow_agrees_with_crypto_bigint() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        // Sizes around limb and byte boundaries, up to the largest key.
        for (bits, e) in [
            (2048, 65537),
            (2047, 3),
            (2049, 65537),
            (3072, 65537),
            (4096, 3),
            (2072, 17),
            (8192, 65537),
            (255, (1 << 33) - 1),
            (64, 5),
        ] {
            for round in 0..4 {
                let k = usize::div_ceil(bits, 8);
                let n = modulus(&mut seed, bits, round == 0);
                let m = PublicKey::new(&n, e).unwrap();
                assert_eq!((m.bits(), m.byte_len()), (bits, k));
                let mut s = bytes(&mut seed, k);
                s[0] = 0;
                if round == 1 {
                    // n − 1: the largest base.
                    s = n.clone();
                    s[k - 1] -= 1;
                }
                assert_eq!(
                    m.rsavp1(&s).unwrap(),
                    reference(&n, &s, e),
                    "{bits} bits, round {round}"
                );
                assert!(m.rsavp1(&n).is_none(), "base = n");
            }
        }
    }

    /// `matches` against `rsavp1`: s^e mod n split into a fixed part and
    /// tails of several lengths is matched, and nothing else is: another
    /// tail, a fixed part that differs, another signature.
    #[test]
    fn matches_agrees_with_rsavp1() {
        let mut seed = 0x0123_4567_89ab_cdef;
        for (bits, e) in [
            (2048, 65537),
            (2047, 3),
            (3072, 65537),
            (4096, 65537),
            (2072, 17),
        ] {
            for round in 0..3 {
                let k = usize::div_ceil(bits, 8);
                let n = modulus(&mut seed, bits, round == 0);
                let key = PublicKey::new(&n, e).unwrap();
                // A signature, and the message it opens to (s^e mod n).
                let mut s = bytes(&mut seed, k);
                s[0] = 0;
                let opened = key.rsavp1(&s).unwrap();
                for tail_len in [1, 20, 32, 48, 64] {
                    let (fixed, tail) = opened.split_at(k - tail_len);
                    let Some(expected) = key.expect(fixed, tail_len) else {
                        // Only when fixed ‖ FF.. is not below n.
                        let mut largest = fixed.to_vec();
                        largest.resize(k, 0xff);
                        assert!(largest >= n, "{bits} bits, tail {tail_len}");
                        continue;
                    };
                    assert!(
                        key.matches(&s, &expected, tail),
                        "{bits} bits, tail {tail_len}"
                    );
                    let mut other = tail.to_vec();
                    other[tail_len - 1] ^= 1;
                    assert!(!key.matches(&s, &expected, &other));
                    assert!(!key.matches(&s, &expected, &tail[1..]), "a shorter tail");
                    let mut s2 = s.clone();
                    s2[k - 1] ^= 0x10;
                    assert!(!key.matches(&s2, &expected, tail));
                    let mut fixed2 = fixed.to_vec();
                    fixed2[k / 2] ^= 0x40;
                    if let Some(other) = key.expect(&fixed2, tail_len) {
                        assert!(!key.matches(&s, &other, tail));
                    }
                }
                // The PKCS#1 v1.5 layout itself: 00 01 FF.. 00 ‖ T.
                let mut em = vec![0xff; k];
                (em[0], em[1], em[k - 52]) = (0, 1, 0);
                let expected = key.expect(&em[..k - 32], 32).unwrap();
                assert!(!key.matches(&s, &expected, &opened[k - 32..]));
                assert!(!key.matches(&n, &expected, &opened[k - 32..]), "s = n");
                assert!(key.expect(&em[..k - 33], 32).is_none(), "k − 1 bytes");
                assert!(key.expect(&n[..k - 32], 32).is_none(), "not below n");
            }
        }
    }

    /// `matches` against crypto-bigint's s^e mod n where the modulus is
    /// close to R (bit lengths at and near multiples of 29, all-ones top
    /// bytes): there the message's two parts can add up past the top limb
    /// (an independent review counted 82 such sums in 621 cases like
    /// these), which `matches_agrees_with_rsavp1`'s sizes never reach. A
    /// changed tail and s + n (the same residue, too large) are refused.
    #[test]
    fn matches_near_r() {
        let mut seed = 0x1234_5678_9abc_def1;
        let mut cases = 0;
        for bits in [2049, 2059, 2060, 2088, 4089, 4096, 4118, 8178, 8192] {
            let k = usize::div_ceil(bits, 8);
            for kind in 0..3 {
                let mut n = modulus(&mut seed, bits, kind == 0);
                if kind == 2 {
                    // The top limb all ones, the rest random.
                    n.iter_mut().take(8).for_each(|b| *b = 0xff);
                    n[0] &= 0xff >> (8 * k - bits);
                }
                for e in [3, 65537, (1 << 33) - 1] {
                    let key = PublicKey::new(&n, e).unwrap();
                    for round in 0..if bits > 5000 { 1 } else { 4 } {
                        let mut s = bytes(&mut seed, k);
                        s[0] = 0;
                        if round == 1 {
                            s = n.clone();
                            s[k - 1] -= 1;
                        }
                        if round == 2 {
                            s[..k / 2].iter_mut().for_each(|b| *b = 0);
                        }
                        let opened = reference(&n, &s, e);
                        for tail_len in [32, 48, 64] {
                            let (fixed, tail) = opened.split_at(k - tail_len);
                            let Some(expected) = key.expect(fixed, tail_len) else {
                                continue;
                            };
                            cases += 1;
                            assert!(key.matches(&s, &expected, tail), "{bits} bits, e {e}");
                            let mut other = tail.to_vec();
                            other[0] ^= 0x80;
                            assert!(!key.matches(&s, &expected, &other));
                            let s_plus_n = BoxedUint::from_be_slice_vartime(&s)
                                .concatenating_add(BoxedUint::from_be_slice_vartime(&n))
                                .to_be_bytes_trimmed_vartime();
                            assert!(!key.matches(&s_plus_n, &expected, tail));
                        }
                    }
                }
            }
        }
        assert!(cases > 600, "{cases} cases");
    }

    #[test]
    fn refuses_even_and_tiny_moduli_and_e_below_2() {
        assert!(PublicKey::new(&[0x10, 0x00], 3).is_none());
        assert!(PublicKey::new(&[0, 1], 3).is_none());
        assert!(PublicKey::new(&[], 3).is_none());
        assert!(PublicKey::new(&[0xff, 0xfd], 1).is_none());
    }
}

/// Native timing of one 2048-bit RSAVP1 (e = 65537):
/// `cargo test --release -p envoy-oidc-bignum -- --ignored --nocapture`.
/// (In Envoy's V8, bench/probe times the whole verification.)
#[cfg(test)]
mod timing {
    #[test]
    #[ignore]
    fn time_2048() {
        let n: Vec<u8> = (0..256)
            .map(|i| {
                (i * 37 + 11) as u8 | if i == 0 { 0x80 } else { 0 } | if i == 255 { 1 } else { 0 }
            })
            .collect();
        let m = super::PublicKey::new(&n, 65537).unwrap();
        let mut s = n.clone();
        s[0] = 0x12;
        let t = std::time::Instant::now();
        for _ in 0..2000 {
            std::hint::black_box(m.rsavp1(std::hint::black_box(&s)));
        }
        eprintln!("{:?} per pow", t.elapsed() / 2000);
    }
}
