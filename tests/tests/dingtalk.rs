//! The conformance suite against the DingTalk fake, both app-token APIs.

use std::sync::Arc;

use serde_json::json;
use unilogin_conformance::{CALLBACK, Expected, Setup, TENANT, conformance_suite};
use unilogin_core::mapping::SubjectKind;

// Link the platform crate so its registration is collected.
use unilogin_dingtalk as _;

fn expected() -> Expected {
    Expected {
        subject: SubjectKind::UserId,
        user_id: Some("user001".into()),
        union_id: Some("unionid-user001".into()),
        web_open_id: Some("openid-user001".into()),
        name: Some("Zhang San".into()),
        mobile: Some("13800000000".into()),
        mobile_country_code: Some("86".into()),
        email: Some("user001@example.com".into()),
        avatar: Some("https://example.com/avatar/user001.png".into()),
        employee_no: Some("E0001".into()),
        job_title: Some("Engineer".into()),
        department_ids: vec!["1".into(), "100".into()],
        web_user_token: true,
        code_app_token: false,
        wrong_secret_hint: Some("secret"),
        // getuserinfo + user/get
        warm_h5_calls: 2,
        // userAccessToken + users/me + getbyunionid + user/get
        warm_web_calls: 4,
        web_profile: None,
    }
}

async fn setup_with(app_token_api: &str) -> Setup {
    let fake = unilogin_testkit::dingtalk::start().await;
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    let config = json!({
        "tenant": TENANT,
        "platform": "dingtalk",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": [CALLBACK],
        "options": { "app_token_api": app_token_api },
    });
    Setup {
        fake: Arc::new(fake),
        config,
        expected: expected(),
    }
}

async fn setup() -> Setup {
    setup_with("oapi").await
}

conformance_suite!(setup);

mod v1_app_token {
    use super::*;

    async fn setup() -> Setup {
        setup_with("v1").await
    }

    conformance_suite!(setup);
}
