//! The guard over real HTTP on loopback: a JWKS endpoint, a guarded service, tokens from
//! `SessionIssuer`.

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::Path;
use common::*;
use serde_json::{Value, json};
use unilogin_axum::guard::RejectionKind;
use unilogin_axum::session::{
    MemoryRevocationList, RevocationList, ScopeRules, SessionIssuer, SessionKeys,
};
use unilogin_axum::{AuthRejection, AuthUser, Guard, Tenants};

const BAD: &str = "Bearer realm=\"test-apis\", error=\"invalid_token\"";

#[tokio::test]
async fn token_from_the_issuer_is_accepted_and_the_user_exposed() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    let (base, guard) = guarded(Guard::jwks(&jwks.url, ISS, AUD).tenant("acme")).await;
    let token = issuer(&keys)
        .issue(&alice(), &scopes(&["user:read"]))
        .unwrap()
        .token;
    let r = get_with(&format!("{base}/me"), &token).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"sub": "acme:dingtalk:alice", "tenant": "acme", "platform": "dingtalk",
               "uid": "alice", "name": "Alice", "scopes": ["user:read"]})
    );
    // Second request: served from the cached key set.
    assert_eq!(get_with(&format!("{base}/me"), &token).await.status(), 200);
    assert_eq!(jwks.hits(), 1);
    assert_eq!(guard.jwks_fetches(), 1);
}

#[tokio::test]
async fn requests_without_a_bearer_token_get_a_bare_challenge() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    let (base, _) = guarded(Guard::jwks(&jwks.url, ISS, AUD).tenant("acme")).await;
    let url = format!("{base}/me");
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Bearer realm=\"test-apis\"");
    // Another scheme is "no authentication information" for a bearer resource (RFC 6750 §3.1).
    let r = client()
        .get(&url)
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), "Bearer realm=\"test-apis\"");
    // The scheme name is case-insensitive; a valid token with `bearer` works.
    let token = issuer(&keys).issue(&alice(), &[]).unwrap().token;
    let r = client()
        .get(&url)
        .header("authorization", format!("bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(jwks.hits(), 1, "no token, no fetch");
}

#[tokio::test]
async fn every_kind_of_bad_token_is_401_invalid_token_with_the_same_answer() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    let revoked_list = Arc::new(MemoryRevocationList::new());
    let (base, _) = guarded(
        Guard::jwks(&jwks.url, ISS, AUD)
            .tenant("acme")
            .revocation(revoked_list.clone())
            .jwks_refetch_interval(Duration::from_secs(3600)),
    )
    .await;
    let url = format!("{base}/me");
    let good = issuer(&keys);
    let now = SystemTime::now();

    // Forged: another private key published under the same kid.
    let forger = SessionIssuer::new(
        SessionKeys::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n",
            &keys.current_kid(),
        )
        .unwrap(),
        ISS,
        AUD,
        Duration::from_secs(3600),
    );
    let revoked = good.issue(&alice(), &[]).unwrap();
    revoked_list
        .revoke(&revoked.claims.jti, revoked.expires_at)
        .await;
    let cases: Vec<(&str, String)> = vec![
        ("garbage", "garbage".into()),
        ("three garbage parts", "aaa.bbb.ccc".into()),
        ("not a b64token", "a,b".into()),
        (
            "bad signature",
            forger
                .issue(&alice(), &scopes(&["admin:write"]))
                .unwrap()
                .token,
        ),
        (
            "wrong issuer",
            SessionIssuer::new(
                keys.clone(),
                "https://evil.test",
                AUD,
                Duration::from_secs(60),
            )
            .issue(&alice(), &[])
            .unwrap()
            .token,
        ),
        (
            "wrong audience",
            SessionIssuer::new(keys.clone(), ISS, "other-apis", Duration::from_secs(60))
                .issue(&alice(), &[])
                .unwrap()
                .token,
        ),
        (
            "expired",
            good.issue_at(&alice(), &[], now - Duration::from_secs(7200))
                .unwrap()
                .token,
        ),
        (
            "not yet valid",
            good.issue_at(&alice(), &[], now + Duration::from_secs(600))
                .unwrap()
                .token,
        ),
        ("revoked", revoked.token.clone()),
        (
            "unknown kid",
            issuer(&SessionKeys::generate().unwrap())
                .issue(&alice(), &[])
                .unwrap()
                .token,
        ),
    ];
    let mut bodies = Vec::new();
    for (what, token) in &cases {
        let r = client()
            .get(&url)
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{what}");
        assert_eq!(www(&r), BAD, "{what}");
        assert_eq!(r.headers()["cache-control"], "no-store", "{what}");
        bodies.push(r.text().await.unwrap());
    }
    // Not one answer says why: the bodies are identical.
    assert!(
        bodies.iter().all(|b| b == "{\"error\":\"invalid_token\"}"),
        "{bodies:?}"
    );
    // An empty bearer value is invalid too.
    let r = client()
        .get(&url)
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), BAD);
    // The same good key set still accepts a good token.
    let ok = good.issue(&alice(), &[]).unwrap().token;
    assert_eq!(get_with(&url, &ok).await.status(), 200);
}

#[tokio::test]
async fn two_authorization_headers_are_an_invalid_request() {
    let keys = SessionKeys::generate().unwrap();
    let (base, _) = guarded(Guard::local(keys.clone(), ISS, AUD).tenant("acme")).await;
    let token = issuer(&keys).issue(&alice(), &[]).unwrap().token;
    let r = client()
        .get(format!("{base}/me"))
        .header("authorization", format!("Bearer {token}"))
        .header("authorization", "Basic eDp5")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        www(&r),
        "Bearer realm=\"test-apis\", error=\"invalid_request\""
    );
}

#[tokio::test]
async fn valid_token_without_the_scope_is_403_naming_the_scope() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    let (base, _) = guarded(
        Guard::jwks(&jwks.url, ISS, AUD)
            .tenant("acme")
            .realm("acme api"),
    )
    .await;
    let iss = issuer(&keys);
    let reader = iss.issue(&alice(), &scopes(&["user:read"])).unwrap().token;
    let writer = iss
        .issue(&alice(), &scopes(&["user:read", "admin:write"]))
        .unwrap()
        .token;

    let r = client()
        .post(format!("{base}/admin/delete"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        www(&r),
        "Bearer realm=\"acme api\", error=\"insufficient_scope\", scope=\"admin:write\""
    );
    let r = client()
        .post(format!("{base}/admin/delete"))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "deleted by alice");

    // The in-handler check answers the same way.
    let r = get_with(&format!("{base}/reports"), &writer).await;
    assert_eq!(r.status(), 403);
    assert_eq!(
        www(&r),
        "Bearer realm=\"acme api\", error=\"insufficient_scope\", scope=\"reports:read\""
    );
    // The scope layer sits inside the guard: no token is still 401, not 403.
    let r = client()
        .post(format!("{base}/admin/delete"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn scopes_from_a_dingtalk_profile_open_the_admin_route() {
    let keys = SessionKeys::generate().unwrap();
    let (base, _) = guarded(Guard::local(keys.clone(), ISS, AUD).tenant("acme")).await;
    let rules = ScopeRules::from_value(&json!({
        "default": ["user:read"],
        "rules": [
            {"when": {"extra": {"admin": true}}, "grant": ["admin:write"]},
            {"when": {"extra": {"roles": "财务"}}, "grant": ["reports:read"]},
            {"when": {"department": "1001"}, "grant": ["reports:read"]},
        ]
    }))
    .unwrap();
    let iss = issuer(&keys);
    let token_for = |p: Value| {
        let p = profile(p);
        iss.issue(&p, &rules.scopes_for(&p)).unwrap().token
    };
    let admin = token_for(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "boss",
        "extra": {"admin": true}}),
    );
    let staff = token_for(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "staff",
        "extra": {"admin": false, "roles": ["员工"]}}),
    );
    let finance = token_for(
        json!({"platform": "dingtalk", "tenant": "acme", "user_id": "fin",
        "extra": {"roles": ["员工", "财务"]}}),
    );
    let dept = token_for(
        json!({"platform": "wecom", "tenant": "acme", "user_id": "d",
        "department_ids": ["1001"]}),
    );

    let post = |t: String| {
        let url = format!("{base}/admin/delete");
        async move {
            client()
                .post(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(post(admin.clone()).await, 200);
    assert_eq!(post(staff.clone()).await, 403);
    let reports = format!("{base}/reports");
    assert_eq!(get_with(&reports, &finance).await.status(), 200);
    assert_eq!(get_with(&reports, &dept).await.status(), 200);
    assert_eq!(get_with(&reports, &staff).await.status(), 403);
    assert_eq!(get_with(&reports, &admin).await.status(), 403);
}

// A test-only Ed25519 key (`openssl genpkey -algorithm ED25519`).
const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n";

#[tokio::test]
async fn rotation_to_the_staged_key_needs_no_refetch() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    // A guard that will not refetch for an hour: only keys it already has can pass.
    let (base, guard) = guarded(
        Guard::jwks(&jwks.url, ISS, AUD)
            .tenant("acme")
            .jwks_refetch_interval(Duration::from_secs(3600)),
    )
    .await;
    let url = format!("{base}/me");
    let iss = issuer(&keys);
    let old = iss.issue(&alice(), &[]).unwrap().token;
    assert_eq!(get_with(&url, &old).await.status(), 200);
    assert_eq!(jwks.hits(), 1);
    let staged = keys.next_kid().unwrap();

    keys.rotate(iss.ttl()).unwrap();
    assert_eq!(keys.current_kid(), staged);
    let new = iss.issue(&alice(), &[]).unwrap().token;
    assert_eq!(
        get_with(&url, &new).await.status(),
        200,
        "the new kid was published before use"
    );
    assert_eq!(get_with(&url, &old).await.status(), 200);
    assert_eq!(jwks.hits(), 1, "no refetch");
    assert_eq!(guard.jwks_fetches(), 1);
}

#[tokio::test]
async fn key_rotation_old_tokens_keep_working_new_kid_fetched_once_for_many_requests() {
    // Keys from a file stage nothing, so the rotation's key is new to the guard.
    let keys = SessionKeys::from_pkcs8_pem(PEM, "file-key").unwrap();
    // A slow JWKS (150 ms) so that the concurrent requests below overlap with the fetch.
    let jwks = jwks_server(keys.clone(), Duration::from_millis(150)).await;
    let (base, guard) = guarded(
        Guard::jwks(&jwks.url, ISS, AUD)
            .tenant("acme")
            .jwks_refetch_interval(Duration::ZERO),
    )
    .await;
    let url = format!("{base}/me");
    let iss = issuer(&keys);
    let old_kid = keys.current_kid();
    let old = iss.issue(&alice(), &[]).unwrap().token;
    assert_eq!(get_with(&url, &old).await.status(), 200);
    assert_eq!(jwks.hits(), 1);

    keys.rotate(iss.ttl()).unwrap();
    let new = iss.issue(&alice(), &[]).unwrap().token;
    let new_kid = keys.current_kid();
    assert_ne!(new_kid, old_kid);
    let header: Value =
        serde_json::from_slice(&base64_decode(new.split('.').next().unwrap())).unwrap();
    assert_eq!(
        header["kid"],
        new_kid.as_str(),
        "new tokens use the new kid"
    );

    // 64 concurrent requests carrying the unknown kid: one fetch between them.
    let results = futures::future::join_all((0..64).map(|_| get_with(&url, &new))).await;
    assert!(results.iter().all(|r| r.status() == 200));
    assert_eq!(jwks.hits(), 2, "exactly one refetch for the new kid");
    assert_eq!(guard.jwks_fetches(), 2);

    // Old-key tokens keep working (the old key is still published), without more fetches.
    assert_eq!(get_with(&url, &old).await.status(), 200);
    assert_eq!(get_with(&url, &new).await.status(), 200);
    assert_eq!(jwks.hits(), 2);
}

#[tokio::test]
async fn unknown_kids_cannot_drive_jwks_fetches_beyond_the_rate_bound() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::from_millis(50)).await;
    let (base, _) = guarded(
        Guard::jwks(&jwks.url, ISS, AUD)
            .tenant("acme")
            .jwks_refetch_interval(Duration::from_secs(3600)),
    )
    .await;
    let url = format!("{base}/me");
    let good = issuer(&keys).issue(&alice(), &[]).unwrap().token;
    assert_eq!(get_with(&url, &good).await.status(), 200);
    assert_eq!(jwks.hits(), 1);
    // Tokens under made-up key ids, sequential and concurrent: no fetch within the interval.
    for _ in 0..5 {
        let stranger = issuer(&SessionKeys::generate().unwrap())
            .issue(&alice(), &[])
            .unwrap()
            .token;
        assert_eq!(get_with(&url, &stranger).await.status(), 401);
    }
    let strangers: Vec<String> = (0..32)
        .map(|_| {
            issuer(&SessionKeys::generate().unwrap())
                .issue(&alice(), &[])
                .unwrap()
                .token
        })
        .collect();
    let results = futures::future::join_all(strangers.iter().map(|t| get_with(&url, t))).await;
    assert!(results.iter().all(|r| r.status() == 401));
    assert_eq!(jwks.hits(), 1, "rate bound holds");
}

#[tokio::test]
async fn a_cold_guard_fetches_once_for_a_burst_of_first_requests() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::from_millis(150)).await;
    let (base, _) = guarded(Guard::jwks(&jwks.url, ISS, AUD).tenant("acme")).await;
    let token = issuer(&keys).issue(&alice(), &[]).unwrap().token;
    let url = format!("{base}/me");
    let results = futures::future::join_all((0..32).map(|_| get_with(&url, &token))).await;
    assert!(results.iter().all(|r| r.status() == 200));
    assert_eq!(jwks.hits(), 1);
}

#[tokio::test]
async fn old_key_tokens_stop_at_their_expiry() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    let (base, _) = guarded(
        Guard::jwks(&jwks.url, ISS, AUD)
            .tenant("acme")
            .leeway(Duration::ZERO)
            .jwks_refetch_interval(Duration::ZERO),
    )
    .await;
    let url = format!("{base}/me");
    let short = SessionIssuer::new(keys.clone(), ISS, AUD, Duration::from_secs(1));
    let old = short.issue(&alice(), &[]).unwrap().token;
    keys.rotate(short.ttl()).unwrap();
    assert_eq!(get_with(&url, &old).await.status(), 200);
    // `exp` has one-second resolution: after two seconds the token is past it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get_with(&url, &old).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), BAD);
}

#[tokio::test]
async fn unreachable_jwks_is_503_not_invalid_token() {
    // A port with nothing listening.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let keys = SessionKeys::generate().unwrap();
    let (base, guard) = guarded(
        Guard::jwks(format!("http://{addr}/.well-known/jwks.json"), ISS, AUD).tenant("acme"),
    )
    .await;
    let token = issuer(&keys).issue(&alice(), &[]).unwrap().token;
    let r = get_with(&format!("{base}/me"), &token).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    assert!(r.headers().get("www-authenticate").is_none());
    // Within the refetch interval the dead endpoint is not hammered.
    let r = get_with(&format!("{base}/me"), &token).await;
    assert_eq!(r.status(), 503);
    assert_eq!(guard.jwks_fetches(), 1);
}

#[tokio::test]
async fn local_keys_guard_needs_no_http_and_sees_rotation_at_once() {
    let keys = SessionKeys::generate().unwrap();
    let iss = issuer(&keys);
    let (base, guard) = guarded(Guard::for_issuer(&iss).tenant("acme")).await;
    let url = format!("{base}/me");
    let old = iss.issue(&alice(), &[]).unwrap().token;
    assert_eq!(get_with(&url, &old).await.status(), 200);
    keys.rotate(iss.ttl()).unwrap();
    let new = iss.issue(&alice(), &[]).unwrap().token;
    assert_eq!(get_with(&url, &new).await.status(), 200);
    assert_eq!(get_with(&url, &old).await.status(), 200);
    assert_eq!(guard.jwks_fetches(), 0);
    // Revocation through the list configured on a local guard.
    let list = Arc::new(MemoryRevocationList::new());
    let (base, _) = guarded(
        Guard::for_issuer(&iss)
            .tenant("acme")
            .revocation(list.clone()),
    )
    .await;
    let s = iss.issue(&alice(), &[]).unwrap();
    let url = format!("{base}/me");
    assert_eq!(get_with(&url, &s.token).await.status(), 200);
    list.revoke(&s.claims.jti, s.expires_at).await;
    let r = get_with(&url, &s.token).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), BAD);
}

#[tokio::test]
async fn routes_outside_the_guard() {
    let keys = SessionKeys::generate().unwrap();
    let (base, _) = guarded(Guard::local(keys.clone(), ISS, AUD).tenant("acme")).await;
    // Option<AuthUser> outside the guard is None; AuthUser outside the guard fails closed.
    let r = client().get(format!("{base}/open")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "anonymous");
    let token = issuer(&keys).issue(&alice(), &[]).unwrap().token;
    let r = get_with(&format!("{base}/unguarded-me"), &token).await;
    assert_eq!(r.status(), 500);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

/// An admin (`admin:write`) of `tenant`.
fn admin_of(iss: &SessionIssuer, tenant: &str) -> String {
    let who = json!({"platform": "dingtalk", "tenant": tenant, "user_id": "root"});
    iss.issue(&profile(who), &scopes(&["admin:write"]))
        .unwrap()
        .token
}

const WRONG_TENANT: &str = "Bearer realm=\"test-apis\", error=\"wrong_tenant\"";

#[tokio::test]
async fn a_guard_for_one_tenant_refuses_another_tenants_tokens_whatever_their_scopes() {
    let keys = SessionKeys::generate().unwrap();
    let jwks = jwks_server(keys.clone(), Duration::ZERO).await;
    let iss = issuer(&keys);
    let (a, b) = (admin_of(&iss, "tenant-a"), admin_of(&iss, "tenant-b"));
    // Same issuer, same audience, same scope: only the tenant differs.
    let (base, _) = guarded(Guard::jwks(&jwks.url, ISS, AUD).tenant("tenant-b")).await;
    let delete = format!("{base}/admin/delete");
    let r = client().post(&delete).bearer_auth(&a).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(www(&r), WRONG_TENANT);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "wrong_tenant"})
    );
    let r = get_with(&format!("{base}/me"), &a).await;
    assert_eq!(
        r.status(),
        403,
        "every route of the guard, not just scoped ones"
    );
    let r = client().post(&delete).bearer_auth(&b).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // A list of tenants.
    let (base, _) =
        guarded(Guard::local(keys.clone(), ISS, AUD).tenants(["tenant-a", "tenant-b"])).await;
    let delete = format!("{base}/admin/delete");
    for (token, status) in [(&a, 200), (&b, 200), (&admin_of(&iss, "tenant-c"), 403)] {
        let r = client()
            .post(&delete)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status);
    }

    // `verify` applies the same rule.
    let guard_b = Guard::for_issuer(&iss).tenant("tenant-b").build().unwrap();
    let e = guard_b.verify(&a).await.unwrap_err();
    assert_eq!(e.kind(), &RejectionKind::WrongTenant);
    assert_eq!(e.status(), 403);
    assert_eq!(guard_b.verify(&b).await.unwrap().tenant(), "tenant-b");
}

async fn tenant_admin(Path(tenant): Path<String>, user: AuthUser) -> Result<String, AuthRejection> {
    user.require_tenant(&tenant)?;
    user.require("admin:write")?;
    Ok(format!("admin of {tenant}"))
}

#[tokio::test]
async fn an_any_tenant_guard_leaves_the_check_to_the_route() {
    let keys = SessionKeys::generate().unwrap();
    let iss = issuer(&keys);
    let guard = Guard::for_issuer(&iss).any_tenant().build().unwrap();
    assert_eq!(guard.tenants(), &Tenants::Any);
    let app = axum::Router::new()
        .route("/t/{tenant}/admin", axum::routing::get(tenant_admin))
        .layer(guard);
    let base = format!("http://{}", serve(app).await);
    let a = admin_of(&iss, "tenant-a");
    let r = get_with(&format!("{base}/t/tenant-a/admin"), &a).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "admin of tenant-a");
    let r = get_with(&format!("{base}/t/tenant-b/admin"), &a).await;
    assert_eq!(r.status(), 403);
    assert_eq!(www(&r), WRONG_TENANT);
}

#[tokio::test]
async fn a_revoked_subject_loses_its_earlier_tokens_at_once_but_may_log_in_again() {
    let keys = SessionKeys::generate().unwrap();
    let iss = issuer(&keys);
    let list = Arc::new(MemoryRevocationList::new());
    let (base, _) = guarded(
        Guard::for_issuer(&iss)
            .tenant("acme")
            .revocation(list.clone()),
    )
    .await;
    let url = format!("{base}/me");
    let now = SystemTime::now();
    let earlier = iss
        .issue_at(&alice(), &[], now - Duration::from_secs(20))
        .unwrap();
    let linked = iss
        .issue_for_account(
            &profile(json!({"platform": "wecom", "tenant": "acme", "user_id": "zs"})),
            &[],
            "acct-1",
        )
        .unwrap();
    let bob = iss
        .issue_at(
            &profile(json!({"platform": "dingtalk", "tenant": "acme", "user_id": "bob"})),
            &[],
            now - Duration::from_secs(20),
        )
        .unwrap();
    for s in [&earlier, &linked, &bob] {
        assert_eq!(get_with(&url, &s.token).await.status(), 200);
    }
    // "alice left" ten seconds ago: her earlier token is refused like a revoked token.
    list.revoke_subject(
        &unilogin_axum::session::subject_key("acme", "dingtalk", "alice"),
        now - Duration::from_secs(10),
        now + iss.ttl(),
    )
    .await
    .unwrap();
    let r = get_with(&url, &earlier.token).await;
    assert_eq!(r.status(), 401);
    assert_eq!(www(&r), BAD);
    // A token from a later login is accepted; other people are untouched.
    let later = iss.issue(&alice(), &[]).unwrap();
    assert_eq!(get_with(&url, &later.token).await.status(), 200);
    assert_eq!(get_with(&url, &bob.token).await.status(), 200);
    // Revoking an account refuses the linked identity's token.
    assert_eq!(get_with(&url, &linked.token).await.status(), 200);
    list.revoke_subject(
        &unilogin_axum::session::account_key("acct-1"),
        SystemTime::now(),
        SystemTime::now() + iss.ttl(),
    )
    .await
    .unwrap();
    let r = get_with(&url, &linked.token).await;
    assert_eq!((r.status().as_u16(), www(&r)), (401, BAD.to_string()));
}

/// A shared list whose store does not answer.
struct Unreachable;

#[async_trait::async_trait]
impl RevocationList for Unreachable {
    async fn revoke(&self, _: &str, _: SystemTime) {}
    async fn is_revoked(&self, _: &str) -> bool {
        true
    }
    async fn check(&self, _: &str) -> Result<bool, unilogin_axum::session::Unreachable> {
        Err(unilogin_axum::session::Unreachable)
    }
    async fn revoke_subject(
        &self,
        _: &str,
        _: SystemTime,
        _: SystemTime,
    ) -> Result<(), unilogin_axum::session::Unreachable> {
        Err(unilogin_axum::session::Unreachable)
    }
    async fn check_claims(
        &self,
        _: &unilogin_axum::session::Claims,
    ) -> Result<bool, unilogin_axum::session::Unreachable> {
        Err(unilogin_axum::session::Unreachable)
    }
}

#[tokio::test]
async fn an_unreachable_revocation_list_is_503_not_a_signed_out_401() {
    let keys = SessionKeys::generate().unwrap();
    let iss = issuer(&keys);
    let (base, guard) = guarded(
        Guard::for_issuer(&iss)
            .tenant("acme")
            .revocation(Arc::new(Unreachable)),
    )
    .await;
    let token = iss.issue(&alice(), &[]).unwrap().token;
    let r = get_with(&format!("{base}/me"), &token).await;
    assert_eq!(r.status(), 503);
    let e = guard.verify(&token).await.unwrap_err();
    assert_eq!(e.kind(), &RejectionKind::Unavailable);
}
