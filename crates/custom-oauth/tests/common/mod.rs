//! What both test files use.

use unilogin_core::TenantId;

/// The tenant of every test.
pub fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

/// The fenced YAML block of `docs/platforms/custom-oauth.md` that contains `marker`.
pub fn documented_yaml(marker: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/platforms/custom-oauth.md"
    );
    let doc = std::fs::read_to_string(path).expect("reading the platform docs");
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|block| block.contains(marker))
        .unwrap_or_else(|| panic!("no YAML block with `{marker}` in {path}"))
        .to_string()
}
