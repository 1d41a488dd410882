//! An OpenID Connect authentication filter for Envoy, on proxy-wasm.
//!
//! `shell` is the thin proxy-wasm glue; everything else is a sans-IO core
//! that the host-side unit tests drive directly.

// A panic kills the wasm VM and every request after it on that worker:
// outside tests, nothing may unwrap, expect, index or panic on input.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod action;
pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
pub mod flow;
pub mod oidc;
pub mod policy;
pub mod request;
pub mod session;
pub mod stats;
pub mod store;
pub mod url;

#[cfg(target_arch = "wasm32")]
mod shell;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    shell::start();
}}
