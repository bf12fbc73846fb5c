//! The single-use store and the revocation list (feature `revocations`) on a real Redis; each
//! test starts its own `redis-server` (Debian package `redis-server`, or `cargo xtask ci`).

mod support;

use std::time::Duration;

use support::RedisServer;
use unilogin_redis::{RedisStore, Taken};

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::builder(server.url())
        .prefix("st:")
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_is_taken_once_across_connections() {
    let server = RedisServer::start();
    let (a, b) = (store(&server).state_store(), store(&server).state_store());
    a.ping().await.unwrap();
    a.put("s1", "{\"x\":1}", Duration::from_secs(30))
        .await
        .unwrap();
    let (ta, tb) = tokio::join!(a.take("s1"), b.take("s1"));
    let mut results = [ta.unwrap(), tb.unwrap()];
    results.sort_by_key(|t| matches!(t, Taken::Used));
    assert_eq!(results, [Taken::Found("{\"x\":1}".into()), Taken::Used]);
    assert_eq!(a.take("s1").await.unwrap(), Taken::Used);
    assert_eq!(a.take("never").await.unwrap(), Taken::Missing);
    // The tombstone itself cannot be stored as a value.
    assert!(
        a.put("s2", "__used__", Duration::from_secs(1))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn values_are_forgotten_after_their_time() {
    let server = RedisServer::start();
    let s = store(&server).state_store();
    s.put("short", "v", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(s.take("short").await.unwrap(), Taken::Missing);
}

#[tokio::test]
async fn an_unreachable_redis_is_a_store_error() {
    let server = RedisServer::start();
    let url = server.url();
    drop(server);
    let s = RedisStore::builder(url)
        .op_timeout(Duration::from_millis(100))
        .build()
        .unwrap()
        .state_store();
    let e = s.take("k").await.unwrap_err();
    assert_eq!(e.kind(), "store_unavailable", "{e}");
    assert!(e.to_string().starts_with("redis store: take"), "{e}");
    assert!(s.ping().await.is_err());
}

#[cfg(feature = "revocations")]
#[tokio::test]
async fn revocations_are_shared_and_fail_closed() {
    use std::time::SystemTime;
    use unilogin_axum::session::RevocationList;
    let mut server = RedisServer::start();
    let a = store(&server).revocation_list();
    let b = store(&server).revocation_list();
    assert!(!b.is_revoked("jti-1").await);
    a.revoke("jti-1", SystemTime::now() + Duration::from_secs(60))
        .await;
    assert!(b.is_revoked("jti-1").await);
    // Already expired: nothing recorded.
    a.revoke("jti-2", SystemTime::now() - Duration::from_secs(1))
        .await;
    assert!(!b.is_revoked("jti-2").await);
    server.kill();
    assert!(
        b.is_revoked("jti-3").await,
        "an unreachable deny-list fails closed"
    );
}

#[cfg(feature = "revocations")]
fn claims(
    iat: std::time::SystemTime,
    uid: &str,
    account: Option<&str>,
) -> unilogin_axum::session::Claims {
    let iat = iat.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    serde_json::from_value(serde_json::json!({
        "iss": "https://login.example.com", "aud": "apis", "sub": format!("acme:dingtalk:{uid}"),
        "exp": iat + 3600, "iat": iat, "nbf": iat, "jti": format!("jti-{uid}-{iat}"),
        "scope": "", "tenant": "acme", "platform": "dingtalk", "uid": uid, "account": account,
    }))
    .unwrap()
}

#[cfg(feature = "revocations")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_revocations_are_shared_and_keep_the_later_before() {
    use std::time::SystemTime;
    use unilogin_axum::session::{RevocationList, account_key, subject_key};
    let server = RedisServer::start();
    let (a, b) = (
        store(&server).revocation_list(),
        store(&server).revocation_list(),
    );
    let now = SystemTime::now();
    let until = now + Duration::from_secs(3600);
    let old = claims(now - Duration::from_secs(60), "alice", Some("acct-1"));
    let newer = claims(now, "alice", None);
    assert!(!b.check_claims(&old).await.unwrap());

    // Replica A learns that alice left 10 s ago; replica B refuses her earlier token at once.
    let alice = subject_key("acme", "dingtalk", "alice");
    a.revoke_subject(&alice, now - Duration::from_secs(10), until)
        .await
        .unwrap();
    assert!(b.check_claims(&old).await.unwrap());
    assert!(
        !b.check_claims(&newer).await.unwrap(),
        "a later login is accepted"
    );
    assert!(
        !b.check_claims(&claims(now - Duration::from_secs(60), "bob", None))
            .await
            .unwrap()
    );

    // An earlier `before` from B does not move the entry back; a later one moves it on.
    b.revoke_subject(
        &alice,
        now - Duration::from_secs(3000),
        now + Duration::from_secs(5),
    )
    .await
    .unwrap();
    let mut conn = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = a.subject_redis_key(&alice);
    assert_eq!(key, "st:revoked-subject:acme:dingtalk:alice");
    let stored: String = redis::cmd("GET")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    let ms = (now - Duration::from_secs(10))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert_eq!(stored, ms.to_string());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 3_000_000, "the longer expiry is kept: {pttl} ms");
    let fresh = SystemTime::now() + Duration::from_secs(2);
    let c = claims(SystemTime::now(), "alice", None);
    assert!(!a.check_claims(&c).await.unwrap());
    b.revoke_subject(&alice, fresh, until).await.unwrap();
    assert!(
        a.check_claims(&c).await.unwrap(),
        "the later before is in force"
    );

    // An account key refuses the tokens that name the account.
    a.revoke_subject(&account_key("acct-9"), now, until)
        .await
        .unwrap();
    assert!(
        b.check_claims(&claims(now - Duration::from_secs(5), "zs", Some("acct-9")))
            .await
            .unwrap()
    );
    assert!(
        !b.check_claims(&claims(now - Duration::from_secs(5), "zs", None))
            .await
            .unwrap()
    );

    // A revoked jti is refused by check_claims too (one MGET reads both kinds).
    let t = claims(now, "carol", None);
    assert!(!b.check_claims(&t).await.unwrap());
    a.revoke(&t.jti, until).await;
    assert!(b.check_claims(&t).await.unwrap());

    // Entries end at their `until`.
    a.revoke_subject("short", now, SystemTime::now() + Duration::from_millis(80))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let gone: Option<String> = redis::cmd("GET")
        .arg(a.subject_redis_key("short"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(gone, None);
    // A value not written by us refuses rather than guesses.
    let _: () = redis::cmd("SET")
        .arg(a.subject_redis_key(&subject_key("acme", "dingtalk", "dave")))
        .arg("garbage")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(b.check_claims(&claims(now, "dave", None)).await.unwrap());
}

#[cfg(feature = "revocations")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_revocations_during_an_outage_hold_locally_fail_closed_and_replay() {
    use std::time::SystemTime;
    use unilogin_axum::session::{RevocationList, Unreachable, subject_key};
    let mut server = RedisServer::start();
    let fast = |s: &RedisServer| {
        RedisStore::builder(s.url())
            .prefix("st:")
            .op_timeout(Duration::from_millis(100))
            .build()
            .unwrap()
            .revocation_list()
    };
    let (a, b) = (fast(&server), fast(&server));
    let now = SystemTime::now();
    let old = claims(now - Duration::from_secs(60), "alice", None);
    assert!(!b.check_claims(&old).await.unwrap());

    server.kill();
    let alice = subject_key("acme", "dingtalk", "alice");
    assert_eq!(
        a.revoke_subject(&alice, now, now + Duration::from_secs(3600))
            .await,
        Err(Unreachable),
        "not shared yet"
    );
    assert_eq!(a.queued(), 1);
    // In force at once on the replica that made it, even without Redis.
    assert!(a.check_claims(&old).await.unwrap());
    // Another replica cannot tell: it fails closed.
    assert_eq!(b.check_claims(&old).await, Err(Unreachable));
    assert_eq!(
        b.check_claims(&claims(now, "bob", None)).await,
        Err(Unreachable)
    );

    server.restart();
    // The queue is replayed (every second) once Redis answers again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while a.queued() > 0 {
        assert!(std::time::Instant::now() < deadline, "queue not replayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b_after = loop {
        match b.check_claims(&old).await {
            Ok(v) => break v,
            Err(_) => {
                assert!(std::time::Instant::now() < deadline, "b never reconnected");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert!(b_after, "the replayed revocation reached the other replica");
    assert!(
        !b.check_claims(&claims(
            SystemTime::now() + Duration::from_secs(2),
            "alice",
            None
        ))
        .await
        .unwrap()
    );
}

#[cfg(feature = "revocations")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guard_sharing_redis_refuses_a_leaver_revoked_on_another_replica() {
    use std::sync::Arc;
    use std::time::SystemTime;
    use unilogin_axum::Guard;
    use unilogin_axum::guard::RejectionKind;
    use unilogin_axum::session::{
        RevocationList, SessionIssuer, SessionKeys, VerifyError, subject_key,
    };
    let server = RedisServer::start();
    let issuer = SessionIssuer::new(
        SessionKeys::generate().unwrap(),
        "https://login.example.com",
        "apis",
        Duration::from_secs(3600),
    );
    let guard = Guard::for_issuer(&issuer)
        .tenant("acme")
        .revocation(Arc::new(store(&server).revocation_list()))
        .build()
        .unwrap();
    let profile: unilogin_core::UserProfile = serde_json::from_value(serde_json::json!({
        "platform": "feishu", "tenant": "acme",
        "subject": {"kind": "open_id", "value": "ou_1"}, "open_id": "ou_1", "user_id": "u1",
    }))
    .unwrap();
    let now = SystemTime::now();
    let token = issuer
        .issue_at(&profile, &[], now - Duration::from_secs(30))
        .unwrap()
        .token;
    guard.verify(&token).await.unwrap();
    // The event names the user id only; the token's subject is the open id.
    let replica = store(&server).revocation_list();
    replica
        .revoke_subject(
            &subject_key("acme", "feishu", "u1"),
            now,
            now + issuer.ttl(),
        )
        .await
        .unwrap();
    let e = guard.verify(&token).await.unwrap_err();
    assert_eq!(e.kind(), &RejectionKind::InvalidToken(VerifyError::Revoked));
}
