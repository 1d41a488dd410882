//! Shared data as Envoy keeps it, for tests of several workers.

use std::collections::HashMap;

use envoy_oidc::store::SharedStore;

/// proxy-wasm shared data with Envoy's exact rules: a write to a missing
/// key succeeds whatever cas it carries; nothing can be deleted; every
/// write bumps the cas; a write with a stale cas fails.
#[derive(Default, Debug, Clone)]
pub struct EnvoyStore {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    /// Writes that succeeded, per key (tests of single writers).
    pub writes: HashMap<String, usize>,
}

impl EnvoyStore {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }
}

impl SharedStore for EnvoyStore {
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
        *self.writes.entry(key.to_string()).or_default() += 1;
        true
    }
}
