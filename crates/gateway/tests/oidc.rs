//! An OpenID Connect tenant shaped as `docs/platforms/custom-oauth.md` shows it — its OIDC
//! scopes in `options.scopes` as a list — plus the gateway's `session_scopes`, logging in through
//! the gateway against a real provider: the npm package `oauth2-mock-server`, run by
//! unilogin-custom-oauth's test server script (`crates/custom-oauth/tests/oidc-server/`), installed
//! once into `<target>/tmp/` (`cargo xtask ci` provisions it; without Node.js and npm this test
//! fails with a message saying so).
//!
//! Before `session_scopes`, the gateway read its scope rules from `options.scopes` too: this
//! tenant then failed with 500 `config` after its code was spent.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use support::{cookie_value, documented_tenant, query_of, serve};
use url::Url;

/// Keep in step with `MOCK_VERSION` in `crates/custom-oauth/tests/oidc.rs` and xtask's CI.
const MOCK_VERSION: &str = "8.2.3";

fn node_modules() -> PathBuf {
    let dir =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oauth2-mock-server-{MOCK_VERSION}"));
    if !dir
        .join("node_modules/oauth2-mock-server/package.json")
        .exists()
    {
        std::fs::create_dir_all(&dir).unwrap();
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("oauth2-mock-server@{MOCK_VERSION}"))
            .status()
            .unwrap_or_else(|e| {
                panic!("this test needs Node.js and npm to run oauth2-mock-server ({e}); install them or run `cargo xtask ci`")
            });
        assert!(status.success(), "npm install oauth2-mock-server failed");
    }
    dir.join("node_modules")
}

/// The provider process; killed (by its own handle) on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn provider() -> Provider {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../custom-oauth/tests/oidc-server/server.mjs");
    let mut child = Command::new("node")
        .arg(script)
        .arg(node_modules())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("this test needs Node.js (`node`) on PATH");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let hello: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    Provider {
        issuer: hello["issuer"].as_str().unwrap().to_string(),
        child,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_oidc_tenant_logs_in_with_session_scopes() {
    let idp = provider();
    let issuer = idp.issuer.clone();
    let gw = serve(
        "",
        move |public| {
            // As documented; only the provider, the client and the return URL differ.
            let mut t = documented_tenant("custom-oauth");
            assert_eq!(
                t["options"]["scopes"],
                json!(["openid", "profile", "email"])
            );
            assert!(t["session_scopes"].is_object());
            t["options"]["issuer"] = json!(issuer);
            t["app_key"] = json!("unilogin-client");
            t["app_secret"] = json!("fake_oidc_secret_0001");
            t["redirect_uris"] = json!([public.as_str()]);
            vec![t]
        },
        |b| b,
    )
    .await;
    let mut login = Url::parse(&gw.url("auth/acme/custom-oauth/login")).unwrap();
    login
        .query_pairs_mut()
        .append_pair("return_to", gw.base.as_str());
    let r = gw.http.get(login.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let binding = cookie_value(&r, "unilogin_login").unwrap();
    let authorize = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let q = query_of(&authorize);
    assert_eq!(q["scope"], "openid profile email", "{authorize}");
    assert_eq!(q["code_challenge_method"], "S256");
    assert!(authorize.as_str().starts_with(&idp.issuer), "{authorize}");
    // The provider signs the user in at once and redirects back with the code.
    let r = gw.http.get(authorize.as_str()).send().await.unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        callback.starts_with(&gw.url("auth/acme/custom-oauth/callback")),
        "{callback}"
    );
    let r = gw
        .http
        .get(&callback)
        .header("cookie", format!("unilogin_login={binding}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    assert_eq!(r.headers()["location"], gw.base.as_str());
    let token = cookie_value(&r, "unilogin_session").unwrap();
    let me: Value = gw
        .http
        .get(gw.url("me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["uid"], "johndoe", "{me}");
    // The documented rule grants `admin:write` to `preferred_username: zhangsan`, whom the
    // provider's userinfo names.
    assert_eq!(me["scope"], "user:read admin:write", "{me}");
}
