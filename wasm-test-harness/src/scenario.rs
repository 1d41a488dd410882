//! The test-facing API: a harness of one or more workers running the module,
//! and handles that read like the story of a request.
//!
//! Handles share the harness through `Rc<RefCell<…>>` so a test can hold
//! several requests and calls at once (two requests racing for one fetch)
//! without fighting the borrow checker. Expectations panic with the module's
//! last log lines, which is what a failing test needs; `try_*` variants
//! return the error instead.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime::Module;

use crate::error::{HarnessError, TAIL, TrapReport};
use crate::headers::HeaderMap;
use crate::state::{CallReply, HostState, LocalReply, Outcome, PendingCall};
use crate::types::LogLevel;
use crate::vm::Vm;
use crate::world::{LogLine, World};

/// Configures a harness before its workers start.
pub struct HarnessBuilder {
    module: Module,
    clusters: Vec<String>,
    refused_header_writes: Vec<String>,
    refuse_local_replies: bool,
    vm_config: Vec<u8>,
    workers: usize,
    now: Option<SystemTime>,
    properties: Vec<(Vec<u8>, Vec<u8>)>,
    log_level: LogLevel,
    seed: Option<u64>,
}

impl HarnessBuilder {
    /// Declares an Envoy cluster the module may call; calls to any other
    /// cluster fail with `BadArgument`, as in Envoy.
    pub fn cluster(mut self, name: &str) -> Self {
        self.clusters.push(name.to_owned());
        self
    }

    /// Makes every write of the request header `name` (replace, add,
    /// remove) fail with `BadArgument`: what a module does when the host
    /// will not take a change (the SDK's `hostcalls` panic on it).
    pub fn refuse_header_write(mut self, name: &str) -> Self {
        self.refused_header_writes.push(name.to_ascii_lowercase());
        self
    }

    /// Makes every `proxy_send_local_response` fail with
    /// `InternalFailure`, the reply not taken: a host that cannot answer
    /// (the module should then reset the stream rather than leave it hung).
    pub fn refuse_local_replies(mut self) -> Self {
        self.refuse_local_replies = true;
        self
    }

    /// Runs `n` workers (VMs) sharing shared data, clock and metrics.
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// The VM configuration (`vm_config.configuration` in Envoy).
    pub fn vm_configuration(mut self, config: impl Into<Vec<u8>>) -> Self {
        self.vm_config = config.into();
        self
    }

    /// Sets a property the module can read with `get_property(path)`.
    pub fn property(mut self, path: &[&str], value: impl Into<Vec<u8>>) -> Self {
        self.properties
            .push((path.join("\0").into_bytes(), value.into()));
        self
    }

    /// Starts the clock at `time` (default: the wall clock at start-up; the
    /// clock then moves only when the test moves it).
    pub fn time(mut self, time: SystemTime) -> Self {
        self.now = Some(time);
        self
    }

    /// What `proxy_get_log_level` answers (default trace).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.log_level = level;
        self
    }

    /// Seeds WASI `random_get` (default: from the wall clock).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The names the module exports, in its order. Like Envoy, the harness
    /// skips a callback the module does not export (its outcome is the
    /// ABI's default: Continue).
    pub fn exports(&self) -> Vec<String> {
        self.module.exports().map(|e| e.name().to_owned()).collect()
    }

    /// Starts every worker and configures it with `config` as Envoy does:
    /// root context, `proxy_on_vm_start`, `proxy_on_configure`. Fails when
    /// either returns false (Envoy rejects the configuration) or traps.
    pub fn configure(self, config: impl AsRef<[u8]>) -> Result<Harness, HarnessError> {
        let now = self.now.unwrap_or_else(SystemTime::now);
        let mut world = World::new(now);
        world.clusters.extend(self.clusters);
        world
            .refused_header_writes
            .extend(self.refused_header_writes);
        world.refuse_local_replies = self.refuse_local_replies;
        world.log_level = self.log_level;
        for (name, value) in [
            ("plugin_name", "harness"),
            ("plugin_root_id", ""),
            ("plugin_vm_id", ""),
        ] {
            world
                .properties
                .insert(name.as_bytes().to_vec(), value.as_bytes().to_vec());
        }
        world.properties.extend(self.properties);
        let seed = self.seed.unwrap_or_else(|| {
            now.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        let harness = Harness {
            inner: Rc::new(RefCell::new(Inner {
                module: self.module,
                world: Rc::new(RefCell::new(world)),
                workers: Vec::new(),
                vm_config: self.vm_config,
                plugin_config: config.as_ref().to_vec(),
                seed,
            })),
        };
        for _ in 0..self.workers {
            harness.add_worker()?;
        }
        Ok(harness)
    }
}

struct Inner {
    module: Module,
    world: Rc<RefCell<World>>,
    workers: Vec<Vm>,
    vm_config: Vec<u8>,
    plugin_config: Vec<u8>,
    seed: u64,
}

impl Inner {
    fn vm(&mut self, worker: usize) -> &mut Vm {
        let count = self.workers.len();
        self.workers
            .get_mut(worker)
            .unwrap_or_else(|| panic!("no worker {worker}: the harness runs {count}"))
    }

    fn tail(&self) -> String {
        self.world.borrow().tail(TAIL)
    }

    fn pending_summary(&self) -> String {
        let calls: Vec<String> = self
            .workers
            .iter()
            .flat_map(|vm| {
                let worker = vm.state().worker;
                vm.state().calls.iter().map(move |c| {
                    format!(
                        "  w{worker} token {} from context {}: {} {} {} (cluster {:?})",
                        c.token,
                        c.origin,
                        c.headers.get(":method").unwrap_or_default(),
                        c.headers.get(":authority").unwrap_or_default(),
                        c.headers.get(":path").unwrap_or_default(),
                        c.cluster
                    )
                })
            })
            .collect();
        if calls.is_empty() {
            "  (none)".to_owned()
        } else {
            calls.join("\n")
        }
    }

    /// Panics with `message`, the pending calls and the module's last logs.
    fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\n--- pending http calls ---\n{}\n--- last log lines ---\n{}",
            self.pending_summary(),
            self.tail()
        )
    }
}

/// A proxy-wasm module running in one or more workers.
pub struct Harness {
    inner: Rc<RefCell<Inner>>,
}

impl Harness {
    /// Compiles (once per test binary) the module at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<HarnessBuilder, HarnessError> {
        Ok(Self::builder(crate::module::load(path.as_ref())?))
    }

    /// Compiles a module given as bytes (one built by the test itself; not
    /// cached).
    pub fn from_bytes(wasm: &[u8]) -> Result<HarnessBuilder, HarnessError> {
        Ok(Self::builder(crate::module::compile(
            wasm,
            Path::new("<bytes>"),
        )?))
    }

    fn builder(module: Module) -> HarnessBuilder {
        HarnessBuilder {
            module,
            clusters: Vec::new(),
            refused_header_writes: Vec::new(),
            refuse_local_replies: false,
            vm_config: Vec::new(),
            workers: 1,
            now: None,
            properties: Vec::new(),
            log_level: LogLevel::Trace,
            seed: None,
        }
    }

    /// Starts one more worker (VM), configured like the others; returns its index.
    pub fn add_worker(&self) -> Result<usize, HarnessError> {
        let mut inner = self.inner.borrow_mut();
        let worker = inner.workers.len();
        let state = HostState::new(
            worker,
            inner.world.clone(),
            inner.vm_config.clone(),
            inner.seed.wrapping_add(worker as u64),
        );
        let mut vm = Vm::new(&inner.module, state)?;
        vm.start()?;
        let config = inner.plugin_config.clone();
        vm.configure(&config)?;
        inner.workers.push(vm);
        Ok(worker)
    }

    pub fn worker_count(&self) -> usize {
        self.inner.borrow().workers.len()
    }

    /// A request with these headers (and no body) arrives at worker 0.
    pub fn request(&self, headers: &[(&str, &str)]) -> Request {
        self.request_on(0, headers)
    }

    /// A request with these headers (and no body) arrives at `worker`.
    pub fn request_on(&self, worker: usize, headers: &[(&str, &str)]) -> Request {
        self.try_request(worker, HeaderMap::from_pairs(headers), true)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like `request`, but header values are bytes (not necessarily UTF-8).
    pub fn request_bytes(&self, headers: &[(&str, &[u8])]) -> Request {
        self.try_request(0, HeaderMap::from_pairs(headers), true)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates the stream context and runs `proxy_on_request_headers`;
    /// returns the error instead of panicking when the module traps.
    pub fn try_request(
        &self,
        worker: usize,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<Request, HarnessError> {
        let id = {
            let mut inner = self.inner.borrow_mut();
            let vm = inner.vm(worker);
            let id = vm.create_stream(headers)?;
            vm.request_headers(id, end_of_stream)?;
            id
        };
        Ok(Request {
            inner: self.inner.clone(),
            worker,
            id,
            finished: Cell::new(false),
        })
    }

    /// Moves the clock forward. Nothing else happens: ticks and call
    /// timeouts are delivered by the test (`tick`, `HttpCall::time_out`).
    pub fn advance(&self, by: Duration) {
        let inner = self.inner.borrow();
        let mut world = inner.world.borrow_mut();
        world.now += by;
    }

    pub fn set_time(&self, time: SystemTime) {
        self.inner.borrow().world.borrow_mut().now = time;
    }

    pub fn now(&self) -> SystemTime {
        self.inner.borrow().world.borrow().now
    }

    /// The clock as seconds since the epoch (handy for JWT claims).
    pub fn unix_now(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Delivers `proxy_on_tick` to every worker that set a tick period.
    pub fn tick(&self) {
        self.try_tick().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_tick(&self) -> Result<(), HarnessError> {
        let mut inner = self.inner.borrow_mut();
        for vm in inner.workers.iter_mut() {
            if vm.state().tick_period_ms > 0 {
                vm.tick()?;
            }
        }
        Ok(())
    }

    /// The tick period `worker` asked for, if any.
    pub fn tick_period(&self, worker: usize) -> Option<Duration> {
        let mut inner = self.inner.borrow_mut();
        let ms = inner.vm(worker).state().tick_period_ms;
        (ms > 0).then(|| Duration::from_millis(ms.into()))
    }

    /// Delivers the `proxy_on_queue_ready` notifications owed so far.
    pub fn deliver_queues(&self) -> Result<(), HarnessError> {
        let mut inner = self.inner.borrow_mut();
        loop {
            let next = inner.world.borrow_mut().queue_ready.pop_front();
            let Some((worker, context, token)) = next else {
                return Ok(());
            };
            inner.vm(worker).queue_ready(context, token)?;
        }
    }

    /// Every line logged so far, by every worker.
    pub fn logs(&self) -> Vec<LogLine> {
        self.inner.borrow().world.borrow().logs.clone()
    }

    /// Panics unless some log line contains `needle`.
    pub fn assert_logged(&self, needle: &str) {
        let inner = self.inner.borrow();
        let found = inner
            .world
            .borrow()
            .logs
            .iter()
            .any(|l| l.message.contains(needle));
        if !found {
            inner.fail(&format!("expected a log line containing {needle:?}"));
        }
    }

    /// Panics if a log line contains `needle` (e.g. a secret).
    pub fn assert_not_logged(&self, needle: &str) {
        let inner = self.inner.borrow();
        let line = inner
            .world
            .borrow()
            .logs
            .iter()
            .find(|l| l.message.contains(needle))
            .cloned();
        if let Some(line) = line {
            inner.fail(&format!(
                "expected no log line containing {needle:?}, found: {line}"
            ));
        }
    }

    /// A metric's value (counters and gauges summed over workers, as Envoy
    /// shows them; for histograms, the last recorded value).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.inner
            .borrow()
            .world
            .borrow()
            .metrics
            .get(name)
            .map(|m| m.value)
    }

    /// Every value recorded into histogram `name`.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        let inner = self.inner.borrow();
        let world = inner.world.borrow();
        world
            .metrics
            .get(name)
            .map(|m| m.samples.clone())
            .unwrap_or_default()
    }

    /// A shared-data value and its cas.
    pub fn shared_data(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner.borrow().world.borrow().shared_data.get(key)
    }

    /// Every shared-data key, sorted: what a module has written (shared
    /// data has no delete, so this is how a test checks it stays bounded).
    pub fn shared_data_keys(&self) -> Vec<String> {
        self.inner.borrow().world.borrow().shared_data.keys()
    }

    /// Writes shared data as another process component would (cas 0).
    pub fn set_shared_data(&self, key: &str, value: &[u8]) {
        self.inner
            .borrow()
            .world
            .borrow_mut()
            .shared_data
            .set(key, value, 0);
    }

    /// Every unanswered http call, oldest first.
    pub fn pending_calls(&self) -> Vec<HttpCall> {
        let inner = self.inner.borrow();
        inner
            .workers
            .iter()
            .flat_map(|vm| {
                let worker = vm.state().worker;
                vm.state().calls.iter().map(move |c| (worker, c.clone()))
            })
            .map(|(worker, call)| HttpCall {
                inner: self.inner.clone(),
                worker,
                call,
            })
            .collect()
    }

    /// The oldest unanswered call to `cluster`, whoever made it.
    pub fn expect_http_call(&self, cluster: &str) -> HttpCall {
        match self
            .pending_calls()
            .into_iter()
            .find(|c| c.call.cluster == cluster)
        {
            Some(call) => call,
            None => self
                .inner
                .borrow()
                .fail(&format!("expected an http call to cluster {cluster:?}")),
        }
    }

    pub fn expect_no_http_call(&self) {
        if !self.pending_calls().is_empty() {
            self.inner.borrow().fail("expected no pending http call");
        }
    }

    /// Answers call `token` (searched on every worker), e.g. one a request
    /// made on behalf of others.
    pub fn respond_http_call(
        &self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) {
        let matching: Vec<HttpCall> = self
            .pending_calls()
            .into_iter()
            .filter(|c| c.token() == token)
            .collect();
        match matching.len() {
            1 => matching
                .into_iter()
                .next()
                .map(|c| c.respond(status, headers, body))
                .unwrap_or(()),
            0 => self
                .inner
                .borrow()
                .fail(&format!("no pending http call with token {token}")),
            _ => self.inner.borrow().fail(&format!(
                "token {token} is pending on several workers; answer through the HttpCall handle"
            )),
        }
    }

    /// The trap that killed `worker`, if one did.
    pub fn trap(&self, worker: usize) -> Option<TrapReport> {
        self.inner.borrow_mut().vm(worker).trap().cloned()
    }
}

/// What the module did to a request's progress in one callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Continue,
    Pause,
}

impl Action {
    fn from_abi(value: i32) -> Self {
        if value == 0 {
            Self::Continue
        } else {
            Self::Pause
        }
    }
}

/// One HTTP request going through the module. Dropping it ends the stream
/// (`proxy_on_log`, `proxy_on_done`, `proxy_on_delete`) unless the VM is dead.
pub struct Request {
    inner: Rc<RefCell<Inner>>,
    worker: usize,
    id: u32,
    finished: Cell<bool>,
}

impl Request {
    /// The stream's context id in its VM.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn worker(&self) -> usize {
        self.worker
    }

    pub fn outcome(&self) -> Outcome {
        let mut inner = self.inner.borrow_mut();
        let vm = inner.vm(self.worker);
        vm.state()
            .streams
            .get(&self.id)
            .map_or(Outcome::Pending, |s| s.outcome.clone())
    }

    fn fail(&self, message: &str) -> ! {
        self.inner.borrow().fail(&format!(
            "request {} (worker {}): {message}",
            self.id, self.worker
        ))
    }

    fn describe(outcome: &Outcome) -> String {
        match outcome {
            Outcome::LocalReply(r) => format!(
                "a local reply {} with headers {:?} and body {:?}",
                r.status,
                r.headers.to_pairs(),
                String::from_utf8_lossy(&r.body)
            ),
            other => format!("{other:?}"),
        }
    }

    /// Lines the harness noted about ABI misuse on this stream.
    pub fn misuse(&self) -> Vec<String> {
        let mut inner = self.inner.borrow_mut();
        let vm = inner.vm(self.worker);
        vm.state()
            .streams
            .get(&self.id)
            .map(|s| s.misuse.clone())
            .unwrap_or_default()
    }

    /// Unanswered calls this request made (the calls it made from its own
    /// callbacks count as its own).
    pub fn http_calls(&self) -> Vec<HttpCall> {
        let mut inner = self.inner.borrow_mut();
        let calls: Vec<PendingCall> = inner
            .vm(self.worker)
            .state()
            .calls
            .iter()
            .filter(|c| c.origin == self.id)
            .cloned()
            .collect();
        drop(inner);
        calls
            .into_iter()
            .map(|call| HttpCall {
                inner: self.inner.clone(),
                worker: self.worker,
                call,
            })
            .collect()
    }

    /// The oldest unanswered call this request made to `cluster`.
    pub fn expect_http_call(&self, cluster: &str) -> HttpCall {
        match self
            .http_calls()
            .into_iter()
            .find(|c| c.call.cluster == cluster)
        {
            Some(call) => call,
            None => self.fail(&format!(
                "expected an http call to cluster {cluster:?}; the request is {}",
                Self::describe(&self.outcome())
            )),
        }
    }

    pub fn expect_no_http_call(&self) {
        if !self.http_calls().is_empty() {
            self.fail("expected no http call from this request");
        }
    }

    /// Panics unless the request went upstream; returns what went upstream.
    pub fn expect_continue(&self) -> Forwarded {
        match self.outcome() {
            Outcome::Continued => {}
            other => self.fail(&format!(
                "expected the request to continue, but it is {}",
                Self::describe(&other)
            )),
        }
        let mut inner = self.inner.borrow_mut();
        let headers = inner
            .vm(self.worker)
            .state()
            .streams
            .get(&self.id)
            .map(|s| s.request_headers.clone());
        Forwarded {
            headers: headers.unwrap_or_default(),
            context: format!("request {} (worker {})", self.id, self.worker),
            logs: inner.tail(),
        }
    }

    /// Panics unless the module answered with `status`; returns the reply.
    pub fn expect_local_response(&self, status: u32) -> Reply {
        match self.outcome() {
            Outcome::LocalReply(reply) if reply.status == status => Reply {
                reply,
                context: format!("request {} (worker {})", self.id, self.worker),
                logs: self.inner.borrow().tail(),
            },
            other => self.fail(&format!(
                "expected a local reply {status}, but the request is {}",
                Self::describe(&other)
            )),
        }
    }

    /// Panics unless the module reset the stream.
    pub fn expect_reset(&self) {
        let outcome = self.outcome();
        if outcome != Outcome::Reset {
            self.fail(&format!(
                "expected the stream to be reset, but it is {}",
                Self::describe(&outcome)
            ));
        }
    }

    /// Panics unless the request is paused (waiting on the module).
    pub fn expect_paused(&self) {
        let outcome = self.outcome();
        if outcome != Outcome::Paused {
            self.fail(&format!(
                "expected the request to be paused, but it is {}",
                Self::describe(&outcome)
            ));
        }
    }

    /// Request body data arrives (`proxy_on_request_body`).
    pub fn send_body(&self, body: &[u8], end_of_stream: bool) -> Action {
        self.try_send_body(body, end_of_stream)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_send_body(&self, body: &[u8], end_of_stream: bool) -> Result<Action, HarnessError> {
        let mut inner = self.inner.borrow_mut();
        Ok(Action::from_abi(inner.vm(self.worker).request_body(
            self.id,
            body,
            end_of_stream,
        )?))
    }

    /// The upstream answers with these headers (`proxy_on_response_headers`);
    /// returns what the module did and the headers as it left them.
    pub fn respond(&self, headers: &[(&str, &str)], end_of_stream: bool) -> (Action, HeaderMap) {
        self.try_respond(HeaderMap::from_pairs(headers), end_of_stream)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_respond(
        &self,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<(Action, HeaderMap), HarnessError> {
        let mut inner = self.inner.borrow_mut();
        let vm = inner.vm(self.worker);
        let action = vm.response_headers(self.id, headers, end_of_stream)?;
        let headers = vm
            .state()
            .streams
            .get(&self.id)
            .and_then(|s| s.response_headers.clone());
        Ok((Action::from_abi(action), headers.unwrap_or_default()))
    }

    /// Response body data arrives (`proxy_on_response_body`).
    pub fn send_response_body(
        &self,
        body: &[u8],
        end_of_stream: bool,
    ) -> Result<Action, HarnessError> {
        let mut inner = self.inner.borrow_mut();
        Ok(Action::from_abi(inner.vm(self.worker).response_body(
            self.id,
            body,
            end_of_stream,
        )?))
    }

    /// Ends the stream now: `proxy_on_log`, `proxy_on_done`, `proxy_on_delete`.
    pub fn finish(&self) {
        self.try_finish().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_finish(&self) -> Result<(), HarnessError> {
        if self.finished.replace(true) {
            return Ok(());
        }
        self.inner
            .borrow_mut()
            .vm(self.worker)
            .finish_stream(self.id)
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.finished.get() || std::thread::panicking() {
            return;
        }
        let dead = self.inner.borrow_mut().vm(self.worker).trap().is_some();
        if !dead && let Err(e) = self.try_finish() {
            panic!("ending request {}: {e}", self.id);
        }
    }
}

/// An http call the module made and the test has not answered yet.
pub struct HttpCall {
    inner: Rc<RefCell<Inner>>,
    worker: usize,
    call: PendingCall,
}

impl HttpCall {
    pub fn token(&self) -> u32 {
        self.call.token
    }

    pub fn worker(&self) -> usize {
        self.worker
    }

    /// The context that made the call.
    pub fn origin(&self) -> u32 {
        self.call.origin
    }

    /// True when the root context made the call (e.g. from `proxy_on_tick`,
    /// or a request's callback that set the root as effective context).
    pub fn from_root(&self) -> bool {
        self.call.origin == self.inner.borrow_mut().vm(self.worker).state().root_id
    }

    pub fn cluster(&self) -> &str {
        &self.call.cluster
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.call.headers
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.call.headers.get(name)
    }

    pub fn method(&self) -> String {
        self.header(":method").unwrap_or_default()
    }

    pub fn path(&self) -> String {
        self.header(":path").unwrap_or_default()
    }

    pub fn authority(&self) -> String {
        self.header(":authority").unwrap_or_default()
    }

    pub fn body(&self) -> &[u8] {
        &self.call.body
    }

    /// The body as text (lossy UTF-8), e.g. a form-encoded token request.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.call.body).into_owned()
    }

    pub fn trailers(&self) -> &HeaderMap {
        &self.call.trailers
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.call.timeout_ms.into())
    }

    /// Answers with `:status` = `status`, `headers` and `body`.
    pub fn respond(self, status: u16, headers: &[(&str, &str)], body: impl AsRef<[u8]>) {
        self.try_respond(status, headers, body)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_respond(
        self,
        status: u16,
        headers: &[(&str, &str)],
        body: impl AsRef<[u8]>,
    ) -> Result<(), HarnessError> {
        let mut map = HeaderMap::new();
        map.add(":status", status.to_string().as_bytes());
        for (k, v) in headers {
            map.add(k, v.as_bytes());
        }
        let body = body.as_ref().to_vec();
        if !body.is_empty() && map.get_bytes("content-length").is_none() {
            map.add("content-length", body.len().to_string().as_bytes());
        }
        self.deliver(Some(CallReply {
            headers: map,
            body,
            trailers: HeaderMap::new(),
        }))
    }

    /// Answers with a JSON body and `content-type: application/json`.
    pub fn respond_json(self, status: u16, body: &serde_json::Value) {
        self.respond(
            status,
            &[("content-type", "application/json")],
            body.to_string(),
        )
    }

    /// What Envoy delivers when the call times out: 504 "upstream request timeout".
    pub fn time_out(self) {
        self.respond(
            504,
            &[("content-type", "text/plain")],
            "upstream request timeout",
        )
    }

    /// What Envoy delivers when the call is reset: no headers, no body, and
    /// `proxy_get_status` = BrokenConnection "reset".
    pub fn fail(self) {
        self.try_fail().unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_fail(self) -> Result<(), HarnessError> {
        self.deliver(None)
    }

    fn deliver(self, reply: Option<CallReply>) -> Result<(), HarnessError> {
        self.inner
            .borrow_mut()
            .vm(self.worker)
            .deliver_call(self.call.token, reply)
    }
}

/// The request as it goes upstream.
pub struct Forwarded {
    headers: HeaderMap,
    context: String,
    logs: String,
}

impl Forwarded {
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name)
    }

    fn fail(&self, message: &str) -> ! {
        panic!(
            "{}: {message}\nforwarded headers: {:?}\n--- last log lines ---\n{}",
            self.context,
            self.headers.to_pairs(),
            self.logs
        )
    }

    /// Panics unless `name` is forwarded exactly once, with `value`.
    pub fn assert_header(&self, name: &str, value: &str) -> &Self {
        let values = self.headers.get_all(name);
        if values != [value] {
            self.fail(&format!(
                "expected {name}: {value:?} upstream, found {values:?}"
            ));
        }
        self
    }

    pub fn assert_no_header(&self, name: &str) -> &Self {
        let values = self.headers.get_all(name);
        if !values.is_empty() {
            self.fail(&format!("expected no {name} upstream, found {values:?}"));
        }
        self
    }
}

/// A local reply the module sent.
pub struct Reply {
    reply: LocalReply,
    context: String,
    logs: String,
}

impl Reply {
    pub fn status(&self) -> u32 {
        self.reply.status
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.reply.headers
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.reply.headers.get(name)
    }

    pub fn body(&self) -> &[u8] {
        &self.reply.body
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.reply.body).into_owned()
    }

    /// The body as JSON; panics (with the body) when it is not JSON.
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.reply.body)
            .unwrap_or_else(|e| self.fail(&format!("the body is not JSON ({e})")))
    }

    /// The `details` string the module passed (Envoy's response code details).
    pub fn details(&self) -> &str {
        &self.reply.details
    }

    fn fail(&self, message: &str) -> ! {
        panic!(
            "{}: {message}\nlocal reply {} headers {:?} body {:?}\n--- last log lines ---\n{}",
            self.context,
            self.reply.status,
            self.reply.headers.to_pairs(),
            self.body_str(),
            self.logs
        )
    }

    /// Panics unless the reply carries `name` exactly once, with `value`.
    pub fn assert_header(&self, name: &str, value: &str) -> &Self {
        let values = self.reply.headers.get_all(name);
        if values != [value] {
            self.fail(&format!("expected {name}: {value:?}, found {values:?}"));
        }
        self
    }

    pub fn assert_no_header(&self, name: &str) -> &Self {
        let values = self.reply.headers.get_all(name);
        if !values.is_empty() {
            self.fail(&format!("expected no {name}, found {values:?}"));
        }
        self
    }

    /// Panics unless the body is this JSON value.
    pub fn assert_body_json(&self, expected: &serde_json::Value) -> &Self {
        let body = self.body_json();
        if &body != expected {
            self.fail(&format!("expected body {expected}"));
        }
        self
    }
}
