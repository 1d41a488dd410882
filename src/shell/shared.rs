//! Documents shared by all workers through proxy-wasm shared data, so that
//! one fetch of discovery or JWKS serves every worker.
//!
//! Shared data has no delete: only a fixed, small set of keys is ever
//! written here (one per document per configuration).

use proxy_wasm::hostcalls;

/// A stored document: when it was fetched, and its body.
pub fn load(key: &str) -> Option<(u64, Vec<u8>)> {
    let (value, _cas) = hostcalls::get_shared_data(key).ok()?;
    let value = value?;
    let (at, body) = value.split_first_chunk::<8>()?;
    Some((u64::from_be_bytes(*at), body.to_vec()))
}

pub fn store(key: &str, fetched_at: u64, body: &[u8]) {
    let mut value = Vec::with_capacity(8 + body.len());
    value.extend_from_slice(&fetched_at.to_be_bytes());
    value.extend_from_slice(body);
    // Last writer wins: any copy is a valid, verified document.
    let _ = hostcalls::set_shared_data(key, Some(&value), None);
}
