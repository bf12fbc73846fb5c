//! Per-request cost of the guard: the same handler behind the guard and without it, called
//! in-process with `tower::ServiceExt::oneshot`, interleaved in one run.
//!
//! Metrics:
//! - `guard.verify_ns`: p50 of a guarded request (JWKS-backed guard, key set cached), baseline
//!   the p50 of the unguarded request;
//! - `guard.overhead_ns`: the difference of the two p50s;
//! - `guard.verify_local_ns`: p50 with a local-keys guard (no JWKS), same baseline;
//! - `guard.scope_check_ns`: p50 with `RequireScopes` added, baseline the guarded p50;
//! - `guard.ed25519_verify_ns`: p50 of the bare Ed25519 signature check of the same token
//!   (aws-lc), the floor under everything above.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use tower::ServiceExt;
use unilogin_axum::session::{SessionIssuer, SessionKeys};
use unilogin_axum::{AuthUser, Guard, RequireScopes};
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};

const ISS: &str = "https://login.bench";
const AUD: &str = "bench-apis";

async fn open() -> &'static str {
    "ok"
}

async fn me(user: AuthUser) -> String {
    user.user_id().len().to_string()
}

async fn call(router: &Router, token: Option<&str>) -> Duration {
    let mut request = Request::builder().uri("/x");
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    let request = request.body(Body::empty()).expect("static request");
    let started = Instant::now();
    let response = router.clone().oneshot(request).await.expect("infallible");
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200, "bench request must succeed");
    elapsed
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let keys = SessionKeys::generate().expect("keys");
    let issuer = SessionIssuer::new(keys.clone(), ISS, AUD, Duration::from_secs(3600));
    let profile = serde_json::from_value(serde_json::json!({
        "platform": "dingtalk", "tenant": "acme", "user_id": "bench-user", "name": "Bench"
    }))
    .expect("profile");
    let token = issuer
        .issue(&profile, &["user:read".into(), "admin:write".into()])
        .expect("token")
        .token;

    // The issuer's JWKS on loopback, fetched once by the guard during warm-up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let jwks = keys.jwks();
    let jwks_app = Router::new().route(
        "/jwks.json",
        get(move || {
            let jwks = jwks.clone();
            async move { axum::Json(jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, jwks_app).await });

    let remote = Guard::jwks(format!("http://{addr}/jwks.json"), ISS, AUD)
        .tenant("acme")
        .build()
        .expect("guard");
    let local = Guard::for_issuer(&issuer)
        .tenant("acme")
        .build()
        .expect("guard");

    let unguarded = Router::new().route("/x", get(open));
    let guarded = Router::new().route("/x", get(me)).layer(remote.clone());
    let guarded_local = Router::new().route("/x", get(me)).layer(local);
    let scoped = Router::new()
        .route("/x", get(me).layer(RequireScopes::new(["admin:write"])))
        .layer(remote.clone());

    let (rounds, per_round) = if quick() { (5, 20) } else { (40, 500) };
    // Warm-up (includes the one JWKS fetch).
    for _ in 0..per_round {
        call(&unguarded, None).await;
        call(&guarded, Some(&token)).await;
        call(&guarded_local, Some(&token)).await;
        call(&scoped, Some(&token)).await;
    }
    assert_eq!(
        remote.jwks_fetches(),
        1,
        "the key set is cached after warm-up"
    );

    let mut base = Vec::new();
    let mut jwks_guarded = Vec::new();
    let mut local_guarded = Vec::new();
    let mut with_scope = Vec::new();
    for _ in 0..rounds {
        for _ in 0..per_round {
            base.push(call(&unguarded, None).await);
        }
        for _ in 0..per_round {
            jwks_guarded.push(call(&guarded, Some(&token)).await);
        }
        for _ in 0..per_round {
            local_guarded.push(call(&guarded_local, Some(&token)).await);
        }
        for _ in 0..per_round {
            with_scope.push(call(&scoped, Some(&token)).await);
        }
    }
    // The signature check alone: the part no guard can avoid.
    let (signing_input, signature) = token.rsplit_once('.').expect("compact JWS");
    let signature = {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .expect("signature")
    };
    let x = {
        use base64::Engine as _;
        let jwks = keys.jwks();
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwks["keys"][0]["x"].as_str().expect("x"))
            .expect("x")
    };
    let public = aws_lc_rs::signature::UnparsedPublicKey::new(&aws_lc_rs::signature::ED25519, x);
    let mut bare = Vec::new();
    for _ in 0..rounds * per_round {
        let started = Instant::now();
        public
            .verify(signing_input.as_bytes(), &signature)
            .expect("valid signature");
        bare.push(started.elapsed());
    }

    let ns = |v: &mut Vec<Duration>| percentile(v, 50.0).as_nanos() as f64;
    let base_ns = ns(&mut base);
    let guarded_ns = ns(&mut jwks_guarded);
    let local_ns = ns(&mut local_guarded);
    let scoped_ns = ns(&mut with_scope);
    let p99 = percentile(&mut jwks_guarded, 99.0).as_nanos() as f64;
    let bare_ns = ns(&mut bare);

    let metrics = [
        Metric::new(
            "guard.verify_ns",
            guarded_ns,
            "ns",
            Some(base_ns),
            "<= 150000",
        ),
        Metric::new(
            "guard.overhead_ns",
            guarded_ns - base_ns,
            "ns",
            None,
            "<= 150000",
        ),
        Metric::new("guard.verify_p99_ns", p99, "ns", None, "<= 500000"),
        Metric::new(
            "guard.verify_local_ns",
            local_ns,
            "ns",
            Some(base_ns),
            "<= 150000",
        ),
        Metric::new(
            "guard.scope_check_ns",
            scoped_ns,
            "ns",
            Some(guarded_ns),
            "<= 1.1x baseline",
        ),
        Metric::new(
            "guard.ed25519_verify_ns",
            bare_ns,
            "ns",
            None,
            "informational",
        ),
    ];
    write_metrics("guard", &metrics).expect("writing metrics");
    assert_eq!(remote.jwks_fetches(), 1, "no refetch during the run");
}
