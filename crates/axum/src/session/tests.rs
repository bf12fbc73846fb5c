use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use unilogin_core::mapping::UserProfile;

use super::*;

const ISS: &str = "https://login.example.com";
const AUD: &str = "example-apis";

fn profile(v: serde_json::Value) -> UserProfile {
    serde_json::from_value(v).unwrap()
}

fn alice() -> UserProfile {
    profile(json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u-1", "name": "Alice"}))
}

fn issuer() -> SessionIssuer {
    SessionIssuer::new(
        SessionKeys::generate().unwrap(),
        ISS,
        AUD,
        Duration::from_secs(3600),
    )
}

fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

fn part(token: &str, i: usize) -> serde_json::Value {
    let seg = token.split('.').nth(i).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(seg).unwrap()).unwrap()
}

#[test]
fn issued_token_has_header_and_claims_of_the_contract() {
    let issuer = issuer();
    let now = SystemTime::now();
    let s = issuer
        .issue_at(
            &alice(),
            &scopes(&["user:read", "admin:write", "user:read"]),
            now,
        )
        .unwrap();
    let header = part(&s.token, 0);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], issuer.keys().current_kid().as_str());
    let c = part(&s.token, 1);
    let t = now.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(c["iss"], ISS);
    assert_eq!(c["aud"], AUD);
    assert_eq!(c["sub"], "acme:dingtalk:u-1");
    assert_eq!(c["iat"], t);
    assert_eq!(c["nbf"], t);
    assert_eq!(c["exp"], t + 3600);
    assert_eq!(
        c["scope"], "user:read admin:write",
        "deduplicated, in order"
    );
    assert_eq!(c["tenant"], "acme");
    assert_eq!(c["platform"], "dingtalk");
    assert_eq!(c["uid"], "u-1");
    assert_eq!(c["name"], "Alice");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(c["jti"].as_str().unwrap())
            .unwrap()
            .len(),
        16
    );
    assert_eq!(s.claims.exp, t + 3600);
    assert_eq!(s.expires_at, s.claims.expires_at());
    assert!(s.claims.has_scope("admin:write"));
    assert!(!s.claims.has_scope("admin"));
}

#[test]
fn each_token_gets_a_fresh_jti() {
    let issuer = issuer();
    let a = issuer.issue(&alice(), &[]).unwrap();
    let b = issuer.issue(&alice(), &[]).unwrap();
    assert_ne!(a.claims.jti, b.claims.jti);
    assert_eq!(a.claims.scope, "");
}

#[test]
fn invalid_scopes_are_refused() {
    let issuer = issuer();
    for bad in ["", "two words", "quote\"", "back\\slash", "tab\t", "中文"] {
        let err = issuer.issue(&alice(), &scopes(&[bad])).unwrap_err();
        assert_eq!(err, SessionError::InvalidScope(bad.to_string()));
    }
    assert!(is_valid_scope("admin:write"));
    assert!(is_valid_scope("https://api.example.com/x.read"));
}

#[test]
fn debug_of_issued_session_hides_the_token() {
    let s = issuer().issue(&alice(), &[]).unwrap();
    let dbg = format!("{s:?}");
    assert!(!dbg.contains(&s.token));
    assert!(dbg.contains("***"));
}

#[test]
fn verify_accepts_own_token_and_reports_each_failure() {
    let issuer = issuer();
    let now = SystemTime::now();
    let ok = issuer.issue(&alice(), &scopes(&["a"])).unwrap();
    assert_eq!(issuer.verify(&ok.token).unwrap(), ok.claims);

    // Same keys, other issuer / audience.
    let other_iss = SessionIssuer::new(
        issuer.keys().clone(),
        "https://evil",
        AUD,
        Duration::from_secs(60),
    );
    let t = other_iss.issue(&alice(), &[]).unwrap().token;
    assert_eq!(issuer.verify(&t), Err(VerifyError::WrongIssuer));
    let other_aud =
        SessionIssuer::new(issuer.keys().clone(), ISS, "other", Duration::from_secs(60));
    let t = other_aud.issue(&alice(), &[]).unwrap().token;
    assert_eq!(issuer.verify(&t), Err(VerifyError::WrongAudience));

    // Expired two hours ago; not valid for ten more minutes.
    let t = issuer
        .issue_at(&alice(), &[], now - Duration::from_secs(7200))
        .unwrap()
        .token;
    assert_eq!(issuer.verify(&t), Err(VerifyError::Expired));
    let t = issuer
        .issue_at(&alice(), &[], now + Duration::from_secs(600))
        .unwrap()
        .token;
    assert_eq!(issuer.verify(&t), Err(VerifyError::NotYetValid));

    // Within the clock skew either way: accepted.
    let t = issuer
        .issue_at(&alice(), &[], now - Duration::from_secs(3600 + 10))
        .unwrap()
        .token;
    assert!(
        issuer.verify(&t).is_ok(),
        "expired 10 s ago is within 30 s skew"
    );
    let t = issuer
        .issue_at(&alice(), &[], now + Duration::from_secs(10))
        .unwrap()
        .token;
    assert!(
        issuer.verify(&t).is_ok(),
        "nbf 10 s ahead is within 30 s skew"
    );

    assert_eq!(issuer.verify("garbage"), Err(VerifyError::Malformed));
    assert_eq!(issuer.verify("a.b.c"), Err(VerifyError::Malformed));
    assert_eq!(issuer.verify(""), Err(VerifyError::Malformed));
}

#[test]
fn a_different_key_under_the_same_kid_is_a_bad_signature() {
    let issuer = issuer();
    let kid = issuer.keys().current_kid();
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n";
    let forger = SessionIssuer::new(
        SessionKeys::from_pkcs8_pem(pem, &kid).unwrap(),
        ISS,
        AUD,
        Duration::from_secs(60),
    );
    let forged = forger
        .issue(&alice(), &scopes(&["admin:write"]))
        .unwrap()
        .token;
    assert_eq!(issuer.verify(&forged), Err(VerifyError::BadSignature));
}

#[test]
fn tampered_payload_is_a_bad_signature() {
    let issuer = issuer();
    let t = issuer
        .issue(&alice(), &scopes(&["user:read"]))
        .unwrap()
        .token;
    let mut claims = part(&t, 1);
    claims["scope"] = json!("admin:write");
    let segs: Vec<&str> = t.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        segs[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        segs[2]
    );
    assert_eq!(issuer.verify(&forged), Err(VerifyError::BadSignature));
}

#[test]
fn alg_none_and_hmac_tokens_are_refused() {
    let issuer = issuer();
    let t = issuer.issue(&alice(), &[]).unwrap();
    let kid = issuer.keys().current_kid();
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t.claims).unwrap());
    let none = format!(
        "{}.{body}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string())
    );
    assert_eq!(issuer.verify(&none), Err(VerifyError::Malformed));
    // HS256 keyed with the published public key (algorithm confusion).
    let x = issuer.keys().jwks()["keys"][0]["x"]
        .as_str()
        .unwrap()
        .to_string();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid);
    let hs = jsonwebtoken::encode(
        &header,
        &t.claims,
        &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
    )
    .unwrap();
    assert_eq!(issuer.verify(&hs), Err(VerifyError::Malformed));
}

#[test]
fn missing_or_unknown_kid_is_unknown_key() {
    let issuer = issuer();
    let stranger = SessionIssuer::new(
        SessionKeys::generate().unwrap(),
        ISS,
        AUD,
        Duration::from_secs(60),
    );
    let t = stranger.issue(&alice(), &[]).unwrap().token;
    assert_eq!(issuer.verify(&t), Err(VerifyError::UnknownKey));
}

#[test]
fn rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_kid() {
    let issuer = issuer();
    let old = issuer.issue(&alice(), &[]).unwrap();
    let old_kid = issuer.keys().current_kid();
    issuer.keys().rotate(issuer.ttl()).unwrap();
    let new = issuer.issue(&alice(), &[]).unwrap();
    assert_eq!(part(&old.token, 0)["kid"], old_kid.as_str());
    assert_eq!(
        part(&new.token, 0)["kid"],
        issuer.keys().current_kid().as_str()
    );
    assert_ne!(old_kid, issuer.keys().current_kid());
    assert!(issuer.verify(&old.token).is_ok());
    assert!(issuer.verify(&new.token).is_ok());
}

#[test]
fn session_error_converts_to_core_error() {
    let e: unilogin_core::Error = SessionError::ScopeRules("bad".into()).into();
    assert_eq!(
        e.kind(),
        unilogin_core::Error::config(None, None, "x", "y").kind()
    );
    let e: unilogin_core::Error = SessionError::Sign("boom".into()).into();
    assert!(matches!(e, unilogin_core::Error::Internal(_)));
}

// ---- scope rules ------------------------------------------------------------------------

fn dingtalk_rules() -> ScopeRules {
    ScopeRules::from_value(&json!({
        "default": ["user:read"],
        "rules": [
            {"when": {"extra": {"admin": true}}, "grant": ["admin:read", "admin:write"]},
            {"when": {"extra": {"roles": "财务"}}, "grant": ["finance:read"]},
            {"when": {"department": ["1001", 1002]}, "grant": ["reports:read"]},
            {"when": {"platform": "DingTalk", "job_title": "CTO"}, "grant": ["admin:read", "exec"]},
        ]
    }))
    .unwrap()
}

#[test]
fn dingtalk_admin_gets_admin_scopes() {
    let p = profile(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1",
        "extra": {"admin": true, "roles": ["员工"]}}),
    );
    assert_eq!(
        dingtalk_rules().scopes_for(&p),
        ["user:read", "admin:read", "admin:write"]
    );
    let p = profile(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1",
        "extra": {"admin": false}}),
    );
    assert_eq!(dingtalk_rules().scopes_for(&p), ["user:read"]);
}

#[test]
fn role_name_in_a_list_grants() {
    let p = profile(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1",
        "extra": {"roles": ["员工", "财务"]}}),
    );
    assert_eq!(
        dingtalk_rules().scopes_for(&p),
        ["user:read", "finance:read"]
    );
    let p = profile(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1",
        "extra": {"roles": "财务"}}),
    );
    assert_eq!(
        dingtalk_rules().scopes_for(&p),
        ["user:read", "finance:read"]
    );
}

#[test]
fn department_id_grants_with_numbers_and_text_alike() {
    let p = profile(
        json!({"platform": "wecom", "tenant": "acme", "user_id": "u1",
        "department_ids": ["7", "1002"]}),
    );
    assert_eq!(
        dingtalk_rules().scopes_for(&p),
        ["user:read", "reports:read"]
    );
    let p = profile(
        json!({"platform": "wecom", "tenant": "acme", "user_id": "u1",
        "department_ids": ["7"]}),
    );
    assert_eq!(dingtalk_rules().scopes_for(&p), ["user:read"]);
}

#[test]
fn all_conditions_of_a_rule_must_hold_and_grants_are_deduplicated() {
    let cto = json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1", "job_title": "CTO",
        "extra": {"admin": true}});
    assert_eq!(
        dingtalk_rules().scopes_for(&profile(cto)),
        ["user:read", "admin:read", "admin:write", "exec"]
    );
    let feishu_cto =
        json!({"platform": "feishu", "tenant": "acme", "user_id": "u1", "job_title": "CTO"});
    assert_eq!(
        dingtalk_rules().scopes_for(&profile(feishu_cto)),
        ["user:read"]
    );
}

#[test]
fn null_and_empty_rules_grant_nothing() {
    let p = alice();
    assert!(
        ScopeRules::from_value(&json!(null))
            .unwrap()
            .scopes_for(&p)
            .is_empty()
    );
    let r = ScopeRules::from_value(&json!({})).unwrap();
    assert!(r.is_empty());
    assert!(r.scopes_for(&p).is_empty());
}

#[test]
fn bad_scope_rules_are_errors() {
    let bad = [
        json!({"defaults": ["x"]}),
        json!({"default": ["has space"]}),
        json!({"rules": [{"when": {}, "grant": ["x"]}]}),
        json!({"rules": [{"when": {"extra": {}}, "grant": ["x"]}]}),
        json!({"rules": [{"when": {"departmnet": "1"}, "grant": ["x"]}]}),
        json!({"rules": [{"when": {"department": "1"}, "grant": []}]}),
        json!({"rules": [{"when": {"department": []}, "grant": ["x"]}]}),
        json!({"rules": [{"when": {"extra": {"a": {"b": 1}}}, "grant": ["x"]}]}),
        json!({"rules": [{"when": {"department": "1"}}]}),
        json!(["user:read"]),
    ];
    for v in bad {
        let err = ScopeRules::from_value(&v).unwrap_err();
        assert!(!err.0.is_empty(), "{v}: {err:?}");
    }
}

#[test]
fn user_id_claim_only_when_the_subject_is_another_id() {
    let issuer = issuer();
    // Subject = user id: no separate claim (and none in the token).
    let s = issuer.issue(&alice(), &[]).unwrap();
    assert_eq!(s.claims.user_id, None);
    assert!(part(&s.token, 1).get("user_id").is_none());
    assert_eq!(
        s.claims.revocation_subjects(),
        ["acme:dingtalk:u-1", "entry:acme:dingtalk"]
    );
    // Subject = union id with a user id: the user id is carried and is a revocation subject.
    let p = profile(json!({
        "platform": "feishu", "tenant": "acme",
        "subject": {"kind": "union_id", "value": "on_1"}, "union_id": "on_1", "user_id": "u-9",
    }));
    let s = issuer.issue_for_account(&p, &[], "acct-1").unwrap();
    assert_eq!(s.claims.user_id.as_deref(), Some("u-9"));
    assert_eq!(part(&s.token, 1)["user_id"], "u-9");
    let verified = issuer.verify(&s.token).unwrap();
    assert_eq!(
        verified.revocation_subjects(),
        [
            "acme:feishu:on_1",
            "acme:feishu:u-9",
            "account:acct-1",
            "entry:acme:feishu"
        ]
    );
    // Subject = union id without a user id: nothing to add.
    let p = profile(json!({
        "platform": "feishu", "tenant": "acme",
        "subject": {"kind": "union_id", "value": "on_2"}, "union_id": "on_2",
    }));
    assert_eq!(issuer.issue(&p, &[]).unwrap().claims.user_id, None);
}
