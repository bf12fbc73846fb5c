//! A self-built platform logged into by configuration alone: `custom-oauth` in `mode: steps`
//! against the test kit's self-built platform fake:
//! `cargo run -p unilogin --features custom-oauth --example custom_oauth`.
//!
//! The platform is an in-house "open platform" unlike DingTalk, Feishu or WeCom: a nested
//! `{"result": {"status": "OK", "payload": …}}` envelope, a form-encoded token request, the app
//! token sent back in an `X-Open-Token` header, numeric user ids, its own error codes. The
//! tenant configuration below (YAML, as an operator writes it) describes all of it: the authorize
//! URL, three HTTP steps (app token → code to user → user detail), which error codes mean what,
//! and the mapping rules. No code knows the platform.
//!
//! The login is a redirect login (custom-oauth has no in-client login of its own, and a posted
//! code without its state is refused with `Error::RedirectLoginRequired`): `start_web_login` →
//! the platform's sign-in page → `Callback::from_query` → `finish_web_login`.
//!
//! For a standard **OAuth2 / OpenID Connect** provider (Keycloak, Authing, Azure AD, …) the same
//! calls work with `mode: oidc` and an `issuer` (discovery, PKCE, verified id_token, RFC 9207
//! `iss`); see `docs/platforms/custom-oauth.md` for both modes' configuration. This example uses
//! steps mode because its fake is built in; the OIDC tests run `oauth2-mock-server` (Node.js).

mod support;

use unilogin::config::{CachedSource, YamlText};
use unilogin::web_login::Callback;
use unilogin::{AuthCode, Error, Flow, Sso, TenantId};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::selfbuilt::{self, endpoints};
use url::Url;

/// The platform's real host; the example points it at the fake.
const PLATFORM_HOST: &str = "https://open.selfbuilt.example";
const CALLBACK: &str = "https://app.acme.example/auth/callback";

/// The tenant configuration (the one of `docs/platforms/custom-oauth.md`, "Mode `steps`").
const TENANTS_YAML: &str = r#"
tenants:
  acme:
    custom-oauth:
      mode: steps
      app_key: sb_app_acme_0001
      # In production: "env:ACME_OPEN_SECRET" or "file:/run/secrets/acme-open".
      app_secret: fake_selfbuilt_secret_0001
      corp_id: org-acme                      # logins whose extracted org_id differs → NotInTenant
      redirect_uris: ["https://app.acme.example/auth/callback"]
      options:
        # Where the login starts; placeholders {app_key}, {redirect_uri}, {state}.
        authorize_url: "https://open.selfbuilt.example/open/v3/sso/authorize?app_id={app_key}&redirect_uri={redirect_uri}&state={state}&response_type=code"
        errors:
          code: "$.result.error.code"
          message: "$.result.error.message"
          token_invalid: [2002]              # → invalidate the app token, retry the step once
          invalid_code: [3001]               # → Error::InvalidCode, never retried
          not_in_tenant: [3004]              # → Error::NotInTenant
          rate_limited: [4029]               # → Error::RateLimited (with Retry-After)
          transient: [5000]                  # → the user-detail step is retried
          misconfigured: [2001, 2003, 2004]  # → Error::Misconfigured
        steps:
          - name: app_token
            method: POST
            url: "https://open.selfbuilt.example/open/v3/auth/token"
            params_in: form
            params: { appId: "{app_key}", appSecret: "{app_secret}" }
            success: { path: "$.result.status", equals: OK }
            extract:
              token: "$.result.payload.credential.value"
              expires_in: "$.result.payload.credential.ttl"
          - name: user_id
            url: "https://open.selfbuilt.example/open/v3/sso/identify?auth_code={code}"
            headers: { X-Open-Token: "{access_token}" }
            success: { path: "$.result.status", equals: OK }
            extract:
              user_id: "$.result.payload.user.id"        # a number: becomes "10086"
              union_id: "$.result.payload.user.unionId"
              org_id: "$.result.payload.user.orgId"      # compared with corp_id
          - name: user_detail
            url: "https://open.selfbuilt.example/open/v3/users/{user_id}"
            headers: { X-Open-Token: "{access_token}" }
            success: { path: "$.result.status", equals: OK }
      mapping:
        user_id: { path: "$.result.payload.profile.id", required: true }
        union_id: "$.result.payload.profile.unionId"
        name: { path: "$.result.payload.profile.displayName", transform: trim }
        mobile: { path: "$.result.payload.profile.contact.mobile", transform: [trim, strip_country_code] }
        email: { path: "$.result.payload.profile.contact.mail", backup: ["$.result.payload.profile.contact.workMail"], transform: [trim, lowercase] }
        avatar: "$.result.payload.profile.avatarUrl"
        employee_no: "$.result.payload.profile.employeeNo"
        job_title: "$.result.payload.profile.position"
        department_ids: { path: "$.result.payload.profile.org.deptIds[*]", many: true }
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = selfbuilt::start().await;
    // Loopback `http://` endpoints are accepted for tests; real ones must be `https`.
    let yaml = TENANTS_YAML.replace(PLATFORM_HOST, fake.base_url());
    // Strict: a configuration mistake (a bad JSONPath, an unknown placeholder, …) stops here,
    // naming the tenant and the field.
    let source = CachedSource::new_strict(YamlText::new(yaml)).await?;
    let sso = Sso::builder(source).build()?;
    let tenant = TenantId::new("acme")?;

    // 1. Login route: start, keep `start.pending` server-side, send the browser to `start.url`.
    let start = sso
        .start_web_login(&tenant, "custom-oauth", Flow::Web, &Url::parse(CALLBACK)?)
        .await?;
    let (origin, path) = (start.url.origin().ascii_serialization(), start.url.path());
    println!("browser goes to {origin}{path}?…");

    // 2. The person approves on the platform's sign-in page (the fake's, as a browser would).
    let callback_url = support::approve(&start.url, selfbuilt::DEMO_USER_ID).await?;

    // 3. Callback route: parse the query and finish (state checked before the code is spent).
    let callback = Callback::from_query(callback_url.query_pairs())?;
    let login = sso.finish_web_login(&start.pending, &callback).await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);
    println!(
        "upstream: {} app token, {} identify, {} user detail",
        fake.calls(endpoints::AUTH_TOKEN),
        fake.calls(endpoints::SSO_IDENTIFY),
        fake.calls(endpoints::USERS_GET)
    );

    // A code posted without the state of its login is refused before any upstream call.
    fake.reset_calls();
    match sso
        .login_with_code(&tenant, "custom-oauth", &AuthCode::new("posted-code"))
        .await
    {
        Err(Error::RedirectLoginRequired { .. }) if fake.total_calls() == 0 => {
            println!(
                "login_with_code(custom-oauth): refused, RedirectLoginRequired, no upstream call"
            );
        }
        other => return Err(format!("expected RedirectLoginRequired, got {other:?}").into()),
    }
    Ok(())
}
