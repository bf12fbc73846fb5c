//! # The identity-store behaviour suite
//!
//! One suite for every [`IdentityStore`] (the core's memory store, the SQL store on SQLite,
//! PostgreSQL and MariaDB), expanded with [`identity_store_suite!`]: first logins create an
//! account and later logins find it; vouched e-mail and mobile link a second platform's
//! identity (country-code forms agree); unvouched values never link and are never recorded;
//! two matching accounts are refused with [`IdentityError::Ambiguous`] and nothing is written;
//! explicit link, unlink and merge; tenants are isolated; concurrent first logins make one
//! account.
//!
//! [`identity_store_suite!`]: crate::identity_store_suite

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin_core::identity::{
    IdentityClaim, IdentityError, IdentityKey, IdentityStore, LinkRules, LinkTrust, LinkedBy,
    MatchKey,
};
use unilogin_core::mapping::{SubjectKind, UserProfile};
use unilogin_core::{AccountId, Error, TenantId};

/// A store under test.
pub type Store = Arc<dyn IdentityStore>;

fn profile(v: Value) -> UserProfile {
    serde_json::from_value(v).expect("profile")
}

/// A profile of `platform` in `tenant` with `user_id` as subject, plus `fields`.
fn person(tenant: &str, platform: &str, user_id: &str, fields: Value) -> UserProfile {
    let mut v = json!({"platform": platform, "tenant": tenant, "user_id": user_id});
    if let (Value::Object(base), Value::Object(more)) = (&mut v, fields) {
        base.extend(more);
    }
    profile(v)
}

fn trusted() -> LinkRules {
    LinkRules {
        email: LinkTrust::Trusted,
        mobile: LinkTrust::Trusted,
        default_country_code: Some("86".into()),
    }
}

fn t(s: &str) -> TenantId {
    TenantId::new(s).expect("tenant")
}

fn key(p: &UserProfile) -> IdentityKey {
    IdentityKey::of(p)
}

/// A first login creates an account; the next login of the same identity finds it and
/// records the login.
pub async fn first_login_creates_an_account_the_next_finds_it(store: Store) {
    let p = person("acme", "dingtalk", "user001", json!({}));
    assert_eq!(store.find(&key(&p)).await.expect("find"), None);
    let a = store
        .account_for(&p, &LinkRules::default())
        .await
        .expect("first");
    let b = store
        .account_for(&p, &LinkRules::default())
        .await
        .expect("second");
    assert_eq!(a, b);
    assert_eq!(store.find(&key(&p)).await.expect("find"), Some(a.clone()));
    let listed = store.identities(&t("acme"), &a).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, key(&p));
    assert_eq!(listed[0].linked_by, LinkedBy::Created);
    assert!(listed[0].last_login_ms >= listed[0].linked_at_ms && listed[0].linked_at_ms > 0);
}

/// A vouched e-mail address links a second platform's identity to the account, whatever the
/// case and spaces it is written with.
pub async fn a_vouched_email_links_a_second_platform(store: Store) {
    let dt = person(
        "acme",
        "dingtalk",
        "user001",
        json!({"email": "Zhang.San@Example.com"}),
    );
    let a = store.account_for(&dt, &trusted()).await.expect("dingtalk");
    let wc = person(
        "acme",
        "wecom",
        "zhangsan",
        json!({"email": " zhang.san@example.COM "}),
    );
    assert_eq!(store.account_for(&wc, &trusted()).await.expect("wecom"), a);
    let listed = store.identities(&t("acme"), &a).await.expect("list");
    let wecom = listed
        .iter()
        .find(|i| i.key == key(&wc))
        .expect("wecom identity");
    assert_eq!(wecom.linked_by, LinkedBy::Email);
}

/// A vouched mobile links across the ways platforms write it: national number plus a
/// separate country code (DingTalk), the code inside the number (Feishu), a bare number with
/// the tenant's default country code (WeCom).
pub async fn a_vouched_mobile_links_across_country_code_forms(store: Store) {
    let dt = person(
        "acme",
        "dingtalk",
        "user001",
        json!({"mobile": "13800000000", "mobile_country_code": "86"}),
    );
    let a = store.account_for(&dt, &trusted()).await.expect("dingtalk");
    let fs = profile(json!({
        "platform": "feishu", "tenant": "acme", "union_id": "on_1",
        "subject": {"kind": "union_id", "value": "on_1"},
        "mobile": "13800000000", "mobile_country_code": "86"
    }));
    assert_eq!(store.account_for(&fs, &trusted()).await.expect("feishu"), a);
    let wc = person(
        "acme",
        "wecom",
        "zhangsan",
        json!({"mobile": "13800000000"}),
    );
    assert_eq!(store.account_for(&wc, &trusted()).await.expect("wecom"), a);
    let listed = store.identities(&t("acme"), &a).await.expect("list");
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .filter(|i| i.key != key(&dt))
            .all(|i| i.linked_by == LinkedBy::Mobile)
    );
}

/// Values the platform does not vouch for (rule `off`, or `verified` without the platform
/// saying so) neither link nor are recorded for later matches.
pub async fn unvouched_values_never_link_nor_are_recorded(store: Store) {
    let verified_only = LinkRules {
        email: LinkTrust::Verified,
        ..LinkRules::default()
    };
    // An address typed into a provider that did not verify it.
    let lax = person(
        "acme",
        "custom-oauth",
        "attacker",
        json!({"email": "ceo@acme.example", "email_verified": false}),
    );
    let attacker = store.account_for(&lax, &verified_only).await.expect("lax");
    // The real owner's verified address: not pulled into the attacker's account.
    let owner = person(
        "acme",
        "dingtalk",
        "ceo",
        json!({"email": "ceo@acme.example"}),
    );
    let account = store.account_for(&owner, &trusted()).await.expect("owner");
    assert_ne!(account, attacker);
    // Rules off: no link even when the value matches.
    let other = person(
        "acme",
        "wecom",
        "ceo2",
        json!({"email": "ceo@acme.example"}),
    );
    let third = store
        .account_for(&other, &LinkRules::default())
        .await
        .expect("off");
    assert_ne!(third, account);
    // The provider saying `email_verified: true` is what `verified` links by.
    let verified = person(
        "acme",
        "custom-oauth",
        "ceo-oidc",
        json!({"email": "CEO@acme.example", "email_verified": true}),
    );
    assert_eq!(
        store
            .account_for(&verified, &verified_only)
            .await
            .expect("verified"),
        account
    );
}

/// Two accounts share the vouched address: the new identity is refused with a typed error
/// and nothing is written; an e-mail matching one account and a mobile another is refused
/// too.
pub async fn ambiguous_matches_are_refused(store: Store) {
    let shared = json!({"email": "team@acme.example"});
    let a = store
        .account_for(
            &person("acme", "dingtalk", "u1", shared.clone()),
            &trusted(),
        )
        .await
        .expect("a");
    // A second account (no linking), then given the same address through an explicit link.
    let b = store
        .account_for(
            &person("acme", "wecom", "u2", json!({})),
            &LinkRules::default(),
        )
        .await
        .expect("b");
    assert_ne!(a, b);
    let p3 = person("acme", "feishu-like", "u3", shared.clone());
    store
        .link(&b, &IdentityClaim::new(&p3, &trusted()))
        .await
        .expect("explicit link");
    let newcomer = person("acme", "custom-oauth", "u4", shared);
    match store.account_for(&newcomer, &trusted()).await {
        Err(Error::Identity(IdentityError::Ambiguous {
            by: MatchKey::Email,
            accounts: 2,
            ..
        })) => {}
        other => panic!("expected Ambiguous by e-mail, got {other:?}"),
    }
    assert_eq!(
        store.find(&key(&newcomer)).await.expect("find"),
        None,
        "nothing written"
    );
    let e = store
        .account_for(&newcomer, &trusted())
        .await
        .expect_err("still refused");
    assert_eq!(e.kind(), "identity_ambiguous");
    assert!(!e.to_string().contains("team@acme"), "no address in {e}");
    // E-mail of one account, mobile of another.
    let c = store
        .account_for(
            &person(
                "acme",
                "dingtalk",
                "u5",
                json!({"mobile": "13900000000", "mobile_country_code": "86"}),
            ),
            &trusted(),
        )
        .await
        .expect("c");
    let mixed = person(
        "acme",
        "wecom",
        "u6",
        json!({"email": "solo@acme.example", "mobile": "13900000000"}),
    );
    let solo = person(
        "acme",
        "custom-oauth",
        "u7",
        json!({"email": "solo@acme.example"}),
    );
    let d = store.account_for(&solo, &trusted()).await.expect("d");
    assert_ne!(c, d);
    match store.account_for(&mixed, &trusted()).await {
        Err(Error::Identity(IdentityError::Ambiguous {
            by: MatchKey::EmailAndMobile,
            ..
        })) => {}
        other => panic!("expected Ambiguous by e-mail and mobile, got {other:?}"),
    }
}

/// Explicit link (idempotent; refused for an unknown account or an identity linked
/// elsewhere), unlink (returns the account, which stays; refused when not linked).
pub async fn explicit_link_and_unlink(store: Store) {
    let dt = person("acme", "dingtalk", "u1", json!({}));
    let a = store
        .account_for(&dt, &LinkRules::default())
        .await
        .expect("a");
    let wc = person("acme", "wecom", "zhangsan", json!({}));
    let claim = IdentityClaim::new(&wc, &LinkRules::default());
    store.link(&a, &claim).await.expect("link");
    store.link(&a, &claim).await.expect("link again: no change");
    assert_eq!(store.find(&key(&wc)).await.expect("find"), Some(a.clone()));
    assert_eq!(
        store
            .account_for(&wc, &LinkRules::default())
            .await
            .expect("login"),
        a,
        "a linked identity logs into its account"
    );
    let listed = store.identities(&t("acme"), &a).await.expect("list");
    assert_eq!(
        listed
            .iter()
            .find(|i| i.key == key(&wc))
            .map(|i| i.linked_by),
        Some(LinkedBy::Api)
    );
    let unknown = AccountId::new("acc_nobody").expect("id");
    match store.link(&unknown, &claim).await {
        Err(Error::Identity(IdentityError::UnknownAccount { .. })) => {}
        other => panic!("expected UnknownAccount, got {other:?}"),
    }
    let b = store
        .account_for(
            &person("acme", "feishu", "u9", json!({})),
            &LinkRules::default(),
        )
        .await
        .expect("b");
    match store.link(&b, &claim).await {
        Err(Error::Identity(IdentityError::AlreadyLinked { account, .. })) => {
            assert_eq!(account, a)
        }
        other => panic!("expected AlreadyLinked, got {other:?}"),
    }
    assert_eq!(store.unlink(&key(&wc)).await.expect("unlink"), a);
    assert_eq!(store.find(&key(&wc)).await.expect("find"), None);
    match store.unlink(&key(&wc)).await {
        Err(Error::Identity(IdentityError::NotLinked { .. })) => {}
        other => panic!("expected NotLinked, got {other:?}"),
    }
    assert_eq!(store.unlink(&key(&dt)).await.expect("unlink last"), a);
    assert!(
        store
            .identities(&t("acme"), &a)
            .await
            .expect("an account without identities stays")
            .is_empty()
    );
    // Now free, the identity links to b.
    store.link(&b, &claim).await.expect("link to b");
    assert_eq!(store.find(&key(&wc)).await.expect("find"), Some(b));
}

/// Merge moves every identity into the other account and removes the merged one.
pub async fn merge_moves_every_identity(store: Store) {
    let none = LinkRules::default();
    let a1 = person("acme", "dingtalk", "u1", json!({}));
    let a2 = person("acme", "wecom", "w1", json!({}));
    let b1 = person("acme", "feishu", "f1", json!({}));
    let a = store.account_for(&a1, &none).await.expect("a");
    store
        .link(&a, &IdentityClaim::new(&a2, &none))
        .await
        .expect("link");
    let b = store.account_for(&b1, &none).await.expect("b");
    assert_eq!(store.merge(&t("acme"), &a, &b).await.expect("merge"), 2);
    let listed = store.identities(&t("acme"), &b).await.expect("list");
    assert_eq!(listed.len(), 3);
    let mut keys: Vec<IdentityKey> = listed.iter().map(|i| i.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "listed in key order");
    keys.retain(|k| k != &key(&b1));
    assert!(
        listed
            .iter()
            .filter(|i| keys.contains(&i.key))
            .all(|i| i.linked_by == LinkedBy::Merge)
    );
    assert_eq!(store.find(&key(&a1)).await.expect("find"), Some(b.clone()));
    assert_eq!(
        store.account_for(&a2, &none).await.expect("login"),
        b,
        "a merged identity logs into the remaining account"
    );
    match store.identities(&t("acme"), &a).await {
        Err(Error::Identity(IdentityError::UnknownAccount { .. })) => {}
        other => panic!("the merged account is gone, got {other:?}"),
    }
    for (from, into) in [(&b, &b), (&a, &b)] {
        let e = store
            .merge(&t("acme"), from, into)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                e,
                Error::Identity(
                    IdentityError::SameAccount { .. } | IdentityError::UnknownAccount { .. }
                )
            ),
            "{e:?}"
        );
    }
}

/// Tenants never share accounts: the same subject, the same address, an account id of
/// another tenant.
pub async fn tenants_are_isolated(store: Store) {
    let acme = person("acme", "dingtalk", "u1", json!({"email": "x@example.com"}));
    let globex = person(
        "globex",
        "dingtalk",
        "u1",
        json!({"email": "x@example.com"}),
    );
    let a = store.account_for(&acme, &trusted()).await.expect("acme");
    let g = store
        .account_for(&globex, &trusted())
        .await
        .expect("globex");
    assert_ne!(a, g);
    let other = person("globex", "wecom", "u2", json!({}));
    match store
        .link(&a, &IdentityClaim::new(&other, &LinkRules::default()))
        .await
    {
        Err(Error::Identity(IdentityError::UnknownAccount { .. })) => {}
        other => panic!("expected UnknownAccount across tenants, got {other:?}"),
    }
    assert!(store.merge(&t("globex"), &a, &g).await.is_err());
    assert!(store.identities(&t("globex"), &a).await.is_err());
}

/// The subject kind is part of the identity: the same value as `user_id` and as `union_id`
/// are two identities.
pub async fn subject_kinds_are_distinct_identities(store: Store) {
    let as_user = person("acme", "dingtalk", "same", json!({}));
    let as_union = profile(json!({
        "platform": "dingtalk", "tenant": "acme", "union_id": "same",
        "subject": {"kind": "union_id", "value": "same"}
    }));
    assert_eq!(as_union.subject.kind, SubjectKind::UnionId);
    let a = store
        .account_for(&as_user, &LinkRules::default())
        .await
        .expect("user_id");
    let b = store
        .account_for(&as_union, &LinkRules::default())
        .await
        .expect("union_id");
    assert_ne!(a, b);
}

/// Concurrent first logins of one identity end with one account.
pub async fn concurrent_first_logins_make_one_account(store: Store) {
    let p = person("acme", "dingtalk", "racer", json!({}));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, p) = (store.clone(), p.clone());
        tasks.push(tokio::spawn(async move {
            store.account_for(&p, &LinkRules::default()).await
        }));
    }
    let mut accounts = Vec::new();
    for t in tasks {
        accounts.push(t.await.expect("task").expect("login"));
    }
    accounts.dedup();
    assert_eq!(accounts.len(), 1, "{accounts:?}");
}

/// Expands the suite for a store: `identity_store_suite!(make_store);` where `make_store` is
/// an `async fn() -> Store` returning an empty store.
#[macro_export]
macro_rules! identity_store_suite {
    ($make:path) => {
        $crate::identity_store_suite!(@cases $make;
            first_login_creates_an_account_the_next_finds_it,
            a_vouched_email_links_a_second_platform,
            a_vouched_mobile_links_across_country_code_forms,
            unvouched_values_never_link_nor_are_recorded,
            ambiguous_matches_are_refused,
            explicit_link_and_unlink,
            merge_moves_every_identity,
            tenants_are_isolated,
            subject_kinds_are_distinct_identities,
            concurrent_first_logins_make_one_account,
        );
    };
    (@cases $make:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::identity::$case($make().await).await;
            }
        )*
    };
}
