//! The few HTML pages the gateway serves: errors for browsers, the H5 login-free page that asks
//! the platform's JSAPI for a code and posts it back, and a small home page that shows who is
//! signed in.
//!
//! Everything interpolated is escaped (HTML text/attributes) or embedded as JSON with `<`, `>`,
//! `&` and line separators escaped (inside `<script>`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Serializes `value` as JSON safe to place inside a `<script>` element.
pub fn script_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| "null".into())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5}\
code{background:#f3f3f3;padding:0 .2em}.error{color:#b00020}.ok{color:#1b5e20}li{margin:.3rem 0}";

/// A complete HTML document with `no-store`, `no-referrer` and no framing.
pub fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let doc = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    );
    let mut r = (status, doc).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The error page shown to browsers.
pub fn error_page(
    status: StatusCode,
    kind: &str,
    message: &str,
    trace_id: Option<&str>,
) -> Response {
    let trace = trace_id
        .map(|t| format!("<p>Trace id: <code>{}</code></p>", escape(t)))
        .unwrap_or_default();
    html(
        status,
        "Sign-in failed",
        &format!(
            "<h1 class=\"error\">Sign-in failed</h1>\n<p id=\"error-kind\"><code>{}</code> (HTTP {})</p>\n\
             <p id=\"error-message\">{}</p>\n{trace}<p><a href=\"/\">Back</a></p>",
            escape(kind),
            status.as_u16(),
            escape(message),
        ),
    )
}

/// What the H5 login-free page needs.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct H5Page {
    /// Platform name (selects the JSAPI).
    pub platform: String,
    /// Tenant id (display only).
    pub tenant: String,
    /// Organisation id for DingTalk's `dd.getAuthCode({corpId})`.
    pub corp_id: Option<String>,
    /// App id for Feishu's `tt.requestAccess({appID})`.
    pub app_id: String,
    /// Where to POST `{code}`.
    pub code_url: String,
    /// Where to go once signed in (already checked against the allow-list).
    pub return_to: String,
    /// Sandbox only: where the page gets a code from the platform fake when no JSAPI exists.
    pub sandbox_code_url: Option<String>,
    /// The platform's JSAPI script, if configured.
    #[serde(skip)]
    pub jssdk: Option<String>,
}

const H5_SCRIPT: &str = r#"(function () {
  var cfg = JSON.parse(document.getElementById('unilogin-h5').textContent);
  var status = document.getElementById('status');
  function fail(msg) { status.textContent = 'Sign-in failed: ' + msg; status.className = 'error'; }
  function err(e) { return new Error(typeof e === 'string' ? e : JSON.stringify(e)); }
  function post(code) {
    return fetch(cfg.codeUrl, {
      method: 'POST', credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ code: code })
    }).then(function (r) {
      return r.json().then(function (j) {
        if (!r.ok) { throw new Error(j.message || j.error || ('HTTP ' + r.status)); }
        return j;
      });
    }).then(function () {
      status.textContent = 'Signed in, continuing...'; status.className = 'ok';
      location.replace(cfg.returnTo);
    });
  }
  function dingtalk() {
    return new Promise(function (ok, ko) {
      dd.ready(function () {
        var done = function (r) { ok(r.authCode || r.code); };
        if (dd.getAuthCode) { dd.getAuthCode({ corpId: cfg.corpId, success: done, fail: function (e) { ko(err(e)); } }); }
        else { dd.runtime.permission.requestAuthCode({ corpId: cfg.corpId, onSuccess: done, onFail: function (e) { ko(err(e)); } }); }
      });
    });
  }
  function feishu() {
    return new Promise(function (ok, ko) {
      var done = function (r) { ok(r.code); };
      var legacy = function (e) {
        if (!tt.requestAuthCode) { ko(err(e)); return; }
        var run = function () { tt.requestAuthCode({ appId: cfg.appId, success: done, fail: function (e2) { ko(err(e2)); } }); };
        if (window.h5sdk && h5sdk.ready) { h5sdk.ready(run); } else { run(); }
      };
      if (tt.requestAccess) { tt.requestAccess({ appID: cfg.appId, scopeList: [], success: done, fail: legacy }); }
      else { legacy('tt.requestAccess is not available'); }
    });
  }
  function sandbox() {
    return fetch(cfg.sandboxCodeUrl, { method: 'POST' }).then(function (r) { return r.json(); })
      .then(function (j) { if (!j.code) { throw new Error(j.message || 'no code'); } return j.code; });
  }
  var getCode;
  if (cfg.platform === 'dingtalk' && window.dd) { getCode = dingtalk(); }
  else if (cfg.platform === 'feishu' && window.tt) { getCode = feishu(); }
  else if (cfg.sandboxCodeUrl) { getCode = sandbox(); }
  else { getCode = Promise.reject(new Error('open this page inside the ' + cfg.platform + ' client')); }
  getCode.then(post).catch(function (e) { fail(e.message); });
})();"#;

/// The H5 login-free page.
pub fn h5_page(page: &H5Page) -> Response {
    let sdk = page
        .jssdk
        .as_deref()
        .map(|src| format!("<script src=\"{}\"></script>\n", escape(src)))
        .unwrap_or_default();
    html(
        StatusCode::OK,
        "Signing in",
        &format!(
            "<h1>Signing in to {tenant}</h1>\n<p id=\"status\">Asking {platform} for a login code...</p>\n\
             <script type=\"application/json\" id=\"unilogin-h5\">{cfg}</script>\n{sdk}<script>{H5_SCRIPT}</script>",
            tenant = escape(&page.tenant),
            platform = escape(&page.platform),
            cfg = script_json(page),
        ),
    )
}

/// Who the home page shows as signed in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Display name.
    pub name: Option<String>,
    /// Tenant.
    pub tenant: String,
    /// Platform.
    pub platform: String,
    /// User id.
    pub uid: String,
    /// Granted scopes.
    pub scope: String,
}

/// The home page: who is signed in, and (in the sandbox) login links to try.
pub fn home_page(signed_in: Option<&SignedIn>, links: &[(String, String)]) -> Response {
    let mut body = String::from("<h1>unilogin gateway</h1>\n");
    match signed_in {
        Some(s) => {
            body.push_str(&format!(
                "<p id=\"signed-in\" class=\"ok\">Signed in as <strong id=\"user-name\">{}</strong> \
                 (<code id=\"user-id\">{}</code>, tenant <code>{}</code>, platform <code id=\"user-platform\">{}</code>)</p>\n\
                 <p>Scopes: <code>{}</code></p>\n<p><a href=\"/me\">/me</a></p>\n\
                 <form method=\"post\" action=\"/logout\"><button type=\"submit\" id=\"logout\">Sign out</button></form>\n",
                escape(s.name.as_deref().unwrap_or(&s.uid)),
                escape(&s.uid),
                escape(&s.tenant),
                escape(&s.platform),
                escape(if s.scope.is_empty() { "(none)" } else { &s.scope }),
            ));
        }
        None => body.push_str("<p id=\"signed-out\">Not signed in.</p>\n"),
    }
    if !links.is_empty() {
        body.push_str("<h2>Sign in with</h2>\n<ul>\n");
        for (label, href) in links {
            body.push_str(&format!(
                "<li><a class=\"login\" href=\"{}\">{}</a></li>\n",
                escape(href),
                escape(label)
            ));
        }
        body.push_str("</ul>\n");
    }
    html(StatusCode::OK, "unilogin gateway", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        let j = script_json(&serde_json::json!({"x": "</script><b>&"}));
        assert!(
            !j.contains("</script>") && !j.contains('<') && !j.contains('&'),
            "{j}"
        );
        let back: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(back["x"], "</script><b>&");
    }

    #[test]
    fn h5_page_embeds_config_safely() {
        let page = H5Page {
            platform: "dingtalk".into(),
            tenant: "acme".into(),
            corp_id: Some("ding</script>".into()),
            app_id: "k".into(),
            code_url: "/auth/acme/dingtalk/code".into(),
            return_to: "https://app.example/".into(),
            sandbox_code_url: None,
            jssdk: Some("https://cdn.example/dd.js".into()),
        };
        let r = h5_page(&page);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::REFERRER_POLICY], "no-referrer");
    }
}
