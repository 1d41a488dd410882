//! proxy-wasm shared data as the core's `SharedStore`, plus the documents
//! (discovery, JWKS) that one worker fetches for all.

use proxy_wasm::hostcalls;

use crate::store::SharedStore;

/// The host's shared data: visible to every worker of the Envoy process.
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), cas)) => Some((value, cas.unwrap_or(0))),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
        hostcalls::set_shared_data(key, Some(value), (cas != 0).then_some(cas)).is_ok()
    }
}

/// A stored document: when it was fetched, and its body.
pub fn load_document(key: &str) -> Option<(u64, Vec<u8>)> {
    let (value, _) = HostStore.get(key)?;
    let (at, body) = value.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), body.to_vec()))
}

pub fn store_document(key: &str, fetched_at: u64, body: &[u8]) {
    let mut value = Vec::with_capacity(8 + body.len());
    value.extend_from_slice(&fetched_at.to_be_bytes());
    value.extend_from_slice(body);
    // Last writer wins: any copy is a valid, verified document.
    HostStore.set(key, &value, 0);
}
