//! Shared helpers for unilogin's benchmarks.
//!
//! Every benchmark binary (`harness = false`) measures its subject *and* a baseline in the same
//! run, then calls [`write_metrics`]. `cargo xtask bench` sets `UNILOGIN_BENCH_OUT`, collects the
//! files and writes `target/bench/summary.json`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// One measured number, with the baseline measured in the same run where there is one.
#[derive(Debug, Clone, Serialize)]
pub struct Metric {
    /// Stable dotted name, e.g. `token_cache.hit_p50_ns`.
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// Unit (`ns`, `x`, `count`, `bytes`, `ms`, `1/s`, `MB`).
    pub unit: String,
    /// The same quantity measured on the baseline, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<f64>,
    /// The goal, as text (`<= 100`, `>= 1.8`).
    pub goal: String,
}

impl Metric {
    /// Builds a metric.
    pub fn new(name: &str, value: f64, unit: &str, baseline: Option<f64>, goal: &str) -> Self {
        Self {
            name: name.to_string(),
            value,
            unit: unit.to_string(),
            baseline,
            goal: goal.to_string(),
        }
    }
}

/// Writes `metrics` as `<UNILOGIN_BENCH_OUT>/<bench>.json` (default directory:
/// `target/bench/metrics` under the current directory) and prints them.
pub fn write_metrics(bench: &str, metrics: &[Metric]) -> std::io::Result<PathBuf> {
    let dir = std::env::var_os("UNILOGIN_BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bench/metrics"));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{bench}.json"));
    let json = serde_json::to_string_pretty(metrics).map_err(std::io::Error::other)?;
    std::fs::write(&path, json)?;
    for m in metrics {
        println!(
            "metric {:<40} {:>14.3} {:<6} baseline {:>14} goal {}",
            m.name,
            m.value,
            m.unit,
            m.baseline
                .map(|b| format!("{b:.3}"))
                .unwrap_or_else(|| "-".into()),
            m.goal
        );
    }
    Ok(path)
}

/// The `p`-th percentile (0..=100) of `samples`, sorting them in place. Returns zero for none.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

/// Whether the bench runs in quick mode (`UNILOGIN_BENCH_QUICK=1`, used by `cargo xtask ci` to
/// prove the benches still run without spending minutes on them).
pub fn quick() -> bool {
    std::env::var_os("UNILOGIN_BENCH_QUICK").is_some_and(|v| v != "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&mut v, 50.0), Duration::from_millis(51));
        assert_eq!(percentile(&mut v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
    }
}
