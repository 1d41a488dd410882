//! Discovery and JWKS documents shared between workers: one worker fetches
//! a document under a lease, stores it in shared data, and the others adopt
//! it from there instead of fetching it too.

use super::{Core, Key};
use crate::action::IdpReply;
use crate::config::{Config, IssuerId};
use crate::error::{Error, IdpError};
use crate::oidc::provider::Document;
use crate::oidc::token;
use crate::store::{self, SharedStore};

/// The shared-data kind of the leases on discovery and JWKS fetches.
pub const LEASE_KIND: &str = "fetch";

fn shared_key(core: &Core, issuer: IssuerId, doc: Document) -> String {
    let n = issuer.index();
    format!("{}{n}/{}", core.shared_prefix(), doc.endpoint().name())
}

/// Where a fetch of `doc` that the IdP throttled says until when: every
/// worker waits as the IdP asked, not each one asking once itself.
fn throttle_key(core: &Core, issuer: IssuerId, doc: Document) -> String {
    format!("{}-throttled", shared_key(core, issuer, doc))
}

/// Whether another worker's fetch of `doc` was throttled until after
/// `now`: if so, it is this worker's failed fetch too (`fetch_failed`: a
/// stale copy serves on, or requests fail as the IdP asked), and no fetch
/// is made.
pub fn throttled(
    core: &mut Core,
    store: &dyn SharedStore,
    issuer: IssuerId,
    doc: Document,
    now: u64,
) -> bool {
    let until = store
        .get(&throttle_key(core, issuer, doc))
        .and_then(|(v, _)| read_until(&v))
        // Beyond the longest wait honoured, the record is not believed (a
        // clock stepped back, a value not ours).
        .filter(|&until| now < until && store::believed(until, now, token::MAX_RETRY_AFTER));
    let (Some(until), Some(provider)) = (until, core.provider_mut(issuer)) else {
        return false;
    };
    let e = IdpError::Throttled {
        endpoint: doc.endpoint(),
        retry_after: (until - now).min(token::MAX_RETRY_AFTER),
    };
    provider.fetch_failed(doc, &e, now);
    true
}

/// Names the fetch of `doc` of `issuer` (its lease).
pub(super) fn lease_key(issuer: IssuerId, doc: Document) -> Key {
    let mut key = [0u8; 32];
    let n = u64::try_from(issuer.index())
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
        + u64::from(doc == Document::Jwks);
    key[..8].copy_from_slice(&n.to_be_bytes());
    key
}

/// Takes the lease to fetch `doc` for every worker of this Envoy. False:
/// another worker is fetching it.
pub fn lease(
    cfg: &Config,
    core: &Core,
    store: &mut dyn SharedStore,
    issuer: IssuerId,
    doc: Document,
    now: u64,
) -> bool {
    core.leases().acquire(
        store,
        LEASE_KIND,
        &lease_key(issuer, doc),
        now,
        cfg.idp_timeout_ms,
    )
}

/// Adopts the document another worker stored, if it is newer than ours and
/// recent enough (see `Provider::adopt`). Returns whether it was taken.
pub fn adopt(
    cfg: &Config,
    core: &mut Core,
    store: &dyn SharedStore,
    issuer: IssuerId,
    doc: Document,
    now: u64,
) -> bool {
    let Some((value, _)) = store.get(&shared_key(core, issuer, doc)) else {
        return false;
    };
    let Some((at, body)) = value.split_first_chunk::<8>() else {
        return false;
    };
    let before = core.withdrawals();
    let taken = match (cfg.issuer_at(issuer), core.provider_mut(issuer)) {
        (Some(id), Some(provider)) => provider.adopt(id, doc, body, u64::from_be_bytes(*at), now),
        _ => false,
    };
    core.forget_verifications_if_withdrawn(before);
    taken
}

/// Gives a fetched document to its provider, shares it with the other
/// workers when it is good, and gives the fetch lease back.
pub(super) fn handle_reply(
    cfg: &Config,
    issuer: IssuerId,
    doc: Document,
    reply: &IdpReply,
    now: u64,
    core: &mut Core,
    store: &mut dyn SharedStore,
) -> Option<Error> {
    let before = core.withdrawals();
    let outcome = match (cfg.issuer_at(issuer), core.provider_mut(issuer)) {
        (Some(id), Some(provider)) => provider.handle_reply(id, doc, reply, now),
        _ => Ok(0),
    };
    core.forget_verifications_if_withdrawn(before);
    // What the others should know goes to shared data before the lease is
    // given back: a worker taking it in between would fetch again.
    let failed = match outcome {
        Ok(skipped) => {
            share(core, store, issuer, doc, now, &reply.body);
            if skipped > 0 {
                core.warn(format!("jwks: skipped {skipped} unusable keys"));
            }
            None
        }
        Err(e) => {
            if let IdpError::Throttled { retry_after, .. } = e {
                throttle(core, store, issuer, doc, now, retry_after);
            }
            Some(Error::Idp(e))
        }
    };
    core.leases()
        .release(store, LEASE_KIND, &lease_key(issuer, doc));
    failed
}

/// Notes for every worker that the IdP throttled fetches of `doc` for
/// `wait` seconds from `now`: never shortening a longer wait another worker
/// noted (one that `throttled` believes).
fn throttle(
    core: &Core,
    store: &mut dyn SharedStore,
    issuer: IssuerId,
    doc: Document,
    now: u64,
    wait: u64,
) {
    let key = throttle_key(core, issuer, doc);
    let until = now.saturating_add(wait);
    let longer = |noted: u64| noted >= until && store::believed(noted, now, token::MAX_RETRY_AFTER);
    for _ in 0..4 {
        let (value, cas) = store::get_for_write(store, &key);
        if read_until(&value).is_some_and(longer) || store.set(&key, &until.to_be_bytes(), cas) {
            return;
        }
    }
}

fn read_until(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.try_into().ok()?))
}

/// Shares a document this worker fetched and verified. Last writer wins:
/// any copy is a valid document.
fn share(
    core: &Core,
    store: &mut dyn SharedStore,
    issuer: IssuerId,
    doc: Document,
    fetched_at: u64,
    body: &[u8],
) {
    let mut value = Vec::with_capacity(8 + body.len());
    value.extend_from_slice(&fetched_at.to_be_bytes());
    value.extend_from_slice(body);
    store.set(&shared_key(core, issuer, doc), &value, 0);
}
