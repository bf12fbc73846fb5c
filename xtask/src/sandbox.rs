//! `cargo xtask sandbox`: the main job — unilogin against the built-in platform fakes,
//! offline, on embedded defaults.

use std::path::Path;

use crate::Result;
use crate::util::run as run_cmd;

/// Runs the sandbox. Extra arguments are passed through.
pub fn run(root: &Path, args: &[String]) -> Result {
    if root.join("crates/gateway/Cargo.toml").exists() {
        let mut cmd = vec![
            "run",
            "--quiet",
            "-p",
            "unilogin-gateway",
            "--",
            "--sandbox",
        ];
        cmd.extend(args.iter().map(String::as_str));
        run_cmd(root, "cargo", &cmd, &[])
    } else {
        let mut cmd = vec![
            "run",
            "--quiet",
            "-p",
            "unilogin",
            "--features",
            "full",
            "--example",
            "sandbox",
        ];
        if !args.is_empty() {
            cmd.push("--");
            cmd.extend(args.iter().map(String::as_str));
        }
        run_cmd(root, "cargo", &cmd, &[])
    }
}
