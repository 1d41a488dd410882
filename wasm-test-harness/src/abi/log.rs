//! `proxy_log`, `proxy_get_log_level`.

use wasmtime::{Linker, Result};

use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::{LogLevel, Status};

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Ctx<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            let Some(level) = LogLevel::from_abi(level) else {
                return Ok(Status::BadArgument.code());
            };
            let Some(message) = memory::read(&mut c, ptr, len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let message = String::from_utf8_lossy(&message).into_owned();
            c.data().log(level, false, message);
            Ok(Status::Ok.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: Ctx<'_>, level_ptr: i32| -> Result<i32> {
            let level = c.data().world.borrow().log_level as u32;
            Ok(ok_or_bad_memory(memory::write_u32(
                &mut c, level_ptr, level,
            )?))
        },
    )?;
    Ok(())
}

pub(crate) fn ok_or_bad_memory(written: bool) -> i32 {
    if written {
        Status::Ok
    } else {
        Status::InvalidMemoryAccess
    }
    .code()
}
