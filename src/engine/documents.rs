//! Discovery and JWKS documents shared between workers: one worker fetches
//! a document under a lease, stores it in shared data, and the others adopt
//! it from there instead of fetching it too.

use crate::config::Config;
use crate::flow::{Core, Key};
use crate::oidc::provider::Document;
use crate::store::SharedStore;

/// The shared-data kind of the leases on discovery and JWKS fetches.
pub const LEASE_KIND: &str = "fetch";

fn shared_key(core: &Core, issuer: usize, doc: Document) -> String {
    format!("{}{issuer}/{}", core.shared_prefix(), doc.endpoint().name())
}

/// Names the fetch of `doc` of the issuer at `issuer` (its lease).
fn lease_key(issuer: usize, doc: Document) -> Key {
    let mut key = [0u8; 32];
    let n = u64::try_from(issuer).unwrap_or(u64::MAX).saturating_mul(2)
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
    issuer: usize,
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

/// Gives back the lease of a fetch that was answered, failed or abandoned.
pub fn release(core: &Core, store: &mut dyn SharedStore, issuer: usize, doc: Document) {
    core.leases()
        .release(store, LEASE_KIND, &lease_key(issuer, doc));
}

/// Adopts the document another worker stored, if it is newer than ours and
/// recent enough (see `Provider::adopt`). Returns whether it was taken.
pub fn adopt(
    cfg: &Config,
    core: &mut Core,
    store: &dyn SharedStore,
    issuer: usize,
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

/// Shares a document this worker fetched and verified. Last writer wins:
/// any copy is a valid document.
pub fn share(
    core: &Core,
    store: &mut dyn SharedStore,
    issuer: usize,
    doc: Document,
    fetched_at: u64,
    body: &[u8],
) {
    let mut value = Vec::with_capacity(8 + body.len());
    value.extend_from_slice(&fetched_at.to_be_bytes());
    value.extend_from_slice(body);
    store.set(&shared_key(core, issuer, doc), &value, 0);
}
