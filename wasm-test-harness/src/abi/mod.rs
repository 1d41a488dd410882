//! The host side of the proxy-wasm ABI 0.2.1 (and the WASI calls a Rust
//! module needs), one file per area. Each call answers with the status code
//! Envoy's host (proxy-wasm-cpp-host + `Envoy::Extensions::Common::Wasm`)
//! returns in the same situation, including the misuse cases.

mod buffers;
mod headers;
mod http_call;
mod log;
pub(crate) mod memory;
mod metrics;
mod properties;
mod shared;
mod stream;
mod time;
mod wasi;

use wasmtime::{Linker, Result};

use crate::state::HostState;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    log::add_to_linker(linker)?;
    time::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    buffers::add_to_linker(linker)?;
    shared::add_to_linker(linker)?;
    http_call::add_to_linker(linker)?;
    stream::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    metrics::add_to_linker(linker)?;
    wasi::add_to_linker(linker)
}
