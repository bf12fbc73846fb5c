//! `cargo xtask fuzz [SECONDS]`: runs the mapping fuzz target for a bounded time.

use std::path::Path;

use crate::Result;
use crate::util::{on_path, run as run_cmd};

/// Installs cargo-fuzz if needed and runs `fuzz/` target `mapping` for the given seconds.
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
    run_cmd(
        root,
        "cargo",
        &["fuzz", "run", "mapping", "--", &max_time],
        &[("RUSTC_BOOTSTRAP", "1")],
    )
}
