//! Mini-program logins on all three platforms, against the test-kit fakes:
//! `cargo run -p unilogin --features dingtalk,feishu,wecom --example mini_program`.
//!
//! A mini program gets a login code from its client and posts it to your server, which redeems
//! it without state (the code never travels in a URL), like an H5 JSAPI code:
//!
//! | platform | client | server exchange (by the library) | tenant option |
//! |---|---|---|---|
//! | Feishu / Lark | `tt.login({success(res){ res.code }})` | `POST /open-apis/mina/v2/tokenLoginValidate` with the app token | `mini_program: true` |
//! | WeCom | `wx.qy.login({success(res){ res.code }})` | `GET /cgi-bin/miniprogram/jscode2session` with the token of the app **associated with the mini program** | `mini_program: true` |
//! | DingTalk | `dd.getAuthCode({corpId, success(res){ res.authCode }})` (no `dd.config` in mini apps) | the H5 exchange (`user/getuserinfo`) | none: the H5 login |
//!
//! [`Prepared::login_with_code_kind`](unilogin::Prepared::login_with_code_kind) with
//! [`CodeKind::MiniProgram`] redeems it; the profile comes through the same mapping as every
//! other login. A platform whose tenant has not turned mini programs on refuses the code with
//! `Error::Unsupported` before any upstream call. The `session_key` these exchanges return is
//! never given to the client (nor kept: unilogin does not expose it).

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::{AuthCode, CodeKind, Error, Sso, TenantId};
use unilogin_testkit::{FakePlatform as _, dingtalk, feishu, wecom};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (dt, fs, wc) = (
        dingtalk::start().await,
        feishu::start().await,
        wecom::start().await,
    );
    let (d, f, w) = (dt.credentials(), fs.credentials(), wc.credentials());
    let (db, fb, wb) = (
        dt.base_url().to_string(),
        fs.base_url().to_string(),
        wc.base_url().to_string(),
    );
    let configs: Vec<PlatformConfig> = vec![
        serde_json::from_value(serde_json::json!({
            "tenant": "acme", "platform": "dingtalk",
            "app_key": d.app_key, "app_secret": d.app_secret, "corp_id": d.corp_id,
            "hosts": { "oapi": db, "api": db, "login": db },
        }))?,
        serde_json::from_value(serde_json::json!({
            "tenant": "acme", "platform": "feishu",
            "app_key": f.app_key, "app_secret": f.app_secret, "corp_id": f.corp_id,
            "hosts": { "open": fb, "accounts": fb },
            "options": { "region": "feishu", "mini_program": true },
        }))?,
        serde_json::from_value(serde_json::json!({
            "tenant": "acme", "platform": "wecom",
            "app_key": w.corp_id, "app_secret": w.app_secret,
            "corp_id": w.corp_id, "agent_id": w.agent_id,
            "hosts": { "qyapi": wb, "oauth": wb, "login": wb, "open": wb },
            "options": { "mini_program": true },
        }))?,
    ];
    let sso = Sso::builder(StaticConfig::new(configs)).build()?;
    let tenant = TenantId::new("acme")?;

    // What each client's login JSAPI returns inside the mini program (the fakes mint them).
    let codes = [
        ("feishu", fs.issue_mina_code("user001")), // tt.login
        ("wecom", wc.issue_mina_code("user001")),  // wx.qy.login
        ("dingtalk", dt.issue_h5_code("user001")), // dd.getAuthCode in a mini app
    ];
    for (platform, code) in codes {
        let prepared = sso.prepare(&tenant, platform).await?;
        let login = prepared
            .login_with_code_kind(CodeKind::MiniProgram, &AuthCode::new(code))
            .await?;
        println!(
            "{platform}: {} ({}), flow {}",
            login.profile.subject.value,
            login.profile.name.as_deref().unwrap_or("-"),
            login.flow
        );
        if login.profile.user_id.as_deref() != Some("user001") {
            return Err(format!("{platform}: the code was user001's: {:?}", login.profile).into());
        }
    }

    // A code is single use: the second redemption is refused by the platform.
    let code = fs.issue_mina_code("user002");
    let feishu = sso.prepare(&tenant, "feishu").await?;
    feishu
        .login_with_code_kind(CodeKind::MiniProgram, &AuthCode::new(code.clone()))
        .await?;
    match feishu
        .login_with_code_kind(CodeKind::MiniProgram, &AuthCode::new(code))
        .await
    {
        Err(e @ Error::InvalidCode { .. }) => {
            println!("feishu, the same code again: refused ({e})")
        }
        other => {
            return Err(format!("a reused tt.login code must be refused, got {other:?}").into());
        }
    }
    Ok(())
}
