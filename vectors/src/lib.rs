//! Nothing here: the crate's tests (tests/) run published vectors through
//! the filter's signature verification, natively and in V8 (see
//! Cargo.toml).
