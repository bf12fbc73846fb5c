//! The self-built platform's JSON API.
//!
//! Each handler validates in the real order: the app token (or the app credentials) first, then
//! the parameters, and only then the single-use code, so a request rejected for a bad token never
//! burns the code.

// Handlers return early with the platform's rejection `Response`; boxing it on this cold path
// would only add noise.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::envelope::{
    APP_CREDENTIALS_INVALID, BAD_REQUEST, CODE_INVALID, TOKEN_INVALID, USER_NOT_FOUND, error,
    error_with, ok,
};
use super::{APP_TOKEN_TTL, SbState, TOKEN_HEADER, USERS_PATH_PREFIX};
use crate::http;
use crate::users::FakeUser;

/// A user id as the platform writes it: a JSON number (ids are 64-bit numbers there). Ids of
/// test users that are not decimal numbers stay strings.
pub(crate) fn id_value(user_id: &str) -> Value {
    user_id
        .parse::<u64>()
        .map_or_else(|_| Value::String(user_id.to_owned()), Value::from)
}

/// `POST /open/v3/auth/token`, form `appId`, `appSecret` →
/// `payload.credential {value, ttl}` (a new token every time; earlier ones stay valid).
pub(crate) async fn app_token(st: Arc<SbState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if http::media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return error_with(
            BAD_REQUEST,
            "expected an application/x-www-form-urlencoded body",
        );
    }
    let Some(bytes) = http::read_body(body).await else {
        return error_with(BAD_REQUEST, "body too large");
    };
    let form = http::form_params(&bytes);
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(app_id), Some(secret)) = (field("appId"), field("appSecret")) else {
        return error_with(BAD_REQUEST, "appId and appSecret are required");
    };
    if app_id != st.app_id || secret != st.app_secret {
        return error(APP_CREDENTIALS_INVALID);
    }
    let token = st.tokens.issue(app_id.to_owned(), APP_TOKEN_TTL);
    ok(json!({"credential": {"value": token, "ttl": APP_TOKEN_TTL.as_secs()}}))
}

/// The app of the `X-Open-Token` header, or 2002.
fn authorize(st: &SbState, headers: &HeaderMap) -> Result<String, Response> {
    let token = http::header_str(headers, TOKEN_HEADER)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| error(TOKEN_INVALID))?;
    st.tokens.check(token).map_err(|_| error(TOKEN_INVALID))
}

/// `GET /open/v3/sso/identify?auth_code=` with `X-Open-Token` →
/// `payload.user {id (number), unionId, orgId}`. Anyone who signed in gets an answer; `orgId`
/// says whether they belong to the app's organisation.
pub(crate) async fn identify(st: Arc<SbState>, req: Request) -> Response {
    let app = match authorize(&st, req.headers()) {
        Ok(app) => app,
        Err(r) => return r,
    };
    let query = http::query_params(req.uri());
    let Some(code) = query.get("auth_code").filter(|c| !c.is_empty()) else {
        return error_with(BAD_REQUEST, "auth_code is required");
    };
    match st.codes.peek(code) {
        Ok(grant) if grant.app_id == app => {}
        _ => return error(CODE_INVALID),
    }
    let Ok(grant) = st.codes.consume(code) else {
        return error(CODE_INVALID);
    };
    let Some(user) = st.users.get(&grant.user_id) else {
        return error(CODE_INVALID);
    };
    let mut out = Map::new();
    out.insert("id".into(), id_value(&user.user_id));
    if !user.union_id.is_empty() {
        out.insert("unionId".into(), Value::String(user.union_id.clone()));
    }
    out.insert(
        "orgId".into(),
        Value::String(user.org_or(&st.home_org).to_owned()),
    );
    ok(json!({ "user": out }))
}

/// `GET /open/v3/users/{id}` with `X-Open-Token` → `payload.profile`, members of the app's
/// organisation only (3004 otherwise).
pub(crate) async fn user(st: Arc<SbState>, req: Request) -> Response {
    if let Err(r) = authorize(&st, req.headers()) {
        return r;
    }
    let id = req
        .uri()
        .path()
        .strip_prefix(USERS_PATH_PREFIX)
        .unwrap_or_default();
    if id.is_empty() {
        return error_with(BAD_REQUEST, "user id is required");
    }
    match st.users.get(id) {
        Some(u) if u.org_or(&st.home_org) == st.home_org => ok(json!({ "profile": profile(&u) })),
        _ => error(USER_NOT_FOUND),
    }
}

/// The platform's user document. Empty fields are left out, as the platform omits what the app
/// may not see.
pub(crate) fn profile(u: &FakeUser) -> Value {
    let mut p = Map::new();
    let put = |map: &mut Map<String, Value>, key: &str, value: &str| {
        if !value.is_empty() {
            map.insert(key.into(), Value::String(value.to_owned()));
        }
    };
    p.insert("id".into(), id_value(&u.user_id));
    put(&mut p, "unionId", &u.union_id);
    put(&mut p, "displayName", &u.name);
    put(&mut p, "avatarUrl", &u.avatar);
    put(&mut p, "employeeNo", &u.job_number);
    put(&mut p, "position", &u.title);
    let mut contact = Map::new();
    if !u.mobile.is_empty() {
        put(
            &mut contact,
            "mobile",
            &format!("+{}{}", u.country_code, u.mobile),
        );
    }
    put(&mut contact, "mail", &u.email);
    put(&mut contact, "workMail", &u.org_email);
    p.insert("contact".into(), Value::Object(contact));
    p.insert(
        "org".into(),
        json!({"deptIds": u.dept_ids, "admin": u.admin, "roles": u.roles}),
    );
    p.insert(
        "status".into(),
        Value::String(if u.active { "ACTIVE" } else { "DISABLED" }.into()),
    );
    if let Some(ms) = u.hired_at_ms {
        p.insert("hiredAt".into(), Value::from(ms));
    }
    Value::Object(p)
}
