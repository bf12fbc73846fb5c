//! Service-provider (third-party) apps: `mode: isv` (reference `isv-jsapi-events.md` §1.3).
//!
//! A tenant entry in this mode is one corp that authorised the suite: `app_key` is the
//! **suite_id**, `app_secret` the suite secret, `corp_id` the authorising corp (`auth_corpid`)
//! and `permanent_code` its permanent authorisation code. Without `corp_id` it is the suite's
//! **app entry**: it receives the instruction callbacks (tickets, authorisations), its app
//! token is the suite token, it redeems installation codes
//! ([`Platform::redeem_install_code`](unilogin_core::Platform::redeem_install_code)) and logs no one in.
//!
//! The token chain, every level through the core token cache:
//! 1. the newest pushed `suite_ticket` (every 10 minutes, valid 30) from the ticket store;
//! 2. the **suite token**, `POST cgi-bin/service/get_suite_token` `{suite_id, suite_secret,
//!    suite_ticket}`, cached under [`TicketApp::shared_suite_key`];
//! 3. the corp's **corp token**, `POST cgi-bin/service/get_corp_token?suite_access_token=`
//!    `{auth_corpid, permanent_code}`, cached under the suite key's
//!    [`organisation`](TokenKey::organisation) key: the handler's app token, used with the
//!    ordinary `?access_token=` APIs (`user/get`, tickets).
//!
//! The logins' code step takes the suite token: `GET cgi-bin/service/auth/getuserinfo3rd`
//! (`corpid`, `userid`, `user_ticket`, `open_userid`; a non-member gets `openid` only).

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use unilogin_core::envelope::{require_str, seconds_at, str_at};
use unilogin_core::events::InstallInfo;
use unilogin_core::isv::{OrgId, TicketApp};
use unilogin_core::platform::sdk::secret_rejected;
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{AccessToken, AppSecret, PlatformName, Result};

use crate::WeCom;

/// What a login on the app entry is refused with.
pub(crate) const APP_ENTRY: &str = "logins on the suite's own entry (mode: isv without corp_id receives the instruction callbacks; each authorising corp has its own entry, with its corp_id and permanent_code)";

const SUITE_HINT: &str = "WeCom rejected the suite credentials: check app_key (the suite_id) and app_secret (the suite secret) of this service-provider entry, and the provider's IP whitelist";

/// The store-app side of a WeCom handler.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) app: TicketApp,
    pub(crate) suite_key: TokenKey,
    /// The authorising corp, its corp-token key and permanent code; `None` on the app entry.
    pub(crate) org: Option<(OrgId, TokenKey, AppSecret)>,
}

impl Store {
    /// The store-app side of an entry, or the configuration field that cannot be one.
    pub(crate) fn new(
        platform: &PlatformName,
        suite_id: &str,
        corp: Option<(&str, Option<&AppSecret>)>,
    ) -> std::result::Result<Self, (&'static str, &'static str)> {
        let app = TicketApp::new(platform.clone(), suite_id).map_err(|_| {
            (
                "app_key",
                "not a suite_id (ASCII letters, digits, `-`, `_`, `.`)",
            )
        })?;
        let suite_key = app.shared_suite_key();
        let org = match corp {
            None => None,
            Some((corp, code)) => {
                let org = OrgId::new(corp).map_err(|_| ("corp_id", "not a WeCom corpid"))?;
                let Some(code) = code.filter(|c| !c.expose().trim().is_empty()) else {
                    return Err((
                        "permanent_code",
                        "required for an authorising corp in `mode: isv` (get_corp_token needs it)",
                    ));
                };
                let key = suite_key.organisation(&org);
                Some((org, key, code.clone()))
            }
        };
        Ok(Self {
            app,
            suite_key,
            org,
        })
    }

    /// The key of the entry's app token: the corp token, or the suite token on the app entry.
    pub(crate) fn token_key(&self) -> &TokenKey {
        self.org.as_ref().map_or(&self.suite_key, |(_, key, _)| key)
    }
}

impl WeCom {
    pub(crate) fn store(&self) -> Result<&Store> {
        self.isv
            .as_ref()
            .ok_or_else(|| self.base.unsupported("service-provider tokens (mode: isv)"))
    }

    /// The authorising corp (`Unsupported` on the app entry).
    pub(crate) fn store_org(&self) -> Result<&(OrgId, TokenKey, AppSecret)> {
        self.store()?
            .org
            .as_ref()
            .ok_or_else(|| self.base.unsupported(APP_ENTRY))
    }

    /// The suite token (`mode: isv`), through the token cache: one fetch per suite for every
    /// corp, refreshed ahead of expiry, with the newest ticket at each fetch.
    pub async fn suite_token(&self) -> Result<AccessToken> {
        let store = self.store()?;
        let cache = &self.base.services()?.token_cache;
        let this = self.clone();
        cache
            .get(&store.suite_key, move || async move {
                this.fetch_suite_token().await
            })
            .await
    }

    /// A fresh suite token from `service/get_suite_token`.
    pub(crate) async fn fetch_suite_token(&self) -> Result<FetchedToken> {
        let store = self.store()?;
        let tickets = &self.base.services()?.tickets;
        let ticket = tickets.require(&store.app).await?.value;
        let path = "cgi-bin/service/get_suite_token";
        let body = json!({
            "suite_id": self.base.app_key.as_str(),
            "suite_secret": self.secret.expose(),
            "suite_ticket": ticket.expose(),
        });
        let response = self
            .call(Method::POST, path, &[], Some(body))
            .await
            .map_err(secret_rejected(SUITE_HINT))?;
        fetched(self, path, &response, "/suite_access_token")
    }

    /// A fresh corp token of the entry's corp (the handler's app token in `mode: isv`).
    pub(crate) async fn fetch_corp_token(&self) -> Result<FetchedToken> {
        let (org, _, code) = self.store_org()?;
        let suite = self.suite_token().await?;
        let path = "cgi-bin/service/get_corp_token";
        let body = json!({ "auth_corpid": org.as_str(), "permanent_code": code.expose() });
        let query = [("suite_access_token", suite.expose())];
        let response = self
            .call(Method::POST, path, &query, Some(body.clone()))
            .await;
        let response = match response {
            Err(unilogin_core::Error::TokenInvalid { .. }) => {
                // The suite token was refused: forget exactly it, and try once with a new one.
                self.base
                    .services()?
                    .token_cache
                    .invalidate(&self.store()?.suite_key, &suite)
                    .await;
                let suite = self.suite_token().await?;
                let query = [("suite_access_token", suite.expose())];
                self.call(Method::POST, path, &query, Some(body)).await?
            }
            other => other?,
        };
        fetched(self, path, &response, "/access_token")
    }

    /// `service/get_permanent_code`: the corp and its permanent code for an installation's
    /// `AuthCode`.
    pub(crate) async fn permanent_code(&self, code: &AppSecret) -> Result<(OrgId, InstallInfo)> {
        let suite = self.suite_token().await?;
        let path = "cgi-bin/service/get_permanent_code";
        let query = [("suite_access_token", suite.expose())];
        let body = json!({ "auth_code": code.expose() });
        let response = self.call(Method::POST, path, &query, Some(body)).await?;
        let ctx = self.base.ctx(path);
        let corp = require_str(&ctx, &response, "/auth_corp_info/corpid")?;
        let org = OrgId::new(&corp).map_err(|_| unilogin_core::Error::BadResponse {
            ctx: self.base.ctx(path),
            status: response.status,
            kind: unilogin_core::error::BadBody::Malformed,
            excerpt: "auth_corp_info.corpid is not a corpid".into(),
        })?;
        let body = &response.body;
        let info = InstallInfo {
            org_name: str_at(body, "/auth_corp_info/corp_name"),
            agent_id: body.pointer("/auth_info/agent/0/agentid").and_then(|v| {
                v.as_u64()
                    .map(|n| n.to_string())
                    .or_else(|| v.as_str().map(str::to_string))
            }),
            installer: str_at(body, "/auth_user_info/userid"),
            permanent_code: Some(AppSecret::new(require_str(
                &ctx,
                &response,
                "/permanent_code",
            )?)),
            temporary_code: None,
        };
        Ok((org, info))
    }
}

fn fetched(
    wecom: &WeCom,
    path: &'static str,
    response: &unilogin_core::http::UpstreamResponse,
    token_at: &str,
) -> Result<FetchedToken> {
    let token = AccessToken::new(require_str(&wecom.base.ctx(path), response, token_at)?);
    let expires_in = seconds_at(&response.body, "/expires_in").unwrap_or(Duration::from_secs(7200));
    Ok(FetchedToken { token, expires_in })
}

impl WeCom {
    /// The authorize links of a suite: in-client OAuth with `appid` = the suite_id (no
    /// `agentid`), web login with `login_type=ServiceApp`.
    pub(crate) fn authorize_3rd(
        &self,
        flow: unilogin_core::platform::Flow,
        state: &str,
        redirect_uri: &str,
    ) -> Result<url::Url> {
        use unilogin_core::platform::Flow;
        self.store_org()?;
        let suite_id = self.base.app_key.as_str();
        match flow {
            Flow::H5 => {
                if !crate::is_valid_h5_state(state) {
                    return Err(self.base.unsupported(
                        "an in-client OAuth `state` other than 1-128 ASCII letters and digits (WeCom answers errcode 84025)",
                    ));
                }
                let pairs = [
                    ("appid", suite_id),
                    ("redirect_uri", redirect_uri),
                    ("response_type", "code"),
                    ("scope", self.scope),
                    ("state", state),
                ];
                let mut url = self.link("oauth", "connect/oauth2/authorize", &pairs)?;
                url.set_fragment(Some("wechat_redirect"));
                Ok(url)
            }
            Flow::Web => {
                let pairs = [
                    ("login_type", "ServiceApp"),
                    ("appid", suite_id),
                    ("redirect_uri", redirect_uri),
                    ("state", state),
                ];
                self.link("login", "wwlogin/sso/login", &pairs)
            }
        }
    }

    /// `service/auth/getuserinfo3rd` with the suite token: a member of the entry's corp, or
    /// [`Error::NotInTenant`](unilogin_core::Error::NotInTenant) (a non-member's `openid`, or
    /// another corp's member).
    pub(crate) async fn identify_3rd(
        &self,
        suite_token: Option<&AccessToken>,
        callback: &unilogin_core::platform::WebCallback<'_>,
    ) -> Result<unilogin_core::platform::Identity> {
        let (org, _, _) = self.store_org()?;
        let token = self.base.app_token(suite_token)?;
        let path = "cgi-bin/service/auth/getuserinfo3rd";
        let query = [
            ("suite_access_token", token.expose()),
            ("code", callback.code.expose()),
        ];
        let response = self.call(Method::GET, path, &query, None).await?;
        let body = &response.body;
        let ctx = || self.base.ctx(path);
        let user_id = str_at(body, "/userid").or_else(|| str_at(body, "/UserId"));
        let corp = str_at(body, "/corpid").or_else(|| str_at(body, "/CorpId"));
        let Some(user_id) = user_id else {
            if str_at(body, "/openid").is_some() || str_at(body, "/OpenId").is_some() {
                return Err(unilogin_core::Error::NotInTenant { ctx: ctx() });
            }
            return Err(unilogin_core::Error::BadResponse {
                ctx: ctx(),
                status: response.status,
                kind: unilogin_core::error::BadBody::Malformed,
                excerpt: "neither `userid` nor `openid` in getuserinfo3rd".into(),
            });
        };
        if corp.as_deref() != Some(org.as_str()) {
            return Err(unilogin_core::Error::NotInTenant { ctx: ctx() });
        }
        Ok(unilogin_core::platform::Identity {
            user_id: Some(user_id),
            open_id: str_at(body, "/open_userid"),
            user_ticket: str_at(body, "/user_ticket").map(unilogin_core::UserTicket::new),
            ..Default::default()
        })
    }
}
