//! # The unilogin conformance suite
//!
//! One suite, written once against the [`Platform`](unilogin_core::Platform) contract (through
//! [`Sso`]) and the test kit's [`FakePlatform`] trait, instantiated for every platform in the
//! manner of OpenDAL's behavior tests. A platform's test file provides a [`Setup`] (its fake,
//! the tenant configuration pointing at it, and the demo person's expected profile) and expands
//! [`conformance_suite!`], which generates one `#[tokio::test]` per case.
//!
//! The cases cover PLATFORM-CHECKLIST point 8: both flows' happy paths, the upstream calls a
//! warm login costs, invalidate-and-retry-once on a rejected token, never a retried code, every
//! injected fault's typed error, no panic, and no secret in any log line or error text.
//!
//! [`isv`] is the store-app event receiver the platform crates' store-app tests push to.
//!
//! [`mapping`] holds the default-rules mapping checks every platform crate's `tests/mapping.rs`
//! runs over its fixtures; [`identity`] the behaviour suite every identity store passes (the
//! core's memory store here, the SQL store on SQLite, PostgreSQL and MariaDB in
//! `unilogin-sql`).

pub mod identity;
pub mod isv;
pub mod mapping;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::error::BadBody;
use unilogin_core::http::HttpConfig;
use unilogin_core::mapping::SubjectKind;
use unilogin_core::platform::InClient;
use unilogin_core::sso::Sso;
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, Flow, Login, TenantId, UpstreamCode};
use unilogin_testkit::{EndpointRole, FakePlatform, Fault, Times};
use url::Url;

/// The tenant every case logs into.
pub const TENANT: &str = "acme";

/// The callback URL registered for the tenant.
pub const CALLBACK: &str = "https://app.acme.example/auth/callback";

/// What the demo person's profile must contain (`None`: the platform does not provide it).
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// The subject policy's identifier (the platform's default unless the setup's
    /// configuration chooses one).
    pub subject: SubjectKind,
    /// `user_id`.
    pub user_id: Option<String>,
    /// `union_id`.
    pub union_id: Option<String>,
    /// `open_id` in the web flow.
    pub web_open_id: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `mobile` (the national number).
    pub mobile: Option<String>,
    /// `mobile_country_code`.
    pub mobile_country_code: Option<String>,
    /// `email`.
    pub email: Option<String>,
    /// `avatar`.
    pub avatar: Option<String>,
    /// `employee_no`.
    pub employee_no: Option<String>,
    /// `job_title`.
    pub job_title: Option<String>,
    /// `department_ids`.
    pub department_ids: Vec<String>,
    /// Whether the web flow returns the user's own token.
    pub web_user_token: bool,
    /// What the hint of a wrong-secret error must say (`Some("secret")` where the platform
    /// tells a bad secret apart; `None`: only that it is a configuration error, for platforms
    /// whose error codes do not say which part of the set-up is wrong).
    pub wrong_secret_hint: Option<&'static str>,
    /// Whether the code step sends its own kind of app token, cached apart from the other
    /// steps' (Feishu's v1 user-token endpoints take the `app_access_token`, its directory the
    /// `tenant_access_token`): a revocation then costs one new token of each kind.
    pub code_app_token: bool,
    /// Upstream calls of a warm H5 login (app token cached).
    pub warm_h5_calls: u64,
    /// Upstream calls of a warm web login (app token cached).
    pub warm_web_calls: u64,
    /// The profile fields of the web flow when they differ from the H5 flow's (WeCom: web
    /// logins never get a `user_ticket`, so apps created after 2022-06-20 see no mobile, e-mail
    /// or avatar there); `None`: the same as H5. Only the profile fields are read from it.
    pub web_profile: Option<Box<Expected>>,
}

/// One platform's instantiation of the suite.
pub struct Setup {
    /// The running fake.
    pub fake: Arc<dyn FakePlatform>,
    /// The tenant's configuration of the platform, pointing at the fake.
    pub config: Value,
    /// The demo person's expected profile.
    pub expected: Expected,
}

impl Setup {
    /// An [`Sso`] over this setup's configuration with short timeouts.
    pub fn sso(&self) -> Sso {
        self.sso_with(HttpConfig {
            request_timeout: Duration::from_secs(2),
            ..HttpConfig::default()
        })
    }

    /// An [`Sso`] with explicit HTTP settings.
    pub fn sso_with(&self, http: HttpConfig) -> Sso {
        let config: PlatformConfig =
            serde_json::from_value(self.config.clone()).expect("conformance config is valid");
        Sso::builder(StaticConfig::new(vec![config]))
            .http(http)
            .build()
            .expect("building Sso")
    }

    fn platform(&self) -> &'static str {
        self.fake.name()
    }

    fn calls(&self, role: EndpointRole) -> u64 {
        self.fake
            .endpoints_for(role)
            .iter()
            .map(|e| self.fake.calls(e))
            .sum()
    }

    /// Arms `fault` on every endpoint playing `role` (a platform may offer alternatives, such
    /// as DingTalk's two app-token endpoints).
    fn inject(&self, role: EndpointRole, fault: Fault, times: Times) {
        let endpoints = self.fake.endpoints_for(role);
        assert!(
            !endpoints.is_empty(),
            "{} has no endpoint for {role:?}",
            self.platform()
        );
        for endpoint in endpoints {
            self.fake
                .inject_fault(endpoint, fault.clone(), times)
                .unwrap_or_else(|e| panic!("injecting {fault:?} on {endpoint}: {e}"));
        }
    }

    /// Logs the demo user in with a fresh H5 code.
    pub async fn h5_login(&self, sso: &Sso) -> Result<Login, Error> {
        let code = AuthCode::new(self.fake.issue_h5_code(&self.fake.demo_user_id()));
        self.h5_login_code(sso, &code).await
    }

    /// Redeems an in-client code the way the platform's registration declares: a JSAPI code
    /// through the stateless exchange, an in-client OAuth code by finishing the `Flow::H5`
    /// redirect login it came back on (with its state).
    pub async fn h5_login_code(&self, sso: &Sso, code: &AuthCode) -> Result<Login, Error> {
        let prepared = sso.prepare(&tenant(), self.platform()).await?;
        match prepared.registration().in_client {
            InClient::Jsapi(_) => prepared.login_with_code(code).await,
            InClient::Redirect | InClient::None => {
                let redirect = Url::parse(CALLBACK).expect("static URL");
                let start = prepared.start_web_login(Flow::H5, &redirect).await?;
                let callback = Callback {
                    code: code.clone(),
                    state: start.pending.state.clone(),
                    iss: None,
                };
                prepared.finish_web_login(&start.pending, &callback).await
            }
        }
    }

    /// Logs `user_id` in through the web flow (authorize URL, approve, callback).
    pub async fn web_login(&self, sso: &Sso, user_id: &str) -> Result<Login, Error> {
        self.web_login_keeping(sso, user_id)
            .await
            .map(|(login, _)| login)
    }

    /// [`web_login`](Self::web_login), also returning the pending login's secrets (state, PKCE
    /// verifier, nonce) so that a test can look for them in logs.
    pub async fn web_login_keeping(
        &self,
        sso: &Sso,
        user_id: &str,
    ) -> Result<(Login, Vec<String>), Error> {
        let redirect = Url::parse(CALLBACK).expect("static URL");
        let start = sso
            .start_web_login(&tenant(), self.platform(), Flow::Web, &redirect)
            .await?;
        let url = &start.url;
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(
            query
                .iter()
                .any(|(k, v)| k == "state" && v == start.pending.state.expose()),
            "authorize URL lacks the state: {url}"
        );
        assert!(
            query
                .iter()
                .any(|(k, v)| k == "redirect_uri" && v == CALLBACK),
            "authorize URL lacks the redirect_uri: {url}"
        );
        let callback = Callback {
            code: AuthCode::new(self.fake.approve_web_login(user_id)),
            state: start.pending.state.clone(),
            iss: None,
        };
        let secrets = vec![
            start.pending.state.expose().to_string(),
            start.pending.pkce_verifier.expose().to_string(),
            start.pending.nonce.expose().to_string(),
            callback.code.expose().to_string(),
        ];
        let login = sso.finish_web_login(&start.pending, &callback).await?;
        Ok((login, secrets))
    }
}

/// The conformance tenant.
pub fn tenant() -> TenantId {
    TenantId::new(TENANT).expect("static tenant id")
}

fn check_profile(setup: &Setup, login: &Login, web: bool) {
    let p = &login.profile;
    let e = match (&setup.expected.web_profile, web) {
        (Some(web_profile), true) => web_profile.as_ref(),
        _ => &setup.expected,
    };
    assert_eq!(p.platform.as_str(), setup.platform());
    assert_eq!(p.tenant.as_str(), TENANT);
    assert_eq!(p.subject.kind, setup.expected.subject, "subject kind");
    assert_eq!(
        p.id(p.subject.kind),
        Some(p.subject.value.as_str()),
        "the subject is the identifier of its kind"
    );
    assert_eq!(p.user_id, e.user_id, "user_id");
    assert_eq!(p.union_id, e.union_id, "union_id");
    if web {
        assert_eq!(p.open_id, e.web_open_id, "open_id");
    }
    assert_eq!(p.name, e.name, "name");
    assert_eq!(p.mobile, e.mobile, "mobile");
    assert_eq!(
        p.mobile_country_code, e.mobile_country_code,
        "mobile_country_code"
    );
    assert_eq!(p.email, e.email, "email");
    assert_eq!(p.avatar, e.avatar, "avatar");
    assert_eq!(p.employee_no, e.employee_no, "employee_no");
    assert_eq!(p.job_title, e.job_title, "job_title");
    assert_eq!(p.department_ids, e.department_ids, "department_ids");
}

/// H5: a JSAPI code becomes the demo person's profile, field by field.
pub async fn h5_login_maps_the_demo_user(setup: Setup) {
    let sso = setup.sso();
    let login = setup.h5_login(&sso).await.expect("h5 login");
    assert_eq!(login.flow, Flow::H5);
    check_profile(&setup, &login, false);
}

/// Web: authorize URL → approve → callback code becomes the demo person's profile.
pub async fn web_login_maps_the_demo_user(setup: Setup) {
    let sso = setup.sso();
    let login = setup
        .web_login(&sso, &setup.fake.demo_user_id())
        .await
        .expect("web login");
    assert_eq!(login.flow, Flow::Web);
    check_profile(&setup, &login, true);
    assert_eq!(login.user_token.is_some(), setup.expected.web_user_token);
}

/// A warm login costs exactly the calls the flow needs: no app-token fetch.
pub async fn warm_logins_cost_only_the_flow_calls(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.fake.reset_calls();
    setup.h5_login(&sso).await.expect("warm h5 login");
    assert_eq!(
        setup.calls(EndpointRole::AppToken),
        0,
        "warm login fetched an app token"
    );
    assert_eq!(
        setup.fake.total_calls(),
        setup.expected.warm_h5_calls,
        "warm h5 calls"
    );
    setup.fake.reset_calls();
    setup
        .web_login(&sso, &setup.fake.demo_user_id())
        .await
        .expect("warm web login");
    assert_eq!(
        setup.calls(EndpointRole::AppToken),
        0,
        "warm web login fetched an app token"
    );
    assert_eq!(
        setup.fake.total_calls(),
        setup.expected.warm_web_calls,
        "warm web calls"
    );
}

/// Tokens revoked early: the rejected token is invalidated and the call retried once.
pub async fn revoked_app_token_is_replaced_once(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.fake.revoke_app_tokens();
    setup.fake.reset_calls();
    setup.h5_login(&sso).await.expect("login after revocation");
    assert_eq!(
        setup.calls(EndpointRole::AppToken),
        1 + u64::from(setup.expected.code_app_token),
        "exactly one new app token (of each kind the login uses)"
    );
}

/// A token rejected at the code step is retried once with a fresh token, and the code still
/// works (the platform checks the token before consuming the code).
///
/// Where the code exchange carries no app token (Feishu's `authen/v2/oauth/token` authenticates
/// with the app's credentials; its fake refuses to inject `TokenInvalid` there), the case checks
/// the next step that uses the app token instead: its rejection is retried once with a fresh
/// token **without** sending the code again.
pub async fn token_rejected_at_code_step_retries_once(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.fake.reset_calls();
    let exchange_carries_token = setup
        .fake
        .endpoints_for(EndpointRole::H5CodeExchange)
        .iter()
        .all(|e| {
            setup
                .fake
                .inject_fault(e, Fault::TokenInvalid, Times::Once)
                .is_ok()
        });
    if !exchange_carries_token {
        setup.fake.clear_faults();
        setup.inject(EndpointRole::UserDetail, Fault::TokenInvalid, Times::Once);
        setup
            .h5_login(&sso)
            .await
            .expect("login after one rejection");
        assert_eq!(setup.calls(EndpointRole::AppToken), 1);
        assert_eq!(setup.calls(EndpointRole::UserDetail), 2);
        assert_eq!(
            setup.calls(EndpointRole::H5CodeExchange),
            1,
            "the code was sent again"
        );
        return;
    }
    setup
        .h5_login(&sso)
        .await
        .expect("login after one rejection");
    assert_eq!(setup.calls(EndpointRole::AppToken), 1);
    assert_eq!(setup.calls(EndpointRole::H5CodeExchange), 2);
}

/// A token rejected again after the retry is an error, not a loop.
pub async fn persistent_token_rejection_fails_after_one_retry(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.fake.reset_calls();
    setup.inject(EndpointRole::UserDetail, Fault::TokenInvalid, Times::Always);
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    assert!(matches!(err, Error::TokenInvalid { .. }), "{err:?}");
    assert_eq!(
        setup.calls(EndpointRole::UserDetail),
        2,
        "one call and one retry"
    );
}

/// A used code is `InvalidCode`, and is never sent again.
pub async fn reused_code_is_rejected_and_not_retried(setup: Setup) {
    let sso = setup.sso();
    let code = AuthCode::new(setup.fake.issue_h5_code(&setup.fake.demo_user_id()));
    setup.h5_login_code(&sso, &code).await.expect("first use");
    setup.fake.reset_calls();
    let err = setup
        .h5_login_code(&sso, &code)
        .await
        .expect_err("second use must fail");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
    assert_eq!(
        setup.calls(EndpointRole::H5CodeExchange),
        1,
        "a used code was retried"
    );
}

/// A code older than five minutes is `InvalidCode`.
pub async fn expired_code_is_rejected(setup: Setup) {
    let sso = setup.sso();
    let code = AuthCode::new(setup.fake.issue_h5_code(&setup.fake.demo_user_id()));
    setup.fake.advance_clock(Duration::from_secs(6 * 60));
    let err = setup
        .h5_login_code(&sso, &code)
        .await
        .expect_err("expired code must fail");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
}

/// A code the platform never issued is `InvalidCode`.
pub async fn forged_code_is_rejected(setup: Setup) {
    let sso = setup.sso();
    let err = setup
        .h5_login_code(&sso, &AuthCode::new("forged-code"))
        .await
        .expect_err("forged code must fail");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
}

/// Rate limiting is a typed error (with the platform's hint where it gives one), not retried in
/// a loop.
pub async fn rate_limit_is_typed(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.fake.reset_calls();
    setup.inject(EndpointRole::UserDetail, Fault::RateLimited, Times::Always);
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(
        setup.calls(EndpointRole::UserDetail),
        1,
        "rate-limited call was retried"
    );
}

/// The non-JSON ban page is a typed error.
pub async fn rate_limit_page_is_typed(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.inject(
        EndpointRole::UserDetail,
        Fault::RateLimitPage,
        Times::Always,
    );
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    assert!(
        matches!(
            err,
            Error::RateLimited { .. }
                | Error::BadResponse {
                    kind: BadBody::Html,
                    ..
                }
        ),
        "{err:?}"
    );
}

/// An IP whitelist refusal tells the operator what to fix.
pub async fn ip_not_allowed_is_a_configuration_error(setup: Setup) {
    let sso = setup.sso();
    setup.inject(EndpointRole::AppToken, Fault::IpNotAllowed, Times::Always);
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    match &err {
        Error::Misconfigured { hint, .. } => {
            assert!(
                hint.to_lowercase().contains("ip"),
                "hint does not mention the IP list: {hint}"
            )
        }
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

/// A missing permission is a configuration error.
pub async fn permission_denied_is_a_configuration_error(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.inject(
        EndpointRole::UserDetail,
        Fault::PermissionDenied,
        Times::Always,
    );
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    assert!(matches!(err, Error::Misconfigured { .. }), "{err:?}");
}

/// "System busy" on a step without a code is retried and the login succeeds.
pub async fn system_busy_is_retried_on_detail(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    setup.fake.reset_calls();
    setup.inject(EndpointRole::UserDetail, Fault::SystemBusy, Times::Once);
    setup
        .h5_login(&sso)
        .await
        .expect("login after one busy answer");
    assert_eq!(setup.calls(EndpointRole::UserDetail), 2);
}

/// A fault and the check its error must pass.
type FaultCase = (Fault, fn(&Error) -> bool);

/// HTTP 5xx, HTML error pages, truncated, oversized and garbage bodies are typed errors.
pub async fn broken_responses_are_typed(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    let cases: Vec<FaultCase> = vec![
        (Fault::HttpStatus(503), |e| e.is_transient()),
        (Fault::HtmlErrorPage, |e| {
            matches!(
                e,
                Error::Upstream {
                    code: UpstreamCode::Http(502),
                    transient: true,
                    ..
                }
            )
        }),
        (Fault::TruncatedBody, |e| {
            matches!(
                e,
                Error::BadResponse {
                    kind: BadBody::Malformed,
                    ..
                }
            )
        }),
        (Fault::OversizedBody(5 << 20), |e| {
            matches!(
                e,
                Error::BadResponse {
                    kind: BadBody::TooLarge,
                    ..
                }
            )
        }),
        (Fault::GarbageBody, |e| {
            matches!(
                e,
                Error::BadResponse {
                    kind: BadBody::Malformed,
                    ..
                }
            )
        }),
    ];
    for (fault, expected) in cases {
        setup.fake.clear_faults();
        setup.inject(EndpointRole::UserDetail, fault.clone(), Times::Always);
        let err = setup.h5_login(&sso).await.expect_err("must fail");
        assert!(expected(&err), "{fault:?} gave {err:?}");
    }
    setup.fake.clear_faults();
    setup
        .h5_login(&sso)
        .await
        .expect("recovers once the faults stop");
}

/// An HTML error page with HTTP 502 (a proxy in front of the platform) is a transient
/// upstream failure — kind `upstream`, transient, so a gateway answers 503 with `Retry-After`
/// — not a bad answer, and it is not retried in process (so is a bare HTTP 503).
pub async fn html_error_page_is_a_transient_upstream_failure(setup: Setup) {
    let sso = setup.sso();
    setup.h5_login(&sso).await.expect("cold login");
    for fault in [Fault::HtmlErrorPage, Fault::HttpStatus(503)] {
        setup.fake.clear_faults();
        setup.fake.reset_calls();
        setup.inject(EndpointRole::UserDetail, fault.clone(), Times::Always);
        let err = setup.h5_login(&sso).await.expect_err("must fail");
        assert!(
            matches!(
                err,
                Error::Upstream {
                    code: UpstreamCode::Http(502 | 503),
                    transient: true,
                    ..
                }
            ),
            "{fault:?}: {err:?}"
        );
        assert!(err.is_transient(), "{fault:?}");
        assert_eq!(err.kind(), "upstream", "{fault:?}: not bad_response");
        assert_eq!(
            setup.calls(EndpointRole::UserDetail),
            1,
            "{fault:?} was retried in process"
        );
    }
    setup.fake.clear_faults();
    setup.h5_login(&sso).await.expect("recovers");
}

/// A wrong app secret is a configuration error whose hint points at the credentials (what the
/// platform answers where the secret is first sent: DingTalk 40096 at `gettoken`, Feishu 10014
/// or v2's `invalid_client`, WeCom 40001), refused once and never retried, and the wrong value
/// appears in no error text.
pub async fn wrong_secret_is_a_configuration_error(setup: Setup) {
    let wrong = "wrong-secret-for-conformance";
    let mut config = setup.config.clone();
    config["app_secret"] = Value::String(wrong.into());
    let config: PlatformConfig = serde_json::from_value(config).expect("config");
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .expect("building Sso");
    setup.fake.reset_calls();
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    assert_eq!(
        setup.fake.total_calls(),
        1,
        "one refused call (the first that sends the secret), never retried"
    );
    match (&err, setup.expected.wrong_secret_hint) {
        (Error::Misconfigured { hint, .. }, Some(word)) => assert!(
            hint.to_lowercase().contains(word),
            "hint does not say {word:?}: {hint}"
        ),
        (Error::Misconfigured { .. }, None) => {}
        (other, _) => panic!("expected Misconfigured, got {other:?}"),
    }
    assert!(!format!("{err} {err:?}").contains(wrong), "{err}");
}

/// Rate limiting anywhere is typed and not retried: at the app-token endpoint (never re-hit in
/// a loop) and at the web flow's profile call (DingTalk's v1.0 API answers it with HTTP 403
/// `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi`, which is not a missing permission).
pub async fn rate_limits_on_token_and_web_profile_are_typed(setup: Setup) {
    let sso = setup.sso();
    setup.inject(EndpointRole::AppToken, Fault::RateLimited, Times::Always);
    let err = setup.h5_login(&sso).await.expect_err("must fail");
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(
        setup.calls(EndpointRole::AppToken),
        1,
        "the token endpoint was re-hit"
    );
    setup.fake.clear_faults();
    if setup
        .fake
        .endpoints_for(EndpointRole::WebUserInfo)
        .is_empty()
    {
        return;
    }
    // A fresh cache: the first one may hold the token endpoint's back-off.
    let sso = setup.sso();
    setup.fake.reset_calls();
    setup.inject(EndpointRole::WebUserInfo, Fault::RateLimited, Times::Always);
    let err = setup
        .web_login(&sso, &setup.fake.demo_user_id())
        .await
        .expect_err("must fail");
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(setup.calls(EndpointRole::WebUserInfo), 1, "retried");
}

/// A hung upstream is a timeout, bounded by the configured request timeout.
pub async fn hung_upstream_times_out(setup: Setup) {
    let sso = setup.sso_with(HttpConfig {
        request_timeout: Duration::from_millis(500),
        ..HttpConfig::default()
    });
    setup.h5_login(&sso).await.expect("cold login");
    setup.inject(EndpointRole::UserDetail, Fault::Hang, Times::Always);
    let started = std::time::Instant::now();
    let err = setup.h5_login(&sso).await.expect_err("must time out");
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "timeouts are not bounded"
    );
}

/// A person from another organisation does not get a profile for this tenant.
pub async fn outsider_is_not_in_tenant(setup: Setup) {
    let Some(outsider) = setup.fake.outsider_user_id() else {
        return;
    };
    let sso = setup.sso();
    let err = setup
        .web_login(&sso, &outsider)
        .await
        .expect_err("outsider must fail");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
}

/// A code alone is redeemed only for platforms whose registration declares a JSAPI login:
/// any other platform refuses it before an upstream call, even a code the platform issued.
pub async fn stateless_codes_follow_the_declared_surface(setup: Setup) {
    let sso = setup.sso();
    let prepared = sso
        .prepare(&tenant(), setup.platform())
        .await
        .expect("prepare");
    let code = AuthCode::new(setup.fake.issue_h5_code(&setup.fake.demo_user_id()));
    setup.fake.reset_calls();
    let result = prepared.login_with_code(&code).await;
    if prepared.registration().in_client.redeems_without_state() {
        result.expect("a JSAPI code is redeemed without state");
        return;
    }
    let err = result.expect_err("a redirect code posted alone must be refused");
    assert!(
        matches!(err, Error::RedirectLoginRequired { .. }),
        "{err:?}"
    );
    assert_eq!(setup.fake.total_calls(), 0, "the platform was called");
    // The same code still completes the redirect login it belongs to.
    setup
        .h5_login_code(&sso, &code)
        .await
        .expect("redirect login with the code");
}

/// Unknown tenants, unknown platforms and disabled configurations are typed errors.
pub async fn unknown_targets_are_typed(setup: Setup) {
    let sso = setup.sso();
    let code = AuthCode::new("whatever");
    let err = sso
        .login_with_code(&TenantId::new("nobody").unwrap(), setup.platform(), &code)
        .await
        .expect_err("unknown tenant");
    assert!(matches!(err, Error::UnknownTenant { .. }), "{err:?}");
    let err = sso
        .login_with_code(&tenant(), "no-such-platform", &code)
        .await
        .expect_err("unknown platform");
    assert!(
        matches!(&err, Error::UnknownPlatform { registered, .. } if registered.contains(&setup.platform())),
        "{err:?}"
    );
    let mut disabled = setup.config.clone();
    disabled["enabled"] = Value::Bool(false);
    let config: PlatformConfig = serde_json::from_value(disabled).unwrap();
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap();
    let err = setup.h5_login(&sso).await.expect_err("disabled");
    assert!(matches!(err, Error::Disabled { .. }), "{err:?}");
}

/// No secret, token, code or state appears in any log line (captured at TRACE) or error text,
/// across successful logins and failures.
pub async fn secrets_never_leak(setup: Setup) {
    let logs = TraceCapture::start();

    let sso = setup.sso();
    let secret = setup.fake.credentials().app_secret;
    let mut secrets = vec![secret];
    let mut texts = Vec::new();

    let code = setup.fake.issue_h5_code(&setup.fake.demo_user_id());
    secrets.push(code.clone());
    let login = setup
        .h5_login_code(&sso, &AuthCode::new(code.clone()))
        .await
        .expect("h5 login");
    texts.push(format!("{login:?}"));
    let err = setup
        .h5_login_code(&sso, &AuthCode::new(code))
        .await
        .expect_err("reuse");
    texts.push(format!("{err} {err:?}"));
    let (web, web_secrets) = setup
        .web_login_keeping(&sso, &setup.fake.demo_user_id())
        .await
        .expect("web login");
    texts.push(format!("{web:?}"));
    secrets.extend(web_secrets);
    if let Some(t) = &web.user_token {
        secrets.push(t.access_token.expose().to_string());
        if let Some(r) = &t.refresh_token {
            secrets.push(r.expose().to_string());
        }
    }
    let prepared = sso
        .prepare(&tenant(), setup.platform())
        .await
        .expect("prepare");
    let handler = prepared.handler();
    let app_token = handler.fetch_app_token().await.expect("app token");
    secrets.push(app_token.token.expose().to_string());
    setup.inject(EndpointRole::UserDetail, Fault::TokenInvalid, Times::Always);
    let err = setup.h5_login(&sso).await.expect_err("token invalid");
    texts.push(format!("{err} {err:?}"));
    setup.fake.clear_faults();
    for fault in [
        Fault::TruncatedBody,
        Fault::HtmlErrorPage,
        Fault::GarbageBody,
    ] {
        setup.inject(EndpointRole::UserDetail, fault, Times::Always);
        let err = setup.h5_login(&sso).await.expect_err("fault");
        texts.push(format!("{err} {err:?}"));
        setup.fake.clear_faults();
    }
    setup.inject(EndpointRole::AppToken, Fault::IpNotAllowed, Times::Always);
    setup.fake.revoke_app_tokens();
    let err = setup.h5_login(&sso).await.expect_err("ip");
    texts.push(format!("{err} {err:?}"));

    let logs = logs.text();
    assert!(
        logs.contains("login"),
        "the log capture saw nothing: {logs}"
    );
    for s in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!logs.contains(s.as_str()), "a secret leaked into the logs");
        for t in &texts {
            assert!(
                !t.contains(s.as_str()),
                "a secret leaked into an error or Debug text: {t}"
            );
        }
    }
}

/// Every log line of the current thread at TRACE, except the fake platform's and the HTTP
/// server's own (not shipped code), captured while this lives: use it in a
/// `#[tokio::test]` (current-thread runtime) so the spawned tasks log here too.
///
/// ```no_run
/// let logs = unilogin_conformance::TraceCapture::start();
/// tracing::info!("a line");
/// assert!(logs.text().contains("a line"));
/// ```
pub struct TraceCapture {
    logs: Arc<Mutex<Vec<u8>>>,
    // Dropped first: the subscriber, then the turn.
    _guard: tracing::subscriber::DefaultGuard,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// One capture at a time per test binary: `tracing` keeps one interest cache for every
/// callsite across threads, recomputed as dispatchers come and go.
static CAPTURE_TURN: Mutex<()> = Mutex::new(());

impl TraceCapture {
    /// Starts capturing (until dropped), after any other capture of this test binary ended.
    pub fn start() -> Self {
        let turn = CAPTURE_TURN
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // With a single registered dispatcher `tracing` computes a new callsite's interest
        // from the *registering thread's* default only, so a test thread without a capture
        // could cache "never" for a callsite this capture needs. A second, silent dispatcher
        // kept for the life of the binary makes it ask every live dispatcher instead.
        static SILENT: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
        SILENT.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
        let logs = Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let logs = logs.clone();
            move || LogWriter(logs.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "trace,unilogin_testkit=off,axum=off,tower=off,tower_http=off,hyper=off,hyper_util=off",
            ))
            .with_writer(writer)
            .with_ansi(false)
            .finish();
        // Registering the subscriber recomputes every callsite's interest.
        Self {
            logs,
            _guard: tracing::subscriber::set_default(subscriber),
            _turn: turn,
        }
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        let logs = self
            .logs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        String::from_utf8_lossy(&logs).into_owned()
    }
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Expands the suite for a platform: `conformance_suite!(setup_fn);` where `setup_fn` is an
/// `async fn() -> Setup`.
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_suite!(@cases $setup;
            h5_login_maps_the_demo_user,
            web_login_maps_the_demo_user,
            warm_logins_cost_only_the_flow_calls,
            revoked_app_token_is_replaced_once,
            token_rejected_at_code_step_retries_once,
            persistent_token_rejection_fails_after_one_retry,
            reused_code_is_rejected_and_not_retried,
            expired_code_is_rejected,
            forged_code_is_rejected,
            rate_limit_is_typed,
            rate_limit_page_is_typed,
            ip_not_allowed_is_a_configuration_error,
            permission_denied_is_a_configuration_error,
            system_busy_is_retried_on_detail,
            broken_responses_are_typed,
            html_error_page_is_a_transient_upstream_failure,
            wrong_secret_is_a_configuration_error,
            rate_limits_on_token_and_web_profile_are_typed,
            hung_upstream_times_out,
            outsider_is_not_in_tenant,
            unknown_targets_are_typed,
            stateless_codes_follow_the_declared_surface,
        );
        #[tokio::test(flavor = "current_thread")]
        async fn secrets_never_leak() {
            $crate::secrets_never_leak($setup().await).await;
        }
    };
    (@cases $setup:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                $crate::$case($setup().await).await;
            }
        )*
    };
}
