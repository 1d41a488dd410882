//! The root context: loads the configuration into the worker's engine,
//! creates request contexts, ticks, and takes the IdP replies the host
//! delivers to it.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{ContextType, LogLevel};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::engine::Engine;
use crate::shell::host::{self, EngineRef, ProxyHost, deliver_reply, with_engine};
use crate::shell::http::Http;

pub struct Root {
    id: u32,
    engine: EngineRef,
}

impl Root {
    pub fn new(id: u32) -> Self {
        Root { id, engine: None }
    }
}

/// Distinguishes this configuration's shared-data keys from another's.
fn prefix(config: &[u8]) -> String {
    let digest = Sha256::digest(config);
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("envoy-oidc/{hex}/")
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, _: usize) {
        deliver_reply(&self.engine, self.id, token, headers, body);
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
        let loaded = match Config::parse(&json) {
            Ok(loaded) => loaded,
            Err(e) => {
                host::log(LogLevel::Error, &e.to_string());
                return false;
            }
        };
        for note in &loaded.notes {
            host::log(LogLevel::Info, note);
        }
        if let Some(step) = super::http::LADDER {
            host::log(
                LogLevel::Critical,
                &format!(
                    "this module was built with OIDC_LADDER={step}, for bench/ladder.sh: \
                     it lets every request through unauthenticated; build it again without"
                ),
            );
        }
        host::log(
            LogLevel::Info,
            &format!(
                "configured for issuer {} (auth methods: {})",
                loaded.config.issuer.id,
                loaded.config.auth_methods.names().join(", ")
            ),
        );
        let mut random = [0u8; 72];
        if getrandom::fill(&mut random).is_err() {
            host::log(
                LogLevel::Critical,
                "invalid configuration: no randomness from the host",
            );
            return false;
        }
        let engine = Engine::new(
            loaded.config,
            &prefix(&json),
            random,
            self.id,
            &mut ProxyHost::new(self.id),
        );
        self.engine = Some(Rc::new(RefCell::new(engine)));
        true
    }

    fn on_tick(&mut self) {
        let id = self.id;
        with_engine(&self.engine, id, |engine, host| {
            engine.handle_tick(host, id)
        });
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Without a valid configuration Envoy refuses the filter; a missing
        // engine here still fails closed (Http refuses everything).
        Some(Box::new(Http::new(context_id, self.engine.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
