//! An invalid tenants file stops the gateway before it serves, with every problem at once: each
//! names its tenant, platform and field. `unilogin-gateway check-config` reports the same and
//! exits non-zero; the server refuses to start; `GatewayBuilder::open` returns all of them.

mod config_support;

use config_support::{TempDir, free_port, run_binary, try_serve};

/// Six tenants, each wrong in its own way, and one valid tenant.
const INVALID: &str = r#"
tenants:
  badredirect:
    dingtalk:
      app_key: dingbad1
      app_secret: s3cret-one
      redirect_uris: ["http://evil.example/cb"]
  badhost:
    dingtalk:
      app_key: dingbad2
      app_secret: s3cret-two
      hosts: { oapi: "https://oapi.example/?access_token=x" }
  mars:
    feishu:
      app_key: cli_mars
      app_secret: s3cret-three
      corp_id: tenantkey
      options: { region: mars }
  nocorp:
    feishu:
      app_key: cli_nocorp
      app_secret: s3cret-four
  badmapping:
    wecom:
      app_key: wwbad
      corp_id: wwbad
      agent_id: "1000002"
      app_secret: s3cret-five
      mapping: { mobile: "$.mobile[" }
  typo:
    dingtalk:
      app_key: dingtypo
      app_secert: s3cret-six
  fine:
    dingtalk:
      app_key: dingfine
      app_secret: s3cret-fine
      corp_id: dingcorpfine
      redirect_uris: ["https://app.fine.example/after-login"]
"#;

/// (tenant, platform, field) of every problem in [`INVALID`].
const EXPECTED: &[(&str, &str, &str)] = &[
    ("badredirect", "dingtalk", "redirect_uris[0]"),
    ("badhost", "dingtalk", "hosts.oapi"),
    ("mars", "feishu", "options.region"),
    ("nocorp", "feishu", "corp_id"),
    ("badmapping", "wecom", "mapping.wecom.mobile"),
    ("typo", "dingtalk", "app_secert"),
];

fn assert_lists_every_problem(text: &str) {
    for (tenant, platform, field) in EXPECTED {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("`{tenant}`")))
            .unwrap_or_else(|| panic!("no problem of tenant {tenant} in:\n{text}"));
        assert!(
            line.contains(&format!("`{platform}`")) && line.contains(field),
            "{tenant}: expected platform {platform} and field {field} in {line:?}"
        );
    }
    assert!(
        !text.contains("`fine`"),
        "the valid tenant is not a problem:\n{text}"
    );
    assert!(!text.contains("s3cret"), "a secret in the report:\n{text}");
    assert!(
        text.contains(&format!("{} configuration problems", EXPECTED.len())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_refuses_an_invalid_file_with_every_problem() {
    let dir = TempDir::new("invalid");
    let file = dir.write("tenants.yaml", INVALID);
    let yaml = format!("tenants_file: '{}'", file.display());
    let Err(problems) = try_serve(&yaml).await else {
        panic!("an invalid tenants file must not start a gateway");
    };
    assert_eq!(problems.0.len(), EXPECTED.len(), "{problems}");
    assert_lists_every_problem(&problems.to_string());

    // A valid file starts.
    let valid = dir.write(
        "valid.yaml",
        "tenants:\n  fine:\n    dingtalk: {app_key: dingfine, app_secret: s3cret-fine, corp_id: dingcorpfine}\n",
    );
    let served = try_serve(&format!("tenants_file: '{}'", valid.display()))
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(served.get("readyz").await.status(), 200);
}

#[test]
fn check_config_and_the_server_fail_listing_every_problem() {
    let dir = TempDir::new("check");
    dir.write("tenants.yaml", INVALID);
    let port = free_port();
    let config = dir.write(
        "gateway.yaml",
        &format!(
            "listen: '127.0.0.1:{port}'\npublic_url: 'http://127.0.0.1:{port}/'\ntenants_file: tenants.yaml\n"
        ),
    );
    let config = config.display().to_string();

    let (code, out) = run_binary(&["check-config", "--config", &config], &[]);
    assert_ne!(code, 0, "check-config accepted an invalid file:\n{out}");
    assert_lists_every_problem(&out);

    // The server itself refuses to start (and never listens).
    let (code, out) = run_binary(&["--config", &config], &[]);
    assert_ne!(code, 0, "the gateway started on an invalid file:\n{out}");
    assert!(out.contains("refusing to start"), "{out}");
    assert_lists_every_problem(&out);
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // A file that cannot be parsed at all is one problem, named.
    dir.write("tenants.yaml", "tenants: [not, a, map]\n");
    let (code, out) = run_binary(&["check-config", "--config", &config], &[]);
    assert_ne!(code, 0);
    assert!(
        out.contains("tenants") && out.contains("map of tenant ids"),
        "{out}"
    );

    // A valid file passes.
    dir.write(
        "tenants.yaml",
        "tenants:\n  fine:\n    dingtalk: {app_key: dingfine, app_secret: s3cret-fine, corp_id: dingcorpfine}\n",
    );
    let (code, out) = run_binary(&["check-config", "--config", &config], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("configuration ok: 1 tenant platform entry"),
        "{out}"
    );
}
