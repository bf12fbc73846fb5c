//! HTTP tests of every gateway endpoint, over real loopback HTTP, against the DingTalk fake:
//! the happy paths and every refusal (bad / replayed / expired / foreign state, foreign
//! return_to, unknown tenant or platform, disabled tenant, upstream rate limit, …).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{assert_error, cookie_value, query_of, start, start_with};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::Fault;
use unilogin_testkit::dingtalk::endpoints;
use url::Url;

const DINGTALK_UA: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0) Mobile/15E148 AliApp(DingTalk/7.0.40) language/zh-CN";

#[tokio::test]
async fn pc_login_signs_in_and_redirects_to_return_to() {
    let gw = start().await;
    let started = gw.start_login("demo", None).await;
    // The browser goes to the platform's authorize page with our callback and state.
    let q = query_of(&started.authorize);
    assert_eq!(
        q["redirect_uri"],
        gw.url("auth/demo/dingtalk/callback"),
        "{}",
        started.authorize
    );
    assert_eq!(started.state.len(), 64);
    assert!(started.authorize.as_str().starts_with(gw.fake.base_url()));
    let cb = gw.approve(&started, "user001").await;
    // DingTalk calls back with `authCode`, not `code`.
    assert!(query_of(&cb).contains_key("authCode"), "{cb}");
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], gw.base.as_str());
    let set = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"),
        "{set}"
    );
    let token = cookie_value(&resp, "unilogin_session").unwrap();
    // The cookie works for /me, and so does the bearer header.
    let me: Value = gw
        .http
        .get(gw.url("me"))
        .header("cookie", format!("unilogin_session={token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["uid"], "user001");
    assert_eq!(me["tenant"], "demo");
    assert_eq!(me["platform"], "dingtalk");
    assert_eq!(me["scope"], "user:read");
    assert_eq!(me["sub"], "demo:dingtalk:user001");
    assert_eq!(gw.me(&token).await.status(), 200);
    // The home page shows the user as signed in.
    let home = gw
        .http
        .get(gw.url("/"))
        .header("cookie", format!("unilogin_session={token}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        home.contains("Signed in as <strong id=\"user-name\">Zhang San</strong>"),
        "{home}"
    );
}

#[tokio::test]
async fn scopes_follow_the_tenant_rules() {
    let gw = start().await;
    let token = gw.pc_login("demo", "user002").await;
    let me: Value = gw.me(&token).await.json().await.unwrap();
    assert_eq!(me["scope"], "user:read admin:write");
}

#[tokio::test]
async fn replayed_state_is_refused() {
    let gw = start().await;
    let started = gw.start_login("demo", None).await;
    let cb = gw.approve(&started, "user001").await;
    assert_eq!(gw.callback(&cb, Some(&started.binding)).await.status(), 303);
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "already used").await;
}

#[tokio::test]
async fn forged_and_missing_state_are_refused() {
    let gw = start().await;
    let started = gw.start_login("demo", None).await;
    let cb = gw.approve(&started, "user001").await;
    let mut forged = cb.clone();
    let code = query_of(&cb)["authCode"].clone();
    forged
        .query_pairs_mut()
        .clear()
        .append_pair("authCode", &code)
        .append_pair("state", &"0".repeat(64));
    let resp = gw.callback(&forged, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "unknown").await;
    let mut missing = cb.clone();
    missing
        .query_pairs_mut()
        .clear()
        .append_pair("authCode", &code);
    let resp = gw.callback(&missing, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "missing").await;
    // The genuine state is still usable after those attempts.
    assert_eq!(gw.callback(&cb, Some(&started.binding)).await.status(), 303);
}

#[tokio::test]
async fn state_from_another_browser_is_refused_and_burnt() {
    let gw = start().await;
    let started = gw.start_login("demo", None).await;
    let cb = gw.approve(&started, "user001").await;
    // An attacker who got hold of the callback URL, without the victim's cookie.
    let resp = gw.callback(&cb, None).await;
    assert_error(resp, 400, "state", "another browser").await;
    // A binding the gateway did not issue is no binding at all.
    let resp = gw.callback(&cb, Some(&"ab".repeat(32))).await;
    assert_error(resp, 400, "state", "another browser").await;
    // The attempts spent nothing (they could not even name the login): the owner signs in,
    // once.
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_eq!(resp.status(), 303);
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "already used").await;
}

#[tokio::test]
async fn state_of_another_tenant_is_refused() {
    let gw = start().await;
    let started = gw.start_login("acme", None).await;
    let cb = gw.approve(&started, "user001").await;
    let foreign = Url::parse(&format!(
        "{}?{}",
        gw.url("auth/demo/dingtalk/callback"),
        cb.query().unwrap()
    ))
    .unwrap();
    let resp = gw.callback(&foreign, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "another tenant or platform").await;
}

#[tokio::test]
async fn expired_state_is_refused() {
    let gw = start_with("login: {state_ttl_secs: 1}", None, |b| b).await;
    let started = gw.start_login("demo", None).await;
    let cb = gw.approve(&started, "user001").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "expired").await;
}

#[tokio::test]
async fn binding_cookie_is_reused_across_tabs() {
    let gw = start().await;
    let first = gw.start_login("demo", None).await;
    let second = gw.start_login("demo", Some(&first.binding)).await;
    assert_eq!(first.binding, second.binding);
    assert_ne!(first.state, second.state);
    // Both tabs can finish.
    for s in [&first, &second] {
        let cb = gw.approve(s, "user001").await;
        assert_eq!(gw.callback(&cb, Some(&s.binding)).await.status(), 303);
    }
}

#[tokio::test]
async fn platform_error_shows_a_clear_page_and_burns_the_state() {
    let gw = start().await;
    let started = gw.start_login("demo", None).await;
    let mut cb = Url::parse(&gw.url("auth/demo/dingtalk/callback")).unwrap();
    cb.query_pairs_mut()
        .append_pair("error", "access_denied")
        .append_pair("error_description", "<b>user said no</b>")
        .append_pair("state", &started.state);
    let resp = gw
        .http
        .get(cb.as_str())
        .header("accept", "text/html")
        .header("cookie", format!("unilogin_login={}", started.binding))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("access_denied"), "{page}");
    // The link's own text is never shown, escaped or not.
    assert!(!page.contains("user said no"), "{page}");
    // The state cannot be used afterwards.
    let code = gw.fake.approve_web_login("user001");
    let mut cb = Url::parse(&gw.url("auth/demo/dingtalk/callback")).unwrap();
    cb.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &started.state);
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "already used").await;
}

#[tokio::test]
async fn callback_without_code_is_refused() {
    let gw = start().await;
    let started = gw.start_login("demo", None).await;
    let mut cb = Url::parse(&gw.url("auth/demo/dingtalk/callback")).unwrap();
    cb.query_pairs_mut().append_pair("state", &started.state);
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_error(
        resp,
        400,
        "invalid_callback",
        "no usable authorization code",
    )
    .await;
    // The state was spent by that attempt.
    let code = gw.fake.approve_web_login("user001");
    cb.query_pairs_mut().append_pair("code", &code);
    let resp = gw.callback(&cb, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "already used").await;
}

#[tokio::test]
async fn foreign_return_to_is_refused() {
    let gw = start().await;
    let base = gw.base.as_str().trim_end_matches('/').to_string();
    for bad in [
        "https://evil.example/".to_string(),
        format!("{base}/x"),
        format!("{base}//evil.example/"),
        format!("{base}/@evil.example"),
        base.replace("127.0.0.1", "127.0.0.1.evil.example"),
        "//evil.example/".to_string(),
        "javascript:alert(1)".to_string(),
    ] {
        let resp = gw
            .http
            .get(gw.login_url("demo", &bad))
            .send()
            .await
            .unwrap();
        assert_error(resp, 400, "redirect_not_allowed", "not allowed").await;
    }
    // The second listed URI is accepted exactly.
    let ok = gw
        .http
        .get(gw.login_url("demo", &format!("{base}/done")))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
}

#[tokio::test]
async fn unknown_tenant_or_platform_is_404_and_disabled_is_403() {
    let gw = start().await;
    let base = gw.base.to_string();
    let get = |path: String| {
        let http = gw.http.clone();
        let url = gw.url(&path);
        async move { http.get(url).send().await.unwrap() }
    };
    // Unknown tenant, unknown platform, malformed id: one answer, naming nothing.
    let r = get(format!("auth/nobody/dingtalk/login?return_to={base}")).await;
    assert_error(r, 404, "not_found", "no such login").await;
    let r = get(format!("auth/demo/myspace/login?return_to={base}")).await;
    assert_error(r, 404, "not_found", "no such login").await;
    let r = get(format!("auth/bad%20id/dingtalk/login?return_to={base}")).await;
    assert_error(r, 404, "not_found", "no such login").await;
    let r = get(format!("auth/off/dingtalk/login?return_to={base}")).await;
    assert_error(r, 403, "disabled", "disabled").await;
    let r = get("auth/off/dingtalk/callback?code=x&state=y".into()).await;
    assert_error(r, 403, "disabled", "disabled").await;
    let r = gw.post_code("off", "whatever").await;
    assert_error(r, 403, "disabled", "disabled").await;
    let r = gw.post_code("nobody", "whatever").await;
    assert_error(r, 404, "not_found", "no such login").await;
    let r = get("no/such/route".into()).await;
    assert_error(r, 404, "not_found", "no such endpoint").await;
}

#[tokio::test]
async fn h5_client_gets_the_jsapi_page() {
    let gw = start().await;
    let resp = gw
        .http
        .get(gw.login_url("demo", gw.base.as_str()))
        .header("user-agent", DINGTALK_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // No state or binding cookie for the JSAPI path: the code comes back by POST.
    assert!(resp.headers().get("set-cookie").is_none());
    let page = resp.text().await.unwrap();
    assert!(page.contains("dd.getAuthCode"), "{page}");
    assert!(page.contains("\"corpId\":\"dingfakecorp0001\""), "{page}");
    assert!(page.contains("/auth/demo/dingtalk/code"), "{page}");
    assert!(
        page.contains("dingtalk-jsapi"),
        "the JSAPI script is loaded: {page}"
    );
}

#[tokio::test]
async fn h5_code_exchange_returns_profile_and_session() {
    let gw = start().await;
    let code = gw.fake.issue_h5_code("user001");
    let resp = gw.post_code("demo", &code).await;
    assert_eq!(resp.status(), 200);
    assert!(cookie_value(&resp, "unilogin_session").is_some());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["profile"]["user_id"], "user001");
    assert_eq!(body["profile"]["name"], "Zhang San");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "user:read");
    assert!(body["expires_in"].as_u64().unwrap() > 3500);
    let token = body["token"].as_str().unwrap();
    assert_eq!(gw.me(token).await.status(), 200);
    // The code is single use upstream: the same code again is refused with a clear kind.
    let resp = gw.post_code("demo", &code).await;
    assert_error(resp, 400, "invalid_code", "invalid").await;
}

#[tokio::test]
async fn h5_code_body_is_validated_and_limited() {
    let gw = start_with("limits: {max_body_bytes: 1024}", None, |b| b).await;
    let url = gw.url("auth/demo/dingtalk/code");
    let r = gw
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "bad_request", "").await;
    let r = gw.http.post(&url).body("code=x").send().await.unwrap();
    assert_error(r, 415, "bad_request", "").await;
    let r = gw.post_code("demo", "").await;
    assert_error(r, 400, "bad_request", "code").await;
    let big = format!("{{\"code\":\"{}\"}}", "x".repeat(4096));
    let r = gw
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "payload_too_large", "").await;
    assert_eq!(gw.fake.total_calls(), 0, "nothing reached the platform");
}

#[tokio::test]
async fn upstream_rate_limit_is_503_with_retry_after() {
    let gw = start().await;
    gw.fake
        .inject(endpoints::GETUSERINFO, Fault::RateLimited)
        .unwrap();
    let code = gw.fake.issue_h5_code("user001");
    let resp = gw.post_code("demo", &code).await;
    assert_eq!(resp.status(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "rate_limited");
    assert!(!body["message"].as_str().unwrap().contains("90002"));
}

#[tokio::test]
async fn me_and_logout() {
    let gw = start().await;
    let r = gw.http.get(gw.url("me")).send().await.unwrap();
    assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"unilogin\"");
    assert_error(r, 401, "unauthenticated", "no session").await;
    let r = gw.me("garbage.token.here").await;
    assert_error(r, 401, "unauthenticated", "invalid").await;

    let token = gw.pc_login("demo", "user001").await;
    assert_eq!(gw.me(&token).await.status(), 200);
    let r = gw
        .http
        .post(gw.url("logout"))
        .header("cookie", format!("unilogin_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cleared = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cleared.starts_with("unilogin_session=;") && cleared.contains("Max-Age=0"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["revoked"], true);
    // The token is revoked until it expires, whichever way it is presented.
    let r = gw.me(&token).await;
    assert_error(r, 401, "unauthenticated", "invalid").await;
    let r = gw
        .http
        .post(gw.url("logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["revoked"], false);
    // Another session of the same user is unaffected.
    let other = gw.pc_login("demo", "user001").await;
    assert_eq!(gw.me(&other).await.status(), 200);
}

#[tokio::test]
async fn token_from_another_issuer_is_refused() {
    let gw = start().await;
    let other = start().await;
    let token = other.pc_login("demo", "user001").await;
    let r = gw.me(&token).await;
    assert_error(r, 401, "unauthenticated", "invalid").await;
}

#[tokio::test]
async fn health_readiness_jwks_and_metrics() {
    let gw = start_with("ops: {metrics_token: metrics-token-for-tests}", None, |b| b).await;
    let r = gw.http.get(gw.url("healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r: Value = gw
        .http
        .get(gw.url("readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "ready");
    assert_eq!(r["checks"]["state_store"], "ok");

    let token = gw.pc_login("demo", "user001").await;
    let jwks: Value = gw
        .http
        .get(gw.url(".well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    // The signing key, then the key the next rotation will sign with (published ahead).
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0]["kid"], keys[1]["kid"]);
    for key in keys {
        assert_eq!(key["alg"], "EdDSA");
        assert!(key.get("d").is_none(), "no private key material");
    }
    // The token's header names the published key.
    use base64_header::kid_of;
    assert_eq!(kid_of(&token), keys[0]["kid"].as_str().unwrap());

    let code = gw.fake.issue_h5_code("user001");
    let _ = gw.post_code("demo", &code).await;
    let _ = gw.post_code("demo", &code).await;
    let text = gw
        .http
        .get(gw.url("metrics"))
        .bearer_auth("metrics-token-for-tests")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "unilogin_logins_total{tenant=\"demo\",platform=\"dingtalk\",flow=\"web\",outcome=\"success\"} 1",
        "unilogin_logins_total{tenant=\"demo\",platform=\"dingtalk\",flow=\"h5\",outcome=\"success\"} 1",
        "unilogin_logins_total{tenant=\"demo\",platform=\"dingtalk\",flow=\"h5\",outcome=\"invalid_code\"} 1",
        "unilogin_upstream_login_seconds_count{platform=\"dingtalk\",flow=\"h5\"} 2",
        "unilogin_token_cache_refreshes_total 1",
    ] {
        assert!(text.contains(line), "{line} missing from\n{text}");
    }
    assert!(text.contains("unilogin_token_cache_l1_hits_total"));
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let gw = start().await;
    let r = gw
        .http
        .get(gw.url("healthz"))
        .header("x-request-id", "req-42.a:b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42.a:b");
    let r = gw
        .http
        .get(gw.url("nope"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
    assert_eq!(id.len(), 32);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["trace_id"], id.as_str());
}

/// Reads the `kid` of a compact JWT's header (test helper, no verification).
mod base64_header {
    pub fn kid_of(token: &str) -> String {
        let header = token.split('.').next().unwrap();
        let bytes = decode_b64url(header);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v["kid"].as_str().unwrap().to_string()
    }

    fn decode_b64url(s: &str) -> Vec<u8> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = Vec::new();
        let (mut acc, mut bits) = (0u32, 0u32);
        for c in s.bytes() {
            let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }
}
