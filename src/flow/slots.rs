//! Fixed sets of shared-data keys that hold per-client state for all
//! workers, and compare-and-set leases that make one worker at a time do
//! an IdP call for the same key.
//!
//! Shared data has no delete, so state is never written under a key per
//! client: `<prefix><kind>/<n>` slots, `n` taken from the client's key,
//! each slot holding the full key of its current owner so that a collision
//! reads as a miss, never as another client's state.

use crate::config::MAX_IDP_TIMEOUT_MS;
use crate::store::{self, SharedStore};

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
    probe_name(prefix, kind, key, 0)
}

/// The `probe`-th slot after `key`'s own, for state that must not be
/// overwritten by a colliding key while it lives (see `session`).
pub fn probe_name(prefix: &str, kind: &str, key: &Key, probe: u64) -> String {
    slot_at(prefix, kind, (index(key, SLOTS) + probe) % SLOTS)
}

/// Slot `n` of `kind`.
fn slot_at(prefix: &str, kind: &str, n: u64) -> String {
    format!("{prefix}{kind}/{n}")
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
    write_if(store, name, key, payload, 0);
}

/// Writes `key`'s state if the slot is still at `cas` (0: whatever it holds).
pub fn write_if(
    store: &mut dyn SharedStore,
    name: &str,
    key: &Key,
    payload: &[u8],
    cas: u32,
) -> bool {
    let mut value = Vec::with_capacity(32 + payload.len());
    value.extend_from_slice(key);
    value.extend_from_slice(payload);
    store.set(name, &value, cas)
}

/// Creates `kind`'s slots up front, empty: a compare-and-set on a slot that
/// was never written is no compare at all (shared data's cas 0 writes
/// whatever is there), so two workers writing one at once would both
/// succeed and one's state be lost. For state that must not be: one-time
/// exchanges' outcomes (`outcomes`: a refresh token's, a login code's).
pub fn prepare_slots(store: &mut dyn SharedStore, prefix: &str, kind: &str) {
    create_empty(store, (0..SLOTS).map(|n| slot_at(prefix, kind, n)));
}

/// Creates a kind's leases up front, so that taking one is always a real
/// compare-and-set (the host writes unconditionally to an absent key).
pub fn prepare_leases(store: &mut dyn SharedStore, prefix: &str, kind: &str) {
    create_empty(store, (0..LEASES).map(|n| lease_name(prefix, kind, n)));
}

/// Each of `names` that shared data lacks, written empty: created only if
/// absent, so that a worker starting late cannot empty a slot another has
/// taken meanwhile.
fn create_empty(store: &mut dyn SharedStore, names: impl Iterator<Item = String>) {
    for name in names {
        store::create(store, &name, &[]);
    }
}

/// This worker's leases: compare-and-set entries `<prefix><kind>-lease/<m>`
/// holding the key being worked on, until when, and which worker holds it.
#[derive(Debug, Clone)]
pub struct Leases {
    prefix: String,
    /// Random per worker: a lease is released only by its holder.
    holder: [u8; 8],
}

/// A lease as stored: key, until (seconds), holder.
struct Held {
    key: Key,
    until: u64,
    holder: [u8; 8],
}

/// The longest lease any configuration takes (`MAX_IDP_TIMEOUT_MS`).
const LONGEST_LEASE: u64 = MAX_IDP_TIMEOUT_MS.div_ceil(1000) + 1;

impl Held {
    fn decode(value: &[u8]) -> Option<Held> {
        let (key, rest) = value.split_first_chunk::<32>()?;
        let (until, rest) = rest.split_first_chunk::<8>()?;
        Some(Held {
            key: *key,
            until: u64::from_be_bytes(*until),
            holder: rest.try_into().ok()?,
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(48);
        v.extend_from_slice(&self.key);
        v.extend_from_slice(&self.until.to_be_bytes());
        v.extend_from_slice(&self.holder);
        v
    }

    /// Whether it binds at `now`: until it lapses, however long the
    /// configuration that took it waits for its IdP (a refresh lease is
    /// shared by every configuration that opens the session, whatever its
    /// `idp_timeout_ms`), unless it ends later than any configuration's
    /// lease taken now could, beyond the workers' skew: the clock stepped
    /// back since, and the key is free rather than blocked for as long.
    /// (The layout is the builds' before: during a drain, either build
    /// reads the other's leases.)
    fn binds(&self, now: u64) -> bool {
        now < self.until && store::believed(self.until, now, LONGEST_LEASE)
    }
}

impl Leases {
    pub fn new(prefix: &str, holder: [u8; 8]) -> Leases {
        Leases {
            prefix: prefix.to_string(),
            holder,
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn holder(&self) -> [u8; 8] {
        self.holder
    }

    /// Takes the lease for `key` unless another call holds it. A lease
    /// lasts no longer than a call can take, so a lost holder cannot block
    /// others.
    pub fn acquire(
        &self,
        store: &mut dyn SharedStore,
        kind: &str,
        key: &Key,
        now: u64,
        timeout_ms: u32,
    ) -> bool {
        self.take(store, kind, key, now, timeout_ms, |_| true)
    }

    /// Holds the lease for `key` from `now` for another call timeout, if
    /// this worker still holds it or nobody does; false when another worker
    /// took it meanwhile (a call about to go out after its lease lapsed).
    pub fn renew(
        &self,
        store: &mut dyn SharedStore,
        kind: &str,
        key: &Key,
        now: u64,
        timeout_ms: u32,
    ) -> bool {
        self.take(store, kind, key, now, timeout_ms, |h| {
            h.key != *key || h.holder != self.holder
        })
    }

    /// Writes this worker's lease on `key`, for a call timeout from `now`,
    /// unless the lease as stored binds and `taken` says it is someone
    /// else's; a compare-and-set, so a concurrent taker wins or loses whole.
    fn take(
        &self,
        store: &mut dyn SharedStore,
        kind: &str,
        key: &Key,
        now: u64,
        timeout_ms: u32,
        taken: impl Fn(&Held) -> bool,
    ) -> bool {
        let name = lease_of(&self.prefix, kind, key);
        let (value, cas) = store::get_for_write(store, &name);
        if Held::decode(&value).is_some_and(|h| h.binds(now) && taken(&h)) {
            return false;
        }
        let held = Held {
            key: *key,
            until: now + u64::from(timeout_ms).div_ceil(1000) + 1,
            holder: self.holder,
        };
        store.set(&name, &held.encode(), cas)
    }

    /// Gives back the lease for `key` if this worker still holds it: one
    /// that lapsed and was taken by another worker since stays theirs.
    pub fn release(&self, store: &mut dyn SharedStore, kind: &str, key: &Key) {
        let name = lease_of(&self.prefix, kind, key);
        let Some((value, cas)) = store.get(&name) else {
            return;
        };
        if Held::decode(&value).is_some_and(|h| h.key == *key && h.holder == self.holder) {
            store.set(&name, &[], cas);
        }
    }
}
