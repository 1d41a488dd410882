//! The one driver loop: requests in, IdP replies in, ticks, requests gone.
//!
//! The flows (`crate::flow`) decide what a request needs; the engine
//! decides *when* things happen across one worker's requests and between
//! workers: it joins a request to an IdP call already in flight for the
//! same thing, adopts documents another worker stored, takes and gives back
//! fetch leases, parks a request until another worker's call is done, and
//! re-drives requests whose call was lost with the request that dispatched
//! it. It talks to the world only through `Host`, so host-side tests drive
//! it with several workers sharing one store, and the shell, the tests and
//! the fuzzers all run this same loop.

mod host;

use std::collections::{HashMap, VecDeque};

pub use host::{ContextId, Host, HostFailure, Level};

use crate::action::{Action, Decision, IdpReply, IdpRequest};
use crate::budget::{self, Ticket};
use crate::config::{Config, IssuerId};
use crate::error::{Error, IdpError};
use crate::flow::{self, Attempt, Chosen, Core, Entry, IdpCall, Need, Shared, Step, documents};
use crate::oidc::provider::Document;
use crate::request::RequestView;

/// Tick period while requests wait on another worker's call.
const FAST_TICK_MS: u64 = 20;
/// Tick period while a call waits to be dispatched from the root context.
const DISPATCH_TICK_MS: u64 = 1;
/// Tick period otherwise (metrics, shared-key convergence).
const IDLE_TICK_MS: u64 = 1000;

/// A call that has been dispatched and not yet answered.
struct InFlight {
    call: IdpCall,
    /// The context the host will deliver the reply to.
    owner: ContextId,
    /// Requests to re-run when it is answered.
    waiters: Vec<ContextId>,
    /// Its share of the purpose's budget, given back with the reply.
    ticket: Option<Ticket>,
}

/// A call waiting for the tick to be dispatched from the root context.
struct Detached {
    call: IdpCall,
    request: IdpRequest,
    waiters: Vec<ContextId>,
}

/// A request paused on an IdP call or a tick.
struct Paused {
    req: RequestView,
    /// Its configuration, chosen once (`flow::enter`).
    rule: Chosen,
    /// The calls it waited on that have been answered (see
    /// `Attempt::answered`).
    answered: Vec<IdpCall>,
}

/// What became of a request handed to the flows.
enum Outcome {
    Decided(Decision),
    /// Paused until an IdP call is answered or the next tick.
    Waiting,
}

/// One worker's engine for one plugin configuration.
pub struct Engine {
    /// This worker's root context: calls dispatched from it are never lost.
    root: ContextId,
    config: Config,
    core: Core,
    /// Paused requests by context.
    paused: HashMap<ContextId, Paused>,
    /// Calls in flight by the host's token.
    in_flight: HashMap<u32, InFlight>,
    /// Requests to re-run on the next tick: their call was lost with its
    /// owner, or another worker is making it.
    on_tick: Vec<ContextId>,
    /// Calls to dispatch from the root context on the next tick, so that
    /// their replies cannot be lost with a request (`outlives_request`).
    detached: VecDeque<Detached>,
    /// Headers to add to a request's response (renewed session cookies).
    response_headers: HashMap<ContextId, Vec<(String, String)>>,
    /// The host's counter ids by name.
    metrics: HashMap<&'static str, u32>,
}

impl Engine {
    /// `prefix` names this configuration's shared-data keys; `random` seeds
    /// the salt, the fallback session key and the lease holder id.
    pub fn new(
        config: Config,
        prefix: &str,
        random: [u8; 72],
        root: ContextId,
        host: &mut impl Host,
    ) -> Engine {
        let shared = Shared::prepare(host.store(), prefix, &config, random);
        let mut core = Core::new(&config, shared);
        budget::prepare(&config.idp_call_budget, core.budget(), host.store());
        core.log_denials = host.logs(Level::Info);
        host.set_tick_period(IDLE_TICK_MS);
        Engine {
            root,
            config,
            core,
            paused: HashMap::new(),
            in_flight: HashMap::new(),
            on_tick: Vec::new(),
            detached: VecDeque::new(),
            response_headers: HashMap::new(),
            metrics: HashMap::new(),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The flows' state, for tests and probes that look inside.
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// A request's headers arrived in context `id`. True: forward it now
    /// (the host has applied the decision); false: it stays paused (until
    /// an IdP reply or a tick, or for good when it was answered locally).
    pub fn handle_request(
        &mut self,
        host: &mut impl Host,
        id: ContextId,
        mut req: RequestView,
    ) -> bool {
        if self.config.rules_read_route_name {
            match host.property(id, &["xds", "route_name"]) {
                Ok(name) => req.set_route_name(name),
                // Rules on the route could not be matched: never the top
                // level instead, which they may tighten.
                Err(HostFailure) => {
                    let error = Error::Internal("could not read the route name");
                    let decision = Decision {
                        action: Action::Respond(std::rc::Rc::new(
                            error.response(self.config.issuer.realm()),
                        )),
                        log: Some(error.to_string()),
                    };
                    return self.apply(host, id, &decision, false);
                }
            }
        }
        // First, and out of the run loop: see `flow::enter`.
        let rule = match flow::enter(&self.config, &req, &mut self.core) {
            Entry::Pass(decision) => return self.apply(host, id, &decision, false),
            Entry::Decide(rule) => rule,
        };
        let paused = Paused {
            req,
            rule,
            answered: Vec::new(),
        };
        match self.run(host, id, id, paused, None) {
            Outcome::Decided(decision) => self.apply(host, id, &decision, false),
            Outcome::Waiting => false,
        }
    }

    /// The reply to call `token`, delivered in context `active`: resumes
    /// every request that waited on it.
    pub fn handle_reply(
        &mut self,
        host: &mut impl Host,
        active: ContextId,
        token: u32,
        reply: &IdpReply,
    ) {
        let Some(flight) = self.in_flight.remove(&token) else {
            return;
        };
        self.release(host, flight.ticket.as_ref());
        let now = host.now();
        let failed = flow::handle_call_reply(
            &self.config,
            &flight.call,
            reply,
            now,
            &mut self.core,
            host.store(),
        );
        self.log_warnings(host);
        // A token the IdP refused (inactive, unknown) is an answer, not a
        // failure of the IdP: counted apart (`refused`), and logged as a
        // denial is (Info), so that a flood of made-up tokens neither reads
        // as an outage nor writes a warning per call.
        // Not for the calls our own client makes (code exchange, refresh):
        // a refusal there may be the IdP refusing us (`invalid_client`,
        // a secret rotated), which the operator must see.
        let refused = matches!(failed, Some(Error::Token(_)))
            && !matches!(flight.call, IdpCall::Code(_) | IdpCall::Refresh(_));
        match &failed {
            Some(e) if refused && self.core.log_denials => {
                host.log(Level::Info, &format!("identity provider refused: {e}"));
            }
            Some(e) if !refused => {
                host.log(Level::Warn, &format!("identity provider call failed: {e}"));
            }
            _ => {}
        }
        let endpoint = flight.call.endpoint();
        self.core.stats.add(if refused {
            endpoint.refused_metric()
        } else {
            endpoint.metric(failed.is_none())
        });
        self.resume_all(host, flight.waiters, active, failed, Some(flight.call));
    }

    /// The worker's tick, in its root context `root`: hands over the
    /// counters, takes up the shared keys the store holds, and re-runs the
    /// requests waiting for it.
    pub fn handle_tick(&mut self, host: &mut impl Host, root: ContextId) {
        self.core.log_denials = host.logs(Level::Info);
        for (name, n) in self.core.stats.drain() {
            let id = match self.metrics.get(name) {
                Some(id) => *id,
                None => match host.define_counter(&format!("oidc_{name}")) {
                    Some(id) => *self.metrics.entry(name).or_insert(id),
                    None => continue,
                },
            };
            host.increment_counter(id, n);
        }
        self.core.converge(host.store());
        // One at a time, the rest left queued: a waiter that a refused one
        // resumes joins a call still queued here rather than making it
        // itself (and then again from here).
        for _ in 0..self.detached.len() {
            let Some(call) = self.detached.pop_front() else {
                break;
            };
            self.dispatch_detached(host, root, call);
        }
        if !self.on_tick.is_empty() {
            let waiting = std::mem::take(&mut self.on_tick);
            self.resume_all(host, waiting, root, None, None);
        }
        // Warnings of the requests decided since (a revocation that could
        // not be sent at logout), not left for the next IdP reply.
        self.log_warnings(host);
        let period = match (self.detached.is_empty(), self.on_tick.is_empty()) {
            (false, _) => DISPATCH_TICK_MS,
            (true, false) => FAST_TICK_MS,
            (true, true) => IDLE_TICK_MS,
        };
        host.set_tick_period(period);
    }

    /// Whether the engine keeps anything for request `id` (it is paused, or
    /// response headers wait for it): if not, its response headers and
    /// teardown need not reach the engine at all.
    pub fn holds(&self, id: ContextId) -> bool {
        self.paused.contains_key(&id) || self.response_headers.contains_key(&id)
    }

    /// The upstream's response headers for request `id` are passing.
    pub fn handle_response_headers(&mut self, host: &mut impl Host, id: ContextId) {
        if self.response_headers.is_empty() {
            return;
        }
        for (name, value) in self.response_headers.remove(&id).unwrap_or_default() {
            host.add_response_header(id, &name, &value);
        }
    }

    /// Request `id` is gone. Its calls' replies would have been delivered
    /// to it, so they are lost: give back their leases, and re-run their
    /// other waiters on the next tick.
    pub fn handle_done(&mut self, host: &mut impl Host, id: ContextId) {
        // The common case, on every request's teardown: nothing to forget.
        if self.paused.is_empty()
            && self.response_headers.is_empty()
            && self.in_flight.is_empty()
            && self.on_tick.is_empty()
            && self.detached.is_empty()
        {
            return;
        }
        self.paused.remove(&id);
        self.response_headers.remove(&id);
        self.on_tick.retain(|w| *w != id);
        // A detached call still goes out: its lease is taken, and its
        // outcome serves the session's next request.
        for call in &mut self.detached {
            call.waiters.retain(|w| *w != id);
        }
        let orphaned: Vec<u32> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.owner == id)
            .map(|(t, _)| *t)
            .collect();
        for token in orphaned {
            let Some(flight) = self.in_flight.remove(&token) else {
                continue;
            };
            flow::abandon_call(&flight.call, &mut self.core, host.store());
            // Its budget slot stays taken until it lapses: Envoy sends a
            // call on the root context and does not cancel it with the
            // request, so the IdP still works on it (only the reply is
            // lost). Given back here, a client resetting its streams kept
            // any number of calls in flight whatever `concurrent` said.
            for w in flight.waiters.into_iter().filter(|w| *w != id) {
                self.wait_for_tick(host, w);
            }
        }
    }

    /// Runs the flows for request `id` until they decide or it must wait.
    /// `active` is the context the host is calling into, which will own
    /// any call dispatched now.
    fn run(
        &mut self,
        host: &mut impl Host,
        id: ContextId,
        active: ContextId,
        paused: Paused,
        failed: Option<Error>,
    ) -> Outcome {
        let now = host.now();
        let Paused {
            req,
            rule,
            answered,
        } = paused;
        let mut attempt = Attempt {
            failed,
            adopted: Vec::new(),
            answered,
        };
        loop {
            let step = flow::handle_request(
                &self.config,
                rule,
                &req,
                now,
                &mut self.core,
                host.store(),
                &attempt,
            );
            self.take_background(host);
            let need = match step {
                Step::Done(decision) => return Outcome::Decided(decision),
                Step::Need(need) => need,
            };
            let (call, request) = match need {
                Need::Adopt { issuer, doc } => {
                    // Whether or not it is newer, the flow now knows it looked.
                    documents::adopt(&self.config, &mut self.core, host.store(), issuer, doc, now);
                    attempt.adopted.push((issuer, doc));
                    continue;
                }
                Need::Fetch { issuer, doc } => {
                    let call = IdpCall::Fetch(issuer, doc);
                    // Another worker may have fetched it already, or been
                    // told by the IdP to wait.
                    if !attempt.adopted.contains(&(issuer, doc)) {
                        attempt.adopted.push((issuer, doc));
                        let store = host.store();
                        if documents::adopt(&self.config, &mut self.core, store, issuer, doc, now)
                            || documents::throttled(&mut self.core, store, issuer, doc, now)
                        {
                            continue;
                        }
                    }
                    if self.join(call, id) {
                        self.pause(id, req, rule, attempt.answered);
                        return Outcome::Waiting;
                    }
                    // It failed a moment ago with nothing to serve: fail
                    // as it did, without asking the IdP again.
                    let provider = self.core.provider_mut(issuer);
                    if let Some(e) = provider.and_then(|p| p.failed(doc, now)) {
                        attempt.failed = Some(e);
                        continue;
                    }
                    if !documents::lease(&self.config, &self.core, host.store(), issuer, doc, now) {
                        // Another worker is fetching it: adopt it on a tick.
                        self.pause(id, req, rule, attempt.answered);
                        self.wait_for_tick(host, id);
                        return Outcome::Waiting;
                    }
                    match self.fetch_request(issuer, doc) {
                        Ok(request) => (call, request),
                        Err(e) => {
                            flow::abandon_call(&call, &mut self.core, host.store());
                            attempt.failed = Some(Error::Idp(e));
                            continue;
                        }
                    }
                }
                Need::Call { key, request } => {
                    // The same call for another request of this worker (an
                    // introspection, a userinfo): wait for it, don't repeat it.
                    if self.join(key, id) {
                        self.pause(id, req, rule, attempt.answered);
                        return Outcome::Waiting;
                    }
                    (key, *request)
                }
                Need::Wait(key) => {
                    let mut waited = attempt.answered;
                    if !self.join(key, id) {
                        // Another worker's call: its outcome is found in
                        // shared data on a tick, and this request waited on
                        // it (`Attempt::answered`).
                        if !waited.contains(&key) {
                            waited.push(key);
                        }
                        self.wait_for_tick(host, id);
                    }
                    self.pause(id, req, rule, waited);
                    return Outcome::Waiting;
                }
            };
            // From the root context (on its next tick): a call that must
            // outlive its request, and any call made while another request's
            // reply is taken (a waiter resumed by it), which would otherwise
            // belong to that request and be lost when it ends.
            if (call.outlives_request() || active != id) && active != self.root {
                self.pause(id, req, rule, attempt.answered);
                self.detach(host, call, request, id);
                return Outcome::Waiting;
            }
            let ticket = match flow::admit_call(&self.config, &call, now, &self.core, host.store())
            {
                Ok(ticket) => ticket,
                Err(e) => {
                    // Over budget: not called, and its lease given back.
                    flow::abandon_call(&call, &mut self.core, host.store());
                    flow::call_refused(&call, &e, now, &mut self.core, host.store());
                    attempt.failed = Some(e);
                    continue;
                }
            };
            match self.dispatch(host, request, call) {
                Ok(token) => {
                    self.in_flight.insert(
                        token,
                        InFlight {
                            call,
                            owner: active,
                            waiters: vec![id],
                            ticket,
                        },
                    );
                    self.pause(id, req, rule, attempt.answered);
                    return Outcome::Waiting;
                }
                Err(e) => {
                    // Cannot even ask: decide again as if it had failed.
                    self.release(host, ticket.as_ref());
                    self.unanswered(host, call);
                    attempt.failed = Some(Error::Idp(e));
                }
            }
        }
    }

    /// Adds `id` to the waiters of a call in flight (or about to be) for
    /// `call`, if any.
    fn join(&mut self, call: IdpCall, id: ContextId) -> bool {
        let waiters = match self.in_flight.values_mut().find(|f| f.call == call) {
            Some(flight) => &mut flight.waiters,
            None => match self.detached.iter_mut().find(|d| d.call == call) {
                Some(call) => &mut call.waiters,
                None => return false,
            },
        };
        waiters.push(id);
        true
    }

    fn detach(&mut self, host: &mut impl Host, key: IdpCall, request: IdpRequest, id: ContextId) {
        if self.detached.is_empty() {
            host.set_tick_period(DISPATCH_TICK_MS);
        }
        self.detached.push_back(Detached {
            call: key,
            request,
            waiters: vec![id],
        });
    }

    /// Dispatches a detached call from the root context; if the host
    /// refuses it, its waiters decide again as if it had gone unanswered.
    fn dispatch_detached(&mut self, host: &mut impl Host, root: ContextId, detached: Detached) {
        let Detached {
            call,
            request,
            waiters,
        } = detached;
        let now = host.now();
        if !flow::renew_call(&self.config, &call, now, &mut self.core, host.store()) {
            // Not to be made now (its lease lapsed and was taken, or its
            // outcome is there): the waiters decide again, as requests that
            // waited on it (an outcome made meanwhile is theirs; else they
            // wait for the lease or make the call).
            self.resume_all(host, waiters, root, None, Some(call));
            return;
        }
        let ticket = match flow::admit_call(&self.config, &call, now, &self.core, host.store()) {
            Ok(ticket) => ticket,
            Err(e) => {
                flow::abandon_call(&call, &mut self.core, host.store());
                flow::call_refused(&call, &e, now, &mut self.core, host.store());
                self.resume_all(host, waiters, root, Some(e), None);
                return;
            }
        };
        match self.dispatch(host, request, call) {
            Ok(token) => {
                let owner = root;
                self.in_flight.insert(
                    token,
                    InFlight {
                        call,
                        owner,
                        waiters,
                        ticket,
                    },
                );
            }
            Err(e) => {
                self.release(host, ticket.as_ref());
                self.unanswered(host, call);
                self.resume_all(host, waiters, root, Some(Error::Idp(e)), None);
            }
        }
    }

    /// Queues the calls the flows want made with no request waiting, for
    /// the root context's next tick (unless the same call is already on its
    /// way).
    fn take_background(&mut self, host: &mut impl Host) {
        for (call, request) in self.core.take_background() {
            let known = self.in_flight.values().any(|f| f.call == call)
                || self.detached.iter().any(|d| d.call == call);
            if known {
                continue;
            }
            if self.detached.is_empty() {
                host.set_tick_period(DISPATCH_TICK_MS);
            }
            self.detached.push_back(Detached {
                call,
                request,
                waiters: Vec::new(),
            });
        }
    }

    fn release(&mut self, host: &mut impl Host, ticket: Option<&Ticket>) {
        if let Some(ticket) = ticket {
            flow::release_budget(ticket, &self.core, host.store());
        }
    }

    /// A call the host refused to send: as if it had gone unanswered (its
    /// lease given back, its failure remembered where its flow remembers
    /// failures). A fetch only gives its lease back: a stale document keeps
    /// serving, and the next request tries again. So does a code exchange,
    /// whose code never left: not spent, the callback may come again.
    fn unanswered(&mut self, host: &mut impl Host, call: IdpCall) {
        if let IdpCall::Fetch(..) | IdpCall::Code(_) = call {
            flow::abandon_call(&call, &mut self.core, host.store());
            return;
        }
        let reply = IdpReply {
            status: None,
            body: Vec::new(),
            retry_after: None,
        };
        let now = host.now();
        flow::handle_call_reply(
            &self.config,
            &call,
            &reply,
            now,
            &mut self.core,
            host.store(),
        );
    }

    fn wait_for_tick(&mut self, host: &mut impl Host, id: ContextId) {
        if self.on_tick.is_empty() && self.detached.is_empty() {
            host.set_tick_period(FAST_TICK_MS);
        }
        self.on_tick.push(id);
    }

    fn fetch_request(&mut self, id: IssuerId, doc: Document) -> Result<IdpRequest, IdpError> {
        let unknown = || IdpError::Unroutable {
            endpoint: doc.endpoint(),
            reason: format!("no issuer #{}", id.index()),
        };
        let issuer = self.config.issuer_at(id).ok_or_else(unknown)?;
        let provider = self.core.provider_mut(id).ok_or_else(unknown)?;
        provider.request(&self.config, issuer, doc)
    }

    fn log_warnings(&mut self, host: &mut impl Host) {
        for line in self.core.take_warnings() {
            host.log(Level::Warn, &line);
        }
    }

    /// Sends an admitted call: its client assertion, if it needs one, is
    /// signed now and not before (`client_auth::Unsigned`).
    fn dispatch(
        &mut self,
        host: &mut impl Host,
        mut request: IdpRequest,
        call: IdpCall,
    ) -> Result<u32, IdpError> {
        let endpoint = call.endpoint();
        if request.unsigned.is_some() {
            self.config
                .client_auth
                .sign_into(&mut request, host.now())?;
            self.core.stats.add("client_assertions_signed");
        }
        host.dispatch(&request).map_err(|reason| {
            host.log(
                Level::Error,
                &format!(
                    "dispatch to cluster `{}` for {} refused: {reason}",
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

    fn pause(&mut self, id: ContextId, req: RequestView, rule: Chosen, answered: Vec<IdpCall>) {
        self.paused.insert(
            id,
            Paused {
                req,
                rule,
                answered,
            },
        );
    }

    /// Re-runs each waiting request and applies what is decided for it.
    /// `answered`: the call they waited on, now answered.
    fn resume_all(
        &mut self,
        host: &mut impl Host,
        waiters: Vec<ContextId>,
        active: ContextId,
        failed: Option<Error>,
        answered: Option<IdpCall>,
    ) {
        for id in waiters {
            let Some(mut paused) = self.paused.remove(&id) else {
                continue; // the request went away while waiting
            };
            paused.answered.extend(answered);
            if let Outcome::Decided(decision) = self.run(host, id, active, paused, failed.clone()) {
                self.apply(host, id, &decision, true);
            }
        }
    }

    /// Has the host carry out a decision on request `id`.
    fn apply(
        &mut self,
        host: &mut impl Host,
        id: ContextId,
        decision: &Decision,
        paused: bool,
    ) -> bool {
        if let Action::Continue {
            response, state, ..
        } = &decision.action
        {
            if !response.is_empty() {
                self.response_headers.insert(id, response.clone());
            }
            for (name, value) in state {
                host.set_filter_state(id, name, value.as_bytes());
            }
        }
        host.apply(id, decision, paused)
    }
}
