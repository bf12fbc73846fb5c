//! `login.dingtalk.com`: the web/QR authorize page and its Approve button.
//!
//! `GET /oauth2/auth` validates the parameters the real page validates and lists every known user
//! with an *Approve* button (any organisation: web logins are not limited to the app's
//! organisation). The button posts to `POST /oauth2/approve`, which answers `303 See Other` to
//! `redirect_uri?authCode=CODE&state=STATE` (state echoed unchanged), or
//! `redirect_uri?error=access_denied&state=STATE` for *Deny*.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use url::Url;

use super::envelope::login_error_page;
use super::{DtState, FakeApp, WebGrant};
use crate::http::{self, html_escape};

/// Validated authorize parameters.
pub(crate) struct AuthorizeRequest {
    pub(crate) app: FakeApp,
    pub(crate) redirect: Url,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
}

fn scope_has_corpid(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s == "corpid")
}

/// Validate `client_id`, `response_type`, `redirect_uri`, `scope` and (on the page) `prompt`.
pub(crate) fn validate(
    st: &DtState,
    p: &HashMap<String, String>,
    require_prompt: bool,
) -> Result<AuthorizeRequest, String> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or("缺少参数 client_id")?;
    let app = st
        .app(client_id)
        .ok_or_else(|| format!("无效的 client_id: {client_id}"))?;
    if require_prompt {
        match get("response_type") {
            Some("code") => {}
            _ => return Err("response_type 必须为 code".into()),
        }
    }
    let redirect_raw = get("redirect_uri").ok_or("缺少参数 redirect_uri")?;
    let redirect = Url::parse(redirect_raw).map_err(|_| "redirect_uri 不是合法的URL".to_owned())?;
    if !matches!(redirect.scheme(), "http" | "https") {
        return Err("redirect_uri 必须是 http 或 https 地址".into());
    }
    if !app.redirect_allowed(&redirect) {
        return Err(format!(
            "redirect_uri 的域名 {} 不是应用配置的回调域名",
            redirect.host_str().unwrap_or("")
        ));
    }
    let scope = get("scope").ok_or("缺少参数 scope")?;
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    if !scopes.contains(&"openid") || scopes.iter().any(|s| !matches!(*s, "openid" | "corpid")) {
        return Err(format!("不合法的 scope: {scope}"));
    }
    if require_prompt {
        let prompt = get("prompt").ok_or("缺少参数 prompt")?;
        let prompts: Vec<&str> = prompt.split_whitespace().collect();
        if !prompts.contains(&"consent")
            || prompts.iter().any(|s| !matches!(*s, "consent" | "login"))
        {
            return Err(format!("不合法的 prompt: {prompt}"));
        }
    }
    Ok(AuthorizeRequest {
        app,
        redirect,
        scope: scope.to_owned(),
        state: p.get("state").cloned(),
    })
}

/// Issue a web code for `user_id` through `app` (what Approve does).
pub(crate) fn issue_web_code(st: &DtState, app: &FakeApp, user_id: &str, scope: &str) -> String {
    let Some(user) = st.users.get(user_id) else {
        tracing::warn!(
            "fake dingtalk: web code requested for an unknown user; it will be rejected"
        );
        return crate::store::random_id(super::CODE_PREFIX);
    };
    let corp_id = scope_has_corpid(scope).then(|| user.org_or(&st.home_corp).to_owned());
    st.web_codes.issue(WebGrant {
        app_key: app.app_key.clone(),
        user_id: user.user_id,
        corp_id,
    })
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        html_escape(name),
        html_escape(value)
    )
}

/// `GET /oauth2/auth`.
pub(crate) async fn authorize(st: Arc<DtState>, req: Request) -> Response {
    let p = http::query_params(req.uri());
    let auth = match validate(&st, &p, true) {
        Ok(a) => a,
        Err(msg) => return login_error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let common = [
        hidden("client_id", &auth.app.app_key),
        hidden("redirect_uri", auth.redirect.as_str()),
        hidden("scope", &auth.scope),
        auth.state
            .as_deref()
            .map(|s| hidden("state", s))
            .unwrap_or_default(),
    ]
    .concat();
    let mut rows = String::new();
    for u in st.users.all() {
        let org = u.org_or(&st.home_corp);
        rows.push_str(&format!(
            "<li class=\"user\" data-user-id=\"{id}\"><span class=\"name\">{name}</span> \
             <span class=\"org\">{org}</span>\
             <form method=\"post\" action=\"/oauth2/approve\">{common}{uid}\
             <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button></form></li>\n",
            id = html_escape(&u.user_id),
            name = html_escape(&u.name),
            org = html_escape(org),
            uid = hidden("user_id", &u.user_id),
        ));
    }
    http::html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>钉钉登录 (fake)</title></head>\n\
             <body><h1>登录 {app}</h1>\n<ul>\n{rows}</ul>\n\
             <form method=\"post\" action=\"/oauth2/approve\">{common}\
             <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>\n</body></html>\n",
            app = html_escape(&auth.app.app_key),
        ),
    )
}

fn see_other(url: &Url) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::SEE_OTHER;
    match HeaderValue::from_str(url.as_str()) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => login_error_page(StatusCode::BAD_REQUEST, "redirect_uri 无法使用"),
    }
}

/// `POST /oauth2/approve` (form: `client_id, redirect_uri, scope, state?, user_id, action`).
pub(crate) async fn approve(st: Arc<DtState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if http::media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return login_error_page(StatusCode::BAD_REQUEST, "请求必须是表单提交");
    }
    let Some(bytes) = http::read_body(body).await else {
        return login_error_page(StatusCode::BAD_REQUEST, "请求体过大");
    };
    let p = http::form_params(&bytes);
    let auth = match validate(&st, &p, false) {
        Ok(a) => a,
        Err(msg) => return login_error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let mut target = auth.redirect.clone();
    let action = p.get("action").map(String::as_str).unwrap_or("approve");
    match action {
        "approve" => {
            let user_id = p.get("user_id").map(String::as_str).unwrap_or("");
            if st.users.get(user_id).is_none() {
                return login_error_page(StatusCode::BAD_REQUEST, "未知用户");
            }
            let code = issue_web_code(&st, &auth.app, user_id, &auth.scope);
            target.query_pairs_mut().append_pair("authCode", &code);
        }
        "deny" => {
            target
                .query_pairs_mut()
                .append_pair("error", "access_denied");
        }
        _ => return login_error_page(StatusCode::BAD_REQUEST, "未知操作"),
    }
    if let Some(state) = &auth.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    see_other(&target)
}
