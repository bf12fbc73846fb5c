//! `qyapi.weixin.qq.com` endpoints.
//!
//! Each handler validates what the real endpoint validates, in the real order: credentials or
//! token first, then parameters, and only then the single-use code (so a request rejected for a
//! bad token never burns the code).

// Handlers return early with the platform's rejection `Response`; boxing it on this cold path
// would only add noise.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::envelope::{DATA_FORMAT_ERROR, error, ok};
use super::{AppTokenMeta, CodeGrant, TicketMeta, USER_TICKET_TTL, WcState};
use crate::http;
use crate::store::TokenRejection;
use crate::users::FakeUser;

type Params = HashMap<String, String>;

fn non_empty<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// `GET /cgi-bin/gettoken?corpid=&corpsecret=` → `{errcode, errmsg, access_token, expires_in}`.
pub(crate) async fn gettoken(st: Arc<WcState>, req: Request) -> Response {
    let q = http::query_params(req.uri());
    let Some(corp_id) = non_empty(&q, "corpid") else {
        return error(41002);
    };
    let Some(secret) = non_empty(&q, "corpsecret") else {
        return error(41004);
    };
    if !st.corp_known(corp_id) {
        return error(40013);
    }
    let Some(app) = st.app_by_secret(corp_id, secret) else {
        return error(if st.secret_of_other_corp(corp_id, secret) {
            40091
        } else {
            40001
        });
    };
    let (token, left) = st.app_token_for(&app);
    ok(json!({"access_token": token, "expires_in": left.as_secs().max(1)}))
}

/// The app token in `?access_token=`, or WeCom's answer: 41001 missing, 40014 unknown or
/// revoked, 42001 expired.
fn app_token(st: &WcState, query: &Params) -> Result<AppTokenMeta, Response> {
    let token = non_empty(query, "access_token").ok_or_else(|| error(41001))?;
    st.app_tokens.check(token).map_err(|r| match r {
        TokenRejection::Expired => error(42001),
        TokenRejection::Unknown | TokenRejection::Revoked => error(40014),
    })
}

/// What a code exchange found.
enum Exchanged {
    Member {
        user: FakeUser,
        ticket: Option<String>,
    },
    Visitor(FakeUser),
}

/// The shared part of both code exchanges: token, code (checked before it is consumed), trusted
/// redirect domain, then who the person is.
fn exchange(st: &WcState, req: &Request) -> Result<Exchanged, Response> {
    let q = http::query_params(req.uri());
    let app = app_token(st, &q)?;
    let code = non_empty(&q, "code").ok_or_else(|| error(41008))?;
    let bound_to_app = |g: &CodeGrant| {
        g.corp_id == app.corp_id && g.agent_id.as_ref().is_none_or(|a| *a == app.agent_id)
    };
    match st.codes.peek(code) {
        Ok(g) if bound_to_app(&g) => {
            if !g.trusted {
                return Err(error(50001));
            }
        }
        // Unknown, used, expired, or issued for another corp or app.
        _ => return Err(error(40029)),
    }
    let grant = st.codes.consume(code).map_err(|_| error(40029))?;
    let user = st.users.get(&grant.user_id).ok_or_else(|| error(40029))?;
    if user.org_or(&st.home_corp) != app.corp_id {
        return Ok(Exchanged::Visitor(user));
    }
    let ticket = grant.private.then(|| {
        st.tickets.issue(
            TicketMeta {
                corp_id: app.corp_id.clone(),
                agent_id: app.agent_id.clone(),
                user_id: user.user_id.clone(),
            },
            USER_TICKET_TTL,
        )
    });
    Ok(Exchanged::Member { user, ticket })
}

fn visitor_ids(user: &FakeUser) -> (String, String) {
    let open_id = if user.open_id.is_empty() {
        format!("openid-{}", user.user_id)
    } else {
        user.open_id.clone()
    };
    (open_id, format!("wmfake{}", user.user_id))
}

/// `GET /cgi-bin/auth/getuserinfo?access_token=&code=` → `{userid, user_ticket?}` for members,
/// `{openid, external_userid}` for anyone else (`fixtures/wecom/auth_getuserinfo_*.json`).
pub(crate) async fn auth_getuserinfo(st: Arc<WcState>, req: Request) -> Response {
    match exchange(&st, &req) {
        Err(r) => r,
        Ok(Exchanged::Member { user, ticket }) => {
            let mut body = json!({"userid": user.user_id});
            if let (Some(t), Some(b)) = (ticket, body.as_object_mut()) {
                b.insert("user_ticket".into(), Value::String(t));
            }
            ok(body)
        }
        Ok(Exchanged::Visitor(user)) => {
            let (open_id, external) = visitor_ids(&user);
            ok(json!({"openid": open_id, "external_userid": external}))
        }
    }
}

/// Legacy `GET /cgi-bin/user/getuserinfo?access_token=&code=` → capitalised keys
/// `{UserId, DeviceId, user_ticket?, expires_in?}` or `{OpenId, DeviceId}`
/// (`fixtures/wecom/user_getuserinfo_legacy.json`).
pub(crate) async fn user_getuserinfo(st: Arc<WcState>, req: Request) -> Response {
    match exchange(&st, &req) {
        Err(r) => r,
        Ok(Exchanged::Member { user, ticket }) => {
            let mut body = json!({
                "UserId": user.user_id,
                "DeviceId": format!("device-{}", user.user_id),
            });
            if let (Some(t), Some(b)) = (ticket, body.as_object_mut()) {
                b.insert("user_ticket".into(), Value::String(t));
                b.insert("expires_in".into(), json!(USER_TICKET_TTL.as_secs()));
            }
            ok(body)
        }
        Ok(Exchanged::Visitor(user)) => {
            let (open_id, _) = visitor_ids(&user);
            ok(json!({"OpenId": open_id, "DeviceId": format!("device-{}", user.user_id)}))
        }
    }
}

/// `GET /cgi-bin/user/get?access_token=&userid=` → the member document
/// (`fixtures/wecom/user_get.json`); 60111 for anyone not in the token's corp.
pub(crate) async fn user_get(st: Arc<WcState>, req: Request) -> Response {
    let q = http::query_params(req.uri());
    let token = match app_token(&st, &q) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(user_id) = non_empty(&q, "userid") else {
        return error(41009);
    };
    let Some(user) = st.member(user_id, &token.corp_id) else {
        return error(60111);
    };
    let legacy = st
        .app(&token.corp_id, &token.agent_id)
        .is_some_and(|a| a.legacy);
    ok(render_member(&st, &user, legacy))
}

/// `POST /cgi-bin/auth/getuserdetail?access_token=` JSON `{user_ticket}` → the sensitive fields
/// (`fixtures/wecom/auth_getuserdetail.json`). 84014 expired ticket, 84015 unknown or another
/// app's ticket, 47001 body not a JSON object.
pub(crate) async fn auth_getuserdetail(st: Arc<WcState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let token = match app_token(&st, &http::query_params(&parts.uri)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(bytes) = http::read_body(body).await else {
        return error(DATA_FORMAT_ERROR);
    };
    let Some(p) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .as_ref()
        .and_then(http::json_object_params)
    else {
        return error(DATA_FORMAT_ERROR);
    };
    let Some(ticket) = non_empty(&p, "user_ticket") else {
        return error(84015);
    };
    let meta = match st.tickets.check(ticket) {
        Ok(m) if m.corp_id == token.corp_id && m.agent_id == token.agent_id => m,
        Err(TokenRejection::Expired) => return error(84014),
        _ => return error(84015),
    };
    let Some(user) = st.member(&meta.user_id, &meta.corp_id) else {
        return error(60111);
    };
    let enabled = st
        .app(&token.corp_id, &token.agent_id)
        .is_some_and(|a| a.sensitive_fields);
    let mut body = Map::new();
    body.insert("userid".into(), json!(user.user_id));
    if enabled {
        let extras = st.extras(&user.user_id);
        put_sensitive(&mut body, &user, &extras);
    }
    ok(Value::Object(body))
}

fn put_if(obj: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        obj.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// The fields apps created after 2022-06-20 only get through `auth/getuserdetail`. Empty
/// values are omitted, as for a field the member never filled in.
fn put_sensitive(obj: &mut Map<String, Value>, user: &FakeUser, extras: &super::MemberExtras) {
    obj.insert("gender".into(), json!(extras.gender));
    put_if(obj, "avatar", &user.avatar);
    put_if(obj, "qr_code", &extras.qr_code);
    put_if(obj, "mobile", &user.mobile);
    put_if(obj, "email", &user.email);
    put_if(obj, "biz_mail", &user.org_email);
    obj.insert("address".into(), json!(extras.address));
}

/// The `user/get` document of a member. `legacy`: the app was created before 2022-06-20 and
/// still receives the sensitive fields (and `thumb_avatar`).
pub(crate) fn render_member(st: &WcState, u: &FakeUser, legacy: bool) -> Value {
    let extras = st.extras(&u.user_id);
    let mut r = Map::new();
    r.insert("userid".into(), json!(u.user_id));
    put_if(&mut r, "name", &u.name);
    r.insert("department".into(), json!(u.dept_ids));
    r.insert("order".into(), json!(vec![0; u.dept_ids.len()]));
    r.insert("position".into(), json!(u.title));
    if legacy {
        put_sensitive(&mut r, u, &extras);
        if !u.avatar.is_empty() {
            let thumb = match u.avatar.strip_suffix("/0") {
                Some(base) => format!("{base}/100"),
                None => u.avatar.clone(),
            };
            r.insert("thumb_avatar".into(), json!(thumb));
        }
    }
    r.insert("is_leader_in_dept".into(), json!(vec![0; u.dept_ids.len()]));
    r.insert("direct_leader".into(), json!(extras.direct_leader));
    r.insert("telephone".into(), json!(extras.telephone));
    r.insert("alias".into(), json!(extras.alias));
    put_if(&mut r, "open_userid", &u.union_id);
    if let Some(main) = u.dept_ids.first() {
        r.insert("main_department".into(), json!(main));
    }
    // 1 active, 2 disabled.
    r.insert("status".into(), json!(if u.active { 1 } else { 2 }));
    Value::Object(r)
}
