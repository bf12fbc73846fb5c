//! Tenant configuration changes apply without a restart, on every replica:
//! - a changed tenants file reaches two running gateways within a few seconds; entries that did
//!   not change keep their configuration (nothing rebuilt);
//! - a file that cannot be read, or an invalid entry, keeps the last good configuration and says
//!   so in `/readyz`, the metrics and (binary) the log;
//! - a change in the SQL store (SQLite file, PostgreSQL server) reaches two running gateways;
//! - a rotated secret's cached app token is evicted: the next login fetches a new one;
//! - a redirect login started before a change finishes after it;
//! - SIGHUP reads everything again (a rotated `file:` secret the file watch cannot see).

mod config_support;

use std::sync::Arc;
use std::time::Duration;

use config_support::db::{self, Kind};
use config_support::{
    Process, Served, TempDir, client, dingtalk_entry, eventually, free_port, h5_login, metric,
    serve,
};
use serde_json::{Value, json};
use unilogin::TenantId;
use unilogin::sql::{ConfigPatch, NewConfig, SecretCipher, SecretInput, SqlConfigStore};
use unilogin::{AppKey, AppSecret, PlatformName};
use unilogin_testkit::FakePlatform;
use unilogin_testkit::dingtalk::{self, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, FakeApp, endpoints};

const FAST: &str = "reload: {poll_ms: 100, full_secs: 0}\n";

fn fast() -> String {
    format!("{FAST}{}", config_support::GENEROUS_LIMITS)
}
const WITHIN: Duration = Duration::from_secs(5);
const R1: &str = "https://app.acme.example/after-login";
const R2: &str = "https://app.acme.example/other";

fn document(entries: &[(&str, Value)]) -> String {
    let mut tenants = serde_json::Map::new();
    for (tenant, entry) in entries {
        tenants.insert((*tenant).to_string(), json!({ "dingtalk": entry }));
    }
    json!({ "tenants": tenants }).to_string()
}

/// The status of `GET /auth/{tenant}/dingtalk/login?return_to=…` from a PC browser.
async fn login_status(gw: &Served, tenant: &str, return_to: &str) -> u16 {
    let mut url = url::Url::parse(&gw.url(&format!("auth/{tenant}/dingtalk/login"))).unwrap();
    url.query_pairs_mut().append_pair("return_to", return_to);
    gw.http
        .get(url.as_str())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn readiness(gw: &Served) -> Value {
    let r = gw.get("readyz").await;
    assert_eq!(
        r.status(),
        200,
        "a failed reload never makes a replica unready"
    );
    r.json::<Value>().await.unwrap()["checks"]["config_reload"].clone()
}

fn metrics(gw: &Served) -> String {
    gw.gateway.metrics().render().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_change_reaches_two_replicas_and_a_bad_one_keeps_the_last_good() {
    let fake = dingtalk::start().await;
    let dir = TempDir::new("reload-file");
    let acme = |uris: &[&str]| {
        let mut e = dingtalk_entry(&fake, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, R1);
        e["redirect_uris"] = json!(uris);
        e
    };
    let steady = dingtalk_entry(&fake, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, R1);
    let file = dir.write(
        "tenants.yaml",
        &document(&[("acme", acme(&[R1])), ("steady", steady.clone())]),
    );
    let yaml = format!("tenants_file: '{}'\n{}", file.display(), fast());
    let replicas = [serve(&yaml).await, serve(&yaml).await];
    let steady_before = replicas[0]
        .gateway
        .sso()
        .config_source()
        .get(&TenantId::new("steady").unwrap(), "dingtalk")
        .await
        .unwrap();
    for gw in &replicas {
        assert_eq!(login_status(gw, "acme", R1).await, 303);
        assert_eq!(login_status(gw, "acme", R2).await, 400);
        assert_eq!(login_status(gw, "globex", R1).await, 404);
        assert_eq!(readiness(gw).await["status"], "ok");
    }

    // A change: acme gains a redirect URI, globex appears.
    dir.write(
        "tenants.yaml",
        &document(&[
            ("acme", acme(&[R1, R2])),
            ("steady", steady.clone()),
            ("globex", acme(&[R1])),
        ]),
    );
    for (i, gw) in replicas.iter().enumerate() {
        eventually(
            WITHIN,
            &format!("replica {i} sees the new file"),
            || async {
                login_status(gw, "acme", R2).await == 303
                    && login_status(gw, "globex", R1).await == 303
            },
        )
        .await;
    }
    // The entry that did not change is the very same configuration (its handler stays built).
    let steady_after = replicas[0]
        .gateway
        .sso()
        .config_source()
        .get(&TenantId::new("steady").unwrap(), "dingtalk")
        .await
        .unwrap();
    assert!(Arc::ptr_eq(&steady_before, &steady_after));

    // A file that cannot be parsed: everything stays, reported as failed.
    dir.write("tenants.yaml", "tenants: {acme: [unclosed\n");
    for (i, gw) in replicas.iter().enumerate() {
        eventually(
            WITHIN,
            &format!("replica {i} reports the failed read"),
            || async { readiness(gw).await["status"] == "failed" },
        )
        .await;
        assert_eq!(login_status(gw, "acme", R2).await, 303, "last good kept");
        let m = metrics(gw);
        assert!(
            metric(&m, "unilogin_config_reload_failures_total") >= Some(1.0),
            "{m}"
        );
        assert_eq!(
            metric(&m, "unilogin_config_last_reload_ok"),
            Some(0.0),
            "{m}"
        );
    }

    // Readable again, but acme's change is invalid: acme keeps its last good configuration,
    // the valid change of globex applies.
    dir.write(
        "tenants.yaml",
        &document(&[
            ("acme", acme(&["http://evil.example/cb"])),
            ("steady", steady.clone()),
            ("globex", acme(&[R1, R2])),
        ]),
    );
    for (i, gw) in replicas.iter().enumerate() {
        eventually(
            WITHIN,
            &format!("replica {i} rejects acme's change"),
            || async {
                let r = readiness(gw).await;
                r["status"] == "rejected_entries" && r["rejected_entries"] == 1
            },
        )
        .await;
        assert_eq!(login_status(gw, "acme", R2).await, 303, "last good kept");
        assert_eq!(login_status(gw, "globex", R2).await, 303);
        let m = metrics(gw);
        assert_eq!(
            metric(&m, "unilogin_config_rejected_entries"),
            Some(1.0),
            "{m}"
        );
        let status = gw.gateway.tenants().unwrap().status();
        let why = status.rejected_errors[0].to_string();
        assert!(
            why.contains("`acme`") && why.contains("redirect_uris[0]"),
            "{why}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_evicts_the_cached_app_token() {
    let fake = dingtalk::start().await;
    fake.add_app(FakeApp::new(
        "dingrotate",
        "first-secret",
        dingtalk::DEFAULT_CORP_ID,
    ));
    let dir = TempDir::new("reload-rotate");
    let entry = |secret: &str| dingtalk_entry(&fake, "dingrotate", secret, R1);
    let file = dir.write(
        "tenants.yaml",
        &document(&[("acme", entry("first-secret"))]),
    );
    let gw = serve(&format!("tenants_file: '{}'\n{}", file.display(), fast())).await;
    let base = gw.base.as_str().to_string();
    for _ in 0..2 {
        let (status, body) = h5_login(&gw.http, &base, "acme", &fake).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        fake.calls(endpoints::GETTOKEN),
        1,
        "the app token is cached"
    );
    assert_eq!(gw.gateway.sso().token_cache().stats().entries, 1);

    // The secret is rotated at the platform and in the file.
    fake.add_app(FakeApp::new(
        "dingrotate",
        "second-secret",
        dingtalk::DEFAULT_CORP_ID,
    ));
    dir.write(
        "tenants.yaml",
        &document(&[("acme", entry("second-secret"))]),
    );
    eventually(
        WITHIN,
        "the token cached under the old secret is evicted",
        || async { gw.gateway.sso().token_cache().stats().entries == 0 },
    )
    .await;
    let (status, body) = h5_login(&gw.http, &base, "acme", &fake).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        fake.calls(endpoints::GETTOKEN),
        2,
        "a new token, with the new secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_login_started_before_a_change_finishes_after_it() {
    let fake = dingtalk::start().await;
    let dir = TempDir::new("reload-inflight");
    let entry = |uris: &[&str]| {
        let mut e = dingtalk_entry(&fake, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, R1);
        e["redirect_uris"] = json!(uris);
        e
    };
    let file = dir.write("tenants.yaml", &document(&[("acme", entry(&[R1]))]));
    let gw = serve(&format!("tenants_file: '{}'\n{}", file.display(), fast())).await;
    let mut url = url::Url::parse(&gw.url("auth/acme/dingtalk/login")).unwrap();
    url.query_pairs_mut().append_pair("return_to", R1);
    let started = gw.http.get(url.as_str()).send().await.unwrap();
    assert_eq!(started.status(), 303);
    let cookies: Vec<String> = started
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
        .collect();
    let authorize = url::Url::parse(started.headers()["location"].to_str().unwrap()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let redirect_uri = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.to_string())
        .unwrap();

    // The tenant's configuration changes while the user is on the platform's page.
    dir.write("tenants.yaml", &document(&[("acme", entry(&[R1, R2]))]));
    eventually(WITHIN, "the change applied", || async {
        login_status(&gw, "acme", R2).await == 303
    })
    .await;

    let code = fake.approve_web_login_with(DEFAULT_APP_KEY, &fake.demo_user_id(), "openid corpid");
    let mut callback = url::Url::parse(&redirect_uri).unwrap();
    callback
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &state);
    let done = gw
        .http
        .get(callback.as_str())
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .unwrap();
    let status = done.status();
    let location = done
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(status, 303, "{:?}", done.text().await);
    assert_eq!(location.as_deref(), Some(R1));
}

/// A key spec file for the store's cipher, and the cipher.
fn cipher_file(dir: &TempDir) -> (String, SecretCipher) {
    let spec = format!("k1:{}", "ab".repeat(32));
    let path = dir.write("secret-keys", &spec);
    (
        format!("file:{}", path.display()),
        SecretCipher::parse(&spec).unwrap(),
    )
}

async fn sql_change_reaches_two_replicas(kind: Kind) {
    let fake = dingtalk::start().await;
    let dir = TempDir::new("reload-sql");
    let url = db::fresh_database(kind).await;
    let (keys, cipher) = cipher_file(&dir);
    let store = SqlConfigStore::connect(&url, cipher).await.unwrap();
    store.migrate().await.unwrap();
    let (acme, dt) = (
        TenantId::new("acme").unwrap(),
        PlatformName::new("dingtalk").unwrap(),
    );
    let mut row = NewConfig::new(
        acme.clone(),
        dt.clone(),
        AppKey::new(DEFAULT_APP_KEY).unwrap(),
        SecretInput::Value(AppSecret::new(DEFAULT_APP_SECRET)),
    );
    row.corp_id = Some(dingtalk::DEFAULT_CORP_ID.into());
    for host in ["oapi", "api", "login"] {
        row.hosts
            .insert(host.into(), fake.base_url().parse().unwrap());
    }
    row.redirect_uris = vec![R1.into()];
    store.create(row, "setup").await.unwrap();

    let yaml = format!(
        "tenants_database: {{url: '{url}', secret_keys: '{keys}'}}\n{}",
        fast()
    );
    let replicas = [serve(&yaml).await, serve(&yaml).await];
    for gw in &replicas {
        assert_eq!(login_status(gw, "acme", R1).await, 303);
        assert_eq!(login_status(gw, "acme", R2).await, 400);
        let (status, body) = h5_login(&gw.http, gw.base.as_str(), "acme", &fake).await;
        assert_eq!(status, 200, "{body}");
    }

    store
        .update(
            &acme,
            &dt,
            ConfigPatch {
                redirect_uris: Some(vec![R1.into(), R2.into()]),
                ..ConfigPatch::default()
            },
            "ops",
        )
        .await
        .unwrap();
    for (i, gw) in replicas.iter().enumerate() {
        eventually(
            WITHIN,
            &format!("{kind:?} replica {i} sees the update"),
            || async { login_status(gw, "acme", R2).await == 303 },
        )
        .await;
    }
    store.disable(&acme, &dt, "ops").await.unwrap();
    for (i, gw) in replicas.iter().enumerate() {
        eventually(
            WITHIN,
            &format!("{kind:?} replica {i} sees the disable"),
            || async { login_status(gw, "acme", R1).await == 403 },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_change_reaches_two_replicas() {
    sql_change_reaches_two_replicas(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_change_reaches_two_replicas() {
    sql_change_reaches_two_replicas(Kind::Postgres).await;
}

/// The shipped binary: SIGHUP reads a rotated `file:` secret (invisible to the file watch), and
/// a failed read is logged while the last good configuration keeps serving.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_a_failed_reload_is_logged() {
    let fake = dingtalk::start().await;
    fake.add_app(FakeApp::new(
        "dinghup",
        "the-right-secret",
        dingtalk::DEFAULT_CORP_ID,
    ));
    let dir = TempDir::new("reload-hup");
    dir.write("secrets/acme", "a-stale-secret\n");
    let mut entry = dingtalk_entry(&fake, "dinghup", "file:secrets/acme", R1);
    entry["app_secret"] = json!("file:secrets/acme");
    dir.write("tenants.yaml", &document(&[("acme", entry)]));
    let port = free_port();
    let config = dir.write(
        "gateway.yaml",
        &format!(
            "listen: '127.0.0.1:{port}'\npublic_url: 'http://127.0.0.1:{port}/'\n\
             tenants_file: tenants.yaml\ncookies: {{secure: false}}\n\
             reload: {{poll_ms: 100, full_secs: 0}}\n{}",
            config_support::GENEROUS_LIMITS
        ),
    );
    let gw = Process::start(&config, port, &[], dir.join("gateway.log")).await;
    let http = client();
    let (status, _) = h5_login(&http, &gw.base, "acme", &fake).await;
    assert_eq!(status, 502, "the stale secret is refused by the platform");

    dir.write("secrets/acme", "the-right-secret\n");
    // The tenants file did not change: only SIGHUP (or the periodic full read) sees this.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = h5_login(&http, &gw.base, "acme", &fake).await;
    assert_eq!(status, 502, "not reloaded without a visible change");
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &gw.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    eventually(WITHIN, "SIGHUP applied the rotated secret", || async {
        h5_login(&http, &gw.base, "acme", &fake).await.0 == 200
    })
    .await;

    dir.write("tenants.yaml", "tenants: {acme: [unclosed\n");
    eventually(WITHIN, "the failed read is logged", || async {
        gw.log_text()
            .contains("keeping the last good configuration")
    })
    .await;
    let (status, body) = h5_login(&http, &gw.base, "acme", &fake).await;
    assert_eq!(status, 200, "the last good configuration serves: {body}");
    let ready: Value = http
        .get(gw.url("readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["checks"]["config_reload"]["status"], "failed",
        "{ready}"
    );
}
