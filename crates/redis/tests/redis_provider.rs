//! The OpenID Provider's grant store (feature `provider`) on a real Redis: the same behaviour
//! suite runs against `MemoryGrantStore` and `RedisGrantStore`, then what only a shared store
//! shows (two connections racing for one code or one refresh token, expiry, an outage).

mod support;

use std::time::Duration;

use support::RedisServer;
use unilogin_provider::{
    CodeGrant, CodeTaken, Grant, GrantStore, IssuedToken, MemoryGrantStore, PendingAuthorization,
    Rotation,
};
use unilogin_redis::RedisStore;
use unilogin_redis::provider::RedisGrantStore;

fn store(server: &RedisServer) -> RedisGrantStore {
    RedisStore::builder(server.url())
        .prefix("op:")
        .build()
        .unwrap()
        .grant_store()
}

fn grant(id: &str) -> Grant {
    let mut claims = serde_json::Map::new();
    claims.insert("name".into(), serde_json::json!("Zhang San"));
    Grant {
        id: id.into(),
        client_id: "web".into(),
        scopes: vec!["openid".into(), "profile".into()],
        subject: "acme:dingtalk:u1".into(),
        sub: "acme:dingtalk:u1".into(),
        sid: "sid-1".into(),
        auth_time: 1_700_000_000,
        require_auth_time: false,
        tenant: "acme".into(),
        platform: "dingtalk".into(),
        uid: "u1".into(),
        user_id: None,
        account: Some("acct-1".into()),
        claims,
        created_at: 1_700_000_000,
    }
}

fn pending() -> PendingAuthorization {
    PendingAuthorization {
        client_id: "spa".into(),
        redirect_uri: "http://127.0.0.1:8400/cb".into(),
        scopes: vec!["openid".into()],
        state: Some("st".into()),
        nonce: Some("n".into()),
        code_challenge: Some("c".repeat(43)),
        tenant: "acme".into(),
        platform: Some("dingtalk".into()),
        max_age: Some(60),
        fresh_after_ms: None,
        require_auth_time: true,
    }
}

const MIN: Duration = Duration::from_secs(60);

/// What every `GrantStore` must do.
async fn behaviour(s: &dyn GrantStore) {
    // Pending requests: taken once.
    s.put_request("r1", &pending(), MIN).await.unwrap();
    assert_eq!(s.take_request("r1").await.unwrap(), Some(pending()));
    assert_eq!(s.take_request("r1").await.unwrap(), None);

    // Codes: found once, then the spent marker names the grant.
    let code = CodeGrant {
        grant_id: "g1".into(),
        redirect_uri: "https://rp.example/cb".into(),
        code_challenge: None,
        nonce: Some("n".into()),
        grant: grant("g1"),
    };
    s.put_code("h1", &code, MIN).await.unwrap();
    match s.take_code("h1", MIN).await.unwrap() {
        CodeTaken::Found(c) => assert_eq!(*c, code),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        s.take_code("h1", MIN).await.unwrap(),
        CodeTaken::Spent {
            grant_id: "g1".into()
        }
    );
    assert_eq!(s.take_code("h2", MIN).await.unwrap(), CodeTaken::Missing);

    // Grants and refresh rotation with reuse detection.
    s.put_grant(&grant("g1"), Some("r1"), MIN).await.unwrap();
    assert_eq!(s.grant("g1").await.unwrap(), Some(grant("g1")));
    s.add_access_token(
        "g1",
        &IssuedToken {
            jti: "g1.a".into(),
            exp: 5,
        },
    )
    .await
    .unwrap();
    assert!(matches!(
        s.rotate_refresh("g1", "r1", "r2", MIN).await.unwrap(),
        Rotation::Rotated(g) if *g == grant("g1")
    ));
    s.add_access_token(
        "g1",
        &IssuedToken {
            jti: "g1.b".into(),
            exp: 6,
        },
    )
    .await
    .unwrap();
    assert_eq!(
        s.rotate_refresh("g1", "forged", "r3", MIN).await.unwrap(),
        Rotation::Invalid
    );
    assert!(matches!(
        s.rotate_refresh("g1", "r1", "r3", MIN).await.unwrap(),
        Rotation::Reused(_)
    ));
    assert_eq!(
        s.rotate_refresh("g1", "r2", "r4", MIN).await.unwrap(),
        Rotation::Invalid,
        "the whole family is revoked"
    );
    assert_eq!(s.grant("g1").await.unwrap(), None);
    let tokens = s.revoke_grant("g1", MIN).await.unwrap();
    let jtis: Vec<&str> = tokens.iter().map(|t| t.jti.as_str()).collect();
    assert_eq!(jtis, ["g1.a", "g1.b"]);
    assert_eq!(tokens[1].exp, 6);
    assert!(s.revoke_grant("unknown", MIN).await.unwrap().is_empty());
    // Revoked before it is stored (a code redeemed twice at once): it stays revoked.
    s.put_grant(&grant("unknown"), Some("r1"), MIN)
        .await
        .unwrap();
    assert_eq!(s.grant("unknown").await.unwrap(), None);
    assert_eq!(
        s.rotate_refresh("unknown", "r1", "r2", MIN).await.unwrap(),
        Rotation::Invalid
    );
    assert_eq!(
        s.rotate_refresh("never", "r1", "r2", MIN).await.unwrap(),
        Rotation::Invalid
    );
    // A grant without refresh cannot be refreshed.
    s.put_grant(&grant("g2"), None, MIN).await.unwrap();
    assert_eq!(
        s.rotate_refresh("g2", "", "r", MIN).await.unwrap(),
        Rotation::Invalid
    );

    // Sessions.
    s.add_session_client("sid-1", "subj", "web", "g1", MIN)
        .await
        .unwrap();
    s.add_session_client("sid-1", "subj", "spa", "g2", MIN)
        .await
        .unwrap();
    s.add_session_client("sid-1", "subj", "spa", "g2", MIN)
        .await
        .unwrap();
    s.add_session_client("sid-2", "subj", "web", "g3", MIN)
        .await
        .unwrap();
    assert_eq!(
        s.subject_sessions("subj").await.unwrap(),
        ["sid-1", "sid-2"]
    );
    let mut rec = s.take_session("sid-1").await.unwrap().unwrap();
    rec.clients.sort();
    assert_eq!(rec.subject, "subj");
    assert_eq!(
        rec.clients,
        [
            ("spa".to_string(), "g2".to_string()),
            ("web".to_string(), "g1".to_string())
        ]
    );
    assert_eq!(s.take_session("sid-1").await.unwrap(), None);
    assert_eq!(s.subject_sessions("subj").await.unwrap(), ["sid-2"]);
}

#[tokio::test]
async fn the_memory_store_passes_the_behaviour_suite() {
    behaviour(&MemoryGrantStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_passes_the_behaviour_suite() {
    let server = RedisServer::start();
    behaviour(&store(&server)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_race_for_one_code_and_one_refresh_token() {
    let server = RedisServer::start();
    let (a, b) = (store(&server), store(&server));
    let code = CodeGrant {
        grant_id: "g9".into(),
        redirect_uri: "https://rp.example/cb".into(),
        code_challenge: None,
        nonce: None,
        grant: grant("g9"),
    };
    a.put_code("hc", &code, MIN).await.unwrap();
    let (ta, tb) = tokio::join!(a.take_code("hc", MIN), b.take_code("hc", MIN));
    let found = [ta.unwrap(), tb.unwrap()]
        .into_iter()
        .filter(|t| matches!(t, CodeTaken::Found(_)))
        .count();
    assert_eq!(found, 1, "exactly one replica redeems the code");

    // Two replicas presenting the same refresh token at once: one rotates, the other is a
    // reuse that revokes the family.
    a.put_grant(&grant("g9"), Some("r1"), MIN).await.unwrap();
    let (ra, rb) = tokio::join!(
        a.rotate_refresh("g9", "r1", "ra", MIN),
        b.rotate_refresh("g9", "r1", "rb", MIN)
    );
    let mut kinds = [ra.unwrap(), rb.unwrap()].map(|r| match r {
        Rotation::Rotated(_) => "rotated",
        Rotation::Reused(_) => "reused",
        Rotation::Invalid => "invalid",
    });
    kinds.sort();
    assert_eq!(kinds, ["reused", "rotated"]);
    assert_eq!(b.grant("g9").await.unwrap(), None);
}

#[tokio::test]
async fn records_expire_and_secrets_are_stored_hashed_only() {
    let server = RedisServer::start();
    let s = store(&server);
    s.put_request("short", &pending(), Duration::from_millis(50))
        .await
        .unwrap();
    s.put_grant(
        &grant("gs"),
        Some("hash-of-secret"),
        Duration::from_millis(50),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(s.take_request("short").await.unwrap(), None);
    assert_eq!(s.grant("gs").await.unwrap(), None);
    // Every key has a TTL.
    s.put_grant(&grant("gt"), Some("h"), MIN).await.unwrap();
    s.add_access_token(
        "gt",
        &IssuedToken {
            jti: "gt.1".into(),
            exp: 1,
        },
    )
    .await
    .unwrap();
    s.add_session_client("sid-t", "subj-t", "web", "gt", MIN)
        .await
        .unwrap();
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("op:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(keys.len() >= 4, "{keys:?}");
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!(ttl > 0, "{k} has no TTL");
    }
}

#[tokio::test]
async fn an_unreachable_redis_is_temporarily_unavailable() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    let s = RedisStore::builder(url)
        .op_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .grant_store();
    let e = s.take_code("h", MIN).await.unwrap_err();
    assert_eq!(e.code(), "temporarily_unavailable");
    assert!(!format!("{s:?}").contains("redis://"));
}
