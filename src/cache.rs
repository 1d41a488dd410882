//! A bounded per-worker cache: a hash map with first-in-first-out eviction.
//!
//! Written by hand because it is twenty lines: the LRU crates on crates.io
//! add unsafe linked lists for an ordering we do not need, since entries
//! here expire on their own (token `exp`) long before recency would matter.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};

/// Whether two byte strings are equal, compared eight bytes at a time.
/// By hand because `==` on slices is `memcmp`, which wasm32 gets from
/// wasi-libc as a byte loop: comparing a cached 800-byte token that way was
/// a third of a cached request's wasm time (wasmtime profile). Not constant
/// time, and need not be: a cache hit compares a client's value with the
/// entry under the same keyed hash, which no one can aim at.
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    a_rest == b_rest
        && a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
}

/// The key of a per-worker cache of values that end in a signature or an
/// authentication tag (a JWS, a sealed cookie): a hash, keyed per worker,
/// of the last 64 bytes only. Hashing the whole value (SHA-256 before) was
/// most of a cached request's time in V8. It needs no collision resistance:
/// only values that verified are inserted, no one can aim at their tails
/// without the key that made them, and the caller compares the whole value
/// on a hit, so a collision costs one more verification, never a wrong
/// answer.
pub fn tail_key(state: &RandomState, value: &str) -> u64 {
    let bytes = value.as_bytes();
    state.hash_one(bytes.get(bytes.len().saturating_sub(64)..).unwrap_or(bytes))
}

pub struct BoundedCache<K, V> {
    map: HashMap<K, (V, u64)>,
    order: VecDeque<K>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone, V> BoundedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        BoundedCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// The value for `key` if it has not expired at `now`.
    pub fn get(&self, key: &K, now: u64) -> Option<&V> {
        self.get_until(key, now).map(|(v, _)| v)
    }

    /// The value for `key` and when it expires, if not yet at `now`.
    pub fn get_until(&self, key: &K, now: u64) -> Option<(&V, u64)> {
        self.map
            .get(key)
            .filter(|(_, expires)| now < *expires)
            .map(|(v, expires)| (v, *expires))
    }

    /// The value for `key`, to change in place, if not expired at `now`.
    pub fn get_mut(&mut self, key: &K, now: u64) -> Option<&mut V> {
        self.map
            .get_mut(key)
            .filter(|(_, expires)| now < *expires)
            .map(|(v, _)| v)
    }

    /// Inserts a value that expires at `expires`, evicting the oldest
    /// entries when full.
    pub fn insert(&mut self, key: K, value: V, expires: u64) {
        if self.map.insert(key.clone(), (value, expires)).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_is_equality() {
        let a: Vec<u8> = (0..=255u8).cycle().take(804).collect();
        for len in [0, 1, 7, 8, 9, 64, 803] {
            let x = &a[..len];
            assert!(same_bytes(x, x), "{len}");
            for i in 0..len {
                let mut y = x.to_vec();
                y[i] ^= 1;
                assert!(!same_bytes(x, &y), "{len}: byte {i}");
            }
            assert!(!same_bytes(x, &a[..len + 1]));
        }
    }

    #[test]
    fn expires_and_evicts_oldest_first() {
        let mut c = BoundedCache::new(2);
        c.insert("a", 1, 100);
        c.insert("b", 2, 100);
        assert_eq!(c.get(&"a", 99), Some(&1));
        assert_eq!(c.get(&"a", 100), None, "expired at its expiry");
        c.insert("c", 3, 100);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"a", 0), None, "oldest evicted");
        assert_eq!(c.get(&"c", 0), Some(&3));
        c.insert("c", 4, 100);
        assert_eq!((c.len(), c.get(&"c", 0)), (2, Some(&4)));
    }
}
