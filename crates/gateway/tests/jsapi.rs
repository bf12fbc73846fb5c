//! `GET /auth/{tenant}/{platform}/jsapi-config` against the test-kit fakes of all three
//! platforms: the answer is a config object each fake's verifier accepts for the page URL,
//! refused for an origin the tenant does not allow, readable cross-origin only by allowed
//! origins, signed with one ticket fetch for many requests, signed for the URL exactly as the
//! browser reports it, rate-limited, and free of the ticket (answers and logs).

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::{Served, log_capture, serve};
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use unilogin_testkit::feishu::{self, FakeFeishu};
use unilogin_testkit::jsapi::JsapiKind;
use unilogin_testkit::wecom::{self, FakeWeCom};

/// The tenant's app: its pages live on this origin (the origin of its redirect URIs).
const APP: &str = "https://app.acme.example";

struct Fakes {
    dingtalk: Arc<FakeDingTalk>,
    feishu: Arc<FakeFeishu>,
    wecom: Arc<FakeWeCom>,
}

impl Fakes {
    async fn start() -> Self {
        Self {
            dingtalk: Arc::new(dingtalk::start().await),
            feishu: Arc::new(feishu::start().await),
            wecom: Arc::new(wecom::start().await),
        }
    }

    /// `acme` on every platform, its redirect URIs on [`APP`] and a loopback dev origin.
    fn tenants(&self) -> Vec<Value> {
        let redirect_uris = json!([
            format!("{APP}/callback"),
            format!("{APP}/done"),
            "http://127.0.0.1:5173/cb",
        ]);
        let (d, f, w) = (
            self.dingtalk.credentials(),
            self.feishu.credentials(),
            self.wecom.credentials(),
        );
        let (db, fb, wb) = (
            self.dingtalk.base_url().to_string(),
            self.feishu.base_url().to_string(),
            self.wecom.base_url().to_string(),
        );
        vec![
            json!({
                "tenant": "acme", "platform": "dingtalk",
                "app_key": d.app_key, "app_secret": d.app_secret,
                "corp_id": d.corp_id, "agent_id": d.agent_id,
                "hosts": { "oapi": db, "api": db, "login": db },
                "redirect_uris": redirect_uris,
            }),
            json!({
                "tenant": "acme", "platform": "feishu",
                "app_key": f.app_key, "app_secret": f.app_secret, "corp_id": f.corp_id,
                "hosts": { "open": fb, "accounts": fb },
                "redirect_uris": redirect_uris,
                "options": { "region": "feishu" },
            }),
            json!({
                "tenant": "acme", "platform": "wecom",
                "app_key": w.corp_id, "app_secret": w.app_secret,
                "corp_id": w.corp_id, "agent_id": w.agent_id,
                "hosts": { "qyapi": wb, "oauth": wb, "login": wb, "open": wb },
                "redirect_uris": redirect_uris,
            }),
        ]
    }

    /// Checks `config` as `platform`'s JS SDK would for the page at `page`.
    fn verify(
        &self,
        platform: &str,
        kind: JsapiKind,
        config: &Value,
        page: &str,
    ) -> Result<(), String> {
        let r = match platform {
            "dingtalk" => self.dingtalk.verify_jsapi_config(kind, config, page),
            "feishu" => self.feishu.verify_jsapi_config(kind, config, page),
            "wecom" => self.wecom.verify_jsapi_config(kind, config, page),
            other => panic!("no fake for {other}"),
        };
        r.map_err(|e| format!("{}: {}", e.reason.name(), e.reason))
    }

    fn fetches(&self, platform: &str, kind: JsapiKind) -> u64 {
        match platform {
            "dingtalk" => self
                .dingtalk
                .jsapi_ticket_fetches(&self.dingtalk.credentials().app_key),
            "feishu" => self
                .feishu
                .jsapi_ticket_fetches(&self.feishu.credentials().app_key),
            "wecom" => self
                .wecom
                .jsapi_ticket_fetches(&self.wecom.credentials().agent_id, kind),
            other => panic!("no fake for {other}"),
        }
    }

    fn live_tickets(&self) -> Vec<String> {
        let w = self.wecom.credentials().agent_id;
        [
            self.dingtalk
                .live_jsapi_ticket(&self.dingtalk.credentials().app_key),
            self.feishu
                .live_jsapi_ticket(&self.feishu.credentials().app_key),
            self.wecom.live_jsapi_ticket(&w, JsapiKind::Config),
            self.wecom.live_jsapi_ticket(&w, JsapiKind::AgentConfig),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

async fn start(yaml: &str) -> (Served, Fakes) {
    let fakes = Fakes::start().await;
    let tenants = fakes.tenants();
    let gw = serve(yaml, move |_| tenants, |b| b).await;
    (gw, fakes)
}

/// `…/jsapi-config?url=<page, encoded as encodeURIComponent would>&<extra>`.
fn endpoint(gw: &Served, platform: &str, page: &str, extra: &str) -> String {
    let mut u = url::Url::parse(&gw.url(&format!("auth/acme/{platform}/jsapi-config"))).unwrap();
    u.query_pairs_mut().append_pair("url", page);
    let mut s = u.to_string();
    if !extra.is_empty() {
        s.push('&');
        s.push_str(extra);
    }
    s
}

/// What `encodeURIComponent` makes of `s`.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn get_json(
    gw: &Served,
    url: &str,
) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Value) {
    let r = gw.http.get(url).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    let body: Value = r.json().await.unwrap();
    (status, headers, body)
}

#[tokio::test]
async fn the_config_verifies_on_every_platform_and_kind() {
    let (gw, fakes) = start("").await;
    let page = format!("{APP}/h5/index?x=1&y=2");
    for (platform, kind, query, sdk_kind) in [
        (
            "dingtalk",
            JsapiKind::Config,
            "apis=biz.contact.choose,device.notification.alert",
            "jsapi",
        ),
        ("feishu", JsapiKind::Config, "apis=getLocation", "jsapi"),
        (
            "wecom",
            JsapiKind::Config,
            "kind=jsapi&apis=scanQRCode",
            "jsapi",
        ),
        (
            "wecom",
            JsapiKind::AgentConfig,
            "kind=agent_config&apis=selectExternalContact",
            "agent_config",
        ),
    ] {
        let (status, headers, config) = get_json(&gw, &endpoint(&gw, platform, &page, query)).await;
        assert_eq!(status, 200, "{platform} {sdk_kind}: {config}");
        assert_eq!(headers["cache-control"], "no-store");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        fakes
            .verify(platform, kind, &config, &page)
            .unwrap_or_else(|e| panic!("{platform} {sdk_kind}: {e}: {config}"));
        // The object lists the APIs asked for.
        let list = config["jsApiList"].as_array().expect("jsApiList");
        assert!(!list.is_empty(), "{config}");
        // Signed for this page only: another page of the same origin does not verify.
        assert!(
            fakes
                .verify(platform, kind, &config, &format!("{APP}/h5/other"))
                .is_err(),
            "{platform}: a signature must bind the page URL"
        );
    }
    // Feishu's timestamp is a number of milliseconds; the others' seconds.
    let (_, _, feishu) = get_json(&gw, &endpoint(&gw, "feishu", &page, "")).await;
    assert!(
        feishu["timestamp"].as_u64().unwrap() > 1_000_000_000_000,
        "{feishu}"
    );
}

#[tokio::test]
async fn an_origin_the_tenant_does_not_allow_is_refused_before_any_ticket_fetch() {
    let (gw, fakes) = start("").await;
    for page in [
        "https://evil.example/h5/",
        "https://app.acme.example.evil.example/h5/",
        "http://app.acme.example/h5/",
        "https://app.acme.example:8443/h5/",
        "https://app.acme.example:443/h5/",
        "https://APP.acme.example/h5/",
        "http://127.0.0.1:5174/",
    ] {
        for platform in ["dingtalk", "feishu", "wecom"] {
            let (status, _, body) = get_json(&gw, &endpoint(&gw, platform, page, "")).await;
            assert_eq!(status, 403, "{platform} {page}: {body}");
            assert_eq!(body["error"], "origin_not_allowed", "{body}");
            assert!(body["trace_id"].is_string(), "{body}");
        }
    }
    for platform in ["dingtalk", "feishu", "wecom"] {
        assert_eq!(fakes.fetches(platform, JsapiKind::Config), 0, "{platform}");
    }
    // The loopback dev origin of the allow-list is signed.
    let (status, _, _) = get_json(
        &gw,
        &endpoint(&gw, "dingtalk", "http://127.0.0.1:5173/app", ""),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn cors_headers_only_for_allowed_origins() {
    let (gw, _fakes) = start("").await;
    let url = endpoint(&gw, "dingtalk", &format!("{APP}/h5/"), "");
    let r = gw
        .http
        .get(&url)
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], APP);
    assert!(
        r.headers()
            .get_all("vary")
            .iter()
            .any(|v| v.to_str().unwrap().eq_ignore_ascii_case("origin"))
    );
    for other in [
        "https://evil.example",
        "null",
        "https://app.acme.example:8443",
    ] {
        let r = gw
            .http
            .get(&url)
            .header("origin", other)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "the page URL is allowed; only the reader is not"
        );
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{other}"
        );
        assert!(r.headers().get("vary").is_some(), "{other}");
    }
    let r = gw.http.get(&url).send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    // A refusal is readable by an allowed page too (so it can show the error).
    let bad = endpoint(&gw, "dingtalk", "https://evil.example/", "");
    let r = gw
        .http
        .get(&bad)
        .header("origin", APP)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["access-control-allow-origin"], APP);
}

#[tokio::test]
async fn many_requests_share_one_ticket_fetch() {
    let (gw, fakes) = start("").await;
    let gw = Arc::new(gw);
    for (platform, query, kind) in [
        ("dingtalk", "", JsapiKind::Config),
        ("feishu", "", JsapiKind::Config),
        ("wecom", "", JsapiKind::Config),
        ("wecom", "kind=agent_config", JsapiKind::AgentConfig),
    ] {
        let mut tasks = Vec::new();
        for i in 0..40 {
            let gw = gw.clone();
            let page = format!("{APP}/h5/{i}?n={i}");
            tasks.push(tokio::spawn(async move {
                let (status, _, config) =
                    get_json(&gw, &endpoint(&gw, platform, &page, query)).await;
                assert_eq!(status, 200, "{config}");
                (page, config)
            }));
        }
        for t in tasks {
            let (page, config) = t.await.unwrap();
            fakes.verify(platform, kind, &config, &page).unwrap();
        }
        assert_eq!(fakes.fetches(platform, kind), 1, "{platform} {query}");
    }
}

#[tokio::test]
async fn the_url_is_signed_as_the_browser_reports_it() {
    let (gw, fakes) = start("").await;
    // What `location.href` is: percent-encoding as the browser keeps it, a query in its own
    // order, an SPA route in the fragment.
    let href = format!("{APP}/h5/%E4%B8%AD/?b=2&a=%20x&c=%E4%B8%AD#/route?z=1");
    let signed_as = href.split('#').next().unwrap().to_string();
    for platform in ["dingtalk", "feishu", "wecom"] {
        // The page sends encodeURIComponent(location.href.split('#')[0]).
        let url = format!(
            "{}?url={}",
            gw.url(&format!("auth/acme/{platform}/jsapi-config")),
            encode_uri_component(&signed_as)
        );
        let (status, _, config) = get_json(&gw, &url).await;
        assert_eq!(status, 200, "{config}");
        fakes
            .verify(platform, JsapiKind::Config, &config, &href)
            .unwrap();
        // Decoded or re-ordered, it is another URL and the SDK refuses it.
        for other in [
            format!("{APP}/h5/中/?b=2&a=%20x&c=中"),
            format!("{APP}/h5/%E4%B8%AD/?a=%20x&b=2&c=%E4%B8%AD"),
            format!("{APP}/h5/%e4%b8%ad/?b=2&a=%20x&c=%E4%B8%AD"),
        ] {
            assert!(
                fakes
                    .verify(platform, JsapiKind::Config, &config, &other)
                    .is_err(),
                "{other}"
            );
        }
        // A page that forgets to drop its fragment is still signed without it.
        let url = format!(
            "{}?url={}",
            gw.url(&format!("auth/acme/{platform}/jsapi-config")),
            encode_uri_component(&href)
        );
        let (status, _, config) = get_json(&gw, &url).await;
        assert_eq!(status, 200, "{config}");
        fakes
            .verify(platform, JsapiKind::Config, &config, &href)
            .unwrap();
    }
}

#[tokio::test]
async fn bad_requests_get_typed_errors() {
    let (gw, fakes) = start("").await;
    let base = gw.url("auth/acme/dingtalk/jsapi-config");
    let long = format!("{APP}/{}", "a".repeat(5000));
    let cases: Vec<(String, u16, &str)> = vec![
        (base.clone(), 400, "missing_url"),
        (
            format!("{base}?url=javascript%3Aalert(1)"),
            400,
            "invalid_page_url",
        ),
        (format!("{base}?url=%2Fh5%2F"), 400, "invalid_page_url"),
        (
            format!(
                "{base}?url={}",
                encode_uri_component("https://u:p@app.acme.example/")
            ),
            400,
            "invalid_page_url",
        ),
        (
            format!("{base}?url={}", encode_uri_component(&format!("{APP}/a b"))),
            400,
            "invalid_page_url",
        ),
        (
            format!("{base}?url={}", encode_uri_component(&long)),
            400,
            "invalid_page_url",
        ),
        (
            endpoint(&gw, "dingtalk", APP, "kind=JSAPI"),
            400,
            "bad_request",
        ),
        (
            endpoint(&gw, "dingtalk", APP, "apis=a,,b"),
            400,
            "bad_request",
        ),
        (
            endpoint(&gw, "dingtalk", APP, "apis=%3Cscript%3E"),
            400,
            "bad_request",
        ),
        (
            endpoint(
                &gw,
                "dingtalk",
                APP,
                &format!("apis={}", vec!["a"; 65].join(",")),
            ),
            400,
            "bad_request",
        ),
        // DingTalk has no agent-config ticket: a clear 400 before any upstream call.
        (
            endpoint(&gw, "dingtalk", APP, "kind=agent_config"),
            400,
            "unsupported",
        ),
        (
            endpoint(&gw, "feishu", APP, "kind=agent_config"),
            400,
            "unsupported",
        ),
        // Unknown tenant or platform: the same 404 as every other endpoint.
        (
            gw.url("auth/nobody/dingtalk/jsapi-config?url=https%3A%2F%2Fapp.acme.example%2F"),
            404,
            "not_found",
        ),
        (
            gw.url("auth/acme/nothing/jsapi-config?url=https%3A%2F%2Fapp.acme.example%2F"),
            404,
            "not_found",
        ),
    ];
    for (url, status, kind) in cases {
        let (s, headers, body) = get_json(&gw, &url).await;
        assert_eq!(s.as_u16(), status, "{url}: {body}");
        assert_eq!(body["error"], kind, "{url}: {body}");
        assert!(body["message"].is_string(), "{body}");
        assert_eq!(headers["cache-control"], "no-store");
    }
    assert_eq!(fakes.fetches("dingtalk", JsapiKind::Config), 0);
    assert_eq!(fakes.fetches("feishu", JsapiKind::Config), 0);
}

#[tokio::test]
async fn a_flood_from_one_client_gets_429() {
    let (gw, _fakes) = start("rate_limits: {other_per_client: {per_minute: 1, burst: 5}}").await;
    let url = endpoint(&gw, "dingtalk", &format!("{APP}/h5/"), "");
    let mut statuses = Vec::new();
    for _ in 0..8 {
        let r = gw.http.get(&url).send().await.unwrap();
        if r.status() == 429 {
            assert!(r.headers().get("retry-after").is_some());
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "too_many_requests");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
}

#[tokio::test]
async fn the_ticket_is_in_no_answer_and_no_log_line() {
    let logs = log_capture();
    let (gw, fakes) = start("").await;
    let mut answers = String::new();
    for (platform, query) in [
        ("dingtalk", ""),
        ("feishu", ""),
        ("wecom", ""),
        ("wecom", "kind=agent_config"),
    ] {
        let r = gw
            .http
            .get(endpoint(
                &gw,
                platform,
                &format!("{APP}/h5/?code=C&state=S"),
                query,
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        answers.push_str(&format!("{:?}", r.headers()));
        answers.push_str(&r.text().await.unwrap());
    }
    let tickets = fakes.live_tickets();
    assert_eq!(tickets.len(), 4, "every platform's ticket was fetched");
    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(
        logged.contains("jsapi-config signed"),
        "the capture sees the gateway's lines"
    );
    for t in &tickets {
        assert!(!t.is_empty());
        assert!(!answers.contains(t.as_str()), "ticket in an answer");
        assert!(!logged.contains(t.as_str()), "ticket in the logs");
    }
}

#[tokio::test]
async fn a_matching_rejection_report_invalidates_the_ticket_once_per_cool_down() {
    let (gw, fakes) = start("").await;
    let page = format!("{APP}/h5/index?x=1");
    let (status, _, config) = get_json(&gw, &endpoint(&gw, "dingtalk", &page, "")).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(fakes.fetches("dingtalk", JsapiKind::Config), 1);
    let report = |signature: &str| {
        json!({
            "url": page, "nonceStr": config["nonceStr"], "timeStamp": config["timeStamp"],
            "signature": signature,
        })
        .to_string()
    };
    let post = |body: String| {
        let url = gw.url("auth/acme/dingtalk/jsapi-config/rejected");
        let http = gw.http.clone();
        async move {
            // As a cross-origin page sends it: text/plain, no preflight.
            let r = http
                .post(url)
                .header("content-type", "text/plain")
                .header("origin", APP)
                .body(body)
                .send()
                .await
                .unwrap();
            let (status, headers) = (r.status(), r.headers().clone());
            (status, headers, r.json::<Value>().await.unwrap())
        }
    };
    // A forged report (not this ticket's signature) changes nothing.
    let (status, _, body) = post(report(&"0".repeat(40))).await;
    assert_eq!(
        (status.as_u16(), &body),
        (200, &json!({"invalidated": false}))
    );
    // The genuine one invalidates: the next signature fetches the ticket again.
    let genuine = config["signature"].as_str().unwrap().to_string();
    let (status, headers, body) = post(report(&genuine)).await;
    assert_eq!(
        (status.as_u16(), &body),
        (200, &json!({"invalidated": true}))
    );
    assert_eq!(headers["access-control-allow-origin"], APP);
    let (status, _, again) = get_json(&gw, &endpoint(&gw, "dingtalk", &page, "")).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(fakes.fetches("dingtalk", JsapiKind::Config), 2);
    // DingTalk hands out the same live ticket again, so the old report still matches it; the
    // cool-down keeps a replay from spending the platform's ticket quota.
    let (_, _, body) = post(report(&genuine)).await;
    assert_eq!(body, json!({"invalidated": false}));
    let (status, _, _) = get_json(&gw, &endpoint(&gw, "dingtalk", &page, "")).await;
    assert_eq!(status, 200);
    assert_eq!(fakes.fetches("dingtalk", JsapiKind::Config), 2);
    // A page of another origin, and a body that is not a report, are refused.
    let foreign = json!({"url": "https://evil.example/h5", "nonceStr": "n", "timestamp": 1, "signature": genuine});
    let (status, _, body) = post(foreign.to_string()).await;
    assert_eq!(
        (status.as_u16(), body["error"].as_str()),
        (403, Some("origin_not_allowed"))
    );
    let (status, _, _) = post("not json".into()).await;
    assert_eq!(status, 400);
}
