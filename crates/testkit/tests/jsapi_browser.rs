//! The fake JS SDKs in a real browser: headless Chromium loads a page served here (one origin)
//! that includes the fake's SDK from the fake (another origin), calls `config` with a signature
//! made for the page URL, and reports what the SDK called back. The page is opened with a
//! `#fragment`, which the SDK must not send.
//!
//! Needs the Debian package `chromium` (`cargo xtask ci` installs it). Without it this test
//! FAILS with a message saying so: it never skips silently.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use serde_json::json;
use unilogin_testkit::jsapi::{JsapiKind, jsapi_signature};
use unilogin_testkit::{FakePlatform as _, dingtalk, feishu, wecom};

const INSTALL_HINT: &str = "the fake-SDK browser test needs headless Chromium: install the Debian package `chromium` \
     (apt-get install chromium), or run `cargo xtask ci`, which installs it";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

struct Fakes {
    dt: dingtalk::FakeDingTalk,
    fs: feishu::FakeFeishu,
    wc: wecom::FakeWeCom,
    origin: std::sync::OnceLock<String>,
}

const NONCE: &str = "nonce0001";
const TS: &str = "1700000000";

/// The page `/h5/{case}?x=1&y=2`: `case` is `{platform}-{good|bad}`; a bad page signs the URL
/// with its fragment (the classic 52013 / "invalid signature").
async fn page(State(f): State<Arc<Fakes>>, Path(case): Path<String>) -> Html<String> {
    let origin = f.origin.get().cloned().unwrap_or_default();
    let url = format!("{origin}/h5/{case}?x=1&y=2");
    let signed_url = if case.ends_with("-bad") {
        format!("{url}#/route")
    } else {
        url.clone()
    };
    let sign = |ticket: &str| jsapi_signature(ticket, NONCE, TS, &signed_url);
    let (sdk, script) = match case.split('-').next().unwrap_or("") {
        "dingtalk" => {
            let t =
                f.dt.live_jsapi_ticket(dingtalk::DEFAULT_APP_KEY)
                    .unwrap_or_default();
            let cfg = json!({"agentId": dingtalk::DEFAULT_AGENT_ID, "corpId": dingtalk::DEFAULT_CORP_ID,
                "timeStamp": TS, "nonceStr": NONCE, "signature": sign(&t), "jsApiList": ["biz.util.openLink"]});
            (
                f.dt.jsapi_sdk_url(),
                format!(
                    "dd.config({cfg});
                     dd.error(function (e) {{ done('error:' + e.errorCode); }});
                     dd.ready(function () {{
                       dd.getAuthCode({{ corpId: '{corp}', success: function (r) {{ done(r.authCode ? 'ready:code' : 'ready:nocode'); }},
                         fail: function () {{ done('codefail'); }} }});
                     }});",
                    corp = dingtalk::DEFAULT_CORP_ID
                ),
            )
        }
        "feishu" => {
            let t =
                f.fs.live_jsapi_ticket(feishu::DEFAULT_APP_ID)
                    .unwrap_or_default();
            let sig = jsapi_signature(&t, NONCE, "1700000000000", &signed_url);
            (
                f.fs.jsapi_sdk_url(),
                format!(
                    "h5sdk.error(function (e) {{ done('error:' + e.errorCode); }});
                     h5sdk.config({{ appId: '{app}', timestamp: 1700000000000, nonceStr: '{NONCE}', signature: '{sig}',
                       jsApiList: ['biz.util.openLink'], onSuccess: function () {{ window.ok = 1; }}, onFail: function () {{ window.ko = 1; }} }});
                     h5sdk.ready(function () {{
                       tt.requestAuthCode({{ appId: '{app}', success: function (r) {{ done(window.ok ? 'ready:code' : 'ready:noonsuccess'); }},
                         fail: function () {{ done('codefail'); }} }});
                     }});",
                    app = feishu::DEFAULT_APP_ID
                ),
            )
        }
        _ => {
            let corp_t =
                f.wc.live_jsapi_ticket(wecom::DEFAULT_AGENT_ID, JsapiKind::Config)
                    .unwrap_or_default();
            let agent_t =
                f.wc.live_jsapi_ticket(wecom::DEFAULT_AGENT_ID, JsapiKind::AgentConfig)
                    .unwrap_or_default();
            (
                f.wc.jsapi_sdk_url(),
                format!(
                    "wx.config({{ beta: true, appId: '{corp}', timestamp: {TS}, nonceStr: '{NONCE}', signature: '{s1}', jsApiList: ['openUserProfile'] }});
                     wx.error(function (e) {{ done('error:' + e.errMsg); }});
                     wx.ready(function () {{
                       wx.agentConfig({{ corpid: '{corp}', agentid: '{agent}', timestamp: {TS}, nonceStr: '{NONCE}', signature: '{s2}',
                         jsApiList: ['openUserProfile'], success: function () {{ done('ready:agent'); }},
                         fail: function (e) {{ done('agentfail:' + e.errMsg); }} }});
                     }});",
                    corp = wecom::DEFAULT_CORP_ID,
                    agent = wecom::DEFAULT_AGENT_ID,
                    s1 = sign(&corp_t),
                    s2 = sign(&agent_t),
                ),
            )
        }
    };
    Html(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><script src=\"{sdk}\"></script></head>\
         <body><script>function done(r) {{ if (!document.body.hasAttribute('data-result')) document.body.setAttribute('data-result', r); }}\n{script}</script></body></html>"
    ))
}

/// What the page reported after Chromium ran it (`data-result`).
fn run_chromium(chromium: &std::path::Path, url: &str, profile: &std::path::Path) -> String {
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=8000", "--dump-dom", url])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    dom.split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("no result in DOM: {dom}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_sdks_accept_good_signatures_and_refuse_bad_ones_in_chromium() {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
        .unwrap_or_else(|| panic!("no chromium on PATH. {INSTALL_HINT}"));
    let fakes = Arc::new(Fakes {
        dt: dingtalk::start().await,
        fs: feishu::start().await,
        wc: wecom::start().await,
        origin: std::sync::OnceLock::new(),
    });
    fakes.dt.rotate_jsapi_ticket(dingtalk::DEFAULT_APP_KEY);
    fakes.fs.rotate_jsapi_ticket(feishu::DEFAULT_APP_ID);
    fakes
        .wc
        .rotate_jsapi_ticket(wecom::DEFAULT_AGENT_ID, JsapiKind::Config);
    fakes
        .wc
        .rotate_jsapi_ticket(wecom::DEFAULT_AGENT_ID, JsapiKind::AgentConfig);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    // `localhost`, not the fakes' `127.0.0.1`: another origin.
    let origin = format!(
        "http://localhost:{}",
        listener.local_addr().expect("addr").port()
    );
    fakes.origin.set(origin.clone()).expect("once");
    let app = Router::new()
        .route("/h5/{case}", get(page))
        .with_state(fakes.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let cases = [
        ("dingtalk-good", "ready:code"),
        ("dingtalk-bad", "error:52013"),
        ("feishu-good", "ready:code"),
        ("feishu-bad", "error:2"),
        ("wecom-good", "ready:agent"),
        ("wecom-bad", "error:config:invalid signature"),
    ];
    let root =
        std::env::temp_dir().join(format!("unilogin-testkit-chromium-{}", std::process::id()));
    // Two browsers at a time: the machines running the suite have few cores.
    let mut results = Vec::new();
    for pair in cases.chunks(2) {
        let mut runs = Vec::new();
        for (case, _) in pair {
            let url = format!("{origin}/h5/{case}?x=1&y=2#/route");
            let (chromium, profile) = (chromium.clone(), root.join(case));
            runs.push(tokio::task::spawn_blocking(move || {
                run_chromium(&chromium, &url, &profile)
            }));
        }
        for run in runs {
            results.push(run.await.expect("join"));
        }
    }
    let _ = std::fs::remove_dir_all(&root);
    for ((case, expected), got) in cases.iter().zip(&results) {
        assert_eq!(got, expected, "{case}");
    }
    use unilogin_testkit::jsapi::endpoints::{JSAPI_CODE, JSAPI_VERIFY};
    assert_eq!(fakes.dt.calls(JSAPI_VERIFY), 2, "one dd.config per page");
    assert_eq!(
        fakes.dt.calls(JSAPI_CODE),
        1,
        "getAuthCode only after a good config"
    );
    assert_eq!(
        fakes.wc.calls(JSAPI_VERIFY),
        3,
        "config twice, agentConfig once"
    );
}
