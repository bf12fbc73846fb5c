//! `cargo xtask new-platform acme-chat` in a scratch copy of the workspace generates a platform of
//! the workspace's layout (crate on the platform SDK, fake on the test kit's skeleton,
//! conformance wiring, facade feature, example) that builds, is clippy- and rustfmt-clean,
//! documents without warnings, and passes: its own tests against its fake, the whole
//! conformance suite, the facade's registry listing and the example.
//!
//! Speed and safety: the copy builds in the workspace's own target directory, so registry
//! dependencies are never rebuilt. Cargo names a path crate's artifacts by its path inside the
//! workspace, so the copy's crates would share them with the workspace's (and the fingerprints
//! would then watch the copy's files): the copy gets a version of its own, which gives its
//! crates artifacts of their own. It lives at a fixed place and keeps the sources' modification
//! times, so after the first run only what the generator adds or edits is compiled again. It
//! is removed afterwards, also when the test fails.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Instant, SystemTime};

use xtask::{scaffold, util, workspace_root};

/// Copies `from` to `to` without build outputs and VCS data, keeping modification times.
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
        let (path, dest) = (entry.path(), to.join(&*name));
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&path, &dest);
        } else if kind.is_file() {
            std::fs::copy(&path, &dest).unwrap();
            let modified = entry.metadata().and_then(|m| m.modified());
            let modified = modified.unwrap_or_else(|_| SystemTime::now());
            let file = std::fs::File::options().write(true).open(&dest).unwrap();
            file.set_modified(modified).unwrap();
        }
    }
}

/// `program args` in `dir`, building into `target`; its standard output. Fails the test with
/// both outputs when the command fails.
fn run(dir: &Path, target: &Path, program: &str, args: &[&str], envs: &[(&str, &str)]) -> String {
    let started = Instant::now();
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .envs(envs.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{program} {} ({:.1?})", args.join(" "), started.elapsed());
    String::from_utf8(out.stdout).unwrap()
}

/// Removes the scratch copy when dropped: its artifacts stay, its fingerprints then refer to
/// missing files (which only means "rebuild" should a later run find them different).
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_generated_platform_builds_and_passes_the_conformance_suite() {
    let started = Instant::now();
    let root = workspace_root();
    let target = util::target_dir(&root);
    let scratch: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("new-platform");
    let _ = std::fs::remove_dir_all(&scratch);
    copy_tree(&root, &scratch);
    let _cleanup = Cleanup(scratch.clone());
    // The copy's own version, for the workspace and the requirements on its crates.
    let manifest = scratch.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let bumped = text.replace("version = \"0.1.0\"", "version = \"0.1.0-scaffold\"");
    std::fs::write(&manifest, bumped).unwrap();

    let written = scaffold::new_platform(&scratch, "acme-chat").expect("scaffolding");
    for file in [
        "crates/acme-chat/src/lib.rs",
        "crates/acme-chat/src/api.rs",
        "crates/acme-chat/src/error.rs",
        "crates/acme-chat/tests/acme_chat.rs",
        "crates/testkit/src/acme_chat/mod.rs",
        "tests/tests/acme_chat.rs",
        "crates/unilogin/examples/acme_chat_login.rs",
        "docs/platforms/acme-chat.md",
        "crates/unilogin/Cargo.toml",
    ] {
        assert!(written.contains(&scratch.join(file)), "{file} not written");
    }
    let again = scaffold::new_platform(&scratch, "acme-chat").unwrap_err();
    assert!(again.contains("already exists"), "{again}");
    let lines: usize = ["lib.rs", "api.rs", "error.rs"]
        .iter()
        .map(|f| std::fs::read_to_string(scratch.join("crates/acme-chat/src").join(f)).unwrap())
        .map(|text| text.lines().count())
        .sum();
    assert!(lines <= 450, "crates/acme-chat/src has {lines} lines");
    let workspace = std::fs::read_to_string(scratch.join("Cargo.toml")).unwrap();
    let dependency =
        r#"unilogin-acme-chat = { path = "crates/acme-chat", version = "0.1.0-scaffold" }"#;
    assert!(workspace.contains(dependency), "{workspace}");
    println!("scaffolded in {:.1?}", started.elapsed());

    let sh = |command: &str, envs: &[(&str, &str)]| {
        let mut words = command.split_whitespace();
        let program = match words.next() {
            Some("cargo") => env!("CARGO"),
            other => other.expect("a command"),
        };
        let args: Vec<&str> = words.collect();
        run(&scratch, &target, program, &args, envs)
    };
    // Each file with the modules it declares.
    sh(
        "rustfmt --edition 2024 --check crates/acme-chat/src/lib.rs \
         crates/acme-chat/tests/acme_chat.rs crates/testkit/src/acme_chat/mod.rs \
         tests/tests/acme_chat.rs crates/unilogin/examples/acme_chat_login.rs",
        &[],
    );
    // The crate's own tests and the whole conformance suite, against the generated fake.
    sh(
        "cargo test -p unilogin-acme-chat -p unilogin-conformance --test acme_chat",
        &[],
    );
    sh(
        "cargo clippy -p unilogin-acme-chat -p unilogin-testkit -p unilogin-conformance \
         -p unilogin --features unilogin/acme-chat --all-targets -- -D warnings",
        &[],
    );
    sh(
        "cargo doc --no-deps -p unilogin-acme-chat -p unilogin-testkit",
        &[("RUSTDOCFLAGS", "-D warnings")],
    );
    // The facade's feature registers exactly the platform; its example logs in both ways.
    let listed = sh(
        "cargo run --quiet -p unilogin --no-default-features --features acme-chat \
         --example platforms",
        &[],
    );
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["acme-chat"]);
    let example = sh(
        "cargo run --quiet -p unilogin --features acme-chat --example acme_chat_login",
        &[],
    );
    assert!(example.contains("\"user_id\": \"user001\""), "{example}");
    assert!(example.contains("web login: user002"), "{example}");

    println!("new-platform check: {:.1?} in all", started.elapsed());
}
