//! The JSAPI side every fake shares: jsapi tickets with expiry, the signature the platforms'
//! JS SDKs check, refusals, and the fake JS SDKs served to browser tests.
//!
//! # Tickets
//! Each fake hands out tickets through its platform's ticket endpoints (see the platform
//! modules) from one ticket book: a ticket lives [`TICKET_TTL`] (7200 s on the fake clock),
//! belongs to one app (DingTalk app key, Feishu app id, WeCom corp + agent) and one
//! [`JsapiKind`], and is handed out **again** while it lives (with its remaining lifetime), as
//! the real platforms do. Every successful fetch is counted per app and kind
//! (`jsapi_ticket_fetches` on each fake), for tests and benchmarks that assert "fetched once".
//! Tests can expire tickets early (`expire_jsapi_tickets`: a cached ticket becomes invalid and
//! the next fetch issues a new one) or rotate them (`rotate_jsapi_ticket`).
//!
//! # Signatures
//! All three platforms sign the same way (reference `isv-jsapi-events.md` §2):
//! `sha1("jsapi_ticket=T&noncestr=N&timestamp=TS&url=URL")` in lowercase hex, where `URL` is the
//! page's address **without the fragment**, byte for byte as the browser reports it
//! (`location.href.split('#')[0]`) — see [`jsapi_signature`]. A fake's
//! `verify_jsapi_config(kind, config, page_url)` checks a `config` object the way the platform's
//! JS SDK and server do, against the tickets it issued that are still valid, and refuses with a
//! [`JsapiRefusal`] carrying the error object the SDK would hand to the page.
//!
//! # The fake JS SDKs (browser tests)
//! Every fake serves these endpoints (family of its browser pages: transport faults only):
//!
//! | endpoint name | method and path | what |
//! |---|---|---|
//! | `jsapi_sdk` | `GET /__fake/jsapi/{dingtalk,feishu,wecom}.js[?user=USERID]` | the fake SDK script (each fake serves its own platform's file) |
//! | `jsapi_verify` | `POST /__fake/jsapi/verify` `{kind, config, url}` | `{"ok":true}` or `{"ok":false,"reason","error"}` (HTTP 200) |
//! | `jsapi_code` | `POST /__fake/jsapi/code` `{user, corpId?/appId?, kind?, scope?}` | `{"ok":true,"code"}`: an H5 code as the client's code JSAPI returns it |
//!
//! The scripts define `dd.config/ready/error`, `dd.getAuthCode` and
//! `dd.runtime.permission.requestAuthCode` (DingTalk); `window.h5sdk.config/ready/error`,
//! `tt.requestAuthCode` and `tt.requestAccess` (Feishu); `wx.config/agentConfig/ready/error`
//! (WeCom, also as `jWeixin`). `config(obj)` posts `{kind, config: obj, url:
//! location.href.split('#')[0]}` to the verify endpoint and then runs the `ready` callbacks (and
//! `onSuccess` / `success`) or the `error` callbacks (and `onFail` / `fail`) with the platform's
//! error object. `ready(cb)` without any `config` runs `cb` at once (the code JSAPIs need no
//! signature). The person "signed in to the client" is the script's `?user=` (default: the fake's
//! demo user). `window.__fakeJsapi` exposes `{state, error}` (`state`: `idle`, `pending`, `ok`,
//! `failed`) for assertions.
//!
//! **Cross-origin pages**: the script finds the fake through its own `src`
//! (`document.currentScript`), and posts with `Content-Type: text/plain` — a CORS *simple
//! request*, so no preflight is needed; the verify and code endpoints answer with
//! `Access-Control-Allow-Origin` echoing the page's `Origin`. A page on any origin can therefore
//! load `<script src="{fake}/__fake/jsapi/dingtalk.js">` directly; no proxy is involved.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha1::{Digest, Sha1};

use crate::clock::FakeClock;
use crate::http;
use crate::store::TokenStore;
use crate::table::lock;

/// Lifetime of a jsapi ticket (7200 s on the fake clock).
pub const TICKET_TTL: Duration = Duration::from_secs(7200);

/// Path of the verify endpoint the fake JS SDKs post to.
pub const VERIFY_PATH: &str = "/__fake/jsapi/verify";
/// Path of the code endpoint behind the fake SDKs' code JSAPIs.
pub const CODE_PATH: &str = "/__fake/jsapi/code";
/// Path of the DingTalk fake SDK (served by the DingTalk fake).
pub const DINGTALK_SDK_PATH: &str = "/__fake/jsapi/dingtalk.js";
/// Path of the Feishu fake SDK (served by the Feishu fake).
pub const FEISHU_SDK_PATH: &str = "/__fake/jsapi/feishu.js";
/// Path of the WeCom fake SDK (served by the WeCom fake).
pub const WECOM_SDK_PATH: &str = "/__fake/jsapi/wecom.js";

/// Endpoint names of the JSAPI helpers every fake serves.
pub mod endpoints {
    /// `GET /__fake/jsapi/{platform}.js`.
    pub const JSAPI_SDK: &str = "jsapi_sdk";
    /// `POST /__fake/jsapi/verify`.
    pub const JSAPI_VERIFY: &str = "jsapi_verify";
    /// `POST /__fake/jsapi/code`.
    pub const JSAPI_CODE: &str = "jsapi_code";
}

/// Which signed JSAPI call, and so which ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum JsapiKind {
    /// `dd.config`, `h5sdk.config`, `wx.config`: the app's (WeCom: corp) jsapi ticket.
    Config,
    /// `wx.agentConfig` (WeCom only): the app's agent-config ticket.
    AgentConfig,
}

impl JsapiKind {
    /// The wire name the fake SDKs send as `kind`: `config` / `agentConfig`.
    pub fn as_str(self) -> &'static str {
        match self {
            JsapiKind::Config => "config",
            JsapiKind::AgentConfig => "agentConfig",
        }
    }

    /// The kind of a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "config" => Some(JsapiKind::Config),
            "agentConfig" | "agent_config" => Some(JsapiKind::AgentConfig),
            _ => None,
        }
    }
}

/// `lowercase_hex(sha1("jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}"))`,
/// values raw (not escaped), `url` as given (strip the fragment before calling).
///
/// ```
/// use unilogin_testkit::jsapi::jsapi_signature;
/// assert_eq!(
///     jsapi_signature("TICKET_EXAMPLE_001", "nonce0001", "1700000000",
///                     "https://app.example.com/h5/index?x=1&y=2"),
///     "961c314208f6b164c6d5306e92c0bc371ce2d84f",
/// );
/// ```
pub fn jsapi_signature(ticket: &str, nonce: &str, timestamp: &str, url: &str) -> String {
    let plain = format!("jsapi_ticket={ticket}&noncestr={nonce}&timestamp={timestamp}&url={url}");
    hex(&Sha1::digest(plain.as_bytes()))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The page URL the platforms sign: everything before the first `#`.
pub fn without_fragment(url: &str) -> &str {
    url.split('#').next().unwrap_or(url)
}

/// Why a `config` object was refused (no secret in it: never the ticket).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// A field the SDK requires is missing or empty.
    MissingField(&'static str),
    /// A field has the wrong JSON type (Feishu `timestamp` as a string).
    WrongType(&'static str),
    /// The app / corp / agent named in the config is not one the fake knows, or another than
    /// the one the signature must come from.
    UnknownApp(&'static str),
    /// No ticket of that app that is still valid gives this signature for this page URL.
    SignatureMismatch,
    /// The platform has no such call (`agentConfig` outside WeCom).
    UnsupportedKind,
}

impl RefusalReason {
    /// A short machine-readable name (`signature_mismatch`, `missing_field`, …).
    pub fn name(&self) -> &'static str {
        match self {
            RefusalReason::MissingField(_) => "missing_field",
            RefusalReason::WrongType(_) => "wrong_type",
            RefusalReason::UnknownApp(_) => "unknown_app",
            RefusalReason::SignatureMismatch => "signature_mismatch",
            RefusalReason::UnsupportedKind => "unsupported_kind",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::MissingField(n) => write!(f, "`{n}` is missing"),
            RefusalReason::WrongType(n) => write!(f, "`{n}` has the wrong type"),
            RefusalReason::UnknownApp(n) => write!(f, "`{n}` names no app of the fake"),
            RefusalReason::SignatureMismatch => f.write_str("signature mismatch"),
            RefusalReason::UnsupportedKind => f.write_str("the platform has no such call"),
        }
    }
}

/// A refused `config`: why, and the error object the platform's JS SDK hands to the page's
/// `error` / `onFail` / `fail` callback (DingTalk `{errorCode:"52013",errorMessage}`, WeCom
/// `{errMsg:"config:invalid signature"}`, Feishu `{errorCode,errorMessage}`).
#[derive(Debug, Clone, PartialEq)]
pub struct JsapiRefusal {
    /// Why.
    pub reason: RefusalReason,
    /// What the SDK's error callback receives.
    pub sdk_error: Value,
}

impl fmt::Display for JsapiRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "jsapi config refused: {} ({})",
            self.reason, self.sdk_error
        )
    }
}

impl std::error::Error for JsapiRefusal {}

#[derive(Debug, Clone)]
struct TicketMeta {
    app: String,
    kind: JsapiKind,
}

/// The tickets of one fake: issue-or-reuse, per-app/kind fetch counts, the last hour's fetches
/// (WeCom quotas), early expiry and rotation.
#[derive(Debug)]
pub(crate) struct TicketBook {
    clock: FakeClock,
    tickets: TokenStore<TicketMeta>,
    fetches: Mutex<BTreeMap<(String, JsapiKind), u64>>,
    recent: Mutex<VecDeque<(Instant, String, JsapiKind)>>,
}

impl TicketBook {
    /// An empty book whose tickets are `prefix` + 32 hex digits.
    pub(crate) fn new(clock: &FakeClock, prefix: &str) -> Self {
        Self {
            clock: clock.clone(),
            tickets: TokenStore::new(clock.clone(), prefix),
            fetches: Mutex::new(BTreeMap::new()),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// A fetch by `app`: its live ticket of `kind` again (with the time left), else a new one.
    /// Counted.
    pub(crate) fn fetch(&self, app: &str, kind: JsapiKind) -> (String, Duration) {
        *lock(&self.fetches)
            .entry((app.to_owned(), kind))
            .or_insert(0) += 1;
        lock(&self.recent).push_back((self.clock.now(), app.to_owned(), kind));
        self.current_or_new(app, kind)
    }

    fn current_or_new(&self, app: &str, kind: JsapiKind) -> (String, Duration) {
        let pred = |m: &TicketMeta| m.app == app && m.kind == kind;
        if let Some(t) = self.tickets.find_live(pred)
            && let Some(left) = self.tickets.remaining(&t)
        {
            return (t, left);
        }
        let meta = TicketMeta {
            app: app.to_owned(),
            kind,
        };
        (self.tickets.issue(meta, TICKET_TTL), TICKET_TTL)
    }

    /// Fetches of `kind` in the last hour (fake clock) by apps matching `app`.
    pub(crate) fn fetched_last_hour(&self, kind: JsapiKind, app: impl Fn(&str) -> bool) -> usize {
        let now = self.clock.now();
        let mut recent = lock(&self.recent);
        while recent.front().is_some_and(|(at, _, _)| {
            now.saturating_duration_since(*at) >= Duration::from_secs(3600)
        }) {
            recent.pop_front();
        }
        recent
            .iter()
            .filter(|(_, a, k)| *k == kind && app(a))
            .count()
    }

    /// Successful fetches by `app` of `kind` since the last reset.
    pub(crate) fn fetches(&self, app: &str, kind: JsapiKind) -> u64 {
        lock(&self.fetches)
            .get(&(app.to_owned(), kind))
            .copied()
            .unwrap_or(0)
    }

    /// Forget every fetch count (quota history too).
    pub(crate) fn reset_fetches(&self) {
        lock(&self.fetches).clear();
        lock(&self.recent).clear();
    }

    /// The live tickets of `app` and `kind`, newest first.
    pub(crate) fn live(&self, app: &str, kind: JsapiKind) -> Vec<String> {
        self.tickets.live_where(|m| m.app == app && m.kind == kind)
    }

    /// The live tickets of `kind` of every app matching `app`.
    pub(crate) fn live_of(&self, kind: JsapiKind, app: impl Fn(&str) -> bool) -> Vec<String> {
        self.tickets.live_where(|m| m.kind == kind && app(&m.app))
    }

    /// Expire every ticket of `app` and `kind` now; returns how many were live.
    pub(crate) fn expire(&self, app: &str, kind: JsapiKind) -> usize {
        self.tickets
            .revoke_where(|m| m.app == app && m.kind == kind)
    }

    /// Expire the tickets of `app` and `kind` and issue the next one (not counted as a fetch).
    pub(crate) fn rotate(&self, app: &str, kind: JsapiKind) -> String {
        self.expire(app, kind);
        self.current_or_new(app, kind).0
    }
}

/// A field of a config object as text: a string as-is, a number printed (`timeStamp` may be
/// either on DingTalk and WeCom).
pub(crate) fn scalar(config: &Value, name: &'static str) -> Result<String, RefusalReason> {
    match config.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(RefusalReason::MissingField(name)),
        Some(_) => Err(RefusalReason::WrongType(name)),
    }
}

/// A string field of a config object.
pub(crate) fn string(config: &Value, name: &'static str) -> Result<String, RefusalReason> {
    match config.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(RefusalReason::MissingField(name)),
        Some(_) => Err(RefusalReason::WrongType(name)),
    }
}

/// Whether one of `tickets` signs (`nonce`, `timestamp`, the page URL without fragment) as
/// `signature` (the config's `signature` field, required).
pub(crate) fn signed_by_any(
    tickets: &[String],
    config: &Value,
    nonce: &str,
    timestamp: &str,
    page_url: &str,
) -> Result<(), RefusalReason> {
    let signature = string(config, "signature")?;
    let url = without_fragment(page_url);
    if tickets
        .iter()
        .any(|t| jsapi_signature(t, nonce, timestamp, url) == signature)
    {
        Ok(())
    } else {
        Err(RefusalReason::SignatureMismatch)
    }
}

/// What the verify endpoint received.
pub(crate) struct VerifyRequest {
    pub(crate) kind: Option<JsapiKind>,
    pub(crate) config: Value,
    pub(crate) url: String,
}

/// The origin a CORS answer allows: the request's `Origin`, else `*`.
fn allow_origin(req_origin: Option<&HeaderValue>) -> HeaderValue {
    req_origin
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"))
}

/// A JSON answer with the CORS headers for `origin`.
pub(crate) fn cors_json(
    origin: Option<&HeaderValue>,
    status: StatusCode,
    body: &Value,
) -> Response {
    let mut resp = http::json(status, body);
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin(origin));
    h.insert(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// The `Origin` header and the JSON object body (sent as `text/plain` or `application/json`)
/// of a request to a JSAPI helper endpoint; a CORS-enabled HTTP 400 otherwise.
pub(crate) async fn read_json(req: Request) -> Result<(Option<HeaderValue>, Value), Response> {
    let (parts, body) = req.into_parts();
    let origin = parts.headers.get(header::ORIGIN).cloned();
    let bad = |why: &str| {
        cors_json(
            origin.as_ref(),
            StatusCode::BAD_REQUEST,
            &json!({"ok": false, "reason": "bad_request", "message": why}),
        )
    };
    let Some(bytes) = http::read_body(body).await else {
        return Err(bad("body too large or incomplete"));
    };
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(v @ Value::Object(_)) => Ok((origin, v)),
        _ => Err(bad("body must be a JSON object")),
    }
}

/// Parse `{kind, config, url}`.
pub(crate) fn verify_request(body: &Value) -> Option<VerifyRequest> {
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .map(JsapiKind::parse)
        .unwrap_or(Some(JsapiKind::Config));
    let config = body.get("config").filter(|c| c.is_object())?.clone();
    let url = body.get("url").and_then(Value::as_str)?.to_owned();
    Some(VerifyRequest { kind, config, url })
}

/// `POST /__fake/jsapi/verify` for every fake: parses `{kind, config, url}` and answers with
/// what `verify` (the fake's own check) says; a kind the platform does not have is refused with
/// `unsupported` (its SDK error built by `refuse`).
pub(crate) async fn verify_endpoint(
    req: Request,
    verify: impl FnOnce(JsapiKind, &Value, &str) -> Result<(), JsapiRefusal>,
    unsupported: impl FnOnce() -> JsapiRefusal,
) -> http::Reply {
    let (origin, body) = read_json(req).await?;
    let Some(v) = verify_request(&body) else {
        return Err(cors_json(
            origin.as_ref(),
            StatusCode::BAD_REQUEST,
            &json!({"ok": false, "reason": "bad_request", "message": "needs {kind, config, url}"}),
        ));
    };
    let outcome = match v.kind {
        Some(kind) => verify(kind, &v.config, &v.url),
        None => Err(unsupported()),
    };
    Ok(verify_answer(origin.as_ref(), outcome))
}

/// The verify endpoint's answer for `outcome`.
fn verify_answer(origin: Option<&HeaderValue>, outcome: Result<(), JsapiRefusal>) -> Response {
    let body = match outcome {
        Ok(()) => json!({"ok": true}),
        Err(r) => json!({
            "ok": false,
            "reason": r.reason.name(),
            "message": r.reason.to_string(),
            "error": r.sdk_error,
        }),
    };
    cors_json(origin, StatusCode::OK, &body)
}

/// The answer of the code endpoint: `{"ok":true,"code"}` (or `ok:false` with `error` as the
/// SDK's fail callback receives it).
pub(crate) fn code_answer(origin: Option<&HeaderValue>, code: Result<String, Value>) -> Response {
    let body = match code {
        Ok(code) => json!({"ok": true, "code": code}),
        Err(error) => json!({"ok": false, "error": error}),
    };
    cors_json(origin, StatusCode::OK, &body)
}

/// The `user` a code request names, or `default`.
pub(crate) fn requested_user(body: &Value, default: &str) -> String {
    body.get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .unwrap_or(default)
        .to_owned()
}

const SDK_CORE: &str = r##"
  var me = document.currentScript;
  var src = me && me.src ? new URL(me.src, location.href) : null;
  var base = src ? src.origin : "__FAKE_BASE__";
  var user = (src && src.searchParams.get("user")) || "__DEMO_USER__";
  var S = { state: "idle", error: null, ready: [], errors: [] };
  window.__fakeJsapi = S;
  function post(path, body) {
    return fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "text/plain;charset=UTF-8" },
      body: JSON.stringify(body)
    }).then(function (r) { return r.json(); });
  }
  function later(f, arg) { setTimeout(function () { f(arg); }, 0); }
  function verify(kind, cfg) {
    return post("/__fake/jsapi/verify", { kind: kind, config: cfg, url: location.href.split("#")[0] });
  }
  function ready(cb) {
    if (typeof cb !== "function") { return; }
    setTimeout(function () {
      if (S.state === "ok" || S.state === "idle") { cb(); }
      else if (S.state === "pending") { S.ready.push(cb); }
    }, 0);
  }
  function error(cb) {
    if (typeof cb !== "function") { return; }
    if (S.state === "failed") { later(cb, S.error); } else { S.errors.push(cb); }
  }
  function configure(kind, cfg, onOk, onFail, netError) {
    S.state = "pending";
    verify(kind, cfg || {}).then(function (r) {
      if (r && r.ok) {
        S.state = "ok";
        if (onOk) { onOk(); }
        var q = S.ready; S.ready = []; q.forEach(function (f) { later(f); });
      } else {
        S.state = "failed"; S.error = (r && r.error) || netError;
        if (onFail) { onFail(S.error); }
        S.errors.forEach(function (f) { later(f, S.error); });
      }
    }, function () {
      S.state = "failed"; S.error = netError;
      if (onFail) { onFail(S.error); }
      S.errors.forEach(function (f) { later(f, S.error); });
    });
  }
  function code(body, ok, ko) {
    body.user = user;
    post("/__fake/jsapi/code", body).then(function (r) {
      if (r && r.ok) { if (ok) { ok(r.code); } } else if (ko) { ko((r && r.error) || {}); }
    }, function (e) { if (ko) { ko({ errorMessage: String(e) }); } });
  }
"##;

const DINGTALK_SDK: &str = r##"
  var dd = window.dd = window.dd || {};
  dd.config = function (cfg) {
    configure("config", cfg, null, null, { errorCode: "-1", errorMessage: "network error" });
  };
  dd.ready = ready;
  dd.error = error;
  dd.getAuthCode = function (o) {
    o = o || {};
    code({ corpId: o.corpId }, function (c) { if (o.success) { o.success({ authCode: c }); } }, o.fail);
  };
  dd.runtime = dd.runtime || {};
  dd.runtime.permission = dd.runtime.permission || {};
  dd.runtime.permission.requestAuthCode = function (o) {
    o = o || {};
    code({ corpId: o.corpId }, function (c) { if (o.onSuccess) { o.onSuccess({ code: c }); } }, o.onFail);
  };
"##;

const FEISHU_SDK: &str = r##"
  var h5sdk = window.h5sdk = window.h5sdk || {};
  h5sdk.config = function (cfg) {
    cfg = cfg || {};
    configure("config", cfg, cfg.onSuccess ? function () { cfg.onSuccess({}); } : null,
      cfg.onFail, { errorCode: -1, errorMessage: "network error" });
  };
  h5sdk.ready = ready;
  h5sdk.error = error;
  var tt = window.tt = window.tt || {};
  tt.requestAuthCode = function (o) {
    o = o || {};
    code({ kind: "requestAuthCode", appId: o.appId }, function (c) { if (o.success) { o.success({ code: c }); } }, o.fail);
  };
  tt.requestAccess = function (o) {
    o = o || {};
    var scope = (o.scopeList || []).join(" ");
    code({ kind: "requestAccess", appId: o.appID || o.appId, scope: scope },
      function (c) { if (o.success) { o.success({ code: c }); } }, o.fail);
  };
"##;

const WECOM_SDK: &str = r##"
  var wx = window.wx = window.jWeixin = window.wx || {};
  wx.config = function (cfg) {
    configure("config", cfg, null, null, { errMsg: "config:fail" });
  };
  wx.agentConfig = function (cfg) {
    cfg = cfg || {};
    verify("agentConfig", cfg).then(function (r) {
      if (r && r.ok) { if (cfg.success) { later(cfg.success, { errMsg: "agentConfig:ok" }); } }
      else if (cfg.fail) { later(cfg.fail, (r && r.error) || { errMsg: "agentConfig:fail" }); }
    }, function () { if (cfg.fail) { later(cfg.fail, { errMsg: "agentConfig:fail" }); } });
  };
  wx.ready = ready;
  wx.error = error;
"##;

/// Which fake SDK a fake serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sdk {
    DingTalk,
    Feishu,
    WeCom,
}

/// The fake SDK script for `sdk`, reaching the fake at the request's `Host` when the script
/// cannot find its own `src`, with `demo_user` as the default client user.
pub(crate) fn sdk_script(sdk: Sdk, req: &Request, demo_user: &str) -> Response {
    let host = http::header_str(req.headers(), header::HOST.as_str()).unwrap_or("127.0.0.1");
    let glue = match sdk {
        Sdk::DingTalk => DINGTALK_SDK,
        Sdk::Feishu => FEISHU_SDK,
        Sdk::WeCom => WECOM_SDK,
    };
    let core = SDK_CORE
        .replace("__FAKE_BASE__", &format!("http://{}", js_escape(host)))
        .replace("__DEMO_USER__", &js_escape(demo_user));
    let body = format!(
        "/* unilogin-testkit fake JS SDK: signatures are checked by the fake */\n(function () {{\n  \"use strict\";{core}{glue}}})();\n"
    );
    let mut resp = http::response(StatusCode::OK, "application/javascript;charset=utf-8", body);
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    resp
}

/// `s` safe inside a double-quoted JS string literal.
fn js_escape(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_.:[]@".contains(*c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://app.example.com/h5/index?x=1&y=2";
    const SIG: &str = "961c314208f6b164c6d5306e92c0bc371ce2d84f";

    #[test]
    fn reference_worked_example() {
        assert_eq!(
            jsapi_signature("TICKET_EXAMPLE_001", "nonce0001", "1700000000", URL),
            SIG
        );
        assert_eq!(without_fragment(&format!("{URL}#/route")), URL);
    }

    #[test]
    fn signature_checks_refuse_fragment_encoding_and_wrong_ticket() {
        let tickets = vec!["TICKET_EXAMPLE_001".to_owned()];
        let cfg = json!({"signature": SIG});
        let check =
            |t: &[String], url: &str| signed_by_any(t, &cfg, "nonce0001", "1700000000", url);
        assert_eq!(check(&tickets, URL), Ok(()));
        // The page reports its URL with a fragment: the fragment is not signed.
        assert_eq!(check(&tickets, &format!("{URL}#/a")), Ok(()));
        // Signed over the fragment: mismatch.
        let with_frag = jsapi_signature(
            "TICKET_EXAMPLE_001",
            "nonce0001",
            "1700000000",
            &format!("{URL}#/a"),
        );
        let cfg2 = json!({"signature": with_frag});
        assert_eq!(
            signed_by_any(&tickets, &cfg2, "nonce0001", "1700000000", URL),
            Err(RefusalReason::SignatureMismatch)
        );
        // Encoded vs decoded URL.
        let encoded = "https://app.example.com/h5/index?x=1&y=a%20b";
        let decoded = "https://app.example.com/h5/index?x=1&y=a b";
        let sig = jsapi_signature("TICKET_EXAMPLE_001", "n", "1", decoded);
        let cfg3 = json!({"signature": sig});
        assert_eq!(
            signed_by_any(&tickets, &cfg3, "n", "1", encoded),
            Err(RefusalReason::SignatureMismatch)
        );
        assert_eq!(
            check(&["OTHER_TICKET".to_owned()], URL),
            Err(RefusalReason::SignatureMismatch)
        );
        assert_eq!(check(&[], URL), Err(RefusalReason::SignatureMismatch));
        assert_eq!(
            signed_by_any(&tickets, &json!({}), "n", "1", URL),
            Err(RefusalReason::MissingField("signature"))
        );
    }

    #[test]
    fn tickets_are_reused_counted_expired_and_rotated() {
        let clock = FakeClock::new();
        let book = TicketBook::new(&clock, "tk_");
        let (a, left) = book.fetch("app1", JsapiKind::Config);
        assert_eq!(left, TICKET_TTL);
        clock.advance(Duration::from_secs(100));
        let (b, left) = book.fetch("app1", JsapiKind::Config);
        assert_eq!(a, b, "a live ticket is handed out again");
        assert!(left <= TICKET_TTL - Duration::from_secs(100));
        let (c, _) = book.fetch("app2", JsapiKind::Config);
        assert_ne!(a, c, "tickets are per app");
        assert_eq!(book.fetches("app1", JsapiKind::Config), 2);
        assert_eq!(book.fetches("app1", JsapiKind::AgentConfig), 0);
        assert_eq!(
            book.fetched_last_hour(JsapiKind::Config, |a| a == "app1"),
            2
        );
        assert_eq!(book.live("app1", JsapiKind::Config), vec![a.clone()]);
        assert_eq!(book.expire("app1", JsapiKind::Config), 1);
        assert!(book.live("app1", JsapiKind::Config).is_empty());
        let rotated = book.rotate("app2", JsapiKind::Config);
        assert_ne!(rotated, c);
        assert_eq!(book.live_of(JsapiKind::Config, |_| true), vec![rotated]);
        clock.advance(TICKET_TTL);
        assert!(
            book.live_of(JsapiKind::Config, |_| true).is_empty(),
            "expired by the clock"
        );
        assert_eq!(book.fetched_last_hour(JsapiKind::Config, |_| true), 0);
        book.reset_fetches();
        assert_eq!(book.fetches("app1", JsapiKind::Config), 0);
    }

    #[test]
    fn scalar_fields_and_kinds() {
        let v = json!({"a": "x", "n": 17, "e": "", "o": {}});
        assert_eq!(scalar(&v, "a"), Ok("x".into()));
        assert_eq!(scalar(&v, "n"), Ok("17".into()));
        assert_eq!(scalar(&v, "e"), Err(RefusalReason::MissingField("e")));
        assert_eq!(scalar(&v, "o"), Err(RefusalReason::WrongType("o")));
        assert_eq!(string(&v, "n"), Err(RefusalReason::WrongType("n")));
        assert_eq!(
            JsapiKind::parse("agentConfig"),
            Some(JsapiKind::AgentConfig)
        );
        assert_eq!(
            JsapiKind::parse(JsapiKind::Config.as_str()),
            Some(JsapiKind::Config)
        );
        assert_eq!(JsapiKind::parse("x"), None);
        assert_eq!(js_escape("127.0.0.1:80\"</script>"), "127.0.0.1:80script");
    }
}
