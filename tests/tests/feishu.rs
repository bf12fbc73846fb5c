//! The conformance suite against the Feishu fake: Feishu and Lark host sets, the v2
//! (`authen/v2/oauth/token`) and v1 (`authen/v1/oidc/access_token`) user-token APIs, and both
//! app-token endpoints.

use std::sync::Arc;

use serde_json::json;
use unilogin_conformance::{CALLBACK, Expected, Setup, TENANT, conformance_suite};
use unilogin_core::mapping::SubjectKind;
use unilogin_testkit::feishu::{self, UserTokenApi};

// Link the platform crate so its registration is collected.
use unilogin_feishu as _;

fn expected() -> Expected {
    Expected {
        subject: SubjectKind::UnionId,
        user_id: Some("user001".into()),
        union_id: Some("on_fakeunionid0001".into()),
        web_open_id: Some("ou_fakeopenid0001".into()),
        name: Some("Zhang San".into()),
        mobile: Some("13800000000".into()),
        mobile_country_code: Some("86".into()),
        email: Some("user001@example.com".into()),
        avatar: Some("https://example.com/avatar/user001.png".into()),
        employee_no: Some("E0001".into()),
        job_title: Some("Engineer".into()),
        department_ids: vec!["od-fakedept0001".into()],
        web_user_token: true,
        code_app_token: false,
        wrong_secret_hint: Some("secret"),
        // code → user token, user_info, contact/v3/users/:id
        warm_h5_calls: 3,
        warm_web_calls: 3,
        web_profile: None,
    }
}

#[derive(Clone, Copy)]
enum Region {
    Feishu,
    Lark,
}

async fn setup_with(region: Region, token_api: UserTokenApi, app_token_api: &str) -> Setup {
    let fake = match region {
        Region::Feishu => feishu::start().await,
        Region::Lark => feishu::start_lark().await,
    };
    fake.set_user_token_api(token_api);
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    let (region_name, hosts) = match region {
        Region::Feishu => ("feishu", json!({ "open": base, "accounts": base })),
        // Only the API host is redirected: the authorize URL keeps Lark's default
        // `accounts.larksuite.com` (the browser step is simulated by the fake's Approve).
        Region::Lark => ("lark", json!({ "open": base })),
    };
    let (token_api, code_app_token) = match token_api {
        UserTokenApi::V2 => ("v2", false),
        // authen/v1/oidc/* take the app_access_token, the directory the tenant token.
        UserTokenApi::V1Oidc => ("v1", true),
    };
    let config = json!({
        "tenant": TENANT,
        "platform": "feishu",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "hosts": hosts,
        "redirect_uris": [CALLBACK],
        "options": {
            "region": region_name,
            "token_api": token_api,
            "app_token_api": app_token_api,
        },
    });
    Setup {
        fake: Arc::new(fake),
        config,
        expected: Expected {
            code_app_token,
            ..expected()
        },
    }
}

async fn setup() -> Setup {
    setup_with(Region::Feishu, UserTokenApi::V2, "tenant").await
}

conformance_suite!(setup);

mod feishu_v1 {
    use super::*;

    async fn setup() -> Setup {
        setup_with(Region::Feishu, UserTokenApi::V1Oidc, "tenant").await
    }

    conformance_suite!(setup);
}

mod lark_v2 {
    use super::*;

    async fn setup() -> Setup {
        setup_with(Region::Lark, UserTokenApi::V2, "app").await
    }

    conformance_suite!(setup);
}

mod lark_v1 {
    use super::*;

    async fn setup() -> Setup {
        setup_with(Region::Lark, UserTokenApi::V1Oidc, "app").await
    }

    conformance_suite!(setup);
}
