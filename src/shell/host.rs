//! Fallible host calls. The SDK's context methods unwrap every status; a
//! failing host call must not kill the VM, so the shell uses these.

use std::time::{Duration, UNIX_EPOCH};

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use crate::action::{IdpReply, IdpRequest, Response};
use crate::request::RequestView;

pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

/// Wall-clock seconds since the epoch, from the host.
pub fn now() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

pub fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
}

/// The request's headers, in the one buffer the host serialized them into.
/// By hand because the SDK's reader splits that buffer into two allocations
/// per header, and panics on an unexpected status.
pub fn request_headers() -> Result<RequestView, Status> {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> Status;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes through the two pointers, which are valid.
    let status =
        unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) };
    if status != Status::Ok {
        return Err(status);
    }
    let buf = if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the host allocated the buffer through this module's
        // `proxy_on_memory_allocate` (the SDK's: a boxed slice of exactly
        // `size` bytes) and hands it over; the SDK's own reader frees it the
        // same way.
        unsafe { Vec::from_raw_parts(data, size, size) }
    };
    RequestView::from_serialized(buf).ok_or(Status::ParseFailure)
}

pub fn remove_request_header(name: &str) {
    if hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).is_err() {
        log(
            LogLevel::Warn,
            &format!("could not remove request header {name}"),
        );
    }
}

pub fn set_request_header(name: &str, value: &str) -> Result<(), Status> {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
}

pub fn define_counter(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

pub fn increment_counter(id: u32, n: u64) {
    let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
}

pub fn add_response_header(name: &str, value: &str) {
    if hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value).is_err() {
        log(
            LogLevel::Warn,
            &format!("could not add response header {name}"),
        );
    }
}

pub fn send_response(r: &Response) -> Result<(), Status> {
    let headers: Vec<(&str, &str)> = r
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    hostcalls::send_http_response(r.status, headers, Some(r.body.as_bytes()))
}

pub fn resume_request() -> Result<(), Status> {
    hostcalls::resume_http_request()
}

pub fn set_effective_context(id: u32) -> Result<(), Status> {
    hostcalls::set_effective_context(id)
}

pub fn set_tick_period(period: Duration) {
    let _ = hostcalls::set_tick_period(period);
}

pub fn dispatch(req: &IdpRequest) -> Result<u32, Status> {
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    hostcalls::dispatch_http_call(
        &req.cluster,
        headers,
        req.body.as_deref(),
        Vec::new(),
        Duration::from_millis(u64::from(req.timeout_ms)),
    )
}

/// The reply to a dispatched call, read in its `on_http_call_response`.
pub fn call_reply(num_headers: usize, body_size: usize) -> IdpReply {
    // A reset call has no header map at all; the SDK would panic reading it.
    let status = if num_headers == 0 {
        None
    } else {
        hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
    };
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    IdpReply { status, body }
}
