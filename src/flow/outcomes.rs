//! The outcomes of one-time exchanges (a refresh token's, a login's code)
//! as the workers share them: a live outcome is what stops another
//! worker's request from spending the same one-time value again, so it is
//! kept in probed slots (`slots::probe_name`) where a colliding key's
//! outcome never overwrites it while a free slot is near.

use serde::{Deserialize, Serialize};

use super::slots::{self, Key};
use super::{Core, IdpCall, Stop};
use crate::config::Config;
use crate::oidc::discovery::Discovery;
use crate::oidc::token::{self, TokenResponse};
use crate::store::{self, SharedStore};

/// An exchange's outcome, readable until `until`.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Outcome {
    pub(super) until: u64,
    /// None: the IdP refused the value (spent, revoked, or our client).
    pub(super) tokens: Option<TokenResponse>,
    /// A code's tokens were given to a callback (`claim`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) claimed: bool,
}

impl Outcome {
    /// Which of two outcomes a full set of slots gives up first: the
    /// lesser, a refusal before tokens (a waiter that misses tokens would
    /// spend the value again), then the one that lapses first.
    fn rank(&self) -> (bool, u64) {
        (self.tokens.is_some(), self.until)
    }
}

/// Slots an outcome may take: its own and the next ones.
const PROBES: u64 = 8;
/// The longest an outcome is kept (a refresh's is kept as long as a cookie
/// from before it may come back, up to this): one stamped further ahead,
/// beyond the workers' clock skew, was written before the clock stepped
/// back, and is taken as lapsed.
pub(super) const MAX_LIFE: u64 = 86_400;

fn live(until: u64, now: u64) -> bool {
    now < until && store::believed(until, now, MAX_LIFE)
}

fn decode(payload: &[u8]) -> Option<Outcome> {
    crate::json::from_object(payload).ok()
}

/// The live outcome a slot's value holds, with the key that owns it.
fn live_in(value: &[u8], now: u64) -> Option<(&Key, Outcome)> {
    let (owner, payload) = value.split_first_chunk::<32>()?;
    let outcome = decode(payload).filter(|o| live(o.until, now))?;
    Some((owner, outcome))
}

/// Takes the lease on a one-time exchange of `key` (a refresh token's, a
/// code's) for this worker. False when the request must wait instead:
/// another worker holds the lease, or ended that exchange between the
/// caller's look for its outcome and the lease (`ended`: the outcome is
/// there now, the value spent; read on the next tick, not spent again).
pub(super) fn lease(
    cfg: &Config,
    core: &Core,
    store: &mut dyn SharedStore,
    kind: &str,
    key: &Key,
    now: u64,
    ended: impl FnOnce(&Core, &dyn SharedStore) -> bool,
) -> bool {
    let leases = core.leases_for(kind);
    if !leases.acquire(store, kind, key, now, cfg.idp_timeout_ms) {
        return false;
    }
    if ended(core, store) {
        leases.release(store, kind, key);
        return false;
    }
    true
}

/// The token endpoint call of a leased exchange with `params`; when no
/// request can be made of them, the lease goes back and the request fails.
pub(super) fn token_call(
    cfg: &Config,
    discovery: &Discovery,
    core: &Core,
    store: &mut dyn SharedStore,
    (kind, call, key): (&str, IdpCall, &Key),
    params: &[(&str, &str)],
) -> Stop {
    match token::request(cfg, discovery, &token::configured_client(cfg), params) {
        Ok(request) => Stop::call(call, request),
        Err(e) => {
            core.leases_for(kind).release(store, kind, key);
            Stop::Fail(e.into())
        }
    }
}

/// The live outcome for `key` among `kind`'s slots, if any: one with
/// tokens before a refusal, in whichever probe each is.
pub(super) fn read(
    store: &dyn SharedStore,
    prefix: &str,
    kind: &str,
    key: &Key,
    now: u64,
) -> Option<Outcome> {
    let mut found: Option<Outcome> = None;
    for probe in 0..PROBES {
        let name = slots::probe_name(prefix, kind, key, probe);
        let Some(outcome) = slots::read(store, &name, key).and_then(|p| decode(&p)) else {
            continue;
        };
        if !live(outcome.until, now) {
            continue;
        }
        if outcome.tokens.is_some() {
            return Some(outcome);
        }
        found.get_or_insert(outcome);
    }
    found
}

/// Claims the tokens of `key`'s live outcome for one request (a code's,
/// for the callback that makes a session of them): true the first time,
/// across workers (a compare-and-set of the slot: one another worker wrote
/// meanwhile counts as claimed), false after, or with no tokens to claim.
pub(super) fn claim(
    store: &mut dyn SharedStore,
    prefix: &str,
    kind: &str,
    key: &Key,
    now: u64,
) -> bool {
    for probe in 0..PROBES {
        let name = slots::probe_name(prefix, kind, key, probe);
        let (value, cas) = store::get_for_write(store, &name);
        let Some((_, mut outcome)) =
            live_in(&value, now).filter(|(owner, o)| *owner == key && o.tokens.is_some())
        else {
            continue;
        };
        if outcome.claimed {
            return false;
        }
        outcome.claimed = true;
        return serde_json::to_vec(&outcome)
            .is_ok_and(|payload| slots::write_if(store, &name, key, &payload, cas));
    }
    false
}

/// Writes `outcome` in the first of the probed slots that is free, expired
/// or already `key`'s. Only when every one holds another live outcome is
/// one given up, the least by `Outcome::rank`, and only for an outcome that
/// ranks above it (a refusal never displaces tokens): then returns false
/// (for a metric).
pub(super) fn write(
    store: &mut dyn SharedStore,
    prefix: &str,
    kind: &str,
    key: &Key,
    outcome: &Outcome,
    now: u64,
) -> bool {
    // The first live outcome with tokens stays: a later refusal of the same
    // value (sent again, spent) must not undo it, in whichever probe each is.
    if read(store, prefix, kind, key, now).is_some_and(|kept| kept.tokens.is_some()) {
        return true;
    }
    let Ok(payload) = serde_json::to_vec(outcome) else {
        return true;
    };
    // The slot to give up: the least by rank.
    let mut oldest: Option<((bool, u64), String, u32)> = None;
    for probe in 0..PROBES {
        let name = slots::probe_name(prefix, kind, key, probe);
        let (value, cas) = store::get_for_write(store, &name);
        let held = live_in(&value, now)
            .filter(|(owner, _)| *owner != key)
            .map(|(_, r)| r.rank());
        match held {
            None if slots::write_if(store, &name, key, &payload, cas) => return true,
            // Another worker wrote it meanwhile: try the next.
            None => {}
            Some(rank) if oldest.as_ref().is_none_or(|(r, _, _)| rank < *r) => {
                oldest = Some((rank, name, cas));
            }
            Some(_) => {}
        }
    }
    if let Some((_, name, cas)) = oldest.filter(|(held, _, _)| *held < outcome.rank()) {
        slots::write_if(store, &name, key, &payload, cas);
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Shared data as Envoy keeps it (an absent key is written whatever the
    /// cas; a present one only at its own).
    #[derive(Default)]
    struct Map(HashMap<String, (Vec<u8>, u32)>, u32);

    impl SharedStore for Map {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.0.get(key).cloned()
        }
        fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
            if cas != 0 && self.0.get(key).is_some_and(|(_, c)| *c != cas) {
                return false;
            }
            self.1 += 1;
            self.0.insert(key.into(), (value.to_vec(), self.1));
            true
        }
    }

    fn tokens(at: &str) -> Option<TokenResponse> {
        serde_json::from_str(&format!(r#"{{"access_token":"{at}"}}"#)).ok()
    }

    #[test]
    fn a_later_refusal_never_hides_the_tokens_an_exchange_got() {
        let mut store = Map::default();
        let (ours, mut other) = ([1u8; 32], [1u8; 32]);
        other[31] = 2; // the same first slot
        let short = Outcome {
            until: 110,
            tokens: None,
            claimed: false,
        };
        assert!(write(&mut store, "p/", "code", &other, &short, 100));
        // Ours goes to the next probe, the first being taken.
        let got = Outcome {
            until: 160,
            tokens: tokens("at-1"),
            claimed: false,
        };
        assert!(write(&mut store, "p/", "code", &ours, &got, 100));
        // The first slot lapses; a refusal of the same code comes later.
        let refused = Outcome {
            until: 170,
            tokens: None,
            claimed: false,
        };
        write(&mut store, "p/", "code", &ours, &refused, 120);
        let read = read(&store, "p/", "code", &ours, 121).expect("an outcome");
        assert_eq!(read.tokens.map(|t| t.access_token).as_deref(), Some("at-1"));
    }

    #[test]
    fn an_outcome_stamped_beyond_its_life_is_lapsed_and_refusals_go_first() {
        let mut store = Map::default();
        // Written before the clock stepped back an hour, a whole life ahead.
        let key = [3u8; 32];
        let stale = Outcome {
            until: 100 + MAX_LIFE + 3600,
            tokens: tokens("at-old"),
            claimed: false,
        };
        assert!(write(
            &mut store,
            "p/",
            "refresh",
            &key,
            &stale,
            MAX_LIFE + 3600
        ));
        assert!(read(&store, "p/", "refresh", &key, 100).is_none());

        // Every probe of a slot taken by a live outcome: the refusal is
        // given up, not the tokens that lapse first.
        let mut store = Map::default();
        let keyed = |n: u8| {
            let mut k = [0u8; 32];
            k[7] = n; // in slot n: slots 0 to 7 are the probes of slot 0
            k[31] = 1;
            k
        };
        for n in 0..8u8 {
            let outcome = Outcome {
                until: 150 + u64::from(n),
                tokens: if n == 5 { None } else { tokens("at") },
                claimed: false,
            };
            assert!(write(&mut store, "p/", "code", &keyed(n), &outcome, 100));
        }
        let mut mine = keyed(0);
        mine[31] = 2;
        let new = Outcome {
            until: 160,
            tokens: tokens("at-new"),
            claimed: false,
        };
        assert!(
            !write(&mut store, "p/", "code", &mine, &new, 100),
            "one given up"
        );
        assert!(
            read(&store, "p/", "code", &keyed(5), 100).is_none(),
            "the refusal"
        );
        assert!(read(&store, "p/", "code", &keyed(0), 100).is_some());
        assert!(read(&store, "p/", "code", &mine, 100).is_some());

        // All taken by tokens now: a refusal displaces none of them.
        let mut refused = keyed(0);
        refused[31] = 3;
        let refusal = Outcome {
            until: 200,
            tokens: None,
            claimed: false,
        };
        assert!(!write(&mut store, "p/", "code", &refused, &refusal, 100));
        assert!(read(&store, "p/", "code", &refused, 100).is_none());
        for n in [0, 1, 2, 3, 4, 6, 7] {
            assert!(read(&store, "p/", "code", &keyed(n), 100).is_some(), "{n}");
        }
    }

    #[test]
    fn tokens_in_a_later_probe_are_read_before_a_refusal_in_an_earlier_one() {
        let mut store = Map::default();
        let key = [5u8; 32];
        let name = |probe| slots::probe_name("p/", "code", &key, probe);
        let refusal = serde_json::to_vec(&Outcome {
            until: 150,
            tokens: None,
            claimed: false,
        })
        .unwrap();
        let got = serde_json::to_vec(&Outcome {
            until: 150,
            tokens: tokens("at-1"),
            claimed: false,
        })
        .unwrap();
        slots::write(&mut store, &name(0), &key, &refusal);
        slots::write(&mut store, &name(3), &key, &got);
        let read = read(&store, "p/", "code", &key, 100).expect("an outcome");
        assert_eq!(read.tokens.map(|t| t.access_token).as_deref(), Some("at-1"));
    }
}
