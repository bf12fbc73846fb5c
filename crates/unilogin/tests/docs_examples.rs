//! Every YAML example in README.md and docs/ works as written: a tenants document loads through
//! the YAML configuration source with every entry valid (the secrets it references by
//! `env:NAME` are set for the test), and a mapping-rules document compiles for its platform.
//! Blocks of other files' formats (the gateway's own configuration) are tested where that
//! format lives (`crates/gateway/tests/docs.rs`).
//!
//! Run with every platform: `cargo test -p unilogin --features full --test docs_examples`.
#![cfg(all(
    feature = "dingtalk",
    feature = "feishu",
    feature = "wecom",
    feature = "custom-oauth"
))]

use std::path::{Path, PathBuf};

use serde_json::Value;
use unilogin::config::parse_yaml;
use unilogin::{MappingRules, Registry};

fn docs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    for dir in [root.join("docs"), root.join("docs/platforms")] {
        let mut md: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        md.sort();
        files.extend(md);
    }
    files
}

/// The fenced ```yaml blocks of a Markdown text, with their first line numbers.
fn yaml_blocks(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start();
        match &mut current {
            None if fence.starts_with("```yaml") || fence.starts_with("```yml") => {
                current = Some((i + 2, String::new()));
            }
            Some(_) if fence.starts_with("```") => out.extend(current.take()),
            Some((_, body)) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The block with its secret references (`env:NAME`, `file:PATH`) replaced by a plain value:
/// resolving references is tested with the configuration source itself; here the shape of
/// everything else is checked as written.
fn without_secret_refs(block: &str) -> String {
    let mut out = String::with_capacity(block.len());
    let mut rest = block;
    while let Some(i) = rest
        .find("env:")
        .into_iter()
        .chain(rest.find("file:"))
        .min()
    {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| c == '"' || c == '\'' || c.is_whitespace() || c == ',' || c == '}')
            .unwrap_or(tail.len());
        out.push_str("docs-example-secret");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_yaml_example_in_the_docs_works_as_written() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in docs() {
        let text = std::fs::read_to_string(&file).expect("read doc");
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (line, block) in yaml_blocks(&text) {
            let at = format!("{name}:{line}");
            let doc: Value = match serde_saphyr::from_str(&block) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{at}: not YAML: {e}"));
                    continue;
                }
            };
            let Some(top) = doc.as_object() else { continue };
            if top.contains_key("tenants") {
                match parse_yaml(&without_secret_refs(&block), file.parent()) {
                    Err(e) => failures.push(format!("{at}: {e}")),
                    Ok(entries) => {
                        for entry in entries {
                            match entry.config.and_then(|c| c.validate()) {
                                Ok(()) => {}
                                Err(e) => failures.push(format!("{at}: {e}")),
                            }
                        }
                    }
                }
                checked += 1;
            } else if let Some(platform) = top.keys().find(|k| Registry::get(k).is_ok()) {
                // A rules example is a whole rules file or a fragment of one: either way it
                // must apply field by field over the platform's defaults.
                let defaults = Registry::get(platform)
                    .and_then(|r| MappingRules::from_yaml(r.name, r.default_rules));
                match defaults.and_then(|d| d.with_overrides(&top[platform.as_str()])) {
                    Ok(_) => {}
                    Err(e) => failures.push(format!("{at}: rules for {platform}: {e}")),
                }
                checked += 1;
            }
        }
    }
    assert!(
        failures.is_empty(),
        "doc examples that do not work:\n{}",
        failures.join("\n")
    );
    assert!(checked >= 8, "only {checked} YAML examples found");
}
