//! `Platform::needs_app_token() == false` (standard OAuth2 providers): the `Sso` never fetches
//! or caches an app token, hands the steps an empty token, does not retry a "token invalid"
//! answer, and calls `prepare_authorize` before `authorize_url`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::platform::{AuthorizeRequest, Identity, Platform, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::sso::{AuthorizeParams, Sso};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AuthCode, Error, ErrorClass, Flow, PlatformName, Result, State, TenantId,
    UpstreamCode, UpstreamCtx,
};
use url::Url;

const NAME: &str = "no-app-token-test";

static FETCHES: AtomicU64 = AtomicU64::new(0);
static PREPARES: AtomicU64 = AtomicU64::new(0);
static STEPS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug)]
struct ClientOnly {
    name: PlatformName,
    tenant: TenantId,
}

fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(ClientOnly {
        name: ctx.config.platform.clone(),
        tenant: ctx.config.tenant.clone(),
    }))
}

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "test platform without app tokens",
        default_rules: "no-app-token-test:\n  user_id: { path: \"$.sub\", required: true }\n",
        user_agent_markers: &[],
        build,
    }
}

#[async_trait]
impl Platform for ClientOnly {
    fn name(&self) -> &PlatformName {
        &self.name
    }
    fn tenant(&self) -> &TenantId {
        &self.tenant
    }
    fn token_key(&self) -> TokenKey {
        TokenKey::new(&self.name, &self.tenant, "client", None)
    }
    fn needs_app_token(&self) -> bool {
        false
    }
    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        FETCHES.fetch_add(1, Ordering::SeqCst);
        Err(Error::Internal("must not be called".into()))
    }
    async fn prepare_authorize(&self) -> Result<()> {
        PREPARES.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    async fn identify_h5(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        STEPS.fetch_add(1, Ordering::SeqCst);
        assert!(app_token.is_empty());
        if code.expose() == "rejected" {
            return Err(Error::TokenInvalid {
                ctx: UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), "code"),
                code: UpstreamCode::Number(1),
            });
        }
        let mut documents = serde_json::Map::new();
        documents.insert("sub".into(), json!("u1"));
        Ok(Identity {
            documents,
            ..Identity::default()
        })
    }
    async fn exchange_web_code(
        &self,
        app_token: &AccessToken,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        self.identify_h5(app_token, callback.code).await
    }
    async fn user_detail(&self, app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        assert!(app_token.is_empty());
        Ok(Value::Object(identity.documents.clone()))
    }
    fn authorize_url(&self, _request: &AuthorizeRequest<'_>) -> Result<Url> {
        assert!(
            PREPARES.load(Ordering::SeqCst) > 0,
            "prepare_authorize not called first"
        );
        Ok(Url::parse("https://idp.example/authorize").unwrap())
    }
    fn classify(&self, _code: &UpstreamCode) -> ErrorClass {
        ErrorClass::Other
    }
}

#[tokio::test]
async fn sso_skips_the_token_cache_for_platforms_without_app_tokens() {
    let config: PlatformConfig = serde_json::from_value(json!({
        "tenant": "acme", "platform": NAME, "app_key": "client", "app_secret": "secret"
    }))
    .unwrap();
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap();
    let acme = TenantId::new("acme").unwrap();
    let login = sso
        .login_with_code(&acme, NAME, &AuthCode::new("ok"))
        .await
        .expect("login");
    assert_eq!(login.profile.user_id, "u1");
    let redirect = Url::parse("https://app.example/cb").unwrap();
    sso.authorize_url(
        &acme,
        NAME,
        AuthorizeParams {
            flow: Flow::Web,
            redirect_uri: &redirect,
            state: &State::new("state-0123456789"),
            nonce: None,
            code_challenge: None,
        },
    )
    .await
    .expect("authorize url");
    assert_eq!(PREPARES.load(Ordering::SeqCst), 1);
    let before = STEPS.load(Ordering::SeqCst);
    let err = sso
        .login_with_code(&acme, NAME, &AuthCode::new("rejected"))
        .await
        .expect_err("rejected");
    assert!(err.is_token_invalid(), "{err:?}");
    assert_eq!(
        STEPS.load(Ordering::SeqCst) - before,
        1,
        "no retry without an app token"
    );
    assert_eq!(
        FETCHES.load(Ordering::SeqCst),
        0,
        "an app token was fetched"
    );
}
