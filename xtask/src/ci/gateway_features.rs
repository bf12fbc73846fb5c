//! Step "gateway feature combinations": `cargo check -p unilogin-gateway` with the feature sets
//! read from its `[features]` table, and, once it has a `sandbox` feature, proof that a gateway
//! without it does not link the platform fakes.

use std::collections::BTreeSet;
use std::path::Path;

use crate::Result;
use crate::util::{cargo_metadata, metadata_package, output, run as sh};

const GATEWAY: &str = "unilogin-gateway";
const SANDBOX: &str = "sandbox";
const TESTKIT: &str = "unilogin-testkit";

type Features<'a> = BTreeSet<&'a str>;

/// Checks the gateway with each of [`feature_sets`]; with a `sandbox` feature, also that all
/// features but `sandbox` leave out the fakes.
pub fn gateway_features(root: &Path) -> Result {
    let metadata = cargo_metadata(root, &["--no-deps"])?;
    let table = &metadata_package(&metadata, GATEWAY)?["features"];
    let all: Features<'_> = table
        .as_object()
        .into_iter()
        .flat_map(|t| t.keys().map(String::as_str))
        .filter(|f| *f != "default")
        .collect();
    let default: Features<'_> = table["default"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .filter(|f| all.contains(f))
        .collect();
    for (features, labels) in feature_sets(&all, &default) {
        println!("-- gateway with {labels}: [{features}]");
        let mut args = vec!["check", "-p", GATEWAY, "--no-default-features"];
        if !features.is_empty() {
            args.extend(["--features", &features]);
        }
        sh(root, "cargo", &args, &[])?;
    }
    if all.contains(SANDBOX) {
        no_testkit_without_sandbox(root, &but_sandbox(&all))
    } else {
        println!(
            "-- the gateway has no `{SANDBOX}` feature yet: not asserting it can leave out {TESTKIT}"
        );
        Ok(())
    }
}

/// No default features, each feature alone, the default features, the defaults without
/// `sandbox` (when there is one) and all features but `sandbox`: each distinct feature list
/// once, with the labels of the sets that give it.
fn feature_sets(all: &Features<'_>, default: &Features<'_>) -> Vec<(String, String)> {
    let mut sets: Vec<(String, String)> = vec![("no default features".into(), String::new())];
    sets.extend(all.iter().map(|f| (format!("only `{f}`"), f.to_string())));
    sets.push(("default features".into(), join(default.iter())));
    if all.contains(SANDBOX) {
        let label = format!("default features without `{SANDBOX}`");
        sets.push((label, but_sandbox(default)));
    }
    sets.push((format!("all features but `{SANDBOX}`"), but_sandbox(all)));
    merge_equal(sets)
}

/// `cargo tree` of the gateway with `features` (none of them `sandbox`) must not hold the fakes.
fn no_testkit_without_sandbox(root: &Path, features: &str) -> Result {
    println!("-- a gateway without `{SANDBOX}` must not link {TESTKIT}");
    let mut args = vec![
        "tree",
        "-p",
        GATEWAY,
        "--no-default-features",
        "-e",
        "normal",
    ];
    args.extend(["--target", "all", "--prefix", "none", "--format", "{p}"]);
    if !features.is_empty() {
        args.extend(["--features", features]);
    }
    let tree = output(root, "cargo", &args, &[])?;
    if tree
        .lines()
        .any(|l| l.split_whitespace().next() == Some(TESTKIT))
    {
        return Err(format!(
            "{GATEWAY} with features [{features}] (no `{SANDBOX}`) still depends on {TESTKIT}"
        ));
    }
    Ok(())
}

fn but_sandbox(set: &Features<'_>) -> String {
    join(set.iter().filter(|f| **f != SANDBOX))
}

fn join(features: impl Iterator<Item = impl AsRef<str>>) -> String {
    let features: Vec<String> = features.map(|f| f.as_ref().to_string()).collect();
    features.join(",")
}

/// `(features, label)` pairs merged to one entry per distinct feature list, in first-seen
/// order, as `(features, labels)`.
fn merge_equal(sets: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut merged: Vec<(String, String)> = vec![];
    for (label, features) in sets {
        match merged.iter_mut().find(|(f, _)| *f == features) {
            Some((_, labels)) => {
                labels.push_str(", ");
                labels.push_str(&label);
            }
            None => merged.push((features, label)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(sets: Vec<(String, String)>) -> Vec<String> {
        sets.into_iter()
            .map(|(f, l)| format!("{l}: [{f}]"))
            .collect()
    }

    #[test]
    fn sets_without_a_sandbox_feature() {
        let default: Features<'_> = ["a", "b"].into();
        let all: Features<'_> = ["a", "b", "c"].into();
        assert_eq!(
            listed(feature_sets(&all, &default)),
            [
                "no default features: []",
                "only `a`: [a]",
                "only `b`: [b]",
                "only `c`: [c]",
                "default features: [a,b]",
                "all features but `sandbox`: [a,b,c]",
            ]
        );
    }

    #[test]
    fn sets_with_a_sandbox_feature_merge_equal_lists() {
        let default: Features<'_> = ["a", "sandbox"].into();
        let all: Features<'_> = ["a", "sandbox"].into();
        assert_eq!(
            listed(feature_sets(&all, &default)),
            [
                "no default features: []",
                "only `a`, default features without `sandbox`, all features but `sandbox`: [a]",
                "only `sandbox`: [sandbox]",
                "default features: [a,sandbox]",
            ]
        );
    }
}
