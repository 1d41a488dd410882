//! Test support for envoy-oidc, never part of the .wasm: the fake host of
//! several workers (`world`), shared data with Envoy's rules (`store`), the
//! fixture keys and a token kit (`tokens`), and the fuzz targets with their
//! oracles (`fuzzing`).

pub mod fuzzing;
pub mod store;
pub mod tokens;
pub mod world;

pub use store::EnvoyStore;
pub use tokens::ISSUER;
pub use world::{Outcome, World};
