//! Service-provider (third-party) apps end to end against the fake: `suite_ticket` pushed as
//! an encrypted instruction callback into the `Sso`'s ticket store, the installation
//! (`create_auth` → `get_permanent_code`), the token chain (fetch counts), in-client OAuth and
//! `ServiceApp` web logins of authorising corps, membership, the app entry, typed errors, and
//! no secret in any log line.

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin_conformance::isv::{APP_TENANT, ORG_TENANTS, StoreAppSetup, TicketReceiver};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::events::{EventCodec, StoreAppChange};
use unilogin_core::platform::Flow;
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, Sso, TenantId};
use unilogin_testkit::wecom::endpoints as ep;
use unilogin_testkit::wecom::isv::FakeSuite;
use unilogin_testkit::wecom::{self, FakeWeCom};
use unilogin_testkit::{FakePlatform as _, FakeUser};
use unilogin_wecom::events::WeComEvents;
use url::Url;

const SUITE_ID: &str = "wwsuitefake0001";
const SUITE_SECRET: &str = "fake_wecom_suite_secret_0001";
const CORP_A: &str = "wwisvcorp000a";
const CORP_B: &str = "wwisvcorp000b";
const USER_A: &str = "isv_user_a";
const USER_B: &str = "isv_user_b";
const CALLBACK: &str = "https://app.example.com/auth/callback";

async fn fake() -> FakeWeCom {
    let fake = wecom::start().await;
    fake.add_suite(FakeSuite::new(SUITE_ID, SUITE_SECRET));
    fake.add_user(FakeUser::new(USER_A).name(USER_A).in_org(CORP_A));
    fake.add_user(FakeUser::new(USER_B).name(USER_B).in_org(CORP_B));
    fake
}

fn entry(fake: &FakeWeCom, tenant: &str, corp: Option<(&str, &str)>) -> PlatformConfig {
    let base = fake.base_url();
    let mut v = json!({
        "tenant": tenant, "platform": "wecom", "mode": "isv",
        "app_key": SUITE_ID, "app_secret": SUITE_SECRET,
        "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
        "redirect_uris": [CALLBACK],
    });
    if let Some((corp, code)) = corp {
        v["corp_id"] = json!(corp);
        v["permanent_code"] = json!(code);
    }
    serde_json::from_value(v).unwrap()
}

/// A receiver for the suite's instruction callbacks (receiveid = suite_id).
async fn receiver(fake: &FakeWeCom, sso: &Sso) -> (String, TicketReceiver) {
    let creds = fake.suite_event_credentials(SUITE_ID);
    let codec = WeComEvents::new(
        &creds.token,
        creds.aes_key.as_deref().unwrap(),
        &creds.receiver_id,
    )
    .unwrap();
    let rx = TicketReceiver::start(Arc::new(codec), sso.ticket_store().clone()).await;
    (rx.url.clone(), rx)
}

async fn login(
    sso: &Sso,
    tenant: &str,
    flow: Flow,
    fake: &FakeWeCom,
    user: &str,
) -> Result<String, Error> {
    let redirect = Url::parse(CALLBACK).unwrap();
    let tenant = TenantId::new(tenant).unwrap();
    let start = sso
        .start_web_login(&tenant, "wecom", flow, &redirect)
        .await?;
    let url = start.url.to_string();
    match flow {
        Flow::H5 => assert!(
            url.contains(&format!("appid={SUITE_ID}")) && !url.contains("agentid"),
            "{url}"
        ),
        Flow::Web => assert!(
            url.contains("login_type=ServiceApp") && url.contains(&format!("appid={SUITE_ID}")),
            "{url}"
        ),
    }
    let callback = Callback {
        code: AuthCode::new(fake.issue_3rd_code(SUITE_ID, user)),
        state: start.pending.state.clone(),
        iss: None,
    };
    let login = sso.finish_web_login(&start.pending, &callback).await?;
    Ok(login.profile.user_id.unwrap_or_default())
}

/// Before any ticket: typed `TicketMissing`; after the push, the installation through
/// `create_auth` gives the corp and its permanent code; two corps log in with one suite token
/// and one corp token each, whatever the number of logins.
#[tokio::test]
async fn install_then_logins_with_one_suite_token_and_one_corp_token_per_corp() {
    let fake = fake().await;
    fake.install_suite(SUITE_ID, CORP_B, "fake_permanent_code_b");
    let app = entry(&fake, "suite-app", None);
    let sso = Sso::builder(StaticConfig::new(vec![app.clone()]))
        .build()
        .unwrap();
    let (url, rx) = receiver(&fake, &sso).await;
    let app_tenant = TenantId::new("suite-app").unwrap();
    let prepared = sso.prepare(&app_tenant, "wecom").await.unwrap();
    let err = prepared
        .redeem_install_code(&unilogin_core::AppSecret::new("any-code"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TicketMissing { .. }), "{err:?}");

    let (delivery, _) = fake.push_suite_ticket(SUITE_ID, &url).await.unwrap();
    assert!(delivery.accepted(), "{:?}", delivery.verdict);
    let d = fake.push_create_auth(SUITE_ID, CORP_A, &url).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let seen = rx.seen.lock().unwrap().clone();
    let Some(StoreAppChange::InstallCode { code, .. }) = seen.get(1) else {
        panic!("{seen:?}")
    };
    assert!(!format!("{seen:?}").contains(code.expose()));
    let (org, info) = prepared.redeem_install_code(code).await.unwrap();
    assert_eq!(org.as_str(), CORP_A);
    assert_eq!(info.agent_id.as_deref(), Some("1000100"));
    let permanent = info.permanent_code.clone().unwrap();
    assert_eq!(
        Some(permanent.expose().to_string()),
        fake.permanent_code_of(SUITE_ID, CORP_A)
    );
    assert!(!format!("{info:?}").contains(permanent.expose()));
    // The code is single use.
    let again = prepared.redeem_install_code(code).await.unwrap_err();
    assert!(!matches!(again, Error::TicketMissing { .. }), "{again:?}");

    let configs = vec![
        app,
        entry(&fake, "corp-a", Some((CORP_A, permanent.expose()))),
        entry(&fake, "corp-b", Some((CORP_B, "fake_permanent_code_b"))),
    ];
    let sso2 = Sso::builder(StaticConfig::new(configs)).build().unwrap();
    let (url2, _) = receiver(&fake, &sso2).await;
    fake.push_suite_ticket(SUITE_ID, &url2).await.unwrap();
    let suite_calls = fake.calls(ep::GET_SUITE_TOKEN);
    let corp_calls = fake.calls(ep::GET_CORP_TOKEN);
    for _ in 0..3 {
        assert_eq!(
            login(&sso2, "corp-a", Flow::H5, &fake, USER_A)
                .await
                .unwrap(),
            USER_A
        );
        assert_eq!(
            login(&sso2, "corp-b", Flow::Web, &fake, USER_B)
                .await
                .unwrap(),
            USER_B
        );
    }
    assert_eq!(
        fake.calls(ep::GET_SUITE_TOKEN) - suite_calls,
        1,
        "one suite token"
    );
    assert_eq!(
        fake.calls(ep::GET_CORP_TOKEN) - corp_calls,
        2,
        "one corp token per corp"
    );
}

/// A member of another authorising corp, and a person of no authorising corp, are refused.
#[tokio::test]
async fn another_corps_member_and_an_outsider_are_not_in_tenant() {
    let fake = fake().await;
    fake.install_suite(SUITE_ID, CORP_A, "pc-a");
    fake.install_suite(SUITE_ID, CORP_B, "pc-b");
    fake.add_user(FakeUser::new("stranger").name("S").in_org("wwnotinstalled"));
    let configs = vec![entry(&fake, "corp-a", Some((CORP_A, "pc-a")))];
    let sso = Sso::builder(StaticConfig::new(configs)).build().unwrap();
    let (url, _) = receiver(&fake, &sso).await;
    fake.push_suite_ticket(SUITE_ID, &url).await.unwrap();
    for user in [USER_B, "stranger"] {
        let err = login(&sso, "corp-a", Flow::Web, &fake, user)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::NotInTenant { .. }), "{user}: {err:?}");
    }
    assert_eq!(
        login(&sso, "corp-a", Flow::Web, &fake, USER_A)
            .await
            .unwrap(),
        USER_A
    );
}

/// The app entry logs no one in; cancel_auth is an uninstallation; a wrong permanent code and a
/// missing one are typed.
#[tokio::test]
async fn the_app_entry_cancel_auth_and_configuration_errors() {
    let fake = fake().await;
    fake.install_suite(SUITE_ID, CORP_A, "pc-a");
    let configs = vec![
        entry(&fake, "suite-app", None),
        entry(&fake, "corp-a", Some((CORP_A, "not-the-code"))),
    ];
    let sso = Sso::builder(StaticConfig::new(configs)).build().unwrap();
    let (url, rx) = receiver(&fake, &sso).await;
    fake.push_suite_ticket(SUITE_ID, &url).await.unwrap();
    let redirect = Url::parse(CALLBACK).unwrap();
    let err = sso
        .start_web_login(
            &TenantId::new("suite-app").unwrap(),
            "wecom",
            Flow::Web,
            &redirect,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unsupported { .. }) && err.to_string().contains("own entry"),
        "{err}"
    );
    let err = login(&sso, "corp-a", Flow::Web, &fake, USER_A)
        .await
        .unwrap_err();
    assert!(!matches!(err, Error::NotInTenant { .. }), "{err:?}");
    assert!(!err.to_string().contains("not-the-code"), "{err}");
    let d = fake.push_cancel_auth(SUITE_ID, CORP_A, &url).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let seen = rx.seen.lock().unwrap().clone();
    assert!(
        matches!(seen.last(), Some(StoreAppChange::Uninstalled { org, .. }) if org.as_str() == CORP_A),
        "{seen:?}"
    );
    // Configuration: an authorising corp needs its permanent code; the mode is checked.
    let http = unilogin_core::http::HttpClient::new(&Default::default()).unwrap();
    let build = |v: Value| {
        let config: PlatformConfig = serde_json::from_value(v).unwrap();
        unilogin_wecom::WeCom::new(&unilogin_core::registry::PlatformContext {
            config: &config,
            http: &http,
        })
        .map(drop)
    };
    let field = |r: Result<(), Error>| match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    let base = json!({"tenant": "t", "platform": "wecom", "mode": "isv",
        "app_key": SUITE_ID, "app_secret": SUITE_SECRET});
    let mut no_code = base.clone();
    no_code["corp_id"] = json!(CORP_A);
    assert_eq!(field(build(no_code)), "permanent_code");
    let mut bad_mode = base.clone();
    bad_mode["mode"] = json!("store");
    assert_eq!(field(build(bad_mode)), "mode");
    build(base).unwrap();
}

// ---- The shared store-app cases (`unilogin_conformance::isv`) --------------------------------

const CODES: [&str; 2] = ["fake_permanent_code_a", "fake_permanent_code_b"];

struct WeComStore(FakeWeCom);

#[async_trait::async_trait]
impl StoreAppSetup for WeComStore {
    fn platform(&self) -> &'static str {
        "wecom"
    }

    fn entries(&self) -> Vec<PlatformConfig> {
        let [a, b] = ORG_TENANTS;
        vec![
            entry(&self.0, APP_TENANT, None),
            entry(&self.0, a, Some((CORP_A, CODES[0]))),
            entry(&self.0, b, Some((CORP_B, CODES[1]))),
        ]
    }

    fn codec(&self) -> Arc<dyn EventCodec> {
        let creds = self.0.suite_event_credentials(SUITE_ID);
        let key = creds.aes_key.as_deref().unwrap();
        Arc::new(WeComEvents::new(&creds.token, key, &creds.receiver_id).unwrap())
    }

    async fn push_ticket(&self, url: &str) -> String {
        let (delivery, ticket) = self.0.push_suite_ticket(SUITE_ID, url).await.unwrap();
        assert!(delivery.accepted(), "{:?}", delivery.verdict);
        ticket
    }

    /// The in-client OAuth redirect (`appid` = suite_id) and `getuserinfo3rd`.
    async fn login(
        &self,
        sso: &Sso,
        tenant: &TenantId,
        member_of: usize,
        secrets: &mut Vec<String>,
    ) -> Result<String, Error> {
        let redirect = Url::parse(CALLBACK).unwrap();
        let start = sso
            .start_web_login(tenant, "wecom", Flow::H5, &redirect)
            .await?;
        let code = self.0.issue_3rd_code(SUITE_ID, &self.member(member_of));
        secrets.push(code.clone());
        secrets.push(start.pending.state.expose().to_string());
        let callback = Callback {
            code: AuthCode::new(code),
            state: start.pending.state.clone(),
            iss: None,
        };
        let login = sso.finish_web_login(&start.pending, &callback).await?;
        Ok(login.profile.user_id.unwrap_or_default())
    }

    fn member(&self, org: usize) -> String {
        [USER_A, USER_B][org].to_string()
    }

    fn revoke_org_tokens(&self, org: usize) {
        self.0.revoke_corp_tokens([CORP_A, CORP_B][org]);
    }

    fn token_fetches(&self) -> (u64, u64) {
        (
            self.0.calls(ep::GET_SUITE_TOKEN),
            self.0.calls(ep::GET_CORP_TOKEN),
        )
    }

    fn app_secret(&self) -> String {
        SUITE_SECRET.to_string()
    }
}

async fn store_setup() -> Box<dyn StoreAppSetup> {
    let fake = fake().await;
    fake.install_suite(SUITE_ID, CORP_A, CODES[0]);
    fake.install_suite(SUITE_ID, CORP_B, CODES[1]);
    Box::new(WeComStore(fake))
}

unilogin_conformance::store_app_suite!(store_setup);
