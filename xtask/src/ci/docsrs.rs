//! Step "docs as docs.rs builds them": `cargo doc --no-deps` of each published library crate
//! with its `[package.metadata.docs.rs]` features and rustdoc args, `--cfg docsrs` and
//! `-D warnings`.

use std::path::Path;

use serde_json::Value;

use crate::Result;
use crate::util::{cargo_metadata, metadata_package, run as sh, target_dir};

/// The facade; it and the workspace crates it depends on are what we publish as libraries.
const FACADE: &str = "unilogin";

/// Documents the facade and every workspace crate it depends on, each alone as docs.rs does.
///
/// `#![cfg_attr(docsrs, feature(doc_cfg))]` needs a nightly rustdoc; only stable is installed,
/// so rustdoc runs with `RUSTC_BOOTSTRAP=1`. Build scripts (proc-macro2, thiserror) rerun when
/// `RUSTC_BOOTSTRAP` changes, so this step uses its own target directory rather than
/// invalidating the main build's.
pub fn docs(root: &Path) -> Result {
    let metadata = cargo_metadata(root, &["--no-deps"])?;
    let target = target_dir(root).join("docsrs");
    let target = target.to_string_lossy();
    for package in published_libraries(&metadata)? {
        let docs_rs = &metadata_package(&metadata, package)?["metadata"]["docs"]["rs"];
        let mut args = vec!["doc", "--no-deps", "-p", package, "--target-dir", &target];
        args.extend(feature_args(docs_rs));
        let features = docs_rs["features"].as_array().map(|f| join_strings(f, ","));
        if let Some(features) = &features {
            args.extend(["--features", features]);
        }
        let rustdocflags = rustdoc_flags(docs_rs);
        println!("  with RUSTDOCFLAGS=\"{rustdocflags}\" RUSTC_BOOTSTRAP=1");
        sh(
            root,
            "cargo",
            &args,
            &[("RUSTDOCFLAGS", &rustdocflags), ("RUSTC_BOOTSTRAP", "1")],
        )?;
    }
    Ok(())
}

/// The facade and its (non-dev) dependencies that are workspace path crates.
fn published_libraries(metadata: &Value) -> Result<Vec<&str>> {
    let facade = metadata_package(metadata, FACADE)?;
    let mut list = vec![FACADE];
    for dep in facade["dependencies"].as_array().into_iter().flatten() {
        if dep["path"].is_string() && dep["kind"].is_null() {
            list.extend(dep["name"].as_str());
        }
    }
    Ok(list)
}

/// `--all-features` / `--no-default-features` as `[package.metadata.docs.rs]` asks.
fn feature_args(docs_rs: &Value) -> Vec<&'static str> {
    let mut args = vec![];
    if docs_rs["all-features"] == true {
        args.push("--all-features");
    }
    if docs_rs["no-default-features"] == true {
        args.push("--no-default-features");
    }
    args
}

/// docs.rs passes `--cfg docsrs` and the crate's `rustdoc-args` (a repeated `--cfg` is
/// harmless); CI also denies warnings.
fn rustdoc_flags(docs_rs: &Value) -> String {
    let extra = docs_rs["rustdoc-args"].as_array().map(Vec::as_slice);
    format!(
        "--cfg docsrs -D warnings {}",
        join_strings(extra.unwrap_or_default(), " ")
    )
    .trim_end()
    .to_string()
}

fn join_strings(values: &[Value], sep: &str) -> String {
    values
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(sep)
}
