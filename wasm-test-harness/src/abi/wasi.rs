//! The few WASI preview-1 calls a Rust `wasm32-wasip1` module imports,
//! answered as proxy-wasm-cpp-host answers them: stdout/stderr become info
//! and error log lines, only the realtime clock exists (the harness clock),
//! the environment and arguments are empty, and `proc_exit` ends the VM.

use wasmtime::{Linker, Result};

use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::LogLevel;

const WASI: &str = "wasi_snapshot_preview1";
const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;
const CLOCK_REALTIME: i32 = 0;

fn fd_write(c: &mut Ctx<'_>, fd: i32, iovs: i32, iovs_len: i32, written_ptr: i32) -> Result<i32> {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return Ok(EBADF),
    };
    let mut text = Vec::new();
    for i in 0..iovs_len.max(0) {
        let Some(iov) = memory::read(c, iovs.wrapping_add(i * 8), 8)? else {
            return Ok(EFAULT);
        };
        let buf = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        let Some(bytes) = memory::read(c, buf, len)? else {
            return Ok(EFAULT);
        };
        text.extend_from_slice(&bytes);
    }
    let written = text.len() as u32;
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    if !text.is_empty() {
        c.data()
            .log(level, false, String::from_utf8_lossy(&text).into_owned());
    }
    Ok(if memory::write_u32(c, written_ptr, written)? {
        ESUCCESS
    } else {
        EFAULT
    })
}

fn write_zeroes(c: &mut Ctx<'_>, a: i32, b: i32) -> Result<i32> {
    let ok = memory::write_u32(c, a, 0)? && memory::write_u32(c, b, 0)?;
    Ok(if ok { ESUCCESS } else { EFAULT })
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut c: Ctx<'_>, fd: i32, iovs: i32, n: i32, out: i32| fd_write(&mut c, fd, iovs, n, out),
    )?;
    linker.func_wrap(
        WASI,
        "fd_read",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32| ENOSYS,
    )?;
    linker.func_wrap(
        WASI,
        "fd_seek",
        |_: Ctx<'_>, _: i32, _: i64, _: i32, _: i32| ESUCCESS,
    )?;
    linker.func_wrap(WASI, "fd_close", |_: Ctx<'_>, _: i32| ESUCCESS)?;
    linker.func_wrap(WASI, "fd_prestat_get", |_: Ctx<'_>, _: i32, _: i32| EBADF)?;
    linker.func_wrap(
        WASI,
        "fd_prestat_dir_name",
        |_: Ctx<'_>, _: i32, _: i32, _: i32| ENOSYS,
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |mut c: Ctx<'_>, fd: i32, out: i32| -> Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(EBADF);
            }
            // filetype 0, flags 0, rights_base = FD_WRITE (64), inheriting 0.
            let mut stat = [0u8; 24];
            stat[8] = 64;
            Ok(if memory::write(&mut c, out, &stat)? {
                ESUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        WASI,
        "environ_sizes_get",
        |mut c: Ctx<'_>, count: i32, size: i32| write_zeroes(&mut c, count, size),
    )?;
    linker.func_wrap(WASI, "environ_get", |_: Ctx<'_>, _: i32, _: i32| ESUCCESS)?;
    linker.func_wrap(
        WASI,
        "args_sizes_get",
        |mut c: Ctx<'_>, count: i32, size: i32| write_zeroes(&mut c, count, size),
    )?;
    linker.func_wrap(WASI, "args_get", |_: Ctx<'_>, _: i32, _: i32| ESUCCESS)?;
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut c: Ctx<'_>, clock: i32, _precision: i64, out: i32| -> Result<i32> {
            if clock != CLOCK_REALTIME {
                // Envoy has no monotonic clock for modules: std's Instant panics.
                c.data().note(format!(
                    "clock_time_get(clock {clock}): only the realtime clock exists, ENOTSUP"
                ));
                return Ok(ENOTSUP);
            }
            let now = super::time::now_nanos(&c);
            Ok(if memory::write_u64(&mut c, out, now)? {
                ESUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut c: Ctx<'_>, buf: i32, len: i32| -> Result<i32> {
            let mut bytes = Vec::with_capacity(len.max(0) as usize + 8);
            while bytes.len() < len.max(0) as usize {
                let word = c.data_mut().next_random();
                bytes.extend_from_slice(&word.to_le_bytes());
            }
            bytes.truncate(len.max(0) as usize);
            Ok(if memory::write(&mut c, buf, &bytes)? {
                ESUCCESS
            } else {
                EFAULT
            })
        },
    )?;
    linker.func_wrap(WASI, "proc_exit", |_: Ctx<'_>, code: i32| -> Result<()> {
        wasmtime::bail!("the module called proc_exit({code})")
    })?;
    Ok(())
}
