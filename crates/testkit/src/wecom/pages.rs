//! The browser side: the in-client OAuth link (`open.weixin.qq.com/connect/oauth2/authorize`),
//! the web login page (`login.work.weixin.qq.com/wwlogin/sso/login`) and the old QR connect page
//! (`open.work.weixin.qq.com/wwopen/sso/qrConnect`).
//!
//! Each page validates the parameters the real one validates and lists every known person with
//! an *Approve* button (inside the WeCom client the signed-in person is implicit; a list lets a
//! test or a sandbox user pick who that is). The button posts to `POST /wwlogin/sso/approve`,
//! which answers `303 See Other` to `redirect_uri?code=CODE&state=STATE`. The `#wechat_redirect`
//! fragment of the OAuth link never reaches a server, so it cannot be checked here.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use url::Url;

use super::WcState;
use super::envelope::error_page;
use crate::http::{self, html_escape};

type Params = HashMap<String, String>;

/// Which page a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    OAuth,
    SsoLogin,
    QrConnect,
}

impl Page {
    fn tag(self) -> &'static str {
        match self {
            Page::OAuth => "oauth",
            Page::SsoLogin => "sso",
            Page::QrConnect => "qr",
        }
    }

    fn from_tag(tag: &str) -> Option<Self> {
        match tag {
            "oauth" => Some(Page::OAuth),
            "sso" => Some(Page::SsoLogin),
            "qr" => Some(Page::QrConnect),
            _ => None,
        }
    }
}

/// A validated page request.
struct Validated {
    corp_id: String,
    agent_id: Option<String>,
    redirect: Url,
    state: Option<String>,
    /// The exchange will hand out a `user_ticket`.
    private: bool,
}

type Rejection = (Option<i64>, String);

fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn validate(st: &WcState, page: Page, p: &Params) -> Result<Validated, Rejection> {
    let corp_id = get(p, "appid").ok_or((None, "缺少参数 appid".to_owned()))?;
    if !st.corp_known(corp_id) {
        return Err((Some(40013), format!("无效的 appid: {corp_id}")));
    }
    let redirect_raw = get(p, "redirect_uri").ok_or((None, "缺少参数 redirect_uri".to_owned()))?;
    let redirect =
        Url::parse(redirect_raw).map_err(|_| (None, "redirect_uri 不是合法的URL".to_owned()))?;
    if !matches!(redirect.scheme(), "http" | "https") {
        return Err((None, "redirect_uri 必须是 http 或 https 地址".to_owned()));
    }
    let agent_id = get(p, "agentid");
    if let Some(agent) = agent_id
        && st.app(corp_id, agent).is_none()
    {
        return Err((None, format!("无效的 agentid: {agent}")));
    }
    let state = p.get("state").cloned();
    let mut private = false;
    match page {
        Page::OAuth => {
            if get(p, "response_type") != Some("code") {
                return Err((None, "response_type 必须为 code".to_owned()));
            }
            private = match get(p, "scope") {
                Some("snsapi_base" | "snsapi_userinfo") => false,
                Some("snsapi_privateinfo") => true,
                Some(other) => return Err((None, format!("不合法的 scope: {other}"))),
                None => return Err((None, "缺少参数 scope".to_owned())),
            };
            if let Some(s) = &state
                && (s.len() > 128 || !s.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return Err((
                    Some(84025),
                    "state 只能包含字母和数字, 最长128字节".to_owned(),
                ));
            }
        }
        Page::SsoLogin => {
            match get(p, "login_type") {
                Some("CorpApp") => {}
                Some("ServiceApp") => {
                    return Err((
                        None,
                        "ServiceApp (第三方应用) 登录不在模拟范围内".to_owned(),
                    ));
                }
                _ => return Err((None, "login_type 必须为 CorpApp 或 ServiceApp".to_owned())),
            }
            if agent_id.is_none() {
                return Err((None, "CorpApp 登录需要 agentid".to_owned()));
            }
            if let Some(lang) = get(p, "lang")
                && !matches!(lang, "zh" | "en")
            {
                return Err((None, format!("不合法的 lang: {lang}")));
            }
        }
        Page::QrConnect => {
            if agent_id.is_none() {
                return Err((None, "缺少参数 agentid".to_owned()));
            }
        }
    }
    Ok(Validated {
        corp_id: corp_id.to_owned(),
        agent_id: agent_id.map(str::to_owned),
        redirect,
        state,
        private,
    })
}

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        html_escape(name),
        html_escape(value)
    )
}

fn render(st: &WcState, page: Page, p: &Params) -> Response {
    if let Err((code, msg)) = validate(st, page, p) {
        return error_page(StatusCode::BAD_REQUEST, code, &msg);
    }
    let mut keys: Vec<_> = p.keys().collect();
    keys.sort();
    let mut common = hidden("page", page.tag());
    for k in keys {
        if !matches!(k.as_str(), "page" | "user_id") {
            common.push_str(&hidden(k, &p[k]));
        }
    }
    let mut rows = String::new();
    for u in st.users.all() {
        rows.push_str(&format!(
            "<li class=\"user\" data-user-id=\"{id}\"><span class=\"name\">{name}</span>\
             <form method=\"post\" action=\"/wwlogin/sso/approve\">{common}{uid}\
             <button type=\"submit\">Approve</button></form></li>\n",
            id = html_escape(&u.user_id),
            name = html_escape(&u.name),
            uid = hidden("user_id", &u.user_id),
        ));
    }
    http::html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>企业微信登录 (fake)</title></head>\n\
             <body><h1>企业微信登录</h1>\n<ul>\n{rows}</ul>\n</body></html>\n"
        ),
    )
}

/// `GET /connect/oauth2/authorize` (the in-client OAuth link).
pub(crate) async fn oauth2_authorize(st: Arc<WcState>, req: Request) -> Response {
    render(&st, Page::OAuth, &http::query_params(req.uri()))
}

/// `GET /wwlogin/sso/login` (web login).
pub(crate) async fn sso_login(st: Arc<WcState>, req: Request) -> Response {
    render(&st, Page::SsoLogin, &http::query_params(req.uri()))
}

/// `GET /wwopen/sso/qrConnect` (old QR login).
pub(crate) async fn qr_connect(st: Arc<WcState>, req: Request) -> Response {
    render(&st, Page::QrConnect, &http::query_params(req.uri()))
}

/// `POST /wwlogin/sso/approve` (form: the page's parameters, `page`, `user_id`).
pub(crate) async fn approve(st: Arc<WcState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if http::media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return error_page(StatusCode::BAD_REQUEST, None, "请求必须是表单提交");
    }
    let Some(bytes) = http::read_body(body).await else {
        return error_page(StatusCode::BAD_REQUEST, None, "请求体过大");
    };
    let p = http::form_params(&bytes);
    let Some(page) = get(&p, "page").and_then(Page::from_tag) else {
        return error_page(StatusCode::BAD_REQUEST, None, "未知页面");
    };
    let v = match validate(&st, page, &p) {
        Ok(v) => v,
        Err((code, msg)) => return error_page(StatusCode::BAD_REQUEST, code, &msg),
    };
    let user_id = get(&p, "user_id").unwrap_or("");
    if st.users.get(user_id).is_none() {
        return error_page(StatusCode::BAD_REQUEST, None, "未知用户");
    }
    let trusted = st.trusts(&v.corp_id, v.agent_id.as_deref(), &v.redirect);
    let code = st.issue_code(
        &v.corp_id,
        v.agent_id.as_deref(),
        user_id,
        v.private,
        trusted,
    );
    let mut target = v.redirect;
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &v.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    match HeaderValue::from_str(target.as_str()) {
        Ok(location) => {
            let mut resp = Response::new(axum::body::Body::empty());
            *resp.status_mut() = StatusCode::SEE_OTHER;
            resp.headers_mut().insert(header::LOCATION, location);
            resp
        }
        Err(_) => error_page(StatusCode::BAD_REQUEST, None, "redirect_uri 无法使用"),
    }
}
