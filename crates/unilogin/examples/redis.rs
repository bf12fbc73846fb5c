//! Two replicas of a service sharing DingTalk's app token through Redis: one upstream token
//! fetch for both, against the test-kit fake:
//!
//! ```text
//! REDIS_URL=redis://127.0.0.1:6379 cargo run -p unilogin --features redis,dingtalk --example redis
//! ```
//!
//! Each replica (here: two `Sso` instances in one process, in production one per process or
//! pod) has its own `TokenCache`: an in-memory L1 in front of a `unilogin::redis::RedisStore`,
//! the shared L2. The replica that needs the app token first takes the refresh lease in Redis
//! (`SET NX PX`), fetches the token once and stores it; the other waits on the lease or finds
//! the token in Redis. Two logins started at the same moment through the two replicas therefore
//! cost ONE app-token fetch upstream, and a later one none.
//!
//! `REDIS_URL` defaults to `redis://127.0.0.1:6379`; keys go under a prefix unique to this run
//! and are removed at the end. For pending redirect logins across replicas, the same
//! connection offers `RedisStore::state_store` (single-use, taken once across replicas).

use std::sync::Arc;
use std::time::Duration;

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::redis::RedisStore;
use unilogin::token_cache::{TokenCache, TokenKey, TokenStore};
use unilogin::{AuthCode, PlatformName, Sso, TenantId};
use unilogin_testkit::{EndpointRole, FakePlatform};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let prefix = format!("unilogin-example:{}-{nanos}:", std::process::id());

    let fake = unilogin_testkit::dingtalk::start().await;
    let creds = fake.credentials();
    let config: PlatformConfig = serde_json::from_value(serde_json::json!({
        "tenant": "acme",
        "platform": "dingtalk",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "hosts": { "oapi": fake.base_url(), "api": fake.base_url(), "login": fake.base_url() },
    }))?;
    let config = StaticConfig::validated(vec![config])?;

    // One replica: its own Redis connection and token cache, the configuration, an `Sso`.
    let replica = |config: StaticConfig| -> Result<Sso, Box<dyn std::error::Error>> {
        let store = RedisStore::builder(redis_url.as_str())
            .prefix(prefix.as_str())
            .build()?;
        let cache = TokenCache::builder().store(Arc::new(store)).build();
        Ok(Sso::builder(config).token_cache(cache).build()?)
    };
    let (a, b) = (replica(config.clone())?, replica(config)?);

    // The cache falls back to memory when Redis is down (logins keep working, each replica then
    // fetches its own token): check Redis first so the example says so instead.
    let probe = RedisStore::builder(redis_url.as_str())
        .prefix(prefix.as_str())
        .op_timeout(Duration::from_secs(1))
        .build()?;
    if let Err(e) = reachable(&probe).await {
        eprintln!(
            "error: Redis is unreachable at {} ({e}).\n\
             Start one (`redis-server`, Debian package redis-server) or point REDIS_URL at one.",
            redacted(&redis_url)
        );
        std::process::exit(2);
    }

    let tenant = TenantId::new("acme")?;
    let code_a = AuthCode::new(fake.issue_h5_code("user001"));
    let code_b = AuthCode::new(fake.issue_h5_code("user002"));
    // Both replicas start cold and log someone in at the same moment.
    let (login_a, login_b) = tokio::join!(
        a.login_with_code(&tenant, "dingtalk", &code_a),
        b.login_with_code(&tenant, "dingtalk", &code_b),
    );
    let (login_a, login_b) = (login_a?, login_b?);
    println!("replica A logged in {}", login_a.profile.subject);
    println!("replica B logged in {}", login_b.profile.subject);

    // A third login, through B, much later: from B's memory, no call for the token.
    let code = fake.issue_h5_code("user001");
    b.login_with_code(&tenant, "dingtalk", &AuthCode::new(code))
        .await?;

    let token_fetches: u64 = fake
        .endpoints_for(EndpointRole::AppToken)
        .iter()
        .map(|e| fake.calls(e))
        .sum();
    println!("replica A token cache: {:?}", a.token_cache().stats());
    println!("replica B token cache: {:?}", b.token_cache().stats());
    println!("app-token fetches upstream for 3 logins through 2 replicas: {token_fetches}");

    // Tidy up this run's keys (the token would otherwise live in Redis for its 2 hours).
    if let Some(key) = a.prepare(&tenant, "dingtalk").await?.handler().token_key() {
        a.token_cache().evict(&key).await;
    }

    if token_fetches != 1 {
        return Err(format!("expected exactly one app-token fetch, saw {token_fetches}").into());
    }
    Ok(())
}

/// One read through the store (the connection is made lazily), retried briefly.
async fn reachable(store: &RedisStore) -> unilogin::Result<()> {
    let key = TokenKey::new(
        &PlatformName::new("dingtalk")?,
        &TenantId::new("probe")?,
        "probe",
        None,
    );
    let mut last = Ok(None);
    for _ in 0..3 {
        last = store.get(&key).await;
        if last.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last.map(|_| ())
}

/// The URL without its password, for messages.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(an unparsable REDIS_URL)".into(),
    }
}
