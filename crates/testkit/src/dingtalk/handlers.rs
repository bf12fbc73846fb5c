//! DingTalk API endpoints (`oapi.dingtalk.com` and `api.dingtalk.com`).
//!
//! Each handler validates what the real endpoint validates, in the real order: credentials or
//! token first, then parameters, and only then the single-use code (so a request rejected for a
//! bad token never burns the code).

// Handlers return early with the platform's rejection `Response`; boxing it on this cold path
// would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};

use super::envelope::{
    API_INVALID_AUTH_CODE, API_INVALID_AUTHENTICATION, API_INVALID_CLIENT, API_INVALID_PARAMETER,
    API_INVALID_REFRESH_TOKEN, API_MISSING_BODY, OAPI_BAD_PARAMETER, api_error, api_error_with,
    api_missing, oapi_error, oapi_error_msg, oapi_missing, oapi_result,
};
use super::{
    APP_TOKEN_TTL, AppTokenMeta, DtState, REFRESH_TOKEN_TTL, USER_TOKEN_TTL, UserTokenMeta,
};
use crate::http;
use crate::users::FakeUser;

type Params = HashMap<String, String>;

fn non_empty<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Body parameters of an `oapi` POST: JSON object or form-encoded (the old SDKs send forms).
async fn oapi_body(headers: &HeaderMap, body: Body) -> Result<Params, Response> {
    let bytes = http::read_body(body)
        .await
        .ok_or_else(|| oapi_error_msg(OAPI_BAD_PARAMETER, "请求体过大或不完整"))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Params::new());
    }
    if http::media_type(headers) == "application/x-www-form-urlencoded" {
        return Ok(http::form_params(&bytes));
    }
    serde_json::from_slice::<Value>(&bytes)
        .ok()
        .as_ref()
        .and_then(http::json_object_params)
        .ok_or_else(|| oapi_error_msg(OAPI_BAD_PARAMETER, "请求体不是合法的JSON"))
}

/// Body of an `api.dingtalk.com` POST: must be a JSON object sent as `application/json`.
/// Anything else is HTTP 400 `Missingbody`, as the real gateway answers form posts.
async fn api_body(headers: &HeaderMap, body: Body) -> Result<Params, Response> {
    if http::media_type(headers) != "application/json" {
        return Err(api_error(API_MISSING_BODY));
    }
    let bytes = http::read_body(body)
        .await
        .ok_or_else(|| api_error(API_MISSING_BODY))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(api_error(API_MISSING_BODY));
    }
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
        api_error_with(
            axum::http::StatusCode::BAD_REQUEST,
            API_INVALID_PARAMETER,
            "body is not valid JSON",
        )
    })?;
    http::json_object_params(&value).ok_or_else(|| {
        api_error_with(
            axum::http::StatusCode::BAD_REQUEST,
            API_INVALID_PARAMETER,
            "body must be a JSON object",
        )
    })
}

/// `GET /gettoken?appkey=&appsecret=` → `{"errcode":0,"access_token","errmsg":"ok","expires_in"}`.
pub(crate) async fn gettoken(st: Arc<DtState>, req: Request) -> Response {
    let q = http::query_params(req.uri());
    let Some(app_key) = non_empty(&q, "appkey") else {
        return oapi_missing("appkey");
    };
    let Some(app_secret) = non_empty(&q, "appsecret") else {
        return oapi_missing("appsecret");
    };
    let Some(app) = st.app_with_secret(app_key, app_secret) else {
        return oapi_error(40001);
    };
    let token = st.app_token_for(&app.app_key, &app.corp_id);
    // Same shape as fixtures/dingtalk/oapi_gettoken.json (no request_id there).
    http::json(
        axum::http::StatusCode::OK,
        &json!({
            "errcode": 0,
            "access_token": token,
            "errmsg": "ok",
            "expires_in": APP_TOKEN_TTL.as_secs(),
        }),
    )
}

/// `POST /v1.0/oauth2/accessToken` `{appKey, appSecret}` → `{"accessToken","expireIn"}`.
pub(crate) async fn oauth2_access_token(st: Arc<DtState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let p = match api_body(&parts.headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(app_key) = non_empty(&p, "appKey") else {
        return api_missing("appKey");
    };
    let Some(app_secret) = non_empty(&p, "appSecret") else {
        return api_missing("appSecret");
    };
    let Some(app) = st.app_with_secret(app_key, app_secret) else {
        return api_error(API_INVALID_CLIENT);
    };
    let token = st.app_token_for(&app.app_key, &app.corp_id);
    http::json(
        axum::http::StatusCode::OK,
        &json!({"accessToken": token, "expireIn": APP_TOKEN_TTL.as_secs()}),
    )
}

/// The app token in `?access_token=` of an oapi call, or the 40014 answer.
fn oapi_token(st: &DtState, query: &Params) -> Result<AppTokenMeta, Response> {
    let token = non_empty(query, "access_token").ok_or_else(|| oapi_error(40014))?;
    st.app_tokens.check(token).map_err(|_| oapi_error(40014))
}

/// `POST /topapi/v2/user/getuserinfo?access_token=` `{code}` → `result{userid, unionid, …}`.
pub(crate) async fn getuserinfo(st: Arc<DtState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let app = match oapi_token(&st, &http::query_params(&parts.uri)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match oapi_body(&parts.headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(code) = non_empty(&p, "code") else {
        return oapi_missing("code");
    };
    // A code from another organisation's client is not valid for this app; checking before
    // consuming keeps it usable by the right app, as the real platform does.
    match st.h5_codes.peek(code) {
        Ok(grant) if grant.corp_id == app.corp_id => {}
        _ => return oapi_error(40078),
    }
    let Ok(grant) = st.h5_codes.consume(code) else {
        return oapi_error(40078);
    };
    let Some(user) = st.users.get(&grant.user_id) else {
        return oapi_error(40078);
    };
    oapi_result(json!({
        "userid": user.user_id,
        "device_id": format!("device-{}", user.user_id),
        "sys": user.admin,
        "sys_level": if user.admin { 1 } else { 0 },
        "associated_unionid": "",
        "unionid": user.union_id,
        "name": user.name,
    }))
}

/// `POST /topapi/v2/user/get?access_token=` `{userid, language?}` → `result{…}` (detail).
pub(crate) async fn user_get(st: Arc<DtState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let app = match oapi_token(&st, &http::query_params(&parts.uri)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match oapi_body(&parts.headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(user_id) = non_empty(&p, "userid") else {
        return oapi_missing("userid");
    };
    match st.member(user_id, &app.corp_id) {
        Some(user) => oapi_result(render_user_detail(&user)),
        None => oapi_error(60121),
    }
}

/// `POST /topapi/user/getbyunionid?access_token=` `{unionid}` → `result{contact_type, userid}`;
/// 60121 when the person is not a member of the app's organisation.
pub(crate) async fn getbyunionid(st: Arc<DtState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let app = match oapi_token(&st, &http::query_params(&parts.uri)) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let p = match oapi_body(&parts.headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(union_id) = non_empty(&p, "unionid") else {
        return oapi_missing("unionid");
    };
    let home = st.home_corp.clone();
    let found = st
        .users
        .find(|u| u.union_id == union_id && u.org_or(&home) == app.corp_id);
    match found {
        Some(user) => oapi_result(json!({"contact_type": 0, "userid": user.user_id})),
        None => oapi_error(60121),
    }
}

/// `POST /v1.0/oauth2/userAccessToken` (grants `authorization_code` and `refresh_token`) →
/// `{"accessToken","refreshToken","expireIn","corpId"?}`.
pub(crate) async fn user_access_token(st: Arc<DtState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let p = match api_body(&parts.headers, body).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    for name in ["clientId", "clientSecret", "grantType"] {
        if non_empty(&p, name).is_none() {
            return api_missing(name);
        }
    }
    let (client_id, secret, grant) = (&p["clientId"], &p["clientSecret"], &p["grantType"]);
    let Some(app) = st.app_with_secret(client_id, secret) else {
        return api_error(API_INVALID_CLIENT);
    };
    let meta = match grant.as_str() {
        "authorization_code" => {
            let Some(code) = non_empty(&p, "code") else {
                return api_missing("code");
            };
            match st.web_codes.peek(code) {
                Ok(g) if g.app_key == app.app_key => {}
                _ => return api_error(API_INVALID_AUTH_CODE),
            }
            let Ok(g) = st.web_codes.consume(code) else {
                return api_error(API_INVALID_AUTH_CODE);
            };
            UserTokenMeta {
                app_key: app.app_key.clone(),
                user_id: g.user_id,
                corp_id: g.corp_id,
            }
        }
        "refresh_token" => {
            let Some(refresh) = non_empty(&p, "refreshToken") else {
                return api_missing("refreshToken");
            };
            match st.refresh_tokens.check(refresh) {
                Ok(m) if m.app_key == app.app_key => m,
                _ => return api_error(API_INVALID_REFRESH_TOKEN),
            }
        }
        _ => {
            return api_error_with(
                axum::http::StatusCode::BAD_REQUEST,
                API_INVALID_PARAMETER,
                "grantType must be authorization_code or refresh_token",
            );
        }
    };
    if st.users.get(&meta.user_id).is_none() {
        return api_error(API_INVALID_AUTH_CODE);
    }
    let access = st.user_tokens.issue(meta.clone(), USER_TOKEN_TTL);
    let refresh = st.refresh_tokens.issue(meta.clone(), REFRESH_TOKEN_TTL);
    let mut body = json!({
        "accessToken": access,
        "refreshToken": refresh,
        "expireIn": USER_TOKEN_TTL.as_secs(),
    });
    if let (Some(corp), Some(b)) = (meta.corp_id, body.as_object_mut()) {
        b.insert("corpId".into(), Value::String(corp));
    }
    http::json(axum::http::StatusCode::OK, &body)
}

/// `GET /v1.0/contact/users/me` with header `x-acs-dingtalk-access-token: USER_TOKEN`.
pub(crate) async fn users_me(st: Arc<DtState>, req: Request) -> Response {
    let Some(token) =
        http::header_str(req.headers(), "x-acs-dingtalk-access-token").filter(|t| !t.is_empty())
    else {
        return api_error(API_INVALID_AUTHENTICATION);
    };
    let Ok(meta) = st.user_tokens.check(token) else {
        return api_error(API_INVALID_AUTHENTICATION);
    };
    let Some(user) = st.users.get(&meta.user_id) else {
        return api_error(API_INVALID_AUTHENTICATION);
    };
    http::json(axum::http::StatusCode::OK, &render_users_me(&user))
}

fn put_if(obj: &mut serde_json::Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        obj.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// `result` of `topapi/v2/user/get`, shaped like `fixtures/dingtalk/topapi_v2_user_get.json`.
/// Empty contact fields are omitted (as when the app lacks the permission).
pub(crate) fn render_user_detail(u: &FakeUser) -> Value {
    let mut r = serde_json::Map::new();
    r.insert("userid".into(), json!(u.user_id));
    put_if(&mut r, "unionid", &u.union_id);
    put_if(&mut r, "name", &u.name);
    put_if(&mut r, "avatar", &u.avatar);
    if !u.mobile.is_empty() {
        put_if(&mut r, "state_code", &u.country_code);
        r.insert("mobile".into(), json!(u.mobile));
        r.insert("hide_mobile".into(), json!(false));
    }
    r.insert("telephone".into(), json!(""));
    put_if(&mut r, "job_number", &u.job_number);
    put_if(&mut r, "title", &u.title);
    put_if(&mut r, "email", &u.email);
    put_if(&mut r, "org_email", &u.org_email);
    r.insert("work_place".into(), json!(""));
    r.insert("remark".into(), json!(""));
    r.insert("dept_id_list".into(), json!(u.dept_ids));
    r.insert(
        "dept_order_list".into(),
        Value::Array(
            u.dept_ids
                .iter()
                .map(|d| json!({"dept_id": d, "order": 0}))
                .collect(),
        ),
    );
    r.insert("extension".into(), json!("{}"));
    if let Some(ms) = u.hired_at_ms {
        r.insert("hired_date".into(), json!(ms));
    }
    r.insert("active".into(), json!(u.active));
    r.insert("real_authed".into(), json!(true));
    r.insert("senior".into(), json!(false));
    r.insert("admin".into(), json!(u.admin));
    r.insert("boss".into(), json!(false));
    r.insert(
        "leader_in_dept".into(),
        Value::Array(
            u.dept_ids
                .iter()
                .map(|d| json!({"dept_id": d, "leader": false}))
                .collect(),
        ),
    );
    r.insert(
        "role_list".into(),
        Value::Array(
            u.roles
                .iter()
                .enumerate()
                .map(|(i, name)| json!({"id": i + 1, "name": name, "group_name": "Default"}))
                .collect(),
        ),
    );
    r.insert("exclusive_account".into(), json!(false));
    Value::Object(r)
}

/// Body of `v1.0/contact/users/me`, shaped like `fixtures/dingtalk/v1_contact_users_me.json`.
pub(crate) fn render_users_me(u: &FakeUser) -> Value {
    let mut r = serde_json::Map::new();
    put_if(&mut r, "nick", &u.name);
    put_if(&mut r, "avatarUrl", &u.avatar);
    put_if(&mut r, "mobile", &u.mobile);
    put_if(&mut r, "openId", &u.open_id);
    put_if(&mut r, "unionId", &u.union_id);
    put_if(&mut r, "email", &u.email);
    if !u.mobile.is_empty() {
        put_if(&mut r, "stateCode", &u.country_code);
    }
    r.insert("visitor".into(), json!(false));
    Value::Object(r)
}
