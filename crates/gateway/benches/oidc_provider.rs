//! The gateway as an OpenID Provider (issue #23), against the certified npm `oidc-provider`
//! (`tests/oidc-rp/node-op.mjs`: production-configured, memory adapter, auto-login
//! interactions) on the same machine, driven by the same client code.
//!
//! Both OPs serve on loopback with the same client registration: confidential,
//! `client_secret_basic`, PKCE S256, RS256 id tokens, `openid profile email`, a refresh token
//! with every code exchange. The client is this process: reqwest over HTTP/1.1 keep-alive,
//! [`WORKERS`] concurrent workers. The gateway (and its DingTalk fake) run on a tokio runtime of
//! their own (2 worker threads, mimalloc as the shipped binary), the client on another; the
//! node OP is its own process (single-threaded, as Node.js is).
//!
//! Reports:
//! - `oidc_provider.token_ratio_vs_node_oidc_provider` (goal ≥ 2): the token endpoint alone.
//!   Each round times [`TOKEN_EXCHANGES`] `authorization_code` exchanges per OP, in batches of
//!   [`BATCH`] codes minted just before (the flow up to the code, not timed); only the
//!   exchanges are timed. Rounds alternate (gateway, node / node, gateway, …) so each round
//!   compares neighbours on a shared machine. The ratio is the median over rounds of the gateway's exchanges per second ÷ node's in the same round;
//!   `oidc_provider.token_rps` (report) gives the median rates.
//! - `oidc_provider.token_p99_ratio` (goal ≤ 1): the gateway's p99 exchange latency ÷ node's,
//!   per round, the median round; `oidc_provider.token_p99_ms` (report): the median p99s.
//! - `oidc_provider.flow_logins_per_s` (report): the whole code flow on the gateway in front of
//!   the DingTalk fake, as a browser without JavaScript does it with a fresh cookie jar per
//!   login — authorize, the gateway's platform login, the fake's sign-in page, its Approve form
//!   for `user001`, the callback, the resumed authorization, the code on the redirect — and then
//!   the relying party's token exchange and userinfo request. Node has no platform fake, so
//!   there is no baseline; `oidc_provider.flow_p50_ms` / `flow_p99_ms` (report): one login's
//!   latency.
//!
//! Needs Node.js and npm (the npm packages are installed into the cargo target's tmp dir, as the
//! interop tests do; `cargo xtask bench` provisions them first). `UNILOGIN_BENCH_QUICK=1` runs
//! tiny counts.

#[path = "../tests/oidc_rp_support/mod.rs"]
mod oidc_rp_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc_rp_support::{CookieJar, NodeOp, Page, redact_url};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use unilogin::config::YamlText;
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};
use unilogin_gateway::{Gateway, GatewayConfig};
use unilogin_provider::sha256_hex;
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use url::Url;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent client workers, against either OP.
const WORKERS: usize = 16;
/// Code exchanges timed per OP per round (full mode).
const TOKEN_EXCHANGES: usize = 1000;
/// Codes minted and redeemed at once. oidc-provider's memory adapter is an LRU of 1,000 entries
/// (codes, sessions, grants, tokens): a larger batch would have its first codes evicted before
/// they are redeemed (`invalid_grant`).
const BATCH: usize = 200;
/// Interleaved token rounds (full mode).
const ROUNDS: usize = 5;
/// Whole logins timed on the gateway (full mode).
const FLOW_LOGINS: usize = 1000;

const CLIENT_ID: &str = "bench-rp";
const SECRET: &str = "bench-client-secret-0123456789abcdef";
const REDIRECT_URI: &str = "http://127.0.0.1:9/bench-rp/callback";
const SCOPE: &str = "openid profile email";
const LIMITS: &str = "rate_limits:
  login_per_client: {per_minute: 60000000, burst: 10000000}
  login_global: {per_minute: 60000000, burst: 10000000}
  code_per_client: {per_minute: 60000000, burst: 10000000}
  upstream_per_tenant: {per_minute: 60000000, burst: 10000000}
  other_per_client: {per_minute: 60000000, burst: 10000000}
log: {filter: error}";

/// An OP's endpoints, from its discovery document.
#[derive(Clone, Debug)]
struct Endpoints {
    name: &'static str,
    authorize: Url,
    token: Url,
    userinfo: Url,
}

async fn discover(name: &'static str, http: &reqwest::Client, issuer: &str) -> Endpoints {
    let doc: Value = http
        .get(format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
        .send()
        .await
        .expect("discovery")
        .json()
        .await
        .expect("a discovery document");
    let url = |k: &str| Url::parse(doc[k].as_str().unwrap_or_default()).expect(k);
    Endpoints {
        name,
        authorize: url("authorization_endpoint"),
        token: url("token_endpoint"),
        userinfo: url("userinfo_endpoint"),
    }
}

/// The gateway with the provider on, the tenant `acme` on the DingTalk fake and the bench's
/// client; served on the current runtime. Returns the issuer.
async fn start_gateway(fake: &FakeDingTalk) -> (Gateway, String) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let yaml = format!(
        "public_url: \"{base}\"\ncookies: {{secure: false}}\noidc_provider: {{enabled: true}}\n{LIMITS}"
    );
    let config = GatewayConfig::from_yaml(&yaml).expect("config");
    let creds = fake.credentials();
    let fake_base = fake.base_url();
    let doc = json!({
        "tenants": { "acme": { "dingtalk": {
            "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
            "hosts": { "oapi": fake_base, "api": fake_base, "login": fake_base },
            "redirect_uris": [base.as_str()],
        }}},
        "oidc_clients": { CLIENT_ID: {
            "redirect_uris": [REDIRECT_URI],
            "tenants": ["acme"],
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret_sha256": sha256_hex(SECRET),
            "refresh_without_offline_access": true,
        }},
    });
    let gateway = Gateway::builder(config)
        .tenants_yaml(YamlText::new(doc.to_string()))
        .open()
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let served = gateway.clone();
    tokio::spawn(async move {
        let _ = served.serve(listener, std::future::pending()).await;
    });
    (gateway, base.as_str().trim_end_matches('/').to_string())
}

/// The same registration in oidc-provider's client metadata.
fn node_clients() -> Value {
    json!([{
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
    }])
}

/// 32 random bytes, base64url.
fn random_b64() -> String {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).expect("random bytes");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// One authorization request's secrets; `Debug` is not derived (they are secrets).
struct Pending {
    url: Url,
    state: String,
    verifier: String,
}

fn authorization_request(ep: &Endpoints) -> Pending {
    let (state, nonce, verifier) = (random_b64(), random_b64(), random_b64());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut url = ep.authorize.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", SCOPE)
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    Pending {
        url,
        state,
        verifier,
    }
}

/// A code with its PKCE verifier, ready to be exchanged.
struct Minted {
    code: String,
    verifier: String,
}

/// Plays the browser from the authorization request to the redirect back to the client:
/// follows redirects by hand with `jar`, and on the DingTalk fake's sign-in page submits the
/// Approve form of `user001`. Returns the code, after checking the state and `iss`.
async fn authorize(
    http: &reqwest::Client,
    jar: &mut CookieJar,
    ep: &Endpoints,
) -> Result<Minted, String> {
    let pending = authorization_request(ep);
    let mut url = pending.url.clone();
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..20 {
        let mut req = match form.take() {
            Some(fields) => http.post(url.clone()).form(&fields),
            None => http.get(url.clone()),
        };
        if let Some(cookies) = jar.header_for(&url, SystemTime::now()) {
            req = req.header(reqwest::header::COOKIE, cookies);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{}: {}", redact_url(&url), e.without_url()))?;
        for h in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            if let Ok(h) = h.to_str() {
                jar.store(&url, h, SystemTime::now());
            }
        }
        let status = resp.status();
        if status.is_redirection()
            && let Some(location) = resp.headers().get(reqwest::header::LOCATION)
        {
            let target = url
                .join(location.to_str().unwrap_or_default())
                .map_err(|e| format!("bad Location: {e}"))?;
            if target.as_str().starts_with(REDIRECT_URI) {
                let q: HashMap<String, String> = target.query_pairs().into_owned().collect();
                if q.get("state") != Some(&pending.state) {
                    return Err(format!("state mismatch at {}", redact_url(&target)));
                }
                if !q.contains_key("iss") {
                    return Err(format!("no iss at {}", redact_url(&target)));
                }
                return match q.get("code") {
                    Some(code) => Ok(Minted {
                        code: code.clone(),
                        verifier: pending.verifier,
                    }),
                    None => Err(format!("no code: {}", redact_url(&target))),
                };
            }
            url = target;
            continue;
        }
        let page = Page {
            url: url.clone(),
            status: status.as_u16(),
            body: resp.text().await.map_err(|e| e.without_url().to_string())?,
        };
        let approve = page
            .forms()
            .into_iter()
            .filter(|f| {
                f.fields
                    .iter()
                    .any(|(k, v)| k == "user_id" && v == dingtalk::DEMO_USER_ID)
            })
            .find_map(|f| f.submit_with("Approve"));
        match approve {
            Some(oidc_rp_support::Navigation::Post { url: to, fields }) => {
                url = to;
                form = Some(fields);
            }
            Some(oidc_rp_support::Navigation::Get(to)) => url = to,
            None => return Err(format!("stopped on {page:?} at {}", ep.name)),
        }
    }
    Err(format!("too many hops at {}", ep.name))
}

/// The tokens of one exchange, checked; the access token for userinfo.
async fn exchange(
    http: &reqwest::Client,
    ep: &Endpoints,
    minted: &Minted,
) -> Result<String, String> {
    let resp = http
        .post(ep.token.clone())
        .basic_auth(CLIENT_ID, Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &minted.code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &minted.verifier),
        ])
        .send()
        .await
        .map_err(|e| format!("token request at {}: {}", ep.name, e.without_url()))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("token response at {}: {}", ep.name, e.without_url()))?;
    if !status.is_success() {
        return Err(format!(
            "token endpoint of {} answered {status}: {}",
            ep.name, body["error"]
        ));
    }
    for field in ["id_token", "access_token", "refresh_token"] {
        if !body[field].is_string() {
            return Err(format!("{} sent no {field}", ep.name));
        }
    }
    Ok(body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

async fn userinfo(
    http: &reqwest::Client,
    ep: &Endpoints,
    access_token: &str,
) -> Result<Value, String> {
    let resp = http
        .get(ep.userinfo.clone())
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| format!("userinfo at {}: {}", ep.name, e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!(
            "userinfo of {} answered {}",
            ep.name,
            resp.status()
        ));
    }
    resp.json().await.map_err(|e| e.without_url().to_string())
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(WORKERS * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `n` codes minted by [`WORKERS`] concurrent browsers (one cookie jar each, kept across
/// their logins: minting is not timed).
async fn mint(http: &reqwest::Client, ep: &Endpoints, n: usize) -> Vec<Minted> {
    let left = Arc::new(Mutex::new(n));
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (http, ep, left) = (http.clone(), ep.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            let mut jar = CookieJar::default();
            let mut out = Vec::new();
            while take(&left) {
                out.push(
                    authorize(&http, &mut jar, &ep)
                        .await
                        .unwrap_or_else(|e| panic!("{e}")),
                );
            }
            out
        }));
    }
    let mut codes = Vec::with_capacity(n);
    for t in tasks {
        codes.extend(t.await.unwrap());
    }
    codes
}

fn take(left: &Mutex<usize>) -> bool {
    let mut left = left.lock().unwrap();
    if *left == 0 {
        return false;
    }
    *left -= 1;
    true
}

/// One timed run of token exchanges: the rate and each exchange's latency.
struct Run {
    rps: f64,
    latencies: Vec<Duration>,
}

/// Times only the exchanges of `codes`, [`WORKERS`] at a time.
async fn time_exchanges(http: &reqwest::Client, ep: &Endpoints, codes: Vec<Minted>) -> Run {
    let n = codes.len();
    let queue = Arc::new(Mutex::new(codes));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (http, ep, queue) = (http.clone(), ep.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(minted) = queue.lock().unwrap().pop() else {
                    break;
                };
                let t0 = Instant::now();
                exchange(&http, &ep, &minted)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                latencies.push(t0.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    assert_eq!(latencies.len(), n, "every code exchanged");
    Run {
        rps: n as f64 / elapsed.as_secs_f64(),
        latencies,
    }
}

/// `n` timed exchanges on `ep`, in batches of at most [`BATCH`]: each batch is minted (not
/// timed), then its exchanges timed; the rate is the exchanges over the timed parts' sum.
async fn token_round(http: &reqwest::Client, ep: &Endpoints, n: usize) -> Run {
    let (mut timed, mut latencies, mut left) = (0.0, Vec::with_capacity(n), n);
    while left > 0 {
        let batch = left.min(BATCH);
        left -= batch;
        let codes = mint(http, ep, batch).await;
        let run = time_exchanges(http, ep, codes).await;
        timed += batch as f64 / run.rps;
        latencies.extend(run.latencies);
    }
    Run {
        rps: n as f64 / timed,
        latencies,
    }
}

/// `n` whole logins on the gateway, [`WORKERS`] at a time, a fresh cookie jar per login: the
/// rate and each login's latency.
async fn flow(http: &reqwest::Client, ep: &Endpoints, n: usize) -> Run {
    let left = Arc::new(Mutex::new(n));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (http, ep, left) = (http.clone(), ep.clone(), left.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while take(&left) {
                let t0 = Instant::now();
                let mut jar = CookieJar::default();
                let minted = authorize(&http, &mut jar, &ep)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let access = exchange(&http, &ep, &minted)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let info = userinfo(&http, &ep, &access)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                latencies.push(t0.elapsed());
                assert_eq!(
                    info["sub"].as_str(),
                    Some(format!("acme:dingtalk:{}", dingtalk::DEMO_USER_ID).as_str()),
                    "userinfo names the person who approved"
                );
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(n);
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed();
    assert_eq!(latencies.len(), n, "every login completed");
    Run {
        rps: n as f64 / elapsed.as_secs_f64(),
        latencies,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let (exchanges, rounds, logins) = if quick() {
        (40, 2, 40)
    } else {
        (TOKEN_EXCHANGES, ROUNDS, FLOW_LOGINS)
    };
    // The node OP first (a blocking start, and its npm install when missing).
    let node = NodeOp::start(&node_clients());
    // The gateway and its fake on a runtime of their own.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("gateway")
        .enable_all()
        .build()
        .unwrap();
    let (fake, _gateway, issuer) = server.block_on(async {
        let fake = dingtalk::start().await;
        let (gateway, issuer) = start_gateway(&fake).await;
        (fake, gateway, issuer)
    });
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .unwrap();
    let metrics = client_rt.block_on(async {
        let (gw_http, node_http) = (client(), client());
        let gw = discover("gateway", &gw_http, &issuer).await;
        let nd = discover("node oidc-provider", &node_http, &node.issuer).await;
        // Warm-up: connections, caches, JIT.
        let warm = if quick() { 16 } else { BATCH };
        token_round(&gw_http, &gw, warm).await;
        token_round(&node_http, &nd, warm).await;

        let (mut gw_rps, mut nd_rps, mut gw_p99, mut nd_p99) = (vec![], vec![], vec![], vec![]);
        let (mut ratios, mut p99_ratios) = (vec![], vec![]);
        for round in 0..rounds {
            let (mut g, mut n) = if round % 2 == 0 {
                let g = token_round(&gw_http, &gw, exchanges).await;
                (g, token_round(&node_http, &nd, exchanges).await)
            } else {
                let n = token_round(&node_http, &nd, exchanges).await;
                (token_round(&gw_http, &gw, exchanges).await, n)
            };
            let (gp, np) = (
                ms(percentile(&mut g.latencies, 99.0)),
                ms(percentile(&mut n.latencies, 99.0)),
            );
            println!(
                "token round {round}: gateway {:.0}/s p50 {:.2} ms p99 {gp:.2} ms, node {:.0}/s p50 {:.2} ms p99 {np:.2} ms, ratio {:.2}",
                g.rps,
                ms(percentile(&mut g.latencies, 50.0)),
                n.rps,
                ms(percentile(&mut n.latencies, 50.0)),
                g.rps / n.rps
            );
            ratios.push(g.rps / n.rps);
            p99_ratios.push(gp / np);
            gw_rps.push(g.rps);
            nd_rps.push(n.rps);
            gw_p99.push(gp);
            nd_p99.push(np);
        }

        flow(&gw_http, &gw, if quick() { 16 } else { 200 }).await;
        let mut f = flow(&gw_http, &gw, logins).await;
        println!("flow: {:.0} logins/s over {logins} logins", f.rps);
        vec![
            Metric::new(
                "oidc_provider.token_ratio_vs_node_oidc_provider",
                median(ratios),
                "x",
                None,
                ">= 2",
            ),
            Metric::new(
                "oidc_provider.token_p99_ratio",
                median(p99_ratios),
                "x",
                None,
                "<= 1",
            ),
            Metric::new(
                "oidc_provider.token_rps",
                median(gw_rps),
                "1/s",
                Some(median(nd_rps)),
                "report (baseline: node oidc-provider)",
            ),
            Metric::new(
                "oidc_provider.token_p99_ms",
                median(gw_p99),
                "ms",
                Some(median(nd_p99)),
                "report (baseline: node oidc-provider)",
            ),
            Metric::new("oidc_provider.flow_logins_per_s", f.rps, "1/s", None, "report"),
            Metric::new(
                "oidc_provider.flow_p50_ms",
                ms(percentile(&mut f.latencies, 50.0)),
                "ms",
                None,
                "report",
            ),
            Metric::new(
                "oidc_provider.flow_p99_ms",
                ms(percentile(&mut f.latencies, 99.0)),
                "ms",
                None,
                "report",
            ),
        ]
    });
    write_metrics("oidc_provider", &metrics).expect("writing metrics");
    drop(node);
    drop(fake);
    server.shutdown_background();
}
