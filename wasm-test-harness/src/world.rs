//! What the workers of one Envoy process share: the clock, the clusters,
//! shared data, shared queues, metrics, properties and the log.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::time::SystemTime;

use crate::types::{LogLevel, MetricType, Status};

/// One line the module logged (or the harness noted about the module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Index of the worker (VM) that logged it.
    pub worker: usize,
    /// Context that was current (or effective) when it was logged.
    pub context: u32,
    pub level: LogLevel,
    /// True for lines the harness wrote about the module's use of the ABI.
    pub from_host: bool,
    pub message: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = if self.from_host { "host" } else { "wasm" };
        write!(
            f,
            "[w{} ctx {}] {source} {}: {}",
            self.worker, self.context, self.level, self.message
        )
    }
}

/// Shared data with Envoy's compare-and-swap semantics: every write gets a
/// new non-zero cas; a write with a non-zero cas that is not the current one
/// fails with `CasMismatch`; a write with cas 0 always succeeds.
#[derive(Debug, Default)]
pub(crate) struct SharedData {
    entries: HashMap<String, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl SharedData {
    pub(crate) fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.get(key).cloned()
    }

    /// Every key ever written, sorted (shared data has no delete).
    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.entries.keys().cloned().collect();
        keys.sort();
        keys
    }

    pub(crate) fn set(&mut self, key: &str, value: &[u8], cas: u32) -> Status {
        if let Some((_, current)) = self.entries.get(key)
            && cas != 0
            && cas != *current
        {
            return Status::CasMismatch;
        }
        self.last_cas = self.last_cas.wrapping_add(1).max(1);
        self.entries
            .insert(key.to_owned(), (value.to_vec(), self.last_cas));
        Status::Ok
    }
}

/// A shared queue: registered by one VM's root context, fed by any VM.
#[derive(Debug)]
pub(crate) struct Queue {
    pub name: String,
    pub owner_worker: usize,
    pub owner_context: u32,
    pub items: VecDeque<Vec<u8>>,
}

#[derive(Debug, Default)]
pub(crate) struct Metric {
    pub kind: Option<MetricType>,
    pub value: u64,
    /// Every value recorded into a histogram, in order.
    pub samples: Vec<u64>,
}

pub(crate) struct World {
    pub now: SystemTime,
    pub clusters: BTreeSet<String>,
    /// Request headers whose writes (replace, add, remove) the host
    /// refuses with `BadArgument`: a header map that will not take a change.
    pub refused_header_writes: BTreeSet<String>,
    /// Every `proxy_send_local_response` fails (`InternalFailure`).
    pub refuse_local_replies: bool,
    pub shared_data: SharedData,
    /// Queue token - 1 indexes this list (token 0 means "none" in the ABI).
    pub queues: Vec<Queue>,
    /// `proxy_on_queue_ready` deliveries owed: (worker, root context, token).
    pub queue_ready: VecDeque<(usize, u32, u32)>,
    /// Metrics by name: Envoy's stats scope is shared by all workers.
    pub metrics: HashMap<String, Metric>,
    /// Property values by path (segments joined with NUL, as the ABI sends them).
    pub properties: HashMap<Vec<u8>, Vec<u8>>,
    pub log_level: LogLevel,
    pub logs: Vec<LogLine>,
    /// Echo log lines to stderr as they happen (env `HARNESS_LOG`).
    pub echo_logs: bool,
}

impl World {
    pub(crate) fn new(now: SystemTime) -> Self {
        Self {
            now,
            clusters: BTreeSet::new(),
            refused_header_writes: BTreeSet::new(),
            refuse_local_replies: false,
            shared_data: SharedData::default(),
            queues: Vec::new(),
            queue_ready: VecDeque::new(),
            metrics: HashMap::new(),
            properties: HashMap::new(),
            log_level: LogLevel::Trace,
            logs: Vec::new(),
            echo_logs: std::env::var_os("HARNESS_LOG").is_some(),
        }
    }

    pub(crate) fn log(&mut self, line: LogLine) {
        if self.echo_logs {
            eprintln!("{line}");
        }
        self.logs.push(line);
    }

    /// The last `n` log lines, one per line, for failure messages.
    pub(crate) fn tail(&self, n: usize) -> String {
        tail(&self.logs, n)
    }
}

pub(crate) fn tail(logs: &[LogLine], n: usize) -> String {
    if logs.is_empty() {
        return "  (the module logged nothing)".to_owned();
    }
    let skip = logs.len().saturating_sub(n);
    let mut out = String::new();
    if skip > 0 {
        out.push_str(&format!("  … {skip} earlier lines\n"));
    }
    for line in &logs[skip..] {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_cas_is_refused_and_zero_cas_overwrites() {
        let mut data = SharedData::default();
        assert_eq!(data.set("k", b"a", 0), Status::Ok);
        let (_, cas) = data.get("k").expect("set");
        assert_eq!(data.set("k", b"b", cas), Status::Ok);
        assert_eq!(data.set("k", b"c", cas), Status::CasMismatch);
        assert_eq!(data.set("k", b"d", 0), Status::Ok);
        assert_eq!(data.get("k").expect("set").0, b"d");
        // A cas on a key that does not exist yet is not checked (as in Envoy).
        assert_eq!(data.set("new", b"x", 77), Status::Ok);
    }
}
