//! Counters the core keeps as it decides; the shell hands them to the host
//! as proxy-wasm metrics (`/stats`, `/stats/prometheus`) on each tick, so
//! the hot path makes no metrics host call.

#[derive(Default, Debug)]
pub struct Stats {
    /// A few dozen names at most: a list, found by the name's address first
    /// (the same literal every time), cheaper per request than a map.
    pending: Vec<(&'static str, u64)>,
}

impl Stats {
    pub fn add(&mut self, name: &'static str) {
        match self
            .pending
            .iter_mut()
            .find(|(n, _)| std::ptr::eq(*n, name) || *n == name)
        {
            Some((_, count)) => *count += 1,
            None => self.pending.push((name, 1)),
        }
    }

    /// The counts since the last drain.
    pub fn drain(&mut self) -> Vec<(&'static str, u64)> {
        std::mem::take(&mut self.pending)
    }

    pub fn get(&self, name: &str) -> u64 {
        self.pending
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, count)| *count)
    }
}
