#![doc = include_str!("../README.md")]

mod api;
pub mod events;
pub mod isv;
mod jsapi;
mod miniprogram;

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use unilogin_core::envelope::malformed;
use unilogin_core::jsapi::{Signed, TicketKind, TimestampUnit};
use unilogin_core::platform::sdk::choice;
use unilogin_core::platform::{AuthorizeRequest, Base, Hosts, Identity, InClient, JsapiLogin};
use unilogin_core::platform::{Platform, UserToken, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{AccessToken, AppSecret, AuthCode, Error, RefreshToken, Result};
use url::Url;

/// The platform's registered name.
pub const NAME: &str = "feishu";

/// The default mapping rules (YAML).
pub const DEFAULT_RULES: &str = include_str!("../rules.yaml");

/// `tt.requestAccess` (client ≥ 6.9, code valid 3 minutes), falling back to the older
/// `tt.requestAuthCode` inside `h5sdk.ready` (5 minutes).
const JSAPI_LOGIN: JsapiLogin = JsapiLogin {
    sdk_url: "https://lf1-cdn-tos.bytegoofy.com/goofy/lark/op/h5-js-sdk-1.5.16.js",
    global: "tt",
    get_code: include_str!("../jsapi.js"),
    params: |config| json!({ "appId": config.app_key.as_str() }),
};

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "Feishu / Lark (飞书): H5 login-free and web OAuth (v2 and v1 user tokens)",
        default_rules: DEFAULT_RULES,
        user_agent_markers: &["lark/", "larklocale", "feishu"],
        in_client: InClient::Jsapi(JSAPI_LOGIN),
        build: Feishu::build,

        events: Some(events::FeishuEvents::from_credentials),
    }
}

const FEISHU_HOSTS: Hosts = &[
    ("open", "https://open.feishu.cn/"),
    ("accounts", "https://accounts.feishu.cn/"),
];
const LARK_HOSTS: Hosts = &[
    ("open", "https://open.larksuite.com/"),
    ("accounts", "https://accounts.larksuite.com/"),
];

const CORP_ID_HINT: &str = "required: the tenant_key in your users' user_info; others are refused";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenApi {
    V2,
    V1,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    Required,
    BestEffort,
    Off,
}

/// The Feishu / Lark handler for one tenant.
#[derive(Debug, Clone)]
pub struct Feishu {
    base: Base,
    app_secret: AppSecret,
    token_api: TokenApi,
    contact: Contact,
    scope: Option<String>,
    department_id_type: &'static str,
    /// `options.mini_program` (default false): `tt.login` codes are redeemed.
    mini_program: bool,
    /// `mode: isv`: a store app's installed organisation, or its app entry.
    isv: Option<isv::Store>,
}

impl Feishu {
    /// Builds the handler for a tenant's configuration, validating it.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        use {Contact::*, TokenApi::*};
        let config = ctx.config;
        let regions = [("feishu", FEISHU_HOSTS), ("lark", LARK_HOSTS)];
        let base = Base::new(&ctx, choice(config, "region", &regions)?)?;
        if base.app_key.as_str().trim().is_empty() {
            return Err(config.error("app_key", "must be the app's App ID (cli_…)"));
        }
        if config.app_secret.is_empty() {
            return Err(config.error("app_secret", "must not be empty"));
        }
        let store_app = config.store_app_mode()?;
        let isv = if store_app {
            // Without `corp_id`: the app entry (pushes, app token, no logins).
            let tenant_key = config.corp_id.as_deref().map(str::trim);
            let tenant_key = tenant_key.filter(|t| !t.is_empty());
            let store = isv::Store::new(&config.platform, base.app_key.as_str(), tenant_key);
            Some(store.map_err(|field| {
                config.error(
                    field,
                    "not a Feishu id (ASCII letters, digits, `-`, `_`, `.`)",
                )
            })?)
        } else {
            config
                .require_corp_id()
                .map_err(|_| config.error("corp_id", CORP_ID_HINT))?;
            None
        };
        let scope = config.option_str("scope")?.map(str::split_whitespace);
        let scope = scope.map(|s| s.collect::<Vec<_>>().join(" "));
        let contacts = [
            ("required", Required),
            ("best_effort", BestEffort),
            ("off", Off),
        ];
        let departments = ["open_department_id", "department_id"].map(|d| (d, d));
        // Still accepted; every endpoint now gets the token Feishu declares for it.
        choice(config, "app_token_api", &[("tenant", ()), ("app", ())])?;
        let mini_program = config.option_bool("mini_program", false)?;
        if mini_program && isv.is_some() {
            let why = "not available in `mode: isv` (store apps log in through H5 and web logins)";
            return Err(config.error("options.mini_program", why));
        }
        Ok(Arc::new(Self {
            base,
            app_secret: config.app_secret.clone(),
            token_api: choice(config, "token_api", &[("v2", V2), ("v1", V1)])?,
            contact: choice(config, "contact", &contacts)?,
            scope: scope.filter(|s| !s.is_empty()),
            department_id_type: choice(config, "department_id_type", &departments)?,
            mini_program,
            isv,
        }))
    }
}

#[async_trait]
impl Platform for Feishu {
    fn base(&self) -> &Base {
        &self.base
    }

    /// In `mode: isv`, the organisation's `tenant_access_token` (on the app entry the
    /// `app_access_token`), keyed under the app's shared key.
    fn token_key(&self) -> Option<TokenKey> {
        Some(match &self.isv {
            Some(store) => store.token_key().clone(),
            None => self.base.token_key(None),
        })
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        match &self.isv {
            Some(store) if store.org.is_none() => self.fetch_store_app_token().await,
            Some(_) => self.fetch_tenant_token().await,
            None => self.fetch_token(false).await,
        }
    }

    /// v2's exchange sends the app's credentials, no token; v1's `authen/v1/oidc/*` take the
    /// `app_access_token` (`AccessTokenTypeApp` in the official SDK), cached under its key.
    /// In `mode: isv` the store app's `app_access_token` (shared by every organisation).
    fn code_token_key(&self) -> Option<TokenKey> {
        if let Some(store) = &self.isv {
            return Some(store.app_key.clone());
        }
        (self.token_api == TokenApi::V1).then(|| self.base.token_key(Some("app_access_token")))
    }

    async fn fetch_code_token(&self) -> Result<FetchedToken> {
        match &self.isv {
            Some(_) => self.fetch_store_app_token().await,
            None => self.fetch_token(true).await,
        }
    }

    async fn identify_h5(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        self.identify(app_token, code, None).await
    }

    async fn exchange_web_code(
        &self,
        app_token: Option<&AccessToken>,
        web: &WebCallback<'_>,
    ) -> Result<Identity> {
        self.identify(app_token, web.code, Some(web)).await
    }

    /// `contact/v3/users/:open_id` as `{"contact": user}` (`{}`: off, or best effort refused).
    async fn user_detail(
        &self,
        app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value> {
        let ctx = self.base.ctx("contact/v3/users");
        let open_id = match (self.contact, identity.open_id.as_deref()) {
            (Contact::Off, _) => return Ok(json!({})),
            (_, None) => return Err(Error::NotInTenant { ctx }),
            (_, Some(open_id)) => open_id,
        };
        let mut url = self.base.url("open", "open-apis/contact/v3/users/")?;
        url.path_segments_mut()
            .map_err(|()| Error::Internal("the open host cannot be a base".into()))?
            .pop_if_empty()
            .push(open_id);
        url.query_pairs_mut()
            .append_pair("user_id_type", "open_id")
            .append_pair("department_id_type", self.department_id_type);
        let request = self.base.http.request(Method::GET, url);
        let token = Some(self.base.app_token(app_token)?);
        match self.open_call(&ctx, request, token, false).await {
            Ok(response) => match response.body.pointer("/data/user") {
                Some(user) => Ok(json!({ "contact": user })),
                None => Err(malformed(&ctx, &response, "missing `/data/user`")),
            },
            Err(e @ Error::Misconfigured { .. }) if self.contact == Contact::BestEffort => {
                tracing::warn!(error = %e, "directory read refused; continuing without it (options.contact = best_effort)");
                Ok(json!({}))
            }
            Err(e) => Err(e),
        }
    }

    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        if let Some(store) = &self.isv {
            store.org(&self.base)?;
        }
        // PKCE S256 with v2, whose exchange sends the verifier; v1's exchange has no verifier
        // parameter, so a challenge could make its codes unredeemable (see the crate docs).
        let mut url = self.base.url("accounts", "open-apis/authen/v1/authorize")?;
        let pkce = (self.token_api == TokenApi::V2).then_some([
            ("code_challenge", request.code_challenge),
            ("code_challenge_method", "S256"),
        ]);
        url.query_pairs_mut()
            .append_pair("client_id", self.base.app_key.as_str())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", request.redirect_uri.as_str())
            .extend_pairs(self.scope.as_deref().map(|s| ("scope", s)))
            .append_pair("state", request.state.expose())
            .extend_pairs(pkce.into_iter().flatten());
        Ok(url)
    }

    /// One upstream refresh (single-use tokens: the core collapses concurrent refreshes).
    async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        // The refresh step is given no cached app token, so v1 fetches its app_access_token.
        let app_token = match (self.token_api, &self.isv) {
            (TokenApi::V1, Some(_)) => Some(self.store_app_token().await?),
            (TokenApi::V1, None) => Some(self.fetch_token(true).await?.token),
            (TokenApi::V2, _) => None,
        };
        let grant = json!({"grant_type": "refresh_token", "refresh_token": refresh_token.expose()});
        self.user_token(app_token.as_ref(), grant, true).await
    }

    fn login_refusal(&self) -> Option<&'static str> {
        self.isv
            .as_ref()
            .filter(|store| store.org.is_none())
            .map(|_| isv::APP_ENTRY)
    }

    fn ticket_kinds(&self) -> &'static [TicketKind] {
        &[TicketKind::Jsapi]
    }

    /// `jssdk/ticket/get` with the `tenant_access_token` ([`Platform::token_key`]).
    async fn fetch_ticket(
        &self,
        app_token: Option<&AccessToken>,
        kind: TicketKind,
    ) -> Result<FetchedToken> {
        if kind != TicketKind::Jsapi {
            return Err(self.base.unsupported("agent-config tickets (WeCom only)"));
        }
        self.jssdk_ticket(self.base.app_token(app_token)?).await
    }

    /// `h5sdk.config` wants milliseconds.
    fn jsapi_timestamp_unit(&self) -> TimestampUnit {
        TimestampUnit::Milliseconds
    }

    fn jsapi_object(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        self.h5sdk_config(kind, signed, js_api_list)
    }

    fn redeems_mini_program_codes(&self) -> bool {
        self.mini_program
    }

    /// `tokenLoginValidate` takes the `app_access_token` whatever `token_api` is.
    fn mini_program_token_key(&self) -> Option<TokenKey> {
        Some(self.base.token_key(Some("app_access_token")))
    }

    async fn identify_mini_program(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        self.mina_identity(app_token, code).await
    }
}
