//! The outcomes of one-time exchanges (a refresh token's, a login's code)
//! as the workers share them: a live outcome is what stops another
//! worker's request from spending the same one-time value again, so it is
//! kept in probed slots (`slots::probe_name`) where a colliding key's
//! outcome never overwrites it while a free slot is near.

use serde::{Deserialize, Serialize};

use super::slots::{self, Key};
use crate::oidc::token::TokenResponse;
use crate::store::SharedStore;

/// An exchange's outcome, readable until `until`.
#[derive(Clone, Serialize, Deserialize)]
pub(super) struct Outcome {
    pub(super) until: u64,
    /// None: the IdP refused the value (spent, revoked, or our client).
    pub(super) tokens: Option<TokenResponse>,
}

/// Slots an outcome may take: its own and the next ones.
const PROBES: u64 = 8;

fn decode(payload: &[u8]) -> Option<Outcome> {
    crate::json::from_object(payload).ok()
}

/// The live outcome for `key` among `kind`'s slots, if any.
pub(super) fn read(
    store: &dyn SharedStore,
    prefix: &str,
    kind: &str,
    key: &Key,
    now: u64,
) -> Option<Outcome> {
    (0..PROBES)
        .map(|probe| slots::probe_name(prefix, kind, key, probe))
        .find_map(|name| slots::read(store, &name, key).and_then(|p| decode(&p)))
        .filter(|r| now < r.until)
}

/// Writes `outcome` in the first of the probed slots that is free, expired
/// or already `key`'s. Only when every one holds another live outcome is
/// the one that lapses first given up: then returns false (for a metric).
pub(super) fn write(
    store: &mut dyn SharedStore,
    prefix: &str,
    kind: &str,
    key: &Key,
    outcome: &Outcome,
    now: u64,
) -> bool {
    let Ok(payload) = serde_json::to_vec(outcome) else {
        return true;
    };
    let mut oldest: Option<(u64, String, u32)> = None;
    for probe in 0..PROBES {
        let name = slots::probe_name(prefix, kind, key, probe);
        let (value, cas) = crate::store::get_for_write(store, &name);
        // The first live outcome with tokens stays: a later refusal of the
        // same value (sent again, spent) must not undo it.
        let kept = value
            .split_first_chunk::<32>()
            .filter(|(owner, _)| *owner == key)
            .and_then(|(_, p)| decode(p))
            .is_some_and(|r| now < r.until && r.tokens.is_some());
        if kept {
            return true;
        }
        let held = value
            .split_first_chunk::<32>()
            .filter(|(owner, _)| *owner != key)
            .and_then(|(_, p)| decode(p))
            .map(|r| r.until)
            .filter(|until| now < *until);
        match held {
            None if slots::write_if(store, &name, key, &payload, cas) => return true,
            // Another worker wrote it meanwhile: try the next.
            None => {}
            Some(until) if oldest.as_ref().is_none_or(|(u, _, _)| until < *u) => {
                oldest = Some((until, name, cas));
            }
            Some(_) => {}
        }
    }
    if let Some((_, name, cas)) = oldest {
        slots::write_if(store, &name, key, &payload, cas);
    }
    false
}
