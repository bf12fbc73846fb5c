//! The browser side: the in-client OAuth link (`open.weixin.qq.com/connect/oauth2/authorize`),
//! the web login page (`login.work.weixin.qq.com/wwlogin/sso/login`) and the old QR connect page
//! (`open.work.weixin.qq.com/wwopen/sso/qrConnect`).
//!
//! Each page validates the parameters the real one validates and lists every known person with
//! an *Approve* button (inside the WeCom client the signed-in person is implicit; a list lets a
//! test or a sandbox user pick who that is). The button posts to `POST /wwlogin/sso/approve`,
//! which answers `303 See Other` to `redirect_uri?code=CODE&state=STATE`. The `#wechat_redirect`
//! fragment of the OAuth link never reaches a server, so it cannot be checked here.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use url::Url;

use super::envelope::error_page;
use super::{APPROVE_PATH, WeCom};
use crate::http::{self, Params, Reply, param as get};
use crate::pages::{self, Refusal, SignInPage};

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

fn validate(st: &WeCom, page: Page, p: &Params) -> Result<Validated, Rejection> {
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

const SIGN_IN: SignInPage = SignInPage {
    title: "企业微信登录 (fake)",
    action: APPROVE_PATH,
    org_class: None,
    deny: false,
};

fn bad_request(errcode: Option<i64>, message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, errcode, message)
}

fn render(st: &WeCom, page: Page, p: &Params) -> Reply {
    validate(st, page, p).map_err(|(code, msg)| bad_request(code, &msg))?;
    let hidden = pages::hidden("page", page.tag()) + &pages::hidden_params(p, &["page", "user_id"]);
    Ok(SIGN_IN.render("企业微信登录", &hidden, "", &st.users.all()))
}

/// `GET /connect/oauth2/authorize` (the in-client OAuth link).
pub(crate) async fn oauth2_authorize(st: Arc<WeCom>, req: Request) -> Reply {
    render(&st, Page::OAuth, &http::query_params(req.uri()))
}

/// `GET /wwlogin/sso/login` (web login).
pub(crate) async fn sso_login(st: Arc<WeCom>, req: Request) -> Reply {
    render(&st, Page::SsoLogin, &http::query_params(req.uri()))
}

/// `GET /wwopen/sso/qrConnect` (old QR login).
pub(crate) async fn qr_connect(st: Arc<WeCom>, req: Request) -> Reply {
    render(&st, Page::QrConnect, &http::query_params(req.uri()))
}

/// `POST /wwlogin/sso/approve` (form: the page's parameters, `page`, `user_id`).
pub(crate) async fn approve(st: Arc<WeCom>, req: Request) -> Reply {
    let refuse = |r: Refusal| bad_request(None, r.chinese());
    let p = pages::read_form(req).await.map_err(refuse)?;
    let page = get(&p, "page")
        .and_then(Page::from_tag)
        .ok_or_else(|| bad_request(None, "未知页面"))?;
    let v = validate(&st, page, &p).map_err(|(code, msg)| bad_request(code, &msg))?;
    let user_id = pages::known_user(&p, &st.users).map_err(refuse)?;
    let trusted = st.trusts(&v.corp_id, v.agent_id.as_deref(), &v.redirect);
    let agent_id = v.agent_id.as_deref();
    let code = st.issue_code(&v.corp_id, agent_id, user_id, v.private, trusted);
    let state = v.state.as_deref();
    pages::back_to(StatusCode::SEE_OTHER, v.redirect, ("code", &code), state)
        .ok_or_else(|| refuse(Refusal::BadRedirect))
}
