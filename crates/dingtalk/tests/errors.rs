//! DingTalk's error reference (`platforms.md` §2.5) row by row: each code, in the envelope of
//! the endpoint that answers it, becomes the typed error the reference prescribes.

mod support;

use serde_json::json;
use unilogin_core::platform::Identity;
use unilogin_core::{Error, RefreshToken};
use unilogin_testkit::dingtalk::{self, DEMO_USER_ID, endpoints as ep};
use unilogin_testkit::{FakePlatform as _, Fault, Times};

use support::*;

/// The step a row drives, so that the fault lands on its endpoint.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// `gettoken` (oapi app token).
    AppToken,
    /// `v1.0/oauth2/accessToken` (api app token).
    AppTokenV1,
    /// `topapi/v2/user/getuserinfo` (H5 code).
    H5,
    /// `topapi/user/getbyunionid` then `topapi/v2/user/get` (user detail by unionid).
    Detail,
    /// `v1.0/oauth2/userAccessToken` or `v1.0/contact/users/me` (web code).
    Web,
    /// `v1.0/oauth2/userAccessToken` (refresh grant).
    Refresh,
}

/// What the reference says a caller gets.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Invalidate the app token and retry once.
    TokenInvalid,
    /// The user logs in again.
    Reauth,
    InvalidCode,
    RateLimited,
    /// A configuration error whose hint contains this.
    Config(&'static str),
    NotInTenant,
    Transient,
    /// A plain upstream error: neither a permission problem nor retryable.
    Other,
}

const SECRET: &str = "check app_key and app_secret";
const PERMISSION: &str = "lacks a permission";
const IP: &str = "IP whitelist";
const QUOTA: &str = "90020";

/// (endpoint, fault, step, expectation)
#[rustfmt::skip]
fn rows() -> Vec<(&'static str, Fault, Step, Want)> {
    use Step::*;
    use Want::*;
    fn code(c: impl std::fmt::Display) -> Fault {
        Fault::code(c)
    }
    vec![
        // Bad AppKey/AppSecret at gettoken: 40096 (what the live API answers), 40089, 40001.
        (ep::GETTOKEN, code(40096), AppToken, Config(SECRET)),
        (ep::GETTOKEN, code(40089), AppToken, Config(SECRET)),
        (ep::GETTOKEN, code(40001), AppToken, Config(SECRET)),
        // 40001 elsewhere, 40014, 42001 and 88 + 40014: the app token is invalid.
        (ep::GETUSERINFO, code(40001), H5, TokenInvalid),
        (ep::USER_GET, code(40001), Detail, TokenInvalid),
        (ep::USER_GET, code(40014), Detail, TokenInvalid),
        (ep::GETBYUNIONID, code(42001), Detail, TokenInvalid),
        (ep::USER_GET, Fault::code_with_sub(88, 40014), Detail, TokenInvalid),
        (ep::USER_GET, Fault::code_with_sub(88, 42001), Detail, TokenInvalid),
        // 88 names the real reason in sub_code.
        (ep::USER_GET, Fault::code_with_sub(88, 60011), Detail, Config(PERMISSION)),
        (ep::USER_GET, Fault::code_with_sub(88, 60020), Detail, Config(IP)),
        (ep::USER_GET, Fault::code_with_sub(88, "isv.unknown"), Detail, Config(PERMISSION)),
        (ep::GETUSERINFO, code(40078), H5, InvalidCode),
        (ep::GETTOKEN, code(60020), AppToken, Config(IP)),
        (ep::USER_GET, code(60011), Detail, Config(PERMISSION)),
        (ep::GETBYUNIONID, code(60121), Detail, NotInTenant),
        // The ban / frequency family 90001–90014, 90018, 90019: back off.
        (ep::USER_GET, code(90001), Detail, RateLimited),
        (ep::USER_GET, code(90002), Detail, RateLimited),
        (ep::GETTOKEN, code(90006), AppToken, RateLimited),
        (ep::GETUSERINFO, code(90014), H5, RateLimited),
        (ep::USER_GET, code(90018), Detail, RateLimited),
        (ep::USER_GET, code(90019), Detail, RateLimited),
        (ep::USER_GET, code(90015), Detail, Other),
        (ep::USER_GET, code(90020), Detail, Config(QUOTA)),
        (ep::USER_GET, code(-1), Detail, Transient),
        // v1.0 API. Throttling is HTTP 403 `Forbidden.AccessDenied.Qp?Limit*`: rate limited,
        // never a permission problem (nor a bad code, nor a bad secret).
        (ep::USERS_ME, code("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"), Web, RateLimited),
        (ep::USERS_ME, code("Forbidden.AccessDenied.QpsLimitForApi"), Web, RateLimited),
        (ep::USERS_ME, code("Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"), Web, RateLimited),
        (ep::USER_ACCESS_TOKEN, code("Forbidden.AccessDenied.QpsLimitForApi"), Web, RateLimited),
        (ep::OAUTH2_ACCESS_TOKEN, code("Forbidden.AccessDenied.QpsLimitForApi"), AppTokenV1, RateLimited),
        (ep::USER_ACCESS_TOKEN, code("Forbidden.AccessDenied.QpmLimitForAppkeyAndApi"), Refresh, RateLimited),
        // The monthly quota, the v1.0 form of 90020.
        (ep::USERS_ME, code("Forbidden.AccessDenied.ApiCountLimitForOrg"), Web, Config(QUOTA)),
        (ep::USER_ACCESS_TOKEN, code("Forbidden.AccessDenied.ApiCountLimitForOrg"), Web, Config(QUOTA)),
        // Only AccessTokenPermissionDenied is a missing permission (its requiredScopes named).
        (ep::USERS_ME, code(dingtalk::API_PERMISSION_DENIED), Web, Config("required scopes: Contact.User.Read")),
        (ep::USERS_ME, code("Forbidden.AccessDenied.IpNotInWhiteList"), Web, Config(IP)),
        (ep::OAUTH2_ACCESS_TOKEN, code("Forbidden.AccessDenied.IpNotInWhiteList"), AppTokenV1, Config(IP)),
        // Other Forbidden.AccessDenied.* codes are not guessed at: not permission, not a bad code.
        (ep::USERS_ME, code("Forbidden.AccessDenied.SomethingNew"), Web, Other),
        (ep::USER_ACCESS_TOKEN, code("Forbidden.AccessDenied.SomethingNew"), Web, Other),
        (ep::OAUTH2_ACCESS_TOKEN, code("Forbidden.AccessDenied.SomethingNew"), AppTokenV1, Other),
        // User tokens: `accesstoken.expired` and a rejected user token mean logging in again.
        (ep::USERS_ME, code("accesstoken.expired"), Web, Reauth),
        (ep::USERS_ME, code(dingtalk::API_INVALID_AUTHENTICATION), Web, Reauth),
        (ep::USERS_ME, code("qps.exceed.limit"), Web, RateLimited),
        (ep::USERS_ME, code("request.overlimit"), Web, RateLimited),
        (ep::USERS_ME, code(dingtalk::API_THROTTLED), Web, RateLimited),
        (ep::USERS_ME, code(dingtalk::API_UNAVAILABLE), Web, Transient),
        // Code exchange: any other 4xx means the code is unusable; a 5xx is not the code's fault.
        (ep::USER_ACCESS_TOKEN, code(dingtalk::API_INVALID_AUTH_CODE), Web, InvalidCode),
        (ep::USER_ACCESS_TOKEN, code("SomeUnknownCode"), Web, InvalidCode),
        (ep::USER_ACCESS_TOKEN, code(dingtalk::API_UNAVAILABLE), Web, Transient),
        (ep::USER_ACCESS_TOKEN, code(dingtalk::API_INVALID_CLIENT), Web, Config(SECRET)),
        (ep::USER_ACCESS_TOKEN, code(dingtalk::API_INVALID_REFRESH_TOKEN), Refresh, Reauth),
        (ep::USER_ACCESS_TOKEN, code("SomeUnknownCode"), Refresh, Reauth),
        (ep::USER_ACCESS_TOKEN, code(dingtalk::API_UNAVAILABLE), Refresh, Transient),
        // The v1 app-token endpoint: a rejected credential is the secret.
        (ep::OAUTH2_ACCESS_TOKEN, code(dingtalk::API_INVALID_CLIENT), AppTokenV1, Config(SECRET)),
        (ep::OAUTH2_ACCESS_TOKEN, code(dingtalk::API_INVALID_AUTHENTICATION), AppTokenV1, Config(SECRET)),
    ]
}

fn matches(want: Want, e: &Error) -> bool {
    match want {
        Want::TokenInvalid => matches!(e, Error::TokenInvalid { .. }),
        Want::Reauth => matches!(e, Error::ReauthRequired { .. }),
        Want::InvalidCode => matches!(e, Error::InvalidCode { .. }),
        Want::RateLimited => matches!(e, Error::RateLimited { .. }),
        Want::Config(needle) => misconfigured(e, needle),
        Want::NotInTenant => matches!(e, Error::NotInTenant { .. }),
        Want::Transient => matches!(
            e,
            Error::Upstream {
                transient: true,
                ..
            }
        ),
        Want::Other => matches!(
            e,
            Error::Upstream {
                transient: false,
                ..
            }
        ),
    }
}

#[tokio::test]
async fn every_reference_row_is_classified_as_the_reference_says() {
    let fake = dingtalk::start().await;
    let oapi = handler(&fake, json!({}));
    let v1 = handler(&fake, json!({ "options": { "app_token_api": "v1" } }));
    let secret = fake.credentials().app_secret;
    let mut failures = Vec::new();
    for (endpoint, fault, step, want) in rows() {
        let token = app_token(oapi.as_ref()).await;
        let refresh = match step {
            Step::Refresh => {
                let identity = web_exchange(&fake, oapi.as_ref()).await.expect("web login");
                identity.user_token.and_then(|t| t.refresh_token)
            }
            _ => None,
        };
        fake.inject_fault(endpoint, fault.clone(), Times::Once)
            .expect("the fake renders this fault");
        let result = match step {
            Step::AppToken => oapi.fetch_app_token().await.map(drop),
            Step::AppTokenV1 => v1.fetch_app_token().await.map(drop),
            Step::H5 => {
                let code = fake.issue_h5_code(DEMO_USER_ID).into();
                oapi.identify_h5(Some(&token), &code).await.map(drop)
            }
            Step::Detail => {
                let identity = Identity {
                    union_id: Some(format!("unionid-{DEMO_USER_ID}")),
                    ..Identity::default()
                };
                oapi.user_detail(Some(&token), &identity).await.map(drop)
            }
            Step::Web => web_exchange(&fake, oapi.as_ref()).await.map(drop),
            Step::Refresh => {
                let refresh: RefreshToken = refresh.expect("a refresh token");
                oapi.refresh_user_token(&refresh).await.map(drop)
            }
        };
        fake.clear_faults();
        let row = format!("{endpoint} {fault:?} ({step:?})");
        match result {
            Ok(()) => failures.push(format!("{row}: succeeded, want {want:?}")),
            Err(e) if !matches(want, &e) => failures.push(format!("{row}: {e:?}, want {want:?}")),
            Err(e) => assert!(
                !e.to_string().contains(&secret),
                "{row}: {e} shows the secret"
            ),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What the fake itself answers for a wrong secret is a configuration error on both APIs.
#[tokio::test]
async fn a_wrong_secret_is_a_configuration_error_on_both_token_apis() {
    let fake = dingtalk::start().await;
    for api in ["oapi", "v1"] {
        let config = json!({ "app_secret": "not-the-secret", "options": { "app_token_api": api } });
        let e = handler(&fake, config).fetch_app_token().await.unwrap_err();
        assert!(misconfigured(&e, SECRET), "{api}: {e:?}");
        assert!(!e.to_string().contains("not-the-secret"), "{e}");
    }
}
