//! Errors a test sees. Every variant that stems from the module carries its
//! last log lines, since those usually say what went wrong.

use std::fmt;
use std::path::PathBuf;

use crate::world::{LogLine, tail};

/// How many log lines a failure message shows.
pub(crate) const TAIL: usize = 25;

/// A trap in the module: its message, the wasm backtrace, and the log.
#[derive(Clone, Debug)]
pub struct TrapReport {
    pub worker: usize,
    /// The host→module call that trapped, e.g. `proxy_on_request_headers(context 2)`.
    pub call: String,
    /// wasmtime's error chain: trap kind, then the wasm backtrace.
    pub message: String,
    /// The module's log up to the trap (a Rust panic message is among the last lines).
    pub logs: Vec<LogLine>,
}

impl fmt::Display for TrapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the module trapped in {} on worker {}:\n{}\n--- last log lines ---\n{}",
            self.call,
            self.worker,
            self.message.trim_end(),
            tail(&self.logs, TAIL)
        )
    }
}

#[derive(Debug)]
pub enum HarnessError {
    /// The .wasm file could not be read.
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    /// wasmtime refused to compile the module.
    Compile { path: PathBuf, message: String },
    /// The module imports something no proxy-wasm host provides, lacks an
    /// export the ABI requires, or exports a callback with another
    /// signature than the ABI's. Envoy refuses such a module too.
    Link(String),
    /// `proxy_on_vm_start` or `proxy_on_configure` returned false: Envoy
    /// rejects the configuration.
    Refused {
        call: String,
        worker: usize,
        logs: String,
    },
    /// The module trapped (a Rust panic is an `unreachable` trap).
    Trap(Box<TrapReport>),
    /// A call into a VM that trapped earlier: Envoy never calls it again.
    VmDead(Box<TrapReport>),
    /// The test asked for something that does not exist (unknown token, …).
    Usage(String),
}

impl fmt::Display for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, error } => write!(f, "cannot read {}: {error}", path.display()),
            Self::Compile { path, message } => {
                write!(f, "cannot compile {}: {message}", path.display())
            }
            Self::Link(why) => write!(f, "cannot instantiate the module: {why}"),
            Self::Refused { call, worker, logs } => write!(
                f,
                "{call} returned false on worker {worker} (Envoy rejects the configuration)\n\
                 --- last log lines ---\n{logs}"
            ),
            Self::Trap(report) => write!(f, "{report}"),
            Self::VmDead(report) => write!(
                f,
                "the VM is dead: it trapped earlier, and Envoy makes no further calls into it\n{report}"
            ),
            Self::Usage(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for HarnessError {}

impl HarnessError {
    /// The trap behind this error, if the module trapped.
    pub fn trap(&self) -> Option<&TrapReport> {
        match self {
            Self::Trap(r) | Self::VmDead(r) => Some(r),
            _ => None,
        }
    }
}
