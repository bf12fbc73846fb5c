//! Step "the declared MSRV builds": with a toolchain of the declared `rust-version` when one is
//! installed, otherwise the checks that need none.

use std::path::Path;

use crate::Result;
use crate::util::{cargo_metadata, on_path, output, run as sh};

/// A Rust version as `(major, minor, patch)`; `1.94` is `1.94.0`.
type Version = (u64, u64, u64);

/// Compiles the workspace with the toolchain of the root's `workspace.package.rust-version`
/// when rustup has one; otherwise checks that no resolved package needs a newer Rust.
pub fn msrv(root: &Path) -> Result {
    let declared = declared_rust_version(root)?;
    let ours = parse_version(&declared)?;
    if let Some(toolchain) = installed_toolchain(root, ours)? {
        println!("-- toolchain `{toolchain}` matches rust-version {declared}: checking with it");
        let args = [
            "run",
            &toolchain,
            "cargo",
            "check",
            "--workspace",
            "--all-targets",
        ];
        return sh(root, "rustup", &args, &[]);
    }
    println!(
        "-- no toolchain {declared} is installed: checking what needs none\n\
         -- (a) every package of the resolved graph (all features, targets, platforms) declares a rust-version <= {declared}"
    );
    dependencies_within(root, &declared, ours)?;
    println!(
        "-- (b) not run: cargo's resolver.incompatible-rust-versions takes only \"allow\" or \"fallback\" \
         (no \"deny\"), which steer the choice of new versions; Cargo.lock pins the graph (a) checked\n\
         -- not verified without the toolchain: language features newer than {declared} \
         (std APIs newer than it fail the clippy step, clippy::incompatible_msrv)"
    );
    Ok(())
}

/// `workspace.package.rust-version` of the root `Cargo.toml`.
fn declared_rust_version(root: &Path) -> Result<String> {
    let path = root.join("Cargo.toml");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("parsing {}: {e}", path.display()))?;
    doc["workspace"]["package"]["rust-version"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "the root Cargo.toml declares no workspace.package.rust-version".into())
}

fn parse_version(text: &str) -> Result<Version> {
    let parts: Vec<u64> = text
        .split('.')
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("`{text}` is not a Rust version"))?;
    match parts[..] {
        [major, minor] => Ok((major, minor, 0)),
        [major, minor, patch] => Ok((major, minor, patch)),
        _ => Err(format!("`{text}` is not a Rust version")),
    }
}

/// A rustup toolchain named by version (`1.94`, `1.94.1-x86_64-unknown-linux-gnu`) with our
/// major and minor version and at least our patch version.
fn installed_toolchain(root: &Path, ours: Version) -> Result<Option<String>> {
    if !on_path("rustup") {
        return Ok(None);
    }
    let list = output(root, "rustup", &["toolchain", "list"], &[])?;
    Ok(list
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .find(|name| toolchain_matches(name, ours))
        .map(str::to_string))
}

fn toolchain_matches(name: &str, ours: Version) -> bool {
    let version = name.split('-').next().unwrap_or_default();
    parse_version(version).is_ok_and(|v| v.0 == ours.0 && v.1 == ours.1 && v.2 >= ours.2)
}

/// Fails, naming them, when packages of the resolved graph declare a newer `rust-version`.
fn dependencies_within(root: &Path, declared: &str, ours: Version) -> Result {
    let metadata = cargo_metadata(root, &["--all-features"])?;
    let packages = metadata["packages"].as_array().map(Vec::as_slice);
    let packages = packages.unwrap_or_default();
    let mut undeclared = 0;
    let mut newer = vec![];
    for package in packages {
        let Some(theirs) = package["rust_version"].as_str() else {
            undeclared += 1;
            continue;
        };
        if parse_version(theirs)? > ours {
            let (name, version) = (&package["name"], &package["version"]);
            newer.push(format!(
                "{} {} (rust-version {theirs})",
                str_of(name),
                str_of(version)
            ));
        }
    }
    println!(
        "   {} packages resolved, {undeclared} of them declare no rust-version",
        packages.len()
    );
    if newer.is_empty() {
        return Ok(());
    }
    newer.sort();
    Err(format!(
        "these packages need a newer Rust than the declared rust-version {declared}: {}; \
         raise `rust-version` in the root Cargo.toml (or hold the dependency back)",
        newer.join(", ")
    ))
}

fn str_of(value: &serde_json::Value) -> &str {
    value.as_str().unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_toolchain_names() {
        assert_eq!(parse_version("1.94"), Ok((1, 94, 0)));
        assert_eq!(parse_version("1.94.1"), Ok((1, 94, 1)));
        assert!(parse_version("1").is_err() && parse_version("1.x").is_err());
        assert!(toolchain_matches(
            "1.94.0-x86_64-unknown-linux-gnu",
            (1, 94, 0)
        ));
        assert!(toolchain_matches("1.94", (1, 94, 0)));
        assert!(!toolchain_matches("1.94.0", (1, 94, 1)));
        assert!(!toolchain_matches(
            "1.95.0-x86_64-unknown-linux-gnu",
            (1, 94, 0)
        ));
        assert!(!toolchain_matches(
            "stable-x86_64-unknown-linux-gnu",
            (1, 94, 0)
        ));
        assert!(!toolchain_matches("nightly-2026-01-01", (1, 94, 0)));
    }
}
