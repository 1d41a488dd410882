//! An OpenID Connect authentication filter for Envoy, on proxy-wasm.
//!
//! `shell` is the thin proxy-wasm glue; everything else is a sans-IO core
//! that the host-side unit tests drive directly.

pub mod action;
pub mod cache;
pub mod config;
pub mod error;
pub mod flow;
pub mod oidc;
pub mod policy;
pub mod request;
pub mod session;
pub mod store;
pub mod url;

#[cfg(test)]
mod testkit;

#[cfg(target_arch = "wasm32")]
mod shell;

#[cfg(target_arch = "wasm32")]
proxy_wasm::main! {{
    shell::start();
}}
