//! The identity claim (what is vouched for), the first-login decision and the memory store.

use serde_json::json;

use super::*;

fn profile(v: serde_json::Value) -> UserProfile {
    serde_json::from_value(v).unwrap()
}

fn rules(email: LinkTrust, mobile: LinkTrust) -> LinkRules {
    LinkRules {
        email,
        mobile,
        default_country_code: None,
    }
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

#[test]
fn only_vouched_values_are_claimed() {
    let p = profile(json!({
        "platform": "custom-oauth", "tenant": "acme", "user_id": "u1",
        "email": " Zhang@Example.COM ", "email_verified": true,
        "mobile": "13800000000", "mobile_country_code": "86", "mobile_verified": false
    }));
    let off = IdentityClaim::new(&p, &LinkRules::default());
    assert_eq!((off.email, off.mobile), (None, None), "off by default");
    let verified = IdentityClaim::new(&p, &rules(LinkTrust::Verified, LinkTrust::Verified));
    assert_eq!(verified.email.as_deref(), Some("zhang@example.com"));
    assert_eq!(verified.mobile, None, "mobile_verified is false");
    let trusted = IdentityClaim::new(&p, &rules(LinkTrust::Off, LinkTrust::Trusted));
    assert_eq!(trusted.email, None);
    assert_eq!(trusted.mobile.as_deref(), Some("+8613800000000"));
    // Verified needs the platform to say so: unknown is not verified.
    let silent = profile(json!({
        "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "email": "a@b.example"
    }));
    let c = IdentityClaim::new(&silent, &rules(LinkTrust::Verified, LinkTrust::Off));
    assert_eq!(c.email, None);
}

#[test]
fn bare_mobiles_take_the_default_country_code() {
    let wecom = profile(json!({
        "platform": "wecom", "tenant": "acme", "user_id": "zhangsan", "mobile": "13800000000"
    }));
    let mut r = rules(LinkTrust::Off, LinkTrust::Trusted);
    assert_eq!(
        IdentityClaim::new(&wecom, &r).mobile.as_deref(),
        Some("13800000000")
    );
    r.default_country_code = Some("+86".into());
    assert_eq!(
        IdentityClaim::new(&wecom, &r).mobile.as_deref(),
        Some("+8613800000000")
    );
}

#[test]
fn policy_validation_names_the_problem() {
    let mut p = IdentityPolicy::default();
    assert!(p.validate().is_ok());
    p.link.default_country_code = Some("China".into());
    assert!(p.validate().unwrap_err().contains("China"));
    let e = serde_json::from_value::<IdentityPolicy>(json!({"link": {"email": "always"}}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("always"), "{e}");
    let e = serde_json::from_value::<IdentityPolicy>(json!({"subject": "email"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("email"), "{e}");
}

#[test]
fn first_logins_link_one_match_and_refuse_several() {
    let claim = IdentityClaim::new(
        &profile(json!({"platform": "wecom", "tenant": "acme", "user_id": "u1"})),
        &LinkRules::default(),
    );
    let a = AccountId::new("acc_a").unwrap();
    let b = AccountId::new("acc_b").unwrap();
    assert_eq!(
        first_login(&claim, &[], &[b.clone(), b.clone()]).unwrap(),
        FirstLogin::Link(b.clone(), LinkedBy::Mobile),
        "duplicates of one account are one match"
    );
    for (email, mobile, by) in [
        (vec![a.clone(), b.clone()], vec![], MatchKey::Email),
        (vec![], vec![a.clone(), b.clone()], MatchKey::Mobile),
        (vec![a.clone()], vec![b.clone()], MatchKey::EmailAndMobile),
    ] {
        match first_login(&claim, &email, &mobile) {
            Err(Error::Identity(IdentityError::Ambiguous {
                by: got, accounts, ..
            })) => {
                assert_eq!(got, by);
                assert_eq!(accounts, 2);
            }
            other => panic!("{by:?}: {other:?}"),
        }
    }
}

#[test]
fn errors_are_typed_and_name_no_contact_data() {
    let e = Error::from(IdentityError::Ambiguous {
        tenant: acme(),
        platform: PlatformName::new("wecom").unwrap(),
        by: MatchKey::Email,
        accounts: 2,
    });
    assert_eq!(e.kind(), "identity_ambiguous");
    let text = e.to_string();
    assert!(
        text.contains("acme") && text.contains("2 accounts"),
        "{text}"
    );
}

#[test]
fn account_ids_are_fresh_and_valid() {
    let a = new_account_id().unwrap();
    let b = new_account_id().unwrap();
    assert_ne!(a, b);
    assert!(a.as_str().starts_with("acc_") && a.as_str().len() == 36);
}
