//! Tenant configuration kept in a database (`unilogin::sql`), then an H5 login against the
//! DingTalk test-kit fake:
//!
//! ```text
//! cargo run -p unilogin --features sql,dingtalk --example sql
//! DATABASE_URL=postgres://app:pw@127.0.0.1/app cargo run -p unilogin --features sql,dingtalk --example sql
//! DATABASE_URL=mysql://app:pw@127.0.0.1/app    cargo run -p unilogin --features sql,dingtalk --example sql
//! ```
//!
//! Without `DATABASE_URL` it uses a fresh SQLite file in the temporary directory (removed at the
//! end). The steps: connect, migrate (creates `unilogin_platform_config`), create the tenant's
//! row with the admin API (the app secret is stored AES-256-GCM encrypted, never in clear),
//! serve logins from it through a `SqlConfigSource` (memory, reloadable), log in; then disable
//! the row with the admin API, reload, and see the next login refused.
//!
//! Secrets are encrypted with the keys of `UNILOGIN_SECRET_KEYS` (`id:<64 hex digits>`, the
//! first encrypts); when it is unset the example makes a throw-away key.

use std::path::PathBuf;

use unilogin::config::{CachedSource, ConfigSource};
use unilogin::sql::{KEYS_ENV, NewConfig, SecretCipher, SecretInput, SqlConfigStore, StoredSecret};
use unilogin::{AppKey, AppSecret, AuthCode, Error, PlatformName, Sso, TenantId};
use unilogin_testkit::FakePlatform as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, sqlite_file) = database_url()?;
    let result = run(&url).await;
    if let Some(file) = sqlite_file {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut path = file.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

async fn run(url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let fake = unilogin_testkit::dingtalk::start().await;
    let creds = fake.credentials();

    let cipher = match std::env::var_os(KEYS_ENV) {
        Some(_) => SecretCipher::from_env()?,
        None => SecretCipher::parse(&format!("demo:{}", SecretCipher::generate_key_hex()))?,
    };
    let store = SqlConfigStore::connect(url, cipher).await?;
    store.migrate().await?;
    println!("configuration database: {:?}", store.backend());

    // The admin side: one row per (tenant, platform).
    let (tenant, platform) = (TenantId::new("acme")?, PlatformName::new("dingtalk")?);
    if store.get(&tenant, &platform).await?.is_some() {
        // A shared PostgreSQL / MySQL database from an earlier run.
        store.delete(&tenant, &platform, "example").await?;
    }
    let mut row = NewConfig::new(
        tenant.clone(),
        platform.clone(),
        AppKey::new(creds.app_key.as_str())?,
        SecretInput::Value(AppSecret::new(creds.app_secret.as_str())),
    );
    row.corp_id = Some(creds.corp_id.clone());
    for host in ["oapi", "api", "login"] {
        row.hosts.insert(host.into(), fake.base_url().parse()?);
    }
    row.redirect_uris = vec!["https://app.acme.example/after-login".into()];
    let created = store.create(row, "admin@acme").await?;
    match &created.secret {
        StoredSecret::Encrypted { key_id } => {
            println!(
                "created {}/{} revision {}; secret encrypted with key `{key_id}`",
                created.tenant, created.platform, created.revision
            );
        }
        other => return Err(format!("the secret should be stored encrypted, is {other:?}").into()),
    }

    // The serving side: logins read the rows from memory; `reload` applies admin changes (or
    // `spawn_reloader` polls, for the other replicas).
    let (source, report) = CachedSource::new(store.clone()).await?;
    println!("loaded: {report:?}");
    let source = std::sync::Arc::new(source);
    let sso = Sso::builder_shared(source.clone()).build()?;

    let code = fake.issue_h5_code("user001");
    let login = sso
        .login_with_code(&tenant, "dingtalk", &AuthCode::new(code))
        .await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);

    // An admin disables the tenant's DingTalk login; after the reload new logins are refused.
    store.disable(&tenant, &platform, "admin@acme").await?;
    source.reload().await?;
    let code = fake.issue_h5_code("user001");
    match sso
        .login_with_code(&tenant, "dingtalk", &AuthCode::new(code))
        .await
    {
        Err(Error::Disabled { .. }) => println!("after disabling: login refused (Disabled)"),
        other => return Err(format!("expected Error::Disabled, got {other:?}").into()),
    }
    store.delete(&tenant, &platform, "admin@acme").await?;
    Ok(())
}

/// `DATABASE_URL`, or a fresh SQLite file in the temporary directory (also returned, to remove).
fn database_url() -> Result<(String, Option<PathBuf>), Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok((url, None));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos();
    let file = std::env::temp_dir().join(format!(
        "unilogin-example-{}-{nanos}.db",
        std::process::id()
    ));
    Ok((format!("sqlite://{}?mode=rwc", file.display()), Some(file)))
}
