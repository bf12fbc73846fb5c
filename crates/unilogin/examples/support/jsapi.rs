//! Shared by the `jsapi_*` examples (and `tests/jsapi_browser.rs`, which includes this file by
//! `#[path]`): a platform's test-kit fake, an [`Sso`] configured for it, and a small axum server
//! serving an H5 page that signs itself through the server's own `/jsapi-config` endpoint.
//!
//! | route | what |
//! |---|---|
//! | `GET /h5/index.html[?…][#…]` | the page: loads the platform's JS SDK (here the fake's), fetches its config with `encodeURIComponent(location.href.split('#')[0])`, calls `dd.config` / `h5sdk.config` / `wx.config` + `wx.agentConfig`, shows `ready` or the SDK's error |
//! | `GET /h5/pinned.html[?…]` | the same page, but it signs a **hard-coded** URL (`…/h5/pinned.html`) instead of `location.href`: opened with any query (a shared link's `?from=share`) it gets the platform's signature error — the classic 52013 / "invalid signature" |
//! | `GET /jsapi-config?url=…&kind=jsapi\|agent_config` | [`Prepared::jsapi_config`](unilogin::Prepared::jsapi_config) for that URL, after checking its origin is this server's |
//!
//! Nothing here is specific to the fakes except [`Demo::verify`] (the fake's verifier, used by
//! `--self-test`) and the SDK URL: in production the page loads the platform's real SDK.

#![allow(dead_code)]

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::jsapi::PageUrl;
use unilogin::{Sso, TenantId, TicketKind};
use unilogin_testkit::jsapi::JsapiKind;
use unilogin_testkit::{dingtalk, feishu, wecom};

/// The platform of a demo, with its fake.
pub enum Fake {
    /// DingTalk: `dd.config`.
    DingTalk(dingtalk::FakeDingTalk),
    /// Feishu: `h5sdk.config`.
    Feishu(feishu::FakeFeishu),
    /// WeCom: `wx.config`, then `wx.agentConfig`.
    WeCom(wecom::FakeWeCom),
}

/// Which platform to start a demo for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// DingTalk.
    DingTalk,
    /// Feishu.
    Feishu,
    /// WeCom.
    WeCom,
}

/// A running demo's parts (the server is started by [`Demo::serve`]).
pub struct Demo {
    /// The platform's fake (plays the platform's servers and its JS SDK).
    pub fake: Fake,
    /// The library, configured for the fake.
    pub sso: Sso,
    /// The tenant.
    pub tenant: TenantId,
    /// `http://127.0.0.1:PORT`: the page's origin, the only one `/jsapi-config` signs for.
    pub origin: String,
    listener: std::sync::Mutex<Option<TcpListener>>,
}

impl Demo {
    /// Starts `which`'s fake and builds an [`Sso`] whose tenant allows this server's origin
    /// (a redirect URI on it), on a fresh loopback port (`PORT` to choose it).
    pub async fn start(which: Which) -> Result<Arc<Self>, Box<dyn Error>> {
        let port: u16 = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let origin = format!("http://{}", listener.local_addr()?);
        let callback = format!("{origin}/callback");
        let (fake, config) = match which {
            Which::DingTalk => {
                let fake = dingtalk::start().await;
                let (c, base) = (fake.credentials(), fake.base_url().to_string());
                let config = json!({
                    "tenant": "acme", "platform": "dingtalk",
                    "app_key": c.app_key, "app_secret": c.app_secret,
                    // dd.config names the organisation and the app: corpId, agentId.
                    "corp_id": c.corp_id, "agent_id": c.agent_id,
                    "hosts": { "oapi": base, "api": base, "login": base },
                    "redirect_uris": [callback],
                });
                (Fake::DingTalk(fake), config)
            }
            Which::Feishu => {
                let fake = feishu::start().await;
                let (c, base) = (fake.credentials(), fake.base_url().to_string());
                let config = json!({
                    "tenant": "acme", "platform": "feishu",
                    "app_key": c.app_key, "app_secret": c.app_secret, "corp_id": c.corp_id,
                    "hosts": { "open": base, "accounts": base },
                    "redirect_uris": [callback],
                    "options": { "region": "feishu" },
                });
                (Fake::Feishu(fake), config)
            }
            Which::WeCom => {
                let fake = wecom::start().await;
                let (c, base) = (fake.credentials(), fake.base_url().to_string());
                let config = json!({
                    "tenant": "acme", "platform": "wecom",
                    // wx.config signs as the corp, wx.agentConfig as this app (agentid).
                    "app_key": c.corp_id, "app_secret": c.app_secret,
                    "corp_id": c.corp_id, "agent_id": c.agent_id,
                    "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
                    "redirect_uris": [callback],
                });
                (Fake::WeCom(fake), config)
            }
        };
        let config: PlatformConfig = serde_json::from_value(config)?;
        let sso = Sso::builder(StaticConfig::new(vec![config])).build()?;
        Ok(Arc::new(Self {
            fake,
            sso,
            tenant: TenantId::new("acme")?,
            origin,
            listener: std::sync::Mutex::new(Some(listener)),
        }))
    }

    /// The platform's name in the registry.
    pub fn platform(&self) -> &'static str {
        match self.fake {
            Fake::DingTalk(_) => "dingtalk",
            Fake::Feishu(_) => "feishu",
            Fake::WeCom(_) => "wecom",
        }
    }

    /// The ticket kinds the page signs with, in the order it calls them.
    pub fn kinds(&self) -> &'static [TicketKind] {
        match self.fake {
            Fake::WeCom(_) => &[TicketKind::Jsapi, TicketKind::AgentConfig],
            _ => &[TicketKind::Jsapi],
        }
    }

    /// The URL of the platform's JS SDK (here: the fake's).
    pub fn sdk_url(&self) -> String {
        match &self.fake {
            Fake::DingTalk(f) => f.jsapi_sdk_url(),
            Fake::Feishu(f) => f.jsapi_sdk_url(),
            Fake::WeCom(f) => f.jsapi_sdk_url(),
        }
    }

    /// Checks `config` as the platform's JS SDK would on the page at `page_url`.
    pub fn verify(&self, kind: TicketKind, config: &Value, page_url: &str) -> Result<(), String> {
        let kind = match kind {
            TicketKind::AgentConfig => JsapiKind::AgentConfig,
            _ => JsapiKind::Config,
        };
        let r = match &self.fake {
            Fake::DingTalk(f) => f.verify_jsapi_config(kind, config, page_url),
            Fake::Feishu(f) => f.verify_jsapi_config(kind, config, page_url),
            Fake::WeCom(f) => f.verify_jsapi_config(kind, config, page_url),
        };
        r.map_err(|e| format!("{} ({})", e.reason, e.sdk_error))
    }

    /// Serves the page and the endpoint (in the background); returns the page's URL.
    pub fn serve(self: &Arc<Self>) -> Result<String, Box<dyn Error>> {
        let listener = self
            .listener
            .lock()
            .map_err(|_| "lock poisoned")?
            .take()
            .ok_or("already serving")?;
        let app = Router::new()
            .route("/h5/index.html", get(page))
            .route("/h5/pinned.html", get(pinned_page))
            .route("/jsapi-config", get(jsapi_config))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(format!("{}/h5/index.html?from=example#/home", self.origin))
    }

    /// The example's `main`: with `--self-test`, fetch the page and its configs over HTTP, check
    /// them with the fake's verifier and exit; otherwise serve until Ctrl-C.
    pub async fn main(which: Which) -> Result<(), Box<dyn Error>> {
        let demo = Self::start(which).await?;
        let page = demo.serve()?;
        if std::env::args().any(|a| a == "--self-test") {
            return demo.self_test(&page).await;
        }
        println!("open {page} in a browser (the fake's JS SDK plays the client); Ctrl-C to stop");
        println!(
            "a page that signs a hard-coded URL fails when opened as {}/h5/pinned.html?from=share",
            demo.origin
        );
        tokio::signal::ctrl_c().await?;
        Ok(())
    }

    /// What a browser does, over HTTP: load the page, ask for each config with the page's URL,
    /// and check it as the SDK would. Also checks that a signature for another URL is refused.
    pub async fn self_test(&self, page: &str) -> Result<(), Box<dyn Error>> {
        let http = reqwest::Client::new();
        let html = http
            .get(page)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        if !html.contains(&self.sdk_url()) {
            return Err("the page does not load the platform's JS SDK".into());
        }
        let signed_url = page.split('#').next().unwrap_or(page);
        for &kind in self.kinds() {
            let config = fetch_config(&http, &self.origin, signed_url, kind).await?;
            self.verify(kind, &config, page)
                .map_err(|e| format!("{kind}: the SDK would refuse the config: {e}"))?;
            println!("{kind}: {config}");
            println!(
                "{kind}: verified by the {} fake's JS SDK check",
                self.platform()
            );
            // The same object on another URL (here: a shared link's extra query) is refused.
            let other = format!("{signed_url}&from=share");
            if self.verify(kind, &config, &other).is_ok() {
                return Err(format!("{kind}: a signature must not verify for another URL").into());
            }
        }
        // Another origin is never signed.
        let r = http
            .get(format!("{}/jsapi-config", self.origin))
            .query(&[("url", "https://evil.example/h5/")])
            .send()
            .await?;
        if r.status() != StatusCode::FORBIDDEN {
            return Err(format!("a foreign origin got HTTP {}", r.status()).into());
        }
        println!("self-test passed: {}", self.platform());
        Ok(())
    }
}

/// `GET {origin}/jsapi-config?url=…&kind=…` as the page does.
pub async fn fetch_config(
    http: &reqwest::Client,
    origin: &str,
    page_url: &str,
    kind: TicketKind,
) -> Result<Value, Box<dyn Error>> {
    let r = http
        .get(format!("{origin}/jsapi-config"))
        .query(&[("url", page_url), ("kind", kind.as_str())])
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    if !status.is_success() {
        return Err(format!("/jsapi-config answered HTTP {status}: {body}").into());
    }
    Ok(body)
}

/// `GET /jsapi-config`: the signed config object for the page at `url`, which must be on this
/// server's origin (in production: one of the origins your tenant allows).
async fn jsapi_config(
    State(demo): State<Arc<Demo>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, message: String| {
        (status, axum::Json(json!({ "error": message }))).into_response()
    };
    let Some(page_url) = q.get("url") else {
        return refuse(StatusCode::BAD_REQUEST, "url is required".into());
    };
    let kind = match q.get("kind").map(|k| TicketKind::parse(k)) {
        None => TicketKind::Jsapi,
        Some(Some(kind)) => kind,
        Some(None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "kind: jsapi or agent_config".into(),
            );
        }
    };
    // The origin check is the caller's job: sign only your own pages.
    match PageUrl::parse(page_url) {
        Ok(url) if url.origin() == demo.origin => {}
        Ok(_) => {
            return refuse(
                StatusCode::FORBIDDEN,
                "not one of this app's origins".into(),
            );
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e.to_string()),
    }
    let prepared = match demo.sso.prepare(&demo.tenant, demo.platform()).await {
        Ok(p) => p,
        Err(e) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let apis: Vec<String> = match demo.fake {
        Fake::DingTalk(_) => vec!["biz.contact.choose".into()],
        Fake::Feishu(_) => vec!["getLocation".into()],
        Fake::WeCom(_) => vec!["openUserProfile".into()],
    };
    match prepared.jsapi_config(page_url, kind, &apis).await {
        // `signed.config` is the object the SDK wants; it never contains the ticket.
        Ok(signed) => (
            [(header::CACHE_CONTROL, "no-store")],
            axum::Json(signed.config),
        )
            .into_response(),
        Err(e) => refuse(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// The page: `sign_url` is the JS expression of the URL it asks the server to sign.
fn render(demo: &Demo, sign_url: &str) -> Html<String> {
    let call = match demo.fake {
        Fake::DingTalk(_) => {
            "dd.config(await signed('jsapi'));
      dd.error(function (e) { show('error', e); });
      dd.ready(function () { show('ready'); });"
        }
        Fake::Feishu(_) => {
            "const cfg = await signed('jsapi');
      cfg.onFail = function (e) { show('error', e); };
      h5sdk.error(function (e) { show('error', e); });
      h5sdk.config(cfg);
      h5sdk.ready(function () { show('ready'); });"
        }
        Fake::WeCom(_) => {
            "wx.config(await signed('jsapi')); // beta: true is in the object
      wx.error(function (e) { show('error', e); });
      wx.ready(async function () {
        const agent = await signed('agent_config');
        agent.success = function () { show('ready'); };
        agent.fail = function (e) { show('error', e); };
        wx.agentConfig(agent);
      });"
        }
    };
    Html(format!(
        r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{platform} JSAPI signature</title>
<script src="{sdk}"></script></head>
<body><h1>{platform}</h1><p id="status">signing…</p><pre id="detail"></pre>
<script>
  function show(state, detail) {{
    if (document.body.hasAttribute('data-result')) return;
    document.body.setAttribute('data-result', state);
    document.getElementById('status').textContent = state;
    if (detail) document.getElementById('detail').textContent = JSON.stringify(detail);
  }}
  async function signed(kind) {{
    const url = {sign_url};
    const r = await fetch('/jsapi-config?kind=' + kind + '&url=' + encodeURIComponent(url));
    if (!r.ok) throw new Error('jsapi-config: HTTP ' + r.status);
    return r.json();
  }}
  (async function () {{
    try {{
      {call}
    }} catch (e) {{ show('error', String(e)); }}
  }})();
</script></body></html>
"#,
        platform = demo.platform(),
        sdk = demo.sdk_url(),
    ))
}

/// `GET /h5/index.html`: signs `location.href` without its fragment — the right way.
async fn page(State(demo): State<Arc<Demo>>) -> Html<String> {
    render(&demo, "location.href.split('#')[0]")
}

/// `GET /h5/pinned.html`: signs a hard-coded URL — wrong as soon as the page is opened under
/// any other (a query added by a shared link, a trailing slash, http vs https).
async fn pinned_page(State(demo): State<Arc<Demo>>) -> Html<String> {
    let pinned = format!("'{}/h5/pinned.html'", demo.origin);
    render(&demo, &pinned)
}
