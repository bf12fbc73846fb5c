//! The OpenID Provider's clients in configuration, hot reloaded (issue #23): managed through
//! the admin API in a real SQLite file database — validated before they are stored, applied on
//! the replica that took the change at once and on another one after a poll, limited to the
//! tenants of a tenant-limited token, updated only against the revision read, their secret
//! hashed and never answered — and read from a tenants file's `oidc_clients`, where a broken
//! change keeps the last good set and shows in `/readyz`.

mod config_support;

use std::time::Duration;

use config_support::db::{self, Kind};
use config_support::{GENEROUS_LIMITS, Served, TempDir, client, dingtalk_entry, eventually, serve};
use serde_json::{Value, json};
use unilogin::sql::{SecretCipher, SqlConfigStore};
use unilogin_provider::sha256_hex;
use unilogin_testkit::dingtalk::{self, DEFAULT_APP_KEY, DEFAULT_APP_SECRET};
use url::Url;

const OPS_TOKEN: &str = "ops-token-0123456789abcdef";
const ACME_TOKEN: &str = "acme-token-0123456789abcdef";
const SECRET: &str = "grafana-client-secret-0123456789";
const WITHIN: Duration = Duration::from_secs(5);
const RETURN_TO: &str = "https://app.acme.example/after-login";
/// A PKCE challenge (43 unreserved characters).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn redirect_uri(client_id: &str) -> String {
    format!("https://{client_id}.example/login/generic_oauth")
}

/// A confidential client document of tenant `tenant` (without `client_id`), its secret given
/// to be hashed.
fn document(client_id: &str, tenant: &str) -> Value {
    json!({
        "redirect_uris": [redirect_uri(client_id)],
        "tenants": [tenant],
        "client_secret": SECRET,
    })
}

/// How `GET /oidc/authorize` answered for a client.
#[derive(Debug, PartialEq)]
enum Authorize {
    /// Sent on to a login (a redirect that is not an error redirect to the client).
    Login,
    /// The provider's error page for an unknown client.
    UnknownClient,
    /// Anything else (status, location, body).
    Other(u16, Option<String>, String),
}

async fn authorize(gw: &Served, client_id: &str) -> Authorize {
    let mut url = Url::parse(&gw.url("oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", &redirect_uri(client_id))
        .append_pair("scope", "openid profile")
        .append_pair("state", "st-1")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let r = gw.http.get(url.as_str()).send().await.unwrap();
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let body = r.text().await.unwrap();
    match (&location, status) {
        (Some(to), 300..=399)
            if !to.starts_with(&redirect_uri(client_id)) && !to.contains("error=") =>
        {
            Authorize::Login
        }
        (None, 400) if body.contains("unknown client") => Authorize::UnknownClient,
        _ => Authorize::Other(status, location, body),
    }
}

/// `POST /oidc/token` with a code that does not exist, authenticated with `secret`: the error
/// code (`invalid_grant` once the client authenticated, `invalid_client` otherwise).
async fn token_error(gw: &Served, client_id: &str, secret: &str) -> String {
    let r = gw
        .http
        .post(gw.url("oidc/token"))
        .basic_auth(client_id, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", &redirect_uri(client_id)),
        ])
        .send()
        .await
        .unwrap();
    r.json::<Value>().await.unwrap()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Two gateways over one fresh SQLite file database, the provider on, the admin API under
/// `/admin` (tokens `ops`: every tenant; `acme-admins`: only acme), tenants acme and globex
/// on the DingTalk fake.
struct Setup {
    replicas: [Served; 2],
    store: SqlConfigStore,
    http: reqwest::Client,
    /// Every admin answer's text, to look for the secret and its hash in.
    seen: std::sync::Mutex<Vec<String>>,
    _fake: dingtalk::FakeDingTalk,
    _dir: TempDir,
}

async fn setup() -> Setup {
    let fake = dingtalk::start().await;
    let dir = TempDir::new("oidc-clients");
    let url = db::fresh_database(Kind::Sqlite).await;
    let spec = format!("k1:{}", "cd".repeat(32));
    let keys = dir.write("secret-keys", &spec);
    let ops = dir.write("ops-token", OPS_TOKEN);
    let acme = dir.write("acme-token", ACME_TOKEN);
    let yaml = format!(
        "tenants_database: {{url: '{url}', secret_keys: 'file:{keys}'}}\n\
         oidc_provider: {{enabled: true}}\n\
         admin:\n  enabled: true\n  listen: null\n  path_prefix: /admin\n  tokens:\n\
         \x20   - {{name: ops, token: 'file:{ops}'}}\n\
         \x20   - {{name: acme-admins, token: 'file:{acme}', tenants: [acme]}}\n\
         reload: {{poll_ms: 100, full_secs: 0}}\n{GENEROUS_LIMITS}",
        keys = keys.display(),
        ops = ops.display(),
        acme = acme.display(),
    );
    let replicas = [serve(&yaml).await, serve(&yaml).await];
    let store = SqlConfigStore::connect(&url, SecretCipher::parse(&spec).unwrap())
        .await
        .unwrap();
    let s = Setup {
        replicas,
        store,
        http: client(),
        seen: std::sync::Mutex::new(Vec::new()),
        _fake: fake,
        _dir: dir,
    };
    for tenant in ["acme", "globex"] {
        let entry = dingtalk_entry(&s._fake, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RETURN_TO);
        let (status, _, text) = s
            .call(
                reqwest::Method::POST,
                &format!("/tenants/{tenant}/dingtalk"),
                OPS_TOKEN,
                Some(entry),
                &[],
            )
            .await;
        assert_eq!(status, 201, "{text}");
    }
    s
}

impl Setup {
    /// An admin call on the first replica: status, JSON body, text.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, String) {
        let mut req = self
            .http
            .request(method, self.replicas[0].url(&format!("admin{path}")))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_string());
        let text = r.text().await.unwrap();
        self.seen.lock().unwrap().push(text.clone());
        let mut value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let (Some(tag), Value::Object(m)) = (etag, &mut value) {
            m.insert("__etag".into(), Value::String(tag));
        }
        (status, value, text)
    }

    async fn create(&self, id: &str, token: &str, body: Value) -> (u16, Value, String) {
        self.call(
            reqwest::Method::POST,
            &format!("/oidc-clients/{id}"),
            token,
            Some(body),
            &[],
        )
        .await
    }

    async fn stored_ids(&self) -> Vec<String> {
        self.store
            .list_clients()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.client_id)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_made_through_the_admin_api_serves_at_once_then_on_the_other_replica() {
    let s = setup().await;
    let [here, there] = &s.replicas;
    assert_eq!(authorize(here, "grafana").await, Authorize::UnknownClient);

    let (status, created, text) = s
        .create("grafana", OPS_TOKEN, document("grafana", "acme"))
        .await;
    assert_eq!(status, 201, "{text}");
    assert_eq!(created["client_secret"], "set", "{text}");
    assert_eq!(created["enabled"], true);
    assert_eq!(created["created_by"], "ops");
    assert_eq!(created["document"]["tenants"], json!(["acme"]));
    assert!(
        created["document"].get("client_secret_sha256").is_none(),
        "{text}"
    );
    assert_eq!(created["__etag"], format!("\"{}\"", created["revision"]));
    // Stored hashed: the very hash of the secret, never the secret.
    let stored = s.store.get_client("grafana").await.unwrap().unwrap();
    assert_eq!(stored.body["client_secret_sha256"], sha256_hex(SECRET));
    assert!(stored.body.get("client_secret").is_none());

    // This replica at once (no poll waited for); the hashed secret authenticates.
    assert_eq!(authorize(here, "grafana").await, Authorize::Login);
    assert_eq!(token_error(here, "grafana", SECRET).await, "invalid_grant");
    assert_eq!(
        token_error(here, "grafana", "wrong-secret-0123456789").await,
        "invalid_client"
    );
    // The other replica after a poll.
    eventually(
        WITHIN,
        "the other replica serves the new client",
        || async { authorize(there, "grafana").await == Authorize::Login },
    )
    .await;

    // Disabled: unknown here at once, there after a poll; enabled again: back.
    let (status, off, text) = s
        .call(
            reqwest::Method::POST,
            "/oidc-clients/grafana/disable",
            OPS_TOKEN,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(off["enabled"], false);
    assert_eq!(authorize(here, "grafana").await, Authorize::UnknownClient);
    eventually(
        WITHIN,
        "the other replica drops the disabled client",
        || async { authorize(there, "grafana").await == Authorize::UnknownClient },
    )
    .await;
    let (status, _, text) = s
        .call(
            reqwest::Method::POST,
            "/oidc-clients/grafana/enable",
            OPS_TOKEN,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(authorize(here, "grafana").await, Authorize::Login);

    // An update keeps the secret unless it is given; it needs the revision read.
    let (_, read, _) = s
        .call(
            reqwest::Method::GET,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            None,
            &[],
        )
        .await;
    let mut changed = read["document"].clone();
    changed["scopes"] = json!(["profile"]);
    let (status, body, text) = s
        .call(
            reqwest::Method::PUT,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            Some(changed.clone()),
            &[],
        )
        .await;
    assert_eq!(status, 428, "{text}");
    assert_eq!(body["error"], "precondition_required");
    let stale = format!("\"{}\"", read["revision"].as_i64().unwrap() - 1);
    let (status, body, text) = s
        .call(
            reqwest::Method::PUT,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            Some(changed.clone()),
            &[("if-match", &stale)],
        )
        .await;
    assert_eq!(status, 409, "{text}");
    assert_eq!(body["error"], "conflict");
    let tag = read["__etag"].as_str().unwrap().to_string();
    let (status, updated, text) = s
        .call(
            reqwest::Method::PUT,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            Some(changed.clone()),
            &[("if-match", &tag)],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(updated["document"]["scopes"], json!(["profile"]));
    assert_eq!(updated["client_secret"], "set", "the hash is kept: {text}");
    assert_eq!(token_error(here, "grafana", SECRET).await, "invalid_grant");
    // The `revision` field works like If-Match.
    let mut with_revision = changed.clone();
    with_revision["revision"] = updated["revision"].clone();
    with_revision["client_secret"] = json!("a-rotated-secret-0123456789abcdef");
    let (status, rotated, text) = s
        .call(
            reqwest::Method::PUT,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            Some(with_revision),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        rotated["revision"],
        updated["revision"].as_i64().unwrap() + 1
    );
    assert_eq!(token_error(here, "grafana", SECRET).await, "invalid_client");
    assert_eq!(
        token_error(here, "grafana", "a-rotated-secret-0123456789abcdef").await,
        "invalid_grant"
    );

    // Deleted: unknown here at once, there after a poll; 404 afterwards.
    let (status, _, text) = s
        .call(
            reqwest::Method::DELETE,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(authorize(here, "grafana").await, Authorize::UnknownClient);
    eventually(
        WITHIN,
        "the other replica drops the deleted client",
        || async { authorize(there, "grafana").await == Authorize::UnknownClient },
    )
    .await;
    let (status, _, _) = s
        .call(
            reqwest::Method::GET,
            "/oidc-clients/grafana",
            OPS_TOKEN,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 404);

    // The audit log names the client and shows the secret only as set / changed.
    let (status, audit, text) = s
        .call(
            reqwest::Method::GET,
            "/audit?platform=oidc_client",
            OPS_TOKEN,
            None,
            &[],
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["client_id"], "grafana", "{e}");
            assert_eq!(e["actor"], "ops", "{e}");
            e["action"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        actions,
        ["delete", "update", "update", "enable", "disable", "create"]
    );
    assert_eq!(
        audit["items"][5]["changes"]["client_secret_sha256"], "set",
        "{text}"
    );
    assert_eq!(
        audit["items"][1]["changes"]["client_secret_sha256"], "changed",
        "{text}"
    );

    // Neither the secrets nor their hashes were ever answered.
    let seen = s.seen.lock().unwrap();
    for secret in [SECRET, "a-rotated-secret-0123456789abcdef"] {
        for text in seen.iter() {
            assert!(!text.contains(secret), "{text}");
            assert!(!text.contains(&sha256_hex(secret)), "{text}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_client_is_refused_naming_the_field_and_never_stored() {
    let s = setup().await;
    let with = |field: &str, value: Value| {
        let mut d = document("bad", "acme");
        d[field] = value;
        d
    };
    let without = |field: &str| {
        let mut d = document("bad", "acme");
        d.as_object_mut().unwrap().remove(field);
        d
    };
    let cases = [
        (with("tenants", json!("acme")), "tenants"),
        (with("tenants", json!([])), "tenant"),
        (without("redirect_uris"), "redirect_uris"),
        (with("redirect_uris", json!(["not a url"])), "redirect_uris"),
        (with("grant_types", json!(["refresh_token"])), "grant_types"),
        (with("require_pkce", json!("yes")), "require_pkce"),
        (with("no_such_field", json!(1)), "no_such_field"),
        (with("client_secret", json!("short")), "client_secret"),
        (with("client_secret", json!(42)), "client_secret"),
        (
            with(
                "client_secret_sha256",
                json!(sha256_hex("other-secret-0123456789")),
            ),
            "client_secret_sha256",
        ),
        (with("client_id", json!("another")), "client_id"),
        (
            {
                let mut d = without("client_secret");
                d["token_endpoint_auth_method"] = json!("client_secret_basic");
                d
            },
            "client_secret_sha256",
        ),
    ];
    for (body, field) in cases {
        let (status, answer, text) = s.create("bad", OPS_TOKEN, body.clone()).await;
        assert_eq!(status, 400, "{body}: {text}");
        assert_eq!(answer["error"], "invalid_config", "{text}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
        assert!(
            !message.contains(SECRET) && !message.contains("short"),
            "{message}"
        );
        assert!(s.stored_ids().await.is_empty(), "{body} was stored");
        assert_eq!(
            authorize(&s.replicas[0], "bad").await,
            Authorize::UnknownClient
        );
    }
    // Not JSON, and not a JSON object.
    let (status, _, text) = s.create("bad", OPS_TOKEN, json!(["a", "list"])).await;
    assert_eq!(status, 400, "{text}");
    let r = s
        .http
        .post(s.replicas[0].url("admin/oidc-clients/bad"))
        .bearer_auth(OPS_TOKEN)
        .body("{\"tenants\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "JSON is required");
    // An update to an invalid document leaves the stored one in force.
    let (status, created, text) = s.create("ok", OPS_TOKEN, document("ok", "acme")).await;
    assert_eq!(status, 201, "{text}");
    let mut broken = created["document"].clone();
    broken["redirect_uris"] = json!([]);
    broken["revision"] = created["revision"].clone();
    let (status, answer, text) = s
        .call(
            reqwest::Method::PUT,
            "/oidc-clients/ok",
            OPS_TOKEN,
            Some(broken),
            &[],
        )
        .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        answer["message"].as_str().unwrap().contains("redirect URI"),
        "{text}"
    );
    let stored = s.store.get_client("ok").await.unwrap().unwrap();
    assert_eq!(stored.revision, created["revision"].as_i64().unwrap());
    assert_eq!(authorize(&s.replicas[0], "ok").await, Authorize::Login);
    // A duplicate is a conflict.
    let (status, _, text) = s.create("ok", OPS_TOKEN, document("ok", "acme")).await;
    assert_eq!(status, 409, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_limited_token_manages_only_clients_of_its_tenants() {
    let s = setup().await;
    let (status, _, text) = s
        .create("globex-app", OPS_TOKEN, document("globex-app", "globex"))
        .await;
    assert_eq!(status, 201, "{text}");
    let mut both = document("shared-app", "acme");
    both["tenants"] = json!(["acme", "globex"]);
    let (status, _, text) = s.create("shared-app", OPS_TOKEN, both.clone()).await;
    assert_eq!(status, 201, "{text}");

    // Creating a client of another tenant, or of acme and another: 403, nothing stored.
    let (status, answer, text) = s
        .create("evil", ACME_TOKEN, document("evil", "globex"))
        .await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(answer["error"], "forbidden");
    let (status, _, text) = s.create("evil", ACME_TOKEN, both.clone()).await;
    assert_eq!(status, 403, "{text}");
    assert!(!s.stored_ids().await.contains(&"evil".to_string()));
    let (status, _, text) = s
        .create("acme-app", ACME_TOKEN, document("acme-app", "acme"))
        .await;
    assert_eq!(status, 201, "{text}");

    // It lists and reads only acme's; the others are 403 to read, change, switch or delete.
    let (_, list, _) = s
        .call(reqwest::Method::GET, "/oidc-clients", ACME_TOKEN, None, &[])
        .await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["acme-app"]);
    let (_, list, _) = s
        .call(reqwest::Method::GET, "/oidc-clients", OPS_TOKEN, None, &[])
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3, "{list}");
    for other in ["globex-app", "shared-app"] {
        let path = format!("/oidc-clients/{other}");
        let (status, _, _) = s
            .call(reqwest::Method::GET, &path, ACME_TOKEN, None, &[])
            .await;
        assert_eq!(status, 403, "{other}");
        let mut put = document(other, "acme");
        put["revision"] = json!(1);
        let (status, _, _) = s
            .call(reqwest::Method::PUT, &path, ACME_TOKEN, Some(put), &[])
            .await;
        assert_eq!(status, 403, "{other}");
        let off = format!("{path}/disable");
        let (status, _, _) = s
            .call(reqwest::Method::POST, &off, ACME_TOKEN, None, &[])
            .await;
        assert_eq!(status, 403, "{other}");
        let (status, _, _) = s
            .call(reqwest::Method::DELETE, &path, ACME_TOKEN, None, &[])
            .await;
        assert_eq!(status, 403, "{other}");
        assert_eq!(
            authorize(&s.replicas[0], other).await,
            Authorize::Login,
            "{other}"
        );
    }
    // Its own client may not be moved to another tenant.
    let mut moved = document("acme-app", "globex");
    moved["revision"] = json!(1);
    let (status, _, text) = s
        .call(
            reqwest::Method::PUT,
            "/oidc-clients/acme-app",
            ACME_TOKEN,
            Some(moved),
            &[],
        )
        .await;
    assert_eq!(status, 403, "{text}");
    let stored = s.store.get_client("acme-app").await.unwrap().unwrap();
    assert_eq!(stored.body["tenants"], json!(["acme"]));
    // Without a token nothing is answered.
    let r = s
        .http
        .get(s.replicas[0].url("admin/oidc-clients"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The tenants file: tenant acme on the fake, and `clients` as its `oidc_clients`.
fn tenants_file(fake: &dingtalk::FakeDingTalk, clients: &Value) -> String {
    json!({
        "tenants": { "acme": { "dingtalk": dingtalk_entry(fake, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, RETURN_TO) } },
        "oidc_clients": clients,
    })
    .to_string()
}

fn file_client(client_id: &str) -> Value {
    json!({
        "redirect_uris": [redirect_uri(client_id)],
        "tenants": ["acme"],
        "client_secret_sha256": sha256_hex(SECRET),
    })
}

async fn clients_readiness(gw: &Served) -> Value {
    let r = gw.get("readyz").await;
    assert_eq!(
        r.status(),
        200,
        "a refused client change never makes a replica unready"
    );
    r.json::<Value>().await.unwrap()["checks"]["oidc_clients"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_file_change_reloads_the_clients_and_a_broken_one_keeps_the_last_good() {
    let fake = dingtalk::start().await;
    let dir = TempDir::new("oidc-clients-file");
    let file = dir.write(
        "tenants.yaml",
        &tenants_file(&fake, &json!({ "grafana": file_client("grafana") })),
    );
    let gw = serve(&format!(
        "tenants_file: '{}'\noidc_provider: {{enabled: true}}\n\
         reload: {{poll_ms: 100, full_secs: 0}}\n{GENEROUS_LIMITS}",
        file.display()
    ))
    .await;
    assert_eq!(authorize(&gw, "grafana").await, Authorize::Login);
    assert_eq!(authorize(&gw, "wiki").await, Authorize::UnknownClient);
    let ready = clients_readiness(&gw).await;
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["clients"], 1, "{ready}");
    assert_eq!(ready["source"], "file", "{ready}");

    // A client added: served after a poll.
    dir.write(
        "tenants.yaml",
        &tenants_file(
            &fake,
            &json!({ "grafana": file_client("grafana"), "wiki": file_client("wiki") }),
        ),
    );
    eventually(WITHIN, "the added client is served", || async {
        authorize(&gw, "wiki").await == Authorize::Login
    })
    .await;
    assert_eq!(authorize(&gw, "grafana").await, Authorize::Login);
    assert_eq!(clients_readiness(&gw).await["clients"], 2);

    // A broken client added (no tenants), wiki removed: refused whole, the last good set
    // (grafana and wiki) stays, the broken one is not there, and /readyz says so.
    let mut broken = file_client("broken");
    broken["tenants"] = json!([]);
    dir.write(
        "tenants.yaml",
        &tenants_file(
            &fake,
            &json!({ "grafana": file_client("grafana"), "broken": broken }),
        ),
    );
    eventually(WITHIN, "the refused change shows in /readyz", || async {
        clients_readiness(&gw).await["status"] == "failed"
    })
    .await;
    let ready = clients_readiness(&gw).await;
    assert!(ready["failures"].as_u64().unwrap() >= 1, "{ready}");
    assert_eq!(ready["clients"], 2, "{ready}");
    assert_eq!(authorize(&gw, "grafana").await, Authorize::Login);
    assert_eq!(
        authorize(&gw, "wiki").await,
        Authorize::Login,
        "last good kept"
    );
    assert_eq!(authorize(&gw, "broken").await, Authorize::UnknownClient);

    // Fixed: in force after a poll, and /readyz is ok again.
    dir.write(
        "tenants.yaml",
        &tenants_file(
            &fake,
            &json!({ "grafana": file_client("grafana"), "fixed": file_client("fixed") }),
        ),
    );
    eventually(WITHIN, "the fixed set is served", || async {
        authorize(&gw, "fixed").await == Authorize::Login
    })
    .await;
    assert_eq!(authorize(&gw, "wiki").await, Authorize::UnknownClient);
    assert_eq!(clients_readiness(&gw).await["status"], "ok");
}
