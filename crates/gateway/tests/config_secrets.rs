//! Secret references in the tenants file are resolved, not sent word for word: the shipped
//! gateway, started with `app_secret: "env:ACME_DT_SECRET"` (and another tenant's
//! `file:secrets/…`), logs in against the DingTalk fake, which accepts an app token request only
//! with the app's real secret — so the value reached it. Without the variable the gateway
//! refuses to start, naming it.

mod config_support;

use config_support::{Process, TempDir, client, free_port, h5_login, run_binary};
use unilogin_testkit::FakePlatform;
use unilogin_testkit::dingtalk::{self, DEFAULT_CORP_ID, FakeApp, endpoints};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_secret_reaches_the_platform_as_its_value() {
    let fake = dingtalk::start().await;
    let env_secret = format!("env-secret-{}", std::process::id());
    let file_secret = format!("file-secret-{}", std::process::id());
    fake.add_app(FakeApp::new(
        "dingenvapp",
        env_secret.clone(),
        DEFAULT_CORP_ID,
    ));
    fake.add_app(FakeApp::new(
        "dingfileapp",
        file_secret.clone(),
        DEFAULT_CORP_ID,
    ));
    let dir = TempDir::new("secrets");
    dir.write("secrets/globex-dingtalk", &format!("{file_secret}\n"));
    let base = fake.base_url();
    dir.write(
        "tenants.yaml",
        &format!(
            "tenants:\n\
             \x20 acme:\n\
             \x20   dingtalk:\n\
             \x20     app_key: dingenvapp\n\
             \x20     app_secret: \"env:ACME_DT_SECRET\"\n\
             \x20     corp_id: {DEFAULT_CORP_ID}\n\
             \x20     hosts: {{ oapi: \"{base}\", api: \"{base}\", login: \"{base}\" }}\n\
             \x20     redirect_uris: [\"https://app.acme.example/after-login\"]\n\
             \x20 globex:\n\
             \x20   dingtalk:\n\
             \x20     app_key: dingfileapp\n\
             \x20     app_secret: \"file:secrets/globex-dingtalk\"\n\
             \x20     corp_id: {DEFAULT_CORP_ID}\n\
             \x20     hosts: {{ oapi: \"{base}\", api: \"{base}\", login: \"{base}\" }}\n\
             \x20     redirect_uris: [\"https://app.globex.example/after-login\"]\n"
        ),
    );
    let port = free_port();
    let config = dir.write(
        "gateway.yaml",
        &format!(
            "listen: '127.0.0.1:{port}'\npublic_url: 'http://127.0.0.1:{port}/'\n\
             tenants_file: tenants.yaml\ncookies: {{secure: false}}\n"
        ),
    );

    // Without the variable: refused at start, naming it.
    let arg = config.display().to_string();
    let (code, out) = run_binary(&["check-config", "--config", &arg], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("`acme`") && out.contains("app_secret") && out.contains("ACME_DT_SECRET"),
        "{out}"
    );

    let env = [("ACME_DT_SECRET", env_secret.as_str())];
    let gw = Process::start(&config, port, &env, dir.join("gateway.log")).await;
    let http = client();
    let (status, body) = h5_login(&http, &gw.base, "acme", &fake).await;
    assert_eq!(status, 200, "{body}\n{}", gw.log_text());
    assert_eq!(body["profile"]["tenant"], "acme", "{body}");
    let (status, body) = h5_login(&http, &gw.base, "globex", &fake).await;
    assert_eq!(status, 200, "{body}\n{}", gw.log_text());
    // One app token per app, fetched with its secret (a wrong one is refused by the fake).
    assert_eq!(fake.calls(endpoints::GETTOKEN), 2);
    let log = gw.log_text();
    assert!(
        !log.contains(&env_secret) && !log.contains(&file_secret),
        "{log}"
    );
}
