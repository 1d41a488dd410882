//! The shared store the core may use: proxy-wasm shared data, seen through
//! a trait so that the core stays free of host calls and tests can use a
//! map. Shared data is visible to every worker of an Envoy process, has
//! compare-and-set, and no delete: a key once written stays, so only fixed
//! sets of keys are ever written.

use std::collections::HashMap;

pub trait SharedStore {
    /// The value under `key` and its CAS token.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Writes `value` if `cas` is still current (0: unconditionally).
    /// Returns false on a CAS mismatch or a host error.
    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool;
}

/// An in-memory store with the host's CAS semantics, for tests.
#[derive(Default)]
pub struct MemoryStore {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl MemoryStore {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
        if cas != 0 && self.entries.get(key).is_some_and(|(_, c)| *c != cas) {
            return false;
        }
        self.next_cas = self.next_cas.wrapping_add(1).max(1);
        self.entries
            .insert(key.to_string(), (value.to_vec(), self.next_cas));
        true
    }
}
