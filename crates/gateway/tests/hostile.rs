//! The gateway against hostile clients (docs/security.md, "Hostile clients"): floods of login
//! starts and invented codes, planted cookies, forged callbacks, cross-site logouts, slow and
//! greedy connections, malformed requests, probing for tenants and metrics.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Started, assert_error, cookie_value, query_of, start_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::dingtalk::endpoints;

/// Limits small enough to reach in a test; clients are told apart by `X-Forwarded-For` behind
/// one trusted proxy.
const TIGHT: &str = "proxy: {trusted_proxies: 1}
rate_limits:
  login_per_client: {per_minute: 1, burst: 5}
  login_global: {per_minute: 60000, burst: 10000}
  code_per_client: {per_minute: 1, burst: 3}
  upstream_per_tenant: {per_minute: 1, burst: 10}
  other_per_client: {per_minute: 60000, burst: 10000}
";

fn ip(i: u32) -> String {
    let [a, b, c, d] = (0x0a00_0000u32 + i).to_be_bytes();
    format!("{a}.{b}.{c}.{d}")
}

fn upstream_code_calls(gw: &support::TestGateway) -> u64 {
    gw.fake.calls(endpoints::GETUSERINFO) + gw.fake.calls(endpoints::USER_ACCESS_TOKEN)
}

#[tokio::test]
async fn a_login_start_flood_from_one_client_leaves_other_clients_logging_in() {
    let gw = start_with(TIGHT, None, |b| b).await;
    let return_to = gw.gateway.config().public_url.to_string();
    let mut limited = 0;
    for _ in 0..50 {
        let r = gw
            .http
            .get(gw.login_url("demo", &return_to))
            .header("x-forwarded-for", "6.6.6.6, 192.0.2.66")
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            limited += 1;
            assert!(r.headers().contains_key("retry-after"));
        }
    }
    assert_eq!(limited, 45, "burst of 5, then refused");
    // The client cannot escape by writing its own X-Forwarded-For entries: the proxy's is used.
    let r = gw
        .http
        .get(gw.login_url("demo", &return_to))
        .header("x-forwarded-for", "7.7.7.7, 192.0.2.66")
        .send()
        .await
        .unwrap();
    assert_error(r, 429, "too_many_requests", "login starts").await;
    // Another client logs in end to end.
    let r = gw
        .http
        .get(gw.login_url("demo", &return_to))
        .header("x-forwarded-for", "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let binding = cookie_value(&r, "unilogin_login").unwrap();
    let authorize = url::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let started = Started {
        state: query_of(&authorize)["state"].clone(),
        authorize,
        binding,
    };
    let cb = gw.approve(&started, "user001").await;
    let r = gw
        .http
        .get(cb.as_str())
        .header("cookie", format!("unilogin_login={}", started.binding))
        .header("x-forwarded-for", "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
}

#[tokio::test]
async fn invented_codes_are_capped_per_client_and_per_tenant_and_malformed_ones_cost_nothing() {
    let gw = start_with(TIGHT, None, |b| b).await;
    let post = |code: String, client: String| {
        let http = gw.http.clone();
        let url = gw.url("auth/demo/dingtalk/code");
        async move {
            http.post(url)
                .header("x-forwarded-for", client)
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap()
        }
    };
    // Malformed codes: refused before any upstream call.
    for (i, bad) in ["../x", "a b", "<script>", &"c".repeat(600)]
        .iter()
        .enumerate()
    {
        let r = post(bad.to_string(), ip(1000 + i as u32)).await;
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(upstream_code_calls(&gw), 0);
    // One client: 3 attempts, then 429.
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(post(format!("invented{i}"), ip(2)).await.status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    // Many clients: the tenant's cap (burst 10) bounds what reaches the platform.
    for i in 0..40 {
        let _ = post(format!("invented-{i}"), ip(100 + i)).await;
    }
    let calls = upstream_code_calls(&gw);
    assert!(calls <= 10 * 2, "{calls} upstream calls");
    let r = post("invented-x".into(), ip(500)).await;
    assert_error(r, 429, "too_many_requests", "this tenant").await;
}

#[tokio::test]
async fn a_client_chosen_binding_is_never_adopted() {
    let gw = start_with("", None, |b| b).await;
    let planted = "ab".repeat(32);
    let started = gw.start_login("demo", Some(&planted)).await;
    assert_ne!(started.binding, planted);
    // A binding the gateway issued is kept for a second tab.
    let again = gw.start_login("demo", Some(&started.binding)).await;
    assert_eq!(again.binding, started.binding);
    // The planted value does not finish the login; the issued one does.
    let cb = gw.approve(&started, "user001").await;
    let r = gw.callback(&cb, Some(&planted)).await;
    assert_error(r, 400, "state", "another browser").await;
    let r = gw.callback(&cb, Some(&started.binding)).await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn secure_cookies_carry_the_host_prefix_and_root_path() {
    let gw = start_with("", None, |b| b).await;
    let mut config = gw.gateway.config().clone();
    config.cookies.secure = true;
    assert_eq!(
        config.cookies.name("unilogin_login"),
        "__Host-unilogin_login"
    );
    // The served gateway (secure: false for plain-http tests) sets its binding at Path=/.
    let return_to = gw.gateway.config().public_url.to_string();
    let r = gw
        .http
        .get(gw.login_url("demo", &return_to))
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(set.contains("Path=/;"), "{set}");
    // A gateway configured with `Secure`: __Host- and Secure, no Domain.
    let mut c = unilogin_gateway::GatewayConfig::from_yaml("cookies: {secure: true}").unwrap();
    c.public_url = gw.gateway.config().public_url.clone();
    let v = unilogin_gateway::cookies::set(
        &c.cookies,
        &c.cookies.name("unilogin_login"),
        "v",
        "/",
        Duration::from_secs(60),
    )
    .unwrap();
    let v = v.to_str().unwrap();
    assert!(v.starts_with("__Host-unilogin_login=v; Path=/;"), "{v}");
    assert!(v.contains("; Secure") && !v.contains("Domain"), "{v}");
}

#[tokio::test]
async fn a_forged_error_callback_neither_spends_the_state_nor_shows_its_text() {
    let gw = start_with("", None, |b| b).await;
    let victim = gw.start_login("demo", None).await;
    // The attacker's link carries the victim's state and phishing text, without the binding.
    let mut link = gw.gateway.callback_url("demo", "dingtalk").unwrap();
    link.query_pairs_mut()
        .append_pair("state", &victim.state)
        .append_pair("error", "Call +1-555-0100 now")
        .append_pair("error_description", "Your account is locked, call us");
    let r = gw.callback(&link, None).await;
    let body = assert_error(r, 400, "platform_error", "error `other`").await;
    let text = body.to_string();
    assert!(!text.contains("555") && !text.contains("locked"), "{text}");
    // An allow-listed code is named.
    let mut deny = gw.gateway.callback_url("demo", "dingtalk").unwrap();
    deny.query_pairs_mut()
        .append_pair("state", &victim.state)
        .append_pair("error", "access_denied");
    assert_error(
        gw.callback(&deny, None).await,
        400,
        "platform_error",
        "access_denied",
    )
    .await;
    // The victim's login is intact.
    let cb = gw.approve(&victim, "user001").await;
    assert_eq!(gw.callback(&cb, Some(&victim.binding)).await.status(), 303);
}

#[tokio::test]
async fn a_cross_site_logout_is_refused() {
    let gw = start_with("", None, |b| b).await;
    let token = gw.pc_login("demo", "user001").await;
    for (name, value) in [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let r = gw
            .http
            .post(gw.url("logout"))
            .bearer_auth(&token)
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_error(r, 403, "cross_origin", "this site").await;
    }
    assert_eq!(gw.me(&token).await.status(), 200, "still signed in");
    let own = gw
        .gateway
        .config()
        .public_url
        .origin()
        .ascii_serialization();
    let r = gw
        .http
        .post(gw.url("logout"))
        .bearer_auth(&token)
        .header("origin", own)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(gw.me(&token).await.status(), 401);
}

async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slow_headers_are_cut_off_and_connections_are_capped() {
    let gw = start_with(
        "limits: {header_read_timeout_ms: 300, max_connections_per_client: 2}",
        None,
        |b| b,
    )
    .await;
    let addr = format!(
        "{}:{}",
        gw.base.host_str().unwrap(),
        gw.base.port().unwrap()
    );
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await,
        "a connection with unfinished headers must be closed"
    );
    let _a = TcpStream::connect(&addr).await.unwrap();
    let _b = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(&addr).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_secs(1)).await,
        "the third connection of one client must be closed at once"
    );
}

#[tokio::test]
async fn http_layer_refusals_have_the_documented_form() {
    let gw = start_with("limits: {body_read_timeout_ms: 300}", None, |b| b).await;
    // 405
    let r = gw.http.delete(gw.url("me")).send().await.unwrap();
    assert_error(r, 405, "method_not_allowed", "method").await;
    // 414
    let long = format!("{}?q={}", gw.url("healthz"), "a".repeat(9000));
    assert_error(
        gw.http.get(long).send().await.unwrap(),
        414,
        "uri_too_long",
        "bytes",
    )
    .await;
    // 431
    let mut req = gw.http.get(gw.url("healthz"));
    for i in 0..80 {
        req = req.header(format!("x-h{i}"), "v");
    }
    assert_error(
        req.send().await.unwrap(),
        431,
        "headers_too_large",
        "headers",
    )
    .await;
    // A wrongly typed JSON body: 400, not 422.
    let r = gw
        .http
        .post(gw.url("auth/demo/dingtalk/code"))
        .json(&json!({ "code": 5 }))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "bad_request", "").await;
    // A declared body above the limit: 413 at once, before any body is sent.
    let addr = format!(
        "{}:{}",
        gw.base.host_str().unwrap(),
        gw.base.port().unwrap()
    );
    let raw = |head: String| {
        let addr = addr.clone();
        async move {
            let mut s = TcpStream::connect(&addr).await.unwrap();
            s.write_all(head.as_bytes()).await.unwrap();
            let started = Instant::now();
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            loop {
                match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                    Ok(Ok(n)) => {
                        out.extend_from_slice(&buf[..n]);
                        if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                            break;
                        }
                    }
                }
            }
            (String::from_utf8_lossy(&out).to_string(), started.elapsed())
        }
    };
    let (answer, took) = raw(
        "POST /auth/demo/dingtalk/code HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 10000000\r\n\r\n"
            .into(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload_too_large\""), "{answer}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // A body shorter than declared: 408 after the body timeout, not a 30 s wait and a 504.
    let (answer, took) = raw(
        "POST /auth/demo/dingtalk/code HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"code\":"
            .into(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[tokio::test]
async fn tenants_cannot_be_enumerated_and_answers_carry_security_headers() {
    let gw = start_with("", None, |b| b).await;
    let a = gw
        .http
        .get(gw.url("auth/nosuch/dingtalk/login"))
        .send()
        .await
        .unwrap();
    let b = gw
        .http
        .get(gw.url("auth/demo/feishu/login"))
        .send()
        .await
        .unwrap();
    let c = gw
        .http
        .get(gw.url("auth/demo/myspace/login"))
        .send()
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for r in [a, b, c] {
        assert_eq!(r.status(), 404);
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'none'")
        );
        let mut v: Value = r.json().await.unwrap();
        v.as_object_mut().unwrap().remove("trace_id");
        bodies.push(v);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
    // HSTS only behind https.
    assert!(
        !gw.http
            .get(gw.url("healthz"))
            .send()
            .await
            .unwrap()
            .headers()
            .contains_key("strict-transport-security")
    );
}

#[tokio::test]
async fn metrics_are_not_public_unless_a_token_is_configured() {
    let gw = start_with("", None, |b| b).await;
    assert_eq!(
        gw.http
            .get(gw.url("metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    drop(gw);
    let dir = std::env::temp_dir().join(format!("unilogin-metrics-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("token");
    std::fs::write(&file, "s3cret-metrics-token\n").unwrap();
    let ops_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!(
        "ops: {{metrics_token: 'file:{}', listen: '127.0.0.1:{ops_port}'}}",
        file.display()
    );
    let gw = start_with(&yaml, None, |b| b).await;
    let r = gw.http.get(gw.url("metrics")).send().await.unwrap();
    assert_error(r, 401, "unauthenticated", "metrics token").await;
    let r = gw
        .http
        .get(gw.url("metrics"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .get(gw.url("metrics"))
        .bearer_auth("s3cret-metrics-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The operations listener serves them without a token, and nothing else.
    let mut ok = false;
    for _ in 0..50 {
        if let Ok(r) = gw
            .http
            .get(format!("http://127.0.0.1:{ops_port}/metrics"))
            .send()
            .await
        {
            assert_eq!(r.status(), 200);
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the operations listener answers");
    let r = gw
        .http
        .get(format!("http://127.0.0.1:{ops_port}/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let _ = std::fs::remove_dir_all(&dir);
}
