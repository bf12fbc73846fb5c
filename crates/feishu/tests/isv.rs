//! Store apps (`mode: isv`): configuration, the missing ticket, the app entry, the store-app
//! events (`app_ticket`, `app_open`, `app_status_change`, `app_uninstalled`), redaction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::events::{EventCodec, EventError, EventRequest, Inbound, StoreAppChange};
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::registry::PlatformContext;
use unilogin_core::{AuthCode, Error, Sso, TenantId};
use unilogin_feishu::Feishu;
use unilogin_feishu::events::{FeishuEvents, store_app_changes};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::feishu::{self, FakeFeishu};

const APP_ID: &str = "cli_store0001";
const SECRET: &str = "fake_fs_store_secret_0001";
const ORG_A: &str = "tk_store_a";
const TOKEN: &str = "vt_example";

fn entry(fs: &FakeFeishu, tenant: &str, mode: &str, corp_id: Option<&str>) -> Value {
    let mut v = json!({
        "tenant": tenant, "platform": "feishu", "mode": mode,
        "app_key": APP_ID, "app_secret": SECRET,
        "hosts": { "open": fs.base_url(), "accounts": fs.base_url() },
        "redirect_uris": ["https://app.example.com/auth/callback"],
    });
    if let Some(c) = corp_id {
        v["corp_id"] = json!(c);
    }
    v
}

fn sso(entries: Vec<Value>) -> Result<Sso, Error> {
    let configs: Vec<PlatformConfig> = entries
        .into_iter()
        .map(|e| serde_json::from_value(e).unwrap())
        .collect();
    Sso::builder(StaticConfig::new(configs)).build()
}

/// Builds the handler of one entry (what `Sso` does when the tenant is first used).
fn build(entry: Value) -> Result<(), Error> {
    let config: PlatformConfig = serde_json::from_value(entry).unwrap();
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    Feishu::build(PlatformContext {
        config: &config,
        http: &http,
    })
    .map(|_| ())
}

#[tokio::test]
async fn mode_is_internal_or_isv_and_isv_needs_no_corp_id() {
    let fs = feishu::start().await;
    let err = build(entry(&fs, "acme", "store", Some(ORG_A))).unwrap_err();
    assert!(err.to_string().contains("mode"), "{err}");
    let err = build(entry(&fs, "acme", "isv", Some("a:b"))).unwrap_err();
    assert!(err.to_string().contains("corp_id"), "{err}");
    // The app entry (no corp_id) and an organisation entry both build.
    build(entry(&fs, "app", "isv", None)).unwrap();
    build(entry(&fs, "org-a", "isv", Some(ORG_A))).unwrap();
    // The secret never shows in the handler's Debug.
    let config: PlatformConfig =
        serde_json::from_value(entry(&fs, "org-a", "isv", Some(ORG_A))).unwrap();
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    let handler = Feishu::build(PlatformContext {
        config: &config,
        http: &http,
    })
    .unwrap();
    let debug = format!("{handler:?}");
    assert!(debug.contains(ORG_A) && !debug.contains(SECRET), "{debug}");
    // An internal entry still requires corp_id.
    let err = build(entry(&fs, "acme", "internal", None)).unwrap_err();
    assert!(err.to_string().contains("corp_id"), "{err}");
}

#[tokio::test]
async fn before_any_ticket_logins_are_ticket_missing() {
    let fs = feishu::start().await;
    fs.add_app(feishu::FakeApp::new(APP_ID, SECRET, ORG_A));
    let sso = sso(vec![entry(&fs, "org-a", "isv", Some(ORG_A))]).unwrap();
    let tenant = TenantId::new("org-a").unwrap();
    let mut logins = Vec::new();
    for _ in 0..8 {
        let (sso, tenant) = (sso.clone(), tenant.clone());
        logins.push(tokio::spawn(async move {
            let code = AuthCode::new("fake-code");
            sso.login_with_code(&tenant, "feishu", &code).await
        }));
    }
    for login in logins {
        let err = login.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::TicketMissing { .. }), "{err:?}");
        assert!(err.to_string().contains(APP_ID), "{err}");
    }
    // Feishu was asked once to push a ticket, whatever the number of logins.
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
    let code = AuthCode::new("fake-code");
    let again = sso.login_with_code(&tenant, "feishu", &code).await;
    assert!(matches!(again, Err(Error::TicketMissing { .. })));
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
}

#[tokio::test]
async fn the_app_entry_logs_no_one_in() {
    let fs = feishu::start().await;
    let sso = sso(vec![entry(&fs, "app", "isv", None)]).unwrap();
    let tenant = TenantId::new("app").unwrap();
    let redirect = url::Url::parse("https://app.example.com/auth/callback").unwrap();
    let web = sso
        .start_web_login(
            &tenant,
            "feishu",
            unilogin_core::platform::Flow::Web,
            &redirect,
        )
        .await;
    let err = web.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("own entry"), "{err}");
}

fn v1(event: Value) -> Value {
    json!({"ts": "1602491118.218", "uuid": "u-1", "token": TOKEN, "type": "event_callback", "event": event})
}

fn open_plain(doc: &Value) -> Result<Vec<StoreAppChange>, EventError> {
    let codec = FeishuEvents::new(TOKEN, None).unwrap();
    let body = doc.to_string().into_bytes();
    let Inbound::Event(event) = codec.open(&EventRequest::new("POST", &body))? else {
        panic!("an event")
    };
    codec.store_app_changes(&event)
}

#[test]
fn app_ticket_is_a_pushed_ticket_with_its_ts() {
    let doc = v1(json!({"app_id": APP_ID, "app_ticket": "tk-secret-1", "type": "app_ticket"}));
    let changes = open_plain(&doc).unwrap();
    let [StoreAppChange::TicketPushed { app, ticket }] = &changes[..] else {
        panic!("{changes:?}")
    };
    assert_eq!(app.app_id().as_str(), APP_ID);
    assert_eq!(app.platform().as_str(), "feishu");
    assert_eq!(ticket.value.expose(), "tk-secret-1");
    assert_eq!(
        ticket.pushed_at,
        UNIX_EPOCH + Duration::from_millis(1_602_491_118_218)
    );
    assert!(!format!("{changes:?}").contains("tk-secret-1"));
}

#[test]
fn installation_events_map_to_their_changes() {
    let installed = |doc: Value, who: Option<&str>| {
        let changes = open_plain(&doc).unwrap();
        let [StoreAppChange::Installed { org, info, .. }] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!(org.as_str(), ORG_A);
        assert_eq!(info.installer.as_deref(), who);
    };
    installed(
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_open",
            "applicants": [{"open_id": "ou_x"}], "installer": {"open_id": "ou_admin"}}),
        ),
        Some("ou_admin"),
    );
    installed(
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_open",
            "installer_employee": {"open_id": "ou_member"}}),
        ),
        Some("ou_member"),
    );
    installed(
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_status_change",
            "status": "start_by_tenant", "operator": {"open_id": "ou_op"}}),
        ),
        Some("ou_op"),
    );
    for doc in [
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_status_change", "status": "stop_by_tenant"}),
        ),
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_status_change", "status": "stop_by_platform"}),
        ),
        v1(json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_uninstalled"})),
    ] {
        let changes = open_plain(&doc).unwrap();
        let [StoreAppChange::Uninstalled { app, org }] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!((app.app_id().as_str(), org.as_str()), (APP_ID, ORG_A));
    }
}

#[test]
fn incomplete_store_app_events_are_typed_errors_and_others_are_none() {
    let missing = |doc: Value, name: &str| match open_plain(&doc) {
        Err(EventError::MissingField { name: n }) => assert_eq!(n, name),
        other => panic!("{other:?}"),
    };
    missing(
        v1(json!({"type": "app_ticket", "app_ticket": "t"})),
        "app_id",
    );
    missing(
        v1(json!({"type": "app_ticket", "app_id": APP_ID})),
        "app_ticket",
    );
    missing(
        v1(json!({"type": "app_uninstalled", "app_id": APP_ID})),
        "tenant_key",
    );
    missing(
        v1(json!({"type": "app_status_change", "app_id": APP_ID, "tenant_key": ORG_A})),
        "status",
    );
    let other = v1(json!({"type": "user_add", "open_id": "ou_1"}));
    assert!(open_plain(&other).unwrap().is_empty());
    // A `ts` that is not seconds falls back to the receive time.
    let now = SystemTime::now();
    let mut doc = v1(json!({"app_id": APP_ID, "app_ticket": "t", "type": "app_ticket"}));
    doc["ts"] = json!("soon");
    let changes = store_app_changes("app_ticket", &doc, now).unwrap();
    let [StoreAppChange::TicketPushed { ticket, .. }] = &changes[..] else {
        panic!()
    };
    assert_eq!(ticket.pushed_at, now);
}

#[test]
fn a_wrong_verification_token_is_refused_for_store_app_events() {
    let mut doc = v1(json!({"app_id": APP_ID, "app_ticket": "t", "type": "app_ticket"}));
    doc["token"] = json!("wrong");
    assert!(matches!(open_plain(&doc), Err(EventError::WrongToken)));
}
