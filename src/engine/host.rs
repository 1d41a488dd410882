//! What the engine needs of its host: the proxy-wasm ABI in the filter
//! (`shell`), a fake of several workers sharing one store in the tests.

use crate::action::{Decision, IdpRequest};
use crate::store::SharedStore;

/// A host context: a request's (stream) context, or a worker's root.
pub type ContextId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
    Critical,
}

/// The host failed a call it should have answered (a status other than
/// "found" or "not found").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostFailure;

/// Everything the engine asks of the host. Each method says which context
/// it acts on; an implementation that must switch the host's effective
/// context (proxy-wasm) does so itself.
pub trait Host {
    /// Wall-clock seconds since the epoch.
    fn now(&self) -> u64;

    /// Data shared by every worker of the process (proxy-wasm shared data:
    /// get and compare-and-set, no delete).
    fn store(&mut self) -> &mut dyn SharedStore;

    /// Sends an IdP call. Its reply comes back through
    /// `Engine::handle_reply` in the context the host was calling into when
    /// it was dispatched, and only there: if that context goes away first,
    /// the reply is lost (the proxy-wasm SDK's routing). `Err` carries the
    /// host's reason for refusing it.
    fn dispatch(&mut self, request: &IdpRequest) -> Result<u32, String>;

    /// Carries out the engine's decision on request `id` and logs its line:
    /// forward it with its headers rewritten, or answer it locally.
    /// `paused`: the request was paused and must be resumed explicitly.
    /// Returns false when the request was not forwarded (answered locally,
    /// or a header could not be rewritten and the host answered 500).
    fn apply(&mut self, id: ContextId, decision: &Decision, paused: bool) -> bool;

    /// Adds a header to request `id`'s response (a renewed session cookie).
    fn add_response_header(&mut self, id: ContextId, name: &str, value: &str);

    /// How often `Engine::handle_tick` runs, in milliseconds.
    fn set_tick_period(&mut self, millis: u64);

    fn log(&mut self, level: Level, message: &str);

    /// Whether a line at `level` would be written (the host's log level).
    fn logs(&self, level: Level) -> bool;

    /// Defines the counter `name` (once per name: the engine keeps the id).
    fn define_counter(&mut self, name: &str) -> Option<u32>;

    fn increment_counter(&mut self, id: u32, n: u64);

    /// At most `max` bytes of request `id`'s body, as buffered so far.
    /// Envoy's wasm host pauses a request's body together with its headers
    /// (it turns `StopIteration` into `StopAllIterationAndWatermark`), so
    /// the body can only be read once the headers have gone on: nothing may
    /// be decided from it that must hold before the request goes upstream.
    fn request_body(&mut self, id: ContextId, max: usize) -> Option<Vec<u8>>;

    /// A host property of request `id` (e.g. `["xds", "route_name"]`):
    /// `Ok(None)` when the host has none, `Err` when it could not tell.
    fn property(&mut self, id: ContextId, path: &[&str]) -> Result<Option<Vec<u8>>, HostFailure>;

    /// Filter state of request `id`, readable by the host (access logs).
    fn set_filter_state(&mut self, id: ContextId, name: &str, value: &[u8]);
}
