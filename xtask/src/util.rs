//! Running commands and provisioning services.

use std::path::Path;
use std::process::Command;

use crate::Result;

/// Runs `program args` in `dir`, echoing the command; fails with a message on a non-zero exit.
pub fn run(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result {
    println!("$ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("could not start `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// Runs a command and returns its standard output.
pub fn output(dir: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<String> {
    println!("$ {program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .envs(envs.iter().copied())
        .output()
        .map_err(|e| format!("could not start `{program}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("`{program}` printed non-UTF-8: {e}"))
}

/// Whether `program` is on the `PATH`.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

/// Makes sure a program from a Debian package is installed, installing the package with
/// `apt-get` when it is missing (CI machines start bare). Fails with a clear message when that
/// is impossible.
pub fn ensure_debian_program(program: &str, package: &str) -> Result {
    if on_path(program) {
        return Ok(());
    }
    println!("xtask: `{program}` is missing; installing Debian package `{package}`");
    if !on_path("apt-get") {
        return Err(format!(
            "`{program}` is required by the tests and apt-get is not available: install `{package}` by hand"
        ));
    }
    let root = Path::new("/");
    let envs = [("DEBIAN_FRONTEND", "noninteractive")];
    run(root, "apt-get", &["update", "-qq"], &envs)
        .and_then(|()| {
            run(
                root,
                "apt-get",
                &["install", "-y", "-qq", "--no-install-recommends", package],
                &envs,
            )
        })
        .map_err(|e| {
            format!("installing `{package}` for `{program}` failed: {e} (are you root?)")
        })?;
    if on_path(program) {
        Ok(())
    } else {
        Err(format!(
            "package `{package}` installed but `{program}` is still not on PATH"
        ))
    }
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative to `root` when relative) or
/// `root/target`.
pub fn target_dir(root: &Path) -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    if target.is_absolute() {
        target
    } else {
        root.join(target)
    }
}

/// `cargo metadata --format-version 1 <args>`, parsed.
pub fn cargo_metadata(root: &Path, args: &[&str]) -> Result<serde_json::Value> {
    let mut all = vec!["metadata", "--format-version", "1"];
    all.extend_from_slice(args);
    let text = output(root, "cargo", &all, &[])?;
    serde_json::from_str(&text).map_err(|e| format!("parsing `cargo metadata`: {e}"))
}

/// The package named `name` in `cargo metadata` output.
pub fn metadata_package<'a>(
    metadata: &'a serde_json::Value,
    name: &str,
) -> Result<&'a serde_json::Value> {
    metadata["packages"]
        .as_array()
        .and_then(|packages| packages.iter().find(|p| p["name"] == name))
        .ok_or_else(|| format!("`cargo metadata` lists no package `{name}`"))
}
