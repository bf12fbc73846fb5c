//! `unilogin-gateway [--config FILE] [--listen ADDR] [--json-logs]`,
//! `unilogin-gateway check-config [--config FILE]` or `unilogin-gateway --sandbox`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use unilogin_gateway::config::{DEFAULTS_YAML, GatewayConfig, LogFormat};
use unilogin_gateway::{Gateway, init_logging, shutdown_signal};
#[cfg(feature = "sandbox")]
use unilogin_gateway::{Sandbox, SandboxOptions};

// mimalloc: measured against glibc malloc in the load benchmark, more logins per second under
// load, and a resident set that levels off where glibc's kept creeping up (docs/performance.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const USAGE: &str = "\
unilogin-gateway: a login service for DingTalk, Feishu, WeCom and OAuth2 tenants

USAGE:
    unilogin-gateway [--config FILE] [--listen ADDR] [--json-logs]
    unilogin-gateway check-config [--config FILE]
    unilogin-gateway --sandbox [--listen ADDR] [--json-logs]
    unilogin-gateway --print-defaults

OPTIONS:
    --config FILE      gateway configuration (YAML, merged over the embedded defaults)
    --listen ADDR      listen address (overrides `listen`; sandbox default 127.0.0.1:8080)
    --sandbox          run against built-in platform fakes with a demo tenant, offline
                       (builds with the `sandbox` feature only)
    --json-logs        JSON log lines
    --print-defaults   print the embedded default configuration and exit

COMMANDS:
    check-config       read the gateway configuration and every tenant entry (tenants_file or
                       tenants_database) and check them as a start would; prints every problem
                       and exits non-zero when there is one

SIGNALS:
    SIGHUP             read the tenant configuration again now
    -h, --help         this text
";

struct Args {
    check: bool,
    config: Option<PathBuf>,
    listen: Option<SocketAddr>,
    sandbox: bool,
    json_logs: bool,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut args = Args {
        check: false,
        config: None,
        listen: None,
        sandbox: false,
        json_logs: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => {
                args.config = Some(it.next().ok_or("--config needs a file")?.into());
            }
            "--listen" => {
                let v = it.next().ok_or("--listen needs an address")?;
                args.listen = Some(v.parse().map_err(|e| format!("--listen {v}: {e}"))?);
            }
            "check-config" => args.check = true,
            "--sandbox" => args.sandbox = true,
            "--json-logs" => args.json_logs = true,
            "--print-defaults" => {
                print!("{DEFAULTS_YAML}");
                return Ok(None);
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            other => return Err(format!("unknown argument `{other}`\n\n{USAGE}")),
        }
    }
    Ok(Some(args))
}

async fn run(args: Args) -> Result<(), String> {
    let mut config = match &args.config {
        Some(path) => GatewayConfig::from_file(path).map_err(|e| e.to_string())?,
        None => GatewayConfig::default(),
    };
    if args.json_logs {
        config.log.format = LogFormat::Json;
    }
    if args.check {
        return match unilogin_gateway::tenants::check(&config).await {
            Ok(n) => {
                println!(
                    "configuration ok: {n} tenant platform entr{}",
                    if n == 1 { "y" } else { "ies" }
                );
                Ok(())
            }
            Err(problems) => Err(problems.to_string()),
        };
    }
    init_logging(config.log.format, &config.log.filter);
    #[cfg(not(feature = "sandbox"))]
    if args.sandbox {
        return Err("this gateway was built without the `sandbox` feature".into());
    }
    #[cfg(feature = "sandbox")]
    if args.sandbox {
        let listen = args.listen.unwrap_or(config.listen);
        let sandbox = Sandbox::start(SandboxOptions { listen, config })
            .await
            .map_err(|e| e.to_string())?;
        println!("{}", sandbox.instructions());
        shutdown_signal().await;
        sandbox.stop().await;
        return Ok(());
    }
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    let listen = config.listen;
    // Every tenant entry is read and checked before serving; all problems are reported.
    let gateway = Gateway::builder(config)
        .open()
        .await
        .map_err(|problems| format!("refusing to start: {problems}"))?;
    reload_on_sighup(&gateway);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(%listen, public_url = %gateway.config().public_url, "unilogin gateway listening");
    gateway
        .serve(listener, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// SIGHUP: read the tenant configuration again now.
fn reload_on_sighup(gateway: &Gateway) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; tenant changes apply at the next poll");
            return;
        };
        let gateway = gateway.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("received SIGHUP: reading the tenant configuration again");
                gateway.reload_tenants();
            }
        });
    }
    #[cfg(not(unix))]
    let _ = gateway;
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("unilogin-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}
