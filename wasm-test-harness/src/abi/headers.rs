//! Header map calls. Which maps exist follows Envoy's `Context::getMap` /
//! `getConstMap`: request and response headers only while the stream holds
//! them, http-call response headers and trailers only during
//! `proxy_on_http_call_response` (and read-only). A missing map reads as
//! empty through `get_header_map_pairs` but is `BadArgument` for every other
//! call, which makes the SDK panic: exactly what Envoy would do.

use wasmtime::{Linker, Result};

use super::memory::{self, Ctx};
use crate::headers::HeaderMap;
use crate::state::HostState;
use crate::types::{MapType, Status};

fn map_ref(state: &HostState, map: MapType) -> Option<&HeaderMap> {
    let stream = state.streams.get(&state.acting_context());
    match map {
        MapType::RequestHeaders => stream
            .filter(|s| s.request_headers_open)
            .map(|s| &s.request_headers),
        MapType::ResponseHeaders => stream
            .filter(|s| s.response_headers_open)
            .and_then(|s| s.response_headers.as_ref()),
        MapType::HttpCallResponseHeaders => state.call_reply.as_ref().map(|r| &r.headers),
        MapType::HttpCallResponseTrailers => state.call_reply.as_ref().map(|r| &r.trailers),
        MapType::RequestTrailers
        | MapType::ResponseTrailers
        | MapType::GrpcInitialMetadata
        | MapType::GrpcTrailingMetadata => None,
    }
}

fn map_mut(state: &mut HostState, map: MapType) -> Option<&mut HeaderMap> {
    let stream = state.acting_stream()?;
    match map {
        MapType::RequestHeaders if stream.request_headers_open => Some(&mut stream.request_headers),
        MapType::ResponseHeaders if stream.response_headers_open => {
            stream.response_headers.as_mut()
        }
        _ => None,
    }
}

fn unavailable(c: &Ctx<'_>, call: &str, map: MapType) -> i32 {
    let state = c.data();
    state.note(format!(
        "{call}({map:?}) on context {}: no such map here, BadArgument (the SDK panics on it)",
        state.acting_context()
    ));
    Status::BadArgument.code()
}

/// Applies `edit` of header `key` to a writable map, or answers as Envoy
/// does when there is none (or, for a header the test refuses writes of,
/// as a host that will not take the change).
fn edit(
    c: &mut Ctx<'_>,
    call: &str,
    map: i32,
    key: &str,
    edit: impl FnOnce(&mut HeaderMap),
) -> i32 {
    let Some(map) = MapType::from_abi(map) else {
        return Status::BadArgument.code();
    };
    let refused = map == MapType::RequestHeaders
        && (c.data().world.borrow().refused_header_writes).contains(&key.to_ascii_lowercase());
    if refused {
        c.data()
            .note(format!("{call}({key}): refused by the test, BadArgument"));
        return Status::BadArgument.code();
    }
    match map_mut(c.data_mut(), map) {
        Some(m) => {
            edit(m);
            Status::Ok.code()
        }
        None => unavailable(c, call, map),
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: Ctx<'_>, map: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let Some(map) = MapType::from_abi(map) else {
                return Ok(Status::BadArgument.code());
            };
            let bytes = match map_ref(c.data(), map) {
                Some(m) if !m.is_empty() => m.marshal(),
                _ => Vec::new(),
            };
            Ok(memory::copy_out(&mut c, &bytes, ptr_ptr, size_ptr)?.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: Ctx<'_>,
         map: i32,
         key: i32,
         key_len: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Result<i32> {
            let Some(map) = MapType::from_abi(map) else {
                return Ok(Status::BadArgument.code());
            };
            let Some(key) = memory::read_str(&mut c, key, key_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let value = match map_ref(c.data(), map) {
                None => return Ok(unavailable(&c, "get_header_map_value", map)),
                Some(m) => m.get_bytes(&key).map(<[u8]>::to_vec),
            };
            match value {
                None => Ok(Status::NotFound.code()),
                Some(v) => Ok(memory::copy_out(&mut c, &v, ptr_ptr, size_ptr)?.code()),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: Ctx<'_>, map: i32, ptr: i32, len: i32| -> Result<i32> {
            let Some(bytes) = memory::read(&mut c, ptr, len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let Some(pairs) = HeaderMap::unmarshal(&bytes) else {
                return Ok(Status::BadArgument.code());
            };
            // The whole map: refused writes are of single headers.
            Ok(edit(&mut c, "set_header_map_pairs", map, "", |m| {
                *m = pairs
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: Ctx<'_>,
         map: i32,
         key: i32,
         key_len: i32,
         value: i32,
         value_len: i32|
         -> Result<i32> {
            let (Some(key), Some(value)) = (
                memory::read_str(&mut c, key, key_len)?,
                memory::read(&mut c, value, value_len)?,
            ) else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            Ok(edit(&mut c, "add_header_map_value", map, &key, |m| {
                m.add(&key, &value)
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: Ctx<'_>,
         map: i32,
         key: i32,
         key_len: i32,
         value: i32,
         value_len: i32|
         -> Result<i32> {
            let (Some(key), Some(value)) = (
                memory::read_str(&mut c, key, key_len)?,
                memory::read(&mut c, value, value_len)?,
            ) else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            Ok(edit(&mut c, "replace_header_map_value", map, &key, |m| {
                m.replace(&key, &value)
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: Ctx<'_>, map: i32, key: i32, key_len: i32| -> Result<i32> {
            let Some(key) = memory::read_str(&mut c, key, key_len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            Ok(edit(&mut c, "remove_header_map_value", map, &key, |m| {
                m.remove(&key)
            }))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_size",
        |mut c: Ctx<'_>, map: i32, size_ptr: i32| -> Result<i32> {
            let Some(map) = MapType::from_abi(map) else {
                return Ok(Status::BadArgument.code());
            };
            let Some(size) = map_ref(c.data(), map).map(|m| m.marshal().len() as u32) else {
                return Ok(unavailable(&c, "get_header_map_size", map));
            };
            Ok(super::log::ok_or_bad_memory(memory::write_u32(
                &mut c, size_ptr, size,
            )?))
        },
    )?;
    Ok(())
}
