//! DingTalk's error codes as classes (reference `platforms.md` §2.5): 40096 / 40089 are a wrong
//! AppKey/AppSecret; at the token endpoints a token-invalid answer (40001) means one too.

use serde_json::Value;
use unilogin_core::ErrorClass::{self, *};
use unilogin_core::envelope::class_of_status;
use unilogin_core::{Error, UpstreamCode};

const IP_HINT: &str = "the server's egress IP is not in the app's IP whitelist: add it in the DingTalk developer console (应用开发 → 开发管理 → 服务器出口IP)";
const PERMISSION_HINT: &str = "the app lacks a permission for this API: grant it in the DingTalk developer console (权限管理), e.g. Contact.User.Read / 通讯录个人信息读权限";
pub(crate) const SECRET_HINT: &str =
    "DingTalk rejected the AppKey/AppSecret pair: check app_key and app_secret";
const QUOTA_HINT: &str = "the organisation's monthly API quota is exhausted (errcode 90020): upgrade the edition or wait for the next month";

/// The class of an `oapi` errcode.
fn errcode(code: i64) -> ErrorClass {
    match code {
        40014 | 42001 | 40001 => TokenInvalid,
        40096 | 40089 => Misconfigured(SECRET_HINT),
        40078 => InvalidCode,
        60020 => Misconfigured(IP_HINT),
        60011 => Misconfigured(PERMISSION_HINT),
        90020 => Misconfigured(QUOTA_HINT),
        60121 => NotInTenant,
        90001..=90014 | 90018 | 90019 => RateLimited,
        -1 => Transient,
        _ => Other,
    }
}

/// The class of a string code. Of the `Forbidden.AccessDenied.*` codes only
/// `AccessTokenPermissionDenied` is a missing permission; an unknown one is not guessed at.
fn text(code: &str) -> ErrorClass {
    match code {
        "InvalidAuthentication" => TokenInvalid,
        "accesstoken.expired" | "InvalidRefreshToken" => UserTokenInvalid,
        "InvalidAuthCode" => InvalidCode,
        "invalidClientIdOrSecret" => Misconfigured(SECRET_HINT),
        "invalidSuiteKey" => Misconfigured(crate::isv::SUITE_HINT),
        "invalidSuiteTicket" => Misconfigured(crate::isv::TICKET_HINT),
        "Forbidden.AccessDenied.AccessTokenPermissionDenied" => Misconfigured(PERMISSION_HINT),
        "Forbidden.AccessDenied.ApiCountLimitForOrg" => Misconfigured(QUOTA_HINT),
        "Forbidden.AccessDenied.IpNotInWhiteList" => Misconfigured(IP_HINT),
        "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
        | "Forbidden.AccessDenied.QpsLimitForApi"
        | "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"
        | "qps.exceed.limit"
        | "request.overlimit" => RateLimited,
        "ServiceUnavailable" | "systemBusy" => Transient,
        t if t.starts_with("Throttling") => RateLimited,
        _ => Other,
    }
}

/// The class of a DingTalk code from either envelope. Errcode 88 is classed by its `sub_code`
/// (the real reason); one that names nothing known is a permission failure.
pub(crate) fn classify(code: &UpstreamCode) -> ErrorClass {
    match code {
        UpstreamCode::Number(n) => errcode(*n),
        UpstreamCode::WithSub(88, sub) => match sub.parse().map(errcode) {
            Ok(class) if class != Other => class,
            _ => Misconfigured(PERMISSION_HINT),
        },
        UpstreamCode::Text(t) => text(t),
        UpstreamCode::Http(status) => class_of_status(*status),
        UpstreamCode::WithSub(..) => Other,
    }
}

/// A missing-permission error names the scopes DingTalk lists in
/// `accessdenieddetail.requiredScopes` (scope names only, at most eight).
pub(crate) fn with_required_scopes(mut error: Error, body: &Value) -> Error {
    let scopes = body.pointer("/accessdenieddetail/requiredScopes");
    let names = scopes.and_then(Value::as_array).into_iter().flatten();
    let names = names.filter_map(Value::as_str).filter(is_scope).take(8);
    let names = names.collect::<Vec<_>>().join(", ");
    if let Error::Misconfigured { hint, .. } = &mut error
        && *hint == PERMISSION_HINT
        && !names.is_empty()
    {
        *hint = format!("{PERMISSION_HINT}; required scopes: {names}");
    }
    error
}

fn is_scope(s: &&str) -> bool {
    let scope_char = |c: char| c.is_ascii_alphanumeric() || "._:-".contains(c);
    !s.is_empty() && s.len() <= 64 && s.chars().all(scope_char)
}
