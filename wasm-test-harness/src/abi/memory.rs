//! Moving bytes across the module's linear memory, as proxy-wasm-cpp-host
//! does: pointers the module passes are bounds-checked (a bad one is
//! `InvalidMemoryAccess`, not a host crash), and bytes handed to the module
//! live in memory it allocates with `proxy_on_memory_allocate`.

use wasmtime::{Caller, Extern, Memory, Result};

use crate::state::HostState;
use crate::types::Status;

pub(crate) type Ctx<'a> = Caller<'a, HostState>;

fn memory(caller: &mut Ctx<'_>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => wasmtime::bail!("the module exports no memory named \"memory\""),
    }
}

/// Reads `len` bytes at `ptr`; `None` when the range is outside memory.
pub(crate) fn read(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> Result<Option<Vec<u8>>> {
    let (ptr, len) = (ptr as u32 as usize, len as u32 as usize);
    if len == 0 {
        return Ok(Some(Vec::new()));
    }
    let memory = memory(caller)?;
    let data = memory.data(&caller);
    Ok(ptr
        .checked_add(len)
        .and_then(|end| data.get(ptr..end))
        .map(<[u8]>::to_vec))
}

/// Reads a string argument; lossy, since keys are only ever compared.
pub(crate) fn read_str(caller: &mut Ctx<'_>, ptr: i32, len: i32) -> Result<Option<String>> {
    Ok(read(caller, ptr, len)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

pub(crate) fn write(caller: &mut Ctx<'_>, ptr: i32, bytes: &[u8]) -> Result<bool> {
    let memory = memory(caller)?;
    Ok(memory.write(caller, ptr as u32 as usize, bytes).is_ok())
}

pub(crate) fn write_u32(caller: &mut Ctx<'_>, ptr: i32, value: u32) -> Result<bool> {
    write(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(caller: &mut Ctx<'_>, ptr: i32, value: u64) -> Result<bool> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into memory the module allocates and writes the pointer
/// and size to `ptr_ptr` / `size_ptr`. Empty values are returned as a null
/// pointer and size 0, as `copyToPointerSize` in proxy-wasm-cpp-host does.
pub(crate) fn copy_out(
    caller: &mut Ctx<'_>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<Status> {
    let mut ptr = 0u32;
    if !bytes.is_empty() {
        let allocate = match caller.get_export("proxy_on_memory_allocate") {
            Some(Extern::Func(f)) => f.typed::<i32, i32>(&caller)?,
            _ => wasmtime::bail!("the module exports no proxy_on_memory_allocate"),
        };
        ptr = allocate.call(&mut *caller, bytes.len() as i32)? as u32;
        if ptr == 0 || !write(caller, ptr as i32, bytes)? {
            return Ok(Status::InvalidMemoryAccess);
        }
    }
    if !write_u32(caller, ptr_ptr, ptr)? || !write_u32(caller, size_ptr, bytes.len() as u32)? {
        return Ok(Status::InvalidMemoryAccess);
    }
    Ok(Status::Ok)
}
