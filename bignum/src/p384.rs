//! NIST P-384 (ES384): its constants for `ecdsa.rs` (SEC 2 §2.5.1, and the
//! Montgomery constants for R = 2^(29·14)), and its public key.

use std::sync::OnceLock;

use crate::ecdsa::{self, Curve, GTables, Limbs, Modulus, from_hex};

/// Limbs per number: 14 × 29 = 406 bits.
const N: usize = 14;

/// The field prime p = 2^384 − 2^128 − 2^96 + 2^32 − 1.
pub(crate) struct Fp;
impl Modulus<N> for Fp {
    const M: Limbs<N> = from_hex(
        "fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff",
    );
    const N0INV: u64 = 1;
    const R2: Limbs<N> = from_hex(
        "0000000000000000000010000000200000000fffffffe000000000000000200000000fffffffe0000000100000000000",
    );
}

/// The group order n (scalars).
pub(crate) struct Order;
impl Modulus<N> for Order {
    const M: Limbs<N> = from_hex(
        "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973",
    );
    const N0INV: u64 = 143_645_765;
    const R2: Limbs<N> = from_hex(
        "9bf213fb05b7a28266895d40d49174aab1cc5bf030606de5e777d42b2fafdc5422eb306ac233683a3bdba6efa699ee97",
    );
}

pub(crate) struct P384;
impl Curve<N> for P384 {
    type Fp = Fp;
    type Order = Order;
    const BITS: usize = 384;
    const B: Limbs<N> = from_hex(
        "b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef",
    );
    const GX: Limbs<N> = from_hex(
        "aa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7",
    );
    const GY: Limbs<N> = from_hex(
        "3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5f",
    );
    const R_MOD_P: Limbs<N> = from_hex(
        "0000000000000000000000000000000000000000000000000000000000400000003fffffffffffffffc0000000400000",
    );

    fn g_tables() -> Option<&'static GTables<N>> {
        static TABLES: OnceLock<Option<GTables<N>>> = OnceLock::new();
        ecdsa::cached_g_tables::<Self, N>(&TABLES)
    }
}

ecdsa::verifying_key!(P384, N, 48, "P-384");
