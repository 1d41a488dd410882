//! A callback exported with another signature than the ABI's: Envoy fails
//! the VM at load ("Bad function signature for: ..."), and so does the
//! harness, instead of skipping the callback as if it were missing.

use wasm_encoder::{
    CodeSection, ConstExpr, ExportKind, ExportSection, Function, FunctionSection, GlobalSection,
    GlobalType, Instruction, MemorySection, MemoryType, Module, TypeSection, ValType,
};
use wasm_test_harness::{Harness, HarnessError};

/// An export of the hand-made module: name, i32 parameters, and the i32 it
/// returns, if it returns one.
struct Export {
    name: &'static str,
    params: usize,
    returns: Option<i32>,
}

const fn export(name: &'static str, params: usize, returns: Option<i32>) -> Export {
    Export {
        name,
        params,
        returns,
    }
}

/// The least a proxy-wasm module exports: the ABI version, the allocator,
/// context creation, configuration (accepted) and request headers
/// (Continue); `module` adds the memory.
fn minimal() -> Vec<Export> {
    vec![
        export("proxy_abi_version_0_2_1", 0, None),
        export("proxy_on_memory_allocate", 1, Some(1024)),
        export("proxy_on_context_create", 2, None),
        export("proxy_on_configure", 2, Some(1)),
        export("proxy_on_request_headers", 3, Some(0)),
    ]
}

/// A module exporting `exports` (each function ignores its arguments), one
/// page of memory, and an i32 global under each name of `globals`.
fn module(exports: &[Export], globals: &[&str]) -> Vec<u8> {
    let (mut types, mut functions, mut code, mut names) = (
        TypeSection::new(),
        FunctionSection::new(),
        CodeSection::new(),
        ExportSection::new(),
    );
    for (i, e) in exports.iter().enumerate() {
        let index = u32::try_from(i).expect("few functions");
        let results = match e.returns {
            Some(_) => vec![ValType::I32],
            None => Vec::new(),
        };
        types.ty().function(vec![ValType::I32; e.params], results);
        functions.function(index);
        let mut body = Function::new([]);
        if let Some(value) = e.returns {
            body.instruction(&Instruction::I32Const(value));
        }
        body.instruction(&Instruction::End);
        code.function(&body);
        names.export(e.name, ExportKind::Func, index);
    }
    let mut memory = MemorySection::new();
    memory.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    names.export("memory", ExportKind::Memory, 0);
    let mut global = GlobalSection::new();
    for (i, name) in globals.iter().enumerate() {
        let ty = GlobalType {
            val_type: ValType::I32,
            mutable: false,
            shared: false,
        };
        global.global(ty, &ConstExpr::i32_const(0));
        names.export(
            name,
            ExportKind::Global,
            u32::try_from(i).expect("few globals"),
        );
    }
    let mut module = Module::new();
    module
        .section(&types)
        .section(&functions)
        .section(&memory)
        .section(&global)
        .section(&names)
        .section(&code);
    module.finish()
}

fn configure(exports: &[Export]) -> Result<Harness, HarnessError> {
    Harness::from_bytes(&module(exports, &[]))?.configure("")
}

fn without(name: &str) -> Vec<Export> {
    let mut exports = minimal();
    exports.retain(|e| e.name != name);
    exports
}

#[test]
fn the_minimal_module_runs() {
    let h = configure(&minimal()).expect("a module with the ABI's signatures loads");
    h.request(&[(":method", "GET"), (":path", "/")])
        .expect_continue();
}

#[test]
fn a_callback_with_another_signature_is_refused_at_load() {
    // ABI 0.1.0's request headers took two arguments; 0.2.x's take three.
    let mut old = without("proxy_on_request_headers");
    old.push(export("proxy_on_request_headers", 2, Some(0)));
    // proxy_on_delete returns nothing; proxy_on_done returns a bool.
    let mut delete = minimal();
    delete.push(export("proxy_on_delete", 1, Some(0)));
    let mut done = minimal();
    done.push(export("proxy_on_done", 1, None));
    for (exports, name, want) in [
        (old, "proxy_on_request_headers", "(i32, i32, i32) -> (i32)"),
        (delete, "proxy_on_delete", "(i32) -> ()"),
        (done, "proxy_on_done", "(i32) -> (i32)"),
    ] {
        match configure(&exports) {
            Err(HarnessError::Link(why)) => assert!(
                why.contains(&format!(
                    "bad function signature for {name}: Envoy wants {want}"
                )),
                "{why}"
            ),
            Err(other) => panic!("{name}: refused for another reason: {other}"),
            Ok(_) => panic!("{name} with another signature was accepted"),
        }
    }
}

#[test]
fn a_missing_callback_is_skipped() {
    // Without proxy_on_request_headers the request goes on, as in Envoy.
    let h = configure(&without("proxy_on_request_headers")).expect("loads without the callback");
    h.request(&[(":method", "GET"), (":path", "/")])
        .expect_continue();
}

#[test]
fn a_global_under_a_callbacks_name_counts_as_missing() {
    // Envoy indexes only function exports (proxy-wasm-cpp-host, each
    // runtime's module loading), so a global named like a callback is no
    // callback: the request headers' is skipped, the request goes on.
    let wasm = module(
        &without("proxy_on_request_headers"),
        &["proxy_on_request_headers"],
    );
    let h = Harness::from_bytes(&wasm)
        .and_then(|b| b.configure(""))
        .expect("loads: a global is not a callback");
    h.request(&[(":method", "GET"), (":path", "/")])
        .expect_continue();
}
