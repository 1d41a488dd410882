//! Buffer calls: VM and plugin configuration, request and response bodies,
//! the http-call response body. Availability follows Envoy's
//! `Context::getBuffer`: the plugin configuration only during
//! `proxy_on_configure`, the call response body only during
//! `proxy_on_http_call_response`.

use wasmtime::{Linker, Result};

use super::memory::{self, Ctx};
use crate::state::HostState;
use crate::types::{BufferType, Status};

fn buffer(state: &HostState, kind: BufferType) -> Option<Vec<u8>> {
    let stream = state.streams.get(&state.acting_context());
    match kind {
        BufferType::VmConfiguration => Some(state.vm_config.clone()),
        BufferType::PluginConfiguration => state.plugin_config.clone(),
        BufferType::HttpCallResponseBody => state.call_reply.as_ref().map(|r| r.body.clone()),
        // Envoy hands out an empty buffer outside the body callbacks.
        BufferType::RequestBody => Some(
            stream
                .and_then(|s| s.request_body.clone())
                .unwrap_or_default(),
        ),
        BufferType::ResponseBody => Some(
            stream
                .and_then(|s| s.response_body.clone())
                .unwrap_or_default(),
        ),
        BufferType::DownstreamData
        | BufferType::UpstreamData
        | BufferType::GrpcReceiveBuffer
        | BufferType::CallData => None,
    }
}

/// Envoy's `Buffer::copyFrom` on a mutable body: replace from 0, prepend
/// (start 0, length 0) or append (start at the end); anything else is refused.
fn splice(body: &mut Vec<u8>, start: usize, length: usize, data: &[u8]) -> Status {
    if start == 0 && length == 0 {
        body.splice(0..0, data.iter().copied());
    } else if start == 0 && length >= body.len() {
        *body = data.to_vec();
    } else if start >= body.len() {
        body.extend_from_slice(data);
    } else {
        return Status::BadArgument;
    }
    Status::Ok
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: Ctx<'_>,
         kind: i32,
         start: i32,
         max: i32,
         ptr_ptr: i32,
         size_ptr: i32|
         -> Result<i32> {
            let Some(kind) = BufferType::from_abi(kind) else {
                return Ok(Status::BadArgument.code());
            };
            let Some(bytes) = buffer(c.data(), kind) else {
                return Ok(Status::NotFound.code());
            };
            let start = start as u32 as usize;
            let end = start.saturating_add(max as u32 as usize).min(bytes.len());
            if start >= end {
                // Envoy returns Ok without touching the out-pointers.
                return Ok(Status::Ok.code());
            }
            Ok(memory::copy_out(&mut c, &bytes[start..end], ptr_ptr, size_ptr)?.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_buffer_bytes",
        |mut c: Ctx<'_>, kind: i32, start: i32, length: i32, ptr: i32, len: i32| -> Result<i32> {
            let Some(kind) = BufferType::from_abi(kind) else {
                return Ok(Status::BadArgument.code());
            };
            let Some(data) = memory::read(&mut c, ptr, len)? else {
                return Ok(Status::InvalidMemoryAccess.code());
            };
            let (start, length) = (start as u32 as usize, length as u32 as usize);
            let state = c.data_mut();
            let body = match kind {
                BufferType::RequestBody => {
                    state.acting_stream().and_then(|s| s.request_body.as_mut())
                }
                BufferType::ResponseBody => {
                    state.acting_stream().and_then(|s| s.response_body.as_mut())
                }
                // Configuration and call responses are read-only.
                BufferType::VmConfiguration
                | BufferType::PluginConfiguration
                | BufferType::HttpCallResponseBody => return Ok(Status::BadArgument.code()),
                _ => return Ok(Status::NotFound.code()),
            };
            Ok(match body {
                Some(body) => splice(body, start, length, &data),
                None => Status::NotFound,
            }
            .code())
        },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_follows_envoy_copy_from() {
        let mut body = b"world".to_vec();
        assert_eq!(splice(&mut body, 0, 0, b"hello "), Status::Ok);
        assert_eq!(body, b"hello world");
        assert_eq!(splice(&mut body, 11, 0, b"!"), Status::Ok);
        assert_eq!(body, b"hello world!");
        assert_eq!(splice(&mut body, 0, 99, b"new"), Status::Ok);
        assert_eq!(body, b"new");
        assert_eq!(splice(&mut body, 1, 1, b"x"), Status::BadArgument);
    }
}
