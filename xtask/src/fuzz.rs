//! `cargo xtask fuzz [SECONDS]`: runs each fuzz target (mapping, events) for a bounded time.

use std::path::Path;

use crate::Result;
use crate::util::{on_path, run as run_cmd};

/// The `fuzz/` targets, run in this order.
const TARGETS: &[&str] = &["mapping", "events"];

/// Installs cargo-fuzz if needed and runs each `fuzz/` target for the given seconds.
pub fn run(root: &Path, args: &[String]) -> Result {
    let seconds: u64 = match args.first() {
        Some(s) => s
            .parse()
            .map_err(|_| format!("SECONDS must be a number, got `{s}`"))?,
        None => 60,
    };
    if !root.join("fuzz/Cargo.toml").exists() {
        return Err("fuzz/Cargo.toml not found".into());
    }
    if !on_path("cargo-fuzz") {
        run_cmd(root, "cargo", &["install", "cargo-fuzz", "--locked"], &[])?;
    }
    let max_time = format!("-max_total_time={seconds}");
    for target in TARGETS {
        run_cmd(
            root,
            "cargo",
            &["fuzz", "run", target, "--", &max_time],
            &[("RUSTC_BOOTSTRAP", "1")],
        )?;
    }
    Ok(())
}
