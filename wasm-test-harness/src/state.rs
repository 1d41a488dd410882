//! The host's state for one VM (one Envoy worker): its contexts, the
//! streams they belong to, the calls they made, and a handle on the world.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;

use crate::headers::HeaderMap;
use crate::types::LogLevel;
use crate::world::{LogLine, World};

/// A local reply the module sent with `proxy_send_local_response`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub details: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub grpc_status: i32,
}

/// Where a request stands, from the proxy's point of view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `proxy_on_request_headers` is still running.
    Pending,
    /// The module paused the request and has neither resumed it nor replied.
    Paused,
    /// The request goes upstream (headers returned Continue, or resumed).
    Continued,
    /// The module answered the request itself.
    LocalReply(LocalReply),
    /// The module reset the stream (`proxy_close_stream`).
    Reset,
}

pub(crate) struct Stream {
    pub request_headers: HeaderMap,
    /// Envoy forgets the request header map once the request continues, so
    /// later reads and writes of it fail with `BadArgument`.
    pub request_headers_open: bool,
    pub request_body: Option<Vec<u8>>,
    pub response_headers: Option<HeaderMap>,
    pub response_headers_open: bool,
    pub response_body: Option<Vec<u8>>,
    pub outcome: Outcome,
    /// Set when a second local reply or a continue after a reply was seen.
    pub misuse: Vec<String>,
}

impl Stream {
    pub(crate) fn new(request_headers: HeaderMap) -> Self {
        Self {
            request_headers,
            request_headers_open: true,
            request_body: None,
            response_headers: None,
            response_headers_open: false,
            response_body: None,
            outcome: Outcome::Pending,
            misuse: Vec::new(),
        }
    }
}

/// An outgoing call made with `proxy_http_call`, not yet answered.
#[derive(Clone, Debug)]
pub(crate) struct PendingCall {
    pub token: u32,
    /// The context that was effective when the call was made.
    pub origin: u32,
    pub cluster: String,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
    pub timeout_ms: u32,
}

/// The answer to a call, readable only during `proxy_on_http_call_response`.
pub(crate) struct CallReply {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

pub(crate) struct HostState {
    pub worker: usize,
    pub world: Rc<RefCell<World>>,
    pub root_id: u32,
    pub next_context_id: u32,
    /// Live contexts (the root and every stream not yet deleted).
    pub contexts: BTreeSet<u32>,
    pub streams: HashMap<u32, Stream>,
    /// Context of the host→module call in progress (0 when none).
    pub current: u32,
    /// Set by `proxy_set_effective_context` until the call returns.
    pub effective: u32,
    pub vm_config: Vec<u8>,
    /// The plugin configuration, readable only during `proxy_on_configure`.
    pub plugin_config: Option<Vec<u8>>,
    pub call_reply: Option<CallReply>,
    pub next_token: u32,
    pub calls: Vec<PendingCall>,
    pub tick_period_ms: u32,
    pub metric_names: HashMap<u32, String>,
    pub next_metric_seq: u32,
    /// `proxy_get_status`: code and message of the last call failure.
    pub status: (u32, String),
    pub rng: u64,
}

impl HostState {
    pub(crate) fn new(
        worker: usize,
        world: Rc<RefCell<World>>,
        vm_config: Vec<u8>,
        seed: u64,
    ) -> Self {
        Self {
            worker,
            world,
            // Envoy numbers contexts per VM; the root context comes first.
            root_id: 1,
            next_context_id: 2,
            contexts: BTreeSet::from([1]),
            streams: HashMap::new(),
            current: 0,
            effective: 0,
            vm_config,
            plugin_config: None,
            call_reply: None,
            next_token: 1,
            calls: Vec::new(),
            tick_period_ms: 0,
            metric_names: HashMap::new(),
            next_metric_seq: 0,
            status: (0, String::new()),
            rng: seed,
        }
    }

    /// The context host calls act on: the effective one if set and alive,
    /// else the current one (proxy-wasm-cpp-host `ContextOrEffectiveContext`).
    pub(crate) fn acting_context(&self) -> u32 {
        if self.effective != 0 && self.contexts.contains(&self.effective) {
            self.effective
        } else {
            self.current
        }
    }

    pub(crate) fn acting_stream(&mut self) -> Option<&mut Stream> {
        let id = self.acting_context();
        self.streams.get_mut(&id)
    }

    pub(crate) fn log(&self, level: LogLevel, from_host: bool, message: String) {
        let line = LogLine {
            worker: self.worker,
            context: self.acting_context(),
            level,
            from_host,
            message,
        };
        self.world.borrow_mut().log(line);
    }

    /// A note about how the module used the ABI, for the test author.
    pub(crate) fn note(&self, message: String) {
        self.log(LogLevel::Warn, true, message);
    }

    /// splitmix64: deterministic per seed, distinct per worker.
    pub(crate) fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
