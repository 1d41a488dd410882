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

/// A cas that writes a key only if it is absent. The host writes an absent
/// key whatever cas comes with it, and refuses to overwrite one whose cas
/// differs; an entry's cas is a counter the host bumps on every write (in
/// the whole process, from 1, skipping 0), so a present entry has this one
/// only on the rare write where that counter passes it. (cas 0 overwrites:
/// two workers writing an absent key at once would each write, and the
/// last write wipes what the first had done.)
pub const CREATE_ONLY: u32 = u32::MAX;

/// How far ahead of a worker's `now` a time another worker stored may be
/// believed: each reads the clock (whole seconds) when it runs, so the later
/// may stamp a second or so beyond. A stamp further ahead was written before
/// the clock stepped back, and is taken as lapsed rather than believed (it
/// would block its entry for as long as the step). Generous: believing a
/// lease or slot up to a minute too long only delays its takeover. (The
/// rate's bucket believes 2 s, `budget::BUCKET_SKEW`: a stamp ahead stops
/// its refill for as long.)
pub const CLOCK_SKEW: u64 = 60;

/// Whether `until`, a time another worker stored, can have been written at
/// about `now` by one that looks at most `longest` seconds ahead: not when
/// it is further, beyond the workers' clock skew (then it is taken as
/// lapsed).
pub fn believed(until: u64, now: u64, longest: u64) -> bool {
    until <= now.saturating_add(longest).saturating_add(CLOCK_SKEW)
}

/// Writes `value` under `key` unless some worker has created it already.
pub fn create(store: &mut dyn SharedStore, key: &str, value: &[u8]) -> bool {
    store.get(key).is_none() && store.set(key, value, CREATE_ONLY)
}

/// The value under `key` and the cas that writes over exactly it: its own,
/// or `CREATE_ONLY` when absent (so that a worker creating it meanwhile
/// makes the write fail, as a changed value would).
pub fn get_for_write(store: &dyn SharedStore, key: &str) -> (Vec<u8>, u32) {
    store.get(key).unwrap_or((Vec::new(), CREATE_ONLY))
}
