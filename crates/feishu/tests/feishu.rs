//! unilogin-feishu against the test-kit fake: what the shared conformance suite does not cover
//! (single-use refresh tokens, the reissue rule's lifetimes, PKCE through the authorize page and
//! what it binds, scopes, the directory modes, hosts, the JSAPI login and configuration errors).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::mapping::SubjectKind;
use unilogin_core::platform::{AuthorizeRequest, Flow, Platform};
use unilogin_core::registry::PlatformContext;
use unilogin_core::sso::Sso;
use unilogin_core::token_cache::{MemoryStore, TokenCache};
use unilogin_core::web_login::{Callback, PendingLogin, WebLoginStart};
use unilogin_core::{AuthCode, Error, PkceVerifier, RefreshToken, State, TenantId};
use unilogin_feishu::Feishu;
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::Fault;
use unilogin_testkit::feishu::{
    self, DEMO_USER_ID, FakeFeishu, OUTSIDER_USER_ID, SCOPE_CONTACT_BASE, SCOPE_EMPLOYEE_ID,
    SCOPE_PHONE, endpoints as ep,
};
use url::Url;

const CALLBACK: &str = "https://app.example.com/auth/callback";

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn config(fs: &FakeFeishu, options: Value) -> PlatformConfig {
    let creds = fs.credentials();
    serde_json::from_value(json!({
        "tenant": "acme",
        "platform": "feishu",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "hosts": { "open": fs.base_url(), "accounts": fs.base_url() },
        "redirect_uris": [CALLBACK],
        "options": options,
    }))
    .unwrap()
}

fn sso(fs: &FakeFeishu, options: Value) -> Sso {
    sso_with_cache(fs, options, TokenCache::new())
}

/// A "replica": its own `Sso` and token cache (give each a cache over one shared store).
fn sso_with_cache(fs: &FakeFeishu, options: Value, cache: TokenCache) -> Sso {
    Sso::builder(StaticConfig::new(vec![config(fs, options)]))
        .token_cache(cache)
        .build()
        .unwrap()
}

fn build(config: &PlatformConfig) -> Result<Arc<dyn Platform>, Error> {
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    Feishu::build(PlatformContext {
        config,
        http: &http,
    })
}

fn handler(fs: &FakeFeishu, options: Value) -> Arc<dyn Platform> {
    build(&config(fs, options)).unwrap()
}

async fn h5(sso: &Sso, fs: &FakeFeishu, user: &str) -> Result<unilogin_core::Login, Error> {
    let code = AuthCode::new(fs.issue_h5_code(user));
    sso.login_with_code(&tenant(), "feishu", &code).await
}

async fn start(sso: &Sso) -> WebLoginStart {
    let redirect = Url::parse(CALLBACK).unwrap();
    sso.start_web_login(&tenant(), "feishu", Flow::Web, &redirect)
        .await
        .expect("start a web login")
}

/// The callback of `pending`'s login carrying `code`.
fn callback(code: String, pending: &PendingLogin) -> Callback {
    Callback {
        code: AuthCode::new(code),
        state: pending.state.clone(),
        iss: None,
    }
}

/// A web login whose code the fake's Approve helper issues (bound to neither the redirect URI
/// nor PKCE).
async fn web(sso: &Sso, fs: &FakeFeishu, user: &str) -> Result<unilogin_core::Login, Error> {
    let start = start(sso).await;
    let cb = callback(fs.approve_web_login(user), &start.pending);
    sso.finish_web_login(&start.pending, &cb).await
}

/// Sends the browser through the fake's authorize page and presses Approve for `user`:
/// the callback (its code bound to the page's `redirect_uri` and PKCE challenge).
async fn through_the_authorize_page(fs: &FakeFeishu, url: &Url, user: &str) -> Callback {
    let back = fs.approve_on_page(url, user).await.expect("approved");
    assert!(back.as_str().starts_with(CALLBACK), "{back}");
    Callback::from_query(back.query_pairs()).expect("a code and the state")
}

/// `pending` with another PKCE verifier.
fn with_verifier(pending: &PendingLogin, verifier: &str) -> PendingLogin {
    PendingLogin {
        pkce_verifier: PkceVerifier::new(verifier),
        ..pending.clone()
    }
}

async fn refresh_token_of(sso: &Sso, fs: &FakeFeishu) -> RefreshToken {
    let login = web(sso, fs, DEMO_USER_ID).await.expect("web login");
    login
        .user_token
        .and_then(|t| t.refresh_token)
        .expect("offline_access gives a refresh token")
}

async fn concurrent_refreshes_collapse(token_api: &str, endpoint: &str) {
    let fs = feishu::start().await;
    if token_api == "v1" {
        fs.set_user_token_api(feishu::UserTokenApi::V1Oidc);
    }
    let sso = sso(&fs, json!({ "token_api": token_api }));
    let refresh = refresh_token_of(&sso, &fs).await;
    fs.reset_calls();
    // Slow the refresh down so that both callers are surely waiting at the same time.
    fs.inject(endpoint, Fault::Delay(Duration::from_millis(200)))
        .unwrap();
    let acme = tenant();
    let (a, b) = tokio::join!(
        sso.refresh_user_token(&acme, "feishu", &refresh),
        sso.refresh_user_token(&acme, "feishu", &refresh),
    );
    let (a, b) = (a.expect("first caller"), b.expect("second caller"));
    assert_eq!(fs.calls(endpoint), 1, "one upstream refresh");
    assert_eq!(a.access_token.expose(), b.access_token.expose());
    let new_refresh = a.refresh_token.clone().expect("a new refresh token");
    assert_eq!(
        Some(new_refresh.expose()),
        b.refresh_token.as_ref().map(|r| r.expose())
    );
    assert_ne!(new_refresh.expose(), refresh.expose());
    // The old refresh token is spent; the new one works.
    let err = sso
        .refresh_user_token(&tenant(), "feishu", &refresh)
        .await
        .expect_err("a used refresh token");
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err:?}");
    sso.refresh_user_token(&tenant(), "feishu", &new_refresh)
        .await
        .expect("the new refresh token");
}

#[tokio::test]
async fn two_concurrent_v2_refreshes_make_one_upstream_call() {
    concurrent_refreshes_collapse("v2", ep::OAUTH_TOKEN_V2).await;
}

#[tokio::test]
async fn two_concurrent_v1_refreshes_make_one_upstream_call() {
    concurrent_refreshes_collapse("v1", ep::OIDC_REFRESH_ACCESS_TOKEN).await;
}

/// Two replicas (separate `Sso`s and token caches over one shared store): eight concurrent
/// refreshes of one single-use refresh token, spread across both, make one upstream call.
async fn refreshes_collapse_across_replicas(token_api: &str, endpoint: &str) {
    let fs = feishu::start().await;
    if token_api == "v1" {
        fs.set_user_token_api(feishu::UserTokenApi::V1Oidc);
    }
    let store = Arc::new(MemoryStore::new());
    let options = json!({ "token_api": token_api });
    let replicas = [
        sso_with_cache(
            &fs,
            options.clone(),
            TokenCache::builder().store(store.clone()).build(),
        ),
        sso_with_cache(
            &fs,
            options,
            TokenCache::builder().store(store.clone()).build(),
        ),
    ];
    let refresh = refresh_token_of(&replicas[0], &fs).await;
    fs.reset_calls();
    fs.inject(endpoint, Fault::Delay(Duration::from_millis(200)))
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (sso, refresh) = (replicas[i % 2].clone(), refresh.clone());
        tasks.push(tokio::spawn(async move {
            sso.refresh_user_token(&tenant(), "feishu", &refresh).await
        }));
    }
    let mut pairs = Vec::new();
    for t in tasks {
        let token = t.await.unwrap().expect("every caller gets the new token");
        let new_refresh = token.refresh_token.expect("a new refresh token");
        pairs.push((
            token.access_token.expose().to_owned(),
            new_refresh.expose().to_owned(),
        ));
    }
    assert_eq!(
        fs.calls(endpoint),
        1,
        "one upstream refresh for both replicas"
    );
    assert!(
        pairs.iter().all(|p| *p == pairs[0]),
        "{} distinct",
        pairs.len()
    );
    let (_, new_refresh) = &pairs[0];
    assert_ne!(new_refresh, refresh.expose());
    // The fake kept the single-use rule: the old token is dead upstream, the new one alive.
    assert_eq!(fs.live_refresh_tokens(), 1);
    // A replica asking with the old token shortly after gets the same pair from the store…
    let late = replicas[1]
        .refresh_user_token(&tenant(), "feishu", &refresh)
        .await
        .expect("kept for late replicas");
    assert_eq!(late.access_token.expose(), pairs[0].0);
    assert_eq!(fs.calls(endpoint), 1);
    // …and the new refresh token works on either replica.
    replicas[1]
        .refresh_user_token(&tenant(), "feishu", &RefreshToken::new(new_refresh))
        .await
        .expect("the new refresh token");
    assert_eq!(fs.calls(endpoint), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_v2_refreshes_across_two_replicas_make_one_upstream_call() {
    refreshes_collapse_across_replicas("v2", ep::OAUTH_TOKEN_V2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_v1_refreshes_across_two_replicas_make_one_upstream_call() {
    refreshes_collapse_across_replicas("v1", ep::OIDC_REFRESH_ACCESS_TOKEN).await;
}

#[tokio::test]
async fn app_token_lifetime_is_the_remaining_time_feishu_reports() {
    let fs = feishu::start().await;
    let h = handler(&fs, json!({ "token_api": "v1" }));
    for api in ["tenant", "app"] {
        let fetch = || async {
            match api {
                "tenant" => h.fetch_app_token().await,
                _ => h.fetch_code_token().await,
            }
        };
        fs.advance_clock(Duration::from_secs(7200));
        let first = fetch().await.unwrap();
        assert!(first.token.expose().starts_with("t-"));
        fs.advance_clock(Duration::from_secs(3000));
        let again = fetch().await.unwrap();
        assert_eq!(again.token.expose(), first.token.expose(), "{api}");
        assert!(
            again.expires_in <= first.expires_in - Duration::from_secs(2990),
            "{api}: {:?} is not the remaining lifetime",
            again.expires_in
        );
        // Past the 30-minute mark a new token comes with a full lifetime.
        fs.advance_clock(again.expires_in - Duration::from_secs(20 * 60));
        let fresh = fetch().await.unwrap();
        assert_ne!(fresh.token.expose(), first.token.expose());
        assert_eq!(fresh.expires_in, Duration::from_secs(7200));
    }
}

#[tokio::test]
async fn web_login_with_pkce_through_the_authorize_page() {
    let fs = feishu::start().await;
    let sso = sso(&fs, json!({ "scope": "offline_access" }));
    let start = start(&sso).await;
    assert_eq!(start.url.path(), "/open-apis/authen/v1/authorize");
    let cb = through_the_authorize_page(&fs, &start.url, DEMO_USER_ID).await;
    assert!(cb.state_matches(&start.pending));
    let wrong = sso
        .finish_web_login(&with_verifier(&start.pending, "not-the-verifier"), &cb)
        .await
        .expect_err("wrong verifier");
    assert!(matches!(wrong, Error::InvalidCode { .. }), "{wrong:?}");
    let login = sso
        .finish_web_login(&start.pending, &cb)
        .await
        .expect("login with the verifier");
    assert_eq!(login.profile.user_id.as_deref(), Some(DEMO_USER_ID));
    assert!(login.user_token.unwrap().refresh_token.is_some());
}

/// A v2 web login asks for a PKCE S256 challenge and its code exchange sends the verifier (the
/// fake refuses the code without the matching one); v1, whose exchange has no verifier
/// parameter, sends none.
#[tokio::test]
async fn v2_web_logins_send_a_pkce_s256_challenge() {
    for token_api in ["v2", "v1"] {
        let fs = feishu::start().await;
        if token_api == "v1" {
            fs.set_user_token_api(feishu::UserTokenApi::V1Oidc);
        }
        let sso = sso(&fs, json!({ "token_api": token_api }));
        let start = start(&sso).await;
        let q: std::collections::HashMap<_, _> = start.url.query_pairs().into_owned().collect();
        if token_api == "v2" {
            assert_eq!(q["code_challenge"], start.pending.code_challenge());
            assert_eq!(q["code_challenge_method"], "S256");
        } else {
            assert!(!q.contains_key("code_challenge"), "v1 sent a challenge");
        }
        assert_eq!(q["state"], start.pending.state.expose(), "{token_api}");
        let cb = through_the_authorize_page(&fs, &start.url, DEMO_USER_ID).await;
        if token_api == "v2" {
            let other = with_verifier(&start.pending, &"0".repeat(64));
            let err = sso
                .finish_web_login(&other, &cb)
                .await
                .expect_err("verifier");
            assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
        }
        let login = sso.finish_web_login(&start.pending, &cb).await;
        assert_eq!(
            login.expect(token_api).profile.user_id.as_deref(),
            Some(DEMO_USER_ID)
        );
    }
}

/// The stateless H5 endpoint is open to Feishu (its JSAPI codes carry no state), so a web code
/// must not be redeemable there: with v2 it is bound to its `redirect_uri` and PKCE challenge,
/// which the H5 exchange never sends. The refusal spends nothing: the web login still finishes.
#[tokio::test]
async fn a_v2_web_code_cannot_be_redeemed_as_an_h5_code() {
    let fs = feishu::start().await;
    let sso = sso(&fs, json!({}));
    let start = start(&sso).await;
    let cb = through_the_authorize_page(&fs, &start.url, DEMO_USER_ID).await;
    let err = sso
        .login_with_code(&tenant(), "feishu", &cb.code)
        .await
        .expect_err("a PKCE-bound web code posted as an H5 code");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
    let login = sso.finish_web_login(&start.pending, &cb).await;
    assert_eq!(
        login.expect("the web login").profile.user_id.as_deref(),
        Some(DEMO_USER_ID)
    );
}

/// What the crate docs say of v1: `authen/v1/oidc/access_token` takes no verifier, so a v1 web
/// code is redeemable without it, through the H5 endpoint too.
#[tokio::test]
async fn v1_web_codes_are_not_pkce_bound() {
    let fs = feishu::start().await;
    fs.set_user_token_api(feishu::UserTokenApi::V1Oidc);
    let sso = sso(&fs, json!({ "token_api": "v1" }));
    let start = start(&sso).await;
    let cb = through_the_authorize_page(&fs, &start.url, DEMO_USER_ID).await;
    let login = sso.login_with_code(&tenant(), "feishu", &cb.code).await;
    assert_eq!(
        login.expect("v1: not bound").profile.user_id.as_deref(),
        Some(DEMO_USER_ID)
    );
}

#[tokio::test]
async fn authorize_urls_follow_region_overrides_and_token_api() {
    let fs = feishu::start().await;
    let redirect = Url::parse(CALLBACK).unwrap();
    let state = State::new("s");
    let req = AuthorizeRequest {
        flow: Flow::Web,
        redirect_uri: &redirect,
        state: &state,
        nonce: "n",
        code_challenge: "abc",
    };
    let url = async |region: &str, hosts: Value, token_api: &str| {
        let mut cfg = config(&fs, json!({"region": region, "token_api": token_api}));
        cfg.hosts = serde_json::from_value(hosts).unwrap();
        build(&cfg).unwrap().authorize_url(&req).await.unwrap()
    };
    let feishu_url = url("feishu", json!({}), "v2").await;
    assert!(
        feishu_url
            .as_str()
            .starts_with("https://accounts.feishu.cn/open-apis/authen/v1/authorize?"),
        "{feishu_url}"
    );
    let q: std::collections::HashMap<_, _> = feishu_url.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], fs.credentials().app_key);
    assert_eq!(q["redirect_uri"], CALLBACK);
    assert_eq!(q["state"], "s");
    assert_eq!(q["code_challenge"], "abc");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(!q.contains_key("scope"));
    let lark = url("lark", json!({}), "v1").await;
    assert!(
        lark.as_str()
            .starts_with("https://accounts.larksuite.com/open-apis/authen/v1/authorize?"),
        "{lark}"
    );
    let q: std::collections::HashMap<_, _> = lark.query_pairs().into_owned().collect();
    assert!(!q.contains_key("code_challenge"), "v1 sends no challenge");
    let custom = url(
        "lark",
        json!({"accounts": "https://sso.example.com/base"}),
        "v2",
    )
    .await;
    assert!(
        custom
            .as_str()
            .starts_with("https://sso.example.com/base/open-apis/authen/v1/authorize?"),
        "{custom}"
    );
    let mut cfg = config(
        &fs,
        json!({ "scope": "  offline_access   contact:user.base:readonly " }),
    );
    cfg.hosts = Default::default();
    let scoped = build(&cfg).unwrap().authorize_url(&req).await.unwrap();
    let q: std::collections::HashMap<_, _> = scoped.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "offline_access contact:user.base:readonly");
}

#[tokio::test]
async fn configuration_errors_name_the_field() {
    let fs = feishu::start().await;
    let mut no_corp = config(&fs, json!({}));
    no_corp.corp_id = None;
    let e = build(&no_corp).unwrap_err().to_string();
    assert!(e.contains("corp_id") && e.contains("tenant_key"), "{e}");
    // A host the platform does not have (a typo) is refused rather than ignored.
    let mut typo = config(&fs, json!({}));
    typo.hosts = serde_json::from_value(json!({"acounts": "http://127.0.0.1:1/"})).unwrap();
    let e = build(&typo).unwrap_err().to_string();
    assert!(
        e.contains("hosts.acounts") && e.contains("open, accounts"),
        "{e}"
    );
    for (option, value) in [
        ("region", json!("mars")),
        ("token_api", json!("v3")),
        ("app_token_api", json!("marketplace")),
        ("contact", json!("sometimes")),
        ("department_id_type", json!("name")),
        ("region", json!(1)),
    ] {
        let e = build(&config(&fs, json!({ option: value })))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("options.{option}")), "{e}");
    }
    let h = handler(&fs, json!({}));
    assert!(!format!("{h:?}").contains(&fs.credentials().app_secret));
}

#[tokio::test]
async fn rate_limit_carries_the_reset_header() {
    let fs = feishu::start().await;
    let sso = sso(&fs, json!({}));
    h5(&sso, &fs, DEMO_USER_ID).await.expect("cold login");
    fs.inject(ep::CONTACT_USER, Fault::RateLimited).unwrap();
    let err = h5(&sso, &fs, DEMO_USER_ID).await.expect_err("rate limited");
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(
        err.retry_after(),
        Some(Duration::from_secs(feishu::RATE_LIMIT_RESET_SECS))
    );
}

#[tokio::test]
async fn a_rejected_user_token_is_reauth_and_never_resends_the_code() {
    let fs = feishu::start().await;
    let sso = sso(&fs, json!({}));
    h5(&sso, &fs, DEMO_USER_ID).await.expect("cold login");
    fs.reset_calls();
    fs.inject(ep::USER_INFO, Fault::code(99991677)).unwrap();
    let err = h5(&sso, &fs, DEMO_USER_ID)
        .await
        .expect_err("user token expired");
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err:?}");
    // Even a "tenant token invalid" code on the user-token call is not an app-token problem.
    fs.inject(ep::USER_INFO, Fault::code(99991663)).unwrap();
    let err = h5(&sso, &fs, DEMO_USER_ID).await.expect_err("reauth");
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err:?}");
    assert_eq!(fs.calls(ep::OAUTH_TOKEN_V2), 2, "each code sent once");
    assert_eq!(fs.calls(ep::TENANT_ACCESS_TOKEN), 0);
}

#[tokio::test]
async fn v2_errors_map_to_typed_errors() {
    let fs = feishu::start().await;
    let sso = sso(&fs, json!({}));
    for (code, check) in [
        (
            20010,
            (|e: &Error| matches!(e, Error::Misconfigured { hint, .. } if hint.contains("可用范围")))
                as fn(&Error) -> bool,
        ),
        (
            99991401,
            |e| matches!(e, Error::Misconfigured { hint, .. } if hint.contains("IP")),
        ),
        (20003, |e| matches!(e, Error::InvalidCode { .. })),
        (2200, |e| e.is_transient()),
    ] {
        fs.inject(ep::OAUTH_TOKEN_V2, Fault::code(code)).unwrap();
        let err = h5(&sso, &fs, DEMO_USER_ID).await.expect_err("must fail");
        assert!(check(&err), "{code}: {err:?}");
    }
    // A wrong secret is a configuration error at both token endpoints.
    let mut cfg = config(&fs, json!({}));
    cfg.app_secret = unilogin_core::AppSecret::new("wrong");
    let bad = Sso::builder(StaticConfig::new(vec![cfg])).build().unwrap();
    let err = h5(&bad, &fs, DEMO_USER_ID).await.expect_err("bad secret");
    assert!(matches!(err, Error::Misconfigured { .. }), "{err:?}");
}

#[tokio::test]
async fn contact_modes() {
    let fs = feishu::start().await;
    // Required (default): the refusal is a configuration error naming the permission.
    fs.revoke_permission(SCOPE_CONTACT_BASE);
    let err = h5(&sso(&fs, json!({})), &fs, DEMO_USER_ID)
        .await
        .expect_err("required");
    assert!(
        matches!(&err, Error::Misconfigured { hint, .. } if hint.contains("contact:user.base:readonly")),
        "{err:?}"
    );
    // Best effort: the login goes on without the directory fields.
    let login = h5(
        &sso(&fs, json!({"contact": "best_effort"})),
        &fs,
        DEMO_USER_ID,
    )
    .await
    .expect("best effort");
    assert_eq!(login.profile.user_id.as_deref(), Some(DEMO_USER_ID));
    assert!(login.profile.department_ids.is_empty());
    assert_eq!(login.profile.job_title, None);
    assert_eq!(login.profile.active, None);
    // Best effort still fails on what is not a refusal (rate limit).
    fs.inject(ep::CONTACT_USER, Fault::RateLimited).unwrap();
    let err = h5(
        &sso(&fs, json!({"contact": "best_effort"})),
        &fs,
        DEMO_USER_ID,
    )
    .await
    .expect_err("rate limit");
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    // Off: no directory call at all.
    fs.reset_calls();
    let login = h5(&sso(&fs, json!({"contact": "off"})), &fs, DEMO_USER_ID)
        .await
        .expect("off");
    assert_eq!(fs.calls(ep::CONTACT_USER), 0);
    assert_eq!(login.profile.name.as_deref(), Some("Zhang San"));
}

#[tokio::test]
async fn fields_without_their_scope_are_absent() {
    let fs = feishu::start().await;
    fs.revoke_permission(SCOPE_PHONE);
    let login = h5(&sso(&fs, json!({})), &fs, DEMO_USER_ID).await.unwrap();
    assert_eq!(login.profile.mobile, None);
    assert_eq!(login.profile.active, Some(true));
    assert_eq!(
        login.profile.extra.get("tenant_key"),
        Some(&json!(fs.tenant_key()))
    );
}

/// Many apps never get `contact:user.employee_id:readonly`: Feishu then sends no `user_id`
/// (neither `user_info` nor the directory). With the default subject (`union_id`) the login
/// succeeds and the profile says it has no `user_id`; a tenant that chose `user_id` as its
/// subject gets a mapping error naming it, never a profile keyed by another id.
#[tokio::test]
async fn without_the_employee_id_permission_the_default_policy_logs_in() {
    let fs = feishu::start().await;
    fs.revoke_permission(SCOPE_EMPLOYEE_ID);
    for login in [
        h5(&sso(&fs, json!({})), &fs, DEMO_USER_ID).await,
        web(&sso(&fs, json!({})), &fs, DEMO_USER_ID).await,
    ] {
        let p = login.expect("logs in without user_id").profile;
        assert_eq!(p.subject.kind, SubjectKind::UnionId);
        assert_eq!(p.subject.value, "on_fakeunionid0001");
        assert_eq!(p.user_id, None, "no user_id is invented");
        assert_eq!(p.union_id.as_deref(), Some("on_fakeunionid0001"));
        assert_eq!(p.open_id.as_deref(), Some("ou_fakeopenid0001"));
    }
    let mut strict = config(&fs, json!({}));
    strict.identity.subject = Some(SubjectKind::UserId);
    let sso = Sso::builder(StaticConfig::new(vec![strict]))
        .build()
        .unwrap();
    let err = h5(&sso, &fs, DEMO_USER_ID)
        .await
        .expect_err("the chosen subject is missing");
    match &err {
        Error::Mapping { message, .. } => {
            assert!(
                message.contains("required field `user_id` not found"),
                "{message}"
            )
        }
        other => panic!("expected Mapping, got {other:?}"),
    }
    // open_id as the subject: the app-scoped id.
    let mut open = config(&fs, json!({}));
    open.identity.subject = Some(SubjectKind::OpenId);
    let sso = Sso::builder(StaticConfig::new(vec![open])).build().unwrap();
    let p = h5(&sso, &fs, DEMO_USER_ID).await.unwrap().profile;
    assert_eq!(
        (p.subject.kind, p.subject.value.as_str()),
        (SubjectKind::OpenId, "ou_fakeopenid0001")
    );
}

#[tokio::test]
async fn outsiders_are_refused_before_the_directory_is_read() {
    let fs = feishu::start().await;
    let sso = sso(&fs, json!({}));
    fs.reset_calls();
    let err = web(&sso, &fs, OUTSIDER_USER_ID)
        .await
        .expect_err("outsider");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    assert_eq!(fs.calls(ep::CONTACT_USER), 0);
    // The H5 flow applies the same check.
    let err = h5(&sso, &fs, OUTSIDER_USER_ID)
        .await
        .expect_err("outsider h5");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
}

#[tokio::test]
async fn registration_and_user_agent_markers() {
    let r = unilogin_core::Registry::get("feishu").unwrap();
    assert_eq!(r.user_agent_markers, &["lark/", "larklocale", "feishu"]);
    let rules = unilogin_core::MappingRules::from_yaml("feishu", r.default_rules);
    assert!(rules.is_ok());
    let fs = feishu::start().await;
    let _: Arc<dyn Platform> = (r.build)(PlatformContext {
        config: &config(&fs, json!({})),
        http: &HttpClient::new(&HttpConfig::default()).unwrap(),
    })
    .unwrap();
    // Which token key: the directory's tenant token and v1's app token never share a cached
    // token; v2's code exchange uses none. `app_token_api` is still accepted, and changes
    // nothing.
    let v2 = handler(&fs, json!({}));
    let v1 = handler(&fs, json!({"token_api": "v1"}));
    let tenant_key = v2.token_key().unwrap();
    assert_eq!(v2.code_token_key(), None);
    assert_eq!(v1.token_key().unwrap(), tenant_key);
    assert_ne!(v1.code_token_key().unwrap(), tenant_key);
    let legacy = handler(&fs, json!({"app_token_api": "app"}));
    assert_eq!(legacy.token_key().unwrap(), tenant_key);
}

/// Each endpoint gets the token the official SDK declares for it: v1's
/// `authen/v1/oidc/access_token` the `app_access_token` (from `app_access_token/internal`; a
/// token obtained only as a tenant token is refused, 99991664), the directory the
/// `tenant_access_token`, v2's exchange none.
#[tokio::test]
async fn each_endpoint_gets_the_token_it_needs() {
    let fs = feishu::start_lark().await;
    fs.set_user_token_api(feishu::UserTokenApi::V1Oidc);
    let v1 = handler(&fs, json!({"token_api": "v1", "region": "lark"}));
    let tenant = v1.fetch_app_token().await.unwrap().token;
    fs.reset_calls();
    let code = AuthCode::new(fs.issue_h5_code(DEMO_USER_ID));
    let err = v1.identify_h5(Some(&tenant), &code).await.unwrap_err();
    assert!(
        err.is_token_invalid(),
        "a tenant token at oidc/access_token: {err:?}"
    );
    assert_eq!(fs.calls(ep::APP_ACCESS_TOKEN), 0);
    let app = v1.fetch_code_token().await.unwrap().token;
    assert_eq!(fs.calls(ep::APP_ACCESS_TOKEN), 1, "fetched as an app token");
    let identity = v1.identify_h5(Some(&app), &code).await.expect("app token");
    v1.user_detail(Some(&tenant), &identity)
        .await
        .expect("the directory with the tenant token");
    // Through the core: each kind is fetched once and cached apart.
    let v1_sso = sso(&fs, json!({"token_api": "v1", "region": "lark"}));
    fs.reset_calls();
    h5(&v1_sso, &fs, DEMO_USER_ID).await.expect("cold v1 login");
    assert_eq!(fs.calls(ep::APP_ACCESS_TOKEN), 1);
    assert_eq!(fs.calls(ep::TENANT_ACCESS_TOKEN), 1);
    fs.reset_calls();
    h5(&v1_sso, &fs, DEMO_USER_ID).await.expect("warm v1 login");
    assert_eq!(
        fs.calls(ep::APP_ACCESS_TOKEN) + fs.calls(ep::TENANT_ACCESS_TOKEN),
        0
    );
    // v2: only the directory's tenant token.
    fs.set_user_token_api(feishu::UserTokenApi::V2);
    let v2_sso = sso(&fs, json!({"region": "lark"}));
    fs.reset_calls();
    h5(&v2_sso, &fs, DEMO_USER_ID).await.expect("v2 login");
    assert_eq!(fs.calls(ep::APP_ACCESS_TOKEN), 0);
    assert_eq!(fs.calls(ep::TENANT_ACCESS_TOKEN), 1);
}

#[tokio::test]
async fn the_jsapi_login_is_tt_request_access_with_the_legacy_fallback() {
    let r = unilogin_core::Registry::get("feishu").unwrap();
    assert!(r.in_client.redeems_without_state());
    let jsapi = r.in_client.jsapi().expect("a JSAPI login");
    assert_eq!(jsapi.global, "tt");
    assert_eq!(
        jsapi.sdk_url,
        "https://lf1-cdn-tos.bytegoofy.com/goofy/lark/op/h5-js-sdk-1.5.16.js"
    );
    let js = jsapi.get_code.trim();
    assert!(js.starts_with("function (p)") && js.ends_with('}'), "{js}");
    for call in [
        "tt.requestAccess({ appID: p.appId, scopeList: []",
        "tt.requestAuthCode({ appId: p.appId",
        "h5sdk.ready(run)",
        "return new Promise(",
    ] {
        assert!(js.contains(call), "{call}");
    }
    let fs = feishu::start().await;
    let cfg = config(&fs, json!({}));
    let params = (jsapi.params)(&cfg);
    assert_eq!(params, json!({ "appId": fs.credentials().app_key }));
    assert!(!params.to_string().contains(&fs.credentials().app_secret));
}
