//! Real database servers for the tests: a SQLite file, and PostgreSQL and MariaDB started here
//! as plain processes on free loopback ports with fresh data directories (one server per
//! backend per test binary, one fresh database per test). A watchdog shell stops each server
//! and removes its directory when the test process exits.
//!
//! Missing server binaries fail the tests with the Debian package to install.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
    /// MariaDB server.
    MariaDb,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` in a shell that waits for this test process to end, then runs `cleanup`.
// The watchdog must outlive this process (that is its job), so it is never waited for.
#[allow(clippy::zombie_processes)]
fn watchdog(script: &str, cleanup: &str) {
    let pid = std::process::id();
    let full = format!("{script}\nwhile [ -d /proc/{pid} ]; do sleep 0.5; done\n{cleanup}\n");
    Command::new("sh")
        .arg("-c")
        .arg(full)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning the server watchdog");
}

fn wait_for_port(port: u16, what: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} did not listen on 127.0.0.1:{port} within 60 s; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

struct Server {
    port: u16,
    dir: PathBuf,
}

fn postgres_bindir() -> PathBuf {
    if let Ok(dir) = std::env::var("UNILOGIN_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    // Debian keeps the server binaries in /usr/lib/postgresql/<major>/bin.
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in entries.flatten() {
            let bin = e.path().join("bin");
            let major = e.file_name().to_string_lossy().parse::<u32>().unwrap_or(0);
            if bin.join("initdb").exists() && best.as_ref().is_none_or(|(m, _)| major > *m) {
                best = Some((major, bin));
            }
        }
    }
    if let Some((_, bin)) = best {
        return bin;
    }
    panic!(
        "PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin: \
         install the Debian package `postgresql` (apt-get install -y postgresql), \
         or set UNILOGIN_PG_BINDIR"
    );
}

fn start_postgres() -> Server {
    let bin = postgres_bindir();
    let dir = temp_dir("unilogin_sql_pg");
    let data = dir.join("data");
    let port = free_port();
    let root = is_root();
    // PostgreSQL refuses to run as root: run it as the `postgres` user then.
    let as_pg = |program: &Path| -> Command {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    if root {
        run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir),
            "chown of the PostgreSQL data directory (is the `postgres` user present? install `postgresql`)",
        );
    }
    run(
        as_pg(&bin.join("initdb")).arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]),
        "initdb",
    );
    let log = dir.join("server.log");
    let runner = if root { "runuser -u postgres -- " } else { "" };
    let server = format!(
        "{runner}{pg} -D {data} -k {dir} -p {port} -h 127.0.0.1 -F -c fsync=off -c full_page_writes=off > {log} 2>&1 &",
        pg = bin.join("postgres").display(),
        data = data.display(),
        dir = dir.display(),
        log = log.display(),
    );
    let cleanup = format!(
        "{runner}{ctl} -D {data} stop -m immediate; rm -rf {dir}",
        ctl = bin.join("pg_ctl").display(),
        data = data.display(),
        dir = dir.display(),
    );
    watchdog(&server, &cleanup);
    wait_for_port(port, "PostgreSQL", &log);
    Server { port, dir }
}

fn find_program(name: &str, package: &str) -> PathBuf {
    for dir in [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/sbin",
        "/usr/local/bin",
        "/sbin",
        "/bin",
    ] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!(
        "`{name}` not found: install the Debian package `{package}` (apt-get install -y {package})"
    );
}

fn start_mariadb() -> Server {
    let server_bin = find_program("mariadbd", "mariadb-server");
    let install = find_program("mariadb-install-db", "mariadb-server");
    let dir = temp_dir("unilogin_sql_maria");
    let data = dir.join("data");
    let port = free_port();
    let root = is_root();
    let mut cmd = Command::new(&install);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
    if root {
        cmd.arg("--user=root");
    }
    run(&mut cmd, "mariadb-install-db");
    let log = dir.join("server.log");
    let sock = dir.join("mysqld.sock");
    let user = if root { "--user=root" } else { "" };
    let server = format!(
        "{bin} --no-defaults --datadir={data} --socket={sock} --port={port} --bind-address=127.0.0.1 \
         --pid-file={dir}/mysqld.pid --skip-log-bin --skip-name-resolve --innodb-buffer-pool-size=32M \
         --innodb-flush-log-at-trx-commit=2 --log-error={log} {user} &\nS=$!",
        bin = server_bin.display(),
        data = data.display(),
        sock = sock.display(),
        dir = dir.display(),
        log = log.display(),
    );
    let cleanup = format!("kill $S; wait $S; rm -rf {}", dir.display());
    watchdog(&server, &cleanup);
    wait_for_port(port, "MariaDB", &log);
    Server { port, dir }
}

static POSTGRES: OnceLock<Server> = OnceLock::new();
static MARIADB: OnceLock<Server> = OnceLock::new();

async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// A connection URL to a fresh, empty database of `kind`.
pub async fn fresh_database(kind: Kind) -> String {
    match kind {
        Kind::Sqlite => {
            let dir = temp_dir("unilogin_sql_sqlite");
            watchdog("", &format!("rm -rf {}", dir.display()));
            format!("sqlite://{}?mode=rwc", dir.join("config.db").display())
        }
        Kind::Postgres => {
            let server = tokio::task::block_in_place(|| POSTGRES.get_or_init(start_postgres));
            let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port);
            let name = unique("t");
            let mut conn = retry("connecting to PostgreSQL", || {
                sqlx::PgConnection::connect(&admin)
            })
            .await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .unwrap();
            format!("postgres://postgres@127.0.0.1:{}/{name}", server.port)
        }
        Kind::MariaDb => {
            let server = tokio::task::block_in_place(|| MARIADB.get_or_init(start_mariadb));
            let sock = server.dir.join("mysqld.sock");
            let opts = sqlx::mysql::MySqlConnectOptions::new()
                .socket(&sock)
                .username("root");
            let mut conn = retry("connecting to MariaDB as root over its socket", || {
                sqlx::MySqlConnection::connect_with(&opts)
            })
            .await;
            let name = unique("t");
            for stmt in [
                format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"),
                "CREATE USER IF NOT EXISTS 'unilogin'@'%' IDENTIFIED BY 'unilogin-test'".into(),
                format!("GRANT ALL PRIVILEGES ON {name}.* TO 'unilogin'@'%'"),
            ] {
                sqlx::raw_sql(sqlx::AssertSqlSafe(stmt))
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            format!(
                "mysql://unilogin:unilogin-test@127.0.0.1:{}/{name}",
                server.port
            )
        }
    }
}
