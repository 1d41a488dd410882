//! The root context: loads the configuration, creates request contexts,
//! and ticks to re-drive requests whose IdP fetch was lost.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::shell::host;
use crate::shell::http::Http;
use crate::shell::worker::{Worker, deliver_reply};

pub struct Root {
    id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
}

impl Root {
    pub fn new(id: u32) -> Self {
        Root { id, worker: None }
    }
}

/// Distinguishes this configuration's shared-data keys from another's.
fn fingerprint(config: &[u8]) -> String {
    let digest = Sha256::digest(config);
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Context for Root {
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

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let Some(json) = host::plugin_configuration() else {
            host::log(
                LogLevel::Error,
                "invalid configuration: the plugin configuration is empty",
            );
            return false;
        };
        match Config::parse(&json) {
            Ok(loaded) => {
                for note in &loaded.notes {
                    host::log(LogLevel::Info, note);
                }
                host::log(
                    LogLevel::Info,
                    &format!(
                        "configured for issuer {} (auth methods: {})",
                        loaded.config.issuer.id,
                        loaded.config.auth_methods.names().join(", ")
                    ),
                );
                self.worker = Some(Rc::new(RefCell::new(Worker::new(
                    loaded.config,
                    &fingerprint(&json),
                ))));
                host::set_tick_period(Duration::from_secs(1));
                true
            }
            Err(e) => {
                host::log(LogLevel::Error, &e.to_string());
                false
            }
        }
    }

    fn on_tick(&mut self) {
        if let Some(w) = &self.worker {
            w.borrow_mut().handle_tick(self.id);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a valid configuration Envoy refuses the filter; a missing
        // worker here still fails closed (Http denies everything).
        Some(Box::new(Http::new(context_id, self.worker.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
