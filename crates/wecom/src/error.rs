//! WeCom's error table.

use unilogin_core::envelope::class_of_status;
use unilogin_core::{ErrorClass, UpstreamCode};

const IP_HINT: &str = "the server's egress IP is not in the app's trusted IP list: add it in the WeCom admin console (应用管理 → the app → 企业可信IP)";
const DOMAIN_HINT: &str = "the redirect_uri's domain is not the app's trusted domain: set it in the WeCom admin console (应用管理 → the app → 网页授权及JS-SDK → 可信域名; for web login also 企业微信授权登录 → 授权回调域)";
const CORP_HINT: &str = "WeCom does not know this corpid: corp_id (and app_key) must be the 企业ID shown in 我的企业 → 企业信息";
const OTHER_CORP_HINT: &str =
    "app_secret belongs to an app of another corp: check corp_id and app_secret";
const FORBIDDEN_HINT: &str = "the app may not call this API: check the app's permissions in the WeCom admin console (e.g. contacts read access, sensitive-field authorization)";
const RANGE_HINT: &str = "the member is outside the app's visible range: add the member or their department in 应用管理 → the app → 可见范围";

/// At `gettoken`, "invalid credential" (40001) is the secret, not a stale token.
pub(crate) const SECRET_HINT: &str = "WeCom rejected the corpsecret: app_secret must be the Secret of the app `agent_id` (应用管理 → the app → Secret), not another app's or the contacts-sync secret";

/// The class of a WeCom `errcode` (or of an HTTP status without one) — the crate's error table:
///
/// | `errcode` | class |
/// |---|---|
/// | 40014, 42001, 40001 | [`ErrorClass::TokenInvalid`]: the core invalidates that token and retries once (40001 at `gettoken` is a wrong secret: [`Error::Misconfigured`](unilogin_core::Error::Misconfigured)) |
/// | 45009, 45033 | [`ErrorClass::RateLimited`] |
/// | 40029 (bad, used, expired or another app's code), 84014 / 84015 (the `user_ticket` expired or is invalid: go through the OAuth link again) | [`ErrorClass::InvalidCode`], never retried |
/// | 60020 (trusted IP), 50001 (trusted domain), 40013 (corpid), 40091 (another corp's secret), 48002 (API permission), 60011 / 50002 (visible range) | [`ErrorClass::Misconfigured`] with what to fix |
/// | 60111 (no such member) | [`ErrorClass::NotInTenant`] |
/// | -1 (system busy) | [`ErrorClass::Transient`] |
/// | HTTP 429 / 5xx without a code | [`ErrorClass::RateLimited`] / [`ErrorClass::Transient`] |
///
/// ```
/// use unilogin_core::{ErrorClass, UpstreamCode};
/// assert_eq!(unilogin_wecom::classify(&UpstreamCode::Number(42001)), ErrorClass::TokenInvalid);
/// ```
pub fn classify(code: &UpstreamCode) -> ErrorClass {
    match code {
        UpstreamCode::Number(n) => match n {
            40014 | 42001 | 40001 => ErrorClass::TokenInvalid,
            45009 | 45033 => ErrorClass::RateLimited,
            40029 | 84014 | 84015 => ErrorClass::InvalidCode,
            60020 => ErrorClass::Misconfigured(IP_HINT),
            50001 => ErrorClass::Misconfigured(DOMAIN_HINT),
            40013 => ErrorClass::Misconfigured(CORP_HINT),
            40091 => ErrorClass::Misconfigured(OTHER_CORP_HINT),
            48002 => ErrorClass::Misconfigured(FORBIDDEN_HINT),
            60011 | 50002 => ErrorClass::Misconfigured(RANGE_HINT),
            60111 => ErrorClass::NotInTenant,
            -1 => ErrorClass::Transient,
            _ => ErrorClass::Other,
        },
        UpstreamCode::Http(status) => class_of_status(*status),
        _ => ErrorClass::Other,
    }
}
