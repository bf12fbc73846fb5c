//! JSAPI signatures and tickets through the core, against a test platform registered here
//! (`test-tickets`): known-answer signatures, page-URL rules, tickets cached in the token cache
//! (one fetch for many signatures, refetched when the app token is replaced, compare-and-delete
//! invalidation, refresh ahead of expiry, a token-invalid ticket fetch invalidating the app
//! token and retrying once, two caches sharing a store fetching once) and mini-program codes.
//!
//! Tests of one file run in parallel: each uses its own tenant, whose platform state is kept
//! by tenant.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::jsapi::{self, PageUrl, PageUrlProblem, Signed, TicketKind, TimestampUnit};
use unilogin_core::platform::{
    AuthorizeRequest, Base, CodeKind, Identity, InClient, JsapiLogin, Platform, WebCallback,
};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::sso::Sso;
use unilogin_core::token_cache::{FetchedToken, MemoryStore, TokenCache, TokenKey};
use unilogin_core::{AccessToken, AuthCode, Error, Result, TenantId, UpstreamCode};
use url::Url;

const NAME: &str = "test-tickets";
const RULES: &str = "test-tickets:\n  user_id: { path: \"$.sub\", required: true }\n";

/// What one tenant's platform saw and how it behaves.
#[derive(Default)]
struct Seen {
    app_fetches: AtomicU64,
    mini_token_fetches: AtomicU64,
    ticket_fetches: AtomicU64,
    /// The app tokens ticket fetches were made with.
    ticket_tokens: Mutex<Vec<String>>,
    /// Ticket fetches with these app tokens answer "token invalid".
    rejected_tokens: Mutex<Vec<String>>,
    ticket_ttl: AtomicU64,
}

static SEEN: Mutex<Vec<(String, Arc<Seen>)>> = Mutex::new(Vec::new());

fn seen(tenant: &str) -> Arc<Seen> {
    let mut all = SEEN.lock().unwrap();
    if let Some((_, s)) = all.iter().find(|(t, _)| t == tenant) {
        return s.clone();
    }
    let s = Arc::new(Seen::default());
    s.ticket_ttl.store(7200, Ordering::SeqCst);
    all.push((tenant.to_string(), s.clone()));
    s
}

#[derive(Debug)]
struct TicketPlatform {
    base: Base,
    mini_program: bool,
}

fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(TicketPlatform {
        base: Base::new(&ctx, &[("api", "https://api.example/")])?,
        mini_program: ctx.config.option_bool("mini_program", false)?,
    }))
}

fn params(config: &PlatformConfig) -> Value {
    json!({ "appId": config.app_key.as_str() })
}

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "test platform with JSAPI tickets",
        default_rules: RULES,
        user_agent_markers: &[],
        in_client: InClient::Jsapi(JsapiLogin {
            sdk_url: "https://cdn.example/sdk.js",
            global: "tt",
            get_code: "function (p) { return tt.code(p.appId); }",
            params,
        }),
        build,
        events: None,
    }
}

impl TicketPlatform {
    fn seen(&self) -> Arc<Seen> {
        seen(self.base.tenant.as_str())
    }
}

#[async_trait]
impl Platform for TicketPlatform {
    fn base(&self) -> &Base {
        &self.base
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        let n = self.seen().app_fetches.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(FetchedToken::new(
            AccessToken::new(format!("app-{n}")),
            Duration::from_secs(100_000),
        ))
    }

    fn mini_program_token_key(&self) -> Option<TokenKey> {
        Some(self.base.token_key(Some("mini")))
    }

    async fn fetch_code_token(&self) -> Result<FetchedToken> {
        let n = self
            .seen()
            .mini_token_fetches
            .fetch_add(1, Ordering::SeqCst)
            + 1;
        Ok(FetchedToken::new(
            AccessToken::new(format!("mini-{n}")),
            Duration::from_secs(7200),
        ))
    }

    fn ticket_kinds(&self) -> &'static [TicketKind] {
        &[TicketKind::Jsapi]
    }

    async fn fetch_ticket(
        &self,
        app_token: Option<&AccessToken>,
        kind: TicketKind,
    ) -> Result<FetchedToken> {
        assert_eq!(kind, TicketKind::Jsapi);
        let token = self.base.app_token(app_token)?.expose().to_string();
        let seen = self.seen();
        let n = seen.ticket_fetches.fetch_add(1, Ordering::SeqCst) + 1;
        seen.ticket_tokens.lock().unwrap().push(token.clone());
        if seen.rejected_tokens.lock().unwrap().contains(&token) {
            return Err(Error::TokenInvalid {
                ctx: self.base.ctx("ticket"),
                code: UpstreamCode::Number(40014),
            });
        }
        let ttl = seen.ticket_ttl.load(Ordering::SeqCst);
        Ok(FetchedToken::new(
            AccessToken::new(format!("ticket-{n}")),
            Duration::from_secs(ttl),
        ))
    }

    fn jsapi_timestamp_unit(&self) -> TimestampUnit {
        TimestampUnit::Milliseconds
    }

    fn jsapi_object(
        &self,
        _: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        Ok(json!({
            "appId": self.base.app_key.as_str(),
            "timestamp": signed.timestamp,
            "nonceStr": signed.nonce,
            "signature": signed.signature,
            "jsApiList": js_api_list,
        }))
    }

    fn redeems_mini_program_codes(&self) -> bool {
        self.mini_program
    }

    async fn identify_mini_program(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        let token = self.base.app_token(app_token)?;
        assert!(
            token.expose().starts_with("mini-"),
            "the mini-program token"
        );
        Ok(Identity {
            documents: serde_json::Map::from_iter([(
                "sub".into(),
                json!(format!("mp-{}", code.expose())),
            )]),
            ..Identity::default()
        })
    }

    async fn identify_h5(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        assert!(self.base.app_token(app_token)?.expose().starts_with("app-"));
        Ok(Identity {
            documents: serde_json::Map::from_iter([(
                "sub".into(),
                json!(format!("h5-{}", code.expose())),
            )]),
            ..Identity::default()
        })
    }

    async fn exchange_web_code(
        &self,
        _: Option<&AccessToken>,
        _: &WebCallback<'_>,
    ) -> Result<Identity> {
        Err(self.base.unsupported("web logins"))
    }

    async fn user_detail(&self, _: Option<&AccessToken>, identity: &Identity) -> Result<Value> {
        Ok(Value::Object(identity.documents.clone()))
    }

    async fn authorize_url(&self, _: &AuthorizeRequest<'_>) -> Result<Url> {
        Err(self.base.unsupported("web logins"))
    }
}

fn config(tenant: &str, options: Value) -> PlatformConfig {
    serde_json::from_value(json!({
        "tenant": tenant, "platform": NAME, "app_key": "cli_app", "app_secret": "secret",
        "options": options,
    }))
    .unwrap()
}

fn sso_with(tenant: &str, cache: TokenCache) -> Sso {
    Sso::builder(StaticConfig::new(vec![config(tenant, json!({}))]))
        .token_cache(cache)
        .build()
        .unwrap()
}

fn sso(tenant: &str) -> Sso {
    sso_with(tenant, TokenCache::new())
}

fn app_key(tenant: &str) -> TokenKey {
    TokenKey::new(
        &unilogin_core::PlatformName::new(NAME).unwrap(),
        &TenantId::new(tenant).unwrap(),
        "cli_app",
        None,
    )
}

const PAGE: &str = "https://app.example.com/h5/index?x=1&y=2";

async fn config_for(sso: &Sso, tenant: &str) -> unilogin_core::JsapiConfig {
    let t = TenantId::new(tenant).unwrap();
    sso.jsapi_config(
        &t,
        NAME,
        PAGE,
        TicketKind::Jsapi,
        &["getLocation".to_string()],
    )
    .await
    .unwrap()
}

/// The ticket a configuration was signed with, among `ticket-1..=ticket-n`.
fn signed_with(c: &unilogin_core::JsapiConfig, n: u64) -> Option<String> {
    (1..=n).map(|i| format!("ticket-{i}")).find(|t| {
        jsapi::sign(
            t,
            &c.signed.nonce,
            c.signed.timestamp,
            c.signed.url.as_str(),
        ) == c.signed.signature
    })
}

#[test]
fn known_answers() {
    // The reference's worked example.
    assert_eq!(
        jsapi::sign(
            "TICKET_EXAMPLE_001",
            "nonce0001",
            1_700_000_000,
            "https://app.example.com/h5/index?x=1&y=2"
        ),
        "961c314208f6b164c6d5306e92c0bc371ce2d84f"
    );
    // WeChat JS-SDK documentation, appendix 1 (the algorithm WeCom, DingTalk and Feishu reuse).
    assert_eq!(
        jsapi::sign(
            "sM4AOVdWfPE4DxkXGEs8VMCPGGVi4C3VM0P37wVUCFvkVAy_90u5h9nbSlYy3-Sl-HhTdfl2fzFy1AOcHKP7qg",
            "Wm3WZYTPz0wzccnW",
            1_414_587_457,
            "http://mp.weixin.qq.com?params=value"
        ),
        "0f9de62fce790f9a083d5c99e95740ceb90c27ed"
    );
    // Through PageUrl: the fragment does not count.
    let url = PageUrl::parse("https://app.example.com/h5/index?x=1&y=2#/a/b?c=d").unwrap();
    let s = jsapi::sign_page(
        &AccessToken::new("TICKET_EXAMPLE_001"),
        url,
        "nonce0001".to_string(),
        1_700_000_000,
    );
    assert_eq!(s.signature, "961c314208f6b164c6d5306e92c0bc371ce2d84f");
}

#[test]
fn page_urls_lose_the_fragment_and_keep_their_encoding() {
    let kept = [
        "https://app.example.com/h5/index?x=1&y=2",
        "https://app.example.com/h5/index/?y=2&x=1",
        "https://app.example.com:8443/a%2Fb/%E4%B8%AD?q=%20&r=a+b",
        "http://app.example.com/path?redirect=https%3A%2F%2Fx.example%2F",
        "https://app.example.com",
        "https://app.example.com/?",
        "https://app.example.com/中文?名=值",
        "https://APP.example.com/Case",
    ];
    for raw in kept {
        assert_eq!(PageUrl::parse(raw).unwrap().as_str(), raw);
        let with_fragment = format!("{raw}#/route?x=%41#again");
        assert_eq!(PageUrl::parse(&with_fragment).unwrap().as_str(), raw);
    }
    let origin = |u: &str| PageUrl::parse(u).unwrap().origin().to_string();
    assert_eq!(
        origin("https://APP.example.com:443/x"),
        "https://app.example.com"
    );
    assert_eq!(origin("http://a.example:8080/x?y"), "http://a.example:8080");

    let long = format!("https://a.example/{}", "x".repeat(jsapi::MAX_PAGE_URL_LEN));
    let at_limit = format!(
        "https://a.example/{}",
        "x".repeat(jsapi::MAX_PAGE_URL_LEN - "https://a.example/".len())
    );
    assert!(PageUrl::parse(&at_limit).is_ok());
    // A long fragment does not count against the limit.
    assert!(PageUrl::parse(&format!("https://a.example/#{}", "f".repeat(10_000))).is_ok());
    let bad = [
        ("", PageUrlProblem::Empty),
        ("#only-a-fragment", PageUrlProblem::Empty),
        (long.as_str(), PageUrlProblem::TooLong),
        ("/h5/index?x=1", PageUrlProblem::NotHttp),
        ("app.example.com/h5", PageUrlProblem::NotHttp),
        (
            "javascript:alert(1)//https://a.example/",
            PageUrlProblem::NotHttp,
        ),
        ("ftp://a.example/", PageUrlProblem::NotHttp),
        ("HTTPS://a.example/", PageUrlProblem::NotHttp),
        ("https:a.example/", PageUrlProblem::NotHttp),
        ("https://", PageUrlProblem::Malformed),
        ("https://a.example:99999/", PageUrlProblem::Malformed),
        ("https://user:pw@a.example/", PageUrlProblem::Credentials),
        ("https://user@a.example/", PageUrlProblem::Credentials),
        (" https://a.example/", PageUrlProblem::Characters),
        ("https://a.example/a b", PageUrlProblem::Characters),
        ("https://a.example/\t", PageUrlProblem::Characters),
        ("https://a.example/\n", PageUrlProblem::Characters),
        ("https://a.example\\@b.example/", PageUrlProblem::Characters),
    ];
    for (raw, problem) in bad {
        match PageUrl::parse(raw) {
            Err(Error::InvalidPageUrl(p)) => assert_eq!(p, problem, "{raw:?}"),
            other => panic!("{raw:?}: {other:?}"),
        }
    }
    let e = PageUrl::parse("ftp://a.example/").unwrap_err();
    assert_eq!(e.kind(), "invalid_page_url");
    assert!(e.to_string().contains("http(s)"), "{e}");
}

#[tokio::test]
async fn one_ticket_fetch_serves_many_signatures() {
    let tenant = "many";
    let (sso, seen) = (sso(tenant), seen(tenant));
    let mut nonces = std::collections::HashSet::new();
    for _ in 0..50 {
        let c = config_for(&sso, tenant).await;
        assert_eq!(signed_with(&c, 1).as_deref(), Some("ticket-1"));
        assert!(nonces.insert(c.signed.nonce.clone()), "nonce reused");
        assert_eq!(c.signed.url.as_str(), PAGE);
        // The platform's object, built from exactly the values signed.
        assert_eq!(
            c.config,
            json!({
                "appId": "cli_app", "timestamp": c.signed.timestamp, "nonceStr": c.signed.nonce,
                "signature": c.signed.signature, "jsApiList": ["getLocation"],
            })
        );
        // Milliseconds, as this platform asked.
        assert!(
            c.signed.timestamp > 1_600_000_000_000,
            "{}",
            c.signed.timestamp
        );
        let shown = format!("{c:?} {}", c.config);
        assert!(
            !shown.contains("ticket-1") && !shown.contains("app-1"),
            "{shown}"
        );
    }
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(seen.app_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(*seen.ticket_tokens.lock().unwrap(), ["app-1"]);
}

#[tokio::test]
async fn bad_urls_and_other_kinds_are_refused_before_any_fetch() {
    let tenant = "refused";
    let (sso, seen) = (sso(tenant), seen(tenant));
    let t = TenantId::new(tenant).unwrap();
    let e = sso
        .jsapi_config(&t, NAME, "file:///etc/passwd", TicketKind::Jsapi, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidPageUrl(PageUrlProblem::NotHttp)),
        "{e:?}"
    );
    let e = sso
        .jsapi_config(&t, NAME, PAGE, TicketKind::AgentConfig, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert_eq!(seen.app_fetches.load(Ordering::SeqCst), 0);
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_replaced_app_token_brings_a_new_ticket() {
    let tenant = "replaced";
    let (sso, seen) = (sso(tenant), seen(tenant));
    assert_eq!(
        signed_with(&config_for(&sso, tenant).await, 1).as_deref(),
        Some("ticket-1")
    );
    // The app token is replaced (rejected by some other call).
    sso.token_cache()
        .invalidate(&app_key(tenant), &AccessToken::new("app-1"))
        .await;
    let c = config_for(&sso, tenant).await;
    assert_eq!(signed_with(&c, 2).as_deref(), Some("ticket-2"));
    assert_eq!(*seen.ticket_tokens.lock().unwrap(), ["app-1", "app-2"]);
    // And that ticket is cached in turn.
    config_for(&sso, tenant).await;
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_rejected_ticket_is_compared_and_deleted() {
    let tenant = "rejected";
    let (sso, seen) = (sso(tenant), seen(tenant));
    let t = TenantId::new(tenant).unwrap();
    let first = config_for(&sso, tenant).await;
    // A forged report (another signature) changes nothing.
    let mut forged = first.signed.clone();
    forged.signature = jsapi::sign("guessed", &forged.nonce, forged.timestamp, PAGE);
    assert!(
        !sso.invalidate_ticket(&t, NAME, TicketKind::Jsapi, &forged)
            .await
            .unwrap()
    );
    let mut short = first.signed.clone();
    short.signature.truncate(8);
    assert!(
        !sso.invalidate_ticket(&t, NAME, TicketKind::Jsapi, &short)
            .await
            .unwrap()
    );
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 1);
    // The real report: upper-case hex is accepted too.
    let mut report = first.signed.clone();
    report.signature = report.signature.to_ascii_uppercase();
    assert!(
        sso.invalidate_ticket(&t, NAME, TicketKind::Jsapi, &report)
            .await
            .unwrap()
    );
    let second = config_for(&sso, tenant).await;
    assert_eq!(signed_with(&second, 2).as_deref(), Some("ticket-2"));
    // A late report about the first ticket cannot erase the second.
    assert!(
        !sso.invalidate_ticket(&t, NAME, TicketKind::Jsapi, &first.signed)
            .await
            .unwrap()
    );
    let third = config_for(&sso, tenant).await;
    assert_eq!(signed_with(&third, 2).as_deref(), Some("ticket-2"));
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 2);
    // The app token was never touched.
    assert_eq!(seen.app_fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn tickets_are_refreshed_ahead_of_expiry() {
    let tenant = "ahead";
    let (sso, seen) = (sso(tenant), seen(tenant));
    seen.ticket_ttl.store(7200, Ordering::SeqCst);
    assert_eq!(
        signed_with(&config_for(&sso, tenant).await, 1).as_deref(),
        Some("ticket-1")
    );
    tokio::time::advance(Duration::from_secs(6000)).await;
    assert_eq!(
        signed_with(&config_for(&sso, tenant).await, 1).as_deref(),
        Some("ticket-1")
    );
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 1);
    // Inside the refresh window (5 minutes before expiry): still the valid ticket, while one
    // refresh runs in the background.
    tokio::time::advance(Duration::from_secs(1000)).await;
    assert_eq!(
        signed_with(&config_for(&sso, tenant).await, 1).as_deref(),
        Some("ticket-1")
    );
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 2);
    assert_eq!(
        signed_with(&config_for(&sso, tenant).await, 2).as_deref(),
        Some("ticket-2")
    );
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 2);
    assert_eq!(*seen.ticket_tokens.lock().unwrap(), ["app-1", "app-1"]);
}

#[tokio::test]
async fn a_token_invalid_ticket_fetch_replaces_the_app_token_once() {
    let tenant = "stale";
    let (sso, seen) = (sso(tenant), seen(tenant));
    seen.rejected_tokens.lock().unwrap().push("app-1".into());
    let c = config_for(&sso, tenant).await;
    assert_eq!(signed_with(&c, 2).as_deref(), Some("ticket-2"));
    assert_eq!(*seen.ticket_tokens.lock().unwrap(), ["app-1", "app-2"]);
    assert_eq!(seen.app_fetches.load(Ordering::SeqCst), 2);

    // Rejected again with the fresh token: the error, after exactly one retry.
    let tenant = "stale-always";
    let (sso, seen) = (self::sso(tenant), self::seen(tenant));
    seen.rejected_tokens
        .lock()
        .unwrap()
        .extend(["app-1".into(), "app-2".into(), "app-3".into()]);
    let t = TenantId::new(tenant).unwrap();
    let e = sso
        .jsapi_config(&t, NAME, PAGE, TicketKind::Jsapi, &[])
        .await
        .unwrap_err();
    assert!(e.is_token_invalid(), "{e:?}");
    assert_eq!(*seen.ticket_tokens.lock().unwrap(), ["app-1", "app-2"]);
}

#[tokio::test]
async fn replicas_sharing_a_store_fetch_one_ticket() {
    let tenant = "replicas";
    let seen = seen(tenant);
    let store = Arc::new(MemoryStore::new());
    let replicas: Vec<Sso> = (0..4)
        .map(|_| sso_with(tenant, TokenCache::builder().store(store.clone()).build()))
        .collect();
    let mut tasks = Vec::new();
    for sso in &replicas {
        for _ in 0..5 {
            let sso = sso.clone();
            tasks.push(tokio::spawn(async move { config_for(&sso, tenant).await }));
        }
    }
    for task in tasks {
        let c = task.await.unwrap();
        assert_eq!(signed_with(&c, 1).as_deref(), Some("ticket-1"));
    }
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 1);
    assert_eq!(seen.app_fetches.load(Ordering::SeqCst), 1);
    // An invalidation by one replica reaches the store: another replica's next fetch (once
    // its own memory no longer holds the ticket) is the only one.
    let t = TenantId::new(tenant).unwrap();
    let c = config_for(&replicas[0], tenant).await;
    assert!(
        replicas[0]
            .invalidate_ticket(&t, NAME, TicketKind::Jsapi, &c.signed)
            .await
            .unwrap()
    );
    let fresh = sso_with(tenant, TokenCache::builder().store(store).build());
    assert_eq!(
        signed_with(&config_for(&fresh, tenant).await, 2).as_deref(),
        Some("ticket-2")
    );
    assert_eq!(
        signed_with(&config_for(&replicas[0], tenant).await, 2).as_deref(),
        Some("ticket-2")
    );
    assert_eq!(seen.ticket_fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn mini_program_codes_are_a_second_stateless_code_kind() {
    let tenant = "mini";
    let seen = seen(tenant);
    let t = TenantId::new(tenant).unwrap();
    let on = Sso::builder(StaticConfig::new(vec![config(
        tenant,
        json!({"mini_program": true}),
    )]))
    .build()
    .unwrap();
    let login = on
        .login_with_code_kind(&t, NAME, CodeKind::MiniProgram, &AuthCode::new("c1"))
        .await
        .unwrap();
    assert_eq!(login.profile.user_id.as_deref(), Some("mp-c1"));
    assert_eq!(login.flow, unilogin_core::Flow::H5);
    // Its own app token (the handler's `mini_program_token_key`), fetched once.
    assert_eq!(seen.mini_token_fetches.load(Ordering::SeqCst), 1);
    on.login_with_code_kind(&t, NAME, CodeKind::MiniProgram, &AuthCode::new("c2"))
        .await
        .unwrap();
    assert_eq!(seen.mini_token_fetches.load(Ordering::SeqCst), 1);
    // `login_with_code` is the JSAPI kind, unchanged.
    let h5 = on
        .login_with_code(&t, NAME, &AuthCode::new("c3"))
        .await
        .unwrap();
    assert_eq!(h5.profile.user_id.as_deref(), Some("h5-c3"));
    let same = on
        .login_with_code_kind(&t, NAME, CodeKind::Jsapi, &AuthCode::new("c3"))
        .await
        .unwrap();
    assert_eq!(same.profile.user_id, h5.profile.user_id);

    // A handler that does not declare mini-program codes refuses them before any call.
    let tenant = "mini-off";
    let seen = self::seen(tenant);
    let off = self::sso(tenant);
    let t = TenantId::new(tenant).unwrap();
    let e = off
        .login_with_code_kind(&t, NAME, CodeKind::MiniProgram, &AuthCode::new("c1"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Unsupported { operation, .. } if operation.contains("mini-program")),
        "{e:?}"
    );
    assert_eq!(seen.mini_token_fetches.load(Ordering::SeqCst), 0);
    assert_eq!(seen.app_fetches.load(Ordering::SeqCst), 0);
}
