//! The installation lifecycle of a store app (issue #22), with the tenants in SQL: an
//! organisation installing the suite gets its own entry written from the app entry (its
//! permanent code encrypted), its people log in; uninstalling disables the entry, evicts its
//! token and ends its sessions. The app entry itself logs no one in.

mod config_support;

use std::time::Duration;

use config_support::db::{self, Kind};
use config_support::{GENEROUS_LIMITS, Served, TempDir, eventually, serve};
use serde_json::{Value, json};
use unilogin::sql::{
    EventInput, NewConfig, SecretCipher, SecretInput, SqlConfigStore, StoredSecret,
};
use unilogin::{AppKey, AppSecret, PlatformName, TenantId};
use unilogin_testkit::dingtalk::{self, FakeDingTalk, FakeSuite};
use unilogin_testkit::{FakePlatform as _, FakeUser};

const SUITE_KEY: &str = "suitelifecycle01";
const SUITE_SECRET: &str = "fake_dt_suite_secret_lifecycle";
const APP_TENANT: &str = "acme-store";
const ORG: &str = "dinglifecycleorg1";
const USER: &str = "lifecycle_user";
const WITHIN: Duration = Duration::from_secs(10);

fn key_spec() -> String {
    format!("k1:{}", "ab".repeat(32))
}

/// A fresh SQLite configuration store holding one store app's **app entry** (`mode: isv`, no
/// organisation): `tenant`'s `platform` entry with the app's key and secret, every host in
/// `hosts` at the fake's `base`, the push credentials `creds`; and a gateway serving that store
/// (polled every 100 ms). Returns the store, the gateway and the directory of the key file.
async fn app_entry_gateway(
    tenant: &str,
    platform: &str,
    (key, secret): (&str, &str),
    (base, hosts): (&str, &[&str]),
    creds: &unilogin_testkit::events::EventCredentials,
) -> (SqlConfigStore, Served, TempDir) {
    let dir = TempDir::new(&format!("store-lifecycle-{platform}"));
    let url = db::fresh_database(Kind::Sqlite).await;
    let store = SqlConfigStore::connect(&url, SecretCipher::parse(&key_spec()).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut row = NewConfig::new(
        TenantId::new(tenant).unwrap(),
        PlatformName::new(platform).unwrap(),
        AppKey::new(key).unwrap(),
        SecretInput::Value(AppSecret::new(secret)),
    );
    row.mode = Some("isv".into());
    for host in hosts {
        row.hosts
            .insert((*host).into(), url::Url::parse(base).unwrap());
    }
    row.redirect_uris = vec!["https://app.acme.example/after".into()];
    row.events = Some(EventInput {
        token: Some(SecretInput::Value(AppSecret::new(creds.token.clone()))),
        key: creds
            .aes_key
            .clone()
            .map(|k| SecretInput::Value(AppSecret::new(k))),
        receiver_id: Some(creds.receiver_id.clone()),
    });
    store.create(row, "test").await.unwrap();
    let keys = dir.write("secret-keys", &key_spec());
    let yaml = format!(
        "tenants_database: {{url: '{url}', secret_keys: 'file:{keys}'}}\n\
         reload: {{poll_ms: 100, full_secs: 0}}\n{GENEROUS_LIMITS}",
        keys = keys.display(),
    );
    let served = serve(&yaml).await;
    (store, served, dir)
}

async fn code_login(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    fake: &FakeDingTalk,
) -> (u16, Value) {
    let r = http
        .post(format!("{base}auth/{tenant}/dingtalk/code"))
        .json(&json!({ "code": fake.issue_h5_code(USER) }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installation_writes_the_entry_and_uninstallation_closes_it() {
    let fake = dingtalk::start().await;
    fake.add_suite(FakeSuite::new(SUITE_KEY, SUITE_SECRET, "90077"));
    fake.add_user(FakeUser::new(USER).name(USER).in_org(ORG));
    let creds = fake.event_credentials_for(SUITE_KEY);
    let (store, served, _dir) = app_entry_gateway(
        APP_TENANT,
        "dingtalk",
        (SUITE_KEY, SUITE_SECRET),
        (fake.base_url(), &["oapi", "api", "login"]),
        &creds,
    )
    .await;
    let platform = PlatformName::new("dingtalk").unwrap();
    let gateway = served.url("");
    let events = served.url(&format!("events/{APP_TENANT}/dingtalk"));
    let (delivery, _) = fake.push_suite_ticket(SUITE_KEY, &events).await.unwrap();
    assert!(delivery.accepted(), "{:?}", delivery.verdict);

    // The app entry logs no one in, whether or not the pushed ticket has been stored yet.
    let (status, body) = code_login(&served.http, &gateway, APP_TENANT, &fake).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "unsupported", "{body}");

    // Installation: the organisation's entry is written, the permanent code encrypted.
    let d = fake
        .push_install(SUITE_KEY, ORG, &events, None)
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let org_tenant = TenantId::new(format!("{APP_TENANT}-{ORG}")).unwrap();
    let written = written(
        &store,
        &org_tenant,
        &platform,
        "the organisation's entry is written",
    )
    .await;
    assert_eq!(written.corp_id.as_deref(), Some(ORG));
    assert_eq!(written.mode.as_deref(), Some("isv"));
    assert_eq!(written.app_key, SUITE_KEY);
    assert_eq!(written.agent_id.as_deref(), Some("200001"));
    assert!(
        matches!(written.permanent_code, Some(StoredSecret::Encrypted { .. })),
        "{written:?}"
    );
    assert!(written.events.is_none(), "the pushes stay the app entry's");
    let audit = store
        .audit(&unilogin::sql::AuditQuery {
            tenants: Some(vec![org_tenant.clone()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit[0].actor, "store-app-installation");
    assert!(!format!("{audit:?}").contains("fake_dt_permanent_"));

    // Its people log in.
    eventually(
        WITHIN,
        "the installed organisation's login works",
        || async {
            let (status, _) = code_login(&served.http, &gateway, org_tenant.as_str(), &fake).await;
            status == 200
        },
    )
    .await;
    let (status, body) = code_login(&served.http, &gateway, org_tenant.as_str(), &fake).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().unwrap().to_string();
    let me = |token: String| {
        let http = served.http.clone();
        let url = served.url("me");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(token.clone()).await, 200);

    // Uninstallation: the entry is disabled, its session ends, its logins are refused.
    let d = fake.push_uninstall(SUITE_KEY, ORG, &events).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    eventually(WITHIN, "the organisation's entry is disabled", || async {
        !store
            .get(&org_tenant, &platform)
            .await
            .unwrap()
            .unwrap()
            .enabled
    })
    .await;
    eventually(WITHIN, "the organisation's session is revoked", || {
        let status = me(token.clone());
        async move { status.await == 401 }
    })
    .await;
    let (status, body) = code_login(&served.http, &gateway, org_tenant.as_str(), &fake).await;
    assert!((400..500).contains(&status), "{status} {body}");

    // A re-installation enables the entry again.
    let d = fake
        .push_install(SUITE_KEY, ORG, &events, None)
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    eventually(WITHIN, "the entry is enabled again", || async {
        store
            .get(&org_tenant, &platform)
            .await
            .unwrap()
            .unwrap()
            .enabled
    })
    .await;
}

/// WeCom: `create_auth` on the suite's app entry is redeemed (`get_permanent_code`) and the
/// authorising corp's entry written with the permanent code encrypted; its member then logs in
/// through the `ServiceApp` web login, with the corp token the stored permanent code buys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wecom_authorisation_is_redeemed_and_its_permanent_code_stored_encrypted() {
    use unilogin_testkit::wecom::{self, isv::FakeSuite};
    const SUITE: &str = "wwsuitelifecycle1";
    const CORP: &str = "wwlifecyclecorp1";
    const MEMBER: &str = "wecom_member_1";
    let fake = wecom::start().await;
    fake.add_suite(FakeSuite::new(SUITE, "wecom_suite_secret_lifecycle"));
    fake.add_user(FakeUser::new(MEMBER).name(MEMBER).in_org(CORP));
    let creds = fake.suite_event_credentials(SUITE);
    let (store, served, _dir) = app_entry_gateway(
        "suite",
        "wecom",
        (SUITE, "wecom_suite_secret_lifecycle"),
        (fake.base_url(), &["qyapi", "oauth", "login", "open"]),
        &creds,
    )
    .await;
    let platform = PlatformName::new("wecom").unwrap();
    // The app entry's (and so the corp entry's) allowed return URL.
    let home = "https://app.acme.example/after";
    let events = served.url("events/suite/wecom");
    let (d, _) = fake.push_suite_ticket(SUITE, &events).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let d = fake.push_create_auth(SUITE, CORP, &events).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let org_tenant = TenantId::new(format!("suite-{CORP}")).unwrap();
    let written = written(
        &store,
        &org_tenant,
        &platform,
        "the corp's entry is written",
    )
    .await;
    assert_eq!(written.corp_id.as_deref(), Some(CORP));
    assert!(
        matches!(written.permanent_code, Some(StoredSecret::Encrypted { .. })),
        "{written:?}"
    );
    let permanent = fake.permanent_code_of(SUITE, CORP).unwrap();
    let raw: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT permanent_code FROM unilogin_platform_config WHERE tenant_id = '{org_tenant}'"
    )))
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(
        raw.starts_with("enc:v1:") && !raw.contains(&permanent),
        "{raw}"
    );

    // Its member logs in through the ServiceApp web login.
    let mut login_url =
        url::Url::parse(&served.url(&format!("auth/{org_tenant}/wecom/login"))).unwrap();
    login_url.query_pairs_mut().append_pair("return_to", home);
    let mut ok = false;
    for _ in 0..100 {
        let resp = served
            .http
            .get(login_url.as_str())
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
            .send()
            .await
            .unwrap();
        if resp.status() != 303 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let binding = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.strip_prefix("unilogin_login=")
                    .map(|v| v.split(';').next().unwrap_or("").to_string())
            })
            .unwrap();
        let authorize = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let q: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
        assert_eq!(q["login_type"], "ServiceApp");
        assert_eq!(q["appid"], SUITE);
        let mut callback = url::Url::parse(&q["redirect_uri"]).unwrap();
        callback
            .query_pairs_mut()
            .append_pair("code", &fake.issue_3rd_code(SUITE, MEMBER))
            .append_pair("state", &q["state"]);
        let resp = served
            .http
            .get(callback.as_str())
            .header("cookie", format!("unilogin_login={binding}"))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let session = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|c| c.starts_with("unilogin_session=") && !c.starts_with("unilogin_session=;"));
        let text = resp.text().await.unwrap_or_default();
        assert!(status == 303 && session, "{status} {text}");
        ok = true;
        break;
    }
    assert!(ok, "the corp's login never started");
}

/// Feishu: the store app's `app_ticket` and `app_open` reach the app entry; the installing
/// tenant's entry is written with its `tenant_key` as `corp_id`, its member logs in (one
/// `app_access_token`, one `tenant_access_token`); `app_uninstalled` disables the entry and
/// ends the logins, while the fake refuses the tenant token too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_feishu_installation_opens_and_its_removal_closes_the_tenant() {
    use unilogin_testkit::feishu::{self, FakeApp, endpoints as fs_ep};
    const APP: &str = "cli_storelifecycle1";
    const SECRET: &str = "fake_fs_store_secret_lifecycle";
    const TENANT_KEY: &str = "tk_lifecycle_1";
    const MEMBER: &str = "feishu_member_1";
    let fake = feishu::start().await;
    fake.add_store_app(FakeApp::new(APP, SECRET, "tk_developer"));
    fake.add_user(FakeUser::new(MEMBER).name(MEMBER).in_org(TENANT_KEY));
    let creds = fake.event_credentials_for(APP);
    let (store, served, _dir) = app_entry_gateway(
        "lark-store",
        "feishu",
        (APP, SECRET),
        (fake.base_url(), &["open", "accounts"]),
        &creds,
    )
    .await;
    let platform = PlatformName::new("feishu").unwrap();
    let events = served.url("events/lark-store/feishu");
    let (d, ticket) = fake.push_app_ticket(APP, &events).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let d = fake.push_app_open(APP, TENANT_KEY, &events).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let org_tenant = TenantId::new(format!("lark-store-{TENANT_KEY}")).unwrap();
    let written = written(
        &store,
        &org_tenant,
        &platform,
        "the tenant's entry is written",
    )
    .await;
    assert_eq!(written.corp_id.as_deref(), Some(TENANT_KEY));
    assert_eq!(written.mode.as_deref(), Some("isv"));
    assert!(written.events.is_none(), "the pushes stay the app entry's");

    let login = |code: String| {
        let http = served.http.clone();
        let url = served.url(&format!("auth/{org_tenant}/feishu/code"));
        async move {
            let r = http
                .post(url)
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap_or_default())
        }
    };
    eventually(WITHIN, "the installed tenant's member logs in", || async {
        login(fake.approve_web_login_with(APP, MEMBER, "")).await.0 == 200
    })
    .await;
    let (status, body) = login(fake.approve_web_login_with(APP, MEMBER, "")).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains(&ticket) && !body.contains(SECRET), "{body}");
    assert_eq!(fake.calls(fs_ep::STORE_APP_ACCESS_TOKEN), 1);
    assert_eq!(fake.calls(fs_ep::STORE_TENANT_ACCESS_TOKEN), 1);

    // The tenant's token is in the gateway's token cache, under the organisation's key.
    let key = unilogin::isv::TicketApp::new(platform.clone(), APP)
        .unwrap()
        .shared_suite_key()
        .organisation(&unilogin::isv::OrgId::new(TENANT_KEY).unwrap());
    assert_ne!(cached_or(&served, &key, "not-cached").await, "not-cached");
    // A code issued while installed, redeemed after the removal: the gateway refuses it
    // itself (the platform is not asked).
    let early = fake.approve_web_login_with(APP, MEMBER, "");
    let d = fake
        .push_app_uninstalled(APP, TENANT_KEY, &events)
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    eventually(WITHIN, "the tenant's entry is disabled", || async {
        !store
            .get(&org_tenant, &platform)
            .await
            .unwrap()
            .unwrap()
            .enabled
    })
    .await;
    eventually(WITHIN, "the disabled entry is applied", || async {
        let (status, body) = login(fake.approve_web_login_with(APP, MEMBER, "")).await;
        status == 403 && body.contains("\"disabled\"")
    })
    .await;
    // The tenant's token is gone from the gateway's token cache: the next fetch runs.
    assert_eq!(
        cached_or(&served, &key, "fetched-after-the-eviction").await,
        "fetched-after-the-eviction"
    );
    let exchanges = fake.calls(fs_ep::OAUTH_TOKEN_V2);
    let (status, body) = login(early).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(fake.calls(fs_ep::OAUTH_TOKEN_V2), exchanges, "{body}");
}

/// The gateway's cached token under `key`, or `fallback` when none is cached (then cached).
async fn cached_or(
    served: &Served,
    key: &unilogin::token_cache::TokenKey,
    fallback: &str,
) -> String {
    let fallback = fallback.to_string();
    let token = served
        .gateway
        .sso()
        .token_cache()
        .get(key, move || async move {
            Ok(unilogin::token_cache::FetchedToken::new(
                unilogin::AccessToken::new(fallback),
                Duration::from_secs(60),
            ))
        })
        .await
        .unwrap();
    token.expose().to_string()
}

/// The entry the installation writes, once it is there.
async fn written(
    store: &SqlConfigStore,
    tenant: &TenantId,
    platform: &PlatformName,
    what: &str,
) -> unilogin::sql::ConfigRow {
    eventually(WITHIN, what, || async {
        store.get(tenant, platform).await.unwrap().is_some()
    })
    .await;
    store.get(tenant, platform).await.unwrap().unwrap()
}
