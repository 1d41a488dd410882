//! Discovery and JWKS documents shared between workers: one worker fetches
//! a document under a lease, stores it in shared data, and the others adopt
//! it from there instead of fetching it too.

use super::{Core, Key};
use crate::action::IdpReply;
use crate::config::{Config, IssuerId};
use crate::error::Error;
use crate::oidc::provider::Document;
use crate::store::SharedStore;

/// The shared-data kind of the leases on discovery and JWKS fetches.
pub const LEASE_KIND: &str = "fetch";

fn shared_key(core: &Core, issuer: IssuerId, doc: Document) -> String {
    let n = issuer.index();
    format!("{}{n}/{}", core.shared_prefix(), doc.endpoint().name())
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
    match (cfg.issuer_at(issuer), core.provider_mut(issuer)) {
        (Some(id), Some(provider)) => provider.adopt(id, doc, body, u64::from_be_bytes(*at), now),
        _ => false,
    }
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
    let outcome = match (cfg.issuer_at(issuer), core.provider_mut(issuer)) {
        (Some(id), Some(provider)) => provider.handle_reply(id, doc, reply, now),
        _ => Ok(0),
    };
    core.leases()
        .release(store, LEASE_KIND, &lease_key(issuer, doc));
    match outcome {
        Ok(skipped) => {
            share(core, store, issuer, doc, now, &reply.body);
            if skipped > 0 {
                core.warn(format!("jwks: skipped {skipped} unusable keys"));
            }
            None
        }
        Err(e) => Some(Error::Idp(e)),
    }
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
