//! Compiling modules: one wasmtime engine per test binary, and each module
//! compiled once per test binary and path (compiling the filter takes
//! seconds in a debug build of wasmtime; instantiating it, microseconds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use wasmtime::{Config, Engine, Module};

use crate::error::HarnessError;

pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        // The defaults keep wasm backtraces (20 frames) on trap errors.
        let mut config = Config::new();
        // Tests run little code but compile a big module once per test
        // binary: skipping Cranelift's optimisations cut compiling the
        // filter from 7.5 s to 5.9 s (debug wasmtime) with no slower run.
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        // HARNESS_PERFMAP=1: optimised code and a /tmp/perf-<pid>.map, so
        // `perf record` on a test names the module's functions (give it an
        // unstripped build; see tests/harness/profile.rs).
        if std::env::var_os("HARNESS_PERFMAP").is_some() {
            config.cranelift_opt_level(wasmtime::OptLevel::Speed);
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        // Nothing in the default config needs a feature the lean build
        // lacks, so this cannot fail; fall back to the defaults if it does.
        Engine::new(&config).unwrap_or_default()
    })
}

/// The compiled module at `path`, compiled on first use.
pub(crate) fn load(path: &Path) -> Result<Module, HarnessError> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Module>>> = OnceLock::new();
    let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let cache = MODULES.get_or_init(Default::default);
    // A test that panicked while holding the lock leaves the map intact.
    let mut modules = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(module) = modules.get(&key) {
        return Ok(module.clone());
    }
    let bytes = std::fs::read(path).map_err(|error| HarnessError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let module = compile(&bytes, path)?;
    modules.insert(key, module.clone());
    Ok(module)
}

/// Compiles `bytes`, read from `path` (named in the error).
pub(crate) fn compile(bytes: &[u8], path: &Path) -> Result<Module, HarnessError> {
    Module::new(engine(), bytes).map_err(|e| HarnessError::Compile {
        path: path.to_path_buf(),
        message: format!("{e:?}"),
    })
}
