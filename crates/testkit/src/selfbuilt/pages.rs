//! The browser side: `GET /open/v3/sso/authorize` and its Approve form.
//!
//! The page validates `app_id`, `redirect_uri` (absolute `http(s)`, on the app's registered
//! redirect hosts) and `response_type=code`, and lists every known person with an *Approve*
//! button (a list lets a test or a sandbox user pick who signs in). The button posts to
//! `POST /open/v3/sso/approve`, which answers `302 Found` to `redirect_uri?code=CODE&state=STATE`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use url::Url;

use super::envelope::error_page;
use super::{APPROVE_PATH, SbState};
use crate::http::{self, html_escape};

type Params = HashMap<String, String>;

/// A validated authorize request.
struct Validated {
    redirect: Url,
    state: Option<String>,
}

fn get<'a>(p: &'a Params, k: &str) -> Option<&'a str> {
    p.get(k).map(String::as_str).filter(|v| !v.is_empty())
}

fn validate(st: &SbState, p: &Params) -> Result<Validated, String> {
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

fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        html_escape(name),
        html_escape(value)
    )
}

/// `GET /open/v3/sso/authorize?app_id&redirect_uri&response_type=code&state`.
pub(crate) async fn authorize(st: Arc<SbState>, req: Request) -> Response {
    let p = http::query_params(req.uri());
    if let Err(msg) = validate(&st, &p) {
        return error_page(StatusCode::BAD_REQUEST, &msg);
    }
    let mut keys: Vec<_> = p.keys().filter(|k| k.as_str() != "user_id").collect();
    keys.sort();
    let common: String = keys.into_iter().map(|k| hidden(k, &p[k])).collect();
    let rows: String = st
        .users
        .all()
        .iter()
        .map(|u| {
            format!(
                "<li class=\"user\" data-user-id=\"{id}\"><span class=\"name\">{name}</span>\
                 <form method=\"post\" action=\"{APPROVE_PATH}\">{common}{uid}\
                 <button type=\"submit\">Approve</button></form></li>\n",
                id = html_escape(&u.user_id),
                name = html_escape(&u.name),
                uid = hidden("user_id", &u.user_id),
            )
        })
        .collect();
    http::html(
        StatusCode::OK,
        format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Sign in (fake self-built platform)</title></head>\n\
             <body><h1>Sign in</h1>\n<ul>\n{rows}</ul>\n</body></html>\n"
        ),
    )
}

/// `POST /open/v3/sso/approve` (form: the authorize parameters and `user_id`).
pub(crate) async fn approve(st: Arc<SbState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if http::media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return error_page(StatusCode::BAD_REQUEST, "expected a form submission");
    }
    let Some(bytes) = http::read_body(body).await else {
        return error_page(StatusCode::BAD_REQUEST, "body too large");
    };
    let p = http::form_params(&bytes);
    let v = match validate(&st, &p) {
        Ok(v) => v,
        Err(msg) => return error_page(StatusCode::BAD_REQUEST, &msg),
    };
    let user_id = get(&p, "user_id").unwrap_or_default();
    if st.users.get(user_id).is_none() {
        return error_page(StatusCode::BAD_REQUEST, "unknown user");
    }
    let code = st.issue_code(user_id);
    let mut target = v.redirect;
    target.query_pairs_mut().append_pair("code", &code);
    if let Some(state) = &v.state {
        target.query_pairs_mut().append_pair("state", state);
    }
    http::redirect(StatusCode::FOUND, &target)
        .unwrap_or_else(|| error_page(StatusCode::BAD_REQUEST, "redirect_uri cannot be used"))
}
