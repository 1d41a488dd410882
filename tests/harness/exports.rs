//! The module exports only the callbacks src/shell implements (build.sh
//! removes the rest of the SDK's, src/shell/exports.txt says why): Envoy
//! then skips them, and a callback left off the list would never run.
//! (scripts/prune-exports.sh also fails the build when the module it
//! writes does not export exactly the list.)

use std::collections::BTreeSet;

use wasm_test_harness::{Action, Harness};

use crate::common::idp::warm;
use crate::common::tokens::{claims, rs256};
use crate::common::{self, CLUSTER, bearer};

/// The exports src/shell/exports.txt keeps.
fn kept() -> BTreeSet<String> {
    include_str!("../../src/shell/exports.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// The exports through which the host reaches each callback of the SDK's
/// traits (its dispatcher's `proxy_on_*` functions): all of them needed.
const CALLBACKS: &[(&str, &[&str])] = &[
    ("on_vm_start", &["proxy_on_vm_start"]),
    ("on_configure", &["proxy_on_configure"]),
    ("on_tick", &["proxy_on_tick"]),
    ("on_queue_ready", &["proxy_on_queue_ready"]),
    ("create_http_context", &["proxy_on_context_create"]),
    ("create_stream_context", &["proxy_on_context_create"]),
    ("on_done", &["proxy_on_done"]),
    ("on_log", &["proxy_on_log"]),
    ("on_http_call_response", &["proxy_on_http_call_response"]),
    // A gRPC call's reply arrives through receive, its failure through close.
    (
        "on_grpc_call_response",
        &["proxy_on_grpc_receive", "proxy_on_grpc_close"],
    ),
    (
        "on_grpc_stream_initial_metadata",
        &["proxy_on_grpc_receive_initial_metadata"],
    ),
    ("on_grpc_stream_message", &["proxy_on_grpc_receive"]),
    (
        "on_grpc_stream_trailing_metadata",
        &["proxy_on_grpc_receive_trailing_metadata"],
    ),
    ("on_grpc_stream_close", &["proxy_on_grpc_close"]),
    ("on_http_request_headers", &["proxy_on_request_headers"]),
    ("on_http_request_body", &["proxy_on_request_body"]),
    ("on_http_request_trailers", &["proxy_on_request_trailers"]),
    ("on_http_response_headers", &["proxy_on_response_headers"]),
    ("on_http_response_body", &["proxy_on_response_body"]),
    ("on_http_response_trailers", &["proxy_on_response_trailers"]),
    ("on_new_connection", &["proxy_on_new_connection"]),
    ("on_downstream_data", &["proxy_on_downstream_data"]),
    (
        "on_downstream_close",
        &["proxy_on_downstream_connection_close"],
    ),
    ("on_upstream_data", &["proxy_on_upstream_data"]),
    ("on_upstream_close", &["proxy_on_upstream_connection_close"]),
    ("on_foreign_function", &["proxy_on_foreign_function"]),
];

/// What every module needs whatever it implements: its memory, wasip1's
/// reactor start, the ABI version, the host's allocations in it, and the
/// contexts' creation (without which the SDK knows no context).
const INFRASTRUCTURE: &[&str] = &[
    "memory",
    "_initialize",
    "proxy_abi_version_0_2_1",
    "proxy_on_memory_allocate",
    "proxy_on_context_create",
];

/// The exports the callbacks of `source` (a file of src/shell) need: each
/// `fn on_*` and `fn create_*_context` it defines, and its contexts' drop.
fn needed(file: &str, source: &str) -> Vec<&'static str> {
    let mut needed = Vec::new();
    for (at, _) in source.match_indices("fn ") {
        let name: String = source[at + 3..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !(name.starts_with("on_") || (name.starts_with("create_") && name.ends_with("_context")))
        {
            continue;
        }
        let Some((_, exports)) = CALLBACKS.iter().find(|(m, _)| *m == name) else {
            panic!(
                "{file}: fn {name} looks like a proxy-wasm callback this test does not know: add it to CALLBACKS"
            );
        };
        needed.extend(exports.iter().copied());
    }
    if source.contains("impl Drop for") {
        needed.push("proxy_on_delete");
    }
    needed
}

#[test]
fn every_callback_the_shell_implements_is_kept() {
    let kept = kept();
    for export in INFRASTRUCTURE {
        assert!(
            kept.contains(*export),
            "src/shell/exports.txt must keep {export}"
        );
    }
    // Every file of the shell, as it is when the test runs: a new one is
    // read too.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/shell");
    let mut files = 0;
    let mut seen = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let source =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path.display().to_string();
        files += 1;
        for export in needed(&file, &source) {
            assert!(
                kept.contains(export),
                "{file} implements a callback reached through {export}, \
                 which src/shell/exports.txt does not keep: Envoy would never call it"
            );
            seen.insert(export);
        }
    }
    assert!(files >= 4, "only {files} files read in {}", dir.display());
    // The shell as it is: the request path's callbacks are among them.
    for export in [
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_http_call_response",
        "proxy_on_delete",
    ] {
        assert!(seen.contains(export), "no callback found for {export}");
    }
}

#[test]
fn the_module_exports_exactly_the_kept_list() {
    let builder = Harness::load(common::wasm_path()).unwrap_or_else(|e| panic!("{e}"));
    let exports: BTreeSet<String> = builder.exports().into_iter().collect();
    assert_eq!(
        exports,
        kept(),
        "build.sh's pruning and src/shell/exports.txt disagree"
    );
    for pruned in [
        "proxy_on_log",
        "proxy_on_done",
        "proxy_on_request_body",
        "proxy_on_response_body",
    ] {
        assert!(!exports.contains(pruned), "{pruned} is still exported");
    }
    // A request with a body, and its response with one, pass: the harness,
    // as proxy-wasm-cpp-host does (context.cc: `if (!wasm_->on_request_body_)
    // return Continue`, and so for each), skips the pruned callbacks, so
    // this shows that nothing of the filter waits on them.
    let h = builder
        .cluster(CLUSTER)
        .configure(common::config().to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    warm(&h);
    let req = bearer(&h, &rs256(&claims(&h)));
    req.expect_continue();
    assert_eq!(req.send_body(b"a=1", true), Action::Continue);
    let (action, _) = req.respond(&[(":status", "200")], false);
    assert_eq!(action, Action::Continue);
    let body = req.send_response_body(b"ok", true);
    assert_eq!(body.ok(), Some(Action::Continue));
    req.finish();
}
