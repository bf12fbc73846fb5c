//! The admin HTTP API, against real SQLite and PostgreSQL (started as `unilogin-sql`'s tests
//! start them): authentication and tenant-limited tokens (on its own listener and under a
//! path prefix), write-only secrets and event credentials, the audit log, the secret reference
//! allow-list, and the exfiltration case — a row that names the server's own secrets
//! (`env:SESSION_KEY`, `file:/proc/self/environ`) next to its own token endpoint never makes
//! the server send them.

mod config_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use config_support::db::{self, Kind};
use config_support::{
    GENEROUS_LIMITS, Process, Served, TempDir, client, eventually, free_port, h5_login, serve,
};
use serde_json::{Value, json};
use sqlx::{AssertSqlSafe, Row};
use unilogin::config::{CachedSource, ConfigSource, EventSettings, SecretRefPolicy};
use unilogin::sql::{SecretCipher, SqlConfigStore};
use unilogin::{AppSecret, PlatformName, TenantId};
use unilogin_testkit::dingtalk::{self, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, DEFAULT_CORP_ID};

const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
const ACME_TOKEN: &str = "acme-token-0123456789abcdef";
const WITHIN: Duration = Duration::from_secs(5);

struct Setup {
    served: Served,
    store: SqlConfigStore,
    admin: String,
    http: reqwest::Client,
    fake: dingtalk::FakeDingTalk,
    dir: TempDir,
}

fn key_spec() -> String {
    format!("k1:{}", "cd".repeat(32))
}

/// A gateway over a fresh database of `kind` with the admin API on its own listener or under
/// `/admin` on the main one, two tokens (`ops`: every tenant; `acme-admins`: only acme) and the
/// allow-list `env: [PATH]`, `dirs: [<dir>/allowed]`.
async fn setup(kind: Kind, own_listener: bool) -> Setup {
    let fake = dingtalk::start().await;
    let dir = TempDir::new("admin");
    let url = db::fresh_database(kind).await;
    let keys = dir.write("secret-keys", &key_spec());
    let ops = dir.write("ops-token", OPS_TOKEN);
    let acme = dir.write("acme-token", &format!("{ACME_TOKEN}\n"));
    dir.write("allowed/acme-secret", DEFAULT_APP_SECRET);
    let port = free_port();
    let listen = if own_listener {
        format!("'127.0.0.1:{port}'")
    } else {
        "null".into()
    };
    let yaml = format!(
        "tenants_database: {{url: '{url}', secret_keys: 'file:{keys}'}}\n\
         secret_refs: {{env: [PATH], dirs: ['{allowed}']}}\n\
         admin:\n  enabled: true\n  listen: {listen}\n  path_prefix: /admin\n  tokens:\n\
         \x20   - {{name: ops, token: 'file:{ops}'}}\n\
         \x20   - {{name: acme-admins, token: 'file:{acme}', tenants: [acme]}}\n\
         reload: {{poll_ms: 100, full_secs: 0}}\n{GENEROUS_LIMITS}",
        keys = keys.display(),
        allowed = dir.join("allowed").display(),
        ops = ops.display(),
        acme = acme.display(),
    );
    let served = serve(&yaml).await;
    let admin = if own_listener {
        let base = format!("http://127.0.0.1:{port}/admin");
        eventually(WITHIN, "the admin listener is up", || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        base
    } else {
        served.url("admin")
    };
    let store = SqlConfigStore::connect(&url, SecretCipher::parse(&key_spec()).unwrap())
        .await
        .unwrap();
    Setup {
        served,
        store,
        admin,
        http: client(),
        fake,
        dir,
    }
}

impl Setup {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.admin));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }

    async fn get(&self, path: &str, token: &str) -> (u16, Value, String) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    /// A DingTalk entry against the fake.
    fn entry(&self, secret: &str, return_to: &str) -> Value {
        let base = self.fake.base_url();
        json!({
            "app_key": DEFAULT_APP_KEY, "app_secret": secret, "corp_id": DEFAULT_CORP_ID,
            "hosts": { "oapi": base, "api": base, "login": base },
            "redirect_uris": [return_to],
        })
    }

    async fn create(&self, tenant: &str, token: &str, body: Value) -> (u16, Value, String) {
        self.call(
            reqwest::Method::POST,
            &format!("/tenants/{tenant}/dingtalk"),
            Some(token),
            Some(body),
        )
        .await
    }

    async fn stored_secret(&self, tenant: &str) -> String {
        sqlx::query(AssertSqlSafe(format!(
            "SELECT app_secret FROM unilogin_platform_config WHERE tenant_id = '{tenant}' AND deleted_at = 0"
        )))
        .fetch_one(self.store.pool())
        .await
        .unwrap()
        .try_get::<String, _>("app_secret")
        .unwrap()
    }
}

async fn authentication_and_tenant_limits(kind: Kind, own_listener: bool) {
    let s = setup(kind, own_listener).await;
    // No token, a wrong token, another scheme: 401 with a Bearer challenge.
    for auth in [None, Some("Bearer not-a-token"), Some("Basic b3BzOnB3")] {
        let mut req = s.http.get(format!("{}/tenants", s.admin));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    // Nothing is changed by an unauthenticated write.
    let (status, _, _) = s
        .call(
            reqwest::Method::POST,
            "/tenants/acme/dingtalk",
            None,
            Some(s.entry(DEFAULT_APP_SECRET, "https://acme.example/")),
        )
        .await;
    assert_eq!(status, 401);
    assert!(s.store.list(None).await.unwrap().is_empty());

    let (status, _, text) = s
        .create(
            "acme",
            OPS_TOKEN,
            s.entry(DEFAULT_APP_SECRET, "https://acme.example/"),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let (status, _, text) = s
        .create(
            "globex",
            OPS_TOKEN,
            s.entry(DEFAULT_APP_SECRET, "https://globex.example/"),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let (status, body, _) = s.get("/tenants", OPS_TOKEN).await;
    assert_eq!((status, body["items"].as_array().unwrap().len()), (200, 2));

    // The acme token sees and changes acme only.
    let (status, body, _) = s.get("/tenants", ACME_TOKEN).await;
    assert_eq!(status, 200);
    let tenants: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(tenants, ["acme"]);
    assert_eq!(s.get("/tenants/acme/dingtalk", ACME_TOKEN).await.0, 200);
    assert_eq!(s.get("/tenants/globex/dingtalk", ACME_TOKEN).await.0, 403);
    assert_eq!(s.get("/tenants?tenant=globex", ACME_TOKEN).await.0, 403);
    assert_eq!(s.get("/audit?tenant=globex", ACME_TOKEN).await.0, 403);
    let (status, _, _) = s
        .call(
            reqwest::Method::POST,
            "/tenants/globex/dingtalk/disable",
            Some(ACME_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _, _) = s
        .call(
            reqwest::Method::DELETE,
            "/tenants/globex/dingtalk",
            Some(ACME_TOKEN),
            None,
        )
        .await;
    assert_eq!(status, 403);
    assert!(
        s.store
            .get(
                &TenantId::new("globex").unwrap(),
                &PlatformName::new("dingtalk").unwrap()
            )
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let (_, audit, _) = s.get("/audit", ACME_TOKEN).await;
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["tenant"] == "acme"),
        "{audit}"
    );
    // On its own listener, the admin API does not exist on the main one.
    let main = s
        .served
        .http
        .get(s.served.url("admin/tenants"))
        .bearer_auth(OPS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), if own_listener { 404 } else { 200 });
}

async fn secrets_are_write_only(kind: Kind) {
    let s = setup(kind, false).await;
    let return_to = s.served.url("");
    let (status, created, text) = s
        .create("acme", OPS_TOKEN, s.entry(DEFAULT_APP_SECRET, &return_to))
        .await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(created["app_secret"], "set");
    assert_eq!(created["app_secret_storage"], "encrypted");
    let mut answers = vec![text];
    answers.push(s.get("/tenants/acme/dingtalk", OPS_TOKEN).await.2);
    answers.push(s.get("/tenants", OPS_TOKEN).await.2);
    let stored = s.stored_secret("acme").await;
    assert!(stored.starts_with("enc:v1:k1:"), "stored encrypted");
    // The stored secret works: the gateway logs in with it (the fake checks it).
    eventually(WITHIN, "the new row serves logins", || async {
        h5_login(&s.served.http, s.served.base.as_str(), "acme", &s.fake)
            .await
            .0
            == 200
    })
    .await;
    // A rotation through the API is write-only too.
    let (status, patched, text) = s
        .call(
            reqwest::Method::PATCH,
            "/tenants/acme/dingtalk",
            Some(OPS_TOKEN),
            Some(json!({ "app_secret": "a-rotated-secret-value" })),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(patched["app_secret"], "set");
    answers.push(text);
    answers.push(s.get("/audit", OPS_TOKEN).await.2);
    answers.push(s.get("/status", OPS_TOKEN).await.2);
    // A mistyped secret is never echoed in the error.
    let (status, _, text) = s
        .call(
            reqwest::Method::PATCH,
            "/tenants/acme/dingtalk",
            Some(OPS_TOKEN),
            Some(json!({ "app_secret": 123456789 })),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("123456789"), "{text}");
    for a in &answers {
        for secret in [DEFAULT_APP_SECRET, "a-rotated-secret-value", "enc:v1"] {
            assert!(!a.contains(secret), "{secret} in an answer: {a}");
        }
    }
}

async fn audit_log_records_who_when_what(kind: Kind) {
    let s = setup(kind, false).await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let e = s.entry(DEFAULT_APP_SECRET, "https://acme.example/");
    assert_eq!(s.create("acme", OPS_TOKEN, e).await.0, 201);
    let (status, _, text) = s
        .call(
            reqwest::Method::PATCH,
            "/tenants/acme/dingtalk",
            Some(ACME_TOKEN),
            Some(json!({ "redirect_uris": ["https://acme.example/", "https://acme.example/b"], "agent_id": 1000001 })),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    for (path, method) in [
        ("/tenants/acme/dingtalk/disable", reqwest::Method::POST),
        ("/tenants/acme/dingtalk/enable", reqwest::Method::POST),
        ("/tenants/acme/dingtalk", reqwest::Method::DELETE),
    ] {
        let (status, _, text) = s.call(method, path, Some(OPS_TOKEN), None).await;
        assert!(status == 200 || status == 204, "{path}: {status} {text}");
    }
    let (status, audit, text) = s.get("/audit", OPS_TOKEN).await;
    assert_eq!(status, 200, "{text}");
    let items = audit["items"].as_array().unwrap();
    let seen: Vec<(&str, &str)> = items
        .iter()
        .map(|e| (e["actor"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("ops", "delete"),
            ("ops", "enable"),
            ("ops", "disable"),
            ("acme-admins", "update"),
            ("ops", "create"),
        ]
    );
    let update = &items[3];
    assert_eq!(
        update["changes"]["redirect_uris"]["to"],
        json!(["https://acme.example/", "https://acme.example/b"])
    );
    assert_eq!(
        update["changes"]["agent_id"],
        json!({"from": null, "to": "1000001"})
    );
    assert_eq!(
        items[2]["changes"]["enabled"],
        json!({"from": true, "to": false})
    );
    assert_eq!(items[4]["changes"]["app_secret"], "set");
    for e in items {
        assert_eq!(e["tenant"], "acme");
        assert!(e["at_ms"].as_i64().unwrap() >= before);
    }
    assert!(!text.contains(DEFAULT_APP_SECRET) && !text.contains("enc:v1"));
    // Paging: two at a time, newest first.
    let (_, page, _) = s.get("/audit?limit=2", OPS_TOKEN).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_i64().expect("a next page");
    let (_, rest, _) = s.get(&format!("/audit?before={next}"), OPS_TOKEN).await;
    assert_eq!(rest["items"][0]["action"], "disable");
    assert_eq!(rest["items"].as_array().unwrap().len(), 3);
}

async fn secret_references_need_the_allow_list(kind: Kind) {
    let s = setup(kind, false).await;
    let outside = s.dir.join("ops-token").display().to_string();
    let traversal = format!("{}/../ops-token", s.dir.join("allowed").display());
    for refused in [
        "env:SESSION_KEY".to_string(),
        "env:HOME".to_string(),
        "file:/proc/self/environ".to_string(),
        format!("file:{outside}"),
        format!("file:{traversal}"),
    ] {
        let (status, body, text) = s
            .create(
                "acme",
                OPS_TOKEN,
                s.entry(&refused, "https://acme.example/"),
            )
            .await;
        assert_eq!(status, 400, "{refused}: {text}");
        assert_eq!(body["error"], "invalid_config");
        assert!(
            text.contains("not allowed") && text.contains("app_secret"),
            "{text}"
        );
        assert!(!text.contains(OPS_TOKEN), "{text}");
    }
    assert!(s.store.list(None).await.unwrap().is_empty());
    // Allow-listed: stored as references, resolved at load.
    let allowed = format!("file:{}", s.dir.join("allowed/acme-secret").display());
    let (status, body, text) = s
        .create("acme", OPS_TOKEN, s.entry(&allowed, &s.served.url("")))
        .await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(body["app_secret_storage"], "reference");
    let (status, _, text) = s
        .create(
            "path",
            OPS_TOKEN,
            s.entry("env:PATH", "https://path.example/"),
        )
        .await;
    assert_eq!(status, 201, "{text}");
    eventually(WITHIN, "the file reference serves logins", || async {
        h5_login(&s.served.http, s.served.base.as_str(), "acme", &s.fake)
            .await
            .0
            == 200
    })
    .await;
    // A reference written past the API, straight into the table, is rejected at load; the
    // last good configuration stays.
    sqlx::raw_sql(AssertSqlSafe(
        "UPDATE unilogin_platform_config SET app_secret = 'env:HOME', revision = revision + 1 WHERE tenant_id = 'acme'".to_string(),
    ))
    .execute(s.store.pool())
    .await
    .unwrap();
    eventually(WITHIN, "the hand-written reference is rejected", || async {
        s.get("/status", OPS_TOKEN).await.1["rejected"] == 1
    })
    .await;
    let (_, status, _) = s.get("/status", OPS_TOKEN).await;
    let why = status["rejected_errors"][0].as_str().unwrap().to_string();
    assert!(
        why.contains("`acme`") && why.contains("env:HOME") && why.contains("not allowed"),
        "{why}"
    );
    assert_eq!(
        h5_login(&s.served.http, s.served.base.as_str(), "acme", &s.fake)
            .await
            .0,
        200,
        "the last good configuration keeps serving"
    );
}

/// Event credentials through the API: accepted like `app_secret` (a value stored encrypted,
/// or an allow-listed reference), answered only as `"set"`, loaded as written, patched field
/// by field, removed with `null`, audited without values.
async fn event_credentials_are_write_only(kind: Kind) {
    let s = setup(kind, false).await;
    let aes_key = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
    let key_file = s.dir.write("allowed/acme-aes-key", aes_key);
    let key_ref = format!("file:{}", key_file.display());
    let mut entry = s.entry(DEFAULT_APP_SECRET, "https://acme.example/");
    // A reference outside the allow-list is refused, naming the field.
    entry["events"] = json!({ "token": "gw-event-token-value", "key": "env:HOME" });
    let (status, body, text) = s.create("acme", OPS_TOKEN, entry.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(body["error"], "invalid_config");
    assert!(
        text.contains("events.key") && text.contains("not allowed"),
        "{text}"
    );
    // Unknown fields are refused without echoing values.
    entry["events"] = json!({ "token": "gw-event-token-value", "aes": aes_key });
    let (status, _, text) = s.create("acme", OPS_TOKEN, entry.clone()).await;
    assert_eq!(status, 400, "{text}");
    assert!(
        !text.contains(aes_key) && !text.contains("gw-event-token-value"),
        "{text}"
    );
    assert!(s.store.list(None).await.unwrap().is_empty());

    entry["events"] = json!({
        "token": "gw-event-token-value", "key": key_ref, "receiver_id": "suite-receiver",
    });
    let (status, created, text) = s.create("acme", OPS_TOKEN, entry).await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(
        created["events"],
        json!({
            "token": "set", "token_storage": "encrypted",
            "key": "set", "key_storage": "reference",
            "receiver_id": "suite-receiver",
        })
    );
    let mut answers = vec![text];
    answers.push(s.get("/tenants/acme/dingtalk", OPS_TOKEN).await.2);
    answers.push(s.get("/tenants", OPS_TOKEN).await.2);
    let stored_token: String = sqlx::query(AssertSqlSafe(
        "SELECT event_token FROM unilogin_platform_config WHERE tenant_id = 'acme' AND deleted_at = 0".to_string(),
    ))
    .fetch_one(s.store.pool())
    .await
    .unwrap()
    .try_get("event_token")
    .unwrap();
    assert!(
        stored_token.starts_with("enc:v1:k1:") && !stored_token.contains("gw-event-token-value"),
        "stored encrypted"
    );
    // What the loader serves: the credentials as written, the reference resolved.
    let reader = s
        .store
        .clone()
        .with_secret_refs(SecretRefPolicy::none().allow_dir(s.dir.join("allowed")));
    let loaded = |reader: SqlConfigStore| async move {
        let (src, report) = CachedSource::new(reader).await.unwrap();
        assert!(report.rejected.is_empty(), "{report:?}");
        src.get(&TenantId::new("acme").unwrap(), "dingtalk")
            .await
            .unwrap()
    };
    let c = loaded(reader.clone()).await;
    assert_eq!(
        c.events,
        Some(EventSettings {
            token: Some(AppSecret::new("gw-event-token-value")),
            key: Some(AppSecret::new(aes_key)),
            receiver_id: Some("suite-receiver".into()),
        })
    );

    // A patch rotates the token and keeps the key; `receiver_id: null` clears it.
    let (status, patched, text) = s
        .call(
            reqwest::Method::PATCH,
            "/tenants/acme/dingtalk",
            Some(ACME_TOKEN),
            Some(json!({ "events": { "token": "gw-rotated-event-token", "receiver_id": null } })),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(patched["events"]["key_storage"], "reference");
    assert_eq!(patched["events"]["receiver_id"], Value::Null);
    answers.push(text);
    let c = loaded(reader.clone()).await;
    let events = c.events.as_ref().unwrap();
    assert_eq!(
        events.token.as_ref().unwrap().expose(),
        "gw-rotated-event-token"
    );
    assert_eq!(events.key.as_ref().unwrap().expose(), aes_key);
    assert_eq!(events.receiver_id, None);
    // A mistyped credential is never echoed in the error.
    let (status, _, text) = s
        .call(
            reqwest::Method::PATCH,
            "/tenants/acme/dingtalk",
            Some(OPS_TOKEN),
            Some(json!({ "events": { "token": 987654321 } })),
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(!text.contains("987654321"), "{text}");
    // `events: null` removes the subscription.
    let (status, removed, text) = s
        .call(
            reqwest::Method::PATCH,
            "/tenants/acme/dingtalk",
            Some(OPS_TOKEN),
            Some(json!({ "events": null })),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(removed["events"], Value::Null);
    assert_eq!(loaded(reader).await.events, None);

    let (_, audit, text) = s.get("/audit", OPS_TOKEN).await;
    let items = audit["items"].as_array().unwrap();
    assert_eq!(items[0]["changes"]["events.token"], "removed");
    assert_eq!(items[0]["changes"]["events.key"], "removed");
    assert_eq!(items[1]["actor"], "acme-admins");
    assert_eq!(items[1]["changes"]["events.token"], "changed");
    assert!(items[1]["changes"].get("events.key").is_none(), "{text}");
    assert_eq!(
        items[1]["changes"]["events.receiver_id"],
        json!({"from": "suite-receiver", "to": null})
    );
    assert_eq!(items[2]["changes"]["events.token"], "set");
    assert_eq!(items[2]["changes"]["events.key"], "set");
    answers.push(text);
    answers.push(s.get("/status", OPS_TOKEN).await.2);
    for a in &answers {
        for secret in [
            "gw-event-token-value",
            "gw-rotated-event-token",
            aes_key,
            "enc:v1",
            key_ref.as_str(),
        ] {
            assert!(!a.contains(secret), "{secret} in an answer: {a}");
        }
    }
}

/// What the "provider" of the exfiltration case received: every request's headers and body.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn all(&self) -> String {
        self.0.lock().unwrap().join("\n----\n")
    }
}

async fn record(
    axum::extract::State(rec): axum::extract::State<Recorder>,
    headers: axum::http::HeaderMap,
    uri: axum::http::Uri,
    body: String,
) -> axum::Json<Value> {
    let mut text = format!("{uri}\n");
    for (k, v) in &headers {
        text.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
    }
    text.push_str(&body);
    rec.0.lock().unwrap().push(text);
    if uri.path() == "/token" {
        axum::Json(json!({ "access_token": "at-1", "token_type": "Bearer", "expires_in": 60 }))
    } else {
        axum::Json(json!({ "sub": "u1", "name": "Mallory" }))
    }
}

async fn a_row_naming_the_servers_secrets_never_sends_them(kind: Kind) {
    let rec = Recorder::default();
    let app = Router::new()
        .route("/token", post(record))
        .route("/userinfo", get(record).post(record))
        .with_state(rec.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let dir = TempDir::new("exfil");
    let url = db::fresh_database(kind).await;
    let store = SqlConfigStore::connect(&url, SecretCipher::parse(&key_spec()).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let keys = dir.write("secret-keys", &key_spec());
    let admin_token = "the-admin-token-0123456789";
    let session_key = format!("the-session-signing-key-{}", std::process::id());
    let port = free_port();
    let config = dir.write(
        "gateway.yaml",
        &format!(
            "listen: '127.0.0.1:{port}'\npublic_url: 'http://127.0.0.1:{port}/'\n\
             cookies: {{secure: false}}\n\
             tenants_database: {{url: '{url}', secret_keys: 'file:{keys}'}}\n\
             admin: {{enabled: true, tokens: [{{name: ops, token: 'env:UNILOGIN_ADMIN_TOKEN'}}]}}\n\
             reload: {{poll_ms: 100, full_secs: 0}}\n{GENEROUS_LIMITS}",
            keys = keys.display()
        ),
    );
    let env = [
        ("SESSION_KEY", session_key.as_str()),
        ("UNILOGIN_ADMIN_TOKEN", admin_token),
    ];
    let gw = Process::start(&config, port, &env, dir.join("gateway.log")).await;
    let http = client();
    let oidc = |secret: &str| {
        json!({
            "mode": "oidc", "app_key": "mallory-client", "app_secret": secret,
            "redirect_uris": [format!("http://127.0.0.1:{port}/")],
            "options": {
                "authorization_endpoint": format!("{upstream}/authorize"),
                "token_endpoint": format!("{upstream}/token"),
                "userinfo_endpoint": format!("{upstream}/userinfo"),
                "scopes": ["profile"],
                "token_auth_method": "client_secret_post",
            },
        })
    };
    let admin = |path: &str| gw.url(&format!("admin{path}"));

    // Through the admin API: refused outright.
    for secret in [
        "env:SESSION_KEY",
        "env:UNILOGIN_ADMIN_TOKEN",
        "file:/proc/self/environ",
    ] {
        let r = http
            .post(admin("/tenants/mallory/custom-oauth"))
            .bearer_auth(admin_token)
            .json(&oidc(secret))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        assert_eq!(status, 400, "{secret}: {text}");
        assert!(text.contains("not allowed"), "{text}");
    }
    // A valid row (a literal secret) serves logins that reach the provider...
    let r = http
        .post(admin("/tenants/mallory/custom-oauth"))
        .bearer_auth(admin_token)
        .json(&oidc("mallory-literal-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let log_in = || async {
        let mut start = url::Url::parse(&gw.url("auth/mallory/custom-oauth/login")).unwrap();
        start
            .query_pairs_mut()
            .append_pair("return_to", &format!("http://127.0.0.1:{port}/"));
        let started = http.get(start.as_str()).send().await.unwrap();
        if started.status() != 303 {
            return started.status().as_u16();
        }
        let cookies: Vec<String> = started
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
            .collect();
        let authorize = url::Url::parse(started.headers()["location"].to_str().unwrap()).unwrap();
        let q: std::collections::HashMap<String, String> =
            authorize.query_pairs().into_owned().collect();
        let mut cb = url::Url::parse(&q["redirect_uri"]).unwrap();
        cb.query_pairs_mut()
            .append_pair("code", "code-1")
            .append_pair("state", &q["state"]);
        http.get(cb.as_str())
            .header("cookie", cookies.join("; "))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    eventually(WITHIN, "the literal-secret row logs in", || async {
        log_in().await == 303
    })
    .await;
    assert!(
        rec.all().contains("mallory-literal-secret"),
        "the provider sees the row's secret"
    );

    // ...then rows written straight into the table name the server's own secrets.
    for (tenant, secret) in [
        ("mallory", "env:SESSION_KEY"),
        ("eve", "file:/proc/self/environ"),
    ] {
        let now = 1;
        let row_exists = store
            .get(
                &TenantId::new(tenant).unwrap(),
                &PlatformName::new("custom-oauth").unwrap(),
            )
            .await
            .unwrap()
            .is_some();
        let o = oidc(secret);
        let sql = if row_exists {
            format!(
                "UPDATE unilogin_platform_config SET app_secret = '{secret}', revision = revision + 1 WHERE tenant_id = '{tenant}'"
            )
        } else {
            format!(
                "INSERT INTO unilogin_platform_config (tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision, deleted_at) \
                 VALUES ('{tenant}', 'custom-oauth', 'oidc', 1, 'eve-client', '{secret}', NULL, NULL, '{{}}', NULL, '{uris}', '{options}', 0, 0, 'sql', {now}, NULL, {now}, 1, 0)",
                uris = o["redirect_uris"],
                options = o["options"],
            )
        };
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .unwrap();
    }
    eventually(WITHIN, "both rows are rejected", || async {
        let s: Value = http
            .get(admin("/status"))
            .bearer_auth(admin_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        s["rejected"] == 2
    })
    .await;
    // mallory keeps its last good configuration (the literal); eve never had one.
    assert_eq!(log_in().await, 303);
    let mut eve = url::Url::parse(&gw.url("auth/eve/custom-oauth/login")).unwrap();
    eve.query_pairs_mut()
        .append_pair("return_to", &format!("http://127.0.0.1:{port}/"));
    let eve = http.get(eve.as_str()).send().await.unwrap();
    assert_eq!(eve.status(), 500, "an entry never valid answers `config`");

    let seen = rec.all();
    assert!(
        !seen.contains(&session_key),
        "the session key reached the provider"
    );
    assert!(
        !seen.contains(admin_token),
        "the admin token reached the provider"
    );
    assert!(
        !seen.contains("SESSION_KEY="),
        "the environment reached the provider"
    );
    assert!(!gw.log_text().contains(&session_key));
}

macro_rules! suite {
    ($name:ident, $kind:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn authentication_on_its_own_listener() {
                authentication_and_tenant_limits($kind, true).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn authentication_under_a_path_prefix() {
                authentication_and_tenant_limits($kind, false).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn secrets_are_write_only() {
                super::secrets_are_write_only($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn audit_log_records_who_when_what() {
                super::audit_log_records_who_when_what($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn event_credentials_are_write_only() {
                super::event_credentials_are_write_only($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn secret_references_need_the_allow_list() {
                super::secret_references_need_the_allow_list($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_row_naming_the_servers_secrets_never_sends_them() {
                super::a_row_naming_the_servers_secrets_never_sends_them($kind).await;
            }
        }
    };
}

suite!(sqlite, Kind::Sqlite);
suite!(postgres, Kind::Postgres);
