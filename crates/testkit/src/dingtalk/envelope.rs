//! DingTalk's two envelope generations and its fault rendering.
//!
//! * `oapi.dingtalk.com`: HTTP 200 with `{errcode, errmsg, request_id}`; errcode 88 carries the
//!   real reason in `sub_code` / `sub_msg` (`fixtures/dingtalk/error_*.json`).
//! * `api.dingtalk.com`: HTTP 4xx/5xx with `{code (string), message, requestid}`
//!   (`fixtures/dingtalk/v1_error_*.json`); success is a bare object.
//! * `login.dingtalk.com`: HTML pages.
//!
//! Codes and messages come from `reference/platforms.md` §2.5. Items the reference marks as not
//! confirmed, and which the fake had to pick, are listed in [`crate::dingtalk`]'s docs.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::server::{EndpointSpec, PlatformResponder, numeric_code};
use crate::store::random_id;
use crate::{http, pages};

/// Endpoint family tag of `oapi.dingtalk.com` endpoints.
pub(crate) const OAPI: &str = "oapi";
/// Endpoint family tag of `api.dingtalk.com` endpoints.
pub(crate) const API: &str = "api";
/// Endpoint family tag of `login.dingtalk.com` pages.
pub(crate) const LOGIN: &str = "login";

/// `api` code: invalid / expired access token (HTTP 400).
pub const API_INVALID_AUTHENTICATION: &str = "InvalidAuthentication";
/// `api` code: the app lacks a scope (HTTP 403, with `accessdenieddetail.requiredScopes`).
pub const API_PERMISSION_DENIED: &str = "Forbidden.AccessDenied.AccessTokenPermissionDenied";
/// `api` code: caller IP not whitelisted (HTTP 403). Illustrative.
pub const API_IP_DENIED: &str = "Forbidden.AccessDenied.IpNotInWhiteList";
/// `api` code: wrong path or method (HTTP 404).
pub const API_NOT_FOUND: &str = "InvalidAction.NotFound";
/// `api` code: rate limited (HTTP **403**: the v1.0 API answers throttling with 403, not 429).
/// Its siblings `Forbidden.AccessDenied.QpsLimitForApi` and
/// `Forbidden.AccessDenied.QpmLimitForAppkeyAndApi` get the same status and message.
pub const API_THROTTLED: &str = "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi";
/// `api` code: transient failure (HTTP 503). Illustrative.
pub const API_UNAVAILABLE: &str = "ServiceUnavailable";
/// `api` code: body missing or not JSON (HTTP 400, "body is mandatory for this action.").
pub const API_MISSING_BODY: &str = "Missingbody";
/// `api` code: bad / used / expired authorization code (HTTP 400). Illustrative.
pub const API_INVALID_AUTH_CODE: &str = "InvalidAuthCode";
/// `api` code: unknown client id or wrong client secret (HTTP 400). Illustrative.
pub const API_INVALID_CLIENT: &str = "invalidClientIdOrSecret";
/// `api` code: bad / expired refresh token (HTTP 400). Illustrative.
pub const API_INVALID_REFRESH_TOKEN: &str = "InvalidRefreshToken";
/// `api` code: a parameter has a wrong value or the body is not a JSON object (HTTP 400).
pub const API_INVALID_PARAMETER: &str = "InvalidParameter";

/// oapi errcode of the rate-limit fault.
pub const OAPI_RATE_LIMITED: i64 = 90002;
/// oapi errcode of a wrong AppKey or AppSecret at `gettoken` ("不合法的appKey或appSecret").
pub const OAPI_INVALID_CREDENTIALS: i64 = 40096;
/// oapi errcode for a missing / malformed parameter. Illustrative.
pub const OAPI_BAD_PARAMETER: i64 = 40035;

/// The reference message of an oapi errcode (fixtures' texts where there is one).
pub(crate) fn oapi_message(code: i64) -> String {
    match code {
        -1 => "系统繁忙",
        0 => "ok",
        88 => "鉴权异常",
        404 => "请求的URI地址不存在",
        40001 => "不合法的appkey或appsecret",
        40014 => "不合法的access_token",
        40035 => "不合法的参数",
        40078 => "不存在的临时授权码",
        40096 => "不合法的appKey或appSecret",
        42001 => "access_token超时",
        43001 => "需要GET请求",
        43002 => "需要POST请求",
        60011 => "没有调用该接口的权限",
        60020 => "访问ip不在白名单之中",
        60121 => "找不到该用户",
        90002 => "服务器调用频率超过限制",
        90018 => "组织调用频率超过限制",
        90019 => "应用调用频率超过限制",
        90020 => "当月接口调用量已超过上限",
        other => return format!("fake dingtalk errcode {other}"),
    }
    .to_owned()
}

fn oapi_request_id() -> String {
    random_id("fakereq")[..19].to_owned()
}

fn api_request_id() -> String {
    random_id("FAKE-REQ-").to_ascii_uppercase()
}

/// `oapi` success wrapping `result`: `{"errcode":0,"errmsg":"ok","result":…,"request_id"}`.
pub(crate) fn oapi_result(result: Value) -> Response {
    http::json(
        StatusCode::OK,
        &json!({"errcode": 0, "errmsg": "ok", "result": result, "request_id": oapi_request_id()}),
    )
}

/// `oapi` error: HTTP 200 `{errcode, errmsg, request_id}` with the reference message.
pub(crate) fn oapi_error(code: i64) -> Response {
    oapi_error_msg(code, &oapi_message(code))
}

/// `oapi` error with a specific message.
pub(crate) fn oapi_error_msg(code: i64, errmsg: &str) -> Response {
    tracing::debug!(errcode = code, "fake dingtalk oapi error");
    http::json(
        StatusCode::OK,
        &json!({"errcode": code, "errmsg": errmsg, "request_id": oapi_request_id()}),
    )
}

/// `oapi` missing parameter.
pub(crate) fn oapi_missing(param: &str) -> Response {
    oapi_error_msg(OAPI_BAD_PARAMETER, &format!("缺少参数 {param}"))
}

/// `oapi` errcode 88 with a sub-code, shaped like `fixtures/dingtalk/error_88_subcode.json`.
pub(crate) fn oapi_sub_error(code: i64, sub_code: &str) -> Response {
    let sub_msg = sub_code
        .parse::<i64>()
        .map(oapi_message)
        .unwrap_or_else(|_| format!("fake sub_code {sub_code}"));
    tracing::debug!(errcode = code, sub_code, "fake dingtalk oapi error");
    http::json(
        StatusCode::OK,
        &json!({
            "errcode": code,
            "sub_code": sub_code,
            "sub_msg": sub_msg,
            "errmsg": format!("ding talk error[subcode={sub_code},submsg={sub_msg}]"),
            "request_id": oapi_request_id(),
        }),
    )
}

/// HTTP status and message of an `api` error code.
pub(crate) fn api_status_message(code: &str) -> (StatusCode, String) {
    let (status, msg) = match code {
        API_INVALID_AUTHENTICATION => (StatusCode::BAD_REQUEST, "不合法的access_token"),
        API_PERMISSION_DENIED => (StatusCode::FORBIDDEN, "没有调用该接口的权限"),
        API_IP_DENIED => (StatusCode::FORBIDDEN, "访问ip不在白名单之中"),
        API_NOT_FOUND => (StatusCode::NOT_FOUND, "指定的接口不存在"),
        API_THROTTLED
        | "Forbidden.AccessDenied.QpsLimitForApi"
        | "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi" => {
            (StatusCode::FORBIDDEN, "请求被流控,请稍后重试")
        }
        API_UNAVAILABLE => (StatusCode::SERVICE_UNAVAILABLE, "服务暂不可用,请稍后重试"),
        API_MISSING_BODY => (
            StatusCode::BAD_REQUEST,
            "body is mandatory for this action.",
        ),
        API_INVALID_AUTH_CODE => (StatusCode::BAD_REQUEST, "不合法的临时授权码"),
        API_INVALID_CLIENT => (StatusCode::BAD_REQUEST, "无效的clientId或者clientSecret"),
        API_INVALID_REFRESH_TOKEN => (StatusCode::BAD_REQUEST, "不合法的refresh_token"),
        other if other.starts_with("Forbidden") => (StatusCode::FORBIDDEN, "没有权限"),
        other if other.starts_with("Missing") => {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "{} is mandatory for this action.",
                    &other["Missing".len()..]
                ),
            );
        }
        _ => (StatusCode::BAD_REQUEST, "fake dingtalk api error"),
    };
    (status, msg.to_owned())
}

/// `api` error: the code's HTTP status and `{code, message, requestid}` (plus
/// `accessdenieddetail` for the permission error, like the fixture).
pub(crate) fn api_error(code: &str) -> Response {
    let (status, message) = api_status_message(code);
    api_error_with(status, code, &message)
}

/// `api` error with an explicit status and message.
pub(crate) fn api_error_with(status: StatusCode, code: &str, message: &str) -> Response {
    tracing::debug!(code, status = status.as_u16(), "fake dingtalk api error");
    let mut body = json!({"code": code, "requestid": api_request_id(), "message": message});
    if code == API_PERMISSION_DENIED
        && let Some(b) = body.as_object_mut()
    {
        b.insert(
            "accessdenieddetail".into(),
            json!({"requiredScopes": ["Contact.User.Read"]}),
        );
    }
    http::json(status, &body)
}

/// `api` missing parameter: HTTP 400 `Missing<name>`.
pub(crate) fn api_missing(param: &str) -> Response {
    api_error(&format!("Missing{param}"))
}

/// The HTML page DingTalk serves during the 5-minute per-IP ban (HTTP 200, not JSON).
pub(crate) fn ban_page() -> Response {
    http::html(
        StatusCode::OK,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>访问受限</title></head>\n\
         <body><h1>访问过于频繁</h1><p>您的IP访问频率超过限制,已被限制访问5分钟,请稍后再试。</p>\n\
         <p>punish: deny, wait: 5</p></body></html>\n"
            .to_owned(),
    )
}

/// An error page of `login.dingtalk.com`.
pub(crate) fn login_error_page(status: StatusCode, message: &str) -> Response {
    pages::error_page(status, ("钉钉登录 - 错误", "授权失败"), message, "")
}

/// Renders platform faults, wrong methods and unknown paths the DingTalk way.
#[derive(Debug, Default)]
pub struct DingTalkResponder;

impl PlatformResponder for DingTalkResponder {
    fn supports(&self, endpoint: &EndpointSpec, fault: &Fault) -> Result<(), String> {
        match (endpoint.family, fault) {
            (LOGIN, Fault::RateLimitPage) => Ok(()),
            (LOGIN, _) => Err(
                "login.dingtalk.com pages only support transport faults and \
                               RateLimitPage"
                    .into(),
            ),
            (OAPI, Fault::Code(c)) => {
                numeric_code(c, "errcode 0 is success, not a fault", "oapi errcodes")
            }
            (OAPI, Fault::CodeWithSub { code, sub_code }) => {
                match (code.parse::<i64>(), sub_code.is_empty()) {
                    (Ok(c), false) if c != 0 => Ok(()),
                    _ => Err("needs a non-zero numeric code and a non-empty sub_code".into()),
                }
            }
            (API, Fault::Code(c)) => {
                if c.is_empty() || c.parse::<i64>().is_ok() {
                    Err(format!(
                        "api.dingtalk.com codes are strings like `InvalidAuthentication`, got `{c}`"
                    ))
                } else {
                    Ok(())
                }
            }
            (API, Fault::CodeWithSub { .. }) => {
                Err("api.dingtalk.com has no sub_code envelope".into())
            }
            (OAPI | API, _) => Ok(()),
            (other, _) => Err(format!("unknown endpoint family `{other}`")),
        }
    }

    fn render_fault(&self, endpoint: &EndpointSpec, fault: &Fault) -> Response {
        if endpoint.family == LOGIN || matches!(fault, Fault::RateLimitPage) {
            return ban_page();
        }
        let oapi = endpoint.family == OAPI;
        if endpoint.name == super::endpoints::JSAPI_TICKETS && matches!(fault, Fault::SystemBusy) {
            return api_error_with(StatusCode::INTERNAL_SERVER_ERROR, "systemBusy", "系统繁忙");
        }
        match fault {
            Fault::Code(c) if oapi => oapi_error(c.parse().unwrap_or(-1)),
            Fault::Code(c) => api_error(c),
            Fault::CodeWithSub { code, sub_code } => {
                oapi_sub_error(code.parse().unwrap_or(88), sub_code)
            }
            Fault::TokenInvalid if oapi => oapi_error(40014),
            Fault::TokenInvalid => api_error(API_INVALID_AUTHENTICATION),
            Fault::CodeInvalid if oapi => oapi_error(40078),
            Fault::CodeInvalid => api_error(API_INVALID_AUTH_CODE),
            Fault::RateLimited if oapi => oapi_error(OAPI_RATE_LIMITED),
            Fault::RateLimited => api_error(API_THROTTLED),
            Fault::PermissionDenied if oapi => oapi_sub_error(88, "60011"),
            Fault::PermissionDenied => api_error(API_PERMISSION_DENIED),
            Fault::IpNotAllowed if oapi => oapi_error(60020),
            Fault::IpNotAllowed => api_error(API_IP_DENIED),
            Fault::SystemBusy if oapi => oapi_error(-1),
            // SystemBusy on api, and any transport fault the guard did not handle (it handles
            // them all): a transient failure is the honest answer.
            _ if oapi => oapi_error(-1),
            _ => api_error(API_UNAVAILABLE),
        }
    }

    fn wrong_method(&self, endpoint: &EndpointSpec, _method: &Method) -> Response {
        match endpoint.family {
            OAPI if endpoint.method == Method::GET => oapi_error(43001),
            OAPI => oapi_error(43002),
            API => api_error(API_NOT_FOUND),
            _ => login_error_page(StatusCode::METHOD_NOT_ALLOWED, "不支持的请求方法"),
        }
    }

    fn not_found(&self, _method: &Method, path: &str) -> Response {
        if path.starts_with("/v1.0/") {
            api_error(API_NOT_FOUND)
        } else {
            let mut resp = oapi_error(404);
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    }
}
