//! `proxy_get_property` / `proxy_set_property`. Properties are whatever the
//! test declares (plus `plugin_name`, `plugin_root_id`, `plugin_vm_id`);
//! any other path is `NotFound`, as an unknown attribute is in Envoy.

use wasmtime::{Linker, Result};

use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::Status;

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: Ctx<'_>, path: i32, path_len: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let Some(path) = memory::read(&mut c, path, path_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let value = c.data().world.borrow().properties.get(&path).cloned();
            match value {
                None => Ok(Status::NotFound.code()),
                Some(value) => Ok(memory::copy_out(&mut c, &value, ptr_ptr, size_ptr)?.code()),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: Ctx<'_>, path: i32, path_len: i32, value: i32, value_len: i32| -> Result<i32> {
            let (Some(path), Some(value)) = (
                memory::read(&mut c, path, path_len)?,
                memory::read(&mut c, value, value_len)?,
            ) else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            c.data().world.borrow_mut().properties.insert(path, value);
            Ok(Status::Ok.code())
        },
    )?;
    Ok(())
}
