//! `cargo xtask new-platform demo` in a scratch copy of the workspace produces a crate that
//! builds, passes clippy and its own test, and is listed by the registry through the facade.

use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::{scaffold, workspace_root};

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if matches!(name.as_ref(), "target" | ".git" | "node_modules")
            || name.starts_with("target-")
        {
            continue;
        }
        let path = entry.path();
        let dest = to.join(&*name);
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&path, &dest);
        } else if entry.file_type().unwrap().is_file() {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

fn cargo(dir: &Path, target: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO"))
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .expect("running cargo");
    assert!(
        out.status.success(),
        "cargo {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn scaffolded_platform_builds_and_registers() {
    let root = workspace_root();
    let scratch: PathBuf =
        std::env::temp_dir().join(format!("unilogin-scaffold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    copy_tree(&root, &scratch);
    // A target directory of its own (the outer `cargo test` holds the workspace's), kept
    // between runs so that only the scaffolded crates rebuild.
    let target = root.join("target/scaffold-check");

    let created = scaffold::new_platform(&scratch, "demo").expect("scaffolding");
    assert!(created.iter().any(|p| p.ends_with("src/lib.rs")));
    assert!(
        scaffold::new_platform(&scratch, "demo")
            .unwrap_err()
            .contains("already exists")
    );

    let listed = cargo(
        &scratch,
        &target,
        &[
            "run",
            "--quiet",
            "-p",
            "unilogin",
            "--no-default-features",
            "--features",
            "demo",
            "--example",
            "platforms",
        ],
    );
    assert_eq!(listed.lines().collect::<Vec<_>>(), vec!["demo"]);
    cargo(
        &scratch,
        &target,
        &["test", "--quiet", "-p", "unilogin-demo"],
    );
    cargo(
        &scratch,
        &target,
        &[
            "clippy",
            "--quiet",
            "-p",
            "unilogin-demo",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
    );
    std::fs::remove_dir_all(&scratch).unwrap();
}
