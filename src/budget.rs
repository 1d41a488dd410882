//! The IdP as a resource an attacker can spend through us: calls that
//! unauthenticated input can cause are budgeted per purpose for the whole
//! Envoy and IdP (`idp_call_budget`; where: `Names`). A budget is a rate
//! (a token bucket: `burst` calls at once, refilled at `per_second`) and a
//! number of calls in flight (`concurrent`), both kept in shared data so
//! that every worker spends the same budget. Past it the filter answers 503 with
//! `Retry-After` and calls nothing.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::ConfigError;
use crate::store::{self, SharedStore};

/// What a budgeted call is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Code,
    ClientCredentials,
    Refresh,
    Introspection,
    Userinfo,
}

impl Purpose {
    pub const ALL: [Purpose; 5] = [
        Purpose::Code,
        Purpose::ClientCredentials,
        Purpose::Refresh,
        Purpose::Introspection,
        Purpose::Userinfo,
    ];

    /// Its name in `idp_call_budget`.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::Code => "code",
            Purpose::ClientCredentials => "client_credentials",
            Purpose::Refresh => "refresh",
            Purpose::Introspection => "introspection",
            Purpose::Userinfo => "userinfo",
        }
    }

    fn index(self) -> usize {
        match self {
            Purpose::Code => 0,
            Purpose::ClientCredentials => 1,
            Purpose::Refresh => 2,
            Purpose::Introspection => 3,
            Purpose::Userinfo => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub per_second: u64,
    pub burst: u64,
    pub concurrent: u64,
}

/// Generous for one client's real traffic, small enough that a flood
/// cannot exhaust a Cognito client's quota (raise `introspection` for APIs
/// with many distinct opaque tokens).
const DEFAULT: Budget = Budget {
    per_second: 20,
    burst: 20,
    concurrent: 8,
};
/// Bounds that keep the shared-data slots a small fixed set.
const MAX_RATE: u64 = 100_000;
const MAX_CONCURRENT: u64 = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budgets([Budget; 5]);

impl Default for Budgets {
    fn default() -> Budgets {
        Budgets([DEFAULT; 5])
    }
}

impl Budgets {
    /// From `idp_call_budget`: `{"<purpose>": {"per_second", "burst",
    /// "concurrent"}}`, each field optional. Read by hand so that a refusal
    /// names the whole path of the field.
    pub fn parse(raw: Option<BTreeMap<String, Value>>) -> Result<Budgets, ConfigError> {
        let mut budgets = Budgets::default();
        for (name, entry) in raw.unwrap_or_default() {
            let path = format!("idp_call_budget.{name}");
            let Some(purpose) = Purpose::ALL.into_iter().find(|p| p.name() == name) else {
                return Err(ConfigError::new(
                    &path,
                    "is not a purpose (code, client_credentials, refresh, introspection, userinfo)",
                ));
            };
            let Value::Object(fields) = entry else {
                return Err(ConfigError::new(&path, "must be an object"));
            };
            if let Some(unknown) = fields
                .keys()
                .find(|k| !["per_second", "burst", "concurrent"].contains(&k.as_str()))
            {
                return Err(ConfigError::new(
                    &format!("{path}.{unknown}"),
                    "unknown key (per_second, burst, concurrent)",
                ));
            }
            let field = |key: &str, default: u64, max: u64| match fields.get(key) {
                None => Ok(default),
                Some(v) => match v.as_u64() {
                    Some(n @ 1..) if n <= max => Ok(n),
                    _ => Err(ConfigError::new(
                        &format!("{path}.{key}"),
                        format!("{v} is not a whole number from 1 to {max}"),
                    )),
                },
            };
            // The bucket refills once a second, up to `burst`: a rate above
            // it would be capped at it. So `burst` follows a higher
            // `per_second` when left out, and may not be below it.
            let per_second = field("per_second", DEFAULT.per_second, MAX_RATE)?;
            let burst = field("burst", DEFAULT.burst.max(per_second), MAX_RATE)?;
            if burst < per_second {
                return Err(ConfigError::new(
                    &format!("{path}.burst"),
                    format!(
                        "{burst} is below per_second ({per_second}): the bucket holds at most \
                         `burst` calls a second"
                    ),
                ));
            }
            let budget = Budget {
                per_second,
                burst,
                concurrent: field("concurrent", DEFAULT.concurrent, MAX_CONCURRENT)?,
            };
            if let Some(slot) = budgets.0.get_mut(purpose.index()) {
                *slot = budget;
            }
        }
        Ok(budgets)
    }

    pub fn of(&self, purpose: Purpose) -> Budget {
        self.0.get(purpose.index()).copied().unwrap_or(DEFAULT)
    }
}

/// An admitted call: the concurrency slot it holds until its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    purpose: Purpose,
    slot: u64,
    /// The slot's value as this worker wrote it: released only if unchanged.
    held: [u8; 24],
}

/// Where each purpose's budget is in shared data: under the scope it is
/// spent at (`flow::budget_names`: the IdP's, or its client's, not one
/// configuration's) and its numbers, so that configurations sharing a
/// scope share a purpose's budget only when they give it the same numbers
/// (each then keeps to exactly its own, and a raised budget is its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names([String; 5]);

impl Names {
    /// `scope(p)`: the shared-data prefix `p` is spent under.
    pub fn new(budgets: &Budgets, scope: impl Fn(Purpose) -> String) -> Names {
        Names(Purpose::ALL.map(|p| {
            let b = budgets.of(p);
            format!(
                "{}budget/{}/{}-{}-{}",
                scope(p),
                p.name(),
                b.per_second,
                b.burst,
                b.concurrent
            )
        }))
    }

    /// The key of `p`'s rate bucket (its slots' names start with it).
    pub fn bucket(&self, p: Purpose) -> &str {
        self.0.get(p.index()).map_or("", String::as_str)
    }

    pub fn slot(&self, p: Purpose, n: u64) -> String {
        format!("{}-slot/{n}", self.bucket(p))
    }
}

/// Creates the slots up front, so that taking one is always a real
/// compare-and-set (the host writes unconditionally to an absent key).
pub fn prepare(budgets: &Budgets, names: &Names, store: &mut dyn SharedStore) {
    for p in Purpose::ALL {
        for n in 0..budgets.of(p).concurrent {
            // Created only if absent: a worker starting late must not
            // empty a slot another has taken meanwhile.
            store::create(store, &names.slot(p, n), &[]);
        }
    }
}

/// How far ahead of `now` a bucket's stamp is another worker's reading.
const BUCKET_SKEW: u64 = 2;

/// A few tries against other workers' concurrent writes, then no.
const CAS_TRIES: usize = 4;

/// Takes one call of `purpose` out of the budget at `now`: a slot for its
/// time in flight (until `lapse`, when a lost reply gives it back) and a
/// token of the rate. `None`: over budget.
pub fn admit(
    budgets: &Budgets,
    purpose: Purpose,
    names: &Names,
    holder: [u8; 8],
    store: &mut dyn SharedStore,
    now: u64,
    lapse: u64,
) -> Option<Ticket> {
    let budget = budgets.of(purpose);
    let ticket = take_slot(budget, purpose, names, holder, store, now, lapse)?;
    if take_token(budget, purpose, names, store, now) {
        Some(ticket)
    } else {
        release(&ticket, names, store);
        None
    }
}

fn take_slot(
    budget: Budget,
    purpose: Purpose,
    names: &Names,
    holder: [u8; 8],
    store: &mut dyn SharedStore,
    now: u64,
    lapse: u64,
) -> Option<Ticket> {
    let mut held = [0u8; 24];
    held[..8].copy_from_slice(&lapse.to_be_bytes());
    held[8..16].copy_from_slice(&holder);
    held[16..].copy_from_slice(&now.to_be_bytes());
    for n in 0..budget.concurrent {
        let key = names.slot(purpose, n);
        let Some((value, cas)) = store.get(&key) else {
            continue;
        };
        if !held_at(&value, now) && store.set(&key, &held, cas) {
            return Some(Ticket {
                purpose,
                slot: n,
                held,
            });
        }
    }
    None
}

/// Whether a slot's value (`lapse ‖ holder ‖ taken at`) holds it at
/// `now`: until its lapse, however long the configuration that took it
/// waits for its IdP (another spending this budget may wait longer), unless
/// it was taken later than now could be, beyond the workers' skew. Then the
/// clock stepped back since, and the slot is free rather than held for as
/// long as the step: judged by when it was taken, not by its lapse, which
/// may be as far ahead as the longest timeout any configuration allows.
/// (An empty value is a free slot; one without the time, from a build
/// before, is free too: one call more at most, once.)
fn held_at(value: &[u8], now: u64) -> bool {
    let time = |at: usize| {
        value
            .get(at..at + 8)?
            .try_into()
            .ok()
            .map(u64::from_be_bytes)
    };
    match (time(0), time(16)) {
        (Some(lapse), Some(taken)) => now < lapse && taken <= now.saturating_add(store::CLOCK_SKEW),
        _ => false,
    }
}

fn take_token(
    budget: Budget,
    purpose: Purpose,
    names: &Names,
    store: &mut dyn SharedStore,
    now: u64,
) -> bool {
    let key = names.bucket(purpose);
    for _ in 0..CAS_TRIES {
        let (value, cas) = store::get_for_write(store, key);
        let stamped = |a: &[u8]| a.try_into().map_or(now, u64::from_be_bytes);
        let (tokens, at) = match (value.first_chunk::<8>(), value.get(8..16).map(stamped)) {
            (Some(t), Some(at)) => (u64::from_be_bytes(*t), at),
            _ => (budget.burst, now),
        };
        // A stamp ahead refills nothing. A second or two ahead, it is
        // another worker's later clock reading, kept; further, it was made
        // before the clock stepped back, and refilling goes on from now
        // (not from a time the clock may take a while to reach).
        let restamp = at > now + BUCKET_SKEW;
        let at = if restamp { now } else { at };
        let refilled = tokens
            .saturating_add(now.saturating_sub(at).saturating_mul(budget.per_second))
            .min(budget.burst);
        let write = |tokens: u64, store: &mut dyn SharedStore| {
            let mut next = Vec::with_capacity(16);
            next.extend_from_slice(&tokens.to_be_bytes());
            next.extend_from_slice(&now.max(at).to_be_bytes());
            store.set(key, &next, cas)
        };
        if refilled == 0 {
            // Empty: restamped all the same, or it would never refill.
            if restamp {
                write(0, store);
            }
            return false;
        }
        if write(refilled - 1, store) {
            return true;
        }
    }
    false
}

/// Gives a call's slot back (its reply came, or it will never be made).
pub fn release(ticket: &Ticket, names: &Names, store: &mut dyn SharedStore) {
    let key = names.slot(ticket.purpose, ticket.slot);
    if let Some((value, cas)) = store.get(&key)
        && value == ticket.held
    {
        store.set(&key, &[], cas);
    }
}
