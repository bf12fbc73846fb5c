//! Feishu Open API endpoints (the `open` host).
//!
//! Each handler validates what the real endpoint validates, in the real order: credentials or
//! token first, then parameters, and only then the single-use code or refresh token (so a
//! request rejected for a bad token never burns the code).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::envelope::{
    CODE_APP_TOKEN_INVALID, CODE_BAD_REQUEST, CODE_INVALID_APP, CODE_INVALID_CODE,
    CODE_INVALID_REFRESH_TOKEN, CODE_INVALID_SECRET, CODE_NO_USER_AUTHORITY, CODE_SCOPE_MISSING,
    CODE_TENANT_TOKEN_INVALID, CODE_TOKEN_FORMAT, CODE_TOKEN_MISSING, CODE_USER_TOKEN_EXPIRED,
    CODE_USER_TOKEN_INVALID, error, error_msg, oauth_error, oauth_error_desc, ok_data, ok_fields,
};
use super::{
    FakeApp, Feishu, Pkce, REFRESH_TOKEN_TTL, SCOPE_CONTACT_BASE, SCOPE_DEPARTMENT, SCOPE_EMAIL,
    SCOPE_EMPLOYEE_ID, SCOPE_OFFLINE_ACCESS, SCOPE_PHONE, USER_TOKEN_TTL, UserTokenMeta,
};
use crate::http::{self, Reply, insert_non_empty as put};
use crate::store::TokenRejection;
use crate::table::lock;
use crate::users::FakeUser;

/// The scope every user token has (identity).
const IDENTITY_SCOPE: &str = "auth:user.id:read";

pub(crate) type Obj = Map<String, Value>;

/// How body problems are reported: the Open API `{code,msg}` or v2's OAuth2 shape.
#[derive(Clone, Copy)]
pub(crate) enum Shape {
    Open,
    OAuth2,
}

fn bad_request(shape: Shape, what: &str) -> Response {
    match shape {
        Shape::Open => error_msg(
            CODE_BAD_REQUEST,
            &format!("field validation failed: {what}"),
        ),
        Shape::OAuth2 => oauth_error_desc(CODE_BAD_REQUEST, what),
    }
}

/// A JSON object body sent as `application/json`.
pub(crate) async fn json_body(
    headers: &HeaderMap,
    body: Body,
    shape: Shape,
) -> Result<Obj, Response> {
    if http::media_type(headers) != "application/json" {
        return Err(bad_request(
            shape,
            "Content-Type must be application/json; charset=utf-8",
        ));
    }
    let bytes = http::read_body(body)
        .await
        .ok_or_else(|| bad_request(shape, "body too large or incomplete"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(obj)) => Ok(obj),
        _ => Err(bad_request(shape, "body must be a JSON object")),
    }
}

pub(crate) fn field<'a>(obj: &'a Obj, name: &str) -> Option<&'a str> {
    obj.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

pub(crate) fn require<'a>(obj: &'a Obj, name: &str, shape: Shape) -> Result<&'a str, Response> {
    field(obj, name).ok_or_else(|| bad_request(shape, &format!("missing `{name}`")))
}

fn bearer(headers: &HeaderMap) -> Result<&str, i64> {
    let value = http::header_str(headers, header::AUTHORIZATION.as_str())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(CODE_TOKEN_MISSING)?;
    value
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(CODE_TOKEN_FORMAT)
}

/// The app behind the app / tenant token of `Authorization: Bearer t-…`: a store app's tenant
/// token acts for its tenant (`tenant_key` is the token's).
fn app_from_token(st: &Feishu, headers: &HeaderMap) -> Result<FakeApp, Response> {
    let token = bearer(headers).map_err(error)?;
    if !token.starts_with("t-") {
        return Err(error(CODE_TOKEN_FORMAT));
    }
    let meta = st
        .app_tokens
        .check(token)
        .map_err(|_| error(CODE_TENANT_TOKEN_INVALID))?;
    let mut app = st
        .app(&meta.app_id)
        .ok_or_else(|| error(CODE_TENANT_TOKEN_INVALID))?;
    if let Some(tenant) = meta.tenant_key {
        app.tenant_key = tenant;
    }
    Ok(app)
}

/// Records `token` as handed out by an `app_access_token` endpoint (the v1 user-token
/// endpoints take only those).
pub(crate) fn mark_app_kind(st: &Feishu, token: &str) {
    lock(&st.app_kind).insert(token.to_owned());
}

/// Shared part of the app-token endpoints: the app and the body, or the rejection.
pub(crate) async fn token_request(st: &Feishu, req: Request) -> Result<(FakeApp, Obj), Response> {
    let (parts, body) = req.into_parts();
    let obj = json_body(&parts.headers, body, Shape::Open).await?;
    let app_id = require(&obj, "app_id", Shape::Open)?;
    let secret = require(&obj, "app_secret", Shape::Open)?;
    let app = st.app(app_id).ok_or_else(|| error(CODE_INVALID_APP))?;
    if app.app_secret != secret {
        return Err(error(CODE_INVALID_SECRET));
    }
    Ok((app, obj))
}

/// `POST /open-apis/auth/v3/tenant_access_token/internal` → `{code,msg,tenant_access_token,expire}`.
pub(crate) async fn tenant_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (app, _) = token_request(&st, req).await?;
    let (token, left) = st.app_token_for(&app.app_id);
    Ok(ok_fields(
        json!({"tenant_access_token": token, "expire": left.as_secs()}),
    ))
}

/// `POST /open-apis/auth/v3/app_ticket/resend` `{app_id, app_secret}` → `{code:0,msg:"ok"}`
/// (the credentials checked as at the token endpoints; count the calls with
/// [`FakePlatform::calls`](crate::FakePlatform::calls) of
/// [`APP_TICKET_RESEND`](super::endpoints::APP_TICKET_RESEND)). For a store app with a
/// subscription ([`FakeFeishu::subscribe_store_app`](super::FakeFeishu::subscribe_store_app))
/// a new `app_ticket` is then pushed there.
pub(crate) async fn app_ticket_resend(st: Arc<Feishu>, req: Request) -> Reply {
    let (app, _) = token_request(&st, req).await?;
    super::isv::resend_ticket(&st, &app);
    Ok(ok_fields(json!({})))
}

/// `POST /open-apis/auth/v3/app_access_token/internal` →
/// `{code,msg,app_access_token,expire,tenant_access_token}` (same value for a self-built app).
pub(crate) async fn app_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (app, _) = token_request(&st, req).await?;
    let (token, left) = st.app_token_for(&app.app_id);
    mark_app_kind(&st, &token);
    Ok(ok_fields(json!({
        "app_access_token": token,
        "expire": left.as_secs(),
        "tenant_access_token": token,
    })))
}

fn base64url_nopad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(verifier))` without padding.
pub(crate) fn s256(verifier: &str) -> String {
    base64url_nopad(&Sha256::digest(verifier.as_bytes()))
}

fn pkce_ok(pkce: &Pkce, verifier: Option<&str>) -> bool {
    match (pkce.method.as_str(), verifier) {
        ("S256", Some(v)) => s256(v) == pkce.challenge,
        ("plain", Some(v)) => v == pkce.challenge,
        _ => false,
    }
}

/// The scope string of a user token: identity plus the granted scopes.
fn token_scope(grant_scope: &str) -> String {
    let mut scopes = vec![IDENTITY_SCOPE];
    for s in grant_scope.split_whitespace() {
        if !scopes.contains(&s) {
            scopes.push(s);
        }
    }
    scopes.join(" ")
}

/// Issues an access token (and a refresh token when `with_refresh`).
fn issue_user_tokens(st: &Feishu, meta: &UserTokenMeta, with_refresh: bool) -> Value {
    let access = st.user_tokens.issue(meta.clone(), USER_TOKEN_TTL);
    let mut v = json!({
        "access_token": access,
        "expires_in": USER_TOKEN_TTL.as_secs(),
        "token_type": "Bearer",
        "scope": meta.scope,
    });
    if with_refresh && let Some(obj) = v.as_object_mut() {
        let refresh = st.refresh_tokens.issue(meta.clone(), REFRESH_TOKEN_TTL);
        obj.insert("refresh_token".into(), json!(refresh));
        obj.insert(
            "refresh_expires_in".into(),
            json!(REFRESH_TOKEN_TTL.as_secs()),
        );
    }
    v
}

fn wants_refresh(app: &FakeApp, scope: &str) -> bool {
    app.has(SCOPE_OFFLINE_ACCESS) && scope.split_whitespace().any(|s| s == SCOPE_OFFLINE_ACCESS)
}

/// Uses a refresh token of `app`: single use, so it dies now. `None` if unusable.
fn use_refresh_token(st: &Feishu, app: &FakeApp, token: &str) -> Option<UserTokenMeta> {
    let meta = st
        .refresh_tokens
        .check(token)
        .ok()
        .filter(|m| m.app_id == app.app_id)?;
    st.refresh_tokens.revoke(token);
    st.users.get(&meta.user_id).map(|_| meta)
}

/// `POST /open-apis/authen/v2/oauth/token` with `grant_type` `authorization_code` or
/// `refresh_token`: fields at the top level on success, the OAuth2 error shape otherwise.
pub(crate) async fn oauth_token_v2(st: Arc<Feishu>, req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let obj = json_body(&parts.headers, body, Shape::OAuth2).await?;
    let (grant_type, client_id, secret) = match (
        require(&obj, "grant_type", Shape::OAuth2),
        require(&obj, "client_id", Shape::OAuth2),
        require(&obj, "client_secret", Shape::OAuth2),
    ) {
        (Ok(g), Ok(c), Ok(s)) => (g, c, s),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return Err(r),
    };
    let app = st
        .app(client_id)
        .filter(|a| a.app_secret == secret)
        .ok_or_else(|| oauth_error(CODE_INVALID_SECRET))?;
    match grant_type {
        "authorization_code" => {
            let code = require(&obj, "code", Shape::OAuth2)?;
            let invalid = || oauth_error(CODE_INVALID_CODE);
            let grant = st
                .peek_code(code)
                .filter(|g| g.app_id == app.app_id)
                .ok_or_else(invalid)?;
            if let Some(bound) = &grant.redirect_uri
                && field(&obj, "redirect_uri") != Some(bound.as_str())
            {
                return Err(oauth_error_desc(
                    CODE_INVALID_CODE,
                    "redirect_uri does not match the authorization request",
                ));
            }
            if let Some(pkce) = &grant.pkce
                && !pkce_ok(pkce, field(&obj, "code_verifier"))
            {
                return Err(oauth_error_desc(
                    CODE_INVALID_CODE,
                    "code_verifier does not match",
                ));
            }
            let grant = st
                .consume_code(code, |_| true)
                .filter(|g| st.users.get(&g.user_id).is_some())
                .ok_or_else(invalid)?;
            let meta = UserTokenMeta {
                app_id: app.app_id.clone(),
                user_id: grant.user_id,
                scope: token_scope(&grant.scope),
            };
            let tokens = issue_user_tokens(&st, &meta, wants_refresh(&app, &meta.scope));
            Ok(ok_v2(tokens))
        }
        "refresh_token" => {
            let token = require(&obj, "refresh_token", Shape::OAuth2)?;
            let meta = use_refresh_token(&st, &app, token)
                .ok_or_else(|| oauth_error(CODE_INVALID_REFRESH_TOKEN))?;
            Ok(ok_v2(issue_user_tokens(&st, &meta, true)))
        }
        other => Err(oauth_error_desc(
            CODE_BAD_REQUEST,
            &format!("unsupported grant_type `{other}`"),
        )),
    }
}

/// v2 success: `{code: 0, …}` with `refresh_token_expires_in` (v2's name for the lifetime).
fn ok_v2(mut tokens: Value) -> Response {
    if let Some(obj) = tokens.as_object_mut() {
        obj.insert("code".into(), json!(0));
        if let Some(v) = obj.remove("refresh_expires_in") {
            obj.insert("refresh_token_expires_in".into(), v);
        }
    }
    http::json(StatusCode::OK, &tokens)
}

/// A v1 call authenticated with the app token: the app (checked first), then the JSON body,
/// whose `grant_type` must be `grant`.
async fn v1_request(st: &Feishu, req: Request, grant: &str) -> Result<(FakeApp, Obj), Response> {
    let (parts, body) = req.into_parts();
    // These endpoints take the app access token (`AccessTokenTypeApp` in the official SDK):
    // a self-built app's (`t-…`, asked as an app token) or a store app's (`a-…`).
    let token = bearer(&parts.headers).map_err(error)?;
    let app = if token.starts_with("a-") {
        let meta = st
            .store_app_tokens
            .check(token)
            .map_err(|_| error(CODE_APP_TOKEN_INVALID))?;
        st.app(&meta.app_id)
            .ok_or_else(|| error(CODE_APP_TOKEN_INVALID))?
    } else {
        app_from_token(st, &parts.headers)?
    };
    if !lock(&st.app_kind).contains(token) {
        return Err(error(CODE_APP_TOKEN_INVALID));
    }
    let obj = json_body(&parts.headers, body, Shape::Open).await?;
    if require(&obj, "grant_type", Shape::Open)? != grant {
        let why = format!("grant_type must be {grant}");
        return Err(bad_request(Shape::Open, &why));
    }
    Ok((app, obj))
}

/// The v1 code exchange shared by `oidc/access_token` and the legacy `access_token`: app token
/// first, then the body, then the code.
async fn v1_code_exchange(st: &Feishu, req: Request) -> Result<(FakeApp, UserTokenMeta), Response> {
    let (app, obj) = v1_request(st, req, "authorization_code").await?;
    let code = require(&obj, "code", Shape::Open)?;
    let grant = st
        .consume_code(code, |g| g.app_id == app.app_id)
        .filter(|g| st.users.get(&g.user_id).is_some())
        .ok_or_else(|| error(CODE_INVALID_CODE))?;
    let meta = UserTokenMeta {
        app_id: app.app_id.clone(),
        user_id: grant.user_id,
        scope: token_scope(&grant.scope),
    };
    Ok((app, meta))
}

/// `POST /open-apis/authen/v1/oidc/access_token` (app token in `Authorization`) →
/// `data{access_token, refresh_token, token_type, expires_in, refresh_expires_in, scope}`.
pub(crate) async fn oidc_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (_, meta) = v1_code_exchange(&st, req).await?;
    Ok(ok_data(issue_user_tokens(&st, &meta, true)))
}

/// `POST /open-apis/authen/v1/oidc/refresh_access_token` `{grant_type: refresh_token,
/// refresh_token}` (app token in `Authorization`); the refresh token is single use.
pub(crate) async fn oidc_refresh_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (app, obj) = v1_request(&st, req, "refresh_token").await?;
    let token = require(&obj, "refresh_token", Shape::Open)?;
    let meta =
        use_refresh_token(&st, &app, token).ok_or_else(|| error(CODE_INVALID_REFRESH_TOKEN))?;
    Ok(ok_data(issue_user_tokens(&st, &meta, true)))
}

/// `POST /open-apis/authen/v1/access_token` (legacy): `data` has the token **and** the user,
/// shaped like `fixtures/feishu/authen_v1_access_token.json`.
pub(crate) async fn v1_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (app, meta) = v1_code_exchange(&st, req).await?;
    let user = st
        .users
        .get(&meta.user_id)
        .ok_or_else(|| error(CODE_INVALID_CODE))?;
    let mut data = render_user_info(&st, &app, &user);
    let tokens = issue_user_tokens(&st, &meta, true);
    if let (Some(d), Value::Object(t)) = (data.as_object_mut(), tokens) {
        for key in [
            "access_token",
            "token_type",
            "expires_in",
            "refresh_token",
            "refresh_expires_in",
        ] {
            if let Some(v) = t.get(key) {
                d.insert(key.into(), v.clone());
            }
        }
        d.remove("employee_no");
        d.insert("sid".into(), json!(crate::store::random_id("fake-sid-")));
    }
    Ok(ok_data(data))
}

/// `GET /open-apis/authen/v1/user_info` with `Authorization: Bearer u-…`.
pub(crate) async fn user_info(st: Arc<Feishu>, req: Request) -> Reply {
    let token = bearer(req.headers()).map_err(error)?;
    let meta = st.user_tokens.check(token).map_err(|r| match r {
        TokenRejection::Expired => error(CODE_USER_TOKEN_EXPIRED),
        _ => error(CODE_USER_TOKEN_INVALID),
    })?;
    let (Some(user), Some(app)) = (st.users.get(&meta.user_id), st.app(&meta.app_id)) else {
        return Err(error(CODE_USER_TOKEN_INVALID));
    };
    Ok(ok_data(render_user_info(&st, &app, &user)))
}

/// `GET /open-apis/contact/v3/users/{id}?user_id_type=open_id|union_id|user_id&department_id_type=open_department_id|department_id`
/// with the tenant token → `data.user`.
pub(crate) async fn contact_user(st: Arc<Feishu>, req: Request) -> Reply {
    let app = app_from_token(&st, req.headers())?;
    if !app.has(SCOPE_CONTACT_BASE) {
        return Err(error(CODE_SCOPE_MISSING));
    }
    let q = http::query_params(req.uri());
    let id_type = q.get("user_id_type").map_or("open_id", String::as_str);
    let dept_type = q
        .get("department_id_type")
        .map_or("open_department_id", String::as_str);
    if !matches!(id_type, "open_id" | "union_id" | "user_id")
        || !matches!(dept_type, "open_department_id" | "department_id")
    {
        let why = "user_id_type or department_id_type is invalid";
        return Err(bad_request(Shape::Open, why));
    }
    let id = req.uri().path().rsplit('/').next().unwrap_or_default();
    let user = st
        .users
        .find(|u| {
            st.tenant_of(u) == app.tenant_key
                && match id_type {
                    "union_id" => u.union_id == id,
                    "user_id" => u.user_id == id,
                    _ => u.open_id == id,
                }
        })
        .ok_or_else(|| error(CODE_NO_USER_AUTHORITY))?;
    Ok(ok_data(
        json!({ "user": render_contact(&app, &user, dept_type) }),
    ))
}

/// `https://x/a.png` → `https://x/a_72.png`.
fn sized(url: &str, size: &str) -> String {
    match url.rsplit_once('.') {
        Some((stem, ext)) if !ext.contains('/') => format!("{stem}_{size}.{ext}"),
        _ => format!("{url}?size={size}"),
    }
}

fn mobile_e164(u: &FakeUser) -> String {
    if u.mobile.is_empty() {
        String::new()
    } else {
        format!("+{}{}", u.country_code, u.mobile)
    }
}

/// `data` of `authen/v1/user_info`, shaped like `fixtures/feishu/authen_v1_user_info.json`;
/// `email`, `mobile` and `user_id` only with their permissions.
pub(crate) fn render_user_info(st: &Feishu, app: &FakeApp, u: &FakeUser) -> Value {
    let mut r = Obj::new();
    r.insert("name".into(), json!(u.name));
    r.insert("en_name".into(), json!(""));
    if !u.avatar.is_empty() {
        r.insert("avatar_url".into(), json!(u.avatar));
        r.insert("avatar_thumb".into(), json!(sized(&u.avatar, "72")));
        r.insert("avatar_middle".into(), json!(sized(&u.avatar, "240")));
        r.insert("avatar_big".into(), json!(sized(&u.avatar, "640")));
    }
    r.insert("open_id".into(), json!(u.open_id));
    r.insert("union_id".into(), json!(u.union_id));
    if app.has(SCOPE_EMAIL) {
        put(&mut r, "email", &u.email);
    }
    put(&mut r, "enterprise_email", &u.org_email);
    if app.has(SCOPE_EMPLOYEE_ID) {
        r.insert("user_id".into(), json!(u.user_id));
    }
    if app.has(SCOPE_PHONE) {
        put(&mut r, "mobile", &mobile_e164(u));
    }
    r.insert("tenant_key".into(), json!(st.tenant_of(u)));
    put(&mut r, "employee_no", &u.job_number);
    Value::Object(r)
}

/// `data.user` of `contact/v3/users/:id`, shaped like `fixtures/feishu/contact_v3_users_get.json`.
pub(crate) fn render_contact(app: &FakeApp, u: &FakeUser, dept_type: &str) -> Value {
    let mut r = Obj::new();
    r.insert("union_id".into(), json!(u.union_id));
    if app.has(SCOPE_EMPLOYEE_ID) {
        r.insert("user_id".into(), json!(u.user_id));
    }
    r.insert("open_id".into(), json!(u.open_id));
    r.insert("name".into(), json!(u.name));
    r.insert("en_name".into(), json!(""));
    r.insert("nickname".into(), json!(""));
    if app.has(SCOPE_EMAIL) {
        put(&mut r, "email", &u.email);
    }
    if app.has(SCOPE_PHONE) && !u.mobile.is_empty() {
        r.insert("mobile".into(), json!(mobile_e164(u)));
        r.insert("mobile_visible".into(), json!(true));
    }
    r.insert("gender".into(), json!(0));
    if !u.avatar.is_empty() {
        r.insert(
            "avatar".into(),
            json!({
                "avatar_72": sized(&u.avatar, "72"),
                "avatar_240": sized(&u.avatar, "240"),
                "avatar_640": sized(&u.avatar, "640"),
                "avatar_origin": u.avatar,
            }),
        );
    }
    r.insert(
        "status".into(),
        json!({
            "is_frozen": !u.active,
            "is_resigned": false,
            "is_activated": u.active,
            "is_exited": false,
            "is_unjoin": false,
        }),
    );
    if app.has(SCOPE_DEPARTMENT) {
        let depts: Vec<String> = u
            .dept_ids
            .iter()
            .map(|d| match dept_type {
                "department_id" => d.to_string(),
                _ => format!("od-fakedept{d:04}"),
            })
            .collect();
        r.insert("department_ids".into(), json!(depts));
    }
    r.insert("leader_user_id".into(), json!(""));
    r.insert("city".into(), json!(""));
    r.insert("country".into(), json!("CN"));
    r.insert(
        "join_time".into(),
        json!(u.hired_at_ms.map_or(0, |ms| ms / 1000)),
    );
    r.insert("is_tenant_manager".into(), json!(u.admin));
    put(&mut r, "employee_no", &u.job_number);
    r.insert("employee_type".into(), json!(1));
    put(&mut r, "enterprise_email", &u.org_email);
    put(&mut r, "job_title", &u.title);
    Value::Object(r)
}

/// `POST /open-apis/jssdk/ticket/get`, `Authorization: Bearer t-…` (tenant token; for a
/// self-built app the app token is the same value) →
/// `{"code":0,"msg":"ok","data":{"expire_in","ticket"}}`.
pub(crate) async fn jssdk_ticket(st: Arc<Feishu>, req: Request) -> Reply {
    let app = app_from_token(&st, req.headers())?;
    let (ticket, left) = st
        .tickets
        .fetch(&st.ticket_owner(&app), crate::jsapi::JsapiKind::Config);
    Ok(http::json(
        StatusCode::OK,
        &json!({"code": 0, "msg": "ok", "data": {"expire_in": left.as_secs().max(1), "ticket": ticket}}),
    ))
}

/// `POST /open-apis/mina/v2/tokenLoginValidate`, `Authorization: Bearer APP_ACCESS_TOKEN`,
/// `{"code"}` → `{"code":0,"msg":"success","data":{open_id, employee_id, union_id, session_key,
/// tenant_key, access_token, expires_in (absolute unix time), refresh_token}}`. A bad token →
/// 10202; a used, expired, unknown or other app's code → 10213; a person the app cannot see →
/// 10228.
pub(crate) async fn token_login_validate(st: Arc<Feishu>, req: Request) -> Reply {
    use super::envelope::{
        CODE_MINA_CODE_INVALID, CODE_MINA_NO_VISIBILITY, CODE_MINA_TOKEN_INVALID,
    };
    let (parts, body) = req.into_parts();
    let app = bearer(&parts.headers)
        .ok()
        .and_then(|t| st.app_tokens.check(t).ok())
        .and_then(|m| st.app(&m.app_id))
        .ok_or_else(|| error(CODE_MINA_TOKEN_INVALID))?;
    let obj = json_body(&parts.headers, body, Shape::Open).await?;
    let code = require(&obj, "code", Shape::Open)?;
    let grant = st
        .mina_codes
        .consume_if(code, |g| g.app_id == app.app_id)
        .ok_or_else(|| error(CODE_MINA_CODE_INVALID))?;
    let user = st
        .users
        .get(&grant.user_id)
        .filter(|u| st.tenant_of(u) == app.tenant_key)
        .ok_or_else(|| error(CODE_MINA_NO_VISIBILITY))?;
    let meta = UserTokenMeta {
        app_id: app.app_id.clone(),
        user_id: user.user_id.clone(),
        scope: token_scope(""),
    };
    let access = st.user_tokens.issue(meta.clone(), USER_TOKEN_TTL);
    let refresh = st.refresh_tokens.issue(meta, REFRESH_TOKEN_TTL);
    let expires_at = crate::events::unix_now() + st.clock.offset() + USER_TOKEN_TTL;
    let employee_id = if app.has(SCOPE_EMPLOYEE_ID) {
        user.user_id.clone()
    } else {
        String::new()
    };
    Ok(ok_data(json!({
        "open_id": user.open_id,
        "employee_id": employee_id,
        // Deprecated in this response and not the person's real Union ID (reference §4).
        "union_id": format!("on_mina_deprecated_{}", user.user_id),
        "session_key": crate::store::random_id(""),
        "tenant_key": app.tenant_key,
        "access_token": access,
        "expires_in": expires_at.as_secs(),
        "refresh_token": refresh,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    // Expected values computed with Python's hashlib + base64.urlsafe_b64encode.
    fn s256_matches_a_reference_implementation() {
        assert_eq!(
            s256("dBjftJeZ4CK-P1bQ6jW6nmx5g3QMVJnGgsmiQNu8Z8g"),
            "YZCSp30zVtOSMXhjEQMywM6GtwfK-nzpcaTNnxvo49Q"
        );
        assert_eq!(base64url_nopad(b"f"), "Zg");
        assert_eq!(base64url_nopad(b"fo"), "Zm8");
        assert_eq!(base64url_nopad(b"foo"), "Zm9v");
        assert_eq!(base64url_nopad(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn sized_avatars() {
        assert_eq!(
            sized("https://example.com/avatar/user001.png", "72"),
            "https://example.com/avatar/user001_72.png"
        );
        assert_eq!(sized("https://x/a", "72"), "https://x/a?size=72");
    }
}
