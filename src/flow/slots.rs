//! Fixed sets of shared-data keys that hold per-client state for all
//! workers, and compare-and-set leases that make one worker at a time do
//! an IdP call for the same key.
//!
//! Shared data has no delete, so state is never written under a key per
//! client: `<prefix><kind>/<n>` slots, `n` taken from the client's key,
//! each slot holding the full key of its current owner so that a collision
//! reads as a miss, never as another client's state.

use crate::store::SharedStore;

/// Slots per kind and configuration (a bound on shared-data keys).
pub const SLOTS: u64 = 1024;
/// Leases per kind and configuration; keys whose leases collide take turns.
pub const LEASES: u64 = 64;

/// A key naming one client's state: a salted hash, never a secret.
pub type Key = [u8; 32];

fn index(key: &Key, modulus: u64) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&key[..8]);
    u64::from_be_bytes(first) % modulus
}

pub fn slot_name(prefix: &str, kind: &str, key: &Key) -> String {
    format!("{prefix}{kind}/{}", index(key, SLOTS))
}

pub fn lease_name(prefix: &str, kind: &str, n: u64) -> String {
    format!("{prefix}{kind}-lease/{n}")
}

fn lease_of(prefix: &str, kind: &str, key: &Key) -> String {
    lease_name(prefix, kind, index(key, LEASES))
}

/// The payload stored for `key`, if its slot holds `key`'s state.
pub fn read(store: &dyn SharedStore, name: &str, key: &Key) -> Option<Vec<u8>> {
    let (value, _) = store.get(name)?;
    let (owner, payload) = value.split_first_chunk::<32>()?;
    (owner == key).then(|| payload.to_vec())
}

pub fn write(store: &mut dyn SharedStore, name: &str, key: &Key, payload: &[u8]) {
    let mut value = Vec::with_capacity(32 + payload.len());
    value.extend_from_slice(key);
    value.extend_from_slice(payload);
    store.set(name, &value, 0);
}

/// Creates a kind's leases up front, so that taking one is always a real
/// compare-and-set (the host writes unconditionally to an absent key).
pub fn prepare_leases(store: &mut dyn SharedStore, prefix: &str, kind: &str) {
    for n in 0..LEASES {
        let name = lease_name(prefix, kind, n);
        if store.get(&name).is_none() {
            store.set(&name, &[], 0);
        }
    }
}

/// Takes the lease for `key` unless another call holds it. A lease lasts
/// no longer than a call can take, so a lost holder cannot block others.
pub fn acquire(
    store: &mut dyn SharedStore,
    prefix: &str,
    kind: &str,
    key: &Key,
    now: u64,
    timeout_ms: u32,
) -> bool {
    let name = lease_of(prefix, kind, key);
    let (value, cas) = store.get(&name).unwrap_or_default();
    let held = value
        .split_at_checked(32)
        .and_then(|(_, until)| <[u8; 8]>::try_from(until).ok())
        .is_some_and(|until| now < u64::from_be_bytes(until));
    if held {
        return false;
    }
    let until = now + u64::from(timeout_ms).div_ceil(1000) + 1;
    let mut lease = key.to_vec();
    lease.extend_from_slice(&until.to_be_bytes());
    store.set(&name, &lease, cas)
}

pub fn release(store: &mut dyn SharedStore, prefix: &str, kind: &str, key: &Key) {
    store.set(&lease_of(prefix, kind, key), &[], 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_lease_is_exclusive_until_released_or_expired() {
        let mut s = MemoryStore::default();
        prepare_leases(&mut s, "p/", "k");
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert!(acquire(&mut s, "p/", "k", &a, 100, 2000));
        assert!(!acquire(&mut s, "p/", "k", &a, 100, 2000), "held");
        assert!(
            acquire(&mut s, "p/", "k", &a, 104, 2000),
            "expired after the call timeout"
        );
        release(&mut s, "p/", "k", &a);
        assert!(acquire(&mut s, "p/", "k", &b, 104, 2000));
    }

    #[test]
    fn a_slot_reads_only_for_its_owner() {
        let mut s = MemoryStore::default();
        let name = slot_name("p/", "k", &[1; 32]);
        write(&mut s, &name, &[1; 32], b"x");
        assert_eq!(read(&s, &name, &[1; 32]).as_deref(), Some(&b"x"[..]));
        assert_eq!(read(&s, &name, &[2; 32]), None);
    }
}
