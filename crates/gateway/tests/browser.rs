//! A real browser: headless Chromium, driven through chromedriver (WebDriver), signs in to the
//! sandbox gateway with every platform it was built with — PC flow from the login link over the
//! fake authorize page's Approve button to the signed-in home page — and, for the platforms
//! whose client yields codes through a JSAPI, the H5 page's script in a browser that presents
//! the platform client's `User-Agent`. Screenshots are saved under `target/browser/`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`cargo xtask ci` installs them).
//! Without them this test FAILS with a message saying so: it never skips silently.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::json;
use unilogin_gateway::{Sandbox, SandboxOptions};

const INSTALL_HINT: &str = "the browser test needs headless Chromium and chromedriver: install the Debian packages \
     `chromium` and `chromium-driver` (apt-get install chromium chromium-driver), or run `cargo xtask ci`, which installs them";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A chromedriver process of our own; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(program: &PathBuf) -> Driver {
    let port = free_port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}. {INSTALL_HINT}", program.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(r) = http.get(format!("{}/status", driver.url)).send().await
            && r.status().is_success()
        {
            return driver;
        }
        assert!(
            Instant::now() < deadline,
            "chromedriver did not come up on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A fresh headless Chromium session (own profile directory), optionally with a User-Agent.
async fn browser(
    driver: &Driver,
    chromium: &PathBuf,
    profile: &PathBuf,
    ua: Option<&str>,
) -> Client {
    let _ = std::fs::remove_dir_all(profile);
    std::fs::create_dir_all(profile).unwrap();
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1024,768".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if let Some(ua) = ua {
        args.push(format!("--user-agent={ua}"));
    }
    let caps = json!({
        "browserName": "chrome",
        "goog:chromeOptions": { "binary": chromium, "args": args },
    });
    let serde_json::Value::Object(caps) = caps else {
        unreachable!()
    };
    ClientBuilder::new(HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .unwrap_or_else(|e| panic!("cannot start a Chromium session: {e}. {INSTALL_HINT}"))
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    // An absolute path without `..`: Chromium resolves its profile directory itself, and
    // chromedriver must find the DevToolsActivePort file at the same path.
    dir.canonicalize().unwrap_or(dir)
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = artifacts_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

/// Waits for the home page to say who is signed in; returns (name, platform).
async fn signed_in(client: &Client) -> (String, String) {
    let name = client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("#signed-in #user-name"))
        .await
        .unwrap_or_else(|e| panic!("the home page does not show a signed-in user: {e}"))
        .text()
        .await
        .unwrap();
    let platform = client
        .find(Locator::Css("#user-platform"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (name, platform)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_signs_in_with_every_platform() {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
        .unwrap_or_else(|| panic!("no Chromium on PATH. {INSTALL_HINT}"));
    let chromedriver = find_program(&["chromedriver"])
        .unwrap_or_else(|| panic!("no chromedriver on PATH. {INSTALL_HINT}"));
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    assert!(!sandbox.platforms.is_empty());
    let driver = start_driver(&chromedriver).await;
    let profile_root = artifacts_dir().join("profiles");

    // PC flow, one fresh browser per platform.
    for p in &sandbox.platforms {
        let name = p.fake.name();
        let user = p.fake.demo_user_id();
        let client = browser(&driver, &chromium, &profile_root.join(name), None).await;
        client.goto(&sandbox.login_link(name)).await.unwrap();
        // The fake's authorize page, served by the platform fake (another origin).
        let approve = client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(&format!(
                "li[data-user-id='{user}'] button[type='submit']"
            )))
            .await
            .unwrap_or_else(|e| panic!("{name}: no Approve button for {user}: {e}"));
        let page = client.current_url().await.unwrap();
        assert!(
            page.as_str().starts_with(p.fake.base_url()),
            "{name}: expected the fake's page, got {page}"
        );
        screenshot(&client, &format!("{name}-authorize")).await;
        approve.click().await.unwrap();
        let (shown, platform) = signed_in(&client).await;
        assert_eq!(platform, name);
        assert!(!shown.is_empty());
        let url = client.current_url().await.unwrap();
        assert_eq!(
            url.as_str(),
            sandbox.url.as_str(),
            "{name}: back on return_to"
        );
        let shot = screenshot(&client, &format!("{name}-signed-in")).await;
        println!(
            "{name}: signed in as {shown}; screenshot {}",
            shot.display()
        );
        // /me answers with the session cookie the browser holds.
        client
            .goto(sandbox.url.join("me").unwrap().as_str())
            .await
            .unwrap();
        let me = client.source().await.unwrap();
        assert!(me.contains(&format!("\"platform\":\"{name}\"")), "{me}");
        // Sign out: the home page shows the visitor as signed out again.
        client.goto(sandbox.url.as_str()).await.unwrap();
        client
            .find(Locator::Css("#logout"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#signed-out"))
            .await
            .unwrap_or_else(|e| panic!("{name}: still signed in after logout: {e}"));
        client.close().await.unwrap();
    }

    // Inside the platform's client (its User-Agent), as the platform's registration declares:
    // JSAPI platforms (DingTalk, Feishu) get the H5 page whose script asks the JSAPI for a code
    // (in the sandbox, without the client's global, the fake supplies it), posts it and
    // continues to return_to; WeCom gets its in-client OAuth link (the client approves it for
    // the signed-in member; here the fake's page does, with its button).
    let h5 = [
        (
            "dingtalk",
            "Mozilla/5.0 (Linux; Android 12) Mobile Safari/537.36 AliApp(DingTalk/7.0.40) com.alibaba.android.rimet/1",
            false,
        ),
        (
            "feishu",
            "Mozilla/5.0 (Linux; Android 11) Mobile Lark/6.9.9 LarkLocale/zh_CN ChannelName/Feishu",
            false,
        ),
        (
            "wecom",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0) Mobile/15E148 wxwork/4.1.6 MicroMessenger/7.0.1",
            true,
        ),
    ];
    for (name, ua, approve) in h5 {
        let Some(fake) = sandbox.fake(name) else {
            continue;
        };
        let profile = profile_root.join(format!("{name}-h5"));
        let client = browser(&driver, &chromium, &profile, Some(ua)).await;
        client.goto(&sandbox.login_link(name)).await.unwrap();
        if approve {
            let user = fake.demo_user_id();
            client
                .wait()
                .at_most(Duration::from_secs(20))
                .for_element(Locator::Css(&format!(
                    "li[data-user-id='{user}'] button[type='submit']"
                )))
                .await
                .unwrap_or_else(|e| panic!("{name} in-client: no Approve button: {e}"))
                .click()
                .await
                .unwrap();
        }
        let (_, platform) = signed_in(&client).await;
        assert_eq!(platform, name);
        screenshot(&client, &format!("{name}-in-client-signed-in")).await;
        client.close().await.unwrap();
    }
    sandbox.stop().await;
}
