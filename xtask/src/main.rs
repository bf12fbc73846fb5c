//! `cargo xtask`: the project's automation, in Rust instead of shell scripts.
//!
//! ```text
//! cargo xtask ci                 format, MSRV, lint, docs, tests, feature matrices (what CI runs)
//! cargo xtask bench              run the benchmarks, write target/bench/summary.json
//! cargo xtask new-platform NAME  scaffold crates/NAME and its facade feature
//! cargo xtask fuzz [SECONDS]     run the fuzz targets (mapping, events) for a bounded time
//! cargo xtask sandbox            run the gateway in sandbox mode against the built-in fakes
//! ```

use std::process::ExitCode;

use xtask::{bench, ci, fuzz, sandbox, scaffold, workspace_root};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::run(&root, &args[1..]),
        Some("bench") => bench::run(&root, &args[1..]),
        Some("new-platform") => match args.get(1) {
            Some(name) => scaffold::new_platform(&root, name).map(|created| {
                println!(
                    "created the platform `{name}` ({} files and edits: its crate, its test-kit fake, its conformance test, the facade feature, an example, a docs page)",
                    created.len()
                );
                println!(
                    "next: replace every `REPLACE:` (docs/adding-a-platform.md walks through each file), then `cargo xtask ci`"
                );
            }),
            None => Err("usage: cargo xtask new-platform NAME".into()),
        },
        Some("fuzz") => fuzz::run(&root, &args[1..]),
        Some("sandbox") => sandbox::run(&root, &args[1..]),
        Some("help" | "--help" | "-h") | None => {
            println!("{}", USAGE);
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: cargo xtask <command>
  ci                  rustfmt check, declared MSRV, clippy -D warnings, docs as docs.rs builds
                      them, tests (with real Redis), doc tests, examples, facade and gateway
                      feature matrices (--quick skips the matrices)
  bench               run benchmarks; prints a table, writes target/bench/summary.json
  new-platform NAME   scaffold crates/NAME (handler, registration, rules, conformance wiring)
  fuzz [SECONDS]      run the fuzz targets, mapping and events (default 60 s each)
  sandbox             run the gateway in sandbox mode against the built-in fakes";
