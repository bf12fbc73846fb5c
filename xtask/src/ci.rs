//! `cargo xtask ci`: everything CI checks, in order, stopping at the first failure.

use std::path::Path;
use std::time::Instant;

use crate::util::{ensure_debian_program, output, run as sh};
use crate::{Result, platform_features};

/// Runs the CI pipeline. `args` may contain `--skip-provision` (services already there) or
/// `--quick` (skip the facade feature matrix and the bench smoke run).
pub fn run_ci(root: &Path, args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    let started = Instant::now();
    if !args.iter().any(|a| a == "--skip-provision") {
        step("provision test services", provision)?;
    }
    step("rustfmt", || {
        sh(root, "cargo", &["fmt", "--all", "--", "--check"], &[])
    })?;
    step("clippy", || {
        sh(
            root,
            "cargo",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
    })?;
    step("tests, doc tests and examples", || {
        sh(
            root,
            "cargo",
            &["test", "--workspace", "--all-targets"],
            &[],
        )?;
        sh(root, "cargo", &["test", "--workspace", "--doc"], &[])
    })?;
    if !quick {
        step("facade feature matrix", || feature_matrix(root))?;
        step("benchmarks still run (quick mode)", || {
            sh(
                root,
                "cargo",
                &["test", "--workspace", "--benches"],
                &[("UNILOGIN_BENCH_QUICK", "1")],
            )
        })?;
    }
    println!("xtask ci: all steps passed in {:.0?}", started.elapsed());
    Ok(())
}

/// Entry point for `cargo xtask ci`.
pub fn run(root: &Path, args: &[String]) -> Result {
    run_ci(root, args)
}

fn step(name: &str, f: impl FnOnce() -> Result) -> Result {
    println!("\n==> {name}");
    let t = Instant::now();
    f().map_err(|e| format!("step `{name}` failed: {e}"))?;
    println!("<== {name}: ok in {:.1?}", t.elapsed());
    Ok(())
}

/// Installs what the tests need when it is missing.
pub fn provision() -> Result {
    ensure_debian_program("redis-server", "redis-server")?;
    Ok(())
}

/// Builds the facade alone with each feature set and checks that the registry holds exactly
/// the enabled platforms, both from a test and from the `platforms` example binary.
pub fn feature_matrix(root: &Path) -> Result {
    let platforms = platform_features(root)?;
    let mut sets: Vec<(String, Vec<String>)> = vec![(String::new(), vec![])];
    for p in &platforms {
        sets.push((p.clone(), vec![p.clone()]));
    }
    sets.push(("full".into(), platforms.clone()));
    for (features, expected) in sets {
        let mut expected = expected;
        expected.sort();
        let expect = expected.join(",");
        println!("-- facade with features [{features}] must register [{expect}]");
        let mut args = vec![
            "test",
            "-p",
            "unilogin",
            "--no-default-features",
            "--test",
            "registry",
        ];
        if !features.is_empty() {
            args.extend(["--features", features.as_str()]);
        }
        sh(
            root,
            "cargo",
            &args,
            &[("UNILOGIN_EXPECT_PLATFORMS", &expect)],
        )?;
        let mut args = vec![
            "run",
            "--quiet",
            "-p",
            "unilogin",
            "--no-default-features",
            "--example",
            "platforms",
        ];
        if !features.is_empty() {
            args.extend(["--features", features.as_str()]);
        }
        let printed = output(root, "cargo", &args, &[])?;
        let listed: Vec<&str> = printed
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if listed != expected.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(format!(
                "example `platforms` with features [{features}] listed {listed:?}, expected {expected:?}"
            ));
        }
    }
    Ok(())
}
