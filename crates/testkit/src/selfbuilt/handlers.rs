//! The self-built platform's JSON API.
//!
//! Each handler validates in the real order: the app token (or the app credentials) first, then
//! the parameters, and only then the single-use code, so a request rejected for a bad token never
//! burns the code.

use std::sync::Arc;

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::envelope::{
    APP_CREDENTIALS_INVALID, BAD_REQUEST, CODE_INVALID, TOKEN_INVALID, USER_NOT_FOUND, error,
    error_with, ok,
};
use super::{APP_TOKEN_TTL, SelfBuilt, TOKEN_HEADER, USERS_PATH_PREFIX};
use crate::http::{self, FormRejection, Reply, insert_non_empty as put, param};
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
pub(crate) async fn app_token(st: Arc<SelfBuilt>, req: Request) -> Reply {
    let form = http::read_form(req).await.map_err(|e| {
        error_with(
            BAD_REQUEST,
            match e {
                FormRejection::NotForm => "expected an application/x-www-form-urlencoded body",
                FormRejection::TooLarge => "body too large",
            },
        )
    })?;
    let (Some(app_id), Some(secret)) = (param(&form, "appId"), param(&form, "appSecret")) else {
        return Err(error_with(BAD_REQUEST, "appId and appSecret are required"));
    };
    if app_id != st.app_id || secret != st.app_secret {
        return Err(error(APP_CREDENTIALS_INVALID));
    }
    let token = st.tokens.issue(app_id.to_owned(), APP_TOKEN_TTL);
    Ok(ok(
        json!({"credential": {"value": token, "ttl": APP_TOKEN_TTL.as_secs()}}),
    ))
}

/// The app of the `X-Open-Token` header, or 2002.
fn authorize(st: &SelfBuilt, headers: &HeaderMap) -> Result<String, Response> {
    let token = http::header_str(headers, TOKEN_HEADER)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| error(TOKEN_INVALID))?;
    st.tokens.check(token).map_err(|_| error(TOKEN_INVALID))
}

/// `GET /open/v3/sso/identify?auth_code=` with `X-Open-Token` →
/// `payload.user {id (number), unionId, orgId}`. Anyone who signed in gets an answer; `orgId`
/// says whether they belong to the app's organisation.
pub(crate) async fn identify(st: Arc<SelfBuilt>, req: Request) -> Reply {
    let app = authorize(&st, req.headers())?;
    let query = http::query_params(req.uri());
    let code = param(&query, "auth_code")
        .ok_or_else(|| error_with(BAD_REQUEST, "auth_code is required"))?;
    let user = st
        .codes
        .consume_if(code, |grant| grant.app_id == app)
        .and_then(|grant| st.users.get(&grant.user_id))
        .ok_or_else(|| error(CODE_INVALID))?;
    let mut out = Map::new();
    out.insert("id".into(), id_value(&user.user_id));
    put(&mut out, "unionId", &user.union_id);
    out.insert(
        "orgId".into(),
        Value::String(user.org_or(&st.home_org).to_owned()),
    );
    Ok(ok(json!({ "user": out })))
}

/// `GET /open/v3/users/{id}` with `X-Open-Token` → `payload.profile`, members of the app's
/// organisation only (3004 otherwise).
pub(crate) async fn user(st: Arc<SelfBuilt>, req: Request) -> Reply {
    authorize(&st, req.headers())?;
    let id = req
        .uri()
        .path()
        .strip_prefix(USERS_PATH_PREFIX)
        .unwrap_or_default();
    if id.is_empty() {
        return Err(error_with(BAD_REQUEST, "user id is required"));
    }
    match st.users.get(id) {
        Some(u) if u.org_or(&st.home_org) == st.home_org => {
            Ok(ok(json!({ "profile": profile(&u) })))
        }
        _ => Err(error(USER_NOT_FOUND)),
    }
}

/// The platform's user document. Empty fields are left out, as the platform omits what the app
/// may not see.
pub(crate) fn profile(u: &FakeUser) -> Value {
    let mut p = Map::new();
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
