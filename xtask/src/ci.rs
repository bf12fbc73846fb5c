//! `cargo xtask ci`: everything CI checks, in order, stopping at the first failure.

pub mod docsrs;
pub mod examples;
pub mod gateway_features;
pub mod msrv;

use std::path::Path;
use std::time::Instant;

use crate::util::{ensure_debian_program, output, run as sh};
use crate::{Result, platform_features};

/// Runs the CI pipeline. `args` may contain `--skip-provision` (services already there) or
/// `--quick` (skip the facade and gateway feature matrices).
pub fn run_ci(root: &Path, args: &[String]) -> Result {
    let quick = args.iter().any(|a| a == "--quick");
    let started = Instant::now();
    if !args.iter().any(|a| a == "--skip-provision") {
        step("provision test services", provision)?;
    }
    step("rustfmt", || {
        sh(root, "cargo", &["fmt", "--all", "--", "--check"], &[])
    })?;
    step("the declared MSRV builds", || msrv::msrv(root))?;
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
        )?;
        // The workspace build turns on only the facade features other members enable: lint
        // every example (redis, sql, axum ones included) with all of them.
        sh(
            root,
            "cargo",
            &[
                "clippy",
                "-p",
                "unilogin",
                "--features",
                "full",
                "--examples",
                "--tests",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )
    })?;
    step("docs as docs.rs builds them", || docsrs::docs(root))?;
    step("tests, doc tests and examples", || {
        sh(
            root,
            "cargo",
            &[
                "test",
                "--workspace",
                "--lib",
                "--bins",
                "--tests",
                "--examples",
            ],
            &[],
        )?;
        sh(root, "cargo", &["test", "--workspace", "--doc"], &[])
    })?;
    step("facade examples", || examples::facade_examples(root))?;
    if !quick {
        step("facade feature matrix", || feature_matrix(root))?;
        step("gateway feature combinations", || {
            gateway_features::gateway_features(root)
        })?;
        // Benchmarks are compiled by clippy --all-targets above and run by `cargo xtask bench`;
        // their load generators are not meant for debug builds on a shared CI machine.
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
    // unilogin-sql's tests start PostgreSQL and MariaDB themselves. Debian keeps the PostgreSQL
    // server binaries in /usr/lib/postgresql/<major>/bin (the test harness finds them there);
    // `pg_ctlcluster` on PATH shows the package is installed.
    ensure_debian_program("pg_ctlcluster", "postgresql")?;
    ensure_debian_program("mariadb-install-db", "mariadb-server")?;
    provision_oauth2_mock_server()?;
    provision_oidc_rp()?;
    // unilogin-gateway's browser test drives headless Chromium through chromedriver.
    ensure_debian_program("chromium", "chromium")?;
    ensure_debian_program("chromedriver", "chromium-driver")?;
    Ok(())
}

/// The OAuth2 / OIDC server of unilogin-custom-oauth's tests (keep in step with `MOCK_VERSION`
/// in `crates/custom-oauth/tests/oidc.rs`, which installs it there itself when it is missing).
const OAUTH2_MOCK_SERVER: &str = "8.2.3";

/// Installs the npm package `oauth2-mock-server` once into `<target>/tmp/`, where the
/// custom-oauth tests look for it.
fn provision_oauth2_mock_server() -> Result {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| "xtask has no parent directory".to_string())?;
    let dir = crate::util::target_dir(root)
        .join("tmp")
        .join(format!("oauth2-mock-server-{OAUTH2_MOCK_SERVER}"));
    if dir
        .join("node_modules/oauth2-mock-server/package.json")
        .exists()
    {
        return Ok(());
    }
    if !crate::util::on_path("npm") || !crate::util::on_path("node") {
        return Err(format!(
            "the custom-oauth tests run the npm package oauth2-mock-server@{OAUTH2_MOCK_SERVER}: install Node.js (>= 20.19) and npm"
        ));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let dir_arg = dir.to_string_lossy().to_string();
    let package = format!("oauth2-mock-server@{OAUTH2_MOCK_SERVER}");
    sh(
        root,
        "npm",
        &[
            "install",
            "--no-audit",
            "--no-fund",
            "--prefix",
            &dir_arg,
            &package,
        ],
        &[],
    )
}

/// Installs the relying parties (and the reference OP) of unilogin-gateway's OIDC interop
/// tests where `crates/gateway/tests/oidc_rp_support` looks for them, with the same stamps (an
/// install records the manifest it came from; a changed manifest reinstalls): the npm packages
/// of `tests/oidc-rp/package-lock.json` (`npm ci`) into `<target>/tmp/oidc-rp-node`, and a venv
/// with `tests/oidc-rp/requirements.txt` into `<target>/tmp/oidc-rp-venv`.
fn provision_oidc_rp() -> Result {
    const STAMP: &str = ".unilogin-installed";
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or_else(|| "xtask has no parent directory".to_string())?;
    let harness = root.join("crates/gateway/tests/oidc-rp");
    let tmp = crate::util::target_dir(root).join("tmp");
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display()));
    let installed = |dir: &Path, manifest: &str| {
        std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == manifest)
    };
    // The tests take the same lock, so an install is never seen half done.
    let lock = |dir: &Path| -> Result<std::fs::File> {
        std::fs::create_dir_all(&tmp).map_err(|e| format!("creating {}: {e}", tmp.display()))?;
        let f = std::fs::File::create(dir.with_extension("lock")).map_err(|e| e.to_string())?;
        f.lock()
            .map_err(|e| format!("locking {}: {e}", dir.display()))?;
        Ok(f)
    };

    let node_dir = tmp.join("oidc-rp-node");
    let package_lock = read(&harness.join("package-lock.json"))?;
    let _node_lock = lock(&node_dir)?;
    if !installed(&node_dir, &package_lock) {
        if !crate::util::on_path("npm") || !crate::util::on_path("node") {
            return Err("the OIDC interop tests run the npm packages oidc-provider and openid-client: install Node.js (>= 20.19) and npm".into());
        }
        std::fs::create_dir_all(&node_dir)
            .map_err(|e| format!("creating {}: {e}", node_dir.display()))?;
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(harness.join(file), node_dir.join(file))
                .map_err(|e| format!("copying {file}: {e}"))?;
        }
        sh(
            &node_dir,
            "npm",
            &["ci", "--no-audit", "--no-fund", "--loglevel=error"],
            &[],
        )?;
        std::fs::write(node_dir.join(STAMP), &package_lock).map_err(|e| e.to_string())?;
    }

    let venv = tmp.join("oidc-rp-venv");
    let requirements = harness.join("requirements.txt");
    let wanted = read(&requirements)?;
    let _venv_lock = lock(&venv)?;
    if !installed(&venv, &wanted) {
        if !crate::util::on_path("python3") {
            return Err("the OIDC interop tests run Python's Authlib: install Python 3 with its venv module".into());
        }
        let venv_arg = venv.to_string_lossy().to_string();
        sh(root, "python3", &["-m", "venv", "--clear", &venv_arg], &[])?;
        let python = venv.join("bin/python").to_string_lossy().to_string();
        let requirements_arg = requirements.to_string_lossy().to_string();
        sh(
            root,
            &python,
            &[
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "-r",
                &requirements_arg,
            ],
            &[],
        )?;
        std::fs::write(venv.join(STAMP), &wanted).map_err(|e| e.to_string())?;
    }
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
