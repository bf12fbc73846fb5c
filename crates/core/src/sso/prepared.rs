//! [`Prepared`]: one (tenant, platform, configuration revision), resolved once, and every
//! login step run on it.

use std::any::{Any, TypeId};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;
use url::Url;

use super::{Login, Sso, USER_REFRESH_KEEP, shared_user_token};
use crate::config::PlatformConfig;
use crate::error::{Error, Result, StateProblem, UpstreamCode, UpstreamCtx};
use crate::jsapi::{self, JsapiConfig, PageUrl, Signed, TicketKind};
use crate::mapping::{KnownIds, MappingRules};
use crate::platform::{
    AuthorizeRequest, CodeKind, Flow, Identity, Platform, UserToken, WebCallback,
};
use crate::redirect::check_redirect;
use crate::registry::PlatformRegistration;
use crate::token_cache::TokenKey;
use crate::types::{AccessToken, AuthCode, PlatformName, RefreshToken, TenantId};
use crate::web_login::{Callback, PendingLogin, WebLoginStart};

/// Transient failures of the detail step retried (a code step is never retried).
const TRANSIENT_RETRIES: u32 = 2;

/// Whether a failed detail step is retried here: the platform's own "busy" answers are, but
/// not rate limits (back off) nor HTTP-level failures without a platform answer (an HTML
/// error page of a proxy, a bare 5xx), which go to the caller at once as transient (a gateway
/// answers 503 with `Retry-After`) instead of adding load to a failing front.
fn retried_here(e: &Error) -> bool {
    e.is_transient()
        && !matches!(
            e,
            Error::RateLimited { .. }
                | Error::Upstream {
                    code: UpstreamCode::Http(_),
                    ..
                }
        )
}

/// Which app token a step is given: the code step's ([`Platform::code_token_key`]), the
/// mini-program code step's ([`Platform::mini_program_token_key`]) or the others'
/// ([`Platform::token_key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StepToken {
    Code,
    MiniProgram,
    Other,
}

/// Values compiled from the configuration, by type, once per revision.
type Compiled = Mutex<Vec<(TypeId, Arc<dyn Any + Send + Sync>)>>;

/// The handler's app-token keys, computed once per revision (they depend only on the
/// configuration).
struct StepKeys {
    other: Option<TokenKey>,
    code: Option<TokenKey>,
    mini_program: Option<TokenKey>,
}

/// The ticket key last derived per kind, with the app token it was derived from: a signature
/// on a ticket hit then costs no digest.
type TicketKeys = RwLock<Vec<(TicketKind, AccessToken, TokenKey)>>;

struct Inner {
    sso: Sso,
    registration: &'static PlatformRegistration,
    config: Arc<PlatformConfig>,
    handler: Arc<dyn Platform>,
    rules: MappingRules,
    compiled: Compiled,
    keys: StepKeys,
    ticket_keys: TicketKeys,
}

/// A resolved (tenant, platform) at one configuration revision: its configuration, its
/// registration, its built handler and compiled mapping rules. Get it with
/// [`Sso::prepare`](super::Sso::prepare) once per request and run the steps on it; cheap to
/// clone.
#[derive(Clone)]
pub struct Prepared {
    inner: Arc<Inner>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("platform", self.platform())
            .field("tenant", self.tenant())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    pub(super) fn new(
        sso: Sso,
        registration: &'static PlatformRegistration,
        config: Arc<PlatformConfig>,
        handler: Arc<dyn Platform>,
        rules: MappingRules,
    ) -> Self {
        let keys = StepKeys {
            other: handler.token_key(),
            code: handler.code_token_key(),
            mini_program: handler.mini_program_token_key(),
        };
        Self {
            inner: Arc::new(Inner {
                sso,
                registration,
                config,
                handler,
                rules,
                compiled: Mutex::new(Vec::new()),
                keys,
                ticket_keys: RwLock::new(Vec::new()),
            }),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.inner.config.tenant
    }

    /// The platform's canonical name.
    pub fn platform(&self) -> &PlatformName {
        &self.inner.config.platform
    }

    /// The configuration revision this handle was built from.
    pub fn config(&self) -> &Arc<PlatformConfig> {
        &self.inner.config
    }

    /// The platform's registration (its in-client surface, user-agent markers, rules).
    pub fn registration(&self) -> &'static PlatformRegistration {
        self.inner.registration
    }

    /// The built handler.
    pub fn handler(&self) -> &Arc<dyn Platform> {
        &self.inner.handler
    }

    /// A value compiled from this configuration revision (for example session scope rules, or
    /// a caller's own per-tenant settings): built by `build` on first use, then shared by every
    /// request of this revision. A failed build is not kept.
    pub fn compiled<T, F>(&self, build: F) -> Result<Arc<T>>
    where
        T: Any + Send + Sync,
        F: FnOnce(&PlatformConfig) -> Result<T>,
    {
        let id = TypeId::of::<T>();
        let lock = || {
            self.inner
                .compiled
                .lock()
                .map_err(|_| Error::Internal("compiled-value lock poisoned".into()))
        };
        let found = lock()?
            .iter()
            .find(|(t, _)| *t == id)
            .map(|(_, v)| v.clone());
        if let Some(v) = found {
            return v
                .downcast::<T>()
                .map_err(|_| Error::Internal("compiled value of another type".into()));
        }
        let value = Arc::new(build(&self.inner.config)?);
        let mut table = lock()?;
        if let Some((_, v)) = table.iter().find(|(t, _)| *t == id) {
            // Another request compiled it meanwhile: keep one.
            return v
                .clone()
                .downcast::<T>()
                .map_err(|_| Error::Internal("compiled value of another type".into()));
        }
        table.push((id, value.clone()));
        Ok(value)
    }

    /// Checks a user-supplied return URL against the tenant's allow-list (exact match).
    pub fn check_return_to(&self, candidate: &str) -> Result<Url> {
        check_redirect(self.tenant(), &self.inner.config.redirect_uris, candidate)
    }

    /// The H5 login-free exchange: a code from the platform client's JSAPI becomes a profile.
    ///
    /// Only platforms whose registration declares
    /// [`InClient::Jsapi`](crate::platform::InClient::Jsapi) redeem a code this way: any
    /// other platform's codes also arrive on browser redirects, and are refused with
    /// [`Error::RedirectLoginRequired`] before any upstream call (finish their redirect login
    /// instead, with its state).
    pub async fn login_with_code(&self, code: &AuthCode) -> Result<Login> {
        self.login_with_code_kind(CodeKind::Jsapi, code).await
    }

    /// A code redeemed without state, of either kind: [`CodeKind::Jsapi`] is
    /// [`login_with_code`](Self::login_with_code); [`CodeKind::MiniProgram`] is a mini
    /// program's login code (Feishu `tt.login`, WeCom `qy.login`, DingTalk mini-app
    /// `dd.getAuthCode`), redeemed only where the handler declares it
    /// ([`Platform::redeems_mini_program_codes`]; otherwise [`Error::Unsupported`] before any
    /// upstream call) by [`Platform::identify_mini_program`], then the same detail step and
    /// mapping as every login, so it yields the same [`UserProfile`](crate::UserProfile). The
    /// login's flow is [`Flow::H5`] (inside the client).
    ///
    /// ```no_run
    /// # async fn demo(prepared: unilogin_core::Prepared) -> unilogin_core::Result<()> {
    /// use unilogin_core::AuthCode;
    /// use unilogin_core::platform::CodeKind;
    /// let login = prepared
    ///     .login_with_code_kind(CodeKind::MiniProgram, &AuthCode::new("code-from-tt.login"))
    ///     .await?;
    /// println!("{}", login.profile.subject);
    /// # Ok(()) }
    /// ```
    pub async fn login_with_code_kind(&self, kind: CodeKind, code: &AuthCode) -> Result<Login> {
        self.logs_in()?;
        let step = match kind {
            CodeKind::Jsapi if !self.inner.registration.in_client.redeems_without_state() => {
                return Err(Error::RedirectLoginRequired {
                    platform: self.platform().clone(),
                });
            }
            CodeKind::MiniProgram if !self.inner.handler.redeems_mini_program_codes() => {
                return Err(Error::Unsupported {
                    platform: self.platform().clone(),
                    operation: "mini-program login codes",
                });
            }
            CodeKind::Jsapi => StepToken::Code,
            CodeKind::MiniProgram => StepToken::MiniProgram,
        };
        let span = tracing::debug_span!("login", tenant = %self.tenant(), platform = %self.platform(), flow = "h5", code = kind.as_str());
        async {
            let identity = self
                .with_app_token(step, |token| {
                    let handler = self.inner.handler.clone();
                    let code = code.clone();
                    async move {
                        match kind {
                            CodeKind::Jsapi => handler.identify_h5(token.as_ref(), &code).await,
                            CodeKind::MiniProgram => {
                                handler.identify_mini_program(token.as_ref(), &code).await
                            }
                        }
                    }
                })
                .await?;
            self.finish(identity, Flow::H5).await
        }
        .instrument(span)
        .await
    }

    /// The configuration object a page at `page_url` passes to its platform's JS SDK
    /// (`dd.config`, `h5sdk.config`, `wx.config` for [`TicketKind::Jsapi`], `wx.agentConfig`
    /// for [`TicketKind::AgentConfig`]), signed for that exact URL.
    ///
    /// The URL is checked first ([`PageUrl::parse`]: fragment removed, everything else kept
    /// byte for byte; [`Error::InvalidPageUrl`] otherwise), and a kind the platform does not
    /// offer ([`Platform::ticket_kinds`]) is [`Error::Unsupported`], both before any upstream
    /// call. The app token and the ticket come from the token cache (one ticket fetch per app
    /// and app token, across replicas sharing a store; refreshed ahead of expiry); a ticket
    /// fetch refused because the app token is invalid invalidates that token and runs once
    /// more with a fresh one. Then a fresh nonce and the current time (in the platform's
    /// [`TimestampUnit`](crate::jsapi::TimestampUnit)) are signed and the platform builds its
    /// object ([`Platform::jsapi_object`]) listing `js_api_list`. Checking that the page's
    /// origin ([`PageUrl::origin`]) is one the tenant allows is the caller's job.
    ///
    /// ```no_run
    /// # async fn demo(prepared: unilogin_core::Prepared) -> unilogin_core::Result<()> {
    /// use unilogin_core::jsapi::TicketKind;
    /// let apis = vec!["biz.contact.choose".to_string()];
    /// let signed = prepared
    ///     .jsapi_config("https://app.example.com/h5/index?x=1#/home", TicketKind::Jsapi, &apis)
    ///     .await?;
    /// // Render `dd.config(<signed.config>)` (or h5sdk.config, wx.config) into the page.
    /// println!("{}", signed.config);
    /// # Ok(()) }
    /// ```
    pub async fn jsapi_config(
        &self,
        page_url: &str,
        kind: TicketKind,
        js_api_list: &[String],
    ) -> Result<JsapiConfig> {
        self.jsapi_config_for(PageUrl::parse(page_url)?, kind, js_api_list)
            .await
    }

    /// [`jsapi_config`](Self::jsapi_config) for a page URL already parsed (the caller checked
    /// its origin on the same value): no second parse.
    pub async fn jsapi_config_for(
        &self,
        url: PageUrl,
        kind: TicketKind,
        js_api_list: &[String],
    ) -> Result<JsapiConfig> {
        let (_, ticket) = self.ticket(kind).await?;
        let unit = self.inner.handler.jsapi_timestamp_unit();
        let signed = jsapi::sign_page(&ticket, url, jsapi::nonce(), unit.now());
        let config = self
            .inner
            .handler
            .jsapi_object(kind, &signed, js_api_list)?;
        Ok(JsapiConfig {
            kind,
            signed,
            config,
        })
    }

    /// Forgets the ticket that signed `rejected` — a configuration the client reports its
    /// platform refused (DingTalk 52013, WeCom "invalid signature") — so the next
    /// [`jsapi_config`](Self::jsapi_config) fetches a new one. `rejected` is what the page
    /// was given (URL, nonce, timestamp, signature), typically posted back by it.
    ///
    /// The current ticket is deleted (compare-and-delete, in memory and in the store) only if
    /// it produces exactly `rejected.signature` for those values: a report about an older
    /// ticket, or a forged one, changes nothing and returns `Ok(false)`. A signature mismatch
    /// is far more often a URL problem than a bad ticket (see [`crate::jsapi`]), and every
    /// refetch spends the platform's ticket quota, so rate-limit these reports.
    pub async fn invalidate_ticket(&self, kind: TicketKind, rejected: &Signed) -> Result<bool> {
        let Some((key, ticket)) = self.signing_ticket(kind, rejected).await? else {
            return Ok(false);
        };
        tracing::info!(ticket = %key, "the client reported the ticket rejected; invalidating it");
        self.inner.sso.inner.cache.invalidate(&key, &ticket).await;
        Ok(true)
    }

    /// Whether `signed` was signed with the current ticket of `kind` (constant-time), without
    /// changing anything: lets a caller rate-limit genuine rejection reports before
    /// [`invalidate_ticket`](Self::invalidate_ticket) spends a refetch.
    pub async fn ticket_signed(&self, kind: TicketKind, signed: &Signed) -> Result<bool> {
        Ok(self.signing_ticket(kind, signed).await?.is_some())
    }

    /// The current ticket of `kind` and its key when it produced exactly `signed`.
    async fn signing_ticket(
        &self,
        kind: TicketKind,
        signed: &Signed,
    ) -> Result<Option<(TokenKey, AccessToken)>> {
        use subtle::ConstantTimeEq as _;
        if signed.nonce.len() > jsapi::MAX_NONCE_LEN || signed.signature.len() != 40 {
            return Ok(None);
        }
        let (key, ticket) = self.ticket(kind).await?;
        let expected = jsapi::sign(
            ticket.expose(),
            &signed.nonce,
            signed.timestamp,
            signed.url.as_str(),
        );
        let reported = signed.signature.to_ascii_lowercase();
        Ok(bool::from(expected.as_bytes().ct_eq(reported.as_bytes())).then_some((key, ticket)))
    }

    /// The current ticket of `kind` and its cache key, through the token cache.
    async fn ticket(&self, kind: TicketKind) -> Result<(TokenKey, AccessToken)> {
        let handler = &self.inner.handler;
        let app_key = self.inner.keys.other.as_ref();
        let (true, Some(app_key)) = (handler.ticket_kinds().contains(&kind), app_key) else {
            return Err(Error::Unsupported {
                platform: self.platform().clone(),
                operation: match kind {
                    TicketKind::Jsapi => "JSAPI tickets",
                    TicketKind::AgentConfig => "agent-config tickets (wx.agentConfig)",
                },
            });
        };
        let cache = &self.inner.sso.inner.cache;
        self.with_app_token(StepToken::Other, |token| {
            let handler = handler.clone();
            async move {
                let token = handler.base().app_token(token.as_ref())?.clone();
                let key = self.ticket_key(app_key, kind, &token);
                let ticket = cache
                    .get(&key, move || async move {
                        handler.fetch_ticket(Some(&token), kind).await
                    })
                    .await?;
                Ok((key, ticket))
            }
        })
        .await
    }

    /// Starts a redirect login (web/QR, or [`Flow::H5`] for an in-client OAuth redirect):
    /// fresh state, PKCE verifier and nonce, and the platform's authorize URL carrying them.
    /// Keep [`WebLoginStart::pending`] server-side until the callback.
    pub async fn start_web_login(&self, flow: Flow, redirect_uri: &Url) -> Result<WebLoginStart> {
        self.logs_in()?;
        let pending = PendingLogin::new(
            self.tenant().clone(),
            self.platform().clone(),
            flow,
            redirect_uri.clone(),
        );
        let challenge = pending.code_challenge();
        let url = self
            .inner
            .handler
            .authorize_url(&AuthorizeRequest {
                flow,
                redirect_uri,
                state: &pending.state,
                nonce: pending.nonce.expose(),
                code_challenge: &challenge,
            })
            .await?;
        Ok(WebLoginStart { url, pending })
    }

    /// Finishes a redirect login. Checks, before the code is spent, that the callback's state
    /// is the pending login's (constant-time), that the pending login was started for this
    /// tenant and platform, and the provider's `iss` (RFC 9207); then exchanges the code with
    /// the PKCE verifier and nonce. The caller keeps the pending login single-use.
    pub async fn finish_web_login(
        &self,
        pending: &PendingLogin,
        callback: &Callback,
    ) -> Result<Login> {
        self.logs_in()?;
        if !callback.state_matches(pending) {
            return Err(Error::State(StateProblem::Unknown));
        }
        if pending.tenant != *self.tenant() || pending.platform != *self.platform() {
            return Err(Error::State(StateProblem::WrongTarget));
        }
        let policy = self.inner.handler.authorization_issuer().await?;
        callback.check_issuer(policy.as_ref())?;
        let span = tracing::debug_span!("login", tenant = %self.tenant(), platform = %self.platform(), flow = %pending.flow);
        async {
            let exchange = WebCallback {
                code: &callback.code,
                redirect_uri: &pending.redirect_uri,
                code_verifier: pending.pkce_verifier.expose(),
                nonce: pending.nonce.expose(),
            };
            let identity = self
                .with_app_token(StepToken::Code, |token| {
                    let handler = self.inner.handler.clone();
                    async move { handler.exchange_web_code(token.as_ref(), &exchange).await }
                })
                .await?;
            self.finish(identity, pending.flow).await
        }
        .instrument(span)
        .await
    }

    /// Redeems a store app's installation code with this entry's handler (see
    /// [`Platform::redeem_install_code`](crate::platform::Platform::redeem_install_code)).
    pub async fn redeem_install_code(
        &self,
        code: &crate::AppSecret,
    ) -> Result<(crate::isv::OrgId, crate::events::InstallInfo)> {
        self.handler().redeem_install_code(code).await
    }

    /// Refreshes a user's token with the platform.
    ///
    /// Concurrent refreshes of the same refresh token run **once**, in this process and across
    /// every replica whose [`TokenCache`](crate::token_cache::TokenCache) shares a store, and
    /// all callers get the same new token set
    /// ([`TokenCache::single_flight`](crate::token_cache::TokenCache::single_flight) under
    /// [`TokenKey::user_refresh`](crate::token_cache::TokenKey::user_refresh)): with
    /// single-use refresh tokens (Feishu) a second upstream refresh would be refused and log
    /// that user out. With a store, the new token set is also kept there for
    /// [`USER_REFRESH_KEEP`] (in clear text, like app tokens), so a refresh with the same token
    /// arriving that much later gets it too; its `expires_in` figures are then as the platform
    /// reported them at the refresh. Without a store only concurrent callers of this process
    /// share.
    pub async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        let handler = self.inner.handler.clone();
        let key = handler
            .token_key()
            .unwrap_or_else(|| handler.base().token_key(None))
            .user_refresh(refresh_token);
        let token = refresh_token.clone();
        let shared = self
            .inner
            .sso
            .inner
            .cache
            .single_flight(&key, USER_REFRESH_KEEP, move || async move {
                let fresh = handler.refresh_user_token(&token).await?;
                shared_user_token::encode(&fresh)
            })
            .await?;
        match shared_user_token::decode(&shared) {
            Some(token) => Ok(token),
            None => {
                // Another version's encoding: treat it as absent and ask the platform.
                tracing::warn!(key = %key, "unreadable shared user token; refreshing without it");
                self.inner.handler.refresh_user_token(refresh_token).await
            }
        }
    }

    /// [`Error::Unsupported`] where the handler refuses every login
    /// ([`Platform::login_refusal`]).
    fn logs_in(&self) -> Result<()> {
        match self.inner.handler.login_refusal() {
            None => Ok(()),
            Some(operation) => Err(Error::Unsupported {
                platform: self.platform().clone(),
                operation,
            }),
        }
    }

    /// The key of the ticket of `kind` fetched with `token` ([`TokenKey::ticket`]), memoized
    /// per kind for the current app token.
    fn ticket_key(&self, app_key: &TokenKey, kind: TicketKind, token: &AccessToken) -> TokenKey {
        let memo = &self.inner.ticket_keys;
        let found = memo
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            // The cache hands out the token it holds, so a hit is the same allocation: that
            // comparison first (it reads no secret byte), the constant-time one otherwise.
            .find(|(k, t, _)| {
                *k == kind && (std::ptr::eq(t.expose(), token.expose()) || t == token)
            })
            .map(|(_, _, key)| key.clone());
        if let Some(key) = found {
            return key;
        }
        let key = app_key.ticket(kind, token);
        let mut memo = memo.write().unwrap_or_else(PoisonError::into_inner);
        memo.retain(|(k, _, _)| *k != kind);
        memo.push((kind, token.clone(), key.clone()));
        key
    }

    /// The cache key of the app token a step of `kind` is given.
    fn token_key_for(&self, kind: StepToken) -> Option<&TokenKey> {
        let keys = &self.inner.keys;
        match kind {
            StepToken::Code => keys.code.as_ref(),
            StepToken::MiniProgram => keys.mini_program.as_ref(),
            StepToken::Other => keys.other.as_ref(),
        }
    }

    async fn app_token(&self, kind: StepToken) -> Result<Option<AccessToken>> {
        let Some(key) = self.token_key_for(kind) else {
            return Ok(None);
        };
        // A code step's own kind of token, where the platform declares one.
        let own = Some(key) != self.inner.keys.other.as_ref();
        let handler = self.inner.handler.clone();
        self.inner
            .sso
            .inner
            .cache
            .get(key, move || async move {
                if own {
                    handler.fetch_code_token().await
                } else {
                    handler.fetch_app_token().await
                }
            })
            .await
            .map(Some)
    }

    /// Runs `step` with the app token of its `kind`; when the platform rejects the token,
    /// invalidates exactly that token and runs the step once more with a fresh one.
    async fn with_app_token<T, F, Fut>(&self, kind: StepToken, step: F) -> Result<T>
    where
        F: Fn(Option<AccessToken>) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let token = self.app_token(kind).await?;
        match step(token.clone()).await {
            Err(e) if e.is_token_invalid() => {
                let (Some(key), Some(token)) = (self.token_key_for(kind), token) else {
                    return Err(e);
                };
                tracing::info!(error = %e, "app token rejected; invalidating it and retrying once");
                self.inner.sso.inner.cache.invalidate(key, &token).await;
                let fresh = self.app_token(kind).await?;
                step(fresh).await
            }
            other => other,
        }
    }

    async fn finish(&self, identity: Identity, flow: Flow) -> Result<Login> {
        let handler = &self.inner.handler;
        if let (Some(org), Some(corp)) = (&identity.org_id, &self.inner.config.corp_id)
            && !org.is_empty()
            && org != corp
        {
            return Err(Error::NotInTenant {
                ctx: UpstreamCtx::new(
                    Some(self.tenant().clone()),
                    self.platform().clone(),
                    "membership",
                ),
            });
        }
        let mut attempt = 0;
        let mut detail = loop {
            let result = self
                .with_app_token(StepToken::Other, |token| {
                    let handler = handler.clone();
                    let identity = &identity;
                    async move { handler.user_detail(token.as_ref(), identity).await }
                })
                .await;
            match result {
                Err(e) if attempt < TRANSIENT_RETRIES && retried_here(&e) => {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "transient failure fetching user detail; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                other => break other?,
            }
        };
        if let Value::Object(map) = &mut detail {
            for (k, v) in &identity.documents {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        // What the code step learnt fills the identifiers the detail document lacks.
        let known = KnownIds {
            user_id: identity.user_id.as_deref(),
            union_id: identity.union_id.as_deref(),
            open_id: identity.open_id.as_deref(),
        };
        let profile = self
            .inner
            .rules
            .map_with(self.platform(), self.tenant(), &detail, known)?;
        // The caller logs the outcome (the gateway: one line per issued session).
        tracing::debug!(subject = %profile.subject, kind = %profile.subject.kind, "login succeeded");
        Ok(Login {
            profile,
            user_token: identity.user_token,
            flow,
        })
    }
}
