//! The proxy-wasm shell: implements the engine's `Host` over the ABI and
//! hands each callback to the engine. No decisions, no state of its own.

mod abi;
mod host;
mod http;
mod root;
mod timing;

use proxy_wasm::types::LogLevel;

pub fn start() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}
