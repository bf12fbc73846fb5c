//! A platform's in-client surface: how a page running inside the platform's own client (its
//! in-app browser) obtains a login code, declared in the platform's
//! [`PlatformRegistration`](crate::registry::PlatformRegistration) so that whoever serves the
//! page (the gateway, your app) renders it without knowing the platform.
//!
//! Which codes may be redeemed **without state** follows from it: only a JSAPI code, which a
//! browser redirect can never carry. A code that also arrives on a redirect (WeCom's in-client
//! OAuth, every web login, custom OAuth) is redeemed only by completing the redirect login it
//! belongs to, with its state and PKCE verifier.

use serde_json::Value;

use crate::config::PlatformConfig;

/// The kinds of code redeemed **without state**
/// ([`Prepared::login_with_code_kind`](crate::Prepared::login_with_code_kind)): both come from
/// a JSAPI of the platform's client, never on a browser redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CodeKind {
    /// A code an H5 page got from the client's JSAPI ([`InClient::Jsapi`]; DingTalk
    /// `dd.getAuthCode`, Feishu `tt.requestAccess`).
    Jsapi,
    /// A mini program's login code (Feishu `tt.login`, WeCom `qy.login`, DingTalk mini-app
    /// `dd.getAuthCode`), redeemed where the handler declares it
    /// ([`Platform::redeems_mini_program_codes`](super::Platform::redeems_mini_program_codes)).
    MiniProgram,
}

impl CodeKind {
    /// `"jsapi"` or `"mini_program"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Jsapi => "jsapi",
            CodeKind::MiniProgram => "mini_program",
        }
    }
}

/// How a page inside the platform's client obtains a login code.
#[derive(Debug, Clone, Copy)]
pub enum InClient {
    /// A JSAPI of the client yields a code only that client produces (never a redirect): the
    /// page calls it and posts the code, which
    /// [`Sso::login_with_code`](crate::sso::Sso::login_with_code) redeems without state.
    Jsapi(JsapiLogin),
    /// The client opens the platform's OAuth link and comes back with the code and the state
    /// (WeCom `#wechat_redirect`): an in-client login is a redirect login with
    /// [`Flow::H5`](super::Flow::H5), never a posted code.
    Redirect,
    /// No in-client login of its own: inside the client, the web login runs.
    None,
}

impl InClient {
    /// Whether a code may be redeemed without state ([`InClient::Jsapi`] only).
    pub fn redeems_without_state(&self) -> bool {
        matches!(self, InClient::Jsapi(_))
    }

    /// The JSAPI login, when the platform has one.
    pub fn jsapi(&self) -> Option<&JsapiLogin> {
        match self {
            InClient::Jsapi(j) => Some(j),
            _ => None,
        }
    }
}

/// A JSAPI login: the script a page loads, the call that yields the code and its parameters.
///
/// A page renders it as: load [`sdk_url`](Self::sdk_url); when the global
/// [`global`](Self::global) exists, call `(`[`get_code`](Self::get_code)`)(params)` with
/// [`params`](Self::params) of the tenant's configuration, which resolves to the code; post the
/// code to the server.
#[derive(Debug, Clone, Copy)]
pub struct JsapiLogin {
    /// The platform's published JS SDK.
    pub sdk_url: &'static str,
    /// The global the SDK defines inside the client (`dd`, `tt`); absent elsewhere.
    pub global: &'static str,
    /// A JavaScript function expression taking the parameters object and returning a
    /// `Promise` of the code string, e.g. `function (p) { return new Promise(…) }`.
    pub get_code: &'static str,
    /// The parameters the call needs, from the tenant's configuration: public values only
    /// (corp id, app id), never a secret — they are embedded in the page.
    pub params: fn(&PlatformConfig) -> Value,
}
