//! One worker's (one VM's) state for one plugin configuration, shared by
//! its root context and every request context: the core's caches, the
//! requests paused on an IdP fetch, and the fetches in flight.
//!
//! A fetch's reply arrives in the context that dispatched it; that context
//! then resumes every request that waited on the same fetch, through
//! `set_effective_context`. If the dispatching request goes away first, its
//! reply is lost with it, so its waiters are re-driven from the root
//! context's tick and their fetch is dispatched again from there.

use std::collections::HashMap;

use proxy_wasm::types::LogLevel;

use crate::action::{Action, Decision, IdpReply};
use crate::config::Config;
use crate::error::{Endpoint, IdpError};
use crate::flow::{self, Core, Step};
use crate::request::RequestView;
use crate::shell::{host, shared};

/// A fetch that has been dispatched and not yet answered.
struct InFlight {
    endpoint: Endpoint,
    /// The context the host will deliver the reply to.
    owner: u32,
    waiters: Vec<u32>,
}

/// What became of a request handed to the core.
pub enum Outcome {
    /// Apply this decision now.
    Decided(Decision),
    /// Paused until an IdP fetch is answered.
    Waiting,
}

pub struct Worker {
    config: Config,
    /// Prefix of this configuration's shared-data keys.
    shared_prefix: String,
    core: Core,
    /// Paused requests by context id.
    pending: HashMap<u32, RequestView>,
    /// In-flight fetches by dispatch token.
    in_flight: HashMap<u32, InFlight>,
    /// Requests whose fetch was lost with its owner; re-driven on tick.
    stranded: Vec<u32>,
}

impl Worker {
    pub fn new(config: Config, fingerprint: &str) -> Self {
        Worker {
            config,
            shared_prefix: format!("envoy-oidc/{fingerprint}/"),
            core: Core::default(),
            pending: HashMap::new(),
            in_flight: HashMap::new(),
            stranded: Vec::new(),
        }
    }

    /// Runs the core for request `id`. `active` is the context the host is
    /// currently calling into, which will own any call dispatched now.
    pub fn run(
        &mut self,
        id: u32,
        active: u32,
        req: RequestView,
        failed: Option<&IdpError>,
    ) -> Outcome {
        let now = host::now();
        let mut adopted = Vec::new();
        loop {
            let endpoint =
                match flow::handle_request(&self.config, &req, now, &mut self.core, failed) {
                    Step::Done(decision) => return Outcome::Decided(decision),
                    Step::Fetch(endpoint) => endpoint,
                };
            // Another worker may have fetched it already.
            if !adopted.contains(&endpoint) && self.adopt_shared(endpoint, now) {
                adopted.push(endpoint);
                continue;
            }
            if let Some(f) = self.in_flight.values_mut().find(|f| f.endpoint == endpoint) {
                f.waiters.push(id);
                self.pending.insert(id, req);
                return Outcome::Waiting;
            }
            return match self.dispatch(endpoint) {
                Ok(token) => {
                    self.in_flight.insert(
                        token,
                        InFlight {
                            endpoint,
                            owner: active,
                            waiters: vec![id],
                        },
                    );
                    self.pending.insert(id, req);
                    Outcome::Waiting
                }
                // Cannot even ask: decide again as if the fetch failed.
                Err(e) => self.run(id, active, req, Some(&e)),
            };
        }
    }

    fn shared_key(&self, endpoint: Endpoint) -> String {
        format!("{}{}", self.shared_prefix, endpoint.name())
    }

    fn adopt_shared(&mut self, endpoint: Endpoint, now: u64) -> bool {
        let Some((fetched_at, body)) = shared::load(&self.shared_key(endpoint)) else {
            return false;
        };
        self.core
            .provider
            .adopt(&self.config, endpoint, &body, fetched_at, now)
    }

    fn dispatch(&self, endpoint: Endpoint) -> Result<u32, IdpError> {
        let request = self.core.provider.request(&self.config, endpoint)?;
        host::dispatch(&request).map_err(|status| {
            host::log(
                LogLevel::Error,
                &format!(
                    "dispatch to cluster `{}` for {} refused: {status:?}",
                    request.cluster,
                    endpoint.name()
                ),
            );
            IdpError::Unavailable {
                endpoint,
                status: None,
            }
        })
    }

    /// Takes the reply to call `token` and resumes everyone who waited.
    pub fn handle_reply(&mut self, token: u32, active: u32, reply: IdpReply) {
        let Some(flight) = self.in_flight.remove(&token) else {
            return;
        };
        let now = host::now();
        let result = self
            .core
            .provider
            .handle_reply(&self.config, flight.endpoint, &reply, now);
        match &result {
            Ok(skipped) => {
                shared::store(&self.shared_key(flight.endpoint), now, &reply.body);
                if *skipped > 0 {
                    host::log(
                        LogLevel::Warn,
                        &format!("jwks: skipped {skipped} unusable keys"),
                    );
                }
            }
            Err(e) => host::log(LogLevel::Warn, &format!("identity provider: {e}")),
        }
        self.resume_all(flight.waiters, active, result.err().as_ref());
    }

    /// Re-runs each waiting request in its own context and applies the result.
    fn resume_all(&mut self, waiters: Vec<u32>, active: u32, failed: Option<&IdpError>) {
        for id in waiters {
            let Some(req) = self.pending.remove(&id) else {
                continue; // the request went away while waiting
            };
            if let Outcome::Decided(decision) = self.run(id, active, req, failed) {
                if host::set_effective_context(id).is_err() {
                    continue;
                }
                apply(&decision, true);
            }
        }
        // Leave the host pointing at the context it called into.
        let _ = host::set_effective_context(active);
    }

    /// Request `id` is gone: forget it, and strand the waiters of any fetch
    /// whose reply would have been delivered to it.
    pub fn forget(&mut self, id: u32) {
        self.pending.remove(&id);
        let orphaned: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.owner == id)
            .map(|(t, _)| *t)
            .collect();
        for token in orphaned {
            if let Some(f) = self.in_flight.remove(&token) {
                self.stranded
                    .extend(f.waiters.into_iter().filter(|w| *w != id));
            }
        }
    }

    /// From the root context's tick: re-drive stranded requests.
    pub fn handle_tick(&mut self, root: u32) {
        if !self.stranded.is_empty() {
            let stranded = std::mem::take(&mut self.stranded);
            self.resume_all(stranded, root, None);
        }
    }
}

/// Applies a decision to the current (effective) request. `resumed` is
/// true when the request was paused and must be continued explicitly.
/// Returns false when the request must stay paused (a local reply was sent).
pub fn apply(decision: &Decision, resumed: bool) -> bool {
    if let Some(line) = &decision.log {
        host::log(LogLevel::Info, line);
    }
    match &decision.action {
        Action::Continue { set, remove } => {
            for name in remove {
                host::remove_request_header(name);
            }
            for (name, value) in set {
                if host::set_request_header(name, value).is_err() {
                    // Never forward a request we could not rewrite as decided.
                    host::log(
                        LogLevel::Error,
                        &format!("could not set request header {name}"),
                    );
                    let _ = host::send_response(&internal_error());
                    return false;
                }
            }
            if resumed {
                let _ = host::resume_request();
            }
            true
        }
        Action::Respond(response) => {
            if host::send_response(response).is_err() {
                host::log(LogLevel::Error, "could not send local response");
            }
            false
        }
    }
}

fn internal_error() -> crate::action::Response {
    crate::action::Response {
        status: 500,
        headers: vec![("content-type".into(), "application/json".into())],
        body: r#"{"message":"Internal Server Error"}"#.into(),
    }
}
