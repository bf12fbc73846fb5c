//! The accounts host: the web authorize page and its Approve button.
//!
//! `GET /open-apis/authen/v1/authorize` validates the parameters the real page validates and
//! lists every known user with an *Approve* button (any tenant: web logins are not limited to
//! the app's tenant). The button posts to `POST /open-apis/authen/v1/authorize/approve`, which
//! answers `302 Found` to `redirect_uri?code=CODE&state=STATE` (state echoed unchanged), or
//! `redirect_uri?error=access_denied&state=STATE` for *Deny*. The code is bound to the
//! `redirect_uri` and the PKCE challenge of the request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use url::Url;

use super::envelope::accounts_error_page;
use super::{CodeGrant, FakeApp, FsState, Pkce};
use crate::http::{self, html_escape};

/// Validated authorize parameters.
pub(crate) struct AuthorizeRequest {
    pub(crate) app: FakeApp,
    pub(crate) redirect: Url,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
    pub(crate) pkce: Option<Pkce>,
}

/// Validate `client_id` (or `app_id`), `redirect_uri`, `response_type`, `scope` and PKCE.
pub(crate) fn validate(
    st: &FsState,
    p: &HashMap<String, String>,
) -> Result<AuthorizeRequest, String> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id")
        .or_else(|| get("app_id"))
        .ok_or("缺少参数 client_id")?;
    let app = st
        .app(client_id)
        .ok_or_else(|| format!("无效的 client_id: {client_id}"))?;
    match get("response_type") {
        None | Some("code") => {}
        Some(other) => return Err(format!("不支持的 response_type: {other}")),
    }
    let redirect_raw = get("redirect_uri").ok_or("缺少参数 redirect_uri")?;
    let redirect = Url::parse(redirect_raw).map_err(|_| "redirect_uri 不是合法的URL".to_owned())?;
    if !matches!(redirect.scheme(), "http" | "https") || !app.redirect_allowed(&redirect) {
        return Err(format!(
            "redirect_uri 未在应用的安全设置中配置: {}",
            redirect.host_str().unwrap_or("")
        ));
    }
    let scope = get("scope").unwrap_or("").to_owned();
    if let Some(bad) = scope
        .split_whitespace()
        .find(|s| !app.has(s) && *s != "auth:user.id:read")
    {
        return Err(format!("应用未开通权限: {bad}"));
    }
    let pkce = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(challenge), method) => {
            let method = method.unwrap_or("plain");
            if !matches!(method, "S256" | "plain") {
                return Err(format!("不支持的 code_challenge_method: {method}"));
            }
            Some(Pkce {
                challenge: challenge.to_owned(),
                method: method.to_owned(),
            })
        }
        (None, Some(_)) => return Err("缺少参数 code_challenge".into()),
    };
    Ok(AuthorizeRequest {
        app,
        redirect,
        scope,
        state: p.get("state").cloned(),
        pkce,
    })
}

/// Issue a web code for `user_id` through `app` (what Approve does).
pub(crate) fn issue_web_code(
    st: &FsState,
    app: &FakeApp,
    user_id: &str,
    scope: &str,
    redirect_uri: Option<&Url>,
    pkce: Option<Pkce>,
) -> String {
    if st.users.get(user_id).is_none() {
        tracing::warn!("fake feishu: web code requested for an unknown user; it will be rejected");
        return crate::store::random_id(super::CODE_PREFIX);
    }
    st.codes.issue(CodeGrant {
        app_id: app.app_id.clone(),
        user_id: user_id.to_owned(),
        scope: scope.to_owned(),
        redirect_uri: redirect_uri.map(|u| u.as_str().to_owned()),
        pkce,
    })
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        html_escape(name),
        html_escape(value)
    )
}

/// `GET /open-apis/authen/v1/authorize`.
pub(crate) async fn authorize(st: Arc<FsState>, req: Request) -> Response {
    let p = http::query_params(req.uri());
    let auth = match validate(&st, &p) {
        Ok(a) => a,
        Err(msg) => return accounts_error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let mut common = [
        hidden("client_id", &auth.app.app_id),
        hidden("redirect_uri", auth.redirect.as_str()),
        hidden("scope", &auth.scope),
    ]
    .concat();
    if let Some(state) = &auth.state {
        common.push_str(&hidden("state", state));
    }
    if let Some(pkce) = &auth.pkce {
        common.push_str(&hidden("code_challenge", &pkce.challenge));
        common.push_str(&hidden("code_challenge_method", &pkce.method));
    }
    let mut rows = String::new();
    for u in st.users.all() {
        rows.push_str(&format!(
            "<li class=\"user\" data-user-id=\"{id}\"><span class=\"name\">{name}</span> \
             <span class=\"tenant\">{tenant}</span>\
             <form method=\"post\" action=\"/open-apis/authen/v1/authorize/approve\">{common}{uid}\
             <button type=\"submit\" name=\"action\" value=\"approve\">Approve</button></form></li>\n",
            id = html_escape(&u.user_id),
            name = html_escape(&u.name),
            tenant = html_escape(st.tenant_of(&u)),
            uid = hidden("user_id", &u.user_id),
        ));
    }
    http::html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>飞书授权登录 (fake)</title></head>\n\
             <body><h1>授权 {app}</h1>\n<ul>\n{rows}</ul>\n\
             <form method=\"post\" action=\"/open-apis/authen/v1/authorize/approve\">{common}\
             <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>\n</body></html>\n",
            app = html_escape(&auth.app.app_id),
        ),
    )
}

fn found(url: &Url) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::FOUND;
    match HeaderValue::from_str(url.as_str()) {
        Ok(v) => {
            resp.headers_mut().insert(header::LOCATION, v);
            resp
        }
        Err(_) => accounts_error_page(StatusCode::BAD_REQUEST, "redirect_uri 无法使用"),
    }
}

/// `POST /open-apis/authen/v1/authorize/approve` (form: the page's hidden fields, `user_id`,
/// `action`).
pub(crate) async fn approve(st: Arc<FsState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if http::media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return accounts_error_page(StatusCode::BAD_REQUEST, "请求必须是表单提交");
    }
    let Some(bytes) = http::read_body(body).await else {
        return accounts_error_page(StatusCode::BAD_REQUEST, "请求体过大");
    };
    let p = http::form_params(&bytes);
    let auth = match validate(&st, &p) {
        Ok(a) => a,
        Err(msg) => return accounts_error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let mut target = auth.redirect.clone();
    match p.get("action").map_or("approve", String::as_str) {
        "approve" => {
            let user_id = p.get("user_id").map_or("", String::as_str);
            if st.users.get(user_id).is_none() {
                return accounts_error_page(StatusCode::BAD_REQUEST, "未知用户");
            }
            let code = issue_web_code(
                &st,
                &auth.app,
                user_id,
                &auth.scope,
                Some(&auth.redirect),
                auth.pkce,
            );
            target.query_pairs_mut().append_pair("code", &code);
        }
        "deny" => {
            target
                .query_pairs_mut()
                .append_pair("error", "access_denied");
        }
        _ => return accounts_error_page(StatusCode::BAD_REQUEST, "未知操作"),
    }
    if let Some(state) = &auth.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    found(&target)
}
