//! The registry holds exactly the platforms whose features are enabled.
//!
//! `cargo xtask ci` builds the facade alone with each feature set and sets
//! `UNILOGIN_EXPECT_PLATFORMS` to the platforms that must be registered (comma-separated).
//! Without it (a plain `cargo test --workspace`, where Cargo may unify features across
//! members) the test checks what holds regardless: every registered name resolves.

use unilogin::Error;
use unilogin::Registry;

#[test]
fn registry_holds_exactly_the_enabled_platforms() {
    let names = Registry::names();
    if let Ok(expected) = std::env::var("UNILOGIN_EXPECT_PLATFORMS") {
        let mut expected: Vec<&str> = expected.split(',').filter(|s| !s.is_empty()).collect();
        expected.sort_unstable();
        assert_eq!(
            names, expected,
            "registered platforms differ from the enabled features"
        );
    }
    for name in &names {
        assert_eq!(Registry::get(name).unwrap().name, *name);
        assert_eq!(Registry::get(&name.to_uppercase()).unwrap().name, *name);
    }
}

#[test]
fn unknown_platform_names_the_registered_ones() {
    let err = Registry::get("alipay").unwrap_err();
    match &err {
        Error::UnknownPlatform { name, registered } => {
            assert_eq!(name, "alipay");
            assert_eq!(registered, &Registry::names());
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with("unknown platform `alipay`; registered platforms: [")
    );
}
