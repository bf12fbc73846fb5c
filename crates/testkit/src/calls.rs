//! Per-endpoint call counting.
//!
//! Tests assert how many upstream calls a login cost ("a warm login costs exactly two calls and no
//! token fetch"). Every request that reaches an endpoint is counted *before* anything else happens,
//! so rejected, faulted and wrong-method requests count too. Requests to paths no endpoint serves
//! are counted under [`UNMATCHED`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::table::lock;

/// Name under which requests to unknown paths are counted.
pub const UNMATCHED: &str = "unmatched";

/// Thread-safe request counter keyed by endpoint name. Cheap to clone; clones share counts.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    /// An empty counter.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one request to `endpoint`.
    pub fn record(&self, endpoint: &str) {
        *lock(&self.counts).entry(endpoint.to_owned()).or_insert(0) += 1;
    }

    /// Requests counted for `endpoint` since the last reset (0 for unknown names).
    pub fn get(&self, endpoint: &str) -> u64 {
        lock(&self.counts).get(endpoint).copied().unwrap_or(0)
    }

    /// Requests counted for all endpoints, including [`UNMATCHED`].
    pub fn total(&self) -> u64 {
        lock(&self.counts).values().sum()
    }

    /// A snapshot of every non-zero count, sorted by endpoint name.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    /// Forget all counts.
    pub fn reset(&self) {
        lock(&self.counts).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_endpoint_and_total() {
        let c = CallCounter::new();
        c.record("gettoken");
        c.record("gettoken");
        c.record(UNMATCHED);
        assert_eq!(c.get("gettoken"), 2);
        assert_eq!(c.get("other"), 0);
        assert_eq!(c.total(), 3);
        assert_eq!(c.snapshot().len(), 2);
        c.reset();
        assert_eq!(c.total(), 0);
    }
}
