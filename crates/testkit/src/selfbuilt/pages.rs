//! The browser side: `GET /open/v3/sso/authorize` and its Approve form.
//!
//! The page validates `app_id`, `redirect_uri` (absolute `http(s)`, on the app's registered
//! redirect hosts) and `response_type=code`, and lists every known person with an *Approve*
//! button (a list lets a test or a sandbox user pick who signs in). The button posts to
//! `POST /open/v3/sso/approve`, which answers `302 Found` to `redirect_uri?code=CODE&state=STATE`.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use url::Url;

use super::envelope::error_page;
use super::{APPROVE_PATH, SelfBuilt};
use crate::http::{self, Params, Reply, param as get};
use crate::pages::{self, Refusal, SignInPage};

/// A validated authorize request.
struct Validated {
    redirect: Url,
    state: Option<String>,
}

fn validate(st: &SelfBuilt, p: &Params) -> Result<Validated, String> {
    let app_id = get(p, "app_id").ok_or("app_id is required")?;
    if app_id != st.app_id {
        return Err(format!("unknown app_id `{app_id}`"));
    }
    if get(p, "response_type") != Some("code") {
        return Err("response_type must be `code`".into());
    }
    let raw = get(p, "redirect_uri").ok_or("redirect_uri is required")?;
    let redirect = Url::parse(raw).map_err(|_| "redirect_uri is not an absolute URL")?;
    if !matches!(redirect.scheme(), "http" | "https") {
        return Err("redirect_uri must be an http or https URL".into());
    }
    if !st.redirect_allowed(&redirect) {
        return Err("redirect_uri is not registered for this app".into());
    }
    Ok(Validated {
        redirect,
        state: p.get("state").cloned(),
    })
}

const SIGN_IN: SignInPage = SignInPage {
    title: "Sign in (fake self-built platform)",
    action: APPROVE_PATH,
    org_class: None,
    deny: false,
};

fn bad_request(message: &str) -> Response {
    error_page(StatusCode::BAD_REQUEST, message)
}

/// `GET /open/v3/sso/authorize?app_id&redirect_uri&response_type=code&state`.
pub(crate) async fn authorize(st: Arc<SelfBuilt>, req: Request) -> Reply {
    let p = http::query_params(req.uri());
    validate(&st, &p).map_err(|msg| bad_request(&msg))?;
    let hidden = pages::hidden_params(&p, &["user_id"]);
    Ok(SIGN_IN.render("Sign in", &hidden, "", &st.users.all()))
}

/// `POST /open/v3/sso/approve` (form: the authorize parameters and `user_id`).
pub(crate) async fn approve(st: Arc<SelfBuilt>, req: Request) -> Reply {
    let refuse = |r: Refusal| bad_request(r.english());
    let p = pages::read_form(req).await.map_err(refuse)?;
    let v = validate(&st, &p).map_err(|msg| bad_request(&msg))?;
    let code = st.issue_code(pages::known_user(&p, &st.users).map_err(refuse)?);
    let state = v.state.as_deref();
    pages::back_to(StatusCode::FOUND, v.redirect, ("code", &code), state)
        .ok_or_else(|| refuse(Refusal::BadRedirect))
}
