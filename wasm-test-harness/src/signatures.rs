//! The signatures Envoy requires of the module's exports. Envoy
//! (proxy-wasm-cpp-host: `WasmBase::getFunctions`, and each runtime's
//! `getModuleFunctionImpl`) looks each callback up by name: a missing one
//! is skipped, but one exported with another signature fails the VM at
//! load ("Bad function signature for: ..."), so the harness refuses such
//! a module too rather than skipping the callback as if it were missing.

use wasmtime::{ExternType, FuncType, Module, ValType};

/// A callback's shape: every parameter is an i32 (a context id, a size, a
/// flag: the ABI's `Word` on wasm32), and it returns one i32 or nothing.
struct Callback {
    name: &'static str,
    params: usize,
    returns: bool,
}

const fn word(name: &'static str, params: usize) -> Callback {
    Callback {
        name,
        params,
        returns: true,
    }
}

const fn void(name: &'static str, params: usize) -> Callback {
    Callback {
        name,
        params,
        returns: false,
    }
}

/// Every export Envoy looks up in a module of ABI 0.2.x: proxy-wasm-cpp-host's
/// (`src/wasm.cc` `WasmBase::getFunctions`: the start-up functions, the
/// allocator, `FOR_ALL_MODULE_FUNCTIONS` of `include/proxy-wasm/wasm.h`,
/// then the ABI-0.2 request and response headers and foreign function) and
/// Envoy's own (`source/extensions/common/wasm/wasm.cc` `Wasm::getFunctions`:
/// DNS results and stats updates).
const CALLBACKS: &[Callback] = &[
    void("_initialize", 0),
    void("_start", 0),
    word("main", 2),
    word("__main_void", 0),
    word("malloc", 1),
    word("proxy_on_memory_allocate", 1),
    word("proxy_validate_configuration", 2),
    word("proxy_on_vm_start", 2),
    word("proxy_on_configure", 2),
    void("proxy_on_tick", 1),
    void("proxy_on_context_create", 2),
    word("proxy_on_new_connection", 1),
    word("proxy_on_downstream_data", 3),
    word("proxy_on_upstream_data", 3),
    void("proxy_on_downstream_connection_close", 2),
    void("proxy_on_upstream_connection_close", 2),
    word("proxy_on_request_headers", 3),
    word("proxy_on_request_body", 3),
    word("proxy_on_request_trailers", 2),
    word("proxy_on_request_metadata", 2),
    word("proxy_on_response_headers", 3),
    word("proxy_on_response_body", 3),
    word("proxy_on_response_trailers", 2),
    word("proxy_on_response_metadata", 2),
    void("proxy_on_http_call_response", 5),
    void("proxy_on_grpc_receive", 3),
    void("proxy_on_grpc_close", 3),
    void("proxy_on_grpc_receive_initial_metadata", 3),
    void("proxy_on_grpc_receive_trailing_metadata", 3),
    void("proxy_on_queue_ready", 2),
    word("proxy_on_done", 1),
    void("proxy_on_log", 1),
    void("proxy_on_delete", 1),
    void("proxy_on_foreign_function", 3),
    void("envoy_on_resolve_dns", 3),
    void("envoy_on_stats_update", 2),
];

/// Why Envoy would refuse `module` for an export's signature, if it would.
/// (Envoy looks up `main` and `__main_void` only beside `_initialize`,
/// `_start` only without it, and `proxy_on_memory_allocate` only without
/// `malloc`; a mismatch in one it skips is not checked here either. It
/// indexes only function exports: a global or memory under a callback's
/// name counts as missing.)
pub(crate) fn mismatch(module: &Module) -> Option<String> {
    let func = |name: &str| match module.get_export(name) {
        Some(ExternType::Func(f)) => Some(f),
        _ => None,
    };
    let looked_up = |name: &str| match name {
        "main" | "__main_void" => func("_initialize").is_some(),
        "_start" => func("_initialize").is_none(),
        "proxy_on_memory_allocate" => func("malloc").is_none(),
        _ => true,
    };
    CALLBACKS
        .iter()
        .filter(|c| looked_up(c.name))
        .find_map(|c| {
            let f = func(c.name)?;
            (!is(&f, c)).then(|| {
                format!(
                    "bad function signature for {}: Envoy wants {}, the module exports {}",
                    c.name,
                    shape(c),
                    describe(&f)
                )
            })
        })
}

fn is(f: &FuncType, c: &Callback) -> bool {
    f.params().len() == c.params
        && f.params().all(|p| matches!(p, ValType::I32))
        && f.results().len() == usize::from(c.returns)
        && f.results().all(|r| matches!(r, ValType::I32))
}

fn shape(c: &Callback) -> String {
    let params = vec!["i32"; c.params].join(", ");
    let results = if c.returns { "i32" } else { "" };
    format!("({params}) -> ({results})")
}

fn describe(f: &FuncType) -> String {
    let list = |it: &mut dyn Iterator<Item = ValType>| {
        it.map(|t| t.to_string()).collect::<Vec<_>>().join(", ")
    };
    format!(
        "({}) -> ({})",
        list(&mut f.params()),
        list(&mut f.results())
    )
}
