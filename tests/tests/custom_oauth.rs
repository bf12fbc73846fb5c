//! The conformance suite against a self-built platform (the test kit's `selfbuilt` fake: nested
//! envelope, app token in a request header, numeric user ids, its own error codes), logged into
//! by `custom-oauth` in `mode: steps` with nothing but configuration.
//!
//! The tenant configuration below is plain data: three HTTP steps, the success test, the
//! JSONPaths of the values each step hands on, which error codes mean "token invalid", "rate
//! limited", …, and the mapping rules. No code describes the platform.

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin_conformance::{CALLBACK, Expected, Setup, TENANT, conformance_suite};
use unilogin_core::mapping::SubjectKind;
use unilogin_testkit::selfbuilt::{self, FakeSelfBuilt};

// Link the platform crate so its registration is collected.
use unilogin_custom_oauth as _;

fn expected() -> Expected {
    Expected {
        subject: SubjectKind::UserId,
        user_id: Some("10086".into()),
        union_id: Some("union-10086".into()),
        // The platform has no app-scoped id.
        web_open_id: None,
        name: Some("Zhang San".into()),
        mobile: Some("13800000000".into()),
        mobile_country_code: Some("86".into()),
        email: Some("user001@example.com".into()),
        avatar: Some("https://example.com/avatar/10086.png".into()),
        employee_no: Some("E0001".into()),
        job_title: Some("Engineer".into()),
        department_ids: vec!["1".into(), "100".into()],
        // Steps mode yields an identity, not a user token.
        web_user_token: false,
        code_app_token: false,
        // The self-built platform answers a wrong secret with 2001, a code this configuration
        // lists as `misconfigured` (steps mode has no class for bad credentials).
        wrong_secret_hint: None,
        // sso/identify + users/{id}
        warm_h5_calls: 2,
        warm_web_calls: 2,
        web_profile: None,
    }
}

/// The tenant's configuration of the self-built platform running at `fake`.
fn tenant_config(fake: &FakeSelfBuilt) -> Value {
    let creds = fake.credentials();
    let base = fake.base_url();
    let step = |path: &str| format!("{base}{path}");
    json!({
        "tenant": TENANT,
        "platform": "custom-oauth",
        "mode": "steps",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        // Logins of people whose `orgId` differs are refused (NotInTenant).
        "corp_id": creds.corp_id,
        "redirect_uris": [CALLBACK],
        "options": {
            "authorize_url": step("/open/v3/sso/authorize?app_id={app_key}&redirect_uri={redirect_uri}&state={state}&response_type=code"),
            "errors": {
                "code": "$.result.error.code",
                "message": "$.result.error.message",
                "token_invalid": [2002],
                "invalid_code": [3001],
                "not_in_tenant": [3004],
                "rate_limited": [4029],
                "transient": [5000],
                "misconfigured": [2001, 2003, 2004]
            },
            "steps": [
                {
                    "name": "app_token",
                    "method": "POST",
                    "url": step("/open/v3/auth/token"),
                    "params_in": "form",
                    "params": { "appId": "{app_key}", "appSecret": "{app_secret}" },
                    "success": { "path": "$.result.status", "equals": "OK" },
                    "extract": {
                        "token": "$.result.payload.credential.value",
                        "expires_in": "$.result.payload.credential.ttl"
                    }
                },
                {
                    "name": "user_id",
                    "url": step("/open/v3/sso/identify?auth_code={code}"),
                    "headers": { "X-Open-Token": "{access_token}" },
                    "success": { "path": "$.result.status", "equals": "OK" },
                    "extract": {
                        "user_id": "$.result.payload.user.id",
                        "union_id": "$.result.payload.user.unionId",
                        "org_id": "$.result.payload.user.orgId"
                    }
                },
                {
                    "name": "user_detail",
                    "url": step("/open/v3/users/{user_id}"),
                    "headers": { "X-Open-Token": "{access_token}" },
                    "success": { "path": "$.result.status", "equals": "OK" }
                }
            ]
        },
        "mapping": {
            "user_id": { "path": "$.result.payload.profile.id", "required": true },
            "union_id": { "path": "$.result.payload.profile.unionId" },
            "name": { "path": "$.result.payload.profile.displayName", "transform": "trim" },
            "mobile": { "path": "$.result.payload.profile.contact.mobile", "transform": ["trim", "strip_country_code"] },
            "email": { "path": "$.result.payload.profile.contact.mail", "backup": ["$.result.payload.profile.contact.workMail"], "transform": ["trim", "lowercase"] },
            "avatar": { "path": "$.result.payload.profile.avatarUrl" },
            "employee_no": { "path": "$.result.payload.profile.employeeNo" },
            "job_title": { "path": "$.result.payload.profile.position" },
            "department_ids": { "path": "$.result.payload.profile.org.deptIds[*]", "many": true }
        }
    })
}

async fn setup() -> Setup {
    let fake = selfbuilt::start().await;
    Setup {
        config: tenant_config(&fake),
        fake: Arc::new(fake),
        expected: expected(),
    }
}

conformance_suite!(setup);

/// The configuration the test kit ships with the fake (`selfbuilt/custom-oauth-steps.json`,
/// what its docs and examples use) is exactly the tenant the suite passes with.
#[tokio::test]
async fn the_bundled_tenant_config_is_the_conformant_one() {
    let fake = selfbuilt::start().await;
    let mut bundled = fake.tenant_config();
    bundled["tenant"] = json!(TENANT);
    bundled["redirect_uris"] = json!([CALLBACK]);
    assert_eq!(bundled, tenant_config(&fake));
}
