//! One VM (one Envoy worker): a wasmtime instance of the module plus the
//! host state, and the host→module calls in the order Envoy makes them.
//! A trap kills the VM: the call returns the trap, later calls refuse.

use wasmtime::{Linker, Module, Store, WasmParams, WasmResults};

use crate::abi;
use crate::error::{HarnessError, TAIL, TrapReport};
use crate::headers::HeaderMap;
use crate::state::{CallReply, HostState, Outcome, Stream};

pub(crate) struct Vm {
    store: Store<HostState>,
    instance: wasmtime::Instance,
    dead: Option<Box<TrapReport>>,
}

/// proxy-wasm `Action::Continue`; anything else stops iteration.
const CONTINUE: i32 = 0;

impl Vm {
    pub(crate) fn new(module: &Module, state: HostState) -> Result<Self, HarnessError> {
        let link = |e: wasmtime::Error| HarnessError::Link(format!("{e:?}"));
        let mut linker = Linker::new(module.engine());
        abi::add_to_linker(&mut linker).map_err(link)?;
        let mut store = Store::new(module.engine(), state);
        let missing: Vec<String> = module
            .imports()
            .filter(|i| linker.get_by_import(&mut store, i).is_none())
            .map(|i| format!("{}::{} {:?}", i.module(), i.name(), i.ty()))
            .collect();
        if !missing.is_empty() {
            return Err(HarnessError::Link(format!(
                "the module imports what no proxy-wasm host provides (or with another signature): {}",
                missing.join(", ")
            )));
        }
        // The ABI version first, as Envoy checks it before the callbacks.
        if module.get_export("proxy_abi_version_0_2_1").is_none() {
            return Err(HarnessError::Link(
                "the module does not export proxy_abi_version_0_2_1 (the harness speaks ABI 0.2.1)"
                    .into(),
            ));
        }
        if let Some(why) = crate::signatures::mismatch(module) {
            return Err(HarnessError::Link(why));
        }
        let instance = linker.instantiate(&mut store, module).map_err(link)?;
        Ok(Self {
            store,
            instance,
            dead: None,
        })
    }

    pub(crate) fn state(&self) -> &HostState {
        self.store.data()
    }

    pub(crate) fn state_mut(&mut self) -> &mut HostState {
        self.store.data_mut()
    }

    pub(crate) fn trap(&self) -> Option<&TrapReport> {
        self.dead.as_deref()
    }

    /// Calls export `name` with `context` current. `Ok(None)` when the module
    /// does not export it: Envoy skips callbacks a module lacks (one with
    /// another signature was refused at load: `signatures`).
    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        context: u32,
        name: &str,
        params: P,
    ) -> Result<Option<R>, HarnessError> {
        if let Some(report) = &self.dead {
            return Err(HarnessError::VmDead(report.clone()));
        }
        let Ok(func) = self.instance.get_typed_func::<P, R>(&mut self.store, name) else {
            return Ok(None);
        };
        let state = self.store.data_mut();
        state.current = context;
        state.effective = 0;
        let result = func.call(&mut self.store, params);
        let state = self.store.data_mut();
        state.current = 0;
        state.effective = 0;
        state.call_reply = None;
        state.plugin_config = None;
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) => {
                let state = self.store.data();
                let world = state.world.borrow();
                let report = Box::new(TrapReport {
                    worker: state.worker,
                    call: format!("{name}(context {context})"),
                    message: format!("{error:?}"),
                    logs: world.logs[world.logs.len().saturating_sub(TAIL)..].to_vec(),
                });
                drop(world);
                self.dead = Some(report.clone());
                Err(HarnessError::Trap(report))
            }
        }
    }

    fn refused(&self, call: &str) -> HarnessError {
        HarnessError::Refused {
            call: call.to_owned(),
            worker: self.state().worker,
            logs: self.state().world.borrow().tail(TAIL),
        }
    }

    /// Module start-up, then the root context and `proxy_on_vm_start`.
    pub(crate) fn start(&mut self) -> Result<(), HarnessError> {
        // A wasip1 reactor initialises in `_initialize`; a command in `_start`.
        if self.call::<(), ()>(0, "_initialize", ())?.is_none() {
            self.call::<(), ()>(0, "_start", ())?;
        }
        let root = self.state().root_id;
        self.call::<(i32, i32), ()>(root, "proxy_on_context_create", (root as i32, 0))?;
        let size = self.state().vm_config.len() as i32;
        match self.call::<(i32, i32), i32>(root, "proxy_on_vm_start", (root as i32, size))? {
            Some(0) => Err(self.refused("proxy_on_vm_start")),
            _ => Ok(()),
        }
    }

    pub(crate) fn configure(&mut self, config: &[u8]) -> Result<(), HarnessError> {
        let root = self.state().root_id;
        self.state_mut().plugin_config = Some(config.to_vec());
        let size = config.len() as i32;
        match self.call::<(i32, i32), i32>(root, "proxy_on_configure", (root as i32, size))? {
            Some(0) => Err(self.refused("proxy_on_configure")),
            _ => Ok(()),
        }
    }

    /// A new HTTP stream: its context is created with the root as parent.
    pub(crate) fn create_stream(&mut self, headers: HeaderMap) -> Result<u32, HarnessError> {
        let state = self.state_mut();
        let id = state.next_context_id;
        state.next_context_id += 1;
        state.contexts.insert(id);
        state.streams.insert(id, Stream::new(headers));
        let root = state.root_id;
        self.call::<(i32, i32), ()>(id, "proxy_on_context_create", (id as i32, root as i32))?;
        Ok(id)
    }

    fn stream(&mut self, id: u32) -> Result<&mut Stream, HarnessError> {
        self.state_mut()
            .streams
            .get_mut(&id)
            .ok_or_else(|| HarnessError::Usage(format!("stream {id} is finished")))
    }

    pub(crate) fn request_headers(
        &mut self,
        id: u32,
        end_of_stream: bool,
    ) -> Result<(), HarnessError> {
        let count = self.stream(id)?.request_headers.len() as i32;
        let action = self.call::<(i32, i32, i32), i32>(
            id,
            "proxy_on_request_headers",
            (id as i32, count, end_of_stream as i32),
        )?;
        let stream = self.stream(id)?;
        if stream.outcome == Outcome::Pending {
            if action.unwrap_or(CONTINUE) == CONTINUE {
                stream.outcome = Outcome::Continued;
                stream.request_headers_open = false;
            } else {
                stream.outcome = Outcome::Paused;
            }
        }
        Ok(())
    }

    pub(crate) fn request_body(
        &mut self,
        id: u32,
        body: &[u8],
        end_of_stream: bool,
    ) -> Result<i32, HarnessError> {
        self.stream(id)?.request_body = Some(body.to_vec());
        let action = self.call::<(i32, i32, i32), i32>(
            id,
            "proxy_on_request_body",
            (id as i32, body.len() as i32, end_of_stream as i32),
        )?;
        Ok(action.unwrap_or(CONTINUE))
    }

    pub(crate) fn response_headers(
        &mut self,
        id: u32,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> Result<i32, HarnessError> {
        let count = headers.len() as i32;
        let stream = self.stream(id)?;
        stream.response_headers = Some(headers);
        stream.response_headers_open = true;
        let action = self.call::<(i32, i32, i32), i32>(
            id,
            "proxy_on_response_headers",
            (id as i32, count, end_of_stream as i32),
        )?;
        Ok(action.unwrap_or(CONTINUE))
    }

    pub(crate) fn response_body(
        &mut self,
        id: u32,
        body: &[u8],
        end_of_stream: bool,
    ) -> Result<i32, HarnessError> {
        self.stream(id)?.response_body = Some(body.to_vec());
        let action = self.call::<(i32, i32, i32), i32>(
            id,
            "proxy_on_response_body",
            (id as i32, body.len() as i32, end_of_stream as i32),
        )?;
        Ok(action.unwrap_or(CONTINUE))
    }

    /// Delivers the answer to call `token` to the root context, which owns
    /// every call in Envoy (the SDK then routes it to the calling context).
    /// `None` is a reset: no headers, no body, `proxy_get_status` says so.
    pub(crate) fn deliver_call(
        &mut self,
        token: u32,
        reply: Option<CallReply>,
    ) -> Result<(), HarnessError> {
        let state = self.state_mut();
        let Some(at) = state.calls.iter().position(|c| c.token == token) else {
            return Err(HarnessError::Usage(format!(
                "no pending http call with token {token} on worker {}",
                state.worker
            )));
        };
        state.calls.remove(at);
        let counts = reply.as_ref().map_or((0, 0, 0), |r| {
            (
                r.headers.len() as i32,
                r.body.len() as i32,
                r.trailers.len() as i32,
            )
        });
        state.status = match reply {
            Some(_) => (0, String::new()),
            None => (
                crate::types::Status::BrokenConnection as u32,
                "reset".into(),
            ),
        };
        state.call_reply = reply;
        let root = state.root_id;
        self.call::<(i32, i32, i32, i32, i32), ()>(
            root,
            "proxy_on_http_call_response",
            (root as i32, token as i32, counts.0, counts.1, counts.2),
        )?;
        self.state_mut().status = (0, String::new());
        Ok(())
    }

    pub(crate) fn tick(&mut self) -> Result<(), HarnessError> {
        let root = self.state().root_id;
        self.call::<i32, ()>(root, "proxy_on_tick", root as i32)?;
        Ok(())
    }

    pub(crate) fn queue_ready(&mut self, context: u32, token: u32) -> Result<(), HarnessError> {
        self.call::<(i32, i32), ()>(
            context,
            "proxy_on_queue_ready",
            (context as i32, token as i32),
        )?;
        Ok(())
    }

    /// The end of a stream, as Envoy ends it: access log, then done, then delete.
    pub(crate) fn finish_stream(&mut self, id: u32) -> Result<(), HarnessError> {
        if !self.state().contexts.contains(&id) {
            return Ok(());
        }
        let result = (|| {
            self.call::<i32, ()>(id, "proxy_on_log", id as i32)?;
            self.call::<i32, i32>(id, "proxy_on_done", id as i32)?;
            self.call::<i32, ()>(id, "proxy_on_delete", id as i32)?;
            Ok(())
        })();
        // The stream is gone for the host even if the module trapped.
        self.state_mut().contexts.remove(&id);
        result
    }
}
