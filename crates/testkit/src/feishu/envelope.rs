//! Feishu's envelopes and its fault rendering.
//!
//! * Open API (`open.feishu.cn/open-apis/...`): `{code, msg, data?}`; errors carry a non-zero
//!   `code` (HTTP 400, or 429 for 99991400 with `x-ogw-ratelimit-*` headers).
//! * App-token endpoints: the same, with the token fields at the top level.
//! * `authen/v2/oauth/token`: success at the top level with `code: 0`; errors are HTTP ≠ 200 with
//!   the standard OAuth2 shape `{code, error, error_description}`.
//! * The accounts host: HTML pages.
//!
//! Codes and messages come from `reference/platforms.md` §3.6 and the fixtures; items the fake
//! had to pick are listed in [`crate::feishu`]'s docs.

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::server::{EndpointSpec, FaultCodes, PlatformResponder, numeric_code};
use crate::{http, pages};

/// Family of the app-token endpoints (no access token sent).
pub(crate) const AUTH: &str = "auth";
/// Family of `authen/v2/oauth/token` (OAuth2 error shape, client credentials in the body).
pub(crate) const OAUTH2: &str = "oauth2";
/// Family of Open API endpoints called with the app / tenant token.
pub(crate) const OPEN: &str = "open";
/// Family of Open API endpoints called with a user token.
pub(crate) const OPEN_USER: &str = "open_user";
/// Family of the accounts host's pages.
pub(crate) const ACCOUNTS: &str = "accounts";

/// Token missing in the request.
pub const CODE_TOKEN_MISSING: i64 = 99991661;
/// Tenant / app token invalid or expired.
pub const CODE_TENANT_TOKEN_INVALID: i64 = 99991663;
/// App access token invalid: what an `app_access_token` endpoint answers another token with.
pub const CODE_APP_TOKEN_INVALID: i64 = 99991664;
/// Access token format invalid.
pub const CODE_TOKEN_FORMAT: i64 = 99991671;
/// User token invalid.
pub const CODE_USER_TOKEN_INVALID: i64 = 99991668;
/// User token expired.
pub const CODE_USER_TOKEN_EXPIRED: i64 = 99991677;
/// The app lacks a required permission (scope).
pub const CODE_SCOPE_MISSING: i64 = 99991672;
/// Rate limited (HTTP 429).
pub const CODE_RATE_LIMITED: i64 = 99991400;
/// The caller's IP is not in the app's IP whitelist (seen in issue threads, not in the reference).
pub const CODE_IP_DENIED: i64 = 99991401;
/// Authorization code invalid, used or expired (the v2 fixture's code; illustrative on v1).
pub const CODE_INVALID_CODE: i64 = 20003;
/// Refresh token invalid, used or expired. Illustrative.
pub const CODE_INVALID_REFRESH_TOKEN: i64 = 20026;
/// Unknown `app_id` at the token endpoints. Illustrative.
pub const CODE_INVALID_APP: i64 = 10003;
/// Wrong `app_secret` at the token endpoints. Illustrative.
pub const CODE_INVALID_SECRET: i64 = 10014;
/// Parameter validation failed (missing field, not JSON). Illustrative.
pub const CODE_BAD_REQUEST: i64 = 99992402;
/// The directory cannot show this user to the app (other tenant, outside its range). Illustrative.
pub const CODE_NO_USER_AUTHORITY: i64 = 41050;
/// Internal error, retry (HTTP 500). Illustrative.
pub const CODE_SYSTEM_BUSY: i64 = 2200;
/// Store apps: the `app_ticket` is missing, unknown or outdated (`app_access_token`).
pub const CODE_TICKET_INVALID: i64 = 10012;
/// Store apps: the tenant has not installed the app (or removed or stopped it) at
/// `tenant_access_token`. Illustrative: the reference names no code.
pub const CODE_TENANT_NOT_INSTALLED: i64 = 10013;
/// Mini-program login: the app access token is invalid (`tokenLoginValidate`).
pub const CODE_MINA_TOKEN_INVALID: i64 = 10202;
/// Mini-program login: the code is used, expired, unknown or another app's.
pub const CODE_MINA_CODE_INVALID: i64 = 10213;
/// Mini-program login: the app cannot see this person.
pub const CODE_MINA_NO_VISIBILITY: i64 = 10228;
/// The `errorCode` `h5sdk.config`'s failure carries in the fake (illustrative: the reference
/// names no code).
pub const JSAPI_CONFIG_FAILED: i64 = 2;
/// `x-ogw-ratelimit-reset` sent with rate-limit answers, in seconds.
pub const RATE_LIMIT_RESET_SECS: u64 = 2;

/// The message of a code (the fixtures' texts where there is one).
pub(crate) fn message(code: i64) -> String {
    match code {
        0 => "success",
        CODE_TOKEN_MISSING => "Missing access token for authorization. Please make a request with token attached.",
        CODE_TENANT_TOKEN_INVALID => "Invalid access token for authorization. Please make a request with token attached.",
        CODE_APP_TOKEN_INVALID => "Invalid app access token.",
        CODE_TOKEN_FORMAT => "Token format error: invalid access token.",
        CODE_USER_TOKEN_INVALID => "Invalid user access token.",
        CODE_USER_TOKEN_EXPIRED => "Authentication token expired.",
        CODE_SCOPE_MISSING => "Access denied. One of the following scopes is required: [contact:user.base:readonly]. The app has not applied for the scopes.",
        99991676 => "Token has no permission for this API.",
        99991679 => "Unauthorized. The user has not granted the required scope.",
        CODE_RATE_LIMITED => "request trigger frequency limit",
        CODE_IP_DENIED => "ip 127.0.0.1 is denied by app setting",
        CODE_INVALID_CODE => "The authorization code is invalid or has been used.",
        CODE_INVALID_REFRESH_TOKEN => "The refresh token is invalid, expired or has been used.",
        CODE_INVALID_APP => "invalid param: app_id",
        CODE_INVALID_SECRET => "app secret invalid",
        CODE_BAD_REQUEST => "field validation failed",
        CODE_NO_USER_AUTHORITY => "no user authority error",
        CODE_SYSTEM_BUSY => "Internal Error",
        20010 => "The user has no permission to use this app.",
        CODE_TICKET_INVALID => "app_ticket is invalid",
        CODE_TENANT_NOT_INSTALLED => "the tenant has not installed the app",
        CODE_MINA_TOKEN_INVALID => "access token invalid",
        CODE_MINA_CODE_INVALID => "code is invalid, used, expired or belongs to another app",
        CODE_MINA_NO_VISIBILITY => "user has no visibility of the app",
        _ => return format!("fake feishu code {code}"),
    }
    .to_owned()
}

/// The HTTP status a code comes with.
fn status_of(code: i64) -> StatusCode {
    match code {
        CODE_RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
        CODE_SYSTEM_BUSY => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn add_rate_limit_headers(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("x-ogw-ratelimit-limit", HeaderValue::from_static("50"));
    if let Ok(v) = HeaderValue::from_str(&RATE_LIMIT_RESET_SECS.to_string()) {
        h.insert("x-ogw-ratelimit-reset", v);
    }
}

/// Success: HTTP 200 `{"code":0,"msg":"success","data":data}`.
pub(crate) fn ok_data(data: Value) -> Response {
    http::json(
        StatusCode::OK,
        &json!({"code": 0, "msg": "success", "data": data}),
    )
}

/// Success with top-level fields: `{"code":0,"msg":"ok",…fields}` (token endpoints).
pub(crate) fn ok_fields(fields: Value) -> Response {
    let body = http::merged(json!({"code": 0, "msg": "ok"}), fields);
    http::json(StatusCode::OK, &body)
}

/// Open API error: `{code, msg}` with the code's status (and rate-limit headers for 99991400).
pub(crate) fn error(code: i64) -> Response {
    error_msg(code, &message(code))
}

/// Open API error with a specific message.
pub(crate) fn error_msg(code: i64, msg: &str) -> Response {
    tracing::debug!(code, "fake feishu error");
    let mut resp = http::json(status_of(code), &json!({"code": code, "msg": msg}));
    if code == CODE_RATE_LIMITED {
        add_rate_limit_headers(&mut resp);
    }
    resp
}

/// The OAuth2 `error` string of a v2 code.
fn oauth_error_name(code: i64) -> &'static str {
    match code {
        CODE_INVALID_CODE | CODE_INVALID_REFRESH_TOKEN => "invalid_grant",
        20010 => "access_denied",
        CODE_INVALID_SECRET | CODE_INVALID_APP => "invalid_client",
        CODE_RATE_LIMITED => "rate_limited",
        CODE_SYSTEM_BUSY => "server_error",
        CODE_SCOPE_MISSING | 99991679 => "invalid_scope",
        _ => "invalid_request",
    }
}

/// v2 error in the standard OAuth2 shape: HTTP ≠ 200 `{code, error, error_description}`.
pub(crate) fn oauth_error(code: i64) -> Response {
    oauth_error_desc(code, &message(code))
}

/// v2 error with a specific description.
pub(crate) fn oauth_error_desc(code: i64, description: &str) -> Response {
    tracing::debug!(code, "fake feishu v2 oauth error");
    let status = match code {
        CODE_INVALID_SECRET | CODE_INVALID_APP => StatusCode::UNAUTHORIZED,
        other => status_of(other),
    };
    let mut resp = http::json(
        status,
        &json!({"code": code, "error": oauth_error_name(code), "error_description": description}),
    );
    if code == CODE_RATE_LIMITED {
        add_rate_limit_headers(&mut resp);
    }
    resp
}

/// An error page of the accounts host.
pub(crate) fn accounts_error_page(status: StatusCode, message: &str) -> Response {
    pages::error_page(status, ("飞书 - 授权失败", "授权失败"), message, "")
}

fn not_found_text() -> Response {
    http::response(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "404 page not found",
    )
}

const FAULT_CODES: FaultCodes = FaultCodes {
    token_invalid: CODE_TENANT_TOKEN_INVALID,
    code_invalid: CODE_INVALID_CODE,
    rate_limited: CODE_RATE_LIMITED,
    permission_denied: CODE_SCOPE_MISSING,
    ip_not_allowed: CODE_IP_DENIED,
    system_busy: CODE_SYSTEM_BUSY,
};

/// Renders platform faults, wrong methods and unknown paths the Feishu way.
#[derive(Debug, Default)]
pub struct FeishuResponder;

impl PlatformResponder for FeishuResponder {
    fn supports(&self, endpoint: &EndpointSpec, fault: &Fault) -> Result<(), String> {
        match (endpoint.family, fault) {
            (ACCOUNTS, _) => Err("accounts pages only support transport faults".into()),
            (_, Fault::CodeWithSub { .. }) => Err("Feishu has no sub_code envelope".into()),
            (_, Fault::Code(c)) => {
                numeric_code(c, "code 0 is success, not a fault", "Feishu codes")
            }
            (AUTH | OAUTH2, Fault::TokenInvalid) => Err(format!(
                "`{}` authenticates with the app's credentials, not an access token",
                endpoint.name
            )),
            (AUTH | OAUTH2 | OPEN | OPEN_USER, _) => Ok(()),
            (other, _) => Err(format!("unknown endpoint family `{other}`")),
        }
    }

    fn render_fault(&self, endpoint: &EndpointSpec, fault: &Fault) -> Response {
        let mina = endpoint.name == super::endpoints::MINA_TOKEN_LOGIN_VALIDATE;
        let code = match fault {
            Fault::TokenInvalid if mina => CODE_MINA_TOKEN_INVALID,
            Fault::CodeInvalid if mina => CODE_MINA_CODE_INVALID,
            Fault::TokenInvalid if endpoint.family == OPEN_USER => CODE_USER_TOKEN_INVALID,
            fault => FAULT_CODES.of(fault),
        };
        if endpoint.family == ACCOUNTS {
            return accounts_error_page(StatusCode::INTERNAL_SERVER_ERROR, &message(code));
        }
        if endpoint.family == OAUTH2 {
            oauth_error(code)
        } else {
            error(code)
        }
    }

    fn wrong_method(&self, _endpoint: &EndpointSpec, _method: &Method) -> Response {
        not_found_text()
    }

    fn not_found(&self, _method: &Method, _path: &str) -> Response {
        not_found_text()
    }
}
