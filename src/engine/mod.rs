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

pub mod documents;
mod host;

use std::collections::HashMap;

pub use host::{ContextId, Host, Level};

use crate::action::{Action, Decision, IdpReply, IdpRequest};
use crate::config::Config;
use crate::error::{Endpoint, Error, IdpError};
use crate::flow::{self, Attempt, CallKey, Core, Shared, Step};
use crate::oidc::provider::Document;
use crate::request::RequestView;

/// Tick period while requests wait on another worker's call.
const FAST_TICK_MS: u64 = 20;
/// Tick period otherwise (metrics, shared-key convergence).
const IDLE_TICK_MS: u64 = 1000;

/// An IdP call in flight, by what it is for.
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
    owner: ContextId,
    /// Requests to re-run when it is answered.
    waiters: Vec<ContextId>,
}

/// What became of a request handed to the flows.
enum Outcome {
    Decided(Decision),
    /// Paused until an IdP call is answered or the next tick.
    Waiting,
}

/// One worker's engine for one plugin configuration.
pub struct Engine {
    config: Config,
    core: Core,
    /// Paused requests by context.
    paused: HashMap<ContextId, RequestView>,
    /// Calls in flight by the host's token.
    in_flight: HashMap<u32, InFlight>,
    /// Requests to re-run on the next tick: their call was lost with its
    /// owner, or another worker is making it.
    on_tick: Vec<ContextId>,
    /// Headers to add to a request's response (renewed session cookies).
    response_headers: HashMap<ContextId, Vec<(String, String)>>,
    /// The host's counter ids by name.
    metrics: HashMap<&'static str, u32>,
}

impl Engine {
    /// `prefix` names this configuration's shared-data keys; `random` seeds
    /// the salt, the fallback session key and the lease holder id.
    pub fn new(config: Config, prefix: &str, random: [u8; 72], host: &mut impl Host) -> Engine {
        let shared = Shared::prepare(host.store(), prefix, random);
        let core = Core::new(&config.session.secrets, shared);
        host.set_tick_period(IDLE_TICK_MS);
        Engine {
            config,
            core,
            paused: HashMap::new(),
            in_flight: HashMap::new(),
            on_tick: Vec::new(),
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
        req: RequestView,
    ) -> bool {
        match self.run(host, id, id, req, None) {
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
        let now = host.now();
        let failed = match flight.purpose {
            Purpose::Fetch(issuer, doc) => {
                let failed = self.handle_document(host, issuer, doc, reply, now);
                documents::release(&self.core, host.store(), issuer, doc);
                failed
            }
            Purpose::Call(key) => {
                let e = flow::handle_call_reply(
                    &self.config,
                    &key,
                    reply,
                    now,
                    &mut self.core,
                    host.store(),
                );
                if let Some(e) = &e {
                    host.log(Level::Info, &format!("identity provider call failed: {e}"));
                }
                e
            }
        };
        self.core
            .stats
            .add(flight.purpose.endpoint().metric(failed.is_none()));
        self.resume_all(host, flight.waiters, active, failed);
    }

    /// The worker's tick, in its root context `root`: hands over the
    /// counters, takes up the shared keys the store holds, and re-runs the
    /// requests waiting for it.
    pub fn handle_tick(&mut self, host: &mut impl Host, root: ContextId) {
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
        if self.on_tick.is_empty() {
            return;
        }
        let waiting = std::mem::take(&mut self.on_tick);
        self.resume_all(host, waiting, root, None);
        if self.on_tick.is_empty() {
            host.set_tick_period(IDLE_TICK_MS);
        }
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
        {
            return;
        }
        self.paused.remove(&id);
        self.response_headers.remove(&id);
        self.on_tick.retain(|w| *w != id);
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
            self.abandon(host, flight.purpose);
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
        req: RequestView,
        failed: Option<Error>,
    ) -> Outcome {
        let now = host.now();
        let mut attempt = Attempt {
            failed,
            adopted: Vec::new(),
        };
        loop {
            let step = flow::handle_request(
                &self.config,
                &req,
                now,
                &mut self.core,
                host.store(),
                &attempt,
            );
            let (purpose, request) = match step {
                Step::Done(decision) => return Outcome::Decided(decision),
                Step::Adopt { issuer, doc } => {
                    // Whether or not it is newer, the flow now knows it looked.
                    documents::adopt(&self.config, &mut self.core, host.store(), issuer, doc, now);
                    attempt.adopted.push((issuer, doc));
                    continue;
                }
                Step::Fetch { issuer, doc } => {
                    let purpose = Purpose::Fetch(issuer, doc);
                    // Another worker may have fetched it already.
                    if !attempt.adopted.contains(&(issuer, doc)) {
                        attempt.adopted.push((issuer, doc));
                        if documents::adopt(
                            &self.config,
                            &mut self.core,
                            host.store(),
                            issuer,
                            doc,
                            now,
                        ) {
                            continue;
                        }
                    }
                    if self.join(purpose, id) {
                        self.paused.insert(id, req);
                        return Outcome::Waiting;
                    }
                    if !documents::lease(&self.config, &self.core, host.store(), issuer, doc, now) {
                        // Another worker is fetching it: adopt it on a tick.
                        self.paused.insert(id, req);
                        self.wait_for_tick(host, id);
                        return Outcome::Waiting;
                    }
                    match self.fetch_request(issuer, doc) {
                        Ok(request) => (purpose, request),
                        Err(e) => {
                            documents::release(&self.core, host.store(), issuer, doc);
                            attempt.failed = Some(Error::Idp(e));
                            continue;
                        }
                    }
                }
                Step::Call { key, request } => {
                    // The same call for another request of this worker (an
                    // introspection, a userinfo): wait for it, don't repeat it.
                    if self.join(Purpose::Call(key), id) {
                        self.paused.insert(id, req);
                        return Outcome::Waiting;
                    }
                    (Purpose::Call(key), request)
                }
                Step::Wait(key) => {
                    self.paused.insert(id, req);
                    if !self.join(Purpose::Call(key), id) {
                        self.wait_for_tick(host, id);
                    }
                    return Outcome::Waiting;
                }
            };
            match self.dispatch(host, &request, purpose) {
                Ok(token) => {
                    self.in_flight.insert(
                        token,
                        InFlight {
                            purpose,
                            owner: active,
                            waiters: vec![id],
                        },
                    );
                    self.paused.insert(id, req);
                    return Outcome::Waiting;
                }
                Err(e) => {
                    // Cannot even ask: as if the call went unanswered (its
                    // lease given back, its failure remembered where the
                    // flow remembers failures), then decide again.
                    match purpose {
                        Purpose::Call(key) => {
                            let unanswered = IdpReply {
                                status: None,
                                body: Vec::new(),
                            };
                            let now = host.now();
                            flow::handle_call_reply(
                                &self.config,
                                &key,
                                &unanswered,
                                now,
                                &mut self.core,
                                host.store(),
                            );
                        }
                        Purpose::Fetch(..) => self.abandon(host, purpose),
                    }
                    attempt.failed = Some(Error::Idp(e));
                }
            }
        }
    }

    /// Adds `id` to the waiters of a call in flight for `purpose`, if any.
    fn join(&mut self, purpose: Purpose, id: ContextId) -> bool {
        match self.in_flight.values_mut().find(|f| f.purpose == purpose) {
            Some(flight) => {
                flight.waiters.push(id);
                true
            }
            None => false,
        }
    }

    fn wait_for_tick(&mut self, host: &mut impl Host, id: ContextId) {
        if self.on_tick.is_empty() {
            host.set_tick_period(FAST_TICK_MS);
        }
        self.on_tick.push(id);
    }

    /// A call whose reply will never come: give back its lease, so that a
    /// waiting request can make the call itself at once instead of waiting
    /// for the lease to lapse.
    fn abandon(&mut self, host: &mut impl Host, purpose: Purpose) {
        match purpose {
            Purpose::Fetch(issuer, doc) => {
                documents::release(&self.core, host.store(), issuer, doc)
            }
            Purpose::Call(key) => flow::abandon_call(&key, &mut self.core, host.store()),
        }
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

    /// Gives a fetched document to its provider; shares it on success.
    fn handle_document(
        &mut self,
        host: &mut impl Host,
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
                documents::share(&self.core, host.store(), index, doc, now, &reply.body);
                if skipped > 0 {
                    host.log(
                        Level::Warn,
                        &format!("jwks: skipped {skipped} unusable keys"),
                    );
                }
                None
            }
            Err(e) => {
                host.log(Level::Warn, &format!("identity provider: {e}"));
                Some(Error::Idp(e))
            }
        }
    }

    fn dispatch(
        &self,
        host: &mut impl Host,
        request: &IdpRequest,
        purpose: Purpose,
    ) -> Result<u32, IdpError> {
        let endpoint = purpose.endpoint();
        host.dispatch(request).map_err(|reason| {
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

    /// Re-runs each waiting request and applies what is decided for it.
    fn resume_all(
        &mut self,
        host: &mut impl Host,
        waiters: Vec<ContextId>,
        active: ContextId,
        failed: Option<Error>,
    ) {
        for id in waiters {
            let Some(req) = self.paused.remove(&id) else {
                continue; // the request went away while waiting
            };
            if let Outcome::Decided(decision) = self.run(host, id, active, req, failed.clone()) {
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
        if let Action::Continue { response, .. } = &decision.action
            && !response.is_empty()
        {
            self.response_headers.insert(id, response.clone());
        }
        host.apply(id, decision, paused)
    }
}
