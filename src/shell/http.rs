//! A request context: hands each callback to the worker's engine.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::engine::Host;
use crate::shell::host::{self, EngineRef, deliver_reply, with_engine};
use crate::shell::timing;

/// Where each request stops, for the benchmark's bisection of the fixed
/// cost (bench/ladder.sh builds one module per step with `OIDC_LADDER`
/// set; a release build never sets it, and the branches compile away):
/// - `headers`: the header map read into a `RequestView`, then Continue;
/// - `engine`: and the engine entered (borrow, host, clock), no flow.
pub(super) const LADDER: Option<&str> = option_env!("OIDC_LADDER");

pub struct Http {
    id: u32,
    engine: EngineRef,
    /// Decided, and the engine keeps nothing for it: the response headers
    /// and the teardown skip the engine (most requests).
    settled: bool,
}

impl Http {
    pub fn new(id: u32, engine: EngineRef) -> Self {
        Http {
            id,
            engine,
            settled: false,
        }
    }

    /// The request's headers to the engine: forward them now, or hold them
    /// (until an IdP reply, or for good when answered locally).
    fn request_headers(&mut self) -> Action {
        let id = self.id;
        let forward = match host::request_headers() {
            Ok(_) if matches!(LADDER, Some("headers")) => Some(true),
            Ok(_) if matches!(LADDER, Some("engine")) => {
                with_engine(&self.engine, id, |_, host| host.now() > 0)
            }
            Ok(req) => with_engine(&self.engine, id, |engine, host| {
                let forward = engine.handle_request(host, id, req);
                self.settled = !engine.holds(id);
                forward
            }),
            Err(status) => {
                host::refuse(&format!("could not read request headers: status {status}"));
                return Action::Pause;
            }
        };
        match forward {
            Some(true) => Action::Continue,
            Some(false) => Action::Pause,
            None => {
                host::refuse("filter not configured");
                Action::Pause
            }
        }
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        deliver_reply(&self.engine, self.id, token, headers, body);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if !timing::ON {
            return self.request_headers();
        }
        let start = timing::now_ns();
        let action = self.request_headers();
        timing::record(start);
        action
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.settled || matches!(LADDER, Some("headers")) {
            return Action::Continue;
        }
        let id = self.id;
        with_engine(&self.engine, id, |engine, host| {
            engine.handle_response_headers(host, id);
        });
        Action::Continue
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if self.settled || matches!(LADDER, Some("headers")) {
            return;
        }
        let id = self.id;
        with_engine(&self.engine, id, |engine, host| {
            engine.handle_done(host, id)
        });
    }
}
