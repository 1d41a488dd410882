//! A bounded per-worker cache: a hash map with second-chance eviction
//! (CLOCK): entries wait in a queue in insertion order; the one at the head
//! is evicted unless it was used since it last came round (and has not
//! expired), in which case it goes to the back, its mark cleared. So
//! entries used again within about one turn of the queue stay, and a
//! stream of values seen once (a scan of tokens, a flood of forgeries)
//! evicts those rather than the ones in use: first-in-first-out, before,
//! let such a stream push out the tokens every request carries
//! (BENCHMARKS.md, "Working set").
//!
//! Written by hand because it is forty lines: the LRU crates on crates.io
//! add unsafe linked lists for an exact recency order we do not need.

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

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
pub fn tail_key(state: &RandomState, bytes: &[u8]) -> u64 {
    state.hash_one(bytes.get(bytes.len().saturating_sub(64)..).unwrap_or(bytes))
}

/// A cache keyed by `tail_key`: its keys are hashes already (keyed per
/// worker, so no one can aim them at one bucket), and the map takes each
/// as its own hash instead of hashing it again (SipHash: ~170 instructions
/// and ~30 L1 misses a cached-token request in Envoy, BENCHMARKS.md).
pub type TailKeyed<V> = BoundedCache<u64, V, BuildHasherDefault<Prehashed>>;

/// The hasher of `TailKeyed`, for keys that are one `u64` hash each: the
/// key is its hash. (Any other key would hash poorly: a composite one to
/// its last field.)
#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    /// Not called for a `u64` key; folds other bytes rather than drop
    /// them.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

pub struct BoundedCache<K, V, S = RandomState> {
    map: HashMap<K, Entry<V>, S>,
    /// Every key of `map` once, oldest insertion first (a key the queue
    /// passed over for being used since counts as inserted then).
    order: VecDeque<K>,
    capacity: usize,
}

struct Entry<V> {
    value: V,
    expires: u64,
    /// Used since its insertion or since the queue last passed over it.
    /// Not set by the insertion itself (nor by a replacement, which keeps
    /// the key's place): a value inserted and never looked up again (a
    /// token sent once) goes first, in insertion order.
    used: Cell<bool>,
}

impl<K: Hash + Eq + Clone, V> BoundedCache<K, V> {
    pub fn new(capacity: usize) -> Self {
        Self::with_capacity(capacity)
    }
}

impl<K: Hash + Eq + Clone, V, S: BuildHasher + Default> BoundedCache<K, V, S> {
    /// `new`, with the map's hasher `S` (`TailKeyed`'s).
    pub fn with_capacity(capacity: usize) -> Self {
        BoundedCache {
            map: HashMap::default(),
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
        let e = self.map.get(key).filter(|e| now < e.expires)?;
        e.used.set(true);
        Some((&e.value, e.expires))
    }

    /// The value for `key`, to change in place, if not expired at `now`.
    pub fn get_mut(&mut self, key: &K, now: u64) -> Option<&mut V> {
        let e = self.map.get_mut(key).filter(|e| now < e.expires)?;
        e.used.set(true);
        Some(&mut e.value)
    }

    /// Inserts a value that expires at `expires`; when full at `now`, first
    /// evicts the oldest entry that has expired or was not used since the
    /// queue last passed over it.
    pub fn insert(&mut self, key: K, value: V, now: u64, expires: u64) {
        if !self.map.contains_key(&key) {
            self.make_room(now);
            self.order.push_back(key.clone());
        }
        let entry = Entry {
            value,
            expires,
            used: Cell::new(false),
        };
        self.map.insert(key, entry);
    }

    /// Evicts until there is room for one more. Ends within one turn of
    /// the queue: each key passed over has its mark cleared, so it goes
    /// when it comes round again unless used in between. An entry expired
    /// at `now` goes whatever its mark: its use is over.
    fn make_room(&mut self, now: u64) {
        while self.map.len() >= self.capacity {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            match self.map.get(&old) {
                Some(e) if now < e.expires && e.used.replace(false) => self.order.push_back(old),
                _ => {
                    self.map.remove(&old);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tail_keyed_cache_takes_its_keys_as_their_hashes() {
        let hasher = BuildHasherDefault::<Prehashed>::default();
        assert_eq!(
            hasher.hash_one(0x1234_5678_9abc_def0_u64),
            0x1234_5678_9abc_def0
        );
        // Bytes (no key of ours) still hash by their content and order.
        assert_ne!(hasher.hash_one([1u8, 2]), hasher.hash_one([2u8, 1]));
        let mut c = TailKeyed::with_capacity(2);
        let state = RandomState::new();
        let (a, b) = (
            tail_key(&state, b"a.b.sig-a"),
            tail_key(&state, b"a.b.sig-b"),
        );
        c.insert(a, "a", 0, 10);
        c.insert(b, "b", 0, 10);
        assert_eq!((c.get(&a, 1), c.get(&b, 1)), (Some(&"a"), Some(&"b")));
        assert_eq!(c.get(&a, 10), None, "expired");
    }

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
    fn an_entry_used_again_outlives_newer_ones_seen_once() {
        const HOT: u32 = 0;
        let mut c = BoundedCache::new(3);
        c.insert(HOT, 0, 0, 100);
        // A stream of values seen once, with the hot one used between them.
        for i in 1..100 {
            assert_eq!(c.get(&HOT, 0), Some(&0), "kept through {i} insertions");
            c.insert(i, i, 0, 100);
            assert!(c.len() <= 3);
        }
        // No longer used, it goes as any other: one turn clears its mark.
        for i in 100..104 {
            c.insert(i, i, 0, 100);
        }
        assert_eq!(c.get(&HOT, 0), None, "evicted once no longer used");
        assert_eq!(c.get(&103, 0), Some(&103));
        // A capacity of one keeps the newest, used or not.
        let mut c = BoundedCache::new(1);
        c.insert(1, 1, 0, 100);
        assert_eq!(c.get(&1, 0), Some(&1));
        c.insert(2, 2, 0, 100);
        assert_eq!((c.len(), c.get(&2, 0)), (1, Some(&2)));
    }

    #[test]
    fn expires_and_evicts_the_oldest_unused_first() {
        let mut c = BoundedCache::new(2);
        c.insert("a", 1, 0, 100);
        c.insert("b", 2, 0, 100);
        assert_eq!(c.get(&"a", 99), Some(&1));
        assert_eq!(c.get(&"a", 100), None, "expired at its expiry");
        c.insert("c", 3, 0, 100);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&"b", 0), None, "the oldest unused evicted");
        assert_eq!(c.get(&"a", 0), Some(&1), "the used one kept");
        assert_eq!(c.get(&"c", 0), Some(&3));
        c.insert("c", 4, 0, 100);
        assert_eq!((c.len(), c.get(&"c", 0)), (2, Some(&4)));
        // An entry used and since expired goes first: its use is over.
        let mut c = BoundedCache::new(2);
        c.insert("a", 1, 0, 10);
        c.insert("b", 2, 0, 100);
        assert_eq!(c.get(&"a", 5), Some(&1));
        c.insert("c", 3, 20, 100);
        assert_eq!(c.get(&"b", 20), Some(&2), "the live unused one kept");
        assert_eq!(c.get(&"c", 20), Some(&3));
        assert_eq!(
            (c.len(), c.get(&"a", 5)),
            (2, None),
            "the expired one evicted"
        );
        // With none used, first in, first out.
        let mut c = BoundedCache::new(2);
        for k in ["a", "b", "c"] {
            c.insert(k, 0, 0, 100);
        }
        assert_eq!((c.get(&"a", 0), c.get(&"b", 0)), (None, Some(&0)));
    }
}
