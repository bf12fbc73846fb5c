//! The accounts host: the web authorize page and its Approve button.
//!
//! `GET /open-apis/authen/v1/authorize` validates the parameters the real page validates and
//! lists every known user with an *Approve* button (any tenant: web logins are not limited to
//! the app's tenant). The button posts to `POST /open-apis/authen/v1/authorize/approve`, which
//! answers `302 Found` to `redirect_uri?code=CODE&state=STATE` (state echoed unchanged), or
//! `redirect_uri?error=access_denied&state=STATE` for *Deny*. The code is bound to the
//! `redirect_uri` and the PKCE challenge of the request.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use url::Url;

use super::envelope::accounts_error_page;
use super::{APPROVE_PATH, FakeApp, Feishu, Pkce};
use crate::http::{self, Params, Reply, html_escape, param};
use crate::pages::{self, Refusal, SignInPage};

/// Validated authorize parameters.
pub(crate) struct AuthorizeRequest {
    pub(crate) app: FakeApp,
    pub(crate) redirect: Url,
    pub(crate) scope: String,
    pub(crate) state: Option<String>,
    pub(crate) pkce: Option<Pkce>,
}

/// Validate `client_id` (or `app_id`), `redirect_uri`, `response_type`, `scope` and PKCE.
pub(crate) fn validate(st: &Feishu, p: &Params) -> Result<AuthorizeRequest, String> {
    let get = |k: &str| param(p, k);
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

const SIGN_IN: SignInPage = SignInPage {
    title: "飞书授权登录 (fake)",
    action: APPROVE_PATH,
    org_class: Some("tenant"),
    deny: true,
};

fn bad_request(message: &str) -> Response {
    accounts_error_page(StatusCode::BAD_REQUEST, message)
}

/// `GET /open-apis/authen/v1/authorize`.
pub(crate) async fn authorize(st: Arc<Feishu>, req: Request) -> Reply {
    let p = http::query_params(req.uri());
    let auth = validate(&st, &p).map_err(|msg| bad_request(&msg))?;
    let state = auth.state.as_deref();
    let mut hidden = pages::oauth_hidden(&auth.app.app_id, &auth.redirect, &auth.scope, state);
    if let Some(pkce) = &auth.pkce {
        hidden.push_str(&pages::hidden("code_challenge", &pkce.challenge));
        hidden.push_str(&pages::hidden("code_challenge_method", &pkce.method));
    }
    let heading = format!("授权 {}", html_escape(&auth.app.app_id));
    Ok(SIGN_IN.render(&heading, &hidden, &st.home_tenant, &st.users.all()))
}

/// `POST /open-apis/authen/v1/authorize/approve` (form: the page's hidden fields, `user_id`,
/// `action`). The code is bound to the request's `redirect_uri` and PKCE challenge.
pub(crate) async fn approve(st: Arc<Feishu>, req: Request) -> Reply {
    let refuse = |r: Refusal| bad_request(r.chinese());
    let p = pages::read_form(req).await.map_err(refuse)?;
    let auth = validate(&st, &p).map_err(|msg| bad_request(&msg))?;
    let (key, value) = pages::decide(&p, &st.users, "code", |user_id| {
        let binding = (Some(&auth.redirect), auth.pkce);
        st.issue_code(false, &auth.app.app_id, user_id, &auth.scope, binding)
    })
    .map_err(refuse)?;
    let state = auth.state.as_deref();
    pages::back_to(StatusCode::FOUND, auth.redirect, (key, &value), state)
        .ok_or_else(|| refuse(Refusal::BadRedirect))
}

impl super::FakeFeishu {
    /// A browser at `authorize_url` (the client's authorize URL for this fake): loads the
    /// authorize page and presses *Approve* for `user_id` with the page's own fields. Returns
    /// where Feishu sends the browser back (`redirect_uri?code=…&state=…`, the code bound to
    /// the request's `redirect_uri` and PKCE challenge), or the page's refusal as text.
    ///
    /// # Errors
    /// The page's status and body when it refuses the request or the approval.
    pub async fn approve_on_page(&self, authorize_url: &Url, user_id: &str) -> Result<Url, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let page = http
            .get(authorize_url.clone())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if page.status() != StatusCode::OK {
            let status = page.status();
            return Err(format!(
                "{status}: {}",
                page.text().await.unwrap_or_default()
            ));
        }
        let mut form: Vec<(String, String)> = authorize_url.query_pairs().into_owned().collect();
        form.retain(|(k, _)| k != "response_type");
        form.push(("user_id".into(), user_id.into()));
        form.push(("action".into(), "approve".into()));
        let approve = http
            .post(format!("{}{APPROVE_PATH}", self.base_url()))
            .form(&form)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let location = approve
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Url::parse(v).ok());
        match location {
            Some(back) if approve.status() == StatusCode::FOUND => Ok(back),
            _ => {
                let status = approve.status();
                Err(format!(
                    "{status}: {}",
                    approve.text().await.unwrap_or_default()
                ))
            }
        }
    }
}
