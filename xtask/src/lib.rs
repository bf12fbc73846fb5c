//! Library side of `cargo xtask`, so that its pieces can be tested.

pub mod bench;
pub mod ci;
pub mod fuzz;
pub mod sandbox;
pub mod scaffold;
pub mod util;

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Result type of xtask commands: errors are messages for the person at the terminal.
pub type Result<T = ()> = std::result::Result<T, String>;

/// The platform features the facade offers, from `[package.metadata.unilogin] platforms` in
/// `crates/unilogin/Cargo.toml`.
pub fn platform_features(root: &Path) -> Result<Vec<String>> {
    let path = root.join("crates/unilogin/Cargo.toml");
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("parsing {}: {e}", path.display()))?;
    let list = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("unilogin"))
        .and_then(|u| u.get("platforms"))
        .and_then(|p| p.as_array())
        .ok_or("crates/unilogin/Cargo.toml lacks [package.metadata.unilogin] platforms = [...]")?;
    Ok(list
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}
