//! A request context: hands each callback to the worker's engine.

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::shell::host::{self, EngineRef, deliver_reply, with_engine};

pub struct Http {
    id: u32,
    engine: EngineRef,
}

impl Http {
    pub fn new(id: u32, engine: EngineRef) -> Self {
        Http { id, engine }
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        deliver_reply(&self.engine, self.id, token, headers, body);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let id = self.id;
        let forward = match host::request_headers() {
            Ok(req) => with_engine(&self.engine, id, |engine, host| {
                engine.handle_request(host, id, req)
            }),
            Err(status) => {
                host::refuse(&format!("could not read request headers: {status:?}"));
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

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let id = self.id;
        with_engine(&self.engine, id, |engine, host| {
            engine.handle_response_headers(host, id);
        });
        Action::Continue
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        let id = self.id;
        with_engine(&self.engine, id, |engine, host| {
            engine.handle_done(host, id)
        });
    }
}
