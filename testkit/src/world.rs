//! A fake host of N workers sharing one store, a scripted IdP and a clock:
//! the filter's engine driven on the host, as Envoy would drive it, in
//! milliseconds per test.
//!
//! It keeps the host's rules that matter to the engine: a reply reaches
//! only the context that was active when its call was dispatched (the
//! proxy-wasm SDK's routing), and is lost if that context is gone; shared
//! data follows `EnvoyStore`; each worker has its own engine and ticks.

use std::collections::{BTreeMap, HashSet};

use envoy_oidc::action::{Action, Decision, IdpReply, IdpRequest, Response};
use envoy_oidc::config::Config;
use envoy_oidc::engine::{ContextId, Engine, Host, HostFailure, Level};
use envoy_oidc::request::RequestView;
use envoy_oidc::store::SharedStore;

use crate::store::EnvoyStore;

/// How the scripted IdP answers a call at a time.
pub type Idp = Box<dyn FnMut(&IdpRequest, u64) -> IdpReply>;

/// What the host did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Still paused: waiting on an IdP call or a tick.
    Paused,
    /// Decided: forwarded (`Action::Continue`) or answered locally.
    Decided(Decision),
    /// The request went away before a decision.
    Gone,
}

/// A dispatched call, as the host saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub worker: usize,
    pub token: u32,
    /// The context the reply will be delivered to.
    pub owner: ContextId,
    pub request: IdpRequest,
    /// When it was dispatched.
    pub at: u64,
    /// Not answered yet.
    pub pending: bool,
}

impl Call {
    pub fn path(&self) -> &str {
        path(&self.request)
    }

    pub fn form(&self) -> BTreeMap<String, String> {
        form(&self.request)
    }
}

/// An IdP request's `:path`.
pub fn path(r: &IdpRequest) -> &str {
    header(r, ":path").unwrap_or_default()
}

/// An IdP request's form body, decoded.
pub fn form(r: &IdpRequest) -> BTreeMap<String, String> {
    form_urlencoded::parse(r.body.as_deref().unwrap_or_default())
        .into_owned()
        .collect()
}

pub fn header<'a>(r: &'a IdpRequest, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The host side of one worker.
#[derive(Default)]
pub struct HostState {
    pub root: ContextId,
    live: HashSet<ContextId>,
    pub outcomes: BTreeMap<ContextId, Outcome>,
    pub response_headers: BTreeMap<ContextId, Vec<(String, String)>>,
    pub tick_ms: u64,
    pub logs: Vec<(Level, String)>,
    pub counters: BTreeMap<String, u64>,
    counter_names: Vec<String>,
    /// Filter state each request was given, by name.
    pub filter_state: BTreeMap<ContextId, BTreeMap<String, String>>,
    /// The Envoy route (`xds.route_name`) this worker's requests take.
    pub route_name: Option<String>,
    /// How many times the engine read a property.
    pub property_reads: usize,
    /// The host fails every property read.
    pub property_fails: bool,
    /// The host's log level is above info (info lines are dropped).
    pub quiet: bool,
}

pub struct Worker {
    pub engine: Engine,
    pub host: HostState,
}

pub struct World {
    pub workers: Vec<Worker>,
    pub store: EnvoyStore,
    pub now: u64,
    pub idp: Idp,
    /// Every call dispatched, in order.
    pub calls: Vec<Call>,
    /// Refuse every dispatch (an unknown cluster, say).
    pub refuse_dispatch: bool,
    next_id: ContextId,
}

/// One callback's view of the host: the worker it runs on, the shared
/// store, the calls, and the context it was called in.
struct FakeHost<'a> {
    worker: usize,
    state: &'a mut HostState,
    store: &'a mut EnvoyStore,
    calls: &'a mut Vec<Call>,
    now: u64,
    active: ContextId,
    refuse_dispatch: bool,
}

impl Host for FakeHost<'_> {
    fn now(&self) -> u64 {
        self.now
    }

    fn store(&mut self) -> &mut dyn SharedStore {
        self.store
    }

    fn dispatch(&mut self, request: &IdpRequest) -> Result<u32, String> {
        if self.refuse_dispatch {
            return Err("BadArgument".into());
        }
        let token = u32::try_from(self.calls.len() + 1).unwrap_or(u32::MAX);
        self.calls.push(Call {
            worker: self.worker,
            token,
            owner: self.active,
            request: request.clone(),
            at: self.now,
            pending: true,
        });
        Ok(token)
    }

    fn apply(&mut self, id: ContextId, decision: &Decision, paused: bool) -> bool {
        assert!(
            self.state.live.contains(&id),
            "the engine acted on request {id}, which is gone"
        );
        let was = self.state.outcomes.get(&id);
        assert_eq!(
            was,
            Some(&Outcome::Paused),
            "request {id} decided twice: {was:?} then {decision:?}"
        );
        let _ = paused;
        self.state
            .outcomes
            .insert(id, Outcome::Decided(decision.clone()));
        matches!(decision.action, Action::Continue { .. })
    }

    fn add_response_header(&mut self, id: ContextId, name: &str, value: &str) {
        self.state
            .response_headers
            .entry(id)
            .or_default()
            .push((name.into(), value.into()));
    }

    fn set_tick_period(&mut self, millis: u64) {
        self.state.tick_ms = millis;
    }

    fn log(&mut self, level: Level, message: &str) {
        self.state.logs.push((level, message.into()));
    }

    fn logs(&self, level: Level) -> bool {
        !(self.state.quiet && matches!(level, Level::Debug | Level::Info))
    }

    fn define_counter(&mut self, name: &str) -> Option<u32> {
        self.state.counter_names.push(name.into());
        u32::try_from(self.state.counter_names.len() - 1).ok()
    }

    fn increment_counter(&mut self, id: u32, n: u64) {
        let name = self.state.counter_names[id as usize].clone();
        *self.state.counters.entry(name).or_default() += n;
    }

    fn request_body(&mut self, _id: ContextId, _max: usize) -> Option<Vec<u8>> {
        None
    }

    fn property(&mut self, _id: ContextId, path: &[&str]) -> Result<Option<Vec<u8>>, HostFailure> {
        self.state.property_reads += 1;
        if self.state.property_fails {
            return Err(HostFailure);
        }
        Ok(match path {
            ["xds", "route_name"] => self.state.route_name.clone().map(String::into_bytes),
            _ => None,
        })
    }

    fn set_filter_state(&mut self, id: ContextId, name: &str, value: &[u8]) {
        self.state.filter_state.entry(id).or_default().insert(
            name.to_string(),
            String::from_utf8_lossy(value).into_owned(),
        );
    }
}

/// A configuration as the filter would load it.
pub fn config(json: &serde_json::Value) -> Config {
    Config::parse(&serde_json::to_vec(json).expect("json"))
        .expect("a valid configuration")
        .config
}

impl World {
    /// `workers` workers of one Envoy, configured with `config`, starting
    /// at `now`, their IdP answering with `idp`.
    pub fn new(
        config: &serde_json::Value,
        workers: usize,
        now: u64,
        idp: impl FnMut(&IdpRequest, u64) -> IdpReply + 'static,
    ) -> World {
        let mut world = World {
            workers: Vec::new(),
            store: EnvoyStore::default(),
            now,
            idp: Box::new(idp),
            calls: Vec::new(),
            refuse_dispatch: false,
            next_id: 1,
        };
        for n in 0..workers {
            world.start_worker(config, [n as u8 + 1; 72]);
        }
        world
    }

    /// Starts one more worker with its own randomness.
    pub fn start_worker(&mut self, config_json: &serde_json::Value, random: [u8; 72]) -> usize {
        self.start_configured(config_json, "test/", random)
    }

    /// Starts one more worker under `prefix`, the shared-data namespace the
    /// shell derives from the whole configuration's text: another prefix
    /// stands for a changed configuration.
    pub fn start_configured(
        &mut self,
        config_json: &serde_json::Value,
        prefix: &str,
        random: [u8; 72],
    ) -> usize {
        let index = self.workers.len();
        let mut state = HostState {
            root: self.fresh_id(),
            ..HostState::default()
        };
        let root = state.root;
        let mut host = FakeHost {
            worker: index,
            state: &mut state,
            store: &mut self.store,
            calls: &mut self.calls,
            now: self.now,
            active: root,
            refuse_dispatch: self.refuse_dispatch,
        };
        let engine = Engine::new(config(config_json), prefix, random, root, &mut host);
        self.workers.push(Worker {
            engine,
            host: state,
        });
        index
    }

    fn fresh_id(&mut self) -> ContextId {
        self.next_id += 1;
        self.next_id
    }

    /// Runs `f` against worker `w`'s engine, in context `active`.
    fn with<R>(
        &mut self,
        w: usize,
        active: ContextId,
        f: impl FnOnce(&mut Engine, &mut FakeHost) -> R,
    ) -> R {
        let worker = &mut self.workers[w];
        let mut host = FakeHost {
            worker: w,
            state: &mut worker.host,
            store: &mut self.store,
            calls: &mut self.calls,
            now: self.now,
            active,
            refuse_dispatch: self.refuse_dispatch,
        };
        f(&mut worker.engine, &mut host)
    }

    /// A request arrives at worker `w`; returns its context id.
    pub fn send(&mut self, w: usize, req: RequestView) -> ContextId {
        let id = self.fresh_id();
        let state = &mut self.workers[w].host;
        state.live.insert(id);
        state.outcomes.insert(id, Outcome::Paused);
        self.with(w, id, |engine, host| engine.handle_request(host, id, req));
        id
    }

    pub fn outcome(&self, w: usize, id: ContextId) -> &Outcome {
        self.workers[w]
            .host
            .outcomes
            .get(&id)
            .unwrap_or(&Outcome::Gone)
    }

    /// The decision for a request, which must have been made.
    pub fn decision(&self, w: usize, id: ContextId) -> &Decision {
        match self.outcome(w, id) {
            Outcome::Decided(d) => d,
            other => panic!("request {id} on worker {w} is {other:?}"),
        }
    }

    /// The upstream's response passes through request `id`: returns the
    /// headers the filter added to it.
    pub fn respond(&mut self, w: usize, id: ContextId) -> Vec<(String, String)> {
        self.with(w, id, |engine, host| {
            engine.handle_response_headers(host, id)
        });
        self.workers[w]
            .host
            .response_headers
            .remove(&id)
            .unwrap_or_default()
    }

    /// Request `id` goes away (client gone, stream reset, or done).
    pub fn drop_request(&mut self, w: usize, id: ContextId) {
        self.workers[w].host.live.remove(&id);
        if self.workers[w].host.outcomes.get(&id) == Some(&Outcome::Paused) {
            self.workers[w].host.outcomes.insert(id, Outcome::Gone);
        }
        self.with(w, id, |engine, host| engine.handle_done(host, id));
    }

    pub fn pending(&self) -> Vec<Call> {
        self.calls.iter().filter(|c| c.pending).cloned().collect()
    }

    /// Answers call `token` with `reply`. Delivered only if its owner is
    /// still there, as the host does; returns whether it was.
    pub fn answer(&mut self, token: u32, reply: IdpReply) -> bool {
        let call = self
            .calls
            .iter_mut()
            .find(|c| c.token == token && c.pending)
            .expect("a pending call");
        call.pending = false;
        let (w, owner) = (call.worker, call.owner);
        let call = call.clone();
        if !self.owner_alive(&call) {
            return false;
        }
        self.with(w, owner, |engine, host| {
            engine.handle_reply(host, owner, token, &reply)
        });
        true
    }

    /// Is the owner of call `token` still there to take its reply?
    pub fn owner_alive(&self, call: &Call) -> bool {
        let state = &self.workers[call.worker].host;
        call.owner == state.root || state.live.contains(&call.owner)
    }

    /// Answers the oldest pending call with the scripted IdP.
    pub fn answer_next(&mut self) -> bool {
        let Some(call) = self.calls.iter().find(|c| c.pending).cloned() else {
            return false;
        };
        let reply = (self.idp)(&call.request, self.now);
        self.answer(call.token, reply);
        true
    }

    /// Worker `w`'s tick, in its root context.
    pub fn tick(&mut self, w: usize) {
        let root = self.workers[w].host.root;
        self.with(w, root, |engine, host| engine.handle_tick(host, root));
    }

    pub fn tick_all(&mut self) {
        for w in 0..self.workers.len() {
            self.tick(w);
        }
    }

    /// Answers every call and ticks until every request is decided, or
    /// until a round of ticks changes nothing (requests left waiting on a
    /// lease that only time can free: advance `now` and settle again).
    pub fn settle(&mut self) {
        for _ in 0..10_000 {
            if self.answer_next() {
                continue;
            }
            let before = (self.calls.len(), self.paused());
            if before.1 == 0 {
                return;
            }
            self.tick_all();
            if (self.calls.len(), self.paused()) == before {
                return;
            }
        }
        panic!("the engine did not settle");
    }

    /// Requests paused, across workers.
    pub fn paused(&self) -> usize {
        self.workers
            .iter()
            .map(|w| {
                w.host
                    .outcomes
                    .values()
                    .filter(|o| **o == Outcome::Paused)
                    .count()
            })
            .sum()
    }

    /// Sends a request and settles the world: its decision.
    pub fn request(&mut self, w: usize, req: RequestView) -> Decision {
        let id = self.send(w, req);
        self.settle();
        self.decision(w, id).clone()
    }

    /// Calls whose `:path` starts with `prefix`.
    pub fn calls_to(&self, prefix: &str) -> usize {
        self.calls
            .iter()
            .filter(|c| c.path().starts_with(prefix))
            .count()
    }

    pub fn logs(&self, w: usize) -> &[(Level, String)] {
        &self.workers[w].host.logs
    }
}

/// A local answer's response, for assertions.
pub fn response(d: &Decision) -> &Response {
    match &d.action {
        Action::Respond(r) => r,
        other => panic!("expected a local response, got {other:?}"),
    }
}
