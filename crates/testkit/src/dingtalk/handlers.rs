//! DingTalk API endpoints (`oapi.dingtalk.com` and `api.dingtalk.com`).
//!
//! Each handler validates what the real endpoint validates, in the real order: credentials or
//! token first, then parameters, and only then the single-use code (so a request rejected for a
//! bad token never burns the code).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use super::envelope::{
    API_INVALID_AUTH_CODE, API_INVALID_AUTHENTICATION, API_INVALID_CLIENT, API_INVALID_PARAMETER,
    API_INVALID_REFRESH_TOKEN, API_MISSING_BODY, OAPI_BAD_PARAMETER, OAPI_INVALID_CREDENTIALS,
    api_error, api_error_with, api_missing, oapi_error, oapi_error_msg, oapi_missing, oapi_result,
};
use super::{
    APP_TOKEN_TTL, AppTokenMeta, DingTalk, REFRESH_TOKEN_TTL, USER_TOKEN_TTL, UserTokenMeta,
};
use crate::http::{self, Params, Reply, insert_non_empty as put, param};
use crate::users::FakeUser;

/// Body parameters of an `oapi` POST: JSON object or form-encoded (the old SDKs send forms).
pub(crate) async fn oapi_body(headers: &HeaderMap, body: Body) -> Result<Params, Response> {
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
pub(crate) async fn api_body(req: Request) -> Result<Params, Response> {
    let (parts, body) = req.into_parts();
    if http::media_type(&parts.headers) != "application/json" {
        return Err(api_error(API_MISSING_BODY));
    }
    let bytes = http::read_body(body)
        .await
        .ok_or_else(|| api_error(API_MISSING_BODY))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(api_error(API_MISSING_BODY));
    }
    let invalid = |why| api_error_with(StatusCode::BAD_REQUEST, API_INVALID_PARAMETER, why);
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|_| invalid("body is not valid JSON"))?;
    http::json_object_params(&value).ok_or_else(|| invalid("body must be a JSON object"))
}

/// `GET /gettoken?appkey=&appsecret=` → `{"errcode":0,"access_token","errmsg":"ok","expires_in"}`.
pub(crate) async fn gettoken(st: Arc<DingTalk>, req: Request) -> Reply {
    let q = http::query_params(req.uri());
    let app_key = param(&q, "appkey").ok_or_else(|| oapi_missing("appkey"))?;
    let app_secret = param(&q, "appsecret").ok_or_else(|| oapi_missing("appsecret"))?;
    // A wrong key or secret: 40096 "不合法的appKey或appSecret", what the live API answers.
    let app = st
        .app_with_secret(app_key, app_secret)
        .ok_or_else(|| oapi_error(OAPI_INVALID_CREDENTIALS))?;
    let token = st.app_token_for(&app.app_key, &app.corp_id);
    // Same shape as fixtures/dingtalk/oapi_gettoken.json (no request_id there).
    Ok(http::json(
        StatusCode::OK,
        &json!({
            "errcode": 0,
            "access_token": token,
            "errmsg": "ok",
            "expires_in": APP_TOKEN_TTL.as_secs(),
        }),
    ))
}

/// `POST /v1.0/oauth2/accessToken` `{appKey, appSecret}` → `{"accessToken","expireIn"}`.
pub(crate) async fn oauth2_access_token(st: Arc<DingTalk>, req: Request) -> Reply {
    let p = api_body(req).await?;
    let app_key = param(&p, "appKey").ok_or_else(|| api_missing("appKey"))?;
    let app_secret = param(&p, "appSecret").ok_or_else(|| api_missing("appSecret"))?;
    let app = st
        .app_with_secret(app_key, app_secret)
        .ok_or_else(|| api_error(API_INVALID_CLIENT))?;
    let token = st.app_token_for(&app.app_key, &app.corp_id);
    Ok(http::json(
        StatusCode::OK,
        &json!({"accessToken": token, "expireIn": APP_TOKEN_TTL.as_secs()}),
    ))
}

/// An `oapi` call: the app token of `?access_token=` (checked first: a bad token never burns a
/// code; missing, unknown or expired → 40014), then the body parameter `name` (→ 40035).
async fn oapi_call(
    st: &DingTalk,
    req: Request,
    name: &str,
) -> Result<(AppTokenMeta, String), Response> {
    let (parts, body) = req.into_parts();
    let query = http::query_params(&parts.uri);
    let token = param(&query, "access_token").ok_or_else(|| oapi_error(40014))?;
    let app = st.app_tokens.check(token).map_err(|_| oapi_error(40014))?;
    let p = oapi_body(&parts.headers, body).await?;
    let value = param(&p, name).ok_or_else(|| oapi_missing(name))?;
    Ok((app, value.to_owned()))
}

/// `POST /topapi/v2/user/getuserinfo?access_token=` `{code}` → `result{userid, unionid, …}`.
pub(crate) async fn getuserinfo(st: Arc<DingTalk>, req: Request) -> Reply {
    let (app, code) = oapi_call(&st, req, "code").await?;
    // A code from another organisation's client is not valid for this app; refusing it without
    // consuming keeps it usable by the right app, as the real platform does.
    let user = st
        .h5_codes
        .consume_if(&code, |grant| grant.corp_id == app.corp_id)
        .and_then(|grant| st.users.get(&grant.user_id))
        .ok_or_else(|| oapi_error(40078))?;
    Ok(oapi_result(json!({
        "userid": user.user_id,
        "device_id": format!("device-{}", user.user_id),
        "sys": user.admin,
        "sys_level": if user.admin { 1 } else { 0 },
        "associated_unionid": "",
        "unionid": user.union_id,
        "name": user.name,
    })))
}

/// `POST /topapi/v2/user/get?access_token=` `{userid, language?}` → `result{…}` (detail).
pub(crate) async fn user_get(st: Arc<DingTalk>, req: Request) -> Reply {
    let (app, user_id) = oapi_call(&st, req, "userid").await?;
    let user = st
        .member(&user_id, &app.corp_id)
        .ok_or_else(|| oapi_error(60121))?;
    Ok(oapi_result(render_user_detail(&user)))
}

/// `POST /topapi/user/getbyunionid?access_token=` `{unionid}` → `result{contact_type, userid}`;
/// 60121 when the person is not a member of the app's organisation.
pub(crate) async fn getbyunionid(st: Arc<DingTalk>, req: Request) -> Reply {
    let (app, union_id) = oapi_call(&st, req, "unionid").await?;
    let user = st
        .users
        .find(|u| u.union_id == union_id && u.org_or(&st.home_corp) == app.corp_id)
        .ok_or_else(|| oapi_error(60121))?;
    Ok(oapi_result(
        json!({"contact_type": 0, "userid": user.user_id}),
    ))
}

/// `POST /v1.0/oauth2/userAccessToken` (grants `authorization_code` and `refresh_token`) →
/// `{"accessToken","refreshToken","expireIn","corpId"?}`.
pub(crate) async fn user_access_token(st: Arc<DingTalk>, req: Request) -> Reply {
    let p = api_body(req).await?;
    for name in ["clientId", "clientSecret", "grantType"] {
        param(&p, name).ok_or_else(|| api_missing(name))?;
    }
    let (client_id, secret, grant) = (&p["clientId"], &p["clientSecret"], &p["grantType"]);
    // A store app's suite is an OAuth client too (clientId = suiteKey).
    let app = st
        .client(client_id)
        .filter(|a| a.app_secret == *secret)
        .ok_or_else(|| api_error(API_INVALID_CLIENT))?;
    let meta = match grant.as_str() {
        "authorization_code" => {
            let code = param(&p, "code").ok_or_else(|| api_missing("code"))?;
            let grant = st
                .web_codes
                .consume_if(code, |g| g.app_key == app.app_key)
                .ok_or_else(|| api_error(API_INVALID_AUTH_CODE))?;
            UserTokenMeta {
                app_key: app.app_key.clone(),
                user_id: grant.user_id,
                corp_id: grant.corp_id,
            }
        }
        "refresh_token" => {
            let refresh = param(&p, "refreshToken").ok_or_else(|| api_missing("refreshToken"))?;
            st.refresh_tokens
                .check(refresh)
                .ok()
                .filter(|m| m.app_key == app.app_key)
                .ok_or_else(|| api_error(API_INVALID_REFRESH_TOKEN))?
        }
        _ => {
            return Err(api_error_with(
                StatusCode::BAD_REQUEST,
                API_INVALID_PARAMETER,
                "grantType must be authorization_code or refresh_token",
            ));
        }
    };
    if st.users.get(&meta.user_id).is_none() {
        return Err(api_error(API_INVALID_AUTH_CODE));
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
    Ok(http::json(StatusCode::OK, &body))
}

/// `GET /v1.0/contact/users/me` with header `x-acs-dingtalk-access-token: USER_TOKEN`.
pub(crate) async fn users_me(st: Arc<DingTalk>, req: Request) -> Reply {
    let user = http::header_str(req.headers(), "x-acs-dingtalk-access-token")
        .filter(|t| !t.is_empty())
        .and_then(|token| st.user_tokens.check(token).ok())
        .and_then(|meta| st.users.get(&meta.user_id))
        .ok_or_else(|| api_error(API_INVALID_AUTHENTICATION))?;
    Ok(http::json(StatusCode::OK, &render_users_me(&user)))
}

/// `result` of `topapi/v2/user/get`, shaped like `fixtures/dingtalk/topapi_v2_user_get.json`.
/// Empty contact fields are omitted (as when the app lacks the permission).
pub(crate) fn render_user_detail(u: &FakeUser) -> Value {
    let mut r = serde_json::Map::new();
    r.insert("userid".into(), json!(u.user_id));
    put(&mut r, "unionid", &u.union_id);
    put(&mut r, "name", &u.name);
    put(&mut r, "avatar", &u.avatar);
    if !u.mobile.is_empty() {
        put(&mut r, "state_code", &u.country_code);
        r.insert("mobile".into(), json!(u.mobile));
        r.insert("hide_mobile".into(), json!(false));
    }
    r.insert("telephone".into(), json!(""));
    put(&mut r, "job_number", &u.job_number);
    put(&mut r, "title", &u.title);
    put(&mut r, "email", &u.email);
    put(&mut r, "org_email", &u.org_email);
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
    put(&mut r, "nick", &u.name);
    put(&mut r, "avatarUrl", &u.avatar);
    put(&mut r, "mobile", &u.mobile);
    put(&mut r, "openId", &u.open_id);
    put(&mut r, "unionId", &u.union_id);
    put(&mut r, "email", &u.email);
    if !u.mobile.is_empty() {
        put(&mut r, "stateCode", &u.country_code);
    }
    r.insert("visitor".into(), json!(false));
    Value::Object(r)
}
