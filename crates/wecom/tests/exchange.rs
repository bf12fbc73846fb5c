//! The code exchange and the detail step end to end through the core's redirect login, against
//! a minimal local stand-in for `qyapi` (canned answers by path and code).

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::web_login::Callback;
use unilogin_core::{Error, Flow, Login, Result, Sso, TenantId};
use url::Url;

use unilogin_wecom as _;

const CALLBACK: &str = "https://app.example.com/cb";

/// The requests seen, as `path?query` (and the JSON body, if any).
type Seen = Arc<Mutex<Vec<String>>>;

fn answer(path: &str, query: &[(String, String)], body: &str) -> Value {
    let q = |k: &str| {
        query
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    };
    match path {
        "/cgi-bin/gettoken" if q("corpsecret") == "s3cret-value" => {
            json!({"errcode": 0, "access_token": "tok", "expires_in": 7200})
        }
        "/cgi-bin/gettoken" => json!({"errcode": 40001, "errmsg": "invalid credential"}),
        _ if q("access_token") != "tok" => json!({"errcode": 40014, "errmsg": "invalid token"}),
        "/cgi-bin/auth/getuserinfo" => match q("code") {
            "member" => json!({"errcode": 0, "userid": "u1"}),
            "ticket" => json!({"errcode": 0, "userid": "u1", "user_ticket": "tk"}),
            "own-corp" => json!({"errcode": 0, "userid": "wwcorp/u1"}),
            "linked" => json!({"errcode": 0, "userid": "wwother/u9"}),
            "outsider" => json!({"errcode": 0, "openid": "o1", "external_userid": "e1"}),
            "empty" => json!({"errcode": 0}),
            _ => json!({"errcode": 40029, "errmsg": "invalid code"}),
        },
        "/cgi-bin/user/getuserinfo" => json!({"errcode": 0, "UserId": "u1"}),
        "/cgi-bin/user/get" if q("userid") == "u1" => {
            json!({"errcode": 0, "userid": "u1", "name": "Zhang San", "department": [1]})
        }
        "/cgi-bin/auth/getuserdetail" if body.contains("\"user_ticket\":\"tk\"") => {
            json!({"errcode": 0, "userid": "u1", "mobile": "13800000000"})
        }
        _ => json!({"errcode": 60111, "errmsg": "no such member"}),
    }
}

/// Serves [`answer`] on a local port; returns its base URL and the requests seen.
async fn serve() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head, body) = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0usize);
                        if body.len() >= len || n == 0 {
                            break (head.to_string(), body.to_string());
                        }
                    } else if n == 0 {
                        return;
                    }
                };
                let target = head.split(' ').nth(1).unwrap_or("/");
                let url = Url::parse(&format!("http://x{target}")).unwrap();
                let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
                log.lock()
                    .unwrap()
                    .push(format!("{target} {body}").trim().to_string());
                let reply = answer(url.path(), &query, &body).to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

async fn sso(options: Value, secret: &str) -> (Sso, Seen) {
    let (base, seen) = serve().await;
    let config: PlatformConfig = serde_json::from_value(json!({
        "tenant": "acme", "platform": "wecom",
        "app_key": "wwcorp", "corp_id": "wwcorp", "agent_id": "1000002",
        "app_secret": secret,
        "hosts": { "qyapi": base },
        "redirect_uris": [CALLBACK],
        "options": options,
    }))
    .unwrap();
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap();
    (sso, seen)
}

/// Starts a redirect login of `flow` and comes back with `code` and the pending login's state.
async fn login(sso: &Sso, flow: Flow, code: &str) -> Result<Login> {
    let tenant = TenantId::new("acme").unwrap();
    let start = sso
        .start_web_login(&tenant, "wecom", flow, &Url::parse(CALLBACK).unwrap())
        .await?;
    let query = format!("code={code}&state={}", start.pending.state.expose());
    let callback = Callback::from_query(url::form_urlencoded::parse(query.as_bytes()))?;
    sso.finish_web_login(&start.pending, &callback).await
}

fn paths(seen: &Seen) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|r| r.split('?').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn members_log_in_through_both_flows() {
    let (sso, seen) = sso(json!({}), "s3cret-value").await;
    for flow in [Flow::H5, Flow::Web] {
        let login = login(&sso, flow, "member").await.expect("member");
        assert_eq!(login.profile.user_id.as_deref(), Some("u1"));
        assert_eq!(login.profile.name.as_deref(), Some("Zhang San"));
        assert_eq!(login.flow, flow);
    }
    let own = login(&sso, Flow::Web, "own-corp")
        .await
        .expect("own corp prefix");
    assert_eq!(own.profile.user_id.as_deref(), Some("u1"));
    assert_eq!(
        paths(&seen),
        [
            "/cgi-bin/gettoken",
            "/cgi-bin/auth/getuserinfo",
            "/cgi-bin/user/get",
            "/cgi-bin/auth/getuserinfo",
            "/cgi-bin/user/get",
            "/cgi-bin/auth/getuserinfo",
            "/cgi-bin/user/get",
        ],
        "one token for the app"
    );
    let requests = seen.lock().unwrap().clone();
    assert!(requests[0].contains("corpid=wwcorp"), "{requests:?}");
    assert!(requests[2].contains("userid=u1"), "{requests:?}");
}

#[tokio::test]
async fn a_user_ticket_adds_the_private_document() {
    let (sso, seen) = sso(json!({"scope": "snsapi_privateinfo"}), "s3cret-value").await;
    let login = login(&sso, Flow::H5, "ticket").await.expect("ticket");
    assert_eq!(login.profile.mobile.as_deref(), Some("13800000000"));
    let requests = seen.lock().unwrap().clone();
    assert!(
        requests.iter().any(
            |r| r.starts_with("/cgi-bin/auth/getuserdetail?access_token=tok ")
                && r.ends_with("{\"user_ticket\":\"tk\"}")
        ),
        "{requests:?}"
    );
}

#[tokio::test]
async fn the_legacy_exchange_reads_capitalised_ids() {
    let (sso, seen) = sso(json!({"userinfo_api": "legacy"}), "s3cret-value").await;
    let login = login(&sso, Flow::Web, "member").await.expect("legacy");
    assert_eq!(login.profile.user_id.as_deref(), Some("u1"));
    assert!(paths(&seen).contains(&"/cgi-bin/user/getuserinfo".to_string()));
}

#[tokio::test]
async fn outsiders_linked_corps_and_bad_codes_are_refused() {
    let (sso, seen) = sso(json!({}), "s3cret-value").await;
    for code in ["outsider", "linked"] {
        let err = login(&sso, Flow::H5, code).await.expect_err(code);
        assert!(matches!(err, Error::NotInTenant { .. }), "{code}: {err:?}");
    }
    let err = login(&sso, Flow::Web, "spent").await.expect_err("bad code");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
    let err = login(&sso, Flow::Web, "empty").await.expect_err("no id");
    assert!(matches!(err, Error::BadResponse { .. }), "{err:?}");
    assert!(!paths(&seen).contains(&"/cgi-bin/user/get".to_string()));
}

#[tokio::test]
async fn a_wrong_secret_is_a_configuration_error() {
    let (sso, seen) = sso(json!({}), "wrong").await;
    let err = login(&sso, Flow::H5, "member").await.expect_err("secret");
    match &err {
        Error::Misconfigured { hint, .. } => assert!(hint.contains("app_secret"), "{hint}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    assert_eq!(
        paths(&seen),
        ["/cgi-bin/gettoken"],
        "no retry on a bad secret"
    );
}
