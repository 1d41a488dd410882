//! placeholder: see wasm-test-harness issue
