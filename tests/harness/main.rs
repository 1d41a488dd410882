//! Harness tests over the built filter (`./build.sh`, or `$OIDC_WASM`): one
//! test binary, so the module is compiled once for all of them.

#[path = "../common/mod.rs"]
mod common;

mod bearer;
mod browser;
mod client_credentials;
mod config;
mod exports;
mod idp_failures;
mod malformed;
mod profile;
