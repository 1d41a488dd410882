//! The shared store the core may use: proxy-wasm shared data, seen through
//! a trait so that the core stays free of host calls and tests can use a
//! map. Shared data is visible to every worker of an Envoy process, has
//! compare-and-set, and no delete: a key once written stays, so only fixed
//! sets of keys are ever written. The tests' store is `EnvoyStore` in
//! `testkit/`.

pub trait SharedStore {
    /// The value under `key` and its CAS token.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value` if `cas` is still current (0: unconditionally).
    /// Returns false on a CAS mismatch or a host error.
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool;
}
