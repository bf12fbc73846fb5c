//! WeCom's envelope and its fault rendering.
//!
//! * `qyapi.weixin.qq.com`: HTTP 200 with `{errcode, errmsg, …fields at top level}` on success
//!   and on errors alike (`fixtures/wecom/*.json`). Error messages carry the
//!   `hint: […], from ip: …, more info at …?e=CODE` tail the real platform appends.
//! * `open.weixin.qq.com`, `login.work.weixin.qq.com`, `open.work.weixin.qq.com`: HTML pages.
//!
//! Codes come from `reference/platforms.md` §4.5. Messages the reference does not confirm are
//! illustrative (listed in [`crate::wecom`]'s docs).

use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::server::{EndpointSpec, FaultCodes, NumericEnvelope, PlatformResponder};
use crate::store::random_id;
use crate::{http, pages};

/// Endpoint family tag of `qyapi.weixin.qq.com` endpoints.
pub(crate) const QYAPI: &str = "qyapi";
/// Endpoint family tag of the browser pages (OAuth link, web login, QR connect, approve).
pub(crate) const PAGE: &str = "page";

/// errcode of the rate-limit fault ("api freq out of limit").
pub const RATE_LIMITED: i64 = 45009;
/// errcode of the permission fault ("api forbidden": the app may not call this API).
pub const API_FORBIDDEN: i64 = 48002;
/// errcode for a body that is not the JSON the endpoint wants ("data format error").
pub const DATA_FORMAT_ERROR: i64 = 47001;

/// The message of an errcode (the text before WeCom's `hint` tail).
pub(crate) fn base_message(code: i64) -> String {
    match code {
        -1 => "system busy",
        0 => "ok",
        40001 => "invalid credential",
        40013 => "invalid corpid",
        40014 => "invalid access_token",
        40029 => "invalid code",
        40091 => "secret is invalid",
        41001 => "access_token missing",
        41002 => "corpid missing",
        41004 => "corpsecret missing",
        41008 => "missing code",
        41009 => "missing userid",
        42001 => "access_token expired",
        43001 => "require GET method",
        43002 => "require POST method",
        40097 => "invalid args",
        45009 => "api freq out of limit",
        45033 => "api concurrent out of limit",
        47001 => "data format error",
        48002 => "api forbidden",
        50001 => "redirect_url not trusted",
        50002 => "user out of agent privilege",
        60011 => "no privilege to access/modify contact/party/agent",
        60020 => "not allow to access from your ip",
        60111 => "userid not found",
        84014 => "user ticket expired",
        84015 => "user ticket invalid",
        84025 => "invalid state",
        404 => "api not found",
        other => return format!("fake wecom errcode {other}"),
    }
    .to_owned()
}

/// The full errmsg, with the tail the real platform appends (fixtures' format).
pub(crate) fn message(code: i64) -> String {
    let hint = &random_id("")[..12];
    format!(
        "{}, hint: [{hint}], from ip: 127.0.0.1, more info at \
         https://open.work.weixin.qq.com/devtool/query?e={code}",
        base_message(code)
    )
}

/// Success: `{"errcode":0,"errmsg":"ok", …fields}`.
pub(crate) fn ok(fields: Value) -> Response {
    let body = http::merged(json!({"errcode": 0, "errmsg": "ok"}), fields);
    http::json(StatusCode::OK, &body)
}

/// Error: HTTP 200 `{errcode, errmsg}`.
pub(crate) fn error(code: i64) -> Response {
    tracing::debug!(errcode = code, "fake wecom error");
    http::json(
        StatusCode::OK,
        &json!({"errcode": code, "errmsg": message(code)}),
    )
}

/// An error page of the browser hosts (the real pages show a Chinese error with the errcode).
pub(crate) fn error_page(status: StatusCode, errcode: Option<i64>, text: &str) -> Response {
    let code = errcode
        .map(|c| format!("<p class=\"errcode\">errcode: {c}</p>"))
        .unwrap_or_default();
    pages::error_page(status, ("企业微信 - 出错了", "出错了"), text, &code)
}

const ENVELOPE: NumericEnvelope = NumericEnvelope {
    api: QYAPI,
    page: PAGE,
    pages_only: "WeCom's browser pages only support transport faults",
    zero: "errcode 0 is success, not a fault",
    codes: "WeCom errcodes",
    no_sub_code: "WeCom's envelope has no sub-code (that is DingTalk's errcode 88)",
};

const FAULT_CODES: FaultCodes = FaultCodes {
    token_invalid: 40014,
    code_invalid: 40029,
    rate_limited: RATE_LIMITED,
    permission_denied: API_FORBIDDEN,
    ip_not_allowed: 60020,
    system_busy: -1,
};

/// Renders platform faults, wrong methods and unknown paths the WeCom way.
#[derive(Debug, Default)]
pub struct WeComResponder;

impl PlatformResponder for WeComResponder {
    fn supports(&self, endpoint: &EndpointSpec, fault: &Fault) -> Result<(), String> {
        ENVELOPE.supports(endpoint, fault)
    }

    fn render_fault(&self, endpoint: &EndpointSpec, fault: &Fault) -> Response {
        if endpoint.family == PAGE {
            return error_page(StatusCode::SERVICE_UNAVAILABLE, Some(-1), "系统繁忙");
        }
        // WeCom has no HTML ban page: its rate limit is always the JSON 45009.
        error(FAULT_CODES.of(fault))
    }

    fn wrong_method(&self, endpoint: &EndpointSpec, _method: &Method) -> Response {
        match endpoint.family {
            QYAPI if endpoint.method == Method::GET => error(43001),
            QYAPI => error(43002),
            _ => error_page(StatusCode::METHOD_NOT_ALLOWED, None, "不支持的请求方法"),
        }
    }

    fn not_found(&self, _method: &Method, _path: &str) -> Response {
        let mut resp = error(404);
        *resp.status_mut() = StatusCode::NOT_FOUND;
        resp
    }
}
