//! NIST P-256 (ES256): its constants for `ecdsa.rs` (SEC 2 §2.4.2, and the
//! Montgomery constants for R = 2^(29·9)), and its public key.

use std::sync::OnceLock;

use crate::ecdsa::{self, Curve, GTables, Limbs, Modulus, from_hex};

/// Limbs per number: 9 × 29 = 261 bits.
const N: usize = 9;

/// The field prime p = 2^256 − 2^224 + 2^192 + 2^96 − 1.
pub(crate) struct Fp;
impl Modulus<N> for Fp {
    const M: Limbs<N> =
        from_hex("ffffffff00000001000000000000000000000000ffffffffffffffffffffffff");
    const N0INV: u64 = 1;
    const R2: Limbs<N> =
        from_hex("000013fffffff7fffffffffffffffbffffffeffffffffc000000000000000c00");
}

/// The group order n (scalars).
pub(crate) struct Order;
impl Modulus<N> for Order {
    const M: Limbs<N> =
        from_hex("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");
    const N0INV: u64 = 234_929_231;
    const R2: Limbs<N> =
        from_hex("84b6556a65587f0616c8e4adafb165861f11fc5bb2d31a9945e9cfeeb48d9ef5");
}

pub(crate) struct P256;
impl Curve<N> for P256 {
    type Fp = Fp;
    type Order = Order;
    const BITS: usize = 256;
    const B: Limbs<N> =
        from_hex("5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b");
    const GX: Limbs<N> =
        from_hex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296");
    const GY: Limbs<N> =
        from_hex("4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5");
    const R_MOD_P: Limbs<N> =
        from_hex("0000001fffffffdfffffffffffffffffffffffe0000000000000000000000020");

    fn g_tables() -> Option<&'static GTables<N>> {
        static TABLES: OnceLock<Option<GTables<N>>> = OnceLock::new();
        ecdsa::cached_g_tables::<Self, N>(&TABLES)
    }
}

ecdsa::verifying_key!(P256, N, 32, "P-256");
