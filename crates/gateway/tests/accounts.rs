//! Account linking through the gateway: with an identity store (real SQLite here), every
//! session names the person's stable unilogin account.

mod support;

use std::sync::Arc;

use serde_json::Value;
use support::start_with;
use unilogin::sql::SqlIdentityStore;
use unilogin_testkit::FakePlatform as _;

async fn account_of(gw: &support::TestGateway, token: &str) -> Option<String> {
    let me: Value = gw.me(token).await.json().await.unwrap();
    me["account"].as_str().map(str::to_string)
}

#[tokio::test]
async fn sessions_carry_one_stable_account_per_person() {
    let dir = std::env::temp_dir().join(format!("unilogin-accounts-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = SqlIdentityStore::sqlite(dir.join("accounts.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let store = Arc::new(store);
    let gw = start_with("", None, move |b| b.identity_store(store)).await;

    let first = gw.pc_login("demo", "user001").await;
    let again = gw.pc_login("demo", "user001").await;
    let other = gw.pc_login("demo", "user002").await;
    let a = account_of(&gw, &first).await.expect("an account claim");
    assert_eq!(account_of(&gw, &again).await.as_deref(), Some(a.as_str()));
    let b = account_of(&gw, &other).await.expect("an account claim");
    assert_ne!(a, b, "two people, two accounts");
    // The H5 exchange links to the same account as the web login.
    let code = gw.fake.issue_h5_code("user001");
    let r: Value = gw.post_code("demo", &code).await.json().await.unwrap();
    let token = r["token"].as_str().unwrap();
    assert_eq!(account_of(&gw, token).await.as_deref(), Some(a.as_str()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn without_a_store_sessions_name_no_account() {
    let gw = start_with("", None, |b| b).await;
    let token = gw.pc_login("demo", "user001").await;
    assert_eq!(account_of(&gw, &token).await, None);
}
