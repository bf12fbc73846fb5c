//! JSAPI tickets, `config` verification, the fake JS SDKs and mini-program logins of the three
//! fakes, over real HTTP.

mod common;

use std::time::Duration;

use common::{Http, json, started, text};
use reqwest::StatusCode;
use serde_json::{Value, json as j};
use unilogin_testkit::jsapi::{JsapiKind, RefusalReason, jsapi_signature};
use unilogin_testkit::{FakePlatform as _, Fault, dingtalk, feishu, wecom};

const PAGE: &str = "https://app.example.com/h5/index?x=1&y=2";

#[tokio::test]
async fn dingtalk_tickets_are_reused_counted_and_fail_like_dingtalk() {
    let (dt, http) = started(dingtalk::start()).await;
    let token = dt.mint_app_token();
    let (s, new) = json(
        http.post("/v1.0/oauth2/jsapiTickets")
            .header("x-acs-dingtalk-access-token", &token),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{new}");
    assert_eq!(new["expireIn"], 7200);
    let ticket = new["jsapiTicket"].as_str().expect("ticket").to_owned();
    let (_, old) = json(http.get(&format!("/get_jsapi_ticket?access_token={token}"))).await;
    assert_eq!(
        (old["errcode"].as_i64(), old["errmsg"].as_str()),
        (Some(0), Some("ok"))
    );
    assert_eq!(
        old["ticket"].as_str(),
        Some(ticket.as_str()),
        "the live ticket again"
    );
    assert_eq!(dt.jsapi_ticket_fetches(dingtalk::DEFAULT_APP_KEY), 2);
    assert_eq!(
        dt.live_jsapi_ticket(dingtalk::DEFAULT_APP_KEY),
        Some(ticket.clone())
    );

    let (s, bad) = json(
        http.post("/v1.0/oauth2/jsapiTickets")
            .header("x-acs-dingtalk-access-token", "nope"),
    )
    .await;
    assert_eq!(
        (s, bad["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidAuthentication"))
    );
    let (_, bad) = json(http.get("/get_jsapi_ticket?access_token=nope")).await;
    assert_eq!(bad["errcode"], 40014);
    dt.inject(dingtalk::endpoints::JSAPI_TICKETS, Fault::SystemBusy)
        .expect("fault");
    let (s, busy) = json(
        http.post("/v1.0/oauth2/jsapiTickets")
            .header("x-acs-dingtalk-access-token", &token),
    )
    .await;
    assert_eq!(
        (s, busy["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("systemBusy"))
    );
    assert_eq!(
        dt.jsapi_ticket_fetches(dingtalk::DEFAULT_APP_KEY),
        2,
        "refused fetches do not count"
    );

    // Rotation: a new ticket, the old one is dead.
    let rotated = dt.rotate_jsapi_ticket(dingtalk::DEFAULT_APP_KEY);
    assert_ne!(rotated, ticket);
    let (_, again) = json(http.get(&format!("/get_jsapi_ticket?access_token={token}"))).await;
    assert_eq!(again["ticket"].as_str(), Some(rotated.as_str()));
    dt.advance_clock(Duration::from_secs(7200));
    let (_, fresh) = json(http.get(&format!(
        "/get_jsapi_ticket?access_token={}",
        dt.mint_app_token()
    )))
    .await;
    assert_ne!(
        fresh["ticket"].as_str(),
        Some(rotated.as_str()),
        "expired on the fake clock"
    );
}

fn dd_config(ticket: &str, url: &str) -> Value {
    j!({
        "agentId": dingtalk::DEFAULT_AGENT_ID,
        "corpId": dingtalk::DEFAULT_CORP_ID,
        "timeStamp": "1700000000",
        "nonceStr": "nonce0001",
        "signature": jsapi_signature(ticket, "nonce0001", "1700000000", url),
        "jsApiList": ["biz.util.openLink"],
    })
}

#[tokio::test]
async fn dingtalk_dd_config_is_checked_like_the_real_sdk() {
    let dt = dingtalk::start().await;
    let app = dingtalk::DEFAULT_APP_KEY;
    let ticket = dt.rotate_jsapi_ticket(app);
    let ok = dd_config(&ticket, PAGE);
    assert_eq!(dt.verify_jsapi_config(JsapiKind::Config, &ok, PAGE), Ok(()));
    assert_eq!(
        dt.verify_jsapi_config(JsapiKind::Config, &ok, &format!("{PAGE}#/route")),
        Ok(())
    );
    let reason = |cfg: &Value, url: &str| {
        dt.verify_jsapi_config(JsapiKind::Config, cfg, url)
            .map_err(|r| r.reason)
    };
    // Signed with the fragment, or the decoded form of an encoded URL.
    let frag = dd_config(&ticket, &format!("{PAGE}#/route"));
    assert_eq!(
        reason(&frag, &format!("{PAGE}#/route")),
        Err(RefusalReason::SignatureMismatch)
    );
    let decoded = dd_config(&ticket, "https://app.example.com/h5/index?q=a b");
    assert_eq!(
        reason(&decoded, "https://app.example.com/h5/index?q=a%20b"),
        Err(RefusalReason::SignatureMismatch)
    );
    assert_eq!(
        reason(&dd_config("WRONG", PAGE), PAGE),
        Err(RefusalReason::SignatureMismatch)
    );
    let mut lower = ok.clone();
    lower["timestamp"] = lower["timeStamp"].take();
    lower.as_object_mut().expect("object").remove("timeStamp");
    assert_eq!(
        reason(&lower, PAGE),
        Err(RefusalReason::MissingField("timeStamp"))
    );
    let mut agent = ok.clone();
    agent["agentId"] = j!("999");
    assert_eq!(
        reason(&agent, PAGE),
        Err(RefusalReason::UnknownApp("agentId"))
    );
    let refusal = dt
        .verify_jsapi_config(JsapiKind::Config, &agent, PAGE)
        .expect_err("refused");
    assert_eq!(refusal.sdk_error["errorCode"], dingtalk::SIGNATURE_MISMATCH);
    assert!(
        !refusal.to_string().contains(&ticket),
        "no ticket in the refusal"
    );
    assert_eq!(reason(&ok, PAGE), Ok(()));
    dt.expire_jsapi_tickets(app);
    assert_eq!(
        reason(&ok, PAGE),
        Err(RefusalReason::SignatureMismatch),
        "expired early"
    );
    let agent_config = dt.verify_jsapi_config(JsapiKind::AgentConfig, &ok, PAGE);
    assert_eq!(
        agent_config.map_err(|r| r.reason),
        Err(RefusalReason::UnsupportedKind)
    );
}

#[tokio::test]
async fn the_verify_endpoint_answers_cross_origin_pages() {
    let (dt, http) = started(dingtalk::start()).await;
    let ticket = dt.rotate_jsapi_ticket(dingtalk::DEFAULT_APP_KEY);
    let body = j!({"kind": "config", "config": dd_config(&ticket, PAGE), "url": PAGE}).to_string();
    let resp = http
        .post("/__fake/jsapi/verify")
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://app.example.com")
        .body(body)
        .send()
        .await
        .expect("send");
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://app.example.com")
    );
    let v: Value = resp.json().await.expect("json");
    assert_eq!(v["ok"], true, "{v}");
    let bad = j!({"kind": "config", "config": dd_config("WRONG", PAGE), "url": PAGE}).to_string();
    let (_, v) = json(http.post("/__fake/jsapi/verify").body(bad)).await;
    assert_eq!(
        (v["ok"].as_bool(), v["reason"].as_str()),
        (Some(false), Some("signature_mismatch"))
    );
    assert_eq!(v["error"]["errorCode"], "52013");
    let (s, _) = json(http.post("/__fake/jsapi/verify").body("not json")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        dt.calls(unilogin_testkit::jsapi::endpoints::JSAPI_VERIFY),
        3
    );

    let (s, js) = text(http.get("/__fake/jsapi/dingtalk.js")).await;
    assert_eq!(s, StatusCode::OK);
    for needle in [
        "dd.config",
        "dd.ready",
        "dd.error",
        "dd.getAuthCode",
        "requestAuthCode",
        "/__fake/jsapi/verify",
        "split(\"#\")[0]",
    ] {
        assert!(js.contains(needle), "{needle} missing");
    }
    let (_, code) = json(
        http.post("/__fake/jsapi/code")
            .body(j!({"corpId": dingtalk::DEFAULT_CORP_ID}).to_string()),
    )
    .await;
    assert_eq!(code["ok"], true, "{code}");
    let (_, code) = json(
        http.post("/__fake/jsapi/code")
            .body(j!({"corpId": "other"}).to_string()),
    )
    .await;
    assert_eq!(code["ok"], false, "{code}");
}

#[tokio::test]
async fn feishu_tickets_config_and_mini_program_login() {
    let (fs, http) = started(feishu::start()).await;
    let (token, _) = fs.mint_app_token();
    let (s, t) = json(http.post("/open-apis/jssdk/ticket/get").bearer_auth(&token)).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        (
            t["code"].as_i64(),
            t["msg"].as_str(),
            t["data"]["expire_in"].as_u64()
        ),
        (Some(0), Some("ok"), Some(7200))
    );
    let ticket = t["data"]["ticket"].as_str().expect("ticket").to_owned();
    let (_, again) = json(http.post("/open-apis/jssdk/ticket/get").bearer_auth(&token)).await;
    assert_eq!(again["data"]["ticket"].as_str(), Some(ticket.as_str()));
    assert_eq!(fs.jsapi_ticket_fetches(feishu::DEFAULT_APP_ID), 2);
    let (_, bad) = json(
        http.post("/open-apis/jssdk/ticket/get")
            .bearer_auth("t-nope"),
    )
    .await;
    assert_eq!(bad["code"], feishu::CODE_TENANT_TOKEN_INVALID);

    let sig = jsapi_signature(&ticket, "n1", "1700000000000", PAGE);
    let cfg = j!({"appId": feishu::DEFAULT_APP_ID, "timestamp": 1_700_000_000_000_u64, "nonceStr": "n1", "signature": sig});
    assert_eq!(
        fs.verify_jsapi_config(JsapiKind::Config, &cfg, PAGE),
        Ok(())
    );
    let mut as_string = cfg.clone();
    as_string["timestamp"] = j!("1700000000000");
    let refused = fs
        .verify_jsapi_config(JsapiKind::Config, &as_string, PAGE)
        .expect_err("string timestamp");
    assert_eq!(refused.reason, RefusalReason::WrongType("timestamp"));
    assert_eq!(refused.sdk_error["errorCode"], feishu::JSAPI_CONFIG_FAILED);
    fs.expire_jsapi_tickets(feishu::DEFAULT_APP_ID);
    assert_eq!(
        fs.verify_jsapi_config(JsapiKind::Config, &cfg, PAGE)
            .map_err(|r| r.reason),
        Err(RefusalReason::SignatureMismatch)
    );
    let (_, js) = text(http.get("/__fake/jsapi/feishu.js")).await;
    assert!(
        js.contains("h5sdk.config") && js.contains("tt.requestAccess") && js.contains("onFail")
    );

    // Mini program: tt.login code → tokenLoginValidate.
    let code = fs.issue_mina_code(feishu::DEMO_USER_ID);
    let validate = |code: &str, token: &str| {
        http.post("/open-apis/mina/v2/tokenLoginValidate")
            .bearer_auth(token)
            .json(&j!({"code": code}))
    };
    let (s, v) = json(validate(&code, &token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["msg"], "success");
    let d = &v["data"];
    assert_eq!(d["open_id"], "ou_fakeopenid0001");
    assert_eq!(d["employee_id"], feishu::DEMO_USER_ID);
    assert_eq!(d["tenant_key"], feishu::DEFAULT_TENANT_KEY);
    assert_ne!(
        d["union_id"], "on_fakeunionid0001",
        "deprecated, not the real union id"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let exp = d["expires_in"].as_u64().expect("number");
    assert!(
        exp > now + 7000 && exp <= now + 7300,
        "absolute timestamp, got {exp}"
    );
    for k in ["session_key", "access_token", "refresh_token"] {
        assert!(d[k].as_str().is_some_and(|s| !s.is_empty()), "{k}");
    }
    let (_, info) = json(
        http.get("/open-apis/authen/v1/user_info")
            .bearer_auth(d["access_token"].as_str().expect("token")),
    )
    .await;
    assert_eq!(
        info["code"], 0,
        "the access token is a real user token: {info}"
    );
    let (_, reused) = json(validate(&code, &token)).await;
    assert_eq!(reused["code"], feishu::CODE_MINA_CODE_INVALID);
    let (_, bad) = json(validate(
        &fs.issue_mina_code(feishu::DEMO_USER_ID),
        "t-nope",
    ))
    .await;
    assert_eq!(bad["code"], feishu::CODE_MINA_TOKEN_INVALID);
    let other = fs.issue_mina_code_for("cli_other", feishu::DEMO_USER_ID);
    let (_, wrong_app) = json(validate(&other, &token)).await;
    assert_eq!(wrong_app["code"], feishu::CODE_MINA_CODE_INVALID);
    let outsider = fs.issue_mina_code(feishu::OUTSIDER_USER_ID);
    let (_, hidden) = json(validate(&outsider, &token)).await;
    assert_eq!(hidden["code"], feishu::CODE_MINA_NO_VISIBILITY);
    let late = fs.issue_mina_code(feishu::DEMO_USER_ID);
    fs.advance_clock(Duration::from_secs(301));
    let (_, expired) = json(validate(&late, &fs.mint_app_token().0)).await;
    assert_eq!(expired["code"], feishu::CODE_MINA_CODE_INVALID);
    fs.inject(
        feishu::endpoints::MINA_TOKEN_LOGIN_VALIDATE,
        Fault::TokenInvalid,
    )
    .expect("fault");
    let (_, faulted) = json(validate("x", &token)).await;
    assert_eq!(faulted["code"], feishu::CODE_MINA_TOKEN_INVALID);
}

async fn wecom_ticket(http: &Http, path: &str) -> Value {
    json(http.get(path)).await.1
}

#[tokio::test]
async fn wecom_tickets_quotas_and_both_configs() {
    let (wc, http) = started(wecom::start()).await;
    let token = wc.mint_app_token(wecom::DEFAULT_AGENT_ID).expect("token");
    let corp = wecom_ticket(
        &http,
        &format!("/cgi-bin/get_jsapi_ticket?access_token={token}"),
    )
    .await;
    assert_eq!(
        (corp["errcode"].as_i64(), corp["expires_in"].as_u64()),
        (Some(0), Some(7200)),
        "{corp}"
    );
    let agent = wecom_ticket(
        &http,
        &format!("/cgi-bin/ticket/get?access_token={token}&type=agent_config"),
    )
    .await;
    assert_eq!(agent["errcode"], 0);
    assert_ne!(corp["ticket"], agent["ticket"], "two kinds, two tickets");
    let no_type = wecom_ticket(&http, &format!("/cgi-bin/ticket/get?access_token={token}")).await;
    assert_eq!(no_type["errcode"], wecom::INVALID_ARGS);
    assert_eq!(
        wecom_ticket(&http, "/cgi-bin/get_jsapi_ticket?access_token=nope").await["errcode"],
        40014
    );
    assert_eq!(
        wecom_ticket(&http, "/cgi-bin/get_jsapi_ticket").await["errcode"],
        41001
    );

    let (corp_t, agent_t) = (
        corp["ticket"].as_str().expect("t"),
        agent["ticket"].as_str().expect("t"),
    );
    let cfg = j!({"appId": wecom::DEFAULT_CORP_ID, "timestamp": 1700000000, "nonceStr": "n", "signature": jsapi_signature(corp_t, "n", "1700000000", PAGE)});
    assert_eq!(
        wc.verify_jsapi_config(JsapiKind::Config, &cfg, PAGE),
        Ok(())
    );
    let agent_cfg = j!({"corpid": wecom::DEFAULT_CORP_ID, "agentid": 1000002, "timestamp": "1700000000", "nonceStr": "n", "signature": jsapi_signature(agent_t, "n", "1700000000", PAGE)});
    assert_eq!(
        wc.verify_jsapi_config(JsapiKind::AgentConfig, &agent_cfg, PAGE),
        Ok(())
    );
    // The corp ticket does not sign agentConfig, nor another agent.
    let swapped = j!({"corpid": wecom::DEFAULT_CORP_ID, "agentid": "1000002", "timestamp": "1700000000", "nonceStr": "n", "signature": jsapi_signature(corp_t, "n", "1700000000", PAGE)});
    let refused = wc
        .verify_jsapi_config(JsapiKind::AgentConfig, &swapped, PAGE)
        .expect_err("wrong ticket");
    assert_eq!(refused.sdk_error["errMsg"], "agentConfig:invalid signature");
    let mut other_agent = agent_cfg.clone();
    other_agent["agentid"] = j!(wecom::SECOND_AGENT_ID);
    assert_eq!(
        wc.verify_jsapi_config(JsapiKind::AgentConfig, &other_agent, PAGE)
            .map_err(|r| r.reason),
        Err(RefusalReason::SignatureMismatch)
    );
    let refused = wc
        .verify_jsapi_config(
            JsapiKind::Config,
            &j!({"appId": "ww_other", "timestamp": 1, "nonceStr": "n", "signature": "x"}),
            PAGE,
        )
        .expect_err("corp");
    assert_eq!(refused.sdk_error["errMsg"], "config:invalid corpid");
    let (_, js) = text(http.get("/__fake/jsapi/wecom.js")).await;
    assert!(js.contains("wx.agentConfig") && js.contains("jWeixin") && js.contains("cfg.fail"));

    // Quota: 100 agent tickets per app per hour, then 45009; an hour later it is back.
    assert_eq!(
        wc.jsapi_ticket_fetches(wecom::DEFAULT_AGENT_ID, JsapiKind::AgentConfig),
        1
    );
    for _ in 1..wecom::AGENT_TICKETS_PER_APP_HOUR {
        let v = wecom_ticket(
            &http,
            &format!("/cgi-bin/ticket/get?access_token={token}&type=agent_config"),
        )
        .await;
        assert_eq!(v["errcode"], 0);
    }
    let over = wecom_ticket(
        &http,
        &format!("/cgi-bin/ticket/get?access_token={token}&type=agent_config"),
    )
    .await;
    assert_eq!(over["errcode"], wecom::RATE_LIMITED);
    assert_eq!(
        wc.jsapi_ticket_fetches(wecom::DEFAULT_AGENT_ID, JsapiKind::AgentConfig),
        100
    );
    wc.advance_clock(Duration::from_secs(3600));
    let expired = wecom_ticket(
        &http,
        &format!("/cgi-bin/ticket/get?access_token={token}&type=agent_config"),
    )
    .await;
    assert_eq!(expired["errcode"], 0, "the hour's quota is back: {expired}");
    wc.advance_clock(Duration::from_secs(3600));
    let dead = wecom_ticket(
        &http,
        &format!("/cgi-bin/get_jsapi_ticket?access_token={token}"),
    )
    .await;
    assert_eq!(dead["errcode"], 42001, "expired app token");
}

#[tokio::test]
async fn wecom_mini_program_login() {
    let (wc, http) = started(wecom::start()).await;
    let token = wc.mint_app_token(wecom::DEFAULT_AGENT_ID).expect("token");
    let code = wc.issue_mina_code(wecom::DEMO_USER_ID);
    let path = |code: &str, token: &str| {
        format!(
            "/cgi-bin/miniprogram/jscode2session?access_token={token}&js_code={code}&grant_type=authorization_code"
        )
    };
    let (_, v) = json(http.get(&path(&code, &token))).await;
    assert_eq!(
        (v["errcode"].as_i64(), v["errmsg"].as_str()),
        (Some(0), Some("ok")),
        "{v}"
    );
    assert_eq!(
        (v["corpid"].as_str(), v["userid"].as_str()),
        (Some(wecom::DEFAULT_CORP_ID), Some(wecom::DEMO_USER_ID))
    );
    assert!(v["session_key"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(
        json(http.get(&path(&code, &token))).await.1["errcode"],
        40029,
        "single use"
    );
    let other = wc.issue_mina_code_for(wecom::SECOND_AGENT_ID, wecom::DEMO_USER_ID);
    assert_eq!(
        json(http.get(&path(&other, &token))).await.1["errcode"],
        40029,
        "another app's code"
    );
    let fresh = wc.issue_mina_code(wecom::DEMO_USER_ID);
    assert_eq!(
        json(http.get(&path(&fresh, "nope"))).await.1["errcode"],
        40014
    );
    assert_eq!(
        json(http.get(&path(&fresh, &token))).await.1["errcode"],
        0,
        "a bad token did not burn it"
    );
    let outsider = wc.issue_mina_code(wecom::OUTSIDER_USER_ID);
    assert_eq!(
        json(http.get(&path(&outsider, &token))).await.1["errcode"],
        40029
    );
    let late = wc.issue_mina_code(wecom::DEMO_USER_ID);
    wc.advance_clock(Duration::from_secs(301));
    assert_eq!(
        json(http.get(&path(&late, &token))).await.1["errcode"],
        40029,
        "expired"
    );
}
