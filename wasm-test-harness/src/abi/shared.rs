//! Shared data (get / compare-and-set) and shared queues, both common to
//! every worker of the process, as in Envoy.

use wasmtime::{Linker, Result};

use super::log::ok_or_bad_memory;
use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::Status;
use crate::world::Queue;

fn add_shared_data(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: Ctx<'_>,
         key: i32,
         key_len: i32,
         ptr_ptr: i32,
         size_ptr: i32,
         cas_ptr: i32|
         -> Result<i32> {
            let Some(key) = memory::read_str(&mut c, key, key_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let Some((value, cas)) = c.data().world.borrow().shared_data.get(&key) else {
                return Ok(Status::NotFound.code());
            };
            let status = memory::copy_out(&mut c, &value, ptr_ptr, size_ptr)?;
            if status != Status::Ok {
                return Ok(status.code());
            }
            Ok(ok_or_bad_memory(memory::write_u32(&mut c, cas_ptr, cas)?))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: Ctx<'_>,
         key: i32,
         key_len: i32,
         value: i32,
         value_len: i32,
         cas: i32|
         -> Result<i32> {
            let (Some(key), Some(value)) = (
                memory::read_str(&mut c, key, key_len)?,
                memory::read(&mut c, value, value_len)?,
            ) else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let status = c
                .data()
                .world
                .borrow_mut()
                .shared_data
                .set(&key, &value, cas as u32);
            Ok(status.code())
        },
    )?;
    Ok(())
}

fn add_queues(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut c: Ctx<'_>, name: i32, name_len: i32, token_ptr: i32| -> Result<i32> {
            let Some(name) = memory::read_str(&mut c, name, name_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let (worker, root) = (c.data().worker, c.data().root_id);
            let token = {
                let mut world = c.data().world.borrow_mut();
                // Registering a name again hands the queue to the new owner.
                match world.queues.iter().position(|q| q.name == name) {
                    Some(i) => {
                        world.queues[i].owner_worker = worker;
                        world.queues[i].owner_context = root;
                        i as u32 + 1
                    }
                    None => {
                        world.queues.push(Queue {
                            name,
                            owner_worker: worker,
                            owner_context: root,
                            items: Default::default(),
                        });
                        world.queues.len() as u32
                    }
                }
            };
            Ok(ok_or_bad_memory(memory::write_u32(
                &mut c, token_ptr, token,
            )?))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_resolve_shared_queue",
        |mut c: Ctx<'_>,
         _vm: i32,
         _vm_len: i32,
         name: i32,
         name_len: i32,
         token_ptr: i32|
         -> Result<i32> {
            // All workers run one VM id here, so the vm_id argument is moot.
            let Some(name) = memory::read_str(&mut c, name, name_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let found = c
                .data()
                .world
                .borrow()
                .queues
                .iter()
                .position(|q| q.name == name);
            match found {
                None => Ok(Status::NotFound.code()),
                Some(i) => Ok(ok_or_bad_memory(memory::write_u32(
                    &mut c,
                    token_ptr,
                    i as u32 + 1,
                )?)),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut c: Ctx<'_>, token: i32, ptr: i32, len: i32| -> Result<i32> {
            let Some(data) = memory::read(&mut c, ptr, len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let mut world = c.data().world.borrow_mut();
            let Some(queue) = (token as u32)
                .checked_sub(1)
                .and_then(|i| world.queues.get_mut(i as usize))
            else {
                return Ok(Status::NotFound.code());
            };
            queue.items.push_back(data);
            let owner = (queue.owner_worker, queue.owner_context, token as u32);
            world.queue_ready.push_back(owner);
            Ok(Status::Ok.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut c: Ctx<'_>, token: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let item = {
                let mut world = c.data().world.borrow_mut();
                let Some(queue) = (token as u32)
                    .checked_sub(1)
                    .and_then(|i| world.queues.get_mut(i as usize))
                else {
                    return Ok(Status::NotFound.code());
                };
                queue.items.pop_front()
            };
            match item {
                None => Ok(Status::Empty.code()),
                Some(item) => Ok(memory::copy_out(&mut c, &item, ptr_ptr, size_ptr)?.code()),
            }
        },
    )?;
    Ok(())
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    add_shared_data(linker)?;
    add_queues(linker)
}
