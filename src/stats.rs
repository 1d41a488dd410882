//! Counters the core keeps as it decides; the shell hands them to the host
//! as proxy-wasm metrics (`/stats`, `/stats/prometheus`) on each tick, so
//! the hot path makes no metrics host call.

use std::collections::BTreeMap;

#[derive(Default, Debug)]
pub struct Stats {
    pending: BTreeMap<&'static str, u64>,
}

impl Stats {
    pub fn add(&mut self, name: &'static str) {
        *self.pending.entry(name).or_default() += 1;
    }

    /// The counts since the last drain.
    pub fn drain(&mut self) -> Vec<(&'static str, u64)> {
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    pub fn get(&self, name: &str) -> u64 {
        self.pending.get(name).copied().unwrap_or_default()
    }
}
