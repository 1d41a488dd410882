//! One worker's (one VM's) state for one plugin configuration, shared by
//! its root context and every request context: the core's caches, the
//! requests paused on an IdP call, and the calls in flight.
//!
//! A call's reply arrives in the context that dispatched it; that context
//! then resumes every request that waited on the same call, through
//! `set_effective_context`. If the dispatching request goes away first, its
//! reply is lost with it, so its waiters are re-driven from the root
//! context's tick, which also re-drives requests waiting on another
//! worker's token exchange.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::types::LogLevel;

use crate::action::{Action, Decision, IdpReply, IdpRequest};
use crate::config::Config;
use crate::error::{Endpoint, Error, IdpError};
use crate::flow::{self, CallKey, Core, Shared, Step};
use crate::oidc::provider::Document;
use crate::request::RequestView;
use crate::shell::host;
use crate::shell::shared::{self, HostStore};

/// Tick period while requests wait on another worker's exchange.
const FAST_TICK: Duration = Duration::from_millis(20);
/// Tick period otherwise.
const IDLE_TICK: Duration = Duration::from_secs(1);

/// What a call in flight is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// A document of the issuer at this index.
    Fetch(usize, Document),
    Call(CallKey),
}

impl Purpose {
    fn endpoint(self) -> Endpoint {
        match self {
            Purpose::Fetch(_, doc) => doc.endpoint(),
            Purpose::Call(key) => key.endpoint(),
        }
    }
}

/// A call that has been dispatched and not yet answered.
struct InFlight {
    purpose: Purpose,
    /// The context the host will deliver the reply to.
    owner: u32,
    waiters: Vec<u32>,
}

/// What became of a request handed to the core.
pub enum Outcome {
    /// Apply this decision now.
    Decided(Decision),
    /// Paused until an IdP call is answered or the next tick.
    Waiting,
}

pub struct Worker {
    config: Config,
    core: Core,
    /// Prefix of this configuration's shared-data keys.
    shared_prefix: String,
    /// Paused requests by context id.
    pending: HashMap<u32, RequestView>,
    /// Calls in flight by dispatch token.
    in_flight: HashMap<u32, InFlight>,
    /// Requests to re-drive on the next tick: their call was lost with its
    /// owner, or another worker is making it.
    on_tick: Vec<u32>,
    /// Headers to add to a request's response (renewed session cookies).
    response_headers: HashMap<u32, Vec<(String, String)>>,
    /// Host metric ids by counter name.
    metrics: HashMap<&'static str, u32>,
}

impl Worker {
    pub fn new(config: Config, fingerprint: &str) -> Self {
        let shared_prefix = format!("envoy-oidc/{fingerprint}/");
        let mut random = [0u8; 64];
        if getrandom::fill(&mut random).is_err() {
            host::log(
                LogLevel::Critical,
                "no randomness from the host: sessions cannot be sealed safely",
            );
        }
        let shared = Shared::prepare(&mut HostStore, &shared_prefix, random);
        let core = Core::new(&config.session.secrets, shared);
        Worker {
            config,
            core,
            shared_prefix,
            pending: HashMap::new(),
            in_flight: HashMap::new(),
            on_tick: Vec::new(),
            response_headers: HashMap::new(),
            metrics: HashMap::new(),
        }
    }

    /// Runs the core for request `id`. `active` is the context the host is
    /// currently calling into, which will own any call dispatched now.
    pub fn run(
        &mut self,
        id: u32,
        active: u32,
        req: RequestView,
        failed: Option<&Error>,
    ) -> Outcome {
        let now = host::now();
        let mut adopted = Vec::new();
        loop {
            let step = flow::handle_request(
                &self.config,
                &req,
                now,
                &mut self.core,
                &mut HostStore,
                failed,
            );
            let (purpose, request) = match step {
                Step::Done(decision) => {
                    if let Action::Continue { response, .. } = &decision.action
                        && !response.is_empty()
                    {
                        self.response_headers.insert(id, response.clone());
                    }
                    return Outcome::Decided(decision);
                }
                Step::Fetch { issuer, doc } => {
                    let purpose = Purpose::Fetch(issuer, doc);
                    // Another worker may have fetched it already.
                    if !adopted.contains(&purpose) && self.adopt_shared(issuer, doc, now) {
                        adopted.push(purpose);
                        continue;
                    }
                    if let Some(f) = self.joinable(purpose) {
                        f.waiters.push(id);
                        self.pending.insert(id, req);
                        return Outcome::Waiting;
                    }
                    // Another worker is fetching it: adopt it on a tick.
                    if !flow::lease_fetch(
                        &self.config,
                        issuer,
                        doc,
                        now,
                        &self.core,
                        &mut HostStore,
                    ) {
                        self.pending.insert(id, req);
                        self.wait_for_tick(id);
                        return Outcome::Waiting;
                    }
                    match self.fetch_request(issuer, doc) {
                        Ok(request) => (purpose, request),
                        Err(e) => {
                            flow::release_fetch(issuer, doc, &self.core, &mut HostStore);
                            return self.run(id, active, req, Some(&Error::Idp(e)));
                        }
                    }
                }
                Step::Call { key, request } => {
                    // The same call for another request of this worker (an
                    // introspection, a userinfo): wait for it, don't repeat it.
                    if let Some(f) = self.joinable(Purpose::Call(key)) {
                        f.waiters.push(id);
                        self.pending.insert(id, req);
                        return Outcome::Waiting;
                    }
                    (Purpose::Call(key), request)
                }
                Step::Wait(key) => {
                    self.pending.insert(id, req);
                    match self.joinable(Purpose::Call(key)) {
                        Some(f) => f.waiters.push(id),
                        None => self.wait_for_tick(id),
                    }
                    return Outcome::Waiting;
                }
            };
            let dispatched = self.dispatch(&request, purpose);
            return match dispatched {
                Ok(token) => {
                    self.in_flight.insert(
                        token,
                        InFlight {
                            purpose,
                            owner: active,
                            waiters: vec![id],
                        },
                    );
                    self.pending.insert(id, req);
                    Outcome::Waiting
                }
                Err(e) => {
                    if let Purpose::Fetch(issuer, doc) = purpose {
                        flow::release_fetch(issuer, doc, &self.core, &mut HostStore);
                    }
                    if let Purpose::Call(key) = purpose {
                        // Give the lease back, as if the call went unanswered.
                        let reply = IdpReply {
                            status: None,
                            body: Vec::new(),
                        };
                        flow::handle_call_reply(
                            &self.config,
                            &key,
                            &reply,
                            now,
                            &mut self.core,
                            &mut HostStore,
                        );
                    }
                    // Cannot even ask: decide again as if the call failed.
                    self.run(id, active, req, Some(&Error::Idp(e)))
                }
            };
        }
    }

    fn joinable(&mut self, purpose: Purpose) -> Option<&mut InFlight> {
        self.in_flight.values_mut().find(|f| f.purpose == purpose)
    }

    fn wait_for_tick(&mut self, id: u32) {
        if self.on_tick.is_empty() {
            host::set_tick_period(FAST_TICK);
        }
        self.on_tick.push(id);
    }

    fn shared_key(&self, issuer: usize, doc: Document) -> String {
        format!("{}{issuer}/{}", self.shared_prefix, doc.endpoint().name())
    }

    fn fetch_request(&mut self, index: usize, doc: Document) -> Result<IdpRequest, IdpError> {
        let unknown = || IdpError::Unroutable {
            endpoint: doc.endpoint(),
            reason: format!("no issuer #{index}"),
        };
        let issuer = self.config.issuer_at(index).ok_or_else(unknown)?;
        let provider = self.core.provider_mut(index).ok_or_else(unknown)?;
        provider.request(&self.config, issuer, doc)
    }

    fn adopt_shared(&mut self, index: usize, doc: Document, now: u64) -> bool {
        let Some((fetched_at, body)) = shared::load_document(&self.shared_key(index, doc)) else {
            return false;
        };
        match (self.config.issuer_at(index), self.core.provider_mut(index)) {
            (Some(issuer), Some(provider)) => provider.adopt(issuer, doc, &body, fetched_at, now),
            _ => false,
        }
    }

    /// Gives a fetched document to its provider; shares it on success.
    fn handle_document(
        &mut self,
        index: usize,
        doc: Document,
        reply: &IdpReply,
        now: u64,
    ) -> Option<Error> {
        let (Some(issuer), Some(provider)) =
            (self.config.issuer_at(index), self.core.provider_mut(index))
        else {
            return None;
        };
        match provider.handle_reply(issuer, doc, reply, now) {
            Ok(skipped) => {
                shared::store_document(&self.shared_key(index, doc), now, &reply.body);
                if skipped > 0 {
                    host::log(
                        LogLevel::Warn,
                        &format!("jwks: skipped {skipped} unusable keys"),
                    );
                }
                None
            }
            Err(e) => {
                host::log(LogLevel::Warn, &format!("identity provider: {e}"));
                Some(Error::Idp(e))
            }
        }
    }

    fn dispatch(&self, request: &IdpRequest, purpose: Purpose) -> Result<u32, IdpError> {
        let endpoint = purpose.endpoint();
        host::dispatch(request).map_err(|status| {
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
        let endpoint = flight.purpose.endpoint();
        let failed = match flight.purpose {
            Purpose::Fetch(index, doc) => {
                let failed = self.handle_document(index, doc, &reply, now);
                flow::release_fetch(index, doc, &self.core, &mut HostStore);
                failed
            }
            Purpose::Call(key) => {
                let e = flow::handle_call_reply(
                    &self.config,
                    &key,
                    &reply,
                    now,
                    &mut self.core,
                    &mut HostStore,
                );
                if let Some(e) = &e {
                    host::log(
                        LogLevel::Info,
                        &format!("identity provider call failed: {e}"),
                    );
                }
                e
            }
        };
        self.core.stats.add(endpoint.metric(failed.is_none()));
        self.resume_all(flight.waiters, active, failed.as_ref());
    }

    /// Re-runs each waiting request in its own context and applies the result.
    fn resume_all(&mut self, waiters: Vec<u32>, active: u32, failed: Option<&Error>) {
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

    /// Request `id` is gone: forget it, and re-drive on tick the waiters of
    /// any call whose reply would have been delivered to it.
    pub fn forget(&mut self, id: u32) {
        // The common case, on every request's teardown: nothing to forget.
        if self.pending.is_empty()
            && self.response_headers.is_empty()
            && self.in_flight.is_empty()
            && self.on_tick.is_empty()
        {
            return;
        }
        self.pending.remove(&id);
        self.response_headers.remove(&id);
        self.on_tick.retain(|w| *w != id);
        let orphaned: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.owner == id)
            .map(|(t, _)| *t)
            .collect();
        for token in orphaned {
            if let Some(f) = self.in_flight.remove(&token) {
                match f.purpose {
                    Purpose::Call(key) => flow::abandon_call(&key, &mut self.core, &mut HostStore),
                    Purpose::Fetch(issuer, doc) => {
                        flow::release_fetch(issuer, doc, &self.core, &mut HostStore);
                    }
                }
                for w in f.waiters.into_iter().filter(|w| *w != id) {
                    self.wait_for_tick(w);
                }
            }
        }
    }

    /// Hands the core's counters to the host as `oidc_<name>` counters.
    fn flush_metrics(&mut self) {
        for (name, n) in self.core.stats.drain() {
            let id = match self.metrics.get(name) {
                Some(id) => *id,
                None => match host::define_counter(&format!("oidc_{name}")) {
                    Some(id) => *self.metrics.entry(name).or_insert(id),
                    None => continue,
                },
            };
            host::increment_counter(id, n);
        }
    }

    /// Headers to add to request `id`'s response, once.
    pub fn take_response_headers(&mut self, id: u32) -> Vec<(String, String)> {
        if self.response_headers.is_empty() {
            return Vec::new();
        }
        self.response_headers.remove(&id).unwrap_or_default()
    }

    /// From the root context's tick: re-drive the requests waiting for it.
    pub fn handle_tick(&mut self, root: u32) {
        self.flush_metrics();
        if self.on_tick.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.on_tick);
        self.resume_all(waiting, root, None);
        if self.on_tick.is_empty() {
            host::set_tick_period(IDLE_TICK);
        }
    }
}

/// Hands the reply to call `token`, delivered in context `active`, to the
/// worker (from a request context or from the root context alike).
pub fn deliver_reply(
    worker: Option<&Rc<RefCell<Worker>>>,
    token: u32,
    active: u32,
    headers: usize,
    body_size: usize,
) {
    if let Some(w) = worker {
        let reply = host::call_reply(headers, body_size);
        w.borrow_mut().handle_reply(token, active, reply);
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
        Action::Continue { set, remove, .. } => {
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
