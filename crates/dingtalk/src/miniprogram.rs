//! DingTalk mini-apps (小程序): `dd.getAuthCode({corpId})` in a mini-app yields the same code as
//! in an H5 page, redeemed by the same exchange (`topapi/v2/user/getuserinfo` with the app
//! token); a mini-app needs no `dd.config` to get it.

use unilogin_core::platform::{Identity, Platform as _};
use unilogin_core::{AccessToken, AuthCode, Result};

use crate::DingTalk;

impl DingTalk {
    /// A mini-app code: the H5 exchange.
    pub(crate) async fn mini_app_identity(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        self.identify_h5(app_token, code).await
    }
}
