//! The `jsapi_*` examples' pages in a real browser: headless Chromium opens each platform's page
//! (served by the examples' own support code, included below by `#[path]`), which loads the
//! fake's JS SDK, fetches its config from the example server's `/jsapi-config` with
//! `encodeURIComponent(location.href.split('#')[0])` and calls `dd.config` / `h5sdk.config` /
//! `wx.config` + `wx.agentConfig`. The page opened with a query and an SPA fragment must reach
//! `ready`; the page that signs a hard-coded URL, opened under another one, must reach the SDK's
//! error.
//!
//! Needs the Debian package `chromium` (`cargo xtask ci` installs it). Without it this test
//! FAILS with a message saying so: it never skips silently.

#[path = "../examples/support/jsapi.rs"]
mod jsapi;

use std::path::{Path, PathBuf};

use jsapi::{Demo, Which};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::jsapi::endpoints::JSAPI_VERIFY;

const INSTALL_HINT: &str = "the JSAPI example browser test needs headless Chromium: install the Debian package \
     `chromium` (apt-get install chromium), or run `cargo xtask ci`, which installs it";

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// What the page reported once Chromium ran it (its `data-result`).
fn run_chromium(chromium: &Path, url: &str, profile: &Path) -> String {
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--virtual-time-budget=10000", "--dump-dom", url])
        .output()
        .expect("run chromium");
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let result = dom
        .split("data-result=\"")
        .nth(1)
        .and_then(|r| r.split('"').next());
    let detail = dom
        .split("<pre id=\"detail\">")
        .nth(1)
        .and_then(|r| r.split("</pre>").next())
        .unwrap_or("");
    match result {
        Some(r) if detail.is_empty() => r.to_owned(),
        Some(r) => format!("{r} {detail}"),
        None => format!("no result in DOM: {dom}"),
    }
}

fn verify_calls(demo: &Demo) -> u64 {
    match &demo.fake {
        jsapi::Fake::DingTalk(f) => f.calls(JSAPI_VERIFY),
        jsapi::Fake::Feishu(f) => f.calls(JSAPI_VERIFY),
        jsapi::Fake::WeCom(f) => f.calls(JSAPI_VERIFY),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_example_page_reaches_ready_and_a_wrongly_signed_one_the_error() {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"])
        .unwrap_or_else(|| panic!("no chromium on PATH. {INSTALL_HINT}"));
    let root = std::env::temp_dir().join(format!("unilogin-jsapi-chromium-{}", std::process::id()));
    for (which, error) in [
        (Which::DingTalk, "52013"),
        (Which::Feishu, "errorCode"),
        (Which::WeCom, "invalid signature"),
    ] {
        let demo = Demo::start(which).await.expect("demo");
        let page = demo.serve().expect("serve");
        let name = demo.platform();
        let cases = [
            // The right way, with a query and an SPA route in the fragment.
            (page.clone(), true),
            // A page that signs a hard-coded URL works only under exactly that URL…
            (format!("{}/h5/pinned.html", demo.origin), true),
            // …and fails when a shared link adds a query.
            (format!("{}/h5/pinned.html?from=share", demo.origin), false),
        ];
        let mut runs = Vec::new();
        for (i, (url, _)) in cases.iter().enumerate() {
            let (chromium, url, profile) = (
                chromium.clone(),
                url.clone(),
                root.join(format!("{name}-{i}")),
            );
            runs.push(tokio::task::spawn_blocking(move || {
                run_chromium(&chromium, &url, &profile)
            }));
        }
        for ((url, good), run) in cases.iter().zip(runs) {
            let got = run.await.expect("join");
            if *good {
                assert_eq!(got, "ready", "{name}: {url}");
            } else {
                assert!(got.starts_with("error "), "{name}: {url}: {got}");
                assert!(
                    got.contains(error),
                    "{name}: {url}: the SDK's error object: {got}"
                );
            }
        }
        // The page really went through the SDK: config per page (WeCom: config, then
        // agentConfig on the good pages only).
        let expected = if which == Which::WeCom { 5 } else { 3 };
        assert_eq!(verify_calls(&demo), expected, "{name}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
