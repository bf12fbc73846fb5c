//! The sandbox serves the OpenID Provider with its public demo client (`sandbox-rp`): a code
//! flow with PKCE through the DingTalk fake ends in tokens whose id token names the demo user,
//! its access token passes `unilogin-axum`'s guard of an API for that client, and the
//! sandbox's instructions say where the provider is.

mod oidc_rp_support;

use oidc_rp_support::{Browser, Outcome};
use serde_json::Value;
use unilogin_gateway::sandbox::{SANDBOX_CLIENT, SANDBOX_REDIRECT_URIS};
use unilogin_gateway::{Sandbox, SandboxOptions};
use url::Url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_client_signs_in_through_the_fakes() {
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let base = sandbox.url.as_str().trim_end_matches('/').to_string();
    assert!(
        sandbox
            .instructions()
            .contains(&format!("{base}/.well-known/openid-configuration")),
        "{}",
        sandbox.instructions()
    );
    let fake = sandbox.fake("dingtalk").expect("the DingTalk fake").clone();
    let user = fake.demo_user_id();
    let browser = Browser::new().on_page(move |page| {
        page.forms()
            .iter()
            .filter(|f| f.fields.iter().any(|(k, v)| k == "user_id" && *v == user))
            .find_map(|f| f.submit_with("Approve"))
    });
    let redirect = SANDBOX_REDIRECT_URIS[0];
    let verifier = "sandbox-verifier-0123456789-0123456789-0123456789";
    let challenge = {
        use base64::Engine as _;
        use sha2::Digest as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let mut authorize = Url::parse(&format!("{base}/oidc/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", SANDBOX_CLIENT)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "openid profile")
        .append_pair("state", "s-1")
        // The demo tenant has every platform: skip the chooser.
        .append_pair("login_hint", "platform:dingtalk")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let outcome = browser.navigate(&authorize, &[redirect]).await.unwrap();
    let Outcome::Redirected(to) = outcome else {
        panic!("the flow stopped on a page: {outcome:?}");
    };
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let resp = reqwest::Client::new()
        .post(format!("{base}/oidc/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", SANDBOX_CLIENT),
            ("code", &code),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let tokens: Value = resp.json().await.unwrap();
    let id_token = tokens["id_token"].as_str().expect("an id token");
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value = {
        use base64::Engine as _;
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["iss"], base.as_str());
    assert_eq!(claims["aud"], SANDBOX_CLIENT);
    assert_eq!(
        claims["sub"],
        format!("demo:dingtalk:{}", fake.demo_user_id())
    );

    // The access token passes `unilogin-axum`'s guard of an API whose audience is the client.
    let guard = unilogin_axum::Guard::jwks(
        format!("{base}/.well-known/jwks.json"),
        sandbox.gateway.issuer().issuer(),
        SANDBOX_CLIENT,
    )
    .tenant("demo")
    .build()
    .unwrap();
    let api = axum::Router::new()
        .route(
            "/api/me",
            axum::routing::get(|user: unilogin_axum::AuthUser| async move {
                format!("{}|{}", user.subject(), user.claims().aud)
            }),
        )
        .layer(guard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, api).await;
    });
    let access = tokens["access_token"].as_str().expect("an access token");
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        format!("demo:dingtalk:{}|{SANDBOX_CLIENT}", fake.demo_user_id())
    );
    sandbox.stop().await;
}
