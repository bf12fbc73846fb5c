//! The contract every platform fake fulfils, used by the shared conformance suite.
//!
//! [`FakePlatform`] is **object safe**: a suite can hold `Box<dyn FakePlatform>` /
//! `&dyn FakePlatform` and run the same tests against DingTalk, Feishu and WeCom. Every method is
//! synchronous (state changes are in-memory), so no async-trait machinery is needed. Methods that
//! only touch shared infrastructure have default implementations on top of
//! [`FakePlatform::harness`]; the platform fakes implement the rest once, through the skeleton
//! [`Fake`](crate::Fake) and their [`Backend`](crate::Backend).

use std::time::Duration;

use crate::faults::{Fault, FaultError, Times};
use crate::server::Harness;
use crate::users::FakeUser;

/// The credentials of a fake's default app, as plain strings (the fake does not depend on
/// unilogin's newtypes). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct AppCredentials {
    /// App key / app id / client id (DingTalk AppKey, Feishu `app_id`, WeCom: the corp id).
    pub app_key: String,
    /// App secret (DingTalk AppSecret, Feishu `app_secret`, WeCom `corpsecret`).
    pub app_secret: String,
    /// Organisation id (DingTalk CorpId, Feishu tenant key, WeCom corpid).
    pub corp_id: String,
    /// Agent id inside the organisation (DingTalk AgentId, WeCom `agentid`); empty if unused.
    pub agent_id: String,
}

/// `impl Debug` for a struct that holds a secret: its fields in order, as `derive(Debug)` prints
/// them, but the `[secret]` one as `"***"`:
/// `debug_hiding_secret!(AppCredentials { app_key, [app_secret], corp_id, agent_id })`.
macro_rules! debug_hiding_secret {
    ($ty:ident { $($before:ident,)* [$secret:ident] $(, $after:ident)* $(,)? }) => {
        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($before), &self.$before))*
                    .field(stringify!($secret), &"***")
                    $(.field(stringify!($after), &self.$after))*
                    .finish()
            }
        }
    };
}
pub(crate) use debug_hiding_secret;

debug_hiding_secret!(AppCredentials { app_key, [app_secret], corp_id, agent_id });

/// What an endpoint does in a login, so platform-neutral suites can aim faults at "the code
/// exchange" without knowing endpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointRole {
    /// Fetches the app (tenant/corp) access token.
    AppToken,
    /// Exchanges an in-app (H5) code for the user's identity.
    H5CodeExchange,
    /// Returns the user's detail document with the app token.
    UserDetail,
    /// Maps a cross-org identity to this organisation's user (membership check).
    Membership,
    /// The browser authorize page.
    Authorize,
    /// Exchanges a web OAuth2 code (or refresh token) for a user token.
    WebCodeExchange,
    /// Returns the logged-in user's profile with a user token.
    WebUserInfo,
}

/// A running fake of one platform. See the module docs.
pub trait FakePlatform: Send + Sync {
    /// Platform name as used in unilogin's registry (`"dingtalk"`, `"feishu"`, `"wecom"`).
    fn name(&self) -> &'static str;

    /// Base URL of the fake (`http://127.0.0.1:PORT`); every host of the platform maps to it.
    fn base_url(&self) -> &str;

    /// The default app's credentials.
    fn credentials(&self) -> AppCredentials;

    /// Add (or replace, by `user_id`) a user.
    fn add_user(&self, user: FakeUser);

    /// The id of a default member of the home organisation with every profile field filled.
    fn demo_user_id(&self) -> String;

    /// The id of a default user from another organisation (web login works, membership fails),
    /// if the platform has that concept.
    fn outsider_user_id(&self) -> Option<String>;

    /// A fresh in-app (H5 / JSAPI) code for `user_id`, valid once for 5 minutes on the fake clock.
    /// For a user who cannot obtain one (unknown, or not in the home organisation) the returned
    /// code is one the platform never issued, so exchanging it fails with the invalid-code error.
    fn issue_h5_code(&self, user_id: &str) -> String;

    /// The code the authorize page's *Approve* button would send to the callback for `user_id`
    /// (default app, default scopes), valid once for 5 minutes. Unknown users get a code that the
    /// platform never issued.
    fn approve_web_login(&self, user_id: &str) -> String;

    /// Revoke every app token issued so far: their next use gets the platform's token-invalid
    /// error, and the next token request issues a new token.
    fn revoke_app_tokens(&self);

    /// The endpoints playing `role` in a login (several when the platform has alternatives, e.g.
    /// DingTalk's two app-token endpoints); empty if the platform has none.
    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str>;

    /// Shared infrastructure (clock, calls, faults).
    fn harness(&self) -> &Harness;

    /// Every endpoint name.
    fn endpoints(&self) -> Vec<&'static str> {
        self.harness().endpoint_names()
    }

    /// Requests that reached `endpoint` since the last reset, including rejected ones.
    fn calls(&self, endpoint: &str) -> u64 {
        self.harness().calls(endpoint)
    }

    /// Requests that reached the fake since the last reset.
    fn total_calls(&self) -> u64 {
        self.harness().total_calls()
    }

    /// Forget all call counts.
    fn reset_calls(&self) {
        self.harness().reset_calls();
    }

    /// Arm `fault` on `endpoint` (or [`crate::ANY_ENDPOINT`]) for `times` requests.
    fn inject_fault(&self, endpoint: &str, fault: Fault, times: Times) -> Result<(), FaultError> {
        self.harness().inject(endpoint, fault, times)
    }

    /// Arm `fault` on `endpoint` for the next request only.
    fn inject(&self, endpoint: &str, fault: Fault) -> Result<(), FaultError> {
        self.inject_fault(endpoint, fault, Times::Once)
    }

    /// Disarm every fault.
    fn clear_faults(&self) {
        self.harness().clear_faults();
    }

    /// Move the fake clock forward (expire codes after 5 min, tokens after 7200 s).
    fn advance_clock(&self, by: Duration) {
        self.harness().advance_clock(by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_secret() {
        let c = AppCredentials {
            app_key: "k".into(),
            app_secret: "very-secret".into(),
            corp_id: "c".into(),
            agent_id: "1".into(),
        };
        let s = format!("{c:?}");
        assert_eq!(
            s,
            r#"AppCredentials { app_key: "k", app_secret: "***", corp_id: "c", agent_id: "1" }"#
        );
    }

    // Compile-time proof that the trait stays object safe.
    #[allow(dead_code)]
    fn object_safe(_: &dyn FakePlatform) {}
}
