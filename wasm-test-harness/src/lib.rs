//! A proxy-wasm host for tests: loads a compiled proxy-wasm module (ABI
//! 0.2.1) in wasmtime and plays Envoy's side of the ABI, so tests drive the
//! exact `.wasm` that ships. See README.md for a guided tour.
//!
//! ```no_run
//! use wasm_test_harness::Harness;
//! # fn main() -> Result<(), wasm_test_harness::HarnessError> {
//! let h = Harness::load("filter.wasm")?.cluster("idp").configure(r#"{"issuer":"…"}"#)?;
//! let req = h.request(&[(":method", "GET"), (":path", "/"), (":authority", "gw")]);
//! let call = req.expect_http_call("idp");
//! call.respond(200, &[("content-type", "application/json")], "{}");
//! req.expect_local_response(401).assert_header("www-authenticate", "Bearer realm=\"idp\"");
//! # Ok(()) }
//! ```

mod abi;
mod error;
mod headers;
mod module;
mod scenario;
mod signatures;
mod state;
mod types;
mod vm;
mod world;

pub use error::{HarnessError, TrapReport};
pub use headers::HeaderMap;
pub use scenario::{Action, Forwarded, Harness, HarnessBuilder, HttpCall, Reply, Request};
pub use state::{LocalReply, Outcome};
pub use types::{LogLevel, MetricType, Status};
pub use world::LogLine;
