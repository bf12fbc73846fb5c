//! `login.dingtalk.com`: the web/QR authorize page and its Approve button.
//!
//! `GET /oauth2/auth` validates the parameters the real page validates and lists every known user
//! with an *Approve* button (any organisation: web logins are not limited to the app's
//! organisation). The button posts to `POST /oauth2/approve`, which answers `303 See Other` to
//! `redirect_uri?authCode=CODE&state=STATE` (state echoed unchanged), or
//! `redirect_uri?error=access_denied&state=STATE` for *Deny*.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use url::Url;

use super::envelope::login_error_page;
use super::{APPROVE_PATH, DingTalk, FakeApp};
use crate::http::{self, Params, Reply, html_escape, param};
use crate::pages::{self, Refusal, SignInPage};

/// Validated authorize parameters.
pub(crate) struct AuthorizeRequest {
    pub(crate) app: FakeApp,
    pub(crate) redirect: Url,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
}

/// Validate `client_id`, `response_type`, `redirect_uri`, `scope` and (on the page) `prompt`.
pub(crate) fn validate(
    st: &DingTalk,
    p: &Params,
    require_prompt: bool,
) -> Result<AuthorizeRequest, String> {
    let get = |k: &str| param(p, k);
    let client_id = get("client_id").ok_or("缺少参数 client_id")?;
    let app = st
        .client(client_id)
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

const SIGN_IN: SignInPage = SignInPage {
    title: "钉钉登录 (fake)",
    action: APPROVE_PATH,
    org_class: Some("org"),
    deny: true,
};

fn bad_request(message: &str) -> axum::response::Response {
    login_error_page(StatusCode::BAD_REQUEST, message)
}

/// `GET /oauth2/auth`.
pub(crate) async fn authorize(st: Arc<DingTalk>, req: Request) -> Reply {
    let p = http::query_params(req.uri());
    let auth = validate(&st, &p, true).map_err(|msg| bad_request(&msg))?;
    let state = auth.state.as_deref();
    let hidden = pages::oauth_hidden(&auth.app.app_key, &auth.redirect, &auth.scope, state);
    let heading = format!("登录 {}", html_escape(&auth.app.app_key));
    Ok(SIGN_IN.render(&heading, &hidden, &st.home_corp, &st.users.all()))
}

/// `POST /oauth2/approve` (form: `client_id, redirect_uri, scope, state?, user_id, action`).
pub(crate) async fn approve(st: Arc<DingTalk>, req: Request) -> Reply {
    let refuse = |r: Refusal| bad_request(r.chinese());
    let p = pages::read_form(req).await.map_err(refuse)?;
    let auth = validate(&st, &p, false).map_err(|msg| bad_request(&msg))?;
    let (key, value) = pages::decide(&p, &st.users, "authCode", |user_id| {
        st.issue_web_code(&auth.app.app_key, user_id, &auth.scope)
    })
    .map_err(refuse)?;
    let state = auth.state.as_deref();
    pages::back_to(StatusCode::SEE_OTHER, auth.redirect, (key, &value), state)
        .ok_or_else(|| refuse(Refusal::BadRedirect))
}
