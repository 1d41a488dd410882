//! `proxy_http_call` (calls wait for the test to answer them), the gRPC
//! calls (not emulated: refused as a host without gRPC support would), and
//! `proxy_get_status`.

use wasmtime::{Linker, Result};

use super::log::ok_or_bad_memory;
use super::memory::{self, Ctx};
use crate::headers::HeaderMap;
use crate::state::{HostState, PendingCall};
use crate::types::Status;

/// Envoy's checks in `Context::httpCall`, in its order.
fn refusal(state: &HostState, cluster: &str, headers: &HeaderMap) -> Option<String> {
    if !state.world.borrow().clusters.contains(cluster) {
        return Some(format!(
            "unknown cluster {cluster:?} (declare it with .cluster({cluster:?}))"
        ));
    }
    let missing: Vec<_> = [":path", ":method", ":authority"]
        .into_iter()
        .filter(|h| headers.get_bytes(h).is_none())
        .collect();
    (!missing.is_empty()).then(|| format!("missing {}", missing.join(", ")))
}

#[allow(clippy::too_many_arguments)]
fn http_call(
    c: &mut Ctx<'_>,
    cluster: (i32, i32),
    headers: (i32, i32),
    body: (i32, i32),
    trailers: (i32, i32),
    timeout_ms: i32,
    token_ptr: i32,
) -> Result<i32> {
    let (Some(cluster), Some(headers), Some(body), Some(trailers)) = (
        memory::read_str(c, cluster.0, cluster.1)?,
        memory::read(c, headers.0, headers.1)?,
        memory::read(c, body.0, body.1)?,
        memory::read(c, trailers.0, trailers.1)?,
    ) else {
        return Ok(Status::InvalidMemoryAccess.code());
    };
    // Envoy's toPairs turns a malformed map into an empty one.
    let headers = HeaderMap::unmarshal(&headers).unwrap_or_default();
    let trailers = HeaderMap::unmarshal(&trailers).unwrap_or_default();
    // Like proxy-wasm-cpp-host, probe the token pointer before starting.
    if !memory::write_u32(c, token_ptr, 0)? {
        return Ok(Status::InvalidMemoryAccess.code());
    }
    let state = c.data_mut();
    if let Some(why) = refusal(state, &cluster, &headers) {
        state.note(format!("http_call refused with BadArgument: {why}"));
        return Ok(Status::BadArgument.code());
    }
    let mut token = state.next_token;
    while token == 0 || state.calls.iter().any(|call| call.token == token) {
        token = token.wrapping_add(1);
    }
    state.next_token = token.wrapping_add(1);
    let origin = state.acting_context();
    state.calls.push(PendingCall {
        token,
        origin,
        cluster,
        headers,
        body,
        trailers,
        timeout_ms: timeout_ms as u32,
    });
    Ok(ok_or_bad_memory(memory::write_u32(c, token_ptr, token)?))
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: Ctx<'_>,
         up: i32,
         up_len: i32,
         h: i32,
         h_len: i32,
         b: i32,
         b_len: i32,
         t: i32,
         t_len: i32,
         timeout: i32,
         token_ptr: i32|
         -> Result<i32> {
            http_call(
                &mut c,
                (up, up_len),
                (h, h_len),
                (b, b_len),
                (t, t_len),
                timeout,
                token_ptr,
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut c: Ctx<'_>, code_ptr: i32, ptr_ptr: i32, size_ptr: i32| -> Result<i32> {
            let (code, message) = c.data().status.clone();
            if !memory::write_u32(&mut c, code_ptr, code)? {
                return Ok(Status::InvalidMemoryAccess.code());
            }
            Ok(memory::copy_out(&mut c, message.as_bytes(), ptr_ptr, size_ptr)?.code())
        },
    )?;
    // gRPC is not emulated; refuse the way a host does when it cannot start
    // the call, so a module's error path runs instead of a link failure.
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |c: Ctx<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> Result<i32> {
            c.data()
                .note("proxy_grpc_call: gRPC is not emulated, InternalFailure".into());
            Ok(Status::InternalFailure.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |c: Ctx<'_>,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32,
         _: i32|
         -> Result<i32> {
            c.data()
                .note("proxy_grpc_stream: gRPC is not emulated, InternalFailure".into());
            Ok(Status::InternalFailure.code())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32| -> i32 { Status::NotFound.code() },
    )?;
    linker.func_wrap("env", "proxy_grpc_cancel", |_: Ctx<'_>, _: i32| -> i32 {
        Status::NotFound.code()
    })?;
    linker.func_wrap("env", "proxy_grpc_close", |_: Ctx<'_>, _: i32| -> i32 {
        Status::NotFound.code()
    })?;
    Ok(())
}
