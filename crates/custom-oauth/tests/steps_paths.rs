//! `mode: steps` URL templates against hostile values: a `{code}` from the browser (or a
//! `{user_id}` from the platform) of `..`, `../x`, `%2e%2e` or `a/b?c#d` never changes the
//! host or the path of a request, which may carry the app token or the app secret.
//!
//! The platform here is a small recording HTTP server (one canned JSON answer for every path),
//! so the test sees the exact request target and `Host` of everything unilogin sends.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::sso::Sso;
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, Flow, Login, TenantId};
use url::Url;

use unilogin_custom_oauth as _;

const APP_TOKEN: &str = "steps_app_token_0001";
const APP_SECRET: &str = "steps_app_secret_0001";
const CALLBACK: &str = "https://app.acme.example/auth/callback";

/// One request as the platform received it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    host: String,
}

/// The recording platform: every request is answered with the same JSON, whose `uid` the test
/// chooses.
struct Platform {
    base: String,
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    uid: Arc<Mutex<Value>>,
}

impl Platform {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let uid = Arc::new(Mutex::new(json!("u-1001")));
        let (log, answer) = (seen.clone(), uid.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    // Read the body too, so closing the connection never resets it.
                    let length: usize = text
                        .lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                                .and_then(|(_, v)| v.trim().parse().ok())
                        })
                        .unwrap_or(0);
                    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let mut have = head.len() - end;
                    while have < length {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => have += n,
                        }
                    }
                    let mut lines = text.lines();
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_string();
                    let target = first.next().unwrap_or_default().to_string();
                    let host = lines
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case("host"))
                                .map(|(_, v)| v.trim().to_string())
                        })
                        .unwrap_or_default();
                    log.lock().unwrap().push(Seen {
                        method,
                        target,
                        host,
                    });
                    let uid = answer.lock().unwrap().clone();
                    let body = json!({"token": APP_TOKEN, "ttl": 7200, "uid": uid, "sub": uid, "name": "N"})
                        .to_string();
                    let response = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Platform {
            base: format!("http://{host}"),
            host,
            seen,
            uid,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn sso(&self) -> Sso {
        let base = &self.base;
        let config: PlatformConfig = serde_json::from_value(json!({
            "tenant": "acme", "platform": "custom-oauth", "mode": "steps",
            "app_key": "steps_app", "app_secret": APP_SECRET,
            "redirect_uris": [CALLBACK],
            "options": {
                "authorize_url": format!("{base}/authorize?redirect_uri={{redirect_uri}}&state={{state}}"),
                "steps": [
                    {
                        "name": "app_token", "method": "POST", "url": format!("{base}/token"),
                        "params_in": "form",
                        "params": { "appId": "{app_key}", "appSecret": "{app_secret}" },
                        "extract": { "token": "$.token", "expires_in": "$.ttl" }
                    },
                    {
                        "name": "user_id",
                        "url": format!("{base}/identify/{{code}}/info?t={{access_token}}"),
                        "extract": { "user_id": "$.uid" }
                    },
                    {
                        "name": "user_detail",
                        "url": format!("{base}/users/{{user_id}}/profile"),
                        "headers": { "X-Token": "{access_token}" }
                    }
                ]
            }
        }))
        .unwrap();
        config.validate().expect("the configuration validates");
        Sso::builder(StaticConfig::new(vec![config]))
            .build()
            .unwrap()
    }
}

async fn login(sso: &Sso, code: &str) -> Result<Login, Error> {
    let acme = TenantId::new("acme").unwrap();
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&acme, "custom-oauth", Flow::Web, &redirect)
        .await?;
    let callback = Callback {
        code: AuthCode::new(code),
        state: start.pending.state.clone(),
        iss: None,
    };
    sso.finish_web_login(&start.pending, &callback).await
}

/// The decoded path segments of a request target (no dot segment may be among them).
fn segments(target: &str) -> Vec<String> {
    let url = Url::parse(&format!("http://x{target}")).unwrap();
    url.path_segments()
        .unwrap()
        .map(|s| s.to_string())
        .collect()
}

/// Every request went to the platform's host, to one of the configured paths, with the value
/// in its own segment; none has a query beyond the configured one.
fn assert_confined(platform: &Platform) {
    for seen in platform.seen() {
        assert_eq!(seen.host, platform.host, "{seen:?}");
        let path = seen.target.split('?').next().unwrap();
        let segs = segments(&seen.target);
        let ok = match (seen.method.as_str(), segs.as_slice()) {
            ("POST", [t]) => t == "token" && path == "/token",
            ("GET", [first, _, last]) => {
                (first == "identify" && last == "info") || (first == "users" && last == "profile")
            }
            _ => false,
        };
        assert!(ok, "a request left its configured path: {seen:?}");
        assert!(
            !segs.iter().any(|s| s == "." || s == ".."),
            "dot segment in {seen:?}"
        );
        let query = seen.target.split_once('?').map(|(_, q)| q);
        match segs[0].as_str() {
            "identify" => assert_eq!(query, Some(format!("t={APP_TOKEN}").as_str()), "{seen:?}"),
            _ => assert_eq!(query, None, "{seen:?}"),
        }
    }
}

#[tokio::test]
async fn a_hostile_code_never_moves_the_request_that_carries_the_app_token() {
    let platform = Platform::start().await;
    let sso = platform.sso();
    login(&sso, "plain-code-1").await.expect("a normal login");
    assert_confined(&platform);

    // Refused before anything is sent: the value would be (or decode to) a dot segment.
    for code in ["..", ".", "../x", "x/..", "..\\x"] {
        let before = platform.seen().len();
        let err = login(&sso, code).await.expect_err("refused");
        assert!(
            matches!(&err, Error::InvalidCode { code, .. } if code.to_string().contains("{code} in the URL path")),
            "{code:?}: {err:?}"
        );
        assert_eq!(platform.seen().len(), before, "{code:?}: nothing was sent");
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains(APP_TOKEN) && !text.contains(APP_SECRET),
            "{text}"
        );
    }

    // Sent, but as one opaque segment: the platform sees exactly the value.
    for code in ["%2e%2e", "%2E%2E%2Fadmin", "a/b?c#d", "...", "..x", "a b;c"] {
        let before = platform.seen().len();
        login(&sso, code).await.expect("sent as an opaque segment");
        let seen = platform.seen();
        let identify = seen[before..]
            .iter()
            .find(|s| s.target.starts_with("/identify/"))
            .expect("the code step was called");
        let segs = segments(&identify.target);
        let decoded: String = url::form_urlencoded::parse(format!("v={}", segs[1]).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(decoded, code, "{identify:?}");
    }
    assert_confined(&platform);
}

#[tokio::test]
async fn a_hostile_user_id_from_the_platform_never_moves_the_detail_request() {
    let platform = Platform::start().await;
    let sso = platform.sso();
    for uid in ["..", "../../token", "a/../../token?x#y", "", "."] {
        *platform.uid.lock().unwrap() = json!(uid);
        let err = login(&sso, "code-2").await.expect_err("refused");
        // An empty id is already refused when it is extracted.
        assert!(
            matches!(&err, Error::InvalidCode { code, .. } if code.to_string().contains("{user_id} in the URL path"))
                || (uid.is_empty() && matches!(err, Error::BadResponse { .. })),
            "{uid:?}: {err:?}"
        );
        assert!(
            !platform
                .seen()
                .iter()
                .any(|s| s.target.starts_with("/users")),
            "{uid:?}: the detail step was not called"
        );
    }
    *platform.uid.lock().unwrap() = json!("a/b?x#y");
    login(&sso, "code-3").await.expect("an opaque user id");
    assert_confined(&platform);
}
