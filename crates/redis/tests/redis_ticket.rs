//! The pushed-ticket store ([`RedisTicketStore`]) on a real Redis: newest by push time, namespaced
//! per app, atomic across replicas, durable across replica restarts; each test starts its own
//! `redis-server` (Debian package `redis-server`, or `cargo xtask ci`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use unilogin_core::isv::{Offered, PushedTicket, TicketApp, TicketStore};
use unilogin_core::{Error, PlatformName};
use unilogin_redis::{DEFAULT_TICKET_RETENTION, RedisStore, RedisTicketStore};
use unilogin_testkit::redis_server::RedisServer;

fn tickets(server: &RedisServer) -> RedisTicketStore {
    RedisStore::builder(server.url())
        .prefix("tk:")
        .build()
        .unwrap()
        .ticket_store()
}

fn app(platform: &str, id: &str) -> TicketApp {
    TicketApp::new(PlatformName::new(platform).unwrap(), id).unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + secs * 1000)
}

fn ticket(value: &str, pushed: u64) -> PushedTicket {
    PushedTicket::new(value, at(pushed), at(pushed + 1)).unwrap()
}

async fn pttl(server: &RedisServer, key: &str) -> i64 {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn keeps_the_newest_by_push_time_per_app() {
    let server = RedisServer::start();
    let s = tickets(&server);
    let (ding, wecom) = (app("dingtalk", "suite1"), app("wecom", "suite1"));
    assert_eq!(
        s.offer(&ding, ticket("d2", 20)).await.unwrap(),
        Offered::Stored
    );
    assert_eq!(
        s.offer(&ding, ticket("d1", 10)).await.unwrap(),
        Offered::Older
    );
    assert_eq!(
        s.offer(&ding, ticket("d2b", 20)).await.unwrap(),
        Offered::Older
    );
    // Another app (same id, other platform) is another key: a later push there changes nothing.
    assert_eq!(
        s.offer(&wecom, ticket("w9", 90)).await.unwrap(),
        Offered::Stored
    );
    let held = s.require(&ding).await.unwrap();
    assert_eq!(held.value.expose(), "d2");
    assert_eq!((held.pushed_at, held.received_at), (at(20), at(21)));
    assert_eq!(s.require(&wecom).await.unwrap().value.expose(), "w9");
    assert_eq!(s.redis_key(&ding), "tk:ticket:dingtalk:suite1");
    assert_eq!(
        s.offer(&ding, ticket("d3", 30)).await.unwrap(),
        Offered::Stored
    );
    assert_eq!(s.require(&ding).await.unwrap().value.expose(), "d3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_offers_from_two_replicas_leave_the_newest() {
    let server = RedisServer::start();
    let a = app("feishu", "cli_a1");
    for round in 0..5u64 {
        // Two replicas (own connections) receive the same 100 pushes in opposite orders.
        let replicas = [Arc::new(tickets(&server)), Arc::new(tickets(&server))];
        let base = round * 1000;
        let mut tasks = Vec::new();
        for (i, store) in replicas.iter().enumerate() {
            let (store, a) = (store.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                let order: Vec<u64> = if i == 0 {
                    (0..100).collect()
                } else {
                    (0..100).rev().collect()
                };
                for n in order {
                    let t = ticket(&format!("t{}", base + n), base + n);
                    store.offer(&a, t).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let newest = replicas[1].require(&a).await.unwrap();
        assert_eq!(
            newest.value.expose(),
            format!("t{}", base + 99),
            "round {round}"
        );
        assert_eq!(newest.pushed_at, at(base + 99));
    }
}

#[tokio::test]
async fn no_ticket_yet_is_a_typed_error_and_tickets_survive_replica_restarts() {
    let server = RedisServer::start();
    let a = app("wecom", "ww4asffe99e54c0f");
    {
        let s = tickets(&server);
        let e = s.require(&a).await.unwrap_err();
        assert!(matches!(e, Error::TicketMissing { .. }), "{e}");
        assert!(e.to_string().contains("ww4asffe99e54c0f"), "{e}");
        s.offer(&a, ticket("durable", 5)).await.unwrap();
    }
    // Every replica is gone; a new one (new connection) still finds the ticket.
    let s = tickets(&server);
    assert_eq!(s.require(&a).await.unwrap().value.expose(), "durable");
    // Kept for the retention (30 days), far longer than any platform's push interval.
    let left = pttl(&server, &s.redis_key(&a)).await;
    let retention = DEFAULT_TICKET_RETENTION.as_millis() as i64;
    assert!(left > retention - 60_000 && left <= retention, "{left}");
    // No expiry at all on request; a retention under a day is raised to a day.
    let forever = s.clone().retention(None);
    forever.offer(&a, ticket("older", 1)).await.unwrap();
    assert_eq!(pttl(&server, &s.redis_key(&a)).await, -1);
    let short = s.clone().retention(Some(Duration::from_secs(1)));
    short.offer(&a, ticket("older", 1)).await.unwrap();
    assert!(pttl(&server, &s.redis_key(&a)).await > 86_000_000);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let server = RedisServer::start();
    let s = tickets(&server);
    let a = app("dingtalk", "suite2");
    s.offer(&a, ticket("s3cr3t-ticket", 1)).await.unwrap();
    let held = s.get(&a).await.unwrap().unwrap();
    let shown = format!("{held:?} {s:?} {}", held.value);
    assert!(!shown.contains("s3cr3t"), "{shown}");
    // An entry not written by us is a store error, not a panic.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let bad = app("dingtalk", "bad");
    let _: () = redis::cmd("HSET")
        .arg(s.redis_key(&bad))
        .arg("value")
        .arg("v")
        .arg("pushed_ms")
        .arg("soon")
        .query_async(&mut conn)
        .await
        .unwrap();
    let e = s.get(&bad).await.unwrap_err();
    assert_eq!(e.kind(), "store_unavailable", "{e}");
    assert!(!e.to_string().contains("soon"), "{e}");
    assert!(s.offer(&bad, ticket("x", 1)).await.is_err());
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
        .ticket_store();
    let a = app("wecom", "ww1");
    let e = s.offer(&a, ticket("t", 1)).await.unwrap_err();
    assert_eq!(e.kind(), "store_unavailable", "{e}");
    assert!(!e.to_string().contains("\"t\""), "{e}");
    assert!(s.get(&a).await.is_err());
}
