//! The filter's own time per request inside Envoy, for the benchmark
//! (bench/callback-time.sh): with `OIDC_TIMING` set at build time, each
//! request-headers callback is timed with the host's clock and the mean of
//! every `WINDOW` requests logged. Set to anything (even empty or `0`) it
//! is on; a release build never sets it, and `ON` compiles the timing away.
//!
//! Why: the benchmark's req/s say what a request costs Envoy as a whole,
//! the probe what the core costs in a warm loop; this says how much of a
//! request's cost is spent inside our callback, under load, so that the
//! rest can be told apart (BENCHMARKS.md, "Targets decided by 36 pairs").

use std::cell::Cell;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

use crate::shell::host;

pub const ON: bool = option_env!("OIDC_TIMING").is_some();

/// Requests per logged mean.
const WINDOW: u64 = 2000;

thread_local! {
    /// Requests timed and their summed nanoseconds, since the last log.
    static SUM: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// The host's clock, in nanoseconds.
pub fn now_ns() -> u64 {
    u64::try_from(host::since_epoch().as_nanos()).unwrap_or(0)
}

/// Adds one callback that began at `start` (`now_ns`); logs the window's
/// mean when it is full.
pub fn record(start: u64) {
    let took = now_ns().saturating_sub(start);
    let (n, sum) = SUM.get();
    let (n, sum) = (n + 1, sum.saturating_add(took));
    if n < WINDOW {
        SUM.set((n, sum));
        return;
    }
    SUM.set((0, 0));
    let line = format!("request-headers callback: mean {} ns over {n}", sum / n);
    let _ = hostcalls::log(LogLevel::Warn, &line);
}
