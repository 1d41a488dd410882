//! A request context: reads the headers, hands them to the worker, and
//! applies its decision.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, LogLevel};

use crate::action::{Decision, Response};
use crate::shell::host;
use crate::shell::worker::{Outcome, Worker, apply, deliver_reply};

pub struct Http {
    id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
}

impl Http {
    pub fn new(id: u32, worker: Option<Rc<RefCell<Worker>>>) -> Self {
        Http { id, worker }
    }
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token: u32,
        headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        deliver_reply(self.worker.as_ref(), token, self.id, headers, body_size);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = &self.worker else {
            return deny_unconfigured();
        };
        let headers = match host::request_headers() {
            Ok(h) => h,
            Err(status) => {
                host::log(
                    LogLevel::Error,
                    &format!("could not read request headers: {status:?}"),
                );
                return deny_unconfigured();
            }
        };
        let outcome = worker.borrow_mut().run(self.id, self.id, headers, None);
        match outcome {
            Outcome::Decided(decision) if apply(&decision, false) => Action::Continue,
            Outcome::Decided(_) | Outcome::Waiting => Action::Pause,
        }
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.add_response_headers();
        Action::Continue
    }
}

impl Http {
    fn add_response_headers(&self) {
        let Some(w) = &self.worker else { return };
        let Ok(mut w) = w.try_borrow_mut() else {
            return;
        };
        for (name, value) in w.take_response_headers(self.id) {
            host::add_response_header(&name, &value);
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        if let Some(w) = &self.worker
            && let Ok(mut w) = w.try_borrow_mut()
        {
            w.forget(self.id);
        }
    }
}

/// No configuration: fail closed.
fn deny_unconfigured() -> Action {
    let decision = Decision {
        action: crate::action::Action::Respond(Response {
            status: 500,
            headers: vec![("content-type".into(), "application/json".into())],
            body: r#"{"message":"Internal Server Error"}"#.into(),
        }),
        log: Some("request refused: filter not configured".into()),
    };
    apply(&decision, false);
    Action::Pause
}
