//! Store (third-party) apps end to end against the fake: suite tickets pushed through an
//! encrypted callback into the `Sso`'s ticket store, the token chain with both APIs (fetch
//! counts), H5 and web logins of installed organisations, membership, typed errors.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use unilogin_conformance::TraceCapture;
use unilogin_conformance::isv::{APP_TENANT, ORG_TENANTS, StoreAppSetup, TicketReceiver};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::events::{EventCodec, StoreAppChange};
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::isv::{Offered, PushedTicket, TicketApp};
use unilogin_core::platform::{Flow, Services};
use unilogin_core::registry::PlatformContext;
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, PlatformName, Sso, TenantId};
use unilogin_dingtalk::DingTalk;
use unilogin_dingtalk::events::DingTalkEvents;
use unilogin_testkit::dingtalk::{self, FakeDingTalk, FakeSuite, endpoints as ep};
use unilogin_testkit::{FakePlatform as _, FakeUser, Fault};
use url::Url;

const SUITE_KEY: &str = "suitefakekey0001";
const SUITE_SECRET: &str = "fake_dt_suite_secret_0001";
const ORG_A: &str = "dingisvorg000a";
const ORG_B: &str = "dingisvorg000b";
const USER_A: &str = "isvuser_a";
const USER_B: &str = "isvuser_b";
const CALLBACK: &str = "https://app.example.com/auth/callback";

/// A fake with one suite installed by two organisations, one user each.
async fn fake() -> FakeDingTalk {
    let fake = dingtalk::start().await;
    fake.add_suite(FakeSuite::new(SUITE_KEY, SUITE_SECRET, "90001"));
    for (org, user) in [(ORG_A, USER_A), (ORG_B, USER_B)] {
        fake.install_suite(SUITE_KEY, org);
        fake.add_user(FakeUser::new(user).name(user).in_org(org));
    }
    fake
}

fn tenant(org: &str) -> TenantId {
    TenantId::new(format!("t-{org}")).unwrap()
}

/// The tenant entry of one installed organisation.
fn config(fake: &FakeDingTalk, org: &str, api: &str) -> PlatformConfig {
    serde_json::from_value(config_json(fake, org, api)).unwrap()
}

fn config_json(fake: &FakeDingTalk, org: &str, api: &str) -> Value {
    let base = fake.base_url();
    json!({
        "tenant": tenant(org).as_str(), "platform": "dingtalk", "mode": "isv",
        "app_key": SUITE_KEY, "app_secret": SUITE_SECRET, "corp_id": org,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": [CALLBACK],
        "options": { "app_token_api": api },
    })
}

fn sso(fake: &FakeDingTalk, api: &str) -> Sso {
    let configs = vec![config(fake, ORG_A, api), config(fake, ORG_B, api)];
    Sso::builder(StaticConfig::new(configs)).build().unwrap()
}

fn app() -> TicketApp {
    TicketApp::new(PlatformName::new("dingtalk").unwrap(), SUITE_KEY).unwrap()
}

/// Starts a receiver feeding `sso`'s ticket store; its URL and what it saw.
async fn receiver(fake: &FakeDingTalk, sso: &Sso) -> (String, TicketReceiver) {
    let creds = fake.event_credentials_for(SUITE_KEY);
    let key = creds.aes_key.as_deref().unwrap();
    let codec = DingTalkEvents::new(&creds.token, key, &creds.receiver_id).unwrap();
    let rx = TicketReceiver::start(Arc::new(codec), sso.ticket_store().clone()).await;
    (rx.url.clone(), rx)
}

async fn push_ticket(fake: &FakeDingTalk, url: &str) -> String {
    let (delivery, ticket) = fake.push_suite_ticket(SUITE_KEY, url).await.unwrap();
    assert!(delivery.accepted(), "{:?}", delivery.verdict);
    ticket
}

async fn h5(sso: &Sso, org: &str, fake: &FakeDingTalk, user: &str) -> Result<String, Error> {
    let code = AuthCode::new(fake.issue_h5_code(user));
    let login = sso.login_with_code(&tenant(org), "dingtalk", &code).await?;
    Ok(login.profile.user_id.unwrap_or_default())
}

async fn web(sso: &Sso, org: &str, fake: &FakeDingTalk, user: &str) -> Result<String, Error> {
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&tenant(org), "dingtalk", Flow::Web, &redirect)
        .await?;
    let url = start.url.to_string();
    assert!(url.contains(&format!("client_id={SUITE_KEY}")), "{url}");
    assert!(
        url.contains("prompt=consent") && url.contains("scope=openid+corpid"),
        "{url}"
    );
    let callback = Callback {
        code: AuthCode::new(fake.approve_web_login_with(SUITE_KEY, user, "openid corpid")),
        state: start.pending.state.clone(),
        iss: None,
    };
    let login = sso.finish_web_login(&start.pending, &callback).await?;
    Ok(login.profile.user_id.unwrap_or_default())
}

/// The concrete handler of `org`'s entry, attached to `sso`'s services (for the suite token).
fn handler(fake: &FakeDingTalk, sso: &Sso, org: &str, api: &str) -> DingTalk {
    let config = config(fake, org, api);
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    let h = DingTalk::new(&PlatformContext {
        config: &config,
        http: &http,
    })
    .unwrap();
    let services = Services {
        token_cache: sso.token_cache().clone(),
        tickets: sso.ticket_store().clone(),
    };
    assert!(unilogin_core::Platform::base(&h).attach(services));
    h
}

/// Both APIs: H5 and web logins for two installed organisations; one suite token for the
/// suite, one corp token per organisation, whatever the number of logins.
#[tokio::test]
async fn logins_of_installed_orgs_with_one_suite_token_and_one_corp_token_per_org() {
    for (api, suite_ep, corp_ep) in [
        ("v1", ep::SUITE_ACCESS_TOKEN, ep::CORP_ACCESS_TOKEN),
        ("oapi", ep::GET_SUITE_TOKEN, ep::GET_CORP_TOKEN),
    ] {
        let fake = fake().await;
        let sso = sso(&fake, api);
        let (url, _) = receiver(&fake, &sso).await;
        push_ticket(&fake, &url).await;
        for _ in 0..3 {
            assert_eq!(
                h5(&sso, ORG_A, &fake, USER_A).await.unwrap(),
                USER_A,
                "{api}"
            );
            assert_eq!(
                h5(&sso, ORG_B, &fake, USER_B).await.unwrap(),
                USER_B,
                "{api}"
            );
            assert_eq!(
                web(&sso, ORG_A, &fake, USER_A).await.unwrap(),
                USER_A,
                "{api}"
            );
            assert_eq!(
                web(&sso, ORG_B, &fake, USER_B).await.unwrap(),
                USER_B,
                "{api}"
            );
        }
        assert_eq!(
            fake.calls(corp_ep),
            2,
            "{api}: one corp token per organisation"
        );
        let (a, b) = (
            handler(&fake, &sso, ORG_A, api),
            handler(&fake, &sso, ORG_B, api),
        );
        let first = a.suite_token().await.unwrap();
        assert_eq!(b.suite_token().await.unwrap(), first, "{api}");
        assert_eq!(a.suite_token().await.unwrap(), first, "{api}");
        assert_eq!(
            fake.calls(suite_ep),
            1,
            "{api}: one suite token for every organisation"
        );
    }
}

/// A person of another installed organisation never logs into this one.
#[tokio::test]
async fn a_user_of_another_org_is_refused() {
    let fake = fake().await;
    let sso = sso(&fake, "v1");
    let (url, _) = receiver(&fake, &sso).await;
    push_ticket(&fake, &url).await;
    let err = web(&sso, ORG_A, &fake, USER_B).await.unwrap_err();
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    // An H5 code from the other organisation's client is refused by the platform.
    let err = h5(&sso, ORG_A, &fake, USER_B).await.unwrap_err();
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
    assert_eq!(fake.calls(ep::USER_GET), 0);
}

/// Before the first push: a typed error, and no token call.
#[tokio::test]
async fn no_ticket_is_ticket_missing() {
    let fake = fake().await;
    let sso = sso(&fake, "v1");
    let err = h5(&sso, ORG_A, &fake, USER_A).await.unwrap_err();
    assert!(
        matches!(&err, Error::TicketMissing { app, .. } if app.as_str() == SUITE_KEY),
        "{err:?}"
    );
    let err = handler(&fake, &sso, ORG_A, "v1")
        .suite_token()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), "ticket_missing");
    assert_eq!(
        fake.calls(ep::CORP_ACCESS_TOKEN) + fake.calls(ep::SUITE_ACCESS_TOKEN),
        0
    );
}

/// A new push replaces the ticket (the fake accepts only the current one): the next suite and
/// corp tokens are fetched with it.
#[tokio::test]
async fn a_rotated_ticket_is_used_by_the_next_tokens() {
    for api in ["v1", "oapi"] {
        let fake = fake().await;
        let sso = sso(&fake, api);
        let (url, _) = receiver(&fake, &sso).await;
        let first = push_ticket(&fake, &url).await;
        let h = handler(&fake, &sso, ORG_A, api);
        let old = h.suite_token().await.unwrap();
        // A later push (DingTalk stamps it later).
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = push_ticket(&fake, &url).await;
        assert_ne!(first, second);
        let held = sso.ticket_store().require(&app()).await.unwrap();
        assert_eq!(held.value.expose(), second, "{api}");
        h.invalidate_suite_token(&old).await.unwrap();
        let new = h.suite_token().await.unwrap();
        assert_ne!(new, old, "{api}");
        assert_eq!(
            h5(&sso, ORG_A, &fake, USER_A).await.unwrap(),
            USER_A,
            "{api}"
        );
    }
}

/// A ticket DingTalk refuses is a typed configuration error naming the ticket, without the
/// ticket's value; a wrong suite secret names the suite credentials.
#[tokio::test]
async fn a_refused_ticket_and_a_wrong_secret_are_typed() {
    let fake = fake().await;
    let sso = sso(&fake, "v1");
    let stale = PushedTicket::new("stale-ticket-value", SystemTime::now(), SystemTime::now());
    assert_eq!(
        sso.ticket_store()
            .offer(&app(), stale.unwrap())
            .await
            .unwrap(),
        Offered::Stored
    );
    let err = h5(&sso, ORG_A, &fake, USER_A).await.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(&err, Error::Misconfigured { hint, .. } if hint.contains("invalidSuiteTicket")),
        "{err:?}"
    );
    assert!(!text.contains("stale-ticket-value") && !format!("{err:?}").contains("stale-ticket"));

    let (url, _) = receiver(&fake, &sso).await;
    push_ticket(&fake, &url).await;
    for api in ["v1", "oapi"] {
        let mut config = config(&fake, ORG_A, api);
        config.app_secret = unilogin_core::AppSecret::new("wrong-suite-secret");
        let sso2 = Sso::builder(StaticConfig::new(vec![config]))
            .ticket_store(sso.ticket_store().clone())
            .build()
            .unwrap();
        let err = h5(&sso2, ORG_A, &fake, USER_A).await.unwrap_err();
        assert!(matches!(err, Error::Misconfigured { .. }), "{api}: {err:?}");
        assert!(!err.to_string().contains("wrong-suite-secret"));
    }
}

/// A corp token the platform rejects is invalidated alone: the other organisation keeps its
/// token, the suite token is untouched.
#[tokio::test]
async fn a_rejected_corp_token_invalidates_only_itself() {
    let fake = fake().await;
    let sso = sso(&fake, "v1");
    let (url, _) = receiver(&fake, &sso).await;
    push_ticket(&fake, &url).await;
    h5(&sso, ORG_A, &fake, USER_A).await.unwrap();
    h5(&sso, ORG_B, &fake, USER_B).await.unwrap();
    assert_eq!(fake.calls(ep::CORP_ACCESS_TOKEN), 2);
    fake.inject(ep::GETUSERINFO, Fault::TokenInvalid).unwrap();
    assert_eq!(h5(&sso, ORG_A, &fake, USER_A).await.unwrap(), USER_A);
    assert_eq!(
        fake.calls(ep::CORP_ACCESS_TOKEN),
        3,
        "organisation A refetched"
    );
    h5(&sso, ORG_B, &fake, USER_B).await.unwrap();
    assert_eq!(
        fake.calls(ep::CORP_ACCESS_TOKEN),
        3,
        "organisation B kept its token"
    );
}

/// Installation and removal pushes reach the receiver as lifecycle changes; after removal
/// the organisation's corp token is refused.
#[tokio::test]
async fn install_and_uninstall_pushes_are_lifecycle_changes() {
    let fake = fake().await;
    let sso = sso(&fake, "v1");
    let (url, rx) = receiver(&fake, &sso).await;
    push_ticket(&fake, &url).await;
    let d = fake
        .push_install(SUITE_KEY, "dingisvorg000c", &url, None)
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let d = fake.push_uninstall(SUITE_KEY, ORG_A, &url).await.unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let seen = rx.seen.lock().unwrap().clone();
    let kinds: Vec<_> = seen.iter().map(StoreAppChange::kind).collect();
    assert_eq!(kinds, ["ticket_pushed", "installed", "uninstalled"]);
    let StoreAppChange::Installed { org, info, .. } = &seen[1] else {
        panic!("installed")
    };
    assert_eq!(org.as_str(), "dingisvorg000c");
    assert_eq!(info.agent_id.as_deref(), Some("200001"));
    assert!(info.permanent_code.is_some());
    assert!(!format!("{seen:?}").contains("fake_dt_permanent_"));
    assert_eq!(seen[2].org().map(|o| o.as_str()), Some(ORG_A));
    let err = h5(&sso, ORG_A, &fake, USER_A).await.unwrap_err();
    assert!(!matches!(err, Error::TicketMissing { .. }), "{err:?}");
}

/// `mode: isv` configuration checks.
#[tokio::test]
async fn store_app_configuration_is_checked() {
    let fake = fake().await;
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    let build = |patch: Value| {
        let mut v = config_json(&fake, ORG_A, "v1");
        let obj = v.as_object_mut().unwrap();
        for (k, val) in patch.as_object().unwrap() {
            obj.insert(k.clone(), val.clone());
        }
        let config: PlatformConfig = serde_json::from_value(v).unwrap();
        DingTalk::new(&PlatformContext {
            config: &config,
            http: &http,
        })
        .map(drop)
    };
    build(json!({})).unwrap();
    let field = |r: Result<(), Error>| match r {
        Err(Error::Config { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    // Without corp_id: the suite's app entry (no H5 corpId needed), a valid configuration.
    build(json!({"corp_id": null})).unwrap();
    assert_eq!(field(build(json!({"mode": "store"}))), "mode");
    assert_eq!(
        field(build(json!({"options": {"scope": "openid"}}))),
        "options.scope"
    );
    assert_eq!(field(build(json!({"corp_id": "ding corp"}))), "corp_id");
}

/// The app entry (`mode: isv`, no `corp_id`) logs no one in, and its app token is the suite
/// token, shared with every installed organisation's entry.
#[tokio::test]
async fn the_app_entry_logs_no_one_in_and_shares_the_suite_token() {
    let fake = fake().await;
    let mut app_entry = config_json(&fake, ORG_A, "v1");
    app_entry["tenant"] = json!("suite-app");
    app_entry.as_object_mut().unwrap().remove("corp_id");
    let configs = vec![
        serde_json::from_value::<PlatformConfig>(app_entry).unwrap(),
        config(&fake, ORG_A, "v1"),
    ];
    let sso = Sso::builder(StaticConfig::new(configs)).build().unwrap();
    let (url, _) = receiver(&fake, &sso).await;
    let app_tenant = TenantId::new("suite-app").unwrap();
    // Refused as what it is before any upstream call, before the first ticket (not
    // `TicketMissing`: a ticket will never make this entry log anyone in) and after it.
    for pushed in [false, true] {
        if pushed {
            push_ticket(&fake, &url).await;
        }
        let code = AuthCode::new(fake.issue_h5_code(USER_A));
        let err = sso
            .login_with_code(&app_tenant, "dingtalk", &code)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Unsupported { .. }) && err.to_string().contains("own entry"),
            "{err}"
        );
        assert_eq!(fake.calls(ep::SUITE_ACCESS_TOKEN), 0);
    }
    let redirect = Url::parse(CALLBACK).unwrap();
    let err = sso
        .start_web_login(&app_tenant, "dingtalk", Flow::Web, &redirect)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    // The organisation's entry still logs in, and the suite token the app entry's handler
    // caches is the one the organisation's chain uses.
    assert_eq!(h5(&sso, ORG_A, &fake, USER_A).await.unwrap(), USER_A);
    let prepared = sso.prepare(&app_tenant, "dingtalk").await.unwrap();
    let key = prepared.handler().token_key().unwrap();
    assert_eq!(key, unilogin_dingtalk::isv::suite_key(&app()));
    let org = handler(&fake, &sso, ORG_A, "v1");
    let via_org = org.suite_token().await.unwrap();
    let suite_ep = ep::SUITE_ACCESS_TOKEN;
    let fetched = fake.calls(suite_ep);
    let via_app = sso
        .token_cache()
        .get(&key, || async { panic!("the suite token is cached") })
        .await
        .unwrap();
    assert_eq!(via_app, via_org);
    assert_eq!(fake.calls(suite_ep), fetched);
}

/// The store-app YAML example of docs/platforms/dingtalk.md loads and validates (handler and
/// event codec built) as the gateway's `check-config` does.
#[test]
fn the_documented_store_app_entry_is_valid() {
    let text = include_str!("../../../docs/platforms/dingtalk.md");
    let block = text
        .split("```yaml\n")
        .filter_map(|b| b.split("```").next())
        .find(|b| b.contains("mode: isv"))
        .expect("a store-app example");
    // Secret references become literal values (the test sets no environment).
    let mut literal = String::new();
    for (i, part) in block.split("\"env:").enumerate() {
        match (i, part.split_once('"')) {
            (0, _) | (_, None) => literal.push_str(part),
            (_, Some((_, rest))) => {
                literal.push_str("\"documented-secret\"");
                literal.push_str(rest);
            }
        }
    }
    let entries = unilogin_core::config::parse_yaml(&literal, None).unwrap();
    assert_eq!(entries.len(), 1);
    let config = entries[0].config.as_ref().unwrap();
    assert_eq!(config.mode.as_deref(), Some("isv"));
    config.validate().unwrap();
}

/// No suite secret, ticket, suite or corp token, code or permanent code appears in a log line
/// (captured at TRACE) or an error text, across pushes, logins and failures.
#[tokio::test]
async fn store_app_secrets_never_leak() {
    let logs = TraceCapture::start();

    let fake = fake().await;
    let sso = sso(&fake, "oapi");
    let (url, rx) = receiver(&fake, &sso).await;
    let mut secrets = vec![SUITE_SECRET.to_string(), push_ticket(&fake, &url).await];
    let mut texts = Vec::new();
    texts.push(format!("{:?}", h5(&sso, ORG_A, &fake, USER_A).await));
    texts.push(format!("{:?}", web(&sso, ORG_A, &fake, USER_A).await));
    texts.push(format!("{:?}", web(&sso, ORG_A, &fake, USER_B).await));
    let h = handler(&fake, &sso, ORG_A, "oapi");
    secrets.push(h.suite_token().await.unwrap().expose().to_string());
    let corp = unilogin_core::Platform::fetch_app_token(&h).await.unwrap();
    secrets.push(corp.token.expose().to_string());
    fake.push_install(SUITE_KEY, "dingisvorg000c", &url, None)
        .await
        .unwrap();
    for change in rx.seen.lock().unwrap().iter() {
        texts.push(format!("{change:?}"));
        if let StoreAppChange::Installed { info, .. } = change {
            secrets.push(info.permanent_code.as_ref().unwrap().expose().to_string());
        }
    }
    // A refused ticket: the error and the logs name it without its value.
    let stale = PushedTicket::new("stale-ticket-0123", SystemTime::now(), SystemTime::now());
    sso.ticket_store()
        .offer(&app(), stale.unwrap())
        .await
        .unwrap();
    secrets.push("stale-ticket-0123".into());
    sso.token_cache()
        .evict(
            &unilogin_dingtalk::isv::suite_key(&app())
                .organisation(&unilogin_core::isv::OrgId::new(ORG_B).unwrap()),
        )
        .await;
    let err = h5(&sso, ORG_B, &fake, USER_B).await.unwrap_err();
    assert!(matches!(err, Error::Misconfigured { .. }), "{err:?}");
    texts.push(format!("{err} {err:?}"));

    let logs = logs.text();
    assert!(logs.contains("login"), "the log capture saw nothing");
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "a secret leaked into the logs");
        for t in &texts {
            assert!(!t.contains(s.as_str()), "a secret leaked into {t}");
        }
    }
}

// ---- The shared store-app cases (`unilogin_conformance::isv`) --------------------------------

struct DingTalkStore(FakeDingTalk);

#[async_trait::async_trait]
impl StoreAppSetup for DingTalkStore {
    fn platform(&self) -> &'static str {
        "dingtalk"
    }

    fn entries(&self) -> Vec<PlatformConfig> {
        let mut app_entry = config_json(&self.0, ORG_A, "v1");
        app_entry["tenant"] = json!(APP_TENANT);
        app_entry.as_object_mut().unwrap().remove("corp_id");
        let mut entries = vec![app_entry];
        for (tenant, org) in ORG_TENANTS.into_iter().zip([ORG_A, ORG_B]) {
            let mut e = config_json(&self.0, org, "v1");
            e["tenant"] = json!(tenant);
            entries.push(e);
        }
        entries
            .into_iter()
            .map(|e| serde_json::from_value(e).unwrap())
            .collect()
    }

    fn codec(&self) -> Arc<dyn EventCodec> {
        let creds = self.0.event_credentials_for(SUITE_KEY);
        let key = creds.aes_key.as_deref().unwrap();
        Arc::new(DingTalkEvents::new(&creds.token, key, &creds.receiver_id).unwrap())
    }

    async fn push_ticket(&self, url: &str) -> String {
        push_ticket(&self.0, url).await
    }

    async fn login(
        &self,
        sso: &Sso,
        tenant: &TenantId,
        member_of: usize,
        secrets: &mut Vec<String>,
    ) -> Result<String, Error> {
        let code = self.0.issue_h5_code(&self.member(member_of));
        secrets.push(code.clone());
        let login = sso
            .login_with_code(tenant, "dingtalk", &AuthCode::new(code))
            .await?;
        Ok(login.profile.user_id.unwrap_or_default())
    }

    fn member(&self, org: usize) -> String {
        [USER_A, USER_B][org].to_string()
    }

    fn revoke_org_tokens(&self, org: usize) {
        self.0.revoke_corp_tokens(SUITE_KEY, [ORG_A, ORG_B][org]);
    }

    fn token_fetches(&self) -> (u64, u64) {
        (
            self.0.calls(ep::SUITE_ACCESS_TOKEN),
            self.0.calls(ep::CORP_ACCESS_TOKEN),
        )
    }

    fn app_secret(&self) -> String {
        SUITE_SECRET.to_string()
    }
}

async fn store_setup() -> Box<dyn StoreAppSetup> {
    Box::new(DingTalkStore(fake().await))
}

unilogin_conformance::store_app_suite!(store_setup);
