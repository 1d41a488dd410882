//! `proxy_get_current_time_nanoseconds` (the harness clock) and
//! `proxy_set_tick_period_milliseconds` (ticks are delivered by the test).

use std::time::UNIX_EPOCH;

use wasmtime::{Linker, Result};

use super::log::ok_or_bad_memory;
use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::Status;

pub(crate) fn now_nanos(c: &Ctx<'_>) -> u64 {
    let now = c.data().world.borrow().now;
    // A clock set before 1970 reads as the epoch rather than wrapping.
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Ctx<'_>, ptr: i32| -> Result<i32> {
            let now = now_nanos(&c);
            Ok(ok_or_bad_memory(memory::write_u64(&mut c, ptr, now)?))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Ctx<'_>, period: i32| -> Result<i32> {
            // Envoy keeps one timer per root context, whichever context asks.
            c.data_mut().tick_period_ms = period as u32;
            Ok(Status::Ok.code())
        },
    )?;
    Ok(())
}
