//! `qyapi.weixin.qq.com` endpoints.
//!
//! Each handler validates what the real endpoint validates, in the real order: credentials or
//! token first, then parameters, and only then the single-use code (so a request rejected for a
//! bad token never burns the code).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::envelope::{DATA_FORMAT_ERROR, error, ok};
use super::{AppTokenMeta, CodeGrant, MemberExtras, TicketMeta, USER_TICKET_TTL, WeCom};
use crate::http::{self, Params, Reply, insert_non_empty as put, param};
use crate::store::TokenRejection;
use crate::users::FakeUser;

/// `GET /cgi-bin/gettoken?corpid=&corpsecret=` → `{errcode, errmsg, access_token, expires_in}`.
pub(crate) async fn gettoken(st: Arc<WeCom>, req: Request) -> Reply {
    let q = http::query_params(req.uri());
    let corp_id = param(&q, "corpid").ok_or_else(|| error(41002))?;
    let secret = param(&q, "corpsecret").ok_or_else(|| error(41004))?;
    if !st.corp_known(corp_id) {
        return Err(error(40013));
    }
    let app = st.app_by_secret(corp_id, secret).ok_or_else(|| {
        error(if st.secret_of_other_corp(corp_id, secret) {
            40091
        } else {
            40001
        })
    })?;
    let (token, left) = st.app_token_for(&app);
    Ok(ok(
        json!({"access_token": token, "expires_in": left.as_secs().max(1)}),
    ))
}

/// The app token in `?access_token=`, or WeCom's answer: 41001 missing, 40014 unknown or
/// revoked, 42001 expired.
pub(super) fn app_token(st: &WeCom, query: &Params) -> Result<AppTokenMeta, Response> {
    let token = param(query, "access_token").ok_or_else(|| error(41001))?;
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
fn exchange(st: &WeCom, req: &Request) -> Result<Exchanged, Response> {
    let q = http::query_params(req.uri());
    let app = app_token(st, &q)?;
    let code = param(&q, "code").ok_or_else(|| error(41008))?;
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
pub(crate) async fn auth_getuserinfo(st: Arc<WeCom>, req: Request) -> Reply {
    Ok(match exchange(&st, &req)? {
        Exchanged::Member { user, ticket } => {
            let mut body = json!({"userid": user.user_id});
            if let (Some(t), Some(b)) = (ticket, body.as_object_mut()) {
                b.insert("user_ticket".into(), Value::String(t));
            }
            ok(body)
        }
        Exchanged::Visitor(user) => {
            let (open_id, external) = visitor_ids(&user);
            ok(json!({"openid": open_id, "external_userid": external}))
        }
    })
}

/// Legacy `GET /cgi-bin/user/getuserinfo?access_token=&code=` → capitalised keys
/// `{UserId, DeviceId, user_ticket?, expires_in?}` or `{OpenId, DeviceId}`
/// (`fixtures/wecom/user_getuserinfo_legacy.json`).
pub(crate) async fn user_getuserinfo(st: Arc<WeCom>, req: Request) -> Reply {
    Ok(match exchange(&st, &req)? {
        Exchanged::Member { user, ticket } => {
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
        Exchanged::Visitor(user) => {
            let (open_id, _) = visitor_ids(&user);
            ok(json!({"OpenId": open_id, "DeviceId": format!("device-{}", user.user_id)}))
        }
    })
}

/// `GET /cgi-bin/user/get?access_token=&userid=` → the member document
/// (`fixtures/wecom/user_get.json`); 60111 for anyone not in the token's corp.
pub(crate) async fn user_get(st: Arc<WeCom>, req: Request) -> Reply {
    let q = http::query_params(req.uri());
    let token = app_token(&st, &q)?;
    let user_id = param(&q, "userid").ok_or_else(|| error(41009))?;
    let user = st
        .member(user_id, &token.corp_id)
        .ok_or_else(|| error(60111))?;
    let legacy = st
        .app(&token.corp_id, &token.agent_id)
        .is_some_and(|a| a.legacy);
    Ok(ok(render_member(&st, &user, legacy)))
}

/// A JSON object body as parameters, or 47001 (`DATA_FORMAT_ERROR`).
pub(crate) async fn json_object(body: Body) -> Result<Params, Response> {
    http::read_body(body)
        .await
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .as_ref()
        .and_then(http::json_object_params)
        .ok_or_else(|| error(DATA_FORMAT_ERROR))
}

/// `POST /cgi-bin/auth/getuserdetail?access_token=` JSON `{user_ticket}` → the sensitive fields
/// (`fixtures/wecom/auth_getuserdetail.json`). 84014 expired ticket, 84015 unknown or another
/// app's ticket, 47001 body not a JSON object.
pub(crate) async fn auth_getuserdetail(st: Arc<WeCom>, req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let token = app_token(&st, &http::query_params(&parts.uri))?;
    let p = json_object(body).await?;
    let ticket = param(&p, "user_ticket").ok_or_else(|| error(84015))?;
    let meta = match st.tickets.check(ticket) {
        Ok(m) if m.corp_id == token.corp_id && m.agent_id == token.agent_id => m,
        Err(TokenRejection::Expired) => return Err(error(84014)),
        _ => return Err(error(84015)),
    };
    let user = st
        .member(&meta.user_id, &meta.corp_id)
        .ok_or_else(|| error(60111))?;
    let enabled = st
        .app(&token.corp_id, &token.agent_id)
        .is_some_and(|a| a.sensitive_fields);
    let mut body = Map::new();
    body.insert("userid".into(), json!(user.user_id));
    if enabled {
        let extras = st.extras(&user.user_id);
        put_sensitive(&mut body, &user, &extras);
    }
    Ok(ok(Value::Object(body)))
}

/// The fields apps created after 2022-06-20 only get through `auth/getuserdetail`. Empty
/// values are omitted, as for a field the member never filled in.
fn put_sensitive(obj: &mut Map<String, Value>, user: &FakeUser, extras: &MemberExtras) {
    obj.insert("gender".into(), json!(extras.gender));
    put(obj, "avatar", &user.avatar);
    put(obj, "qr_code", &extras.qr_code);
    put(obj, "mobile", &user.mobile);
    put(obj, "email", &user.email);
    put(obj, "biz_mail", &user.org_email);
    obj.insert("address".into(), json!(extras.address));
}

/// The `user/get` document of a member. `legacy`: the app was created before 2022-06-20 and
/// still receives the sensitive fields (and `thumb_avatar`).
pub(crate) fn render_member(st: &WeCom, u: &FakeUser, legacy: bool) -> Value {
    let extras = st.extras(&u.user_id);
    let mut r = Map::new();
    r.insert("userid".into(), json!(u.user_id));
    put(&mut r, "name", &u.name);
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
    put(&mut r, "open_userid", &u.union_id);
    if let Some(main) = u.dept_ids.first() {
        r.insert("main_department".into(), json!(main));
    }
    // 1 active, 2 disabled.
    r.insert("status".into(), json!(if u.active { 1 } else { 2 }));
    Value::Object(r)
}
