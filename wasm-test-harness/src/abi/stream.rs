//! Stream control: continue, close, local replies, and the effective context
//! through which one context acts on another stream (how a module resumes
//! requests that waited on a call made by a different request).

use wasmtime::{Linker, Result};

use super::memory::{self, Ctx};
use crate::headers::HeaderMap;
use crate::state::{HostState, LocalReply, Outcome};
use crate::types::Status;

const HTTP_REQUEST: i32 = 0;
const HTTP_RESPONSE: i32 = 1;
const UPSTREAM: i32 = 3;

fn continue_stream(c: &mut Ctx<'_>, kind: i32) -> Status {
    let state = c.data_mut();
    let id = state.acting_context();
    let Some(stream) = state.streams.get_mut(&id) else {
        if matches!(kind, HTTP_REQUEST | HTTP_RESPONSE) {
            // Envoy has no stream callbacks here, so nothing happens.
            state.note(format!(
                "continue_stream on context {id}, which is no HTTP stream: ignored \
                 (did the module forget set_effective_context?)"
            ));
            return Status::Ok;
        }
        return Status::BadArgument;
    };
    match kind {
        HTTP_REQUEST => {
            match stream.outcome {
                Outcome::LocalReply(_) | Outcome::Reset => stream
                    .misuse
                    .push("continue_stream(HttpRequest) after the stream was answered".into()),
                _ => stream.outcome = Outcome::Continued,
            }
            // Envoy drops its pointer to the request headers on continue.
            stream.request_headers_open = false;
            Status::Ok
        }
        HTTP_RESPONSE => {
            stream.response_headers_open = false;
            Status::Ok
        }
        _ => Status::BadArgument,
    }
}

fn close_stream(c: &mut Ctx<'_>, kind: i32) -> Status {
    if !(HTTP_REQUEST..=UPSTREAM).contains(&kind) {
        return Status::BadArgument;
    }
    if let Some(stream) = c.data_mut().acting_stream()
        && matches!(kind, HTTP_REQUEST | HTTP_RESPONSE)
    {
        stream.outcome = Outcome::Reset;
        stream.request_headers_open = false;
        stream.response_headers_open = false;
    }
    Status::Ok
}

#[allow(clippy::too_many_arguments)]
fn send_local_response(
    c: &mut Ctx<'_>,
    status: i32,
    details: (i32, i32),
    body: (i32, i32),
    headers: (i32, i32),
    grpc_status: i32,
) -> Result<Status> {
    let (Some(details), Some(body), Some(headers)) = (
        memory::read(c, details.0, details.1)?,
        memory::read(c, body.0, body.1)?,
        memory::read(c, headers.0, headers.1)?,
    ) else {
        return Ok(Status::InvalidMemoryAccess);
    };
    if c.data().world.borrow().refuse_local_replies {
        return Ok(Status::InternalFailure);
    }
    let reply = LocalReply {
        status: status as u32,
        details: String::from_utf8_lossy(&details).into_owned(),
        headers: HeaderMap::unmarshal(&headers).unwrap_or_default(),
        body,
        grpc_status,
    };
    let state = c.data_mut();
    let id = state.acting_context();
    match state.streams.get_mut(&id) {
        None => state.note(format!(
            "send_local_response({}) on context {id}, which is no HTTP stream: ignored",
            reply.status
        )),
        Some(stream) => match &stream.outcome {
            Outcome::LocalReply(first) => {
                let why = format!(
                    "second send_local_response ({}) after {}: ignored",
                    reply.status, first.status
                );
                stream.misuse.push(why);
            }
            _ => {
                stream.outcome = Outcome::LocalReply(reply);
                stream.response_headers_open = false;
            }
        },
    }
    Ok(Status::Ok)
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: Ctx<'_>, kind: i32| -> i32 { continue_stream(&mut c, kind).code() },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: Ctx<'_>, kind: i32| -> i32 { close_stream(&mut c, kind).code() },
    )?;
    // ABI 0.1 names, still imported by some SDKs.
    linker.func_wrap("env", "proxy_continue_request", |mut c: Ctx<'_>| -> i32 {
        continue_stream(&mut c, HTTP_REQUEST).code()
    })?;
    linker.func_wrap("env", "proxy_continue_response", |mut c: Ctx<'_>| -> i32 {
        continue_stream(&mut c, HTTP_RESPONSE).code()
    })?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: Ctx<'_>,
         status: i32,
         d: i32,
         d_len: i32,
         b: i32,
         b_len: i32,
         h: i32,
         h_len: i32,
         grpc: i32|
         -> Result<i32> {
            Ok(
                send_local_response(&mut c, status, (d, d_len), (b, b_len), (h, h_len), grpc)?
                    .code(),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: Ctx<'_>, id: i32| -> i32 {
            let state = c.data_mut();
            if state.contexts.contains(&(id as u32)) {
                state.effective = id as u32;
                Status::Ok.code()
            } else {
                state.note(format!(
                    "set_effective_context({id}): no such context, BadArgument"
                ));
                Status::BadArgument.code()
            }
        },
    )?;
    linker.func_wrap("env", "proxy_done", |_: Ctx<'_>| -> i32 {
        Status::Ok.code()
    })?;
    linker.func_wrap("env", "proxy_clear_route_cache", |_: Ctx<'_>| -> i32 {
        Status::Ok.code()
    })?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |_: Ctx<'_>, _: i32, _: i32, _: i32, _: i32, _: i32, _: i32| -> i32 {
            Status::NotFound.code()
        },
    )?;
    Ok(())
}
