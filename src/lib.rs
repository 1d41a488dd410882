//! An OpenID Connect authentication filter for Envoy, on proxy-wasm.
//!
//! `shell` is the thin proxy-wasm glue over `engine`, the one driver loop,
//! which runs the sans-IO decisions of `flow`. The public modules are what
//! the host-side tests (`testkit`, `tests/`), the fuzz targets, the
//! benchmark probe and kong2wasm use: the engine and its `Host`, the
//! configuration, requests and decisions, and the protocol pieces the fuzz
//! oracles check one by one.

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
pub mod budget;
mod cache;
pub mod client_auth;
pub mod config;
pub mod engine;
pub mod error;
pub mod flow;
mod json;
pub mod json_object;
pub mod oidc;
mod policy;
pub mod request;
pub mod rules;
pub mod session;
mod stats;
pub mod store;
mod url;

#[cfg(target_arch = "wasm32")]
mod shell;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    shell::start();
}}
