//! `token_cache.refreshes_8proc`: upstream token requests per cold key (one expiry) when 8 OS
//! processes that share one `redis-server` all need the token at once — [`TokenCache`] with
//! [`RedisStore`](unilogin_redis::RedisStore) against the port of the seed's design with its
//! Redis `TokenStorage` (GET / SET, no lease), measured in the same run.
//!
//! The benchmark re-runs its own executable as the 8 workers. It starts its own `redis-server`
//! (Debian package `redis-server`; `cargo xtask ci` installs it).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use support::{RedisServer, Worker, token_endpoint};
use unilogin_benchkit::{Metric, quick, write_metrics};

fn main() {
    if std::env::var_os(support::WORKER_ENV).is_some() {
        support::worker_main();
        return;
    }
    // `cargo bench` passes `--bench`; ignore arguments.
    let rounds = if quick() { 2 } else { 10 };
    let server = RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    // A 50 ms upstream round trip, as to a platform's token endpoint.
    let endpoint = rt.block_on(token_endpoint(Duration::from_millis(50), 7200));
    let mut workers: Vec<Worker> = (0..8)
        .map(|_| Worker::spawn(&[], &server.url(), &endpoint.url))
        .collect();
    let mut per_round = |cmd: &str| -> f64 {
        let before = endpoint.calls.load(Ordering::SeqCst);
        for r in 0..rounds {
            let app = format!("{}{r}", cmd.to_lowercase());
            for w in &mut workers {
                w.send(&format!("{cmd} {app}"));
            }
            for w in &mut workers {
                let reply = w.read_reply();
                assert!(reply.starts_with("OK "), "worker: {reply}");
            }
        }
        (endpoint.calls.load(Ordering::SeqCst) - before) as f64 / rounds as f64
    };
    let ours = per_round("GET");
    let seed = per_round("SEED");
    drop(workers);
    write_metrics(
        "token_cache_8proc",
        &[Metric::new(
            "token_cache.refreshes_8proc",
            ours,
            "count",
            Some(seed),
            "== 1",
        )],
    )
    .expect("write metrics");
}
