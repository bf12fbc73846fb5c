//! WeCom mini programs (企业微信小程序): the code of `wx.qy.login` is exchanged with
//! `GET cgi-bin/miniprogram/jscode2session?access_token=&js_code=&grant_type=authorization_code`
//! with the access token of the self-built app **associated with the mini program** (this
//! configuration's corp + agent + secret, not the mini program's appid/secret) → `corpid`,
//! `userid`, `session_key`. The `session_key` is dropped as soon as the response arrives
//! (never kept, logged or put in an error).

use reqwest::Method;
use unilogin_core::envelope::require_str;
use unilogin_core::platform::Identity;
use unilogin_core::{AccessToken, AuthCode, Result};

use crate::WeCom;

const PATH: &str = "cgi-bin/miniprogram/jscode2session";

impl WeCom {
    /// `qy.login` code → identity (`userid`; a `corpid` other than this corp's is reported
    /// as the organisation, which the core refuses).
    pub(crate) async fn mini_program_identity(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        let token = self.base.app_token(app_token)?;
        let query = [
            ("access_token", token.expose()),
            ("js_code", code.expose()),
            ("grant_type", "authorization_code"),
        ];
        let mut response = self.call(Method::GET, PATH, &query, None).await?;
        if let Some(body) = response.body.as_object_mut() {
            body.remove("session_key");
        }
        let ctx = self.base.ctx(PATH);
        let user_id = require_str(&ctx, &response, "/userid")?;
        let corp = require_str(&ctx, &response, "/corpid")?;
        Ok(Identity {
            user_id: Some(user_id),
            org_id: (corp != self.corp_id()).then_some(corp),
            ..Identity::default()
        })
    }
}
