//! The few HTML pages the gateway serves: errors for browsers, the H5 login-free page that asks
//! the platform client's JSAPI for a code and posts it back (rendered from the platform's
//! [`JsapiLogin`], so the gateway knows no platform by name), and a small home page that shows
//! who is signed in.
//!
//! Everything interpolated is escaped (HTML text/attributes) or embedded as JSON with `<`, `>`,
//! `&` and line separators escaped (inside `<script>`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use unilogin::JsapiLogin;

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

/// The CSP source of an inline element's text: `'sha256-…'`.
fn csp_hash(text: &str) -> String {
    use base64::Engine as _;
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// A complete HTML document with `no-store`, `Referrer-Policy: same-origin` (a form on it
/// then sends its `Origin`) and no framing, and a content
/// security policy allowing only its own style and no script.
pub fn html(status: StatusCode, title: &str, body: &str) -> Response {
    html_with_scripts(status, title, body, &[])
}

/// [`html`] whose policy also allows these script sources (hashes of inline scripts, origins).
fn html_with_scripts(status: StatusCode, title: &str, body: &str, scripts: &[String]) -> Response {
    let doc = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n",
        escape(title)
    );
    let script_src = if scripts.is_empty() {
        "'none'".to_string()
    } else {
        scripts.join(" ")
    };
    let csp = format!(
        "default-src 'none'; style-src {}; script-src {script_src}; connect-src 'self'; \
         img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        csp_hash(STYLE)
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
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
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

/// What the H5 login-free page needs: the platform's [`JsapiLogin`] and where the code goes.
#[derive(Debug, Clone)]
pub struct H5Page<'a> {
    /// The platform's JSAPI login (its global, its code call).
    pub jsapi: &'a JsapiLogin,
    /// The SDK script to load (the published one, an override, or none).
    pub sdk_url: Option<&'a str>,
    /// Its Subresource Integrity value (`h5.sdk_integrity`), e.g. `sha384-…`.
    pub sdk_integrity: Option<&'a str>,
    /// What the page shows and posts.
    pub config: H5PageConfig,
}

/// The page's data, embedded as JSON (`<script type="application/json">`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct H5PageConfig {
    /// Platform name (display only).
    pub platform: String,
    /// Tenant id (display only).
    pub tenant: String,
    /// The global the platform's SDK defines inside its client (`window[global]`).
    pub global: String,
    /// The arguments of the code call ([`JsapiLogin::params`] of the tenant's configuration).
    pub params: serde_json::Value,
    /// Where to POST `{code}`.
    pub code_url: String,
    /// Where to go once signed in (already checked against the allow-list).
    pub return_to: String,
    /// Sandbox only: where the page gets a code from the platform fake when the global is absent.
    pub sandbox_code_url: Option<String>,
}

const H5_SCRIPT: &str = r#"(function () {
  var cfg = JSON.parse(document.getElementById('unilogin-h5').textContent);
  var status = document.getElementById('status');
  function fail(msg) { status.textContent = 'Sign-in failed: ' + msg; status.className = 'error'; }
  function post(code) {
    if (!code) { throw new Error('the client returned no code'); }
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
  function sandbox() {
    return fetch(cfg.sandboxCodeUrl, { method: 'POST' }).then(function (r) { return r.json(); })
      .then(function (j) { if (!j.code) { throw new Error(j.message || 'no code'); } return j.code; });
  }
  var code;
  if (window[cfg.global]) { code = Promise.resolve(cfg.params).then(getCode); }
  else if (cfg.sandboxCodeUrl) { code = sandbox(); }
  else { code = Promise.reject(new Error('open this page inside the ' + cfg.platform + ' client')); }
  code.then(post).catch(function (e) { fail(e && e.message ? e.message : String(e)); });
})();"#;

/// The H5 login-free page: loads the platform's SDK, calls its code function with the tenant's
/// parameters (or, in the sandbox without the client, asks the fake), posts the code.
///
/// The code function is the platform crate's static JavaScript; everything from configuration
/// or the request is embedded as JSON data, never as code.
pub fn h5_page(page: &H5Page<'_>) -> Result<Response, unilogin::Error> {
    let get_code = page.jsapi.get_code;
    if get_code.to_ascii_lowercase().contains("</script") {
        return Err(unilogin::Error::Internal(
            "a platform's JSAPI code function must not contain `</script`".into(),
        ));
    }
    let sdk = page
        .sdk_url
        .map(|src| match page.sdk_integrity {
            Some(sri) => format!(
                "<script src=\"{}\" integrity=\"{}\" crossorigin=\"anonymous\"></script>\n",
                escape(src),
                escape(sri)
            ),
            None => format!("<script src=\"{}\"></script>\n", escape(src)),
        })
        .unwrap_or_default();
    let inline = format!("var getCode = ({get_code});\n{H5_SCRIPT}");
    // The policy allows exactly the page's inline script and the SDK's URL.
    let mut scripts = vec![csp_hash(&inline)];
    if let Some(src) = page.sdk_url {
        scripts.push(src.replace([';', ',', ' ', '\''], ""));
    }
    Ok(html_with_scripts(
        StatusCode::OK,
        "Signing in",
        &format!(
            "<h1>Signing in to {tenant}</h1>\n<p id=\"status\">Asking {platform} for a login code...</p>\n\
             <script type=\"application/json\" id=\"unilogin-h5\">{cfg}</script>\n{sdk}\
             <script>{inline}</script>",
            tenant = escape(&page.config.tenant),
            platform = escape(&page.config.platform),
            cfg = script_json(&page.config),
        ),
        &scripts,
    ))
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
    fn h5_page_embeds_config_as_data_and_the_code_function_as_code() {
        let jsapi = JsapiLogin {
            sdk_url: "https://cdn.example/sdk.js",
            global: "xx",
            get_code: "function (p) { return xx.code(p.org); }",
            params: |_| serde_json::Value::Null,
        };
        let page = H5Page {
            jsapi: &jsapi,
            sdk_url: Some("https://cdn.example/sdk.js?a=1&b=2"),
            sdk_integrity: None,
            config: H5PageConfig {
                platform: "some-platform".into(),
                tenant: "acme".into(),
                global: "xx".into(),
                params: serde_json::json!({"org": "o</script><script>alert(1)</script>"}),
                code_url: "/auth/acme/some-platform/code".into(),
                return_to: "https://app.example/".into(),
                sandbox_code_url: None,
            },
        };
        let r = h5_page(&page).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[header::REFERRER_POLICY], "same-origin");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let body = rt
            .block_on(axum::body::to_bytes(r.into_body(), 1 << 20))
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            body.contains("var getCode = (function (p) { return xx.code(p.org); });"),
            "{body}"
        );
        assert!(
            body.contains("<script src=\"https://cdn.example/sdk.js?a=1&amp;b=2\"></script>"),
            "{body}"
        );
        assert!(!body.contains("alert(1)</script>"), "{body}");
        assert!(body.contains("\"global\":\"xx\""), "{body}");
        let bad = JsapiLogin {
            get_code: "function () { '</SCRIPT>' }",
            ..jsapi
        };
        assert!(
            h5_page(&H5Page {
                jsapi: &bad,
                ..page
            })
            .is_err()
        );
    }
}
