//! The proxy-wasm shell: moves bytes between the host ABI and the core.
//! No protocol decision is made here.

mod host;
mod http;
mod root;
mod shared;
mod worker;

use proxy_wasm::types::LogLevel;

pub fn start() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| Box::new(root::Root::new(context_id)));
}
