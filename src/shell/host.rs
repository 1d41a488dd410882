//! The engine's `Host` over the proxy-wasm ABI. The SDK's context methods
//! unwrap every status; a failing host call must not kill the VM, so this
//! handles each status: through `hostcalls` where they return it, else
//! through `abi` (the calls that change or answer a request).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use super::abi;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType, Status};

use crate::action::{Action, Decision, IdpReply, IdpRequest, Response};
use crate::engine::{ContextId, Engine, Host, HostFailure, Level};
use crate::request::RequestView;
use crate::store::SharedStore;

/// The host as seen from one callback into context `active`. Acting on
/// another context switches the host's effective context; dropping this
/// switches back, so the host returns to the context it called.
pub struct ProxyHost {
    active: ContextId,
    effective: ContextId,
    shared: SharedData,
}

impl ProxyHost {
    pub fn new(active: ContextId) -> ProxyHost {
        ProxyHost {
            active,
            effective: active,
            shared: SharedData,
        }
    }

    fn switch_to(&mut self, id: ContextId) -> bool {
        if id != self.effective {
            if hostcalls::set_effective_context(id).is_err() {
                return false;
            }
            self.effective = id;
        }
        true
    }
}

impl Drop for ProxyHost {
    fn drop(&mut self) {
        if self.effective != self.active {
            let _ = hostcalls::set_effective_context(self.active);
        }
    }
}

impl Host for ProxyHost {
    fn now(&self) -> u64 {
        since_epoch().as_secs()
    }

    fn store(&mut self) -> &mut dyn SharedStore {
        &mut self.shared
    }

    fn dispatch(&mut self, req: &IdpRequest) -> Result<u32, String> {
        let headers = pairs(&req.headers);
        let timeout = Duration::from_millis(u64::from(req.timeout_ms));
        hostcalls::dispatch_http_call(
            &req.cluster,
            headers,
            req.body.as_deref(),
            Vec::new(),
            timeout,
        )
        .map_err(|status| format!("{status:?}"))
    }

    fn apply(&mut self, id: ContextId, decision: &Decision, paused: bool) -> bool {
        if let Some(line) = &decision.log {
            log(LogLevel::Info, line);
        }
        if !self.switch_to(id) {
            return false; // the request is gone
        }
        match &decision.action {
            Action::Continue { set, remove, .. } => {
                for name in remove {
                    if abi::remove_header(MapType::HttpRequestHeaders, name).is_err() {
                        // A client's copy of a header of ours would go on.
                        log(
                            LogLevel::Error,
                            &format!("could not remove request header {name}"),
                        );
                        send(&internal_error());
                        return false;
                    }
                }
                for (name, value) in set {
                    if abi::replace_header(MapType::HttpRequestHeaders, name, value).is_err() {
                        // Never forward a request we could not rewrite as decided.
                        log(
                            LogLevel::Error,
                            &format!("could not set request header {name}"),
                        );
                        send(&internal_error());
                        return false;
                    }
                }
                if paused && abi::resume_request().is_err() {
                    log(
                        LogLevel::Error,
                        "could not resume the request: resetting the stream",
                    );
                    reset();
                }
                true
            }
            Action::Respond(response) => {
                send(response);
                false
            }
        }
    }

    fn add_response_header(&mut self, id: ContextId, name: &str, value: &str) {
        if !self.switch_to(id)
            || abi::add_header(MapType::HttpResponseHeaders, name, value).is_err()
        {
            log(
                LogLevel::Warn,
                &format!("could not add response header {name}"),
            );
        }
    }

    fn set_tick_period(&mut self, millis: u64) {
        let _ = hostcalls::set_tick_period(Duration::from_millis(millis));
    }

    fn log(&mut self, level: Level, message: &str) {
        log(log_level(level), message);
    }

    fn logs(&self, level: Level) -> bool {
        // A host that cannot say logs everything, as before.
        hostcalls::get_log_level().map_or(true, |at| at as u32 <= log_level(level) as u32)
    }

    fn define_counter(&mut self, name: &str) -> Option<u32> {
        hostcalls::define_metric(MetricType::Counter, name).ok()
    }

    fn increment_counter(&mut self, id: u32, n: u64) {
        let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
    }

    fn request_body(&mut self, id: ContextId, max: usize) -> Option<Vec<u8>> {
        self.switch_to(id).then_some(())?;
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, max)
            .ok()
            .flatten()
    }

    fn property(&mut self, id: ContextId, path: &[&str]) -> Result<Option<Vec<u8>>, HostFailure> {
        if !self.switch_to(id) {
            return Err(HostFailure);
        }
        // NotFound is Ok(None); SerializationFailure, InternalFailure: Err.
        hostcalls::get_property(path.to_vec()).map_err(|_| HostFailure)
    }

    fn set_filter_state(&mut self, id: ContextId, name: &str, value: &[u8]) {
        if !self.switch_to(id) || abi::set_property(name, value).is_err() {
            log(
                LogLevel::Warn,
                &format!("could not set filter state {name}"),
            );
        }
    }
}

/// A worker's engine, shared by its root and request contexts; `None`
/// without a valid configuration.
pub type EngineRef = Option<Rc<RefCell<Engine>>>;

/// Runs `f` on the engine in a callback into context `id`. Skipped when
/// there is no engine, or it is busy (a callback made from inside another,
/// which the host does not do).
pub fn with_engine<R>(
    engine: &EngineRef,
    id: ContextId,
    f: impl FnOnce(&mut Engine, &mut ProxyHost) -> R,
) -> Option<R> {
    let mut engine = engine.as_ref()?.try_borrow_mut().ok()?;
    Some(f(&mut engine, &mut ProxyHost::new(id)))
}

/// The reply to call `token`, delivered in context `id`, to the engine.
pub fn deliver_reply(engine: &EngineRef, id: ContextId, token: u32, headers: usize, body: usize) {
    with_engine(engine, id, |engine, host| {
        engine.handle_reply(host, id, token, &call_reply(headers, body));
    });
}

/// proxy-wasm shared data: visible to every worker of the Envoy process.
struct SharedData;

impl SharedStore for SharedData {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        // A key holding an empty value (a released lease or slot) comes
        // back from the SDK without bytes but with its cas: it exists, and
        // writing it must be a compare-and-set on that cas.
        match hostcalls::get_shared_data(key) {
            Ok((value, Some(cas))) => Some((value.unwrap_or_default(), cas)),
            Ok((Some(value), None)) => Some((value, 0)),
            _ => None,
        }
    }

    fn set(&mut self, key: &str, value: &[u8], cas: u32) -> bool {
        hostcalls::set_shared_data(key, Some(value), (cas != 0).then_some(cas)).is_ok()
    }
}

fn pairs(headers: &[(String, String)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect()
}

pub fn log(level: LogLevel, msg: &str) {
    let _ = hostcalls::log(level, msg);
}

/// Answers the current request; if the host will not take the answer,
/// resets the stream, so that the client is never left waiting for one
/// (and the request never goes on).
fn send(r: &Response) {
    if abi::send_response(r.status, &r.headers, r.body.as_bytes()).is_err() {
        log(
            LogLevel::Error,
            "could not send local response: resetting the stream",
        );
        reset();
    }
}

fn reset() {
    if abi::reset_request().is_err() {
        log(LogLevel::Critical, "could not reset the stream either");
    }
}

pub fn internal_error() -> Response {
    Response {
        status: 500,
        headers: vec![("content-type".into(), "application/json".into())],
        body: r#"{"message":"Internal Server Error"}"#.into(),
    }
}

fn log_level(level: Level) -> LogLevel {
    match level {
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
        Level::Critical => LogLevel::Critical,
    }
}

/// Refuses the current request: no configuration, or unreadable headers.
pub fn refuse(reason: &str) {
    log(LogLevel::Error, &format!("request refused: {reason}"));
    send(&internal_error());
}

pub fn plugin_configuration() -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
}

/// The host's clock since the Unix epoch (Envoy's: 1 µs resolution); zero
/// if the host cannot tell.
pub fn since_epoch() -> Duration {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default()
}

/// The request's headers, in the one buffer the host serialized them into.
/// By hand because the SDK's reader splits that buffer into two allocations
/// per header, and panics on an unexpected status.
///
/// Errs with the host's status code: a `u32`, not the SDK's `Status`, which
/// cannot hold every code a host returns (InvalidMemoryAccess, when the
/// buffer could not be allocated in the module; see `abi`).
pub fn request_headers() -> Result<RequestView, u32> {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> u32;
    }
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes through the two pointers, which are valid.
    let status =
        unsafe { proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) };
    if status != 0 {
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
    RequestView::from_serialized(buf).ok_or(Status::ParseFailure as u32)
}

/// The reply to a dispatched call, read in its `on_http_call_response`.
fn call_reply(num_headers: usize, body_size: usize) -> IdpReply {
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
    // Only a 429's, and only the delta-seconds form: an HTTP date would need
    // a date parser for a rare answer (such a 429 is honoured for 1 s).
    let retry_after = (status == Some(429))
        .then(|| hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, "retry-after"))
        .and_then(|v| v.ok().flatten())
        .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok());
    IdpReply {
        status,
        body,
        retry_after,
    }
}
