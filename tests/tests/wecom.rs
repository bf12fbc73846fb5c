//! The conformance suite against the WeCom fake — a post-2022 app with `snsapi_base` and with
//! `snsapi_privateinfo`, and a pre-2022 app on the legacy code exchange and QR connect page —
//! plus WeCom's own cases: per-app tokens, the in-client OAuth link end to end, `state` rules,
//! trusted domain, `user_ticket` errors, non-members and linked corps.

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin_conformance::{CALLBACK, Expected, Setup, TENANT, conformance_suite, tenant};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::mapping::SubjectKind;
use unilogin_core::sso::Sso;
use unilogin_core::token_cache::{FetchedToken, TokenCache};
use unilogin_core::web_login::Callback;
use unilogin_core::{AccessToken, AuthCode, Error, Flow, Login, TenantId};
use unilogin_testkit::wecom::{
    self, DEFAULT_AGENT_ID, DEMO_USER_ID, FakeWeCom, LEGACY_AGENT_ID, OAuthScope, OUTSIDER_USER_ID,
    SECOND_AGENT_ID, endpoints as ep,
};
use unilogin_testkit::{FakeUser, Fault, Times};
use url::Url;

// Link the platform crate so its registration is collected.
use unilogin_testkit::FakePlatform as _;
use unilogin_wecom as _;

/// The demo person as `user/get` shows them to every app.
fn base_profile() -> Expected {
    Expected {
        subject: SubjectKind::UserId,
        user_id: Some(DEMO_USER_ID.into()),
        union_id: Some("fake_open_userid_0001".into()),
        web_open_id: None,
        name: Some("Zhang San".into()),
        mobile: None,
        mobile_country_code: None,
        email: None,
        avatar: None,
        employee_no: None,
        job_title: Some("Engineer".into()),
        department_ids: vec!["1".into(), "2".into()],
        web_user_token: false,
        code_app_token: false,
        wrong_secret_hint: Some("secret"),
        // getuserinfo + user/get
        warm_h5_calls: 2,
        warm_web_calls: 2,
        web_profile: None,
    }
}

/// With the sensitive fields (privateinfo ticket, or an app created before 2022-06-20).
fn full_profile() -> Expected {
    Expected {
        mobile: Some("13800000000".into()),
        email: Some("user001@example.com".into()),
        avatar: Some("https://example.com/avatar/user001/0".into()),
        ..base_profile()
    }
}

fn config(fake: &FakeWeCom, options: Value) -> Value {
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    json!({
        "tenant": TENANT,
        "platform": "wecom",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "agent_id": creds.agent_id,
        "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
        "redirect_uris": [CALLBACK],
        "options": options,
    })
}

/// A post-2022 app with the default `snsapi_base`: no sensitive fields in either flow.
async fn setup() -> Setup {
    let fake = wecom::start().await;
    let config = config(&fake, json!({}));
    Setup {
        fake: Arc::new(fake),
        config,
        expected: base_profile(),
    }
}

conformance_suite!(setup);

/// `snsapi_privateinfo`: H5 logins read the sensitive fields with the `user_ticket`; web
/// logins get no ticket and so none of them.
mod privateinfo {
    use super::*;

    async fn setup() -> Setup {
        let fake = wecom::start().await;
        fake.set_h5_scope(OAuthScope::PrivateInfo);
        let config = config(&fake, json!({ "scope": "snsapi_privateinfo" }));
        Setup {
            fake: Arc::new(fake),
            config,
            expected: Expected {
                // getuserinfo + user/get + getuserdetail
                warm_h5_calls: 3,
                web_profile: Some(Box::new(base_profile())),
                ..full_profile()
            },
        }
    }

    conformance_suite!(setup);
}

/// An app created before 2022-06-20 (`user/get` still returns everything), on the legacy
/// `user/getuserinfo` exchange (capitalised `UserId`) and the old QR connect page.
mod legacy_app {
    use super::*;

    async fn setup() -> Setup {
        let fake = wecom::start().await;
        assert!(fake.use_app(LEGACY_AGENT_ID));
        let config = config(
            &fake,
            json!({ "userinfo_api": "legacy", "web_login": "qrconnect" }),
        );
        Setup {
            fake: Arc::new(fake),
            config,
            expected: full_profile(),
        }
    }

    conformance_suite!(setup);
}

fn sso_for(configs: Vec<Value>, cache: Option<TokenCache>) -> Sso {
    let configs = configs
        .into_iter()
        .map(|c| serde_json::from_value::<PlatformConfig>(c).expect("valid config"))
        .collect();
    let mut builder = Sso::builder(StaticConfig::new(configs));
    if let Some(cache) = cache {
        builder = builder.token_cache(cache);
    }
    builder.build().expect("sso")
}

/// An in-client login: WeCom's codes come back on its OAuth redirect, so the code finishes the
/// `Flow::H5` redirect login it belongs to (never the stateless exchange).
async fn h5_login(sso: &Sso, tenant: &TenantId, code: String) -> Result<Login, Error> {
    redirect_login(sso, tenant, Flow::H5, code).await
}

async fn redirect_login(
    sso: &Sso,
    tenant: &TenantId,
    flow: Flow,
    code: String,
) -> Result<Login, Error> {
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(tenant, "wecom", flow, &redirect)
        .await?;
    let callback = Callback {
        code: AuthCode::new(code),
        state: start.pending.state.clone(),
        iss: None,
    };
    sso.finish_web_login(&start.pending, &callback).await
}

/// The token the cache holds for a tenant's handler (fails if none is cached).
async fn cached_token(sso: &Sso, tenant: &TenantId) -> AccessToken {
    let key = sso
        .prepare(tenant, "wecom")
        .await
        .expect("prepare")
        .handler()
        .token_key()
        .expect("WeCom handlers use an app token");
    sso.token_cache()
        .get(&key, || async {
            Err::<FetchedToken, _>(Error::Internal("no cached token".into()))
        })
        .await
        .expect("a cached token")
}

/// Two apps (agentids, secrets) of one corp, served through one shared token cache, each get
/// their own token — both when they are two services of the same tenant sharing a cache, and
/// two tenants of one `Sso`. Keying on the corpid alone would hand app B the token of app A, and
/// the fake (whose codes are bound to the app) would then refuse B's code.
#[tokio::test]
async fn two_apps_of_one_corp_get_different_tokens() {
    let fake = wecom::start().await;
    let a = config(&fake, json!({}));
    let mut b = a.clone();
    let second = fake.app_credentials(SECOND_AGENT_ID).expect("second app");
    b["agent_id"] = json!(second.agent_id);
    b["app_secret"] = json!(second.app_secret);

    // Two services (one per app) of the same tenant sharing one cache (e.g. one Redis).
    let cache = TokenCache::new();
    let sso_a = sso_for(vec![a.clone()], Some(cache.clone()));
    let sso_b = sso_for(vec![b.clone()], Some(cache.clone()));
    let code_a = fake.issue_oauth_code(Some(DEFAULT_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
    let code_b = fake.issue_oauth_code(Some(SECOND_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
    h5_login(&sso_a, &tenant(), code_a)
        .await
        .expect("app A login");
    h5_login(&sso_b, &tenant(), code_b)
        .await
        .expect("app B login");
    assert_eq!(fake.calls(ep::GETTOKEN), 2, "one token per app");
    let token_a = cached_token(&sso_a, &tenant()).await;
    let token_b = cached_token(&sso_b, &tenant()).await;
    assert_ne!(token_a.expose(), token_b.expose(), "apps share a token");
    assert_eq!(
        Some(token_a.expose().to_string()),
        fake.mint_app_token(DEFAULT_AGENT_ID)
    );
    assert_eq!(
        Some(token_b.expose().to_string()),
        fake.mint_app_token(SECOND_AGENT_ID)
    );

    // Two tenants of one Sso, same corp, different apps.
    let mut a2 = a;
    a2["tenant"] = json!("acme-a");
    let mut b2 = b;
    b2["tenant"] = json!("acme-b");
    let sso = sso_for(vec![a2, b2], None);
    let (ta, tb) = (
        TenantId::new("acme-a").unwrap(),
        TenantId::new("acme-b").unwrap(),
    );
    for _ in 0..2 {
        let code_a = fake.issue_oauth_code(Some(DEFAULT_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
        let code_b = fake.issue_oauth_code(Some(SECOND_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
        h5_login(&sso, &ta, code_a).await.expect("tenant A");
        h5_login(&sso, &tb, code_b).await.expect("tenant B");
    }
    assert_ne!(
        cached_token(&sso, &ta).await.expose(),
        cached_token(&sso, &tb).await.expose()
    );
}

/// The control for the test above: the fake really refuses one app's code with another app's
/// token, so a shared token would have failed the logins.
#[tokio::test]
async fn a_code_of_one_app_is_refused_with_another_apps_token() {
    let fake = wecom::start().await;
    let a = config(&fake, json!({}));
    let sso = sso_for(vec![a], None);
    let code_b = fake.issue_oauth_code(Some(SECOND_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
    let err = h5_login(&sso, &tenant(), code_b)
        .await
        .expect_err("another app's code");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
}

fn form_fields(html: &str) -> Vec<(String, String)> {
    // The fake's first Approve form (the demo user sorts first: "outsider001" < "user001" is
    // false, so pick the form of the demo user explicitly).
    let start = html
        .find(&format!("data-user-id=\"{DEMO_USER_ID}\""))
        .expect("demo user listed");
    let form = &html[start
        ..html[start..]
            .find("</form>")
            .map(|e| start + e)
            .expect("form end")];
    form.split("<input type=\"hidden\" ")
        .skip(1)
        .filter_map(|input| {
            let name = input.split("name=\"").nth(1)?.split('"').next()?;
            let value = input.split("value=\"").nth(1)?.split('"').next()?;
            let unescape = |s: &str| {
                s.replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&#39;", "'")
                    .replace("&amp;", "&")
            };
            Some((unescape(name), unescape(value)))
        })
        .collect()
}

/// Opens `url` on the fake like the WeCom client does, approves as the demo user and returns
/// the callback URL the fake redirects to.
async fn follow_link(url: &Url) -> Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut page_url = url.clone();
    page_url.set_fragment(None);
    let page = http.get(page_url.clone()).send().await.unwrap();
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    let fields = form_fields(&page.text().await.unwrap());
    let approve = page_url.join("/wwlogin/sso/approve").unwrap();
    let resp = http.post(approve).form(&fields).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
}

/// The in-client OAuth link end to end with `snsapi_privateinfo`: the URL's exact shape, the
/// fake's page, the callback's `code` and `state`, and a profile with the sensitive fields.
#[tokio::test]
async fn in_client_oauth_link_end_to_end_with_privateinfo() {
    let fake = wecom::start().await;
    let sso = sso_for(
        vec![config(&fake, json!({ "scope": "snsapi_privateinfo" }))],
        None,
    );
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&tenant(), "wecom", Flow::H5, &redirect)
        .await
        .expect("link");
    let url = &start.url;
    assert_eq!(url.path(), "/connect/oauth2/authorize");
    assert_eq!(url.fragment(), Some("wechat_redirect"));
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let keys: Vec<&str> = q.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "appid",
            "redirect_uri",
            "response_type",
            "scope",
            "state",
            "agentid"
        ]
    );
    assert!(q.contains(&("scope".into(), "snsapi_privateinfo".into())));
    assert!(q.contains(&("agentid".into(), DEFAULT_AGENT_ID.into())));
    assert!(q.contains(&("appid".into(), fake.credentials().corp_id)));

    let callback = follow_link(url).await;
    let callback = Callback::from_query(callback.query_pairs()).expect("callback");
    assert!(callback.state_matches(&start.pending));
    let login = sso
        .finish_web_login(&start.pending, &callback)
        .await
        .expect("login");
    assert_eq!(login.flow, Flow::H5);
    assert_eq!(login.profile.mobile.as_deref(), Some("13800000000"));
    assert_eq!(login.profile.email.as_deref(), Some("user001@example.com"));
    assert_eq!(
        login.profile.extra.get("gender"),
        Some(&json!("1")),
        "gender from getuserdetail"
    );
    assert_eq!(fake.calls(ep::AUTH_GETUSERDETAIL), 1);
}

/// The web login page (default) and the QR connect page (option) carry what WeCom needs, and
/// the approved code logs the user in.
#[tokio::test]
async fn web_login_pages_end_to_end() {
    for (option, path) in [
        (json!({}), "/wwlogin/sso/login"),
        (json!({ "web_login": "qrconnect" }), "/wwopen/sso/qrConnect"),
    ] {
        let fake = wecom::start().await;
        let sso = sso_for(vec![config(&fake, option)], None);
        let redirect = Url::parse(CALLBACK).unwrap();
        let start = sso
            .start_web_login(&tenant(), "wecom", Flow::Web, &redirect)
            .await
            .expect("url");
        assert_eq!(start.url.path(), path);
        let callback = follow_link(&start.url).await;
        let callback = Callback::from_query(callback.query_pairs()).expect("callback");
        assert!(callback.state_matches(&start.pending));
        let login = sso
            .finish_web_login(&start.pending, &callback)
            .await
            .expect("web login");
        assert_eq!(login.profile.user_id.as_deref(), Some(DEMO_USER_ID));
        assert_eq!(
            fake.calls(ep::AUTH_GETUSERDETAIL),
            0,
            "web logins have no ticket"
        );
    }
}

/// WeCom's `state` rule (1-128 ASCII letters and digits, errcode 84025 otherwise) holds for
/// every state the core generates, and a code posted without its state is refused before any
/// upstream call.
#[tokio::test]
async fn core_states_satisfy_wecom_and_stateless_codes_are_refused() {
    let fake = wecom::start().await;
    let sso = sso_for(vec![config(&fake, json!({}))], None);
    let redirect = Url::parse(CALLBACK).unwrap();
    for _ in 0..20 {
        let start = sso
            .start_web_login(&tenant(), "wecom", Flow::H5, &redirect)
            .await
            .expect("link");
        assert!(unilogin_wecom::is_valid_h5_state(
            start.pending.state.expose()
        ));
    }
    let code = AuthCode::new(fake.approve_web_login(DEMO_USER_ID));
    fake.reset_calls();
    let err = sso
        .login_with_code(&tenant(), "wecom", &code)
        .await
        .expect_err("a web code posted alone");
    assert!(
        matches!(err, Error::RedirectLoginRequired { .. }),
        "{err:?}"
    );
    assert_eq!(fake.total_calls(), 0);
}

/// A callback on a domain that is not the app's trusted domain: 50001 at the exchange, a
/// configuration error that names the setting.
#[tokio::test]
async fn untrusted_redirect_domain_is_a_configuration_error() {
    let fake = wecom::start().await;
    let sso = sso_for(vec![config(&fake, json!({}))], None);
    let creds = fake.credentials();
    let mut link = Url::parse(fake.base_url()).unwrap();
    link.set_path("/connect/oauth2/authorize");
    link.query_pairs_mut()
        .append_pair("appid", &creds.corp_id)
        .append_pair("redirect_uri", "https://untrusted.invalid/cb")
        .append_pair("response_type", "code")
        .append_pair("scope", "snsapi_base")
        .append_pair("state", "s1")
        .append_pair("agentid", &creds.agent_id);
    let callback = follow_link(&link).await;
    let code = callback
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let err = h5_login(&sso, &tenant(), code).await.expect_err("50001");
    match &err {
        Error::Misconfigured { hint, .. } => assert!(hint.contains("可信域名"), "{hint}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
}

/// A wrong secret at `gettoken` (40001) tells the operator to fix `app_secret`, and is not
/// mistaken for a stale token.
#[tokio::test]
async fn wrong_secret_at_gettoken_names_app_secret() {
    let fake = wecom::start().await;
    let mut c = config(&fake, json!({}));
    c["app_secret"] = json!("not-the-secret");
    let sso = sso_for(vec![c], None);
    let err = h5_login(&sso, &tenant(), fake.issue_h5_code(DEMO_USER_ID))
        .await
        .expect_err("wrong secret");
    match &err {
        Error::Misconfigured { hint, .. } => assert!(hint.contains("app_secret"), "{hint}"),
        other => panic!("expected Misconfigured, got {other:?}"),
    }
    assert_eq!(fake.calls(ep::GETTOKEN), 1, "no retry on a bad secret");
}

/// A `user_ticket` that expired (84014) or is invalid (84015) means "go through the link
/// again": `InvalidCode`, and the spent code is not exchanged again.
#[tokio::test]
async fn user_ticket_errors_are_invalid_code_and_not_retried() {
    for errcode in [84014, 84015] {
        let fake = wecom::start().await;
        fake.set_h5_scope(OAuthScope::PrivateInfo);
        let sso = sso_for(
            vec![config(&fake, json!({ "scope": "snsapi_privateinfo" }))],
            None,
        );
        fake.inject_fault(ep::AUTH_GETUSERDETAIL, Fault::code(errcode), Times::Always)
            .unwrap();
        let err = h5_login(&sso, &tenant(), fake.issue_h5_code(DEMO_USER_ID))
            .await
            .expect_err("ticket error");
        assert!(
            matches!(err, Error::InvalidCode { .. }),
            "{errcode}: {err:?}"
        );
        assert_eq!(fake.calls(ep::AUTH_GETUSERINFO), 1);
        assert_eq!(fake.calls(ep::AUTH_GETUSERDETAIL), 1);
    }
}

/// A non-member gets `openid` instead of `userid` in both flows: `NotInTenant`, no detail call.
#[tokio::test]
async fn non_member_is_not_in_tenant_in_both_flows() {
    let fake = wecom::start().await;
    let sso = sso_for(vec![config(&fake, json!({}))], None);
    let err = h5_login(&sso, &tenant(), fake.issue_h5_code(OUTSIDER_USER_ID))
        .await
        .expect_err("outsider");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    let err = redirect_login(
        &sso,
        &tenant(),
        Flow::Web,
        fake.approve_web_login(OUTSIDER_USER_ID),
    )
    .await
    .expect_err("outsider on the web");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    assert_eq!(fake.calls(ep::USER_GET), 0);
}

/// A member of a linked corp comes back as `CorpId/userid`: not a member of this tenant.
#[tokio::test]
async fn linked_corp_member_is_not_in_tenant() {
    let fake = wecom::start().await;
    fake.add_user(FakeUser::new("wwlinkedcorp/user9").name("Linked"));
    let sso = sso_for(vec![config(&fake, json!({}))], None);
    let err = h5_login(&sso, &tenant(), fake.issue_h5_code("wwlinkedcorp/user9"))
        .await
        .expect_err("linked corp");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    assert_eq!(fake.calls(ep::USER_GET), 0);
}

/// 45033 (concurrency limit) is rate limiting too; 40001 after `gettoken` is a stale token.
#[tokio::test]
async fn other_reference_codes_are_classified() {
    let fake = wecom::start().await;
    let sso = sso_for(vec![config(&fake, json!({}))], None);
    h5_login(&sso, &tenant(), fake.issue_h5_code(DEMO_USER_ID))
        .await
        .expect("cold login");

    fake.inject(ep::USER_GET, Fault::code(45033)).unwrap();
    let err = h5_login(&sso, &tenant(), fake.issue_h5_code(DEMO_USER_ID))
        .await
        .expect_err("45033");
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");

    fake.reset_calls();
    fake.inject(ep::AUTH_GETUSERINFO, Fault::code(40001))
        .unwrap();
    h5_login(&sso, &tenant(), fake.issue_h5_code(DEMO_USER_ID))
        .await
        .expect("40001 after gettoken: refetch and retry once");
    assert_eq!(fake.calls(ep::GETTOKEN), 1);

    for (code, check) in [
        (60111, "not_in_tenant"),
        (60011, "misconfigured"),
        (48002, "misconfigured"),
        (40029, "invalid_code"),
        (-1, "upstream"),
    ] {
        fake.clear_faults();
        fake.inject_fault(ep::USER_GET, Fault::code(code), Times::Always)
            .unwrap();
        let err = h5_login(&sso, &tenant(), fake.issue_h5_code(DEMO_USER_ID))
            .await
            .expect_err("fault");
        assert_eq!(err.kind(), check, "{code}: {err}");
    }
}
