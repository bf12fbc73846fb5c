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
