//! WeCom's error table ([`unilogin_wecom::classify`]).

use unilogin_core::{ErrorClass, UpstreamCode};
use unilogin_wecom::classify;

fn class(n: i64) -> ErrorClass {
    classify(&UpstreamCode::Number(n))
}

fn hint(n: i64) -> &'static str {
    match class(n) {
        ErrorClass::Misconfigured(h) => h,
        other => panic!("{n}: {other:?}"),
    }
}

#[test]
fn every_reference_code_is_classified() {
    for n in [40014, 42001, 40001] {
        assert_eq!(class(n), ErrorClass::TokenInvalid, "{n}");
    }
    for n in [45009, 45033] {
        assert_eq!(class(n), ErrorClass::RateLimited, "{n}");
    }
    for n in [40029, 84014, 84015] {
        assert_eq!(class(n), ErrorClass::InvalidCode, "{n}");
    }
    assert!(hint(60020).contains("trusted IP"));
    assert!(hint(50001).contains("trusted domain"));
    assert!(hint(40013).contains("corp_id"));
    assert!(hint(40091).contains("app_secret"));
    assert!(hint(48002).contains("permissions"));
    assert!(hint(60011).contains("visible range"));
    assert!(hint(50002).contains("visible range"));
    assert_eq!(class(60111), ErrorClass::NotInTenant);
    assert_eq!(class(-1), ErrorClass::Transient);
    assert_eq!(class(41001), ErrorClass::Other);
    assert_eq!(class(84025), ErrorClass::Other);
    assert_eq!(classify(&UpstreamCode::Http(502)), ErrorClass::Transient);
    assert_eq!(classify(&UpstreamCode::Http(429)), ErrorClass::RateLimited);
}
