//! The platforms' reference documents (`crates/testkit/fixtures/<platform>/*.json`), compiled in:
//! the response shapes of `reference/platforms.md` the fakes are checked against, and the user
//! documents the mapping tests of other crates read.
//!
//! Each platform module has one `&'static str` constant per file; [`ALL`] lists every file by
//! its path below `fixtures/`, and [`get`] looks one up.
//!
//! ```
//! use unilogin_testkit::fixtures;
//! let doc: serde_json::Value = serde_json::from_str(fixtures::wecom::USER_GET).unwrap();
//! assert_eq!(doc["userid"], "user001");
//! assert_eq!(fixtures::get("wecom/user_get.json"), Some(fixtures::wecom::USER_GET));
//! ```

macro_rules! fixtures {
    ($($(#[$doc:meta])* $platform:ident { $($name:ident = $file:literal,)* })*) => {
        $(
            $(#[$doc])*
            pub mod $platform {
                $(
                    #[doc = concat!("`fixtures/", stringify!($platform), "/", $file, "`.")]
                    pub const $name: &str =
                        include_str!(concat!("../fixtures/", stringify!($platform), "/", $file));
                )*
            }
        )*

        /// Every fixture as (path below `fixtures/`, contents), e.g.
        /// `("dingtalk/oapi_gettoken.json", dingtalk::OAPI_GETTOKEN)`.
        pub const ALL: &[(&str, &str)] = &[
            $($((concat!(stringify!($platform), "/", $file), $platform::$name),)*)*
        ];
    };
}

fixtures! {
    /// DingTalk (`oapi` and `api` generations).
    dingtalk {
        ERROR_40014_INVALID_TOKEN = "error_40014_invalid_token.json",
        ERROR_40078_INVALID_CODE = "error_40078_invalid_code.json",
        ERROR_60020_IP_WHITELIST = "error_60020_ip_whitelist.json",
        ERROR_60121_USER_NOT_FOUND = "error_60121_user_not_found.json",
        ERROR_88_SUBCODE = "error_88_subcode.json",
        OAPI_GETTOKEN = "oapi_gettoken.json",
        TOPAPI_USER_GETBYUNIONID = "topapi_user_getbyunionid.json",
        TOPAPI_V2_USER_GET = "topapi_v2_user_get.json",
        TOPAPI_V2_USER_GETUSERINFO = "topapi_v2_user_getuserinfo.json",
        V1_CONTACT_USERS_ME = "v1_contact_users_me.json",
        V1_ERROR_INVALID_AUTHENTICATION = "v1_error_invalid_authentication.json",
        V1_ERROR_PERMISSION_DENIED = "v1_error_permission_denied.json",
        V1_OAUTH2_ACCESS_TOKEN = "v1_oauth2_accessToken.json",
        V1_OAUTH2_USER_ACCESS_TOKEN = "v1_oauth2_userAccessToken.json",
    }
    /// Feishu / Lark.
    feishu {
        AUTH_V3_APP_ACCESS_TOKEN_INTERNAL = "auth_v3_app_access_token_internal.json",
        AUTH_V3_TENANT_ACCESS_TOKEN_INTERNAL = "auth_v3_tenant_access_token_internal.json",
        AUTHEN_V1_ACCESS_TOKEN = "authen_v1_access_token.json",
        AUTHEN_V1_OIDC_ACCESS_TOKEN = "authen_v1_oidc_access_token.json",
        AUTHEN_V1_USER_INFO = "authen_v1_user_info.json",
        AUTHEN_V2_OAUTH_TOKEN = "authen_v2_oauth_token.json",
        AUTHEN_V2_OAUTH_TOKEN_ERROR = "authen_v2_oauth_token_error.json",
        CONTACT_V3_USERS_GET = "contact_v3_users_get.json",
        ERROR_99991400_RATE_LIMITED = "error_99991400_rate_limited.json",
        ERROR_99991663_TENANT_TOKEN_INVALID = "error_99991663_tenant_token_invalid.json",
        ERROR_99991677_USER_TOKEN_EXPIRED = "error_99991677_user_token_expired.json",
    }
    /// WeCom.
    wecom {
        AUTH_GETUSERDETAIL = "auth_getuserdetail.json",
        AUTH_GETUSERINFO_MEMBER = "auth_getuserinfo_member.json",
        AUTH_GETUSERINFO_NON_MEMBER = "auth_getuserinfo_non_member.json",
        ERROR_40014_INVALID_TOKEN = "error_40014_invalid_token.json",
        ERROR_40029_INVALID_CODE = "error_40029_invalid_code.json",
        ERROR_42001_TOKEN_EXPIRED = "error_42001_token_expired.json",
        ERROR_45009_RATE_LIMITED = "error_45009_rate_limited.json",
        ERROR_50001_REDIRECT_DOMAIN = "error_50001_redirect_domain.json",
        ERROR_60020_IP_NOT_ALLOWED = "error_60020_ip_not_allowed.json",
        ERROR_84014_USER_TICKET_EXPIRED = "error_84014_user_ticket_expired.json",
        GETTOKEN = "gettoken.json",
        USER_GET = "user_get.json",
        USER_GETUSERINFO_LEGACY = "user_getuserinfo_legacy.json",
    }
    /// Custom OAuth2 / OIDC providers (`custom-oauth`).
    custom {
        USERINFO_OIDC = "userinfo_oidc.json",
    }
}

/// The fixture at `path` below `fixtures/` (`"feishu/authen_v1_user_info.json"`), if there is one.
pub fn get(path: &str) -> Option<&'static str> {
    ALL.iter().find(|(p, _)| *p == path).map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_and_is_json() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let mut on_disk = Vec::new();
        for platform in std::fs::read_dir(&root).expect("fixtures dir") {
            let platform = platform.expect("entry").path();
            for file in std::fs::read_dir(&platform).expect("platform dir") {
                let file = file.expect("entry").path();
                let rel = file.strip_prefix(&root).expect("below root");
                on_disk.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ALL.iter().map(|(p, _)| (*p).to_owned()).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        for (path, text) in ALL {
            serde_json::from_str::<serde_json::Value>(text)
                .unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        assert_eq!(
            get("dingtalk/oapi_gettoken.json"),
            Some(dingtalk::OAPI_GETTOKEN)
        );
        assert_eq!(get("dingtalk/nope.json"), None);
    }
}
