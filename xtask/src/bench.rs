//! `cargo xtask bench`: runs every benchmark, then merges the metrics they wrote into
//! `target/bench/summary.json` and prints a table.

use std::path::Path;

use serde_json::Value;

use crate::Result;
use crate::util::run as run_cmd;

/// Runs the benchmarks (`--quick` for tiny iteration counts) and writes the summary.
pub fn run(root: &Path, args: &[String]) -> Result {
    let out_dir = root.join("target/bench/metrics");
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)
            .map_err(|e| format!("clearing {}: {e}", out_dir.display()))?;
    }
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    let out = out_dir.to_string_lossy().to_string();
    let mut envs = vec![("UNILOGIN_BENCH_OUT", out.as_str())];
    if args.iter().any(|a| a == "--quick") {
        envs.push(("UNILOGIN_BENCH_QUICK", "1"));
    }
    crate::ci::provision()?;
    run_cmd(root, "cargo", &["bench", "--workspace"], &envs)?;
    let summary = summarize(&out_dir)?;
    let path = root.join("target/bench/summary.json");
    let text = serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    print_table(&summary);
    println!("\nwrote target/bench/summary.json");
    Ok(())
}

/// Reads every `*.json` metrics file in `dir` into one array sorted by metric name.
pub fn summarize(dir: &Path) -> Result<Vec<Value>> {
    let mut all = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "json") {
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let metrics: Vec<Value> =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            for m in metrics {
                for key in ["name", "value", "unit", "goal"] {
                    if m.get(key).is_none() {
                        return Err(format!("{}: a metric lacks `{key}`: {m}", path.display()));
                    }
                }
                all.push(m);
            }
        }
    }
    all.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(all)
}

fn print_table(metrics: &[Value]) {
    println!(
        "\n{:<42} {:>14} {:<6} {:>14} {:>8}  goal",
        "metric", "value", "unit", "baseline", "ratio"
    );
    for m in metrics {
        let value = m["value"].as_f64().unwrap_or(f64::NAN);
        let baseline = m.get("baseline").and_then(Value::as_f64);
        let ratio = baseline
            .filter(|b| *b != 0.0)
            .map(|b| format!("{:.2}", value / b))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<42} {:>14.3} {:<6} {:>14} {:>8}  {}",
            m["name"].as_str().unwrap_or("?"),
            value,
            m["unit"].as_str().unwrap_or(""),
            baseline
                .map(|b| format!("{b:.3}"))
                .unwrap_or_else(|| "-".into()),
            ratio,
            m["goal"].as_str().unwrap_or("")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_merges_and_validates() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("b.json"),
            r#"[{"name":"z.x","value":2,"unit":"ns","goal":"<= 3"}]"#,
        )
        .unwrap();
        std::fs::write(
            dir.join("a.json"),
            r#"[{"name":"a.y","value":1,"unit":"x","baseline":4,"goal":">= 1"}]"#,
        )
        .unwrap();
        let s = summarize(&dir).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0]["name"], "a.y");
        std::fs::write(dir.join("c.json"), r#"[{"name":"bad","value":1}]"#).unwrap();
        assert!(summarize(&dir).unwrap_err().contains("lacks `unit`"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
