//! The host calls that change a request or answer it, declared here as the
//! proxy-wasm ABI (0.2.1) has them, so that a failing status is an `Err`.
//! The SDK's `hostcalls` for these return a `Result` but panic on any
//! status other than `Ok`, and a panic kills the worker's VM (every later
//! request on it fails); the shell's error branches (a request that could
//! not be rewritten gets a 500, never goes on unchanged) then never ran.
//! The declarations are the SDK's (same names, same wasm types), so the
//! module imports each function once; they return the status as the
//! `u32` it is: the host may answer a code the SDK's `Status` lacks
//! (InvalidMemoryAccess, Unimplemented), which that enum cannot hold.

use proxy_wasm::types::{MapType, StreamType};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_replace_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: MapType,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_continue_stream(stream_type: StreamType) -> u32;
    fn proxy_close_stream(stream_type: StreamType) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
}

/// The ABI's status: 0 is Ok, any other a failure (its code).
fn ok(status: u32) -> Result<(), u32> {
    match status {
        0 => Ok(()),
        code => Err(code),
    }
}

pub fn replace_header(map: MapType, name: &str, value: &str) -> Result<(), u32> {
    // SAFETY: the host reads the two strings, valid for their lengths.
    ok(unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn remove_header(map: MapType, name: &str) -> Result<(), u32> {
    // SAFETY: as above.
    ok(unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) })
}

pub fn add_header(map: MapType, name: &str, value: &str) -> Result<(), u32> {
    // SAFETY: as above.
    ok(unsafe {
        proxy_add_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

pub fn resume_request() -> Result<(), u32> {
    // SAFETY: no memory is passed.
    ok(unsafe { proxy_continue_stream(StreamType::HttpRequest) })
}

/// Resets the request's stream: what is left when it can neither go on
/// nor be answered (the SDK's `reset_http_request` panics on a failure).
pub fn reset_request() -> Result<(), u32> {
    // SAFETY: no memory is passed.
    ok(unsafe { proxy_close_stream(StreamType::HttpRequest) })
}

/// A local response (no gRPC status, no details).
pub fn send_response(status: u32, headers: &[(String, String)], body: &[u8]) -> Result<(), u32> {
    let headers = serialized(headers);
    // SAFETY: the host reads the body and the headers, valid for their
    // lengths; no details (null, 0).
    ok(unsafe {
        proxy_send_local_response(
            status,
            std::ptr::null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// A property (filter state) at the one-segment path `name`.
pub fn set_property(name: &str, value: &[u8]) -> Result<(), u32> {
    // SAFETY: the host reads the two byte strings, valid for their lengths.
    ok(unsafe { proxy_set_property(name.as_ptr(), name.len(), value.as_ptr(), value.len()) })
}

/// A header map as the ABI passes it: the number of pairs, each name's and
/// value's length (32-bit little-endian), then each name and value followed
/// by a NUL.
fn serialized(headers: &[(String, String)]) -> Vec<u8> {
    let size = headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 10)
        .sum::<usize>();
    let mut out = Vec::with_capacity(4 + size);
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len(headers.len()));
    for (name, value) in headers {
        out.extend_from_slice(&len(name.len()));
        out.extend_from_slice(&len(value.len()));
    }
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}
